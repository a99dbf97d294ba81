"""Alerts: what the engine tells its front ends, one frozen dataclass per kind (as ``protocol.events``
does for the wire). Listeners get these objects; ``as_dict()`` is the ``--json`` record's shape,
``{"event": kind, "torrent": name, "info_hash": hex, **fields}``, keys in that order.

A torrent's alerts are built without saying whose they are: ``Torrent.emit`` stamps the torrent's name
and info-hash on them, so code that moved out of ``Torrent`` reports with ``torrent.emit(HashFailed(…))``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = [
    "Alert",
    "Checking",
    "Completed",
    "Failed",
    "Finished",
    "HashFailed",
    "Listening",
    "MetadataReceived",
    "PeerBanned",
    "PeerError",
    "Resumed",
    "TorrentAlert",
    "TrackerError",
    "TrackerWarning",
]


def _plain(value: Any) -> Any:
    # Alerts hold tuples so they stay immutable; the records they stand for always held lists.
    return [_plain(v) for v in value] if isinstance(value, tuple) else value


@dataclass(frozen=True, slots=True)
class Alert:
    """Base of every alert; ``kind`` is the record's ``"event"`` name."""

    kind: ClassVar[str] = ""
    # Fields left out of ``as_dict`` when None, for kinds whose record has that key only sometimes.
    optional: ClassVar[frozenset[str]] = frozenset()

    def as_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {"event": self.kind}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None and f.name in self.optional:
                continue
            record[f.name] = _plain(value)
        return record


@dataclass(frozen=True, slots=True)
class TorrentAlert(Alert):
    """An alert about one torrent; ``Torrent.emit`` fills in which (keyword-only, so subclasses' own
    fields stay positional)."""

    torrent: str = field(default="", kw_only=True)
    info_hash: str = field(default="", kw_only=True)

    def about(self, torrent: str, info_hash: str) -> TorrentAlert:
        return dataclasses.replace(self, torrent=torrent, info_hash=info_hash)


@dataclass(frozen=True, slots=True)
class Listening(Alert):
    kind: ClassVar[str] = "listening"
    port: int


@dataclass(frozen=True, slots=True)
class Failed(TorrentAlert):
    """The torrent stopped with an error (its record's kind is ``error``)."""

    kind: ClassVar[str] = "error"
    message: str


@dataclass(frozen=True, slots=True)
class Checking(TorrentAlert):
    """Hash-checking data on disk: all of it (``pieces`` None), or the pieces a resume file did not vouch for."""

    kind: ClassVar[str] = "checking"
    optional: ClassVar[frozenset[str]] = frozenset({"pieces"})
    pieces: int | None = None


@dataclass(frozen=True, slots=True)
class Resumed(TorrentAlert):
    kind: ClassVar[str] = "resumed"
    pieces: int
    total: int


@dataclass(frozen=True, slots=True)
class TrackerError(TorrentAlert):
    kind: ClassVar[str] = "tracker_error"
    message: str


@dataclass(frozen=True, slots=True)
class TrackerWarning(TorrentAlert):
    kind: ClassVar[str] = "tracker_warning"
    message: str


@dataclass(frozen=True, slots=True)
class PeerBanned(TorrentAlert):
    kind: ClassVar[str] = "peer_banned"
    peer: str  # "ip:port"
    reason: str


@dataclass(frozen=True, slots=True)
class PeerError(TorrentAlert):
    kind: ClassVar[str] = "peer_error"
    peer: str
    reason: str


@dataclass(frozen=True, slots=True)
class HashFailed(TorrentAlert):
    kind: ClassVar[str] = "hash_failed"
    piece: int
    peers: tuple[str, ...]  # "ip:port" of every peer that sent a block of it


@dataclass(frozen=True, slots=True)
class Completed(TorrentAlert):
    """Every wanted piece is verified and written."""

    kind: ClassVar[str] = "completed"
    downloaded_pieces: int
    # {"peer": "ip:port", "client": name, "downloaded": bytes} per peer, largest first.
    peers: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class Finished(TorrentAlert):
    """Complete and the seeding goal met: the torrent is done with the swarm."""

    kind: ClassVar[str] = "finished"


@dataclass(frozen=True, slots=True)
class MetadataReceived(TorrentAlert):
    kind: ClassVar[str] = "metadata_received"
    name: str
