"""Fuzz target for KRPC (protocol/krpc.py) and the sans-I/O DHT node (dht/node.py): a sequence of datagrams
from many addresses, some of them answers to the node's own pending queries, with the clock moving on.

Invariants, after every datagram: `receive` and `tick` never raise; a datagram `krpc.decode` refuses gets
no answer at all; a query gets at most one answer, sent to its source only, that decodes as a KRPC reply
with the query's transaction id and is at most `MAX_ANSWER_BYTES`; every datagram the node sends is a
well-formed KRPC message within the same bound; the routing table, its replacement caches, the peer
store, the rate limiter and the pending queries stay within their caps (set small here so that one input
can fill them); a decoded message re-encodes to one that decodes the same.

Input: a sequence of records `[flags][address][length: 2 bytes][datagram]`. flags bit 0: answer a pending
query of ours (the datagram's 2-byte transaction id, written as `1:t2:XX`, is replaced by that query's
and it comes from the queried address); bits 1..3: seconds the clock moves on first (7: a whole query
timeout and a tick); bit 4: the source is an IPv6 address (the node speaks IPv4: dropped).

    .venv/bin/python fuzz/run.py dht [-max_total_time=60]
"""

from __future__ import annotations

import random
import struct

from torrentpy.dht import node as dht_node
from torrentpy.dht.routing import REPLACEMENTS, RoutingTable
from torrentpy.dht.store import PeerStore, QueryLimiter
from torrentpy.protocol import krpc

# A get_peers answer is the largest: 8 nodes (26 bytes each, 38 for IPv6), 50 peers, a token, the BEP 42
# "ip" and a transaction id; it must fit one unfragmented datagram on an ordinary path.
MAX_ANSWER_BYTES = 1400
NODE_ID = bytes(range(20))
INFO_HASH = b"\x5a" * 20
K = 3
MAX_PEERS, MAX_HASHES, MAX_ADDRESSES = 4, 3, 8
ROUTERS = [("192.0.2.1", 6881), ("192.0.2.2", 6881)]


def _addr(byte: int, ipv6: bool) -> tuple[str, int]:
    if ipv6:
        return (f"2001:db8::{byte:x}", 6881)
    return (f"10.0.{byte >> 4}.{byte & 15}", 6881 + (byte & 3))


def _make_node() -> dht_node.DhtNode:
    node = dht_node.DhtNode(NODE_ID, 1000.0, random.Random(0))
    node.table = RoutingTable(NODE_ID, 1000.0, k=K)
    node.store = PeerStore(max_peers=MAX_PEERS, max_hashes=MAX_HASHES)
    node.limiter = QueryLimiter(burst=4, rate_per_s=1.0, max_addresses=MAX_ADDRESSES)
    node.bootstrap(ROUTERS, 1000.0)
    node.track(INFO_HASH, 6881, lambda h, peers: None, 1000.0)
    return node


def _check_sent(datagram: bytes) -> krpc.Message:
    assert len(datagram) <= MAX_ANSWER_BYTES, f"sent {len(datagram)} bytes"
    msg = krpc.decode(datagram)
    assert msg is not None, f"sent a datagram KRPC refuses: {datagram[:200]!r}"
    return msg


def _check_caps(node: dht_node.DhtNode) -> None:
    table = node.table
    assert len(table.buckets) <= 161
    for bucket in table.buckets:
        assert len(bucket.entries) <= K and len(bucket.replacements) <= REPLACEMENTS
        assert all(bucket.covers(int.from_bytes(e.id, "big")) and len(e.id) == 20 for e in bucket.entries)
        assert all(":" not in e.addr[0] for e in bucket.entries), "an IPv6 node in the IPv4 table"
    ids = [e.id for b in table.buckets for e in b.entries]
    assert len(ids) == len(set(ids)) and NODE_ID not in ids
    assert len(node.store._peers) <= MAX_HASHES
    assert all(len(p) <= MAX_PEERS for p in node.store._peers.values())
    assert len(node.limiter._buckets) <= MAX_ADDRESSES
    assert len(node.pending) <= dht_node.MAX_PENDING


def _roundtrip(msg: krpc.Message) -> None:
    """What decode accepts, encoded again by our codec, decodes to the same message."""
    if isinstance(msg, krpc.Response):
        again = krpc.decode(krpc.encode_response(msg.tid, msg.sender, nodes=msg.nodes, values=msg.values or None,
                                                 token=msg.token))
        assert again == msg, (again, msg)
    elif isinstance(msg, krpc.ErrorReply):
        again = krpc.decode(krpc.encode_error(msg.tid, msg.code, msg.message))
        assert isinstance(again, krpc.ErrorReply) and again.tid == msg.tid and again.code == msg.code


def test_one_input(data: bytes) -> None:
    node = _make_node()
    now = 1000.0
    for datagram, _ in node.outbox:
        _check_sent(datagram)
    node.outbox.clear()
    pos = 0
    while pos + 4 <= len(data):
        flags, src = data[pos], data[pos + 1]
        (length,) = struct.unpack_from(">H", data, pos + 2)
        datagram = data[pos + 4 : pos + 4 + length]
        pos += 4 + length
        step = (flags >> 1) & 7
        now += dht_node.QUERY_TIMEOUT_S if step == 7 else step
        if step == 7:
            node.tick(now)
            for sent, _ in node.outbox:
                _check_sent(sent)
            node.outbox.clear()
        addr = _addr(src, bool(flags & 16))
        if flags & 1 and node.pending:
            tids = sorted(node.pending)
            tid = tids[src % len(tids)]
            addr = node.pending[tid].addr
            at = datagram.find(b"1:t2:")
            if at >= 0 and at + 7 <= len(datagram):
                datagram = datagram[: at + 5] + tid + datagram[at + 7 :]
        msg = krpc.decode(datagram)
        if msg is not None:
            _roundtrip(msg)
        node.receive(datagram, addr, now)
        answers = [(d, a) for d, a in node.outbox if a == addr]
        if msg is None:
            assert not node.outbox, "a malformed datagram was answered"
        elif isinstance(msg, krpc.Query):
            assert len(answers) <= 1, "one query, several answers"
            for answer, _ in answers:
                reply = _check_sent(answer)
                assert isinstance(reply, krpc.Response | krpc.ErrorReply) and reply.tid == msg.tid
        for sent, _ in node.outbox:
            _check_sent(sent)
        node.outbox.clear()
        _check_caps(node)
