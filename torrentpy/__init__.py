"""torrentpy: a BitTorrent client with a compiled Cython core."""

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Fails with build instructions when the compiled core is missing: no slow fallback.
import torrentpy._core  # noqa: F401

if TYPE_CHECKING:
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

_ERRORS = frozenset({"BencodeError", "DiskFullError", "MetainfoError", "StorageError", "TorrentError",
                     "TrackerError", "UsageError"})


def __getattr__(name: str) -> Any:
    # Imported when first asked for: `python -m torrentpy` imports this package before its __main__
    # can pause the collector for the start-up, so the package itself imports only the compiled core.
    if name in _ERRORS:
        from torrentpy import errors

        return getattr(errors, name)
    if name in __all__:
        from torrentpy import metainfo

        return getattr(metainfo, name)
    raise AttributeError(f"module 'torrentpy' has no attribute {name!r}")
