"""A small BitTorrent tracker (HTTP + UDP) for local swarms and tests: ``torrentpy tracker``."""

from torrentpy.tracker.registry import SwarmRegistry
from torrentpy.tracker.server import TrackerServer, run_forever, serve

__all__ = ["SwarmRegistry", "TrackerServer", "run_forever", "serve"]
