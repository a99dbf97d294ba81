"""Routing table, tokens, peer store, query limiter and lookups as pure structures (clock passed in)."""

from __future__ import annotations

import random

from torrentpy.dht.lookup import Lookup
from torrentpy.dht.routing import GOOD_FOR_S, MAX_FAILURES, RoutingTable, distance
from torrentpy.dht.store import TOKEN_ROTATION_S, PeerStore, QueryLimiter, Tokens
from torrentpy.protocol.krpc import Node

OWN = b"\x00" * 20


def nid(first: int, rest: int = 0) -> bytes:
    return bytes([first]) + bytes([rest]) * 19


def test_bucket_splits_only_around_own_id() -> None:
    table = RoutingTable(OWN, 0.0)
    # Far half (top bit set): one bucket of 8, the ninth goes to the replacement cache.
    for i in range(9):
        table.add(nid(0x80 + i), ("127.0.0.2", 1000 + i), 0.0, responded=True)
    assert len(table) == 8
    # Near ids keep splitting the bucket that holds our own id.
    for i in range(20):
        table.add(nid(0x01, i), ("127.0.0.3", 1000 + i), 0.0, responded=True)
    assert len(table.buckets) > 2
    far = next(b for b in table.buckets if b.covers(int.from_bytes(nid(0x80), "big")))
    assert len(far.entries) == 8 and len(far.replacements) == 1


def test_good_questionable_bad() -> None:
    table = RoutingTable(OWN, 0.0)
    table.add(nid(0x80), ("127.0.0.2", 1), 0.0, responded=True)
    entry = table.find(nid(0x80))
    assert entry is not None and entry.good(10.0)
    assert not entry.good(GOOD_FOR_S + 1)
    assert entry in table.questionable(GOOD_FOR_S + 1)
    table.add(nid(0x80), ("127.0.0.2", 1), GOOD_FOR_S, queried=True)  # it queried us: good again
    assert entry.good(GOOD_FOR_S + 1)
    for _ in range(MAX_FAILURES):
        table.failed(nid(0x80), ("127.0.0.2", 1))
    assert entry.bad() and table.closest(nid(0x80)) == []


def test_bad_node_gives_its_place_to_a_replacement() -> None:
    table = RoutingTable(OWN, 0.0)
    for i in range(8):
        table.add(nid(0x80 + i), ("127.0.0.2", 1000 + i), 0.0, responded=True)
    table.add(nid(0xF0), ("127.0.0.9", 9), 0.0, responded=True)
    assert table.find(nid(0xF0)) is None
    for _ in range(MAX_FAILURES):
        table.failed(nid(0x80), ("127.0.0.2", 1000))
    assert table.find(nid(0x80)) is None and table.find(nid(0xF0)) is not None


def test_closest_sorted_by_xor_distance() -> None:
    table = RoutingTable(OWN, 0.0)
    rng = random.Random(1)
    ids = [rng.randbytes(20) for _ in range(200)]
    for i, node_id in enumerate(ids):
        table.add(node_id, ("127.0.0.2", 1000 + i), 0.0, responded=True)
    target = rng.randbytes(20)
    got = table.closest(target)
    assert len(got) == 8
    assert [distance(n.id, target) for n in got] == sorted(distance(n.id, target) for n in got)


def test_stale_buckets_are_due_for_refresh() -> None:
    table = RoutingTable(OWN, 0.0)
    assert table.stale_buckets(100.0) == []
    assert table.stale_buckets(15 * 60.0) == table.buckets


def test_tokens_rotate_and_accept_the_previous_secret() -> None:
    tokens = Tokens(random.Random(1), 0.0)
    tok = tokens.make("10.0.0.1", 0.0)
    assert tokens.check(tok, "10.0.0.1", 1.0)
    assert not tokens.check(tok, "10.0.0.2", 1.0)
    assert tokens.check(tok, "10.0.0.1", TOKEN_ROTATION_S + 1)  # previous secret
    tokens.make("x", TOKEN_ROTATION_S + 1)
    assert not tokens.check(tok, "10.0.0.1", 2 * TOKEN_ROTATION_S + 2)  # two rotations later


def test_peer_store_bounds_and_expiry() -> None:
    store = PeerStore(ttl_s=100.0, max_peers=3, max_hashes=2)
    rng = random.Random(1)
    for port in range(1, 6):
        store.add(b"a" * 20, ("10.0.0.1", port), 0.0)
    assert sorted(store.get(b"a" * 20, 1.0, rng)) == [("10.0.0.1", 3), ("10.0.0.1", 4), ("10.0.0.1", 5)]
    store.add(b"b" * 20, ("10.0.0.2", 1), 50.0)
    store.add(b"c" * 20, ("10.0.0.3", 1), 50.0)  # evicts the oldest info-hash
    assert store.get(b"a" * 20, 51.0, rng) == []
    assert store.get(b"b" * 20, 149.0, rng) == [("10.0.0.2", 1)]
    assert store.get(b"b" * 20, 151.0, rng) == []
    store.expire(1000.0)
    assert len(store) == 0


def test_query_limiter_per_address() -> None:
    limiter = QueryLimiter(burst=5, rate_per_s=1.0, max_addresses=2)
    assert all(limiter.allow("10.0.0.1", 0.0) for _ in range(5))
    assert not limiter.allow("10.0.0.1", 0.0)
    assert limiter.allow("10.0.0.2", 0.0)  # another address has its own bucket
    assert limiter.allow("10.0.0.1", 1.0)  # refilled
    assert QueryLimiter(enabled=False).allow("x", 0.0)


def test_lookup_walks_closer_and_bounds_outstanding() -> None:
    target = b"\x00" * 20
    seeds = [Node(nid(0x80 + i), ("127.0.0.2", i + 1)) for i in range(6)]
    lookup = Lookup(target, seeds, get_peers=True)
    first = lookup.next_queries()
    assert len(first) == 3 and lookup.next_queries() == []  # alpha = 3
    closer = tuple(Node(nid(0x01, i), ("127.0.0.3", i + 1)) for i in range(8))
    new = lookup.on_response(first[0].id, closer, (("10.0.0.1", 5),), b"tok")
    assert new == [("10.0.0.1", 5)]
    nxt = lookup.next_queries()
    assert len(nxt) == 1 and nxt[0].id[0] == 0x01
    for node in first[1:]:
        lookup.on_failure(node.id)
    lookup.on_response(nxt[0].id, (), (), b"t")
    for _ in range(100):
        if lookup.done:
            break
        for node in lookup.next_queries():
            lookup.on_response(node.id, (), (), b"t")
    assert len(lookup.announce_targets()) == 8
    assert all(n.id[0] == 0x01 for n, _ in lookup.announce_targets())
    assert lookup.hops == 2
