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
