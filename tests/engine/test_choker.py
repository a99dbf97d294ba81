from __future__ import annotations

import itertools
import random
from collections import Counter

import pytest

from torrentpy.engine.choker import Choker, PeerView


def view(key: str, *, down: float = 0.0, up: float = 0.0, interested: bool = True, snubbed: bool = False,
         connected_at: float = -1000.0, choking: bool = True, seed: bool = False) -> PeerView:
    return PeerView(key, interested, down, up, snubbed, connected_at, choking, seed)


def apply(peers: list[PeerView], unchoke: set) -> list[PeerView]:
    """What the engine does with a decision: update each peer's am_choking."""
    return [PeerView(p.key, p.interested, p.down_rate_bps, p.up_rate_bps, p.snubbed, p.connected_at,
                     p.key not in unchoke, p.is_seed) for p in peers]


def test_regular_slots_go_to_fastest_uploaders_plus_one_optimistic() -> None:
    peers = [view(f"p{i}", down=i * 1000) for i in range(10)]
    c = Choker(4, rng=random.Random(1))
    unchoked = c.decide(peers, now=0, seeding=False)
    assert {"p9", "p8", "p7", "p6"} <= unchoked
    assert len(unchoked) == 5
    assert c.optimistic in unchoked and c.optimistic not in {"p9", "p8", "p7", "p6"}


def test_uninterested_and_seeds_never_hold_a_slot() -> None:
    peers = [view("fast", down=9e6, interested=False), view("seed", down=8e6, seed=True), view("a", down=1),
             view("b")]
    for s in range(20):
        c = Choker(4, rng=random.Random(s))
        assert c.decide(peers, now=0, seeding=False) == {"a", "b"}
        assert c.decide(peers, now=0, seeding=True) == {"a", "b"}


def test_snubbed_peers_only_via_optimistic_slot() -> None:
    peers = [view("snub", down=9e9, snubbed=True)] + [view(f"p{i}", down=100 + i) for i in range(4)]
    for s in range(20):
        c = Choker(4, rng=random.Random(s))
        unchoked = c.decide(peers, now=0, seeding=False)
        assert {"p0", "p1", "p2", "p3"} <= unchoked
        assert ("snub" in unchoked) == (c.optimistic == "snub")
    # With more candidates than slots, a snubbed peer still gets an occasional optimistic turn.
    peers = [view("snub", down=9e9, snubbed=True)] + [view(f"p{i}", down=100 + i) for i in range(4)]
    c = Choker(2, rng=random.Random(3))
    seen = set()
    for t in range(0, 3000, 30):
        unchoked = c.decide(peers, now=t, seeding=False)
        assert {"p3", "p2"} <= unchoked
        seen |= unchoked
    assert "snub" in seen


def test_optimistic_rotates_every_30_seconds() -> None:
    peers = [view(f"p{i}", down=1000 * (i < 4) * (i + 1)) for i in range(12)]
    c = Choker(4, rng=random.Random(5))
    c.decide(peers, now=0, seeding=False)
    first = c.optimistic
    for t in (10, 20, 29.9):
        c.decide(peers, now=t, seeding=False)
        assert c.optimistic == first
    c.decide(peers, now=30, seeding=False)
    assert c.optimistic != first
    history = []
    for t in range(60, 60 + 30 * 200, 10):
        c.decide(peers, now=t, seeding=False)
        history.append(c.optimistic)
    changes = sum(a != b for a, b in itertools.pairwise(history))
    assert changes == 199  # exactly one change every third 10 s rechoke
    assert set(history) == {f"p{i}" for i in range(4, 12)}


def test_optimistic_replaced_at_once_when_it_loses_interest() -> None:
    peers = [view(f"p{i}", down=1000 * (i < 4) * (i + 1)) for i in range(8)]
    c = Choker(4, rng=random.Random(2))
    c.decide(peers, now=0, seeding=False)
    gone = c.optimistic
    peers = [view(p.key, down=p.down_rate_bps, interested=p.key != gone) for p in peers]
    unchoked = c.decide(peers, now=10, seeding=False)
    assert gone not in unchoked and c.optimistic not in (None, gone)


def test_new_peers_are_favoured_for_optimistic_unchoke() -> None:
    now = 1000.0
    old = [view(f"old{i}", connected_at=now - 600) for i in range(6)]
    new = [view(f"new{i}", connected_at=now - 10) for i in range(2)]
    regular = [view(f"fast{i}", down=1e6) for i in range(4)]
    picks = Counter()
    for s in range(600):
        c = Choker(4, rng=random.Random(s))
        c.decide(regular + old + new, now=now, seeding=False)
        picks["new" if c.optimistic.startswith("new") else "old"] += 1
    # Weights 2×3 against 6×1: new peers should win half of the draws although they are a quarter.
    assert 0.4 < picks["new"] / 600 < 0.6


def test_ties_keep_currently_unchoked_peers() -> None:
    peers = [view(f"p{i}") for i in range(8)]
    c = Choker(4, rng=random.Random(9))
    first = c.decide(peers, now=0, seeding=False)
    peers = apply(peers, first)
    second = c.decide(peers, now=10, seeding=False)
    assert first == second


def test_decisions_are_reproducible_with_a_seeded_rng() -> None:
    peers = [view(f"p{i}", down=(i % 3) * 10) for i in range(10)]
    runs = []
    for _ in range(2):
        c = Choker(3, rng=random.Random(42))
        runs.append([sorted(c.decide(peers, now=t, seeding=False)) for t in range(0, 300, 10)])
    assert runs[0] == runs[1]


def test_next_decision_at() -> None:
    c = Choker(rechoke_interval_s=10)
    assert c.next_decision_at(5.0) == 5.0
    c.decide([], now=7.0, seeding=False)
    assert c.next_decision_at(8.0) == 17.0


def test_seeding_ranks_by_upload_rate_when_nobody_waits() -> None:
    peers = [view(f"p{i}", up=i * 10) for i in range(5)]
    c = Choker(4, rng=random.Random(0))
    assert c.decide(peers, now=0, seeding=True) == {f"p{i}" for i in range(5)}  # 4 + 1 slots


def test_seeding_round_robin_gives_everyone_a_turn() -> None:
    peers = [view(f"p{i}", up=1000.0 * i) for i in range(15)]
    c = Choker(2, rng=random.Random(0))  # 3 seeding slots
    turns: Counter[str] = Counter()
    for t in range(0, 600, 10):
        unchoked = c.decide(peers, now=t, seeding=True)
        assert len(unchoked) == 3
        turns.update(unchoked)
        peers = apply(peers, unchoked)
    assert set(turns) == {f"p{i}" for i in range(15)}
    # Each turn lasts 30 s = 3 decisions; 60 decisions × 3 slots / 15 peers = 12 decisions each.
    assert max(turns.values()) - min(turns.values()) <= 3


def test_seeding_turn_over_fastest_stay_when_few_wait() -> None:
    peers = [view("slow", up=10), view("mid", up=500), view("fast", up=900), view("x", up=800),
             view("y", up=700)]
    c = Choker(3, rng=random.Random(0))  # 4 slots, 5 peers
    unchoked = c.decide(peers, now=0, seeding=True)
    assert len(unchoked) == 4
    waiting = ({p.key for p in peers} - unchoked).pop()
    peers = apply(peers, unchoked)
    assert c.decide(peers, now=10, seeding=True) == unchoked  # turns not over yet
    peers = apply(peers, unchoked)
    after = c.decide(peers, now=30, seeding=True)
    assert waiting in after
    dropped = unchoked - after
    assert len(dropped) == 1
    # The slowest of the peers whose turn ended made room.
    assert dropped == {min(unchoked, key=lambda k: next(p.up_rate_bps for p in peers if p.key == k))}


def test_seeding_ignores_snubbing() -> None:
    peers = [view("a", snubbed=True), view("b")]
    assert Choker(1, rng=random.Random(0)).decide(peers, now=0, seeding=True) == {"a", "b"}


def test_zero_slots_means_only_optimistic() -> None:
    peers = [view(f"p{i}", down=i) for i in range(3)]
    c = Choker(0, rng=random.Random(0))
    assert len(c.decide(peers, now=0, seeding=False)) == 1
    with pytest.raises(ValueError, match="must not be negative"):
        Choker(-1)
