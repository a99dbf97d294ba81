"""The Transmission RPC server of `torrentpy daemon` (aiohttp.web)."""
