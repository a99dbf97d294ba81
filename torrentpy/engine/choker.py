"""Who we upload to: BEP 3 tit-for-tat with an optimistic unchoke, and round robin when seeding.

A plain data structure: ``decide`` takes a view of every connected peer and the time, and returns the
keys to unchoke. It never reads the clock and draws randomness only from the injected ``random.Random``,
so a seeded run is reproducible. The engine calls ``decide`` when ``next_decision_at(now)`` has passed
(and may call it early, e.g. when an unchoked peer disconnects); it then sends CHOKE / UNCHOKE for the
difference against each peer's current ``am_choking``.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

__all__ = ["Choker", "PeerView"]

PeerKey = Hashable

# Newly connected peers have nothing to reciprocate with yet; BEP 3 clients favour them for the
# optimistic slot (libtorrent and the mainline client use 3×) so they can get their first pieces.
NEW_PEER_AGE_S = 60.0
NEW_PEER_WEIGHT = 3


@dataclass(frozen=True, slots=True)
class PeerView:
    """What the choker needs to know about one connected peer."""

    key: PeerKey
    interested: bool  # the peer is interested in us
    down_rate_bps: float  # payload it sends us
    up_rate_bps: float  # payload we send it
    snubbed: bool  # it has sent us nothing for a while despite being unchoked by it
    connected_at: float
    am_choking: bool  # our current state towards it
    is_seed: bool


class Choker:
    def __init__(self, slots: int = 4, *, rng: random.Random | None = None, rechoke_interval_s: float = 10.0,
                 optimistic_interval_s: float = 30.0, seed_turn_s: float = 30.0) -> None:
        if slots < 0:
            raise ValueError("upload slots must not be negative")
        self.slots = slots
        self.rechoke_interval_s = rechoke_interval_s
        self.optimistic_interval_s = optimistic_interval_s
        self.seed_turn_s = seed_turn_s
        self._rng = rng if rng is not None else random.Random()
        self._last_decision: float | None = None
        self.optimistic: PeerKey | None = None
        self._optimistic_at = 0.0
        # Seeding round robin: when each peer's current turn began, and since when each has been waiting.
        self._turn_started: dict[PeerKey, float] = {}
        self._waiting_since: dict[PeerKey, float] = {}

    def next_decision_at(self, now: float) -> float:
        if self._last_decision is None:
            return now
        return self._last_decision + self.rechoke_interval_s

    def decide(self, peers: Iterable[PeerView], *, now: float, seeding: bool) -> set[PeerKey]:
        peers = list(peers)
        self._last_decision = now
        present = {p.key for p in peers}
        for table in (self._turn_started, self._waiting_since):
            for key in [k for k in table if k not in present]:
                del table[key]
        if self.optimistic not in present:
            self.optimistic = None
        # Seeds never want our data; uninterested peers have nothing to gain from a slot.
        wanting = [p for p in peers if p.interested and not p.is_seed]
        if seeding:
            self.optimistic = None
            return self._seeding(wanting, now)
        return self._leeching(wanting, now)

    # ---- leeching: reciprocate ------------------------------------------------------------------

    def _leeching(self, wanting: list[PeerView], now: float) -> set[PeerKey]:
        self._turn_started.clear()
        self._waiting_since.clear()
        # Fastest uploaders to us get the regular slots. Ties (common at start, when every rate is 0)
        # keep peers already unchoked first to avoid churn, then random.
        eligible = [p for p in wanting if not p.snubbed]
        ranked = sorted(eligible, key=lambda p: (-p.down_rate_bps, p.am_choking, self._rng.random()))
        regular = {p.key for p in ranked[: self.slots]}

        others = [p for p in wanting if p.key not in regular]
        current_ok = self.optimistic is not None and any(p.key == self.optimistic for p in others)
        if not current_ok or now - self._optimistic_at >= self.optimistic_interval_s:
            self._rotate_optimistic(others, now)
        unchoke = set(regular)
        if self.optimistic is not None:
            unchoke.add(self.optimistic)
        return unchoke

    def _rotate_optimistic(self, others: list[PeerView], now: float) -> None:
        pool = [p for p in others if p.key != self.optimistic] or others
        if not pool:
            self.optimistic = None
            return
        weights = [NEW_PEER_WEIGHT if now - p.connected_at < NEW_PEER_AGE_S else 1 for p in pool]
        self.optimistic = self._rng.choices(pool, weights=weights)[0].key
        self._optimistic_at = now

    # ---- seeding: round robin ------------------------------------------------------------------

    def _seeding(self, wanting: list[PeerView], now: float) -> set[PeerKey]:
        """Every interested peer gets a turn of ``seed_turn_s``. While nobody waits the fastest keep their
        slots; when peers wait, the slowest of those whose turn is over make room, longest-waiting first.
        The optimistic slot is folded in: seeding has ``slots + 1`` equal slots."""
        total = self.slots + 1
        unchoked = [p for p in wanting if not p.am_choking]
        waiting = [p for p in wanting if p.am_choking]
        for p in unchoked:
            self._turn_started.setdefault(p.key, now)
            self._waiting_since.pop(p.key, None)
        for p in waiting:
            self._waiting_since.setdefault(p.key, now)
            self._turn_started.pop(p.key, None)

        def turn_over(p: PeerView) -> bool:
            return now - self._turn_started[p.key] >= self.seed_turn_s

        # Too many unchoked (slots reduced, or interest regained): keep peers mid-turn, then the fastest.
        unchoked.sort(key=lambda p: (turn_over(p), -p.up_rate_bps))
        keep, waiting_extra = unchoked[:total], unchoked[total:]
        waiting.sort(key=lambda p: self._waiting_since[p.key])
        free = total - len(keep)
        admitted = waiting[:free]
        queue = waiting[free:]
        expired = sorted((p for p in keep if turn_over(p)), key=lambda p: p.up_rate_bps)
        swaps = min(len(expired), len(queue))
        dropped = expired[:swaps]
        admitted.extend(queue[:swaps])
        dropped_keys = {p.key for p in dropped}
        keep = [p for p in keep if p.key not in dropped_keys]

        for p in admitted:
            self._turn_started[p.key] = now
            self._waiting_since.pop(p.key, None)
        for p in dropped + waiting_extra:
            self._turn_started.pop(p.key, None)
            self._waiting_since[p.key] = now
        return {p.key for p in keep} | {p.key for p in admitted}
