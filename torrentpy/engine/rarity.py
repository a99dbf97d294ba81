"""Pieces nobody has started, bucketed by availability: rarest first without ranking the whole torrent.

Ranking every piece on each pick made the picker's cost per block linear in the piece count (2 ms a block
at 100,000 pieces). libtorrent's piece_picker keeps its pieces sorted by priority and availability with
an index into that order; this is the same idea with one bucket per availability count. A HAVE moves one
piece up a bucket, starting a piece takes it out and abandoning it puts it back, each O(1); a pick walks
the buckets rarest first and usually finds the peer's pieces in a few steps.

A peer joining or leaving changes the count of every piece it has, which is O(n) whatever we do; the
index is then rebuilt lazily, once, at the next pick. A peer that has almost nothing in the rare buckets
would make the walk long: past a budget the walk gives up and the picker ranks the old way.
"""

from __future__ import annotations

import random

from torrentpy._core import Availability, Bitfield

__all__ = ["RarityIndex", "random_startable"]

# How many bucket entries one pick may test against the peer's bitfield before giving up (the caller
# then ranks the whole torrent). A peer with a fair share of the swarm's pieces needs a few dozen.
SCAN_BUDGET = 1024
# Random draws one random-first pick may make; each succeeds with the odds that a piece is the peer's and
# not started, so only a peer with little we need runs out (the caller then lists its pieces).
SAMPLE_PROBES = 256


def random_startable(peer: Bitfield, busy: Bitfield, wanted: int, rng: random.Random) -> list[int] | None:
    """``wanted`` distinct pieces ``peer`` has and ``busy`` lacks, uniformly at random (what
    ``rng.sample`` over the list of them gives, without building the list); None when the draws ran out."""
    n = len(busy)
    out: list[int] = []
    if wanted <= 0 or not n:
        return out
    for _ in range(SAMPLE_PROBES):
        i = rng.randrange(n)
        if peer.get(i) and not busy.get(i) and i not in out:
            out.append(i)
            if len(out) >= wanted:
                return out
    return None


class RarityIndex:
    """The startable pieces (neither had, skipped nor partial) by availability count.

    ``_buckets[c]`` lists the pieces with count ``c`` in no particular order; ``_level[i]`` is the bucket
    piece ``i`` is filed in (-1 when it is not startable) and ``_pos[i]`` its place there, so removal is
    a swap with the bucket's last entry."""

    __slots__ = ("_buckets", "_level", "_pos", "_stale")

    def __init__(self, num_pieces: int) -> None:
        self._buckets: list[list[int]] = []
        self._level = [-1] * num_pieces
        self._pos = [0] * num_pieces
        self._stale = True

    def invalidate(self) -> None:
        """Many counts changed (a peer came or went) or the startable set did (a file selection)."""
        self._stale = True

    def _rebuild(self, availability: Availability, busy: Bitfield) -> None:
        self._buckets, self._level, self._pos = availability.bucket_index(busy)
        self._stale = False

    def add(self, index: int, count: int) -> None:
        """``index`` became startable (released, or its hash failed) with ``count`` peers having it."""
        if self._stale or self._level[index] >= 0:
            return
        buckets = self._buckets
        while len(buckets) <= count:
            buckets.append([])
        bucket = buckets[count]
        self._level[index] = count
        self._pos[index] = len(bucket)
        bucket.append(index)

    def discard(self, index: int) -> None:
        """``index`` is no longer startable (started, had, or skipped)."""
        if self._stale:
            return
        level = self._level[index]
        if level < 0:
            return
        bucket = self._buckets[level]
        p = self._pos[index]
        last = bucket.pop()
        if last != index:
            bucket[p] = last
            self._pos[last] = p
        self._level[index] = -1

    def recount(self, index: int, count: int) -> None:
        """One more peer has ``index`` (a HAVE)."""
        if not self._stale and self._level[index] >= 0:
            self.discard(index)
            self.add(index, count)

    def rarest(self, peer: Bitfield, wanted: int, rng: random.Random, availability: Availability,
               busy: Bitfield) -> list[int] | None:
        """Up to ``wanted`` startable pieces ``peer`` has, rarest first, ties in random order; None when
        the walk ran past SCAN_BUDGET entries (then rank with ``Availability.rarest``)."""
        if self._stale:
            self._rebuild(availability, busy)
        out: list[int] = []
        budget = SCAN_BUDGET
        has = peer.get
        # Bucket 0 is never the peer's: its own bitfield counts towards every piece it has.
        for bucket in self._buckets[1:]:
            n = len(bucket)
            if not n:
                continue
            start = rng.randrange(n)
            for j in range(min(n, budget)):
                i = bucket[start + j - n]  # start..n-1, then 0..start-1, by negative indexing
                if has(i):
                    out.append(i)
                    if len(out) >= wanted:
                        return out
            budget -= n
            if budget < 0:
                return None
        return out

    def check(self, availability: Availability, busy: Bitfield) -> None:
        """Raise AssertionError unless the index files exactly the startable pieces at their counts."""
        if self._stale:
            return
        for i, taken in enumerate(busy.to_flags()):
            level = self._level[i]
            if taken:
                assert level == -1, f"busy piece {i} is filed as startable"
            else:
                assert level == availability[i], f"piece {i} filed at {level}, has {availability[i]}"
                assert self._buckets[level][self._pos[i]] == i
        assert sum(map(len, self._buckets)) == len(busy) - busy.count()
