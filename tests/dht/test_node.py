"""A DhtNode answering queries as BEP 5 says, and a small in-memory DHT finding an announced peer."""

from __future__ import annotations

import random

from tests.dht.memnet import DatagramNet
from torrentpy.dht.node import DhtNode
from torrentpy.protocol import krpc

ME = ("10.0.0.1", 6881)
THEM = ("10.0.0.2", 6881)
HASH = b"\x42" * 20
THEIR_ID = b"\x11" * 20


def node(*, rate_limit: bool = False) -> DhtNode:
    return DhtNode(b"\x01" * 20, 0.0, random.Random(1), rate_limit=rate_limit)


def ask(n: DhtNode, data: bytes, addr: tuple[str, int] = THEM, now: float = 1.0) -> krpc.Message | None:
    n.outbox.clear()
    n.receive(data, addr, now)
    if not n.outbox:
        return None
    assert len(n.outbox) == 1 and n.outbox[0][1] == addr
    return krpc.decode(n.outbox[0][0])


def test_ping_find_node_get_peers_announce() -> None:
    n = node()
    assert ask(n, krpc.ping(b"p1", THEIR_ID)) == krpc.Response(b"p1", n.node_id)
    assert n.table.find(THEIR_ID) is not None  # a querying node is learnt
    reply = ask(n, krpc.find_node(b"f1", THEIR_ID, HASH))
    assert isinstance(reply, krpc.Response) and reply.nodes == (krpc.Node(THEIR_ID, THEM),)
    reply = ask(n, krpc.get_peers(b"g1", THEIR_ID, HASH))
    assert isinstance(reply, krpc.Response) and reply.token and reply.values == ()
    token = reply.token
    assert isinstance(ask(n, krpc.announce_peer(b"a1", THEIR_ID, HASH, 5000, token)), krpc.Response)
    assert isinstance(ask(n, krpc.announce_peer(b"a2", THEIR_ID, HASH, 1, token, implied_port=True)), krpc.Response)
    reply = ask(n, krpc.get_peers(b"g2", THEIR_ID, HASH), addr=("10.0.0.3", 1))
    assert isinstance(reply, krpc.Response)
    assert sorted(reply.values) == [("10.0.0.2", 5000), ("10.0.0.2", 6881)]


def test_bad_token_unknown_method_and_garbage() -> None:
    n = node()
    reply = ask(n, krpc.announce_peer(b"a1", THEIR_ID, HASH, 5000, b"forged"))
    assert isinstance(reply, krpc.ErrorReply) and reply.code == krpc.ERROR_PROTOCOL
    # A token for one address is useless from another.
    token = ask(n, krpc.get_peers(b"g1", THEIR_ID, HASH))
    assert isinstance(token, krpc.Response) and token.token
    reply = ask(n, krpc.announce_peer(b"a2", THEIR_ID, HASH, 5000, token.token), addr=("10.0.0.9", 1))
    assert isinstance(reply, krpc.ErrorReply)
    reply = ask(n, krpc.encode_query(b"u1", "sample_everything", {b"id": THEIR_ID}))
    assert reply == krpc.ErrorReply(b"u1", krpc.ERROR_METHOD_UNKNOWN, "Method Unknown")
    for garbage in (b"", b"d1:t2:aa1:y1:qe", b"\xff" * 3000, b"l" * 100):
        assert ask(n, garbage) is None
    # A reply we never asked for is ignored.
    assert ask(n, krpc.encode_response(b"zz", THEIR_ID, nodes=[krpc.Node(b"\x22" * 20, ("10.0.0.5", 1))])) is None
    assert n.table.find(b"\x22" * 20) is None


def test_flood_from_one_address_is_limited_and_bounded() -> None:
    n = node(rate_limit=True)
    answered = 0
    for i in range(1000):
        if ask(n, krpc.get_peers(i.to_bytes(2, "big"), THEIR_ID, HASH), now=1.0) is not None:
            answered += 1
    assert 0 < answered <= 60
    assert ask(n, krpc.ping(b"ok", THEIR_ID), addr=("10.0.0.3", 1), now=1.0) is not None  # others still served
    # Announces from many addresses cannot grow the store without bound.
    for i in range(3000):
        addr = (f"10.1.{i // 250}.{i % 250}", 1)
        tok = ask(n, krpc.get_peers(b"g", THEIR_ID, HASH), addr=addr)
        assert isinstance(tok, krpc.Response) and tok.token
        ask(n, krpc.announce_peer(b"a", THEIR_ID, HASH, 80, tok.token), addr=addr)
    assert len(n.store) <= 200


def test_unanswered_queries_time_out_and_mark_nodes_failed() -> None:
    n = node()
    n.table.add(THEIR_ID, THEM, 0.0, responded=True)
    n.find_node(HASH, 0.0)
    assert len(n.pending) == 1
    for t in range(1, 20):
        n.tick(float(t))
    entry = n.table.find(THEIR_ID)
    assert not n.pending and (entry is None or entry.failures >= 1)


def test_state_round_trip() -> None:
    n = node()
    n.table.add(THEIR_ID, THEM, 0.0, responded=True)
    loaded = DhtNode.load_state(n.save_state())
    assert loaded == (n.node_id, [krpc.Node(THEIR_ID, THEM)])
    assert DhtNode.load_state(b"garbage") is None
    assert DhtNode.load_state(b"d2:idi5e5:nodes0:e") is None


def test_small_dht_finds_the_announcer() -> None:
    net = DatagramNet(loss=0.05)
    addrs = [(f"10.0.{i // 200}.{i % 200 + 1}", 6881) for i in range(60)]
    for addr in addrs:
        net.add(addr)
    for addr in addrs[1:]:
        net.nodes[addr].bootstrap([addrs[0]], net.now)
    net.run(30.0)
    assert all(len(n.table) >= 8 for n in net.nodes.values())
    found: list[tuple[str, int]] = []
    seeder, leecher = net.nodes[addrs[17]], net.nodes[addrs[42]]
    seeder.track(HASH, 51413, lambda ih, peers: None, net.now)
    net.run(20.0)
    leecher.track(HASH, 0, lambda ih, peers: found.extend(peers), net.now)
    net.run(20.0)
    assert (addrs[17][0], 51413) in found
    stats = leecher.finished[-1]
    assert stats.hops <= 6 and stats.queries <= 60
