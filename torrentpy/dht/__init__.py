"""Mainline DHT (BEP 5): routing table, lookups, the stores a node keeps, a node without I/O."""
