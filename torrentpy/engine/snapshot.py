"""Immutable views of the engine's state, built by the engine and rendered by UIs.

A UI never touches live engine objects: it calls ``Controller.snapshot()`` and renders what comes back,
so rendering can happen at any moment without locks and a slow frame cannot corrupt a download.
All byte counts are payload bytes; rates are bytes per second.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from torrentpy.engine.sources import SOURCES
from torrentpy.engine.state import TorrentState

if TYPE_CHECKING:
    from torrentpy.engine.accounting import RateMeter
    from torrentpy.engine.disk import TorrentDisk
    from torrentpy.engine.peer import Peer
    from torrentpy.engine.picker import PiecePicker
    from torrentpy.engine.selection import FileSelection
    from torrentpy.engine.swarm import Swarm
    from torrentpy.metainfo import Metainfo

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
    "peer_snapshots",
    "sum_found",
    "torrent_snapshot",
    "tracker_snapshots",
]

# Values of TorrentSnapshot.piece_states, one byte per piece.
PIECE_MISSING = 0
PIECE_HAVE = 1
PIECE_DOWNLOADING = 2

TORRENT_STATES = frozenset(str(s) for s in TorrentState)


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
    source: str = ""  # where we learned of it: "tracker", "dht", "pex", "incoming", "manual", "magnet", …


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
    wanted: bool = True
    priority: int = 0  # Transmission's: -1 low, 0 normal, 1 high

    @property
    def bytes_completed(self) -> int:
        return self.done


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
    # (source, distinct addresses it named this session), in engine.sources.SOURCES order, sources that
    # found nothing left out.
    peers_found: tuple[tuple[str, int], ...] = ()
    size_when_done: int = 0  # bytes of the wanted pieces (total_size unless files are deselected)
    sequential: bool = False


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
    peers_found: tuple[tuple[str, int], ...] = ()  # summed over the torrents, as TorrentSnapshot's
    dht_nodes: int | None = None  # nodes in the DHT routing table; None when the DHT is not running


def sum_found(per_torrent: Iterable[tuple[tuple[str, int], ...]]) -> tuple[tuple[str, int], ...]:
    """Add up `peers_found` of several torrents, keeping the order sources first appear in."""
    total: dict[str, int] = {}
    for found in per_torrent:
        for source, count in found:
            total[source] = total.get(source, 0) + count
    return tuple(total.items())


@runtime_checkable
class Controller(Protocol):
    """What a UI may do to a running session; every call returns at once and never blocks on I/O.

    A controller may also offer ``remove(info_hash_hex)`` and ``set_file_wanted(info_hash_hex, index,
    wanted)``; the dashboard offers their keys only when it does."""

    def snapshot(self) -> SessionSnapshot: ...

    def pause(self, info_hash_hex: str) -> None: ...

    def resume(self, info_hash_hex: str) -> None: ...

    def request_stop(self) -> None: ...


class SnapshotSource(Protocol):
    """What the snapshot of a torrent is built from (engine.torrent.Torrent provides it)."""

    @property
    def info_hash(self) -> bytes: ...
    @property
    def name(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def paused(self) -> bool: ...
    @property
    def error(self) -> str | None: ...
    @property
    def meta(self) -> Metainfo | None: ...
    @property
    def picker(self) -> PiecePicker | None: ...
    @property
    def disk(self) -> TorrentDisk:
        """The files, and how many pieces the check has covered so far while the state is "checking"."""
    @property
    def down(self) -> RateMeter: ...
    @property
    def up(self) -> RateMeter: ...
    @property
    def downloaded(self) -> int: ...
    @property
    def uploaded(self) -> int: ...
    @property
    def peers(self) -> Mapping[tuple[str, int], Peer]: ...
    @property
    def tiers(self) -> Any:
        """The torrent's net.tiers.TrackerTiers, or None without trackers."""
    @property
    def swarm(self) -> Swarm: ...
    @property
    def selection(self) -> FileSelection: ...


def torrent_snapshot(t: SnapshotSource, now: float) -> TorrentSnapshot:
    meta, picker = t.meta, t.picker
    total = meta.total_length if meta else 0
    if picker is not None and meta is not None:
        have = picker.have
        wanted = picker.wanted_bytes()
        done = wanted - int(picker.left_bytes())
        states = bytearray(have.to_flags())
        for i in picker.downloading_pieces():
            if not have[i]:
                states[i] = PIECE_DOWNLOADING
        avail = picker.availability.clamped_bytes()
    else:
        have, done, states, avail, wanted = None, 0, bytearray(), b"", total
    # Like Transmission's percentDone: of what was asked for, with files deselected.
    progress = done / wanted if wanted else (1.0 if picker is not None and total else 0.0)
    if t.state == "checking" and meta is not None:
        progress = t.disk.check_progress / max(1, meta.num_pieces)
    down_rate = t.down.rate(now)
    eta = (wanted - done) / down_rate if down_rate > 0 and wanted > done else None
    state = "paused" if t.paused else t.state
    peer_list = peer_snapshots(t, now)
    trackers = tracker_snapshots(t, now)
    swarm_seeds = max((tr.seeders for tr in trackers if tr.seeders is not None), default=None)
    swarm_leechers = max((tr.leechers for tr in trackers if tr.leechers is not None), default=None)
    files: tuple[FileSnapshot, ...] = ()
    layout = t.disk.storage.layout if t.disk.storage is not None else None
    if meta is not None and layout is not None and have is not None:
        done_per_file = layout.file_done_bytes(have)
        choices = t.selection.choices() if t.selection.bound else []
        files = tuple(
            FileSnapshot(path="/".join(f.path), size=f.length, done=d,
                         wanted=choices[k].wanted if choices else True,
                         priority=choices[k].priority if choices else 0)
            for k, (f, d) in enumerate((f, d) for f, d in zip(meta.files, done_per_file, strict=False)
                                       if not f.padding)
        )
    return TorrentSnapshot(
        info_hash_hex=t.info_hash.hex(), name=t.name, total_size=total, state=state, error=t.error,
        progress=progress, done=done, down_rate_bps=down_rate, up_rate_bps=t.up.rate(now),
        downloaded=t.downloaded, uploaded=t.uploaded,
        ratio=t.uploaded / total if total else 0.0, eta_s=eta,
        peers=len(t.peers), seeds=sum(1 for p in t.peers.values() if p.is_seed),
        swarm_seeds=swarm_seeds, swarm_leechers=swarm_leechers, piece_states=bytes(states),
        availability=avail, peer_list=peer_list, trackers=trackers, files=files,
        peers_found=_found(t.swarm),
        size_when_done=wanted, sequential=t.selection.sequential,
    )


# The parts of a snapshot a caller may want alone: the RPC's torrent-get builds only what its fields need.


def peer_snapshots(t: SnapshotSource, now: float) -> tuple[PeerSnapshot, ...]:
    return tuple(
        PeerSnapshot(
            ip=p.addr[0], port=p.addr[1], peer_id=p.conn.peer_id or b"", client=p.client,
            incoming=p.link.incoming, am_choking=p.conn.am_choking, am_interested=p.conn.am_interested,
            peer_choking=p.conn.peer_choking, peer_interested=p.conn.peer_interested, snubbed=p.snubbed,
            down_rate_bps=p.down.rate(now), up_rate_bps=p.up.rate(now), downloaded=p.downloaded,
            uploaded=p.uploaded,
            progress=(p.bitfield.count() / len(p.bitfield)) if p.bitfield is not None and len(p.bitfield) else 0.0,
            source=p.source,
        )
        for p in t.peers.values()
    )


def tracker_snapshots(t: SnapshotSource, now: float) -> tuple[TrackerSnapshot, ...]:
    if t.tiers is None:
        return ()
    return tuple(
        TrackerSnapshot(
            url=tr.url, tier=tr.tier, status=tr.status, peers_returned=tr.peers_returned,
            seeders=tr.seeders, leechers=tr.leechers,
            next_announce_s=(tr.next_announce_at - now) if tr.next_announce_at is not None else None,
            message=tr.message or tr.last_error or "",
        )
        for tr in t.tiers.trackers
    )


def _found(swarm: Swarm) -> tuple[tuple[str, int], ...]:
    found = swarm.sources.found
    return tuple((source, found[source]) for source in SOURCES if found[source])
