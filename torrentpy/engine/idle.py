"""Which torrents the session must tick every second, and when the others are next due.

A session may hold thousands of torrents, most of them seeding (or paused, or finished) with no
peer: ticking each of them every second costs CPU for nothing. A torrent with no peer, no dial, no
task and no announce in flight has nothing to do until a deadline it can name (its next announce,
a candidate's retry time, a resume save, its seeding time), or until something from outside wakes
it: a peer connecting, addresses to dial (Swarm.on_wake), its checking finishing, a resume.
The session keeps those in a heap by deadline (IdleSchedule) and ticks only the rest."""

from __future__ import annotations

import heapq
import itertools
from typing import TYPE_CHECKING

from torrentpy.engine.state import TorrentState
from torrentpy.engine.torrent import RESUME_SAVE_INTERVAL_S

if TYPE_CHECKING:
    from torrentpy.engine.torrent import Torrent

# An idle torrent is looked at again after this long even with nothing due: a safety net for a wake-up
# no hook reported (a state change from outside the engine), at the cost of one cheap check per period.
IDLE_RECHECK_S = 30.0


def idle_until(torrent: Torrent, now: float) -> float | None:
    """None when the torrent has work and is ticked every second; else the time its next tick is due."""
    if torrent.peers or torrent.swarm.connecting or torrent.announcing or torrent._tasks:
        return None
    due = now + IDLE_RECHECK_S
    if torrent.state == TorrentState.ERROR or torrent.paused or not torrent.started:
        return due  # its tick does nothing: a resume or the end of checking wakes it
    if torrent.state not in (TorrentState.SEEDING, TorrentState.FINISHED) \
            or torrent.uploader.leaving_since is not None:
        return None  # downloading, fetching metadata, or leaving: the tick drives it
    if torrent.resume_dirty:
        due = min(due, torrent.disk.last_save + RESUME_SAVE_INTERVAL_S)
    if torrent.finished:
        return due
    if torrent.candidates and torrent.wants_peers():
        due = min(due, min(torrent.candidates.values()))
    tiers = torrent.tiers
    if tiers is not None:
        due = min(due, now + tiers.next_announce_in(now))
        early = tiers.early_announce_at() if not torrent.candidates and hasattr(tiers, "early_announce_at") \
            else None
        if early is not None:
            due = min(due, early)
    if torrent.seed_time_s is not None and torrent.seeding_since is not None:
        due = min(due, torrent.seeding_since + torrent.seed_time_s)
    if (idle_goal := torrent.limits.idle_goal_at(torrent.seeding_since)) is not None:
        due = min(due, idle_goal)
    return due


class IdleSchedule:
    """The session's torrents split into busy ones (ticked every second, in the order they became
    busy) and idle ones (in a heap by due time: waking one costs O(1), its old heap entry is skipped
    when popped)."""

    def __init__(self) -> None:
        self.busy: dict[Torrent, None] = {}
        self.idle: dict[Torrent, float] = {}
        self._heap: list[tuple[float, int, Torrent]] = []
        self._seq = itertools.count()  # ties: torrents do not compare

    def wake(self, torrent: Torrent) -> None:
        self.idle.pop(torrent, None)
        self.busy[torrent] = None

    def forget(self, torrent: Torrent) -> None:
        self.idle.pop(torrent, None)
        self.busy.pop(torrent, None)

    def sleep(self, torrent: Torrent, due: float) -> None:
        self.busy.pop(torrent, None)
        self.idle[torrent] = due
        heapq.heappush(self._heap, (due, next(self._seq), torrent))

    def due(self, now: float) -> list[Torrent]:
        """Wake the idle torrents whose time has come; return every busy torrent, to tick."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            when, _, torrent = heapq.heappop(heap)
            if self.idle.get(torrent) == when:  # else woken or re-slept since: a stale entry
                self.wake(torrent)
        return list(self.busy)
