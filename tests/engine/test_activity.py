"""engine/activity.py: the recently active torrents are read from the tail, newest first."""

from __future__ import annotations

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
