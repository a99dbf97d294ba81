"""A deterministic swarm simulator: torrentpy engines and scripted peers on in-memory links, virtual time."""
