"""Sending PEX (BEP 11): the per-peer schedule as a pure object, then Swarm choosing whom to tell what."""

from __future__ import annotations

from typing import Any

import pytest

from tests.engine.test_swarm import FakeConn, FakeLink, Harness, addr
from torrentpy import bencoding
from torrentpy.engine.pex import PexSchedule
from torrentpy.engine.swarm import Swarm
from torrentpy.protocol.extension import (
    MAX_PEX_SEND,
    PEX_CONNECTABLE,
    PEX_ENCRYPTION,
    PEX_SEED,
    UT_PEX,
    encode_pex,
)

Addr = tuple[str, int]


def test_first_message_lists_everyone_but_the_recipient() -> None:
    pex = PexSchedule(interval_s=60)
    connected = {addr(1): 0x10, addr(2): 0, addr(3): 2}
    msg = pex.message("p", 0.0, connected, exclude=frozenset({addr(1)}))
    assert msg is not None
    assert msg.added == (addr(2), addr(3)) and msg.flags == (0, 2) and msg.dropped == ()


def test_at_most_once_per_interval_and_only_with_news() -> None:
    pex = PexSchedule(interval_s=60)
    assert pex.message("p", 0.0, {addr(1): 0}) is not None
    assert pex.message("p", 30.0, {addr(1): 0, addr(2): 0}) is None  # too soon, news or not
    msg = pex.message("p", 60.0, {addr(2): 0})
    assert msg is not None and msg.added == (addr(2),) and msg.dropped == (addr(1),)
    assert pex.message("p", 200.0, {addr(2): 0}) is None  # nothing changed: nothing sent
    # News after a quiet spell goes out at once: the last message is more than an interval old.
    msg = pex.message("p", 201.0, {addr(2): 0, addr(3): 0})
    assert msg is not None and msg.added == (addr(3),)
    assert pex.message("p", 202.0, {addr(4): 0}) is None


def test_each_peer_has_its_own_clock() -> None:
    pex = PexSchedule(interval_s=60)
    assert pex.message("a", 0.0, {addr(1): 0}) is not None
    assert pex.message("b", 10.0, {addr(1): 0}) is not None
    pex.forget("a")
    assert len(pex) == 1
    msg = pex.message("a", 11.0, {addr(1): 0})  # a peer that reconnects starts over
    assert msg is not None and msg.added == (addr(1),)


def test_lists_are_capped_and_the_rest_follows() -> None:
    pex = PexSchedule(interval_s=1)
    many = {addr(i): 0 for i in range(MAX_PEX_SEND + 20)}
    first = pex.message("p", 0.0, many)
    assert first is not None and len(first.added) == MAX_PEX_SEND
    second = pex.message("p", 1.0, many)
    assert second is not None and len(second.added) == 20
    assert set(first.added) | set(second.added) == set(many)
    gone = pex.message("p", 2.0, {})
    assert gone is not None and len(gone.dropped) == MAX_PEX_SEND and gone.added == ()
    rest = pex.message("p", 3.0, {})
    assert rest is not None and len(rest.dropped) == 20


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError):
        PexSchedule(interval_s=0)


# --- Swarm.send_pex ---------------------------------------------------------------------------


class PexConn(FakeConn):
    def __init__(self, peer_id: bytes | None, listen_port: int | None, *, pex: bool = True) -> None:
        super().__init__(peer_id, listen_port)
        self.extensions = {UT_PEX: 2} if pex else {}
        self.peer_extensions = {UT_PEX: 5} if pex else {}
        self.pex_sent: list[tuple[list[Addr], list[Addr], list[int]]] = []

    def send_pex(self, added: Any, dropped: Any, flags: Any) -> bytes:
        self.pex_sent.append((list(added), list(dropped), list(flags)))
        return encode_pex(added, dropped, flags)


class PexHarness(Harness):
    def __init__(self, *, public: bool = True, interval_s: float = 60.0) -> None:
        super().__init__(max_peers=20)
        self.public = public
        self.swarm = Swarm(
            self.host,  # type: ignore[arg-type]
            handler=self,  # type: ignore[arg-type]
            max_peers=20,
            spawn=self._spawn,
            wants_peers=lambda: True,
            is_banned=lambda a: a in self.banned,
            on_departed=self.departed.append,
            shares_peers=lambda: self.public,
            pex_interval_s=interval_s,
        )

    def join(self, a: Addr, *, incoming: bool = False, listen_port: int | None = None, pex: bool = True,
             n: int = 0) -> FakeLink:
        link = FakeLink(self.swarm, a, incoming=incoming, peer_id=bytes([65 + n]) * 20)
        link.conn = PexConn(link.conn.peer_id, listen_port, pex=pex)
        self.swarm.attach(link)  # type: ignore[arg-type]
        return link


def _sent(link: FakeLink) -> list[tuple[list[Addr], list[Addr], list[int]]]:
    assert isinstance(link.conn, PexConn)
    return link.conn.pex_sent


def test_swarm_tells_each_pex_peer_about_the_others_by_listen_address() -> None:
    h = PexHarness()
    out = h.join(addr(1), n=1)
    inc = h.join(("10.0.0.2", 40000), incoming=True, listen_port=6881, n=2)
    anon = h.join(("10.0.0.3", 40001), incoming=True, listen_port=None, n=3)  # port unknown: not listed
    no_pex = h.join(addr(4), pex=False, n=4)
    assert h.swarm.send_pex(h.host.clock) == 3
    assert _sent(out) == [([("10.0.0.2", 6881), addr(4)], [], [0, PEX_CONNECTABLE])]
    assert _sent(inc) == [([addr(1), addr(4)], [], [PEX_CONNECTABLE, PEX_CONNECTABLE])]
    assert _sent(anon)[0][0] == [addr(1), ("10.0.0.2", 6881), addr(4)]
    assert not _sent(no_pex)  # never offered ut_pex
    # What went out is a real ut_pex message on the link.
    assert bencoding.decode(out.written[-1])[b"added.f"] == bytes([0, PEX_CONNECTABLE])
    assert h.swarm.send_pex(h.host.clock + 1) == 0  # within the interval


def test_swarm_sends_dropped_after_a_peer_leaves_and_marks_seeds() -> None:
    h = PexHarness(interval_s=5)
    a, b, c = h.join(addr(1), n=1), h.join(addr(2), n=2), h.join(addr(3), n=3)
    h.swarm.send_pex(h.host.clock)

    class Full:
        def all(self) -> bool:
            return True

    h.swarm.peers[addr(2)].bitfield = Full()  # type: ignore[assignment]
    c.close("gone")
    h.host.clock += 5
    h.swarm.send_pex(h.host.clock)
    assert _sent(a)[-1] == ([], [addr(3)], [])
    assert _sent(b)[-1] == ([], [addr(3)], [])
    d = h.join(addr(5), n=5)
    h.host.clock += 5
    h.swarm.send_pex(h.host.clock)
    assert _sent(d) == [([addr(1), addr(2)], [], [PEX_CONNECTABLE, PEX_CONNECTABLE | PEX_SEED])]
    assert _sent(a)[-1] == ([addr(5)], [], [PEX_CONNECTABLE])


def test_peers_that_spoke_mse_are_flagged_as_preferring_encryption() -> None:
    h = PexHarness()
    a = h.join(addr(1), n=1)
    b = h.join(addr(2), n=2)
    c = h.join(addr(3), n=3)
    b.encryption, c.encryption = "rc4", "plaintext"  # both handshakes were encrypted
    h.swarm.send_pex(h.host.clock)
    assert _sent(a) == [([addr(2), addr(3)], [], [PEX_CONNECTABLE | PEX_ENCRYPTION] * 2)]
    assert _sent(b) == [([addr(1), addr(3)], [], [PEX_CONNECTABLE, PEX_CONNECTABLE | PEX_ENCRYPTION])]


def test_private_torrents_send_no_pex() -> None:
    h = PexHarness(public=False)
    a = h.join(addr(1), n=1)
    h.join(addr(2), n=2)
    assert h.swarm.send_pex(h.host.clock) == 0 and not _sent(a) and not a.written
    h.public = True  # the same swarm once public: proves the test above could fail
    assert h.swarm.send_pex(h.host.clock) == 2
