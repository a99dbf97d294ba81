"""Cost of one dashboard frame: a 2000-piece, 50-peer torrent rendered to ANSI text.

At 4 Hz the dashboard spends 4 × (mean frame time) of CPU per second; quote that from the `mean` column.
"""

from __future__ import annotations

import io
import random

import pytest
from rich.console import Console

from torrentpy.clients import client_name
from torrentpy.engine.snapshot import (
    FileSnapshot,
    PeerSnapshot,
    SessionSnapshot,
    TorrentSnapshot,
    TrackerSnapshot,
)
from torrentpy.tui.dashboard import PANELS, Dashboard, ViewState

PIECES = 2000
PEERS = 50
IDS = (b"-LT2010-", b"-TR3000-", b"-qB4520-", b"A2-1-36-0-", b"-DE211s-")


def big_snapshot() -> SessionSnapshot:
    rng = random.Random(7)
    states = bytes(rng.choice((0, 0, 1, 1, 1, 2)) for _ in range(PIECES))
    availability = bytes(rng.randrange(0, 12) for _ in range(PIECES))
    peers = tuple(
        PeerSnapshot(
            ip=f"127.0.{i // 250}.{1 + i % 250}",
            port=40000 + i,
            peer_id=(pid := IDS[i % len(IDS)].ljust(20, b"x")),
            client=client_name(pid),
            incoming=i % 2 == 0,
            am_choking=i % 3 == 0,
            am_interested=True,
            peer_choking=i % 4 == 0,
            peer_interested=i % 5 != 0,
            snubbed=False,
            down_rate_bps=rng.uniform(0, 5e6),
            up_rate_bps=rng.uniform(0, 1e6),
            downloaded=rng.randrange(1 << 30),
            uploaded=rng.randrange(1 << 28),
            progress=rng.random(),
        )
        for i in range(PEERS)
    )
    files = tuple(
        FileSnapshot(path=f"album/track-{i:02d}.flac", size=40 << 20, done=rng.randrange(40 << 20))
        for i in range(40)
    )
    trackers = tuple(
        TrackerSnapshot(
            url=f"http://127.0.0.1:{6969 + i}/announce",
            tier=i,
            status="working",
            peers_returned=50,
            seeders=10,
            leechers=40,
            next_announce_s=1800.0,
            message="",
        )
        for i in range(3)
    )
    torrent = TorrentSnapshot(
        info_hash_hex="ab" * 20,
        name="a-large-torrent-with-a-long-name-" * 3,
        total_size=PIECES << 20,
        state="downloading",
        error=None,
        progress=states.count(1) / PIECES,
        done=states.count(1) << 20,
        down_rate_bps=40e6,
        up_rate_bps=5e6,
        downloaded=1 << 30,
        uploaded=1 << 28,
        ratio=0.25,
        eta_s=600.0,
        peers=PEERS,
        seeds=10,
        swarm_seeds=120,
        swarm_leechers=400,
        piece_states=states,
        availability=availability,
        peer_list=peers,
        trackers=trackers,
        files=files,
    )
    others = tuple(
        TorrentSnapshot(
            **{
                **{f: getattr(torrent, f) for f in TorrentSnapshot.__slots__},  # type: ignore[arg-type]
                "info_hash_hex": f"{i:040x}",
                "name": f"other-{i}",
            }
        )
        for i in range(4)
    )
    return SessionSnapshot(
        torrents=(torrent, *others),
        down_rate_bps=40e6,
        up_rate_bps=5e6,
        downloaded=1 << 30,
        uploaded=1 << 28,
        peers=PEERS,
        listen_port=6881,
        uptime_s=3600.0,
    )


@pytest.mark.parametrize(("width", "height"), [(80, 24), (120, 40)], ids=["80x24", "120x40"])
@pytest.mark.parametrize("panel", PANELS)
def test_render_frame(benchmark, width: int, height: int, panel: str) -> None:
    snapshot = big_snapshot()
    out = io.StringIO()
    console = Console(
        file=out,
        width=width,
        height=height,
        force_terminal=True,
        color_system="truecolor",
        legacy_windows=False,
    )
    view = ViewState(panel=panel)

    def frame() -> None:
        out.seek(0)
        out.truncate()
        console.print(Dashboard(snapshot, view))

    benchmark(frame)
    text = out.getvalue()
    assert "a-large-torrent" in text
    assert text.count("\n") == height
