"""torrentpy/queueing.py alone: which torrents wait, and how queue-move-* reorders."""

from __future__ import annotations

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
