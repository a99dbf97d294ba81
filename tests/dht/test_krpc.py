"""KRPC codec: every query and response round-trips; hostile datagrams decode to None (dropped)."""

from __future__ import annotations

import random

import pytest

from torrentpy import bencoding
from torrentpy.protocol import krpc

ID_A = bytes(range(20))
ID_B = bytes(range(20, 40))
HASH = b"\xaa" * 20


def test_queries_round_trip() -> None:
    assert krpc.decode(krpc.ping(b"aa", ID_A)) == krpc.Ping(b"aa", ID_A, False)
    assert krpc.decode(krpc.find_node(b"t1", ID_A, ID_B)) == krpc.FindNode(b"t1", ID_A, False, ID_B, False)
    assert krpc.decode(krpc.get_peers(b"t2", ID_A, HASH)) == krpc.GetPeers(b"t2", ID_A, False, HASH, False)
    msg = krpc.decode(krpc.announce_peer(b"t3", ID_A, HASH, 6881, b"tok"))
    assert msg == krpc.AnnouncePeer(b"t3", ID_A, False, HASH, 6881, b"tok", False)
    implied = krpc.decode(krpc.announce_peer(b"t4", ID_A, HASH, 1, b"tok", implied_port=True))
    assert isinstance(implied, krpc.AnnouncePeer) and implied.implied_port


def test_response_with_nodes_values_and_token() -> None:
    nodes = [krpc.Node(ID_A, ("127.0.0.2", 6881)), krpc.Node(ID_B, ("::1", 7000))]
    values = [("10.0.0.1", 51413), ("fe80::1", 1)]
    raw = krpc.encode_response(b"xy", ID_B, requester=("127.0.0.1", 1234), nodes=nodes, values=values, token=b"k")
    msg = krpc.decode(raw)
    assert isinstance(msg, krpc.Response)
    assert msg.sender == ID_B and msg.token == b"k"
    assert msg.nodes == tuple(nodes)
    assert msg.values == tuple(values)


def test_error_round_trip() -> None:
    assert krpc.decode(krpc.encode_error(b"zz", 204, "Method Unknown")) == krpc.ErrorReply(b"zz", 204, "Method Unknown")


def test_unknown_method_is_a_query_to_answer() -> None:
    raw = krpc.encode_query(b"q1", "vote", {b"id": ID_A})
    assert krpc.decode(raw) == krpc.UnknownQuery(b"q1", ID_A, False, b"vote")


def _q(args: dict[bytes, object], method: bytes = b"get_peers", **top: object) -> bytes:
    msg: dict[bytes, object] = {b"t": b"aa", b"y": b"q", b"q": method, b"a": args}
    msg.update({k.encode(): v for k, v in top.items()})
    return bencoding.encode(msg)


HOSTILE = [
    b"",
    b"d",
    b"de",
    b"le",
    b"i42e",
    b"d1:t2:aa1:y1:qe",  # no method, no arguments
    krpc.ping(b"aa", ID_A)[:-1],  # truncated
    krpc.ping(b"aa", ID_A) + b"x",  # trailing garbage
    _q({b"id": b"short", b"info_hash": HASH}),  # id not 20 bytes
    _q({b"id": ID_A, b"info_hash": 5}),  # info_hash not a string
    _q({b"id": ID_A}, method=b"find_node"),  # target missing
    _q({b"id": ID_A, b"info_hash": HASH, b"port": 0, b"token": b"x"}, method=b"announce_peer"),
    _q({b"id": ID_A, b"info_hash": HASH, b"port": 70000, b"token": b"x"}, method=b"announce_peer"),
    _q({b"id": ID_A, b"info_hash": HASH, b"port": b"80", b"token": b"x"}, method=b"announce_peer"),
    _q({b"id": ID_A, b"info_hash": HASH, b"port": 80}, method=b"announce_peer"),  # token missing
    _q({b"id": ID_A}, method=5),  # type: ignore[arg-type]
    bencoding.encode({b"t": b"aa", b"y": b"q", b"q": b"ping", b"a": [1]}),
    bencoding.encode({b"t": 7, b"y": b"q", b"q": b"ping", b"a": {b"id": ID_A}}),
    bencoding.encode({b"t": b"x" * 100, b"y": b"q", b"q": b"ping", b"a": {b"id": ID_A}}),
    bencoding.encode({b"t": b"aa", b"y": b"z", b"a": {b"id": ID_A}}),
    bencoding.encode({b"t": b"aa", b"y": b"r", b"r": {b"id": ID_A, b"nodes": b"x" * 27}}),
    bencoding.encode({b"t": b"aa", b"y": b"r", b"r": {b"id": ID_A, b"values": b"notalist"}}),
    bencoding.encode({b"t": b"aa", b"y": b"r", b"r": {b"id": ID_A, b"values": [1, 2]}}),
    bencoding.encode({b"t": b"aa", b"y": b"r", b"r": {b"id": ID_A, b"token": 5}}),
    bencoding.encode({b"t": b"aa", b"y": b"r", b"r": b"x"}),
    bencoding.encode({b"t": b"aa", b"y": b"e", b"e": b"oops"}),
    bencoding.encode({b"t": b"aa", b"y": b"e", b"e": [b"x", 1]}),
    bencoding.encode({b"t": b"aa", b"y": b"r", b"r": {b"id": ID_A, b"values": list(range(1000))}}),  # huge list
    b"d1:ad" * 100 + b"e" * 200,  # deep nesting
    b"l" + b"i1e" * 2000 + b"e",  # too long
]


@pytest.mark.parametrize("raw", HOSTILE)
def test_malformed_is_dropped(raw: bytes) -> None:
    assert krpc.decode(raw) is None


def test_values_with_odd_entries_keep_the_good_ones() -> None:
    values = [b"\x7f\x00\x00\x01\x1a\xe1", b"abc", b"\x01\x02\x03\x04\x00\x00"]
    raw = bencoding.encode({b"t": b"aa", b"y": b"r", b"r": {b"id": ID_A, b"values": values}})
    msg = krpc.decode(raw)
    assert isinstance(msg, krpc.Response) and msg.values == (("127.0.0.1", 6881),)


def test_random_mutations_never_raise() -> None:
    rng = random.Random(5)
    seeds = [krpc.ping(b"aa", ID_A), krpc.announce_peer(b"t3", ID_A, HASH, 6881, b"tok"),
             krpc.encode_response(b"xy", ID_B, nodes=[krpc.Node(ID_A, ("127.0.0.2", 1))], values=[("1.2.3.4", 5)],
                                  token=b"k")]
    for _ in range(5000):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            op = rng.random()
            pos = rng.randrange(len(data))
            if op < 0.4:
                data[pos] = rng.randrange(256)
            elif op < 0.7:
                del data[pos:pos + rng.randint(1, 5)]
            else:
                data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 5)))
            if not data:
                break
        krpc.decode(bytes(data))  # must not raise
