"""Super-seeding (BEP 16): while our upload is the swarm's bottleneck, send each piece once before any twice.

A plain data structure with the clock passed in. The engine gives a super-seeded peer no bitfield (HAVE_NONE
with the fast extension) and announces pieces to it one at a time with HAVE, as this object decides:

* each peer holds up to ``offers_per_peer`` offers, so our upload never waits on a round trip;
* a new offer is a piece nobody has been offered yet (first round), else one nobody has and nobody is
  fetching (a holder left, an offer was never taken up), else nothing: the peer gets the rest from the swarm;
* an offer is done once the peer has the piece *and* someone else has it too (it was passed on), or no other
  peer lacks it (a lone leecher is served at full speed), or ``spread_wait_s`` passed since the peer got it
  (a peer that does not share must not block a slot forever); an offer never fetched lapses after
  ``offer_timeout_s`` (the peer may be choked);
* a peer left without offers for ``starving_s`` while it still lacks pieces gets the least available one
  anyway, so a swarm whose members do not trade still completes.

When to use it is the engine's decision (see ``Uploader.super_seeding`` in engine/upload.py): a complete
torrent seeding under an upload limit, where bandwidth spent on a second copy is bandwidth a first copy did
not get. With one leecher the rules above reduce to ordinary seeding paced by offers.
"""

from __future__ import annotations

import random
from collections.abc import Hashable
from dataclasses import dataclass

from torrentpy._core import Availability, Bitfield

__all__ = ["SuperSeeder"]

PeerKey = Hashable

# Three 256 KiB offers keep ~0.75 MiB requested per peer: enough to cover the HAVE round trip at a few MiB/s.
OFFERS_PER_PEER = 3
SPREAD_WAIT_S = 5.0
OFFER_TIMEOUT_S = 20.0
STARVING_S = 3.0


@dataclass
class _Offer:
    offered_at: float
    got_at: float | None = None


class SuperSeeder:
    def __init__(self, num_pieces: int, *, rng: random.Random | None = None,
                 offers_per_peer: int = OFFERS_PER_PEER, spread_wait_s: float = SPREAD_WAIT_S,
                 offer_timeout_s: float = OFFER_TIMEOUT_S, starving_s: float = STARVING_S) -> None:
        if num_pieces <= 0:
            raise ValueError("a torrent has at least one piece")
        if offers_per_peer < 1:
            raise ValueError("offers_per_peer must be at least 1")
        self.num_pieces = num_pieces
        self.offers_per_peer = offers_per_peer
        self.spread_wait_s = spread_wait_s
        self.offer_timeout_s = offer_timeout_s
        self.starving_s = starving_s
        self._rng = rng if rng is not None else random.Random()
        self.availability = Availability(num_pieces)
        self.times_offered = [0] * num_pieces
        self._never_offered = Bitfield.full(num_pieces)
        self._fetching = [0] * num_pieces  # live offers the offered peer has not completed yet
        self._have: dict[PeerKey, Bitfield] = {}
        self._announced: dict[PeerKey, Bitfield] = {}
        self._offers: dict[PeerKey, dict[int, _Offer]] = {}
        self._idle_since: dict[PeerKey, float] = {}
        # Peers that ever said they were interested. Only they count as "lacking" a piece: another
        # super-seeding seed also gave us no bitfield, and waiting for a piece to spread to it stalled
        # every offer for spread_wait_s.
        self._wanting: set[PeerKey] = set()

    # --- what the engine tells us ------------------------------------------------------------

    def __contains__(self, key: PeerKey) -> bool:
        return key in self._have

    def add_peer(self, key: PeerKey, now: float) -> list[int]:
        """A peer we will super-seed (it got no bitfield from us). Returns the pieces to announce to it."""
        if key in self._have:
            raise ValueError(f"peer {key!r} is already known")
        empty = Bitfield(self.num_pieces)
        self._have[key] = empty
        self._announced[key] = Bitfield(self.num_pieces)
        self._offers[key] = {}
        self.availability.add_peer(empty)
        return self._fill(key, now)

    def peer_interested(self, key: PeerKey) -> None:
        """The peer sent INTERESTED: it wants pieces, so offers wait until they reach it too."""
        if key in self._have:
            self._wanting.add(key)

    def remove_peer(self, key: PeerKey) -> None:
        self._wanting.discard(key)
        have = self._have.pop(key, None)
        if have is None:
            return
        self.availability.remove_peer(have)
        for index, offer in self._offers.pop(key).items():
            if offer.got_at is None:
                self._fetching[index] -= 1
        del self._announced[key]
        self._idle_since.pop(key, None)

    def peer_bitfield(self, key: PeerKey, bitfield: Bitfield, now: float) -> dict[PeerKey, list[int]]:
        """The peer's bitfield (or HAVE_ALL/HAVE_NONE). Returns new offers per peer."""
        if key not in self._have or len(bitfield) != self.num_pieces:
            return {}
        self.availability.remove_peer(self._have[key])
        self._have[key] = bitfield.copy()
        self.availability.add_peer(self._have[key])
        for index in list(self._offers[key]):
            if bitfield[index]:
                self._got(key, index, now)
        return self.tick(now)

    def peer_have(self, key: PeerKey, index: int, now: float) -> dict[PeerKey, list[int]]:
        """The peer announced a piece. Returns new offers per peer (this one or others whose offer spread)."""
        have = self._have.get(key)
        if have is None or not 0 <= index < self.num_pieces or have[index]:
            return {}
        have.set(index)
        self.availability.increment(index)
        if index in self._offers[key]:
            self._got(key, index, now)
        return self.tick(now)

    def tick(self, now: float) -> dict[PeerKey, list[int]]:
        """Retire finished offers and hand out new ones. Returns {peer: pieces to announce}."""
        out: dict[PeerKey, list[int]] = {}
        # Every lapse first, so a piece freed by one peer's lapse can go to a peer filled before it.
        for key in self._have:
            self._retire(key, now)
        for key in list(self._have):
            pieces = self._fill(key, now)
            if pieces:
                out[key] = pieces
        return out

    def offers(self, key: PeerKey) -> list[int]:
        """The peer's live offers (for tests and snapshots)."""
        return sorted(self._offers.get(key, {}))

    # --- policy -----------------------------------------------------------------------------------

    def _got(self, key: PeerKey, index: int, now: float) -> None:
        offer = self._offers[key][index]
        if offer.got_at is None:
            offer.got_at = now
            self._fetching[index] -= 1

    def _others_lack(self, key: PeerKey, index: int) -> bool:
        return any(not have[index] for other, have in self._have.items()
                   if other != key and other in self._wanting)

    def _retire(self, key: PeerKey, now: float) -> None:
        offers = self._offers[key]
        for index, offer in list(offers.items()):
            if offer.got_at is not None:
                passed_on = self.availability[index] >= 2 or not self._others_lack(key, index)
                if passed_on or now - offer.got_at >= self.spread_wait_s:
                    del offers[index]
            elif now - offer.offered_at >= self.offer_timeout_s:
                self._fetching[index] -= 1
                del offers[index]

    def _fill(self, key: PeerKey, now: float) -> list[int]:
        self._retire(key, now)
        offers = self._offers[key]
        announced = self._announced[key]
        new: list[int] = []
        while len(offers) < self.offers_per_peer:
            index = self._choose(key, now)
            if index is None:
                break
            offers[index] = _Offer(offered_at=now)
            announced.set(index)
            self.times_offered[index] += 1
            self._never_offered.clear(index)
            self._fetching[index] += 1
            new.append(index)
        if offers:
            self._idle_since.pop(key, None)
        else:
            self._idle_since.setdefault(key, now)
        return new

    def _choose(self, key: PeerKey, now: float) -> int | None:
        candidates = ~(self._have[key] | self._announced[key])
        if not candidates.any():
            return None
        first_round = candidates & self._never_offered
        if first_round.any():
            return self._pick(first_round)
        orphans = [i for i in candidates if self.availability[i] == 0 and self._fetching[i] == 0]
        if orphans:
            return self._rng.choice(orphans)
        idle_since = self._idle_since.get(key)
        if not self._offers[key] and idle_since is not None and now - idle_since >= self.starving_s:
            return self._pick(candidates)
        return None

    def _pick(self, candidates: Bitfield) -> int:
        return self.availability.rarest(candidates, 1, self._rng)[0]
