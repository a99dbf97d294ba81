"""torrentpy/queueing.py alone: which torrents wait, and how queue-move-* reorders."""

from __future__ import annotations

import pytest

from torrentpy.queueing import QueueItem, QueueLimits, TorrentQueue

A, B, C, D = b"a" * 20, b"b" * 20, b"c" * 20, b"d" * 20


def queue_of(*hashes: bytes) -> TorrentQueue:
    q = TorrentQueue()
    for h in hashes:
        q.place(h)
    return q


def test_the_first_n_of_each_kind_run_in_queue_order() -> None:
    q = queue_of(A, B, C, D)
    items = {A: QueueItem(True, False), B: QueueItem(False, False), C: QueueItem(True, False),
             D: QueueItem(True, True)}
    assert q.plan(items, QueueLimits(True, 1, True, 0)) == {C, D}  # B is stopped: it takes no slot
    assert q.plan(items, QueueLimits(False, 1, True, 1)) == set()
    q.forced.add(C)
    assert q.plan(items, QueueLimits(True, 1, False, 0)) == set()


def test_moves_keep_the_moved_torrents_in_their_order() -> None:
    q = queue_of(A, B, C, D)
    q.move([C, D], "top")
    assert q.order == [C, D, A, B]
    q.move([C, A], "bottom")
    assert q.order == [D, B, C, A]
    q.move([B, C], "up")
    assert q.order == [B, C, D, A]
    q.move([B, C], "down")
    assert q.order == [D, B, C, A]
    q.move([A], "down")  # already last
    assert q.order == [D, B, C, A]
    q.remove(B)
    assert q.position(C) == 1


def test_positions_follow_every_change() -> None:
    q = queue_of(A, B, C)
    assert [q.position(h) for h in (A, B, C)] == [0, 1, 2] and B in q and D not in q
    q.place(D, 1)
    assert q.order == [A, D, B, C] and [q.position(h) for h in q.order] == [0, 1, 2, 3]
    q.place(A)  # already queued: moved last
    assert q.order == [D, B, C, A] and q.position(A) == 3
    q.sort(key=lambda h: h)
    assert q.order == [A, B, C, D] and q.position(D) == 3
    q.move([D], "up")
    assert q.position(D) == 2 and q.position(C) == 3
    q.remove(A)
    assert A not in q and q.position(B) == 0 and len(q) == 3


def test_placing_many_torrents_is_linear() -> None:
    import time

    hashes = [i.to_bytes(20, "big") for i in range(20_000)]
    started = time.perf_counter()
    q = queue_of(*hashes)
    positions = [q.position(h) for h in hashes]
    # A list scan per torrent (what placing and queuePosition used to cost) takes seconds at this size.
    assert time.perf_counter() - started < 0.5
    assert positions == list(range(20_000))


def test_a_failing_queue_pass_is_logged_and_the_next_one_still_runs(monkeypatch: pytest.MonkeyPatch,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    """The daemon's queue task outlives a pass that raises: before, the first exception ended it for good."""
    import asyncio

    from torrentpy.rpc import run

    monkeypatch.setattr(run, "QUEUE_INTERVAL_S", 0.001)

    class Daemon:
        calls = 0

        def apply_queue(self) -> None:
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("one bad pass")

    daemon = Daemon()

    async def main() -> None:
        task = asyncio.ensure_future(run._keep_queue(daemon))  # type: ignore[arg-type]
        for _ in range(500):
            await asyncio.sleep(0.002)
            if daemon.calls >= 3:
                break
        assert not task.done()
        task.cancel()

    asyncio.run(main())
    assert daemon.calls >= 3
    assert "queue pass failed" in caplog.text
