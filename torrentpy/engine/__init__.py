"""The engine: sessions, torrents and the policies that drive them (no I/O)."""
