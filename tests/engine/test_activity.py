"""engine/activity.py: the recently active torrents are read from the tail, newest first; a session marks
the torrents whose state changed (alerts), that have peers or announce, and not the ones asleep."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.engine.many import running, session_for, tiny_torrents
from torrentpy.engine.activity import RecentActivity


def test_since_returns_the_keys_touched_in_the_window_newest_first() -> None:
    log: RecentActivity[str] = RecentActivity()
    for key, at in (("a", 1.0), ("b", 2.0), ("c", 3.0)):
        log.touch(key, at)
    assert list(log.since(2.0)) == ["c", "b"]
    log.touch("a", 4.0)  # touched again: now the newest
    assert list(log.since(2.5)) == ["a", "c"]
    assert log.last("a") == 4.0 and log.last("zz") is None
    log.forget("c")
    assert list(log.since(0.0)) == ["a", "b"]
    log.prune(3.0)
    assert list(log.since(0.0)) == ["a"] and len(log) == 1


def test_an_older_clock_reading_keeps_the_order() -> None:
    log: RecentActivity[str] = RecentActivity()
    log.touch("a", 10.0)
    log.touch("b", 9.5)  # read a little earlier by its caller: counted as now, so "a" stays reachable
    assert list(log.since(10.0)) == ["b", "a"]


def test_reading_the_window_does_not_walk_the_old_keys() -> None:
    log: RecentActivity[int] = RecentActivity()
    for i in range(100_000):
        log.touch(i, float(i))
    seen = 0

    class Counting(dict):  # type: ignore[type-arg]
        def __getitem__(self, key: int) -> float:
            nonlocal seen
            seen += 1
            return float(super().__getitem__(key))

    log._last = Counting(log._last)
    assert list(log.since(99_997.0)) == [99_999, 99_998, 99_997]
    assert seen <= 4


async def test_a_session_reports_what_changed_and_not_what_slept(tmp_path: Path) -> None:
    session = session_for(tmp_path)
    async with running(session, tiny_torrents(tmp_path, 20)):
        # Just started: every torrent was checked and completed (alerts), as Transmission's start date.
        assert session.recently_active(window_s=60) == set(session.torrents)
        await asyncio.sleep(0.6)
        assert session.recently_active(window_s=0.5) == set()  # idle seeds change nothing
        failing, announcing, *_ = session.torrents.values()
        failing.fail("disk gone")  # an alert
        announcing.announcing = 1  # an announce under way: the tick marks it while it lasts
        session.wake_torrent(announcing)
        session.wake_event.set()
        for _ in range(100):
            if announcing.info_hash in session.recently_active(window_s=0.5):
                break
            await asyncio.sleep(0.02)
        assert session.recently_active(window_s=0.5) == {failing.info_hash, announcing.info_hash}
        announcing.announcing = 0
