"""SuperSeeder (BEP 16 policy): offers, spreading, lapses, starvation. The clock is passed in."""

from __future__ import annotations

import random

import pytest

from torrentpy._core import Bitfield
from torrentpy.engine.superseed import SuperSeeder


def join(ss: SuperSeeder, key: str, now: float) -> list[int]:
    """A leecher connects and, as leechers do once offered something, says it is interested."""
    offers = ss.add_peer(key, now)
    ss.peer_interested(key)
    return offers


def seeder(num_pieces: int = 16, **kwargs: float) -> SuperSeeder:
    return SuperSeeder(num_pieces, rng=random.Random(7), **kwargs)  # type: ignore[arg-type]


def test_first_round_never_offers_a_piece_twice() -> None:
    ss = seeder(12, offers_per_peer=3)
    offers = [join(ss, k, 0.0) for k in "ABCD"]
    flat = [i for o in offers for i in o]
    assert all(len(o) == 3 for o in offers)
    assert sorted(flat) == list(range(12))
    assert join(ss, "E", 0.0) == []  # everything is out and being fetched: nothing to give yet


def test_next_offer_waits_until_the_piece_is_seen_elsewhere() -> None:
    ss = seeder(16, offers_per_peer=1)
    (a,) = join(ss, "A", 0.0)
    (b,) = join(ss, "B", 0.0)
    assert ss.peer_have("A", a, 1.0) == {}  # A got it, but B lacks it: A must pass it on first
    assert ss.offers("A") == [a]
    new = ss.peer_have("B", a, 1.5)  # B got it (from A): A's offer is done
    assert list(new) == ["A"] and len(new["A"]) == 1 and new["A"][0] not in (a, b)


def test_a_lone_leecher_is_served_without_waiting() -> None:
    ss = seeder(8, offers_per_peer=2)
    first = join(ss, "A", 0.0)
    new = ss.peer_have("A", first[0], 0.1)
    assert len(new["A"]) == 1 and new["A"][0] not in first


def test_a_peer_that_does_not_share_is_not_blocked_forever() -> None:
    ss = seeder(16, offers_per_peer=1, spread_wait_s=5.0)
    (a,) = join(ss, "A", 0.0)
    join(ss, "B", 0.0)
    ss.peer_have("A", a, 1.0)
    assert ss.tick(5.9) == {}
    assert list(ss.tick(6.0)) == ["A"]


def test_unfetched_offer_lapses_and_the_piece_is_offered_again() -> None:
    ss = seeder(2, offers_per_peer=1, offer_timeout_s=20.0)
    (a,) = join(ss, "A", 0.0)
    (b,) = join(ss, "B", 0.0)
    assert ss.tick(19.0) == {}
    # Both offers lapsed; each piece is still nobody's, so each peer is offered the other's piece.
    assert ss.tick(20.0) == {"A": [b], "B": [a]}
    assert ss.times_offered == [2, 2]


def test_pieces_a_departed_peer_held_alone_are_offered_again() -> None:
    ss = seeder(3, offers_per_peer=1)
    (a,) = join(ss, "A", 0.0)
    (c,) = ss.peer_have("A", a, 0.5)["A"]  # a lone leecher: its next offer comes at once
    (b,) = join(ss, "B", 0.6)
    assert len({a, b, c}) == 3
    ss.remove_peer("A")  # it leaves holding `a` alone and never fetched `c`: nobody has either now
    first = ss.peer_have("B", b, 1.0)
    assert list(first) == ["B"] and first["B"][0] in (a, c), first
    second = ss.peer_have("B", first["B"][0], 1.1)
    assert list(second) == ["B"] and {first["B"][0], second["B"][0]} == {a, c}, (first, second)


def test_end_phase_leaves_pieces_to_the_swarm_until_a_peer_starves() -> None:
    ss = seeder(4, offers_per_peer=2, starving_s=3.0, spread_wait_s=5.0)
    a = join(ss, "A", 0.0)
    b = join(ss, "B", 0.0)
    for i in a:
        ss.peer_have("A", i, 1.0)
    for i in b:
        ss.peer_have("B", i, 1.0)
    # Every piece was offered and has one holder; each peer lacks only what the other holds. The offers
    # stay until they spread or spread_wait_s passes (6.0); then each peer idles, starving at 9.0.
    assert ss.tick(2.0) == {}
    assert ss.tick(6.0) == {}
    assert ss.tick(8.9) == {}
    new = ss.tick(9.0)
    assert set(new) == {"A", "B"}, new
    assert len(new["A"]) == 1 and new["A"][0] in b, new
    assert len(new["B"]) == 1 and new["B"][0] in a, new


def test_bitfield_counts_as_having_and_replaces_offers() -> None:
    ss = seeder(8, offers_per_peer=2)
    first = join(ss, "A", 0.0)
    join(ss, "B", 0.0)
    for i in first:
        ss.peer_have("A", i, 0.2)
    assert ss.offers("A") == sorted(first)  # B lacks them: A has to pass them on first
    bf = Bitfield(8)
    for i in first:
        bf.set(i)
    new = ss.peer_bitfield("B", bf, 0.5)  # B's (late) bitfield shows it has them: they spread
    assert not set(ss.offers("A")) & set(first)
    assert len(new["A"]) == 2


def test_seeds_get_no_offers_and_unknown_input_is_ignored() -> None:
    ss = seeder(4)
    join(ss, "S", 0.0)
    assert "S" not in ss.peer_bitfield("S", Bitfield.full(4), 0.1)
    assert ss.offers("S") == []
    assert ss.peer_have("nobody", 1, 0.3) == {}
    assert ss.peer_have("S", 99, 0.3) == {}
    ss.remove_peer("nobody")
    with pytest.raises(ValueError, match="already known"):
        join(ss, "S", 0.4)
    with pytest.raises(ValueError, match="at least one piece"):
        SuperSeeder(0)


def test_a_peer_that_never_wants_anything_does_not_stall_offers() -> None:
    # Another super-seeding seed sends us no bitfield either; it never gets interested.
    ss = SuperSeeder(8, rng=random.Random(1), offers_per_peer=1, spread_wait_s=5.0)
    (a,) = join(ss, "A", 0.0)
    ss.add_peer("other-seed", 0.0)
    offers = ss.peer_have("A", a, 0.1)
    assert offers.get("A"), "A's next offer must not wait for the piece to reach a peer that wants nothing"
