"""10,000 torrents in one session: start-up time, RSS per torrent, CPU while idle (issue 13).

Tiny single-piece torrents, complete on disk in tmp_path, added to one in-process Session (no DHT, no
tracker, no peer): what is measured is the session's own cost per torrent. TORRENTPY_BENCH_TORRENTS
sets the counts (default 1000,10000)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest

from bench.conftest import goal
from tests.engine.many import running, session_for, tiny_torrents
from tests.procstatus import status_bytes

COUNTS = [int(n) for n in os.environ.get("TORRENTPY_BENCH_TORRENTS", "1000,10000").split(",")]
IDLE_WINDOW_S = 5.0


async def measure(folder: Path, count: int) -> dict[str, float]:
    before = status_bytes("self", "VmRSS")
    metas = tiny_torrents(folder, count)
    session = session_for(folder)
    async with running(session, metas, timeout_s=1200) as startup_s:
        rss = status_bytes("self", "VmRSS") - before
        await asyncio.sleep(2.0)  # the first ticks after start-up put the torrents to sleep
        cpu, wall = time.process_time(), time.monotonic()
        await asyncio.sleep(IDLE_WINDOW_S)
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    return {"startup_s": startup_s, "rss_per_torrent": rss / count, "idle_cpu": cpu / wall}


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("count", COUNTS)
def test_many_idle_torrents(benchmark: Any, tmp_path: Path, count: int) -> None:
    result: dict[str, float] = {}
    benchmark.pedantic(lambda: result.update(asyncio.run(measure(tmp_path, count))), rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    goal(f"{count:,} seeding torrents: start-up to all seeding", f"{result['startup_s']:.1f} s", "(for scale)",
         f"{result['startup_s'] / count * 1e3:.2f} ms a torrent")
    goal(f"{count:,} seeding torrents: RSS per torrent", f"{result['rss_per_torrent'] / 1024:.1f} KiB",
         "(for scale)", "metainfo, session state, file handles")
    goal(f"{count:,} seeding torrents, no peers: CPU while idle", f"{result['idle_cpu']:.2%}", "≈ 0",
         "of one core")
