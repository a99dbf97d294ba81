"""Errors a user can act on. Every message is one line: the CLI prints it as is."""


class TorrentError(Exception):
    """Base of every error torrentpy reports to a user."""


class BencodeError(TorrentError):
    """Data is not valid bencoding, or exceeds a parser limit."""


class MetainfoError(TorrentError):
    """A .torrent file or magnet link is invalid or unsupported."""


class StorageError(TorrentError):
    """Reading or writing the download's files failed (full disk, permissions …)."""


class DiskFullError(StorageError):
    """A write failed for want of space; the message says how much room the torrent needs."""


class TrackerError(TorrentError):
    """A tracker could not be reached or answered with a failure."""


class UsageError(TorrentError):
    """A command-line argument is invalid."""


# Said whenever memory runs out: what a user most needs to hear is that nothing verified was lost.
OUT_OF_MEMORY_HINT = "verified pieces are kept: free some memory (or raise `ulimit -v`) and run again"


def out_of_memory_message(what: str = "") -> str:
    """The one line for a MemoryError: what could not be had, if known, and that no verified piece is lost."""
    return f"out of memory{f' ({what})' if what else ''}; {OUT_OF_MEMORY_HINT}"
