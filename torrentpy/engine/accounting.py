"""Byte counters and transfer rates over a sliding window, with the clock passed in.

``RateMeter`` keeps a fixed ring of half-second buckets, so its memory does not grow with traffic and
``rate`` is O(1).
"""

from __future__ import annotations

import math

__all__ = ["BUCKET_S", "RateMeter"]

# Half a second is fine enough for a dashboard that refreshes a few times per second and coarse
# enough that a 5 s window is only ten buckets.
BUCKET_S = 0.5


class RateMeter:
    """Bytes per second over the last ``window_s`` seconds (bucketed per ``BUCKET_S``), plus a total."""

    __slots__ = ("_buckets", "_current", "_end", "_first", "_n", "_sum", "total", "window_s")

    def __init__(self, window_s: float = 5.0) -> None:
        if not window_s >= BUCKET_S:
            raise ValueError(f"rate window must be at least {BUCKET_S} s")
        self.window_s = window_s
        self._n = max(1, round(window_s / BUCKET_S))
        self._buckets = [0] * self._n
        self._current: int | None = None  # bucket number (time // BUCKET_S) of the newest slot
        self._first: float | None = None  # time of the first sample, so a young meter is not diluted
        self._end = -math.inf  # add() before this time goes to the newest bucket as it stands
        self._sum = 0
        self.total = 0

    def _advance(self, now: float) -> int:
        bucket = math.floor(now / BUCKET_S)
        current = self._current
        if current is None:
            self._current = bucket
        elif bucket > current:
            steps = bucket - current
            if steps >= self._n:
                self._buckets = [0] * self._n
                self._sum = 0
            else:
                for k in range(current + 1, bucket + 1):
                    slot = k % self._n
                    self._sum -= self._buckets[slot]
                    self._buckets[slot] = 0
            self._current = bucket
        # A sample older than the newest bucket (clock jitter) is counted in the newest one.
        return self._current  # type: ignore[return-value]

    def add(self, n: int, now: float) -> None:
        if now < self._end:
            # Called per received block: within the newest bucket (or older: clock jitter, counted
            # in the newest as _advance would) there is nothing to advance.
            self._buckets[self._current % self._n] += n  # type: ignore[operator]
            self._sum += n
            self.total += n
            return
        bucket = self._advance(now)
        self._end = (bucket + 1) * BUCKET_S
        if self._first is None:
            self._first = now
        self._buckets[bucket % self._n] += n
        self._sum += n
        self.total += n

    def rate(self, now: float) -> float:
        if self._current is None or self._first is None:
            return 0.0
        bucket = self._advance(now)
        # The window covers the full older buckets plus the elapsed part of the newest one.
        span = (self._n - 1) * BUCKET_S + (now - bucket * BUCKET_S)
        span = min(span, now - self._first)
        return self._sum / max(span, BUCKET_S)

