"""When each torrent last did something a front end would see change: the answer to Transmission's
`torrent-get ids: "recently-active"` without looking at every torrent.

A session of 10,000 torrents polled every few seconds must not walk all of them per poll. Torrents
are kept in the order they were last active (a dict re-inserted on each touch), so the recently
active ones are the tail: reading them costs O(answer), touching one costs O(1)."""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

__all__ = ["RECENTLY_ACTIVE_S", "RecentActivity"]

# Transmission's RecentlyActiveSeconds (libtransmission/rpcimpl.cc).
RECENTLY_ACTIVE_S = 60.0

K = TypeVar("K", bound=Hashable)


class RecentActivity(Generic[K]):
    """Keys by the time they were last touched, oldest first; times come from one monotonic clock."""

    def __init__(self) -> None:
        self._last: dict[K, float] = {}  # insertion order is touch order: the newest touch is last

    def touch(self, key: K, now: float) -> None:
        last = self._last
        if last:
            now = max(now, last[next(reversed(last))])  # a caller's slightly older `now` keeps the order
            if key in last:
                del last[key]  # re-inserted at the end, so the dict stays ordered by time
        last[key] = now

    def forget(self, key: K) -> None:
        self._last.pop(key, None)

    def last(self, key: K) -> float | None:
        return self._last.get(key)

    def since(self, cutoff: float) -> Iterator[K]:
        """The keys touched at `cutoff` or later, newest first."""
        last = self._last
        for key in reversed(last):
            if last[key] < cutoff:
                return
            yield key

    def prune(self, cutoff: float) -> None:
        """Forget every key last touched before `cutoff` (they are the oldest: the head of the dict)."""
        last = self._last
        stale = []
        for key, when in last.items():
            if when >= cutoff:
                break
            stale.append(key)
        for key in stale:
            del last[key]

    def __len__(self) -> int:
        return len(self._last)
