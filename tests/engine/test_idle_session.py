"""A session of 1,000 seeding torrents with no peers costs (almost) nothing while idle: it does not tick
each of them every second, and one torrent's error never stops the others (engine/idle.py)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.engine.many import running, session_for, tiny_torrents
from torrentpy.engine.torrent import Torrent

pytestmark = pytest.mark.timeout(180)

COUNT = 1000
WINDOW_S = 3.0
# Ticking every idle torrent every second (what the session used to do) is COUNT ticks a second and,
# at ~20 µs a tick, 2% of a core for 1,000 torrents; a sleeping torrent costs nothing until it is due.
MAX_TICKS_PER_S = 10
MAX_CPU_PER_S = 0.01


async def test_idle_seeding_torrents_are_not_ticked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    metas = tiny_torrents(tmp_path, COUNT)
    ticks = 0
    real_tick = Torrent.tick

    def counting_tick(self: Torrent, now: float) -> None:
        nonlocal ticks
        ticks += 1
        real_tick(self, now)

    monkeypatch.setattr(Torrent, "tick", counting_tick)
    session = session_for(tmp_path)
    async with running(session, metas):
        await asyncio.sleep(1.5)  # the first ticks after start-up put every torrent to sleep
        ticks = 0
        cpu, wall = time.process_time(), time.monotonic()
        await asyncio.sleep(WINDOW_S)
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        assert all(t.state == "seeding" for t in session.torrents.values())
    assert ticks / wall < MAX_TICKS_PER_S, f"{ticks} ticks in {wall:.1f} s"
    assert cpu / wall < MAX_CPU_PER_S, f"{cpu / wall:.1%} of a core while idle"


async def test_new_addresses_wake_an_idle_torrent(tmp_path: Path) -> None:
    session = session_for(tmp_path)
    async with running(session, tiny_torrents(tmp_path, 3)):
        await asyncio.sleep(1.5)
        torrent = next(iter(session.torrents.values()))
        assert torrent in session.schedule.idle
        dialled: list[tuple[str, int]] = []

        async def connect(owner: object, addr: tuple[str, int]) -> None:
            dialled.append(addr)
            torrent.connect_failed(addr, "refused")

        session.connect = connect  # type: ignore[method-assign]
        torrent.add_candidates([("127.0.0.2", 7000)])
        assert torrent in session.schedule.busy
        for _ in range(150):  # the next tick, within a second
            if dialled:
                break
            await asyncio.sleep(0.02)
        assert dialled == [("127.0.0.2", 7000)]
        await asyncio.sleep(1.2)
        # Asleep again, at the latest until the failed address may be retried (RETRY_AFTER_DIAL_S).
        assert session.schedule.idle[torrent] <= torrent.candidates[("127.0.0.2", 7000)]


async def test_one_torrents_error_does_not_stop_the_others(tmp_path: Path) -> None:
    session = session_for(tmp_path)
    async with running(session, tiny_torrents(tmp_path, 3)):
        bad, *good = session.torrents.values()

        def broken(now: float) -> None:
            raise RuntimeError("boom")

        bad.tick = broken  # type: ignore[method-assign]
        session.wake_torrent(bad)
        session.wake_event.set()
        for _ in range(100):
            if bad.state == "error":
                break
            await asyncio.sleep(0.02)
        assert bad.state == "error" and bad.error is not None and "boom" in bad.error
        assert not session.stop_event.is_set()
        assert all(t.state == "seeding" for t in good)


def test_connection_cap_follows_the_descriptor_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    import resource

    from torrentpy.engine.session import connection_cap

    for soft, cap in ((64, 16), (256, 192), (1024, 400), (1_048_576, 400), (16, 8)):
        monkeypatch.setattr(resource, "getrlimit", lambda which, soft=soft: (soft, 1_048_576))
        assert connection_cap(400) == cap, soft
    monkeypatch.setattr(resource, "getrlimit", lambda which: (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    assert connection_cap(400) == 400
