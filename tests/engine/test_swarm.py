"""Swarm's bookkeeping of addresses and connections, in-process: a fake host records the dials,
fake links record how they were closed, and the clock is set by hand."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

import pytest

from torrentpy.engine.peer import Peer
from torrentpy.engine.swarm import (
    IDLE_TIMEOUT_S,
    KEEPALIVE_INTERVAL_S,
    MAX_CANDIDATES,
    RETRY_AFTER_CLOSE_S,
    RETRY_AFTER_DIAL_S,
    Swarm,
)

Addr = tuple[str, int]
SELF: Addr = ("127.0.0.1", 6881)


class FakeHost:
    def __init__(self) -> None:
        self.clock = 1000.0
        self.dialled: list[Addr] = []
        self.released: list[Any] = []
        self.room = 1_000_000  # dials the session-wide limit still allows
        self.version = "test"
        self.listen_port = SELF[1]

    def now(self) -> float:
        return self.clock

    def is_self(self, addr: Addr) -> bool:
        return addr == SELF

    def can_connect(self) -> bool:
        return len(self.dialled) < self.room

    def connect(self, owner: Any, addr: Addr) -> Coroutine[Any, Any, None]:
        self.dialled.append(addr)

        async def dial() -> None:
            pass

        return dial()

    def count_download(self, nbytes: int) -> None:
        pass

    def release_connection(self, link: Any) -> None:
        self.released.append(link)


class FakeConn:
    def __init__(self, peer_id: bytes | None, listen_port: int | None) -> None:
        self.peer_id = peer_id
        self.peer_listen_port = listen_port
        self.sent: list[bytes] = []

    def send_keepalive(self) -> bytes:
        return b"\0\0\0\0"


class FakeLink:
    def __init__(self, swarm: Swarm, addr: Addr, *, incoming: bool = False, peer_id: bytes | None = None,
                 listen_port: int | None = None) -> None:
        self.swarm = swarm
        self.addr = addr
        self.incoming = incoming
        self.conn = FakeConn(peer_id, listen_port)
        self.handler: Any = None
        self.on_bytes_in: Any = None
        self.closed: str | None = None
        self.written: list[bytes] = []
        self.encryption = ""  # as PeerLink: "rc4" or "plaintext" after an encrypted handshake

    def close(self, reason: str) -> None:
        # Like a PeerLink without a transport: the handler hears of it at once.
        if self.closed is None:
            self.closed = reason
            self.swarm.on_closed(self, reason)  # type: ignore[arg-type]

    def write(self, data: bytes) -> None:
        self.written.append(data)


class Harness:
    def __init__(self, max_peers: int = 3) -> None:
        self.host = FakeHost()
        self.banned: set[Addr] = set()
        self.active = True
        self.departed: list[Peer] = []
        self.swarm = Swarm(
            self.host,  # type: ignore[arg-type]
            handler=self,  # type: ignore[arg-type]
            max_peers=max_peers,
            spawn=self._spawn,
            wants_peers=lambda: self.active,
            is_banned=lambda addr: addr in self.banned,
            on_departed=self.departed.append,
        )

    @staticmethod
    def _spawn(coro: Coroutine[Any, Any, None]) -> None:
        coro.close()  # the fake dial does nothing; closing it keeps "never awaited" warnings away

    def link(self, addr: Addr, **kw: Any) -> FakeLink:
        return FakeLink(self.swarm, addr, **kw)


def addr(n: int) -> Addr:
    return ("10.0.0.1", 1000 + n)


def test_candidates_dedup_and_normalise() -> None:
    h = Harness()
    h.swarm.add_candidates([addr(1), addr(1), ("10.0.0.1", "1001"), addr(2)])  # type: ignore[list-item]
    assert list(h.swarm.candidates) == [addr(1), addr(2)]
    assert all(retry == 0.0 for retry in h.swarm.candidates.values())


def test_candidates_filter_self_banned_and_bad_ports() -> None:
    h = Harness()
    h.banned.add(addr(3))
    h.swarm.add_candidates([SELF, addr(3), ("10.0.0.1", 0), ("10.0.0.1", 65536), addr(4)])
    assert list(h.swarm.candidates) == [addr(4)]


def test_candidates_capped_but_known_ones_kept() -> None:
    h = Harness()
    h.swarm.add_candidates([addr(i) for i in range(MAX_CANDIDATES + 10)])
    assert len(h.swarm.candidates) == MAX_CANDIDATES
    h.swarm.candidates[addr(0)] = 5.0
    # Full: a known address is left as it is (its retry time too), a new one is dropped.
    h.swarm.add_candidates([addr(0), ("10.0.0.2", 1)])
    assert len(h.swarm.candidates) == MAX_CANDIDATES
    assert h.swarm.candidates[addr(0)] == 5.0
    assert ("10.0.0.2", 1) not in h.swarm.candidates


def test_connect_more_respects_room_and_sets_retry_times() -> None:
    h = Harness(max_peers=2)
    h.swarm.add_candidates([addr(1), addr(2), addr(3)])
    now = h.host.clock
    h.swarm.connect_more(now)
    assert h.host.dialled == [addr(1), addr(2)]
    assert h.swarm.connecting == {addr(1), addr(2)}
    assert h.swarm.candidates[addr(1)] == now + RETRY_AFTER_DIAL_S
    assert h.swarm.candidates[addr(3)] == 0.0
    # A failed dial frees its slot, but the address waits for its retry time.
    h.swarm.connect_failed(addr(1), "refused")
    h.swarm.connect_more(now + 1)
    assert h.host.dialled == [addr(1), addr(2), addr(3)]
    h.swarm.connect_failed(addr(3), "refused")
    h.swarm.connect_more(now + RETRY_AFTER_DIAL_S - 1)
    assert h.host.dialled == [addr(1), addr(2), addr(3)]
    h.swarm.connect_more(now + RETRY_AFTER_DIAL_S)
    assert h.host.dialled[-1] == addr(1)


def test_connect_more_skips_banned_self_and_idle_torrents() -> None:
    h = Harness(max_peers=10)
    h.swarm.candidates[SELF] = 0.0  # e.g. from a magnet link, which add_candidates does not filter
    h.swarm.add_candidates([addr(1), addr(2)])
    h.banned.add(addr(1))  # banned after it became a candidate
    h.active = False
    h.swarm.connect_more(h.host.clock)
    assert h.host.dialled == []
    h.active = True
    h.swarm.connect_more(h.host.clock)
    assert h.host.dialled == [addr(2)]


def test_connect_more_stops_at_the_session_limit() -> None:
    h = Harness(max_peers=10)
    h.host.room = 1
    h.swarm.add_candidates([addr(1), addr(2)])
    h.swarm.connect_more(h.host.clock)
    assert h.host.dialled == [addr(1)]
    assert h.swarm.candidates[addr(2)] == 0.0


def test_attach_takes_the_candidate_and_turns_away_duplicates() -> None:
    h = Harness(max_peers=10)
    h.swarm.add_candidates([addr(1)])
    h.swarm.connect_more(h.host.clock)
    link = h.link(addr(1), peer_id=b"A" * 20)
    h.swarm.attach(link)  # type: ignore[arg-type]
    assert link.closed is None and link.handler is h
    assert addr(1) in h.swarm.peers and addr(1) not in h.swarm.candidates and not h.swarm.connecting
    same_addr = h.link(addr(1))
    h.swarm.attach(same_addr)  # type: ignore[arg-type]
    assert same_addr.closed == "duplicate connection"
    same_id = h.link(addr(2), incoming=True, peer_id=b"A" * 20)
    h.swarm.attach(same_id)  # type: ignore[arg-type]
    assert same_id.closed == "duplicate connection (same peer id)"
    h.banned.add(addr(3))
    banned = h.link(addr(3))
    h.swarm.attach(banned)  # type: ignore[arg-type]
    assert banned.closed == "banned peer"
    assert list(h.swarm.peers) == [addr(1)]


def test_attach_caps_peers_with_slack_for_incoming() -> None:
    h = Harness(max_peers=1)
    links = [h.link(addr(i), incoming=True) for i in range(8)]
    for link in links:
        h.swarm.attach(link)  # type: ignore[arg-type]
    assert len(h.swarm.peers) == 6  # max_peers + INCOMING_SLACK
    assert [link.closed for link in links[6:]] == ["too many peers"] * 2


def test_closed_outgoing_peer_is_retried_later_and_credited() -> None:
    h = Harness()
    out = h.link(addr(1))
    inc = h.link(("10.0.0.9", 50000), incoming=True, listen_port=1002)
    h.swarm.attach(out)  # type: ignore[arg-type]
    h.swarm.attach(inc)  # type: ignore[arg-type]
    h.swarm.peers[addr(1)].downloaded = 100
    h.swarm.peers[inc.addr].uploaded = 7
    h.swarm.peers[inc.addr].client = "X"
    out.close("bye")
    inc.close("bye")
    assert not h.swarm.peers
    assert [p.addr for p in h.departed] == [addr(1), inc.addr]
    assert h.host.released == [out, inc]
    assert h.swarm.candidates == {addr(1): h.host.clock + RETRY_AFTER_CLOSE_S}  # not the ephemeral port
    # The incoming peer is credited under its listen port, as a connection we made would be.
    assert h.swarm.peer_totals() == {addr(1): ("", 100, 0), ("10.0.0.9", 1002): ("X", 0, 7)}


def test_closed_banned_peer_is_not_retried() -> None:
    h = Harness()
    link = h.link(addr(1))
    h.swarm.attach(link)  # type: ignore[arg-type]
    h.banned.add(addr(1))
    link.close("banned: lying")
    assert addr(1) not in h.swarm.candidates


def test_stale_link_close_is_ignored() -> None:
    h = Harness()
    first = h.link(addr(1))
    h.swarm.attach(first)  # type: ignore[arg-type]
    second = h.link(addr(1))
    h.swarm.attach(second)  # type: ignore[arg-type]  (turned away: first stays)
    assert h.swarm.peers[addr(1)].link is first
    assert not h.departed


@pytest.mark.parametrize("quiet_s", [KEEPALIVE_INTERVAL_S - 1, KEEPALIVE_INTERVAL_S + 1, IDLE_TIMEOUT_S + 1])
def test_check_health(quiet_s: float) -> None:
    h = Harness()
    link = h.link(addr(1))
    h.swarm.attach(link)  # type: ignore[arg-type]
    peer = h.swarm.peers[addr(1)]
    now = h.host.clock + quiet_s
    alive = h.swarm.check_health(now)
    if quiet_s > IDLE_TIMEOUT_S:
        assert alive == [] and link.closed == "idle for too long"
    elif quiet_s > KEEPALIVE_INTERVAL_S:
        assert alive == [peer] and link.written == [b"\0\0\0\0"] and peer.last_sent_at == now
    else:
        assert alive == [peer] and link.written == []
