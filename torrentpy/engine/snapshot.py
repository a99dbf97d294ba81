"""Immutable views of the engine's state, built by the engine and rendered by UIs.

A UI never touches live engine objects: it calls ``Controller.snapshot()`` and renders what comes back,
so rendering can happen at any moment without locks and a slow frame cannot corrupt a download.
All byte counts are payload bytes; rates are bytes per second.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = [
    "PIECE_DOWNLOADING",
    "PIECE_HAVE",
    "PIECE_MISSING",
    "TORRENT_STATES",
    "Controller",
    "FileSnapshot",
    "PeerSnapshot",
    "SessionSnapshot",
    "TorrentSnapshot",
    "TrackerSnapshot",
]

# Values of TorrentSnapshot.piece_states, one byte per piece.
PIECE_MISSING = 0
PIECE_HAVE = 1
PIECE_DOWNLOADING = 2

TORRENT_STATES = frozenset(
    {"checking", "downloading", "seeding", "paused", "error", "metadata", "finished"}
)


@dataclass(frozen=True, slots=True)
class PeerSnapshot:
    ip: str
    port: int
    peer_id: bytes
    client: str
    incoming: bool
    am_choking: bool
    am_interested: bool
    peer_choking: bool
    peer_interested: bool
    snubbed: bool
    down_rate_bps: float
    up_rate_bps: float
    downloaded: int
    uploaded: int
    progress: float  # 0..1 of the peer's pieces


@dataclass(frozen=True, slots=True)
class TrackerSnapshot:
    url: str
    tier: int
    status: str
    peers_returned: int
    seeders: int | None
    leechers: int | None
    next_announce_s: float | None
    message: str


@dataclass(frozen=True, slots=True)
class FileSnapshot:
    path: str
    size: int
    done: int  # verified bytes in this file


@dataclass(frozen=True, slots=True)
class TorrentSnapshot:
    info_hash_hex: str
    name: str
    total_size: int
    state: str  # one of TORRENT_STATES
    error: str | None
    progress: float
    done: int
    down_rate_bps: float
    up_rate_bps: float
    downloaded: int  # payload bytes this session
    uploaded: int
    ratio: float
    eta_s: float | None
    peers: int
    seeds: int
    swarm_seeds: int | None
    swarm_leechers: int | None
    piece_states: bytes  # one byte per piece: 0 missing, 1 have, 2 downloading
    availability: bytes  # one byte per piece: peers having it, clamped to 255
    peer_list: tuple[PeerSnapshot, ...]
    trackers: tuple[TrackerSnapshot, ...]
    files: tuple[FileSnapshot, ...]


@dataclass(frozen=True, slots=True)
class SessionSnapshot:
    torrents: tuple[TorrentSnapshot, ...]
    down_rate_bps: float
    up_rate_bps: float
    downloaded: int
    uploaded: int
    peers: int
    listen_port: int
    uptime_s: float


@runtime_checkable
class Controller(Protocol):
    """What a UI may do to a running session; every call returns at once and never blocks on I/O."""

    def snapshot(self) -> SessionSnapshot: ...

    def pause(self, info_hash_hex: str) -> None: ...

    def resume(self, info_hash_hex: str) -> None: ...

    def request_stop(self) -> None: ...
