"""BEP 32: "want" and "nodes6" in the codec, a dual-stack node answering from both tables, and torrentpy DHT
services on ::1 finding an announcer's peer over IPv6 alone."""

from __future__ import annotations

import asyncio
import random
import socket
from pathlib import Path

import pytest

from torrentpy import bencoding
from torrentpy.dht.node import DhtNode
from torrentpy.net.dht import DhtService, ipv6_bind
from torrentpy.protocol import krpc

ID_A = bytes(range(20))
HASH = b"\x42" * 20
V4 = ("127.0.0.2", 6881)
V6 = ("::1", 6881)


def test_want_is_decoded_and_encoded() -> None:
    both = krpc.decode(krpc.find_node(b"t1", ID_A, HASH, want=krpc.WANT_BOTH))
    assert both == krpc.FindNode(b"t1", ID_A, False, HASH, True, True)
    only6 = krpc.decode(krpc.get_peers(b"t2", ID_A, HASH, want=(b"n6",)))
    assert isinstance(only6, krpc.GetPeers) and only6.want6 and not only6.want4
    plain = krpc.decode(krpc.get_peers(b"t3", ID_A, HASH))
    assert isinstance(plain, krpc.GetPeers) and not plain.want6 and not plain.want4
    # "want" that is not a list counts as absent, not as malformed.
    odd = bencoding.encode({b"t": b"t4", b"y": b"q", b"q": b"find_node",
                            b"a": {b"id": ID_A, b"target": HASH, b"want": b"n6"}})
    assert krpc.decode(odd) == krpc.FindNode(b"t4", ID_A, False, HASH, False, False)


def test_nodes6_of_the_wrong_length_is_dropped() -> None:
    good = krpc.encode_response(b"r1", ID_A, nodes=[krpc.Node(HASH, ("::1", 7000))])
    msg = krpc.decode(good)
    assert isinstance(msg, krpc.Response) and msg.nodes == (krpc.Node(HASH, ("::1", 7000)),)
    bad = bencoding.encode({b"t": b"r2", b"y": b"r", b"r": {b"id": ID_A, b"nodes6": b"\x00" * 37}})
    assert krpc.decode(bad) is None


def _pair() -> tuple[DhtNode, DhtNode]:
    rng = random.Random(3)
    v4 = DhtNode(b"\x01" * 20, 0.0, rng, rate_limit=False)
    v6 = DhtNode(b"\x01" * 20, 0.0, rng, rate_limit=False, ipv6=True)
    v4.sibling, v6.sibling = v6, v4
    v4.table.add(b"\x04" * 20, ("127.0.0.4", 4000), 0.0, responded=True)
    v6.table.add(b"\x06" * 20, ("::1", 6000), 0.0, responded=True)
    return v4, v6


def _answer(node: DhtNode, query: bytes, addr: tuple[str, int]) -> krpc.Response:
    node.outbox.clear()
    node.receive(query, addr, 1.0)
    assert len(node.outbox) == 1
    reply = krpc.decode(node.outbox[0][0])
    assert isinstance(reply, krpc.Response)
    return reply


def test_answers_follow_want_and_default_to_the_querys_family() -> None:
    v4, v6 = _pair()
    asker = b"\x09" * 20
    hosts = lambda r: sorted(n.addr[0] for n in r.nodes if n.id != asker)  # noqa: E731
    assert hosts(_answer(v4, krpc.find_node(b"a", asker, HASH), V4)) == ["127.0.0.4"]
    assert hosts(_answer(v4, krpc.find_node(b"b", asker, HASH, want=krpc.WANT_BOTH), V4)) == ["127.0.0.4", "::1"]
    assert hosts(_answer(v4, krpc.get_peers(b"c", asker, HASH, want=(b"n6",)), V4)) == ["::1"]
    assert hosts(_answer(v6, krpc.get_peers(b"d", asker, HASH), V6)) == ["::1"]
    assert hosts(_answer(v6, krpc.find_node(b"e", asker, HASH, want=krpc.WANT_BOTH), V6)) == ["127.0.0.4", "::1"]
    # Alone (no IPv6 socket), a node answers "want" with what it has.
    lone = DhtNode(b"\x02" * 20, 0.0, random.Random(1), rate_limit=False)
    lone.table.add(b"\x04" * 20, ("127.0.0.4", 4000), 0.0, responded=True)
    assert hosts(_answer(lone, krpc.find_node(b"f", asker, HASH, want=krpc.WANT_BOTH), V4)) == ["127.0.0.4"]


def test_queries_ask_for_both_families_and_answers_fill_both_tables() -> None:
    v4, v6 = _pair()
    v4.find_node(HASH, 1.0)
    (query, addr), = v4.outbox
    assert addr == ("127.0.0.4", 4000)
    raw = bencoding.decode(query)
    assert raw[b"a"][b"want"] == [b"n4", b"n6"]
    tid = raw[b"t"]
    v4.outbox.clear()
    new6 = krpc.Node(b"\x66" * 20, ("::1", 6006))
    new4 = krpc.Node(b"\x44" * 20, ("127.0.0.5", 4004))
    v4.receive(krpc.encode_response(tid, b"\x04" * 20, nodes=[new4, new6]), addr, 2.0)
    assert v4.table.find(new4.id) is not None and v4.table.find(new6.id) is None
    assert v6.table.find(new6.id) is not None and v6.table.find(new4.id) is None


def test_state_keeps_both_tables() -> None:
    v4, v6 = _pair()
    loaded = DhtNode.load_state(v4.save_state())
    assert loaded is not None
    assert sorted(n.addr for n in loaded[1]) == [("127.0.0.4", 4000), ("::1", 6000)]
    assert DhtNode.load_state(v6.save_state()) == loaded  # either sibling writes the same file


def test_ipv6_bind_counterparts() -> None:
    assert ipv6_bind("0.0.0.0") == "::" and ipv6_bind("") == "::"
    assert ipv6_bind("127.0.0.1") == "::1" and ipv6_bind("::1") == "::1"
    assert ipv6_bind("192.0.2.7") is None and ipv6_bind("example.org") is None


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.timeout(60)
def test_services_find_an_announcer_over_ipv6(tmp_path: Path) -> None:
    assert _has_ipv6_loopback(), "no ::1 on this machine: the DHT's IPv6 node cannot be checked here"
    async def run() -> list[tuple[str, int]]:
        def service(name: str, bootstrap: list[str]) -> DhtService:
            return DhtService(bind="127.0.0.1", bootstrap=bootstrap, state_path=tmp_path / f"{name}.dat",
                              rate_limit=False, tcp6=True)

        router = service("router", [])
        services = [router]
        try:
            await router.start()
            assert router.port6, "the IPv6 node did not start on ::1"
            # The others know only the router's IPv6 address; their IPv4 nodes have nobody to ask.
            seeder = service("seeder", [f"[::1]:{router.port6}"])
            leecher = service("leecher", [f"[::1]:{router.port6}"])
            services += [seeder, leecher]
            await seeder.start()
            await leecher.start()
            seeder.track(HASH, 5555, lambda ih, peers: None)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30.0
            while not router.node6.store.get(HASH, router.now(), random.Random(0)):  # type: ignore[union-attr]
                assert loop.time() < deadline, "the seeder never announced to the router over IPv6"
                await asyncio.sleep(0.2)
            found: list[tuple[str, int]] = []
            leecher.track(HASH, 0, lambda ih, peers: found.extend(peers))
            while ("::1", 5555) not in found and loop.time() < deadline:
                await asyncio.sleep(0.2)
            assert router.node is not None and not router.node.store.get(HASH, router.now(), random.Random(0))
            return found
        finally:
            for s in services:
                await s.close()

    found = asyncio.run(run())
    assert ("::1", 5555) in found
