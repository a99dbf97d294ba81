"""torrentpy: a BitTorrent client with a compiled Cython core."""

__version__ = "0.1.0"

# Fails with build instructions when the compiled core is missing: no slow fallback.
import torrentpy._core  # noqa: F401
from torrentpy.errors import (
    BencodeError,
    DiskFullError,
    MetainfoError,
    StorageError,
    TorrentError,
    TrackerError,
    UsageError,
)
from torrentpy.metainfo import FileEntry, Magnet, Metainfo, load, parse_magnet, parse_torrent

__all__ = [
    "BencodeError",
    "DiskFullError",
    "FileEntry",
    "Magnet",
    "Metainfo",
    "MetainfoError",
    "StorageError",
    "TorrentError",
    "TrackerError",
    "UsageError",
    "__version__",
    "load",
    "parse_magnet",
    "parse_torrent",
]
