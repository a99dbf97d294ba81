"""Hand-built snapshots for the dashboard tests, the fake dashboard script and benchmarks."""

from __future__ import annotations

import random

from torrentpy.clients import client_name
from torrentpy.engine.snapshot import (
    FileSnapshot,
    PeerSnapshot,
    SessionSnapshot,
    TorrentSnapshot,
    TrackerSnapshot,
    sum_found,
)

PEER_IDS = (
    b"-LT2010-abcdefghijkl",
    b"-TR3000-abcdefghijkl",
    b"-qB4520-abcdefghijkl",
    b"A2-1-36-0-abcdefghij",
    b"-DE211s-abcdefghijkl",
    b"-UT355W-abcdefghijkl",
)


# make_peer(i)'s source, by i: incoming peers (every third) dialled us; the others came from these in turn.
SOURCES = ("tracker", "pex", "dht", "manual")


def make_peer(
    i: int, *, peer_id: bytes | None = None, ip: str | None = None, **overrides: object
) -> PeerSnapshot:
    pid = peer_id if peer_id is not None else PEER_IDS[i % len(PEER_IDS)]
    fields: dict[str, object] = dict(
        ip=ip if ip is not None else f"127.0.0.{1 + i % 250}",
        port=6881 + i,
        peer_id=pid,
        client=client_name(pid),
        incoming=i % 3 == 0,
        am_choking=i % 2 == 1,
        am_interested=True,
        peer_choking=i % 4 == 3,
        peer_interested=i % 2 == 0,
        snubbed=i % 7 == 6,
        down_rate_bps=float(100_000 * (50 - i % 50)),
        up_rate_bps=float(2_000 * (i % 5)),
        downloaded=1_000_000 * (i + 1),
        uploaded=10_000 * i,
        progress=(i % 10) / 9,
        source="incoming" if i % 3 == 0 else SOURCES[i % len(SOURCES)],
    )
    fields.update(overrides)
    return PeerSnapshot(**fields)  # type: ignore[arg-type]


def make_torrent(
    *,
    name: str = "ubuntu-24.04-desktop-amd64.iso",
    info_hash_hex: str = "aa" * 20,
    pieces: int = 200,
    have_fraction: float = 0.42,
    peers: int = 5,
    state: str = "downloading",
    files: tuple[FileSnapshot, ...] | None = None,
    trackers: tuple[TrackerSnapshot, ...] | None = None,
    seed: int = 1,
    **overrides: object,
) -> TorrentSnapshot:
    rng = random.Random(seed)
    piece_length = 256 * 1024
    total = pieces * piece_length
    have = int(pieces * have_fraction)
    states = bytearray(pieces)
    for i in rng.sample(range(pieces), have):
        states[i] = 1
    missing = [i for i in range(pieces) if states[i] == 0]
    for i in missing[: min(8, len(missing))]:
        states[i] = 2
    availability = bytes(rng.choice((0, 1, 2, 3, 5, 9)) for _ in range(pieces))
    peer_list = tuple(make_peer(i) for i in range(peers))
    if files is None:
        files = (
            FileSnapshot(
                path=f"{name}/disc/{name}.bin", size=total - 4096, done=int((total - 4096) * have_fraction)
            ),
            FileSnapshot(path=f"{name}/README.txt", size=4096, done=4096),
        )
    if trackers is None:
        trackers = (
            TrackerSnapshot(
                url="http://127.0.0.1:6969/announce",
                tier=0,
                status="working",
                peers_returned=peers,
                seeders=3,
                leechers=12,
                next_announce_s=1742.0,
                message="",
            ),
            TrackerSnapshot(
                url="udp://127.0.0.1:6970/announce",
                tier=1,
                status="error",
                peers_returned=0,
                seeders=None,
                leechers=None,
                next_announce_s=None,
                message="connection refused",
            ),
        )
    done = have * piece_length
    fields: dict[str, object] = dict(
        info_hash_hex=info_hash_hex,
        name=name,
        total_size=total,
        state=state,
        error=None,
        progress=have / pieces if pieces else 0.0,
        done=done,
        down_rate_bps=12.3 * 1024 * 1024,
        up_rate_bps=0.0,
        downloaded=done,
        uploaded=done // 4,
        ratio=0.25,
        eta_s=754.0,
        peers=peers,
        seeds=min(peers, 2),
        swarm_seeds=3,
        swarm_leechers=12,
        piece_states=bytes(states),
        availability=availability,
        peer_list=peer_list,
        trackers=trackers,
        files=files,
        # Every connected peer's source found it, plus a few addresses never connected.
        peers_found=sum_found([tuple((p.source, 1) for p in peer_list), (("tracker", 7), ("pex", 3))]),
    )
    fields.update(overrides)
    return TorrentSnapshot(**fields)  # type: ignore[arg-type]


def make_session(*torrents: TorrentSnapshot, **overrides: object) -> SessionSnapshot:
    if not torrents:
        torrents = (make_torrent(),)
    fields: dict[str, object] = dict(
        torrents=tuple(torrents),
        down_rate_bps=sum(t.down_rate_bps for t in torrents),
        up_rate_bps=sum(t.up_rate_bps for t in torrents),
        downloaded=sum(t.downloaded for t in torrents),
        uploaded=sum(t.uploaded for t in torrents),
        peers=sum(t.peers for t in torrents),
        listen_port=6881,
        uptime_s=3723.0,
        peers_found=sum_found(t.peers_found for t in torrents),
    )
    fields.update(overrides)
    return SessionSnapshot(**fields)  # type: ignore[arg-type]
