"""The daemon's queue: at most N torrents downloading and N seeding, the others waiting their turn.

Transmission's model and names: every torrent has a queue position (0 first); when
`download-queue-enabled`, only the first `download-queue-size` torrents (in queue order) that the user
has started and that still need data run, the rest wait ("download wait", status 3); seeds likewise
with `seed-queue-*` ("seed wait", status 5). A torrent started with torrent-start-now skips the
queue and takes no slot. Which torrents wait is decided here; the daemon pauses and resumes them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["QueueItem", "QueueLimits", "TorrentQueue"]


@dataclass(frozen=True, slots=True)
class QueueLimits:
    download_enabled: bool = False
    download_size: int = 5  # Transmission's defaults
    seed_enabled: bool = False
    seed_size: int = 10


@dataclass(frozen=True, slots=True)
class QueueItem:
    wants_to_run: bool  # started by the user, neither failed nor done with seeding
    complete: bool  # has every wanted piece: competes for a seed slot, else a download slot


class TorrentQueue:
    def __init__(self) -> None:
        self._order: list[bytes] = []  # info hashes, queue position = index
        # Position of each torrent, rebuilt after a change that moves others: torrent-get asks every
        # torrent's queuePosition, and a list scan each would cost O(n²) with 10,000 torrents.
        self._positions: dict[bytes, int] = {}
        self.waiting: set[bytes] = set()
        self.forced: set[bytes] = set()  # torrent-start-now: outside the queue

    @property
    def order(self) -> list[bytes]:
        """The queue, position 0 first (a copy would cost O(n) per read: do not change it in place)."""
        return self._order

    @order.setter
    def order(self, order: list[bytes]) -> None:
        self._order = order
        self._positions = {h: i for i, h in enumerate(order)}

    def __contains__(self, info_hash: object) -> bool:
        return info_hash in self._positions

    def __len__(self) -> int:
        return len(self._order)

    def position(self, info_hash: bytes) -> int:
        return self._positions[info_hash]

    def place(self, info_hash: bytes, position: int | None = None) -> None:
        """Put a torrent in the queue: at a saved position (restore), or last (a new torrent)."""
        if position is None and info_hash not in self._positions:
            self._positions[info_hash] = len(self._order)  # O(1): restoring 10,000 torrents places each
            self._order.append(info_hash)
            return
        order = [h for h in self._order if h != info_hash]
        order.insert(len(order) if position is None else max(0, position), info_hash)
        self.order = order

    def remove(self, info_hash: bytes) -> None:
        if info_hash in self._positions:
            self.order = [h for h in self._order if h != info_hash]
        self.waiting.discard(info_hash)
        self.forced.discard(info_hash)

    def sort(self, key: Callable[[bytes], Any]) -> None:
        self.order = sorted(self._order, key=key)


    def move(self, info_hashes: Iterable[bytes], where: str) -> None:
        """queue-move-top / -up / -down / -bottom, keeping the moved torrents' order among themselves."""
        chosen = set(info_hashes)
        order = list(self._order)
        moving = [h for h in order if h in chosen]
        moved = set(moving)
        if where == "top":
            order = moving + [h for h in order if h not in moved]
        elif where == "bottom":
            order = [h for h in order if h not in moved] + moving
        elif where == "up":
            for h in moving:
                i = order.index(h)
                if i > 0 and order[i - 1] not in moved:
                    order[i - 1], order[i] = h, order[i - 1]
        elif where == "down":
            for h in reversed(moving):
                i = order.index(h)
                if i + 1 < len(order) and order[i + 1] not in moved:
                    order[i + 1], order[i] = h, order[i + 1]
        else:
            raise ValueError(where)
        self.order = order

    def plan(self, items: Mapping[bytes, QueueItem], limits: QueueLimits) -> set[bytes]:
        """The torrents that must wait now: past the first N of their kind, in queue order."""
        waiting: set[bytes] = set()
        running = {False: 0, True: 0}  # complete -> slots taken
        for info_hash in self.order:
            item = items.get(info_hash)
            if item is None or not item.wants_to_run or info_hash in self.forced:
                continue
            enabled, size = (limits.seed_enabled, limits.seed_size) if item.complete \
                else (limits.download_enabled, limits.download_size)
            if enabled and running[item.complete] >= size:
                waiting.add(info_hash)
            else:
                running[item.complete] += 1
        self.waiting = waiting
        return waiting
