"""All network I/O: peer transports, the listener and tracker clients (asyncio/uvloop)."""
