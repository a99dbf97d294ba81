"""Fuzz target for the built-in tracker's request parsing (tracker/server.py): HTTP announce and scrape
query strings through the real aiohttp handlers, and BEP 15 datagrams through `handle_datagram`.
Every HTTP answer is a bencoded dict (a failure reason, or the announce/scrape fields); every UDP answer
echoes the transaction id with a known action, or there is none; the registry stays within its limits.

Byte 0 picks the case: 0 HTTP announce, 1 HTTP scrape (the rest is the raw query string), 2 UDP over
IPv4, 3 over IPv6 (the rest is the datagram; bytes 0..8 of a non-connect datagram are replaced by the
connection id the server gave this address, as a real client would send it).

    .venv/bin/python fuzz/run.py tracker_server [-max_total_time=60]
"""

from __future__ import annotations

import random
import struct
from typing import Any

from aiohttp.test_utils import make_mocked_request

from torrentpy import bencoding
from torrentpy.protocol import tracker_udp as udp
from torrentpy.tracker.registry import SwarmRegistry
from torrentpy.tracker.server import CONNECTION_WINDOW_S, TrackerServer

_CLOCK = 1000.0 * CONNECTION_WINDOW_S
# Small limits so the fuzzer reaches "registry full" quickly; the registry lives across inputs.
_REGISTRY = SwarmRegistry(1800, max_swarms=8, max_peers_per_swarm=8, rng=random.Random(0))
_SERVER = TrackerServer(_REGISTRY, "127.0.0.1", 900, lambda: _CLOCK)
_ADDR4 = ("127.0.0.1", 6881)
_ADDR6 = ("::1", 6881, 0, 0)


class _Transport:
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default


def _run(coro: Any) -> Any:
    """The handlers await nothing: drive the coroutine to its end without an event loop."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    raise AssertionError("handler suspended")


def test_one_input(data: bytes) -> None:
    if not data:
        return
    mode, body = data[0] % 4, data[1:]
    if mode < 2:
        _http(mode, body.decode("latin-1"))
    else:
        _udp(body, ipv6=mode == 3)
    assert len(_REGISTRY._swarms) <= 8
    assert all(len(s.peers) <= 8 for s in _REGISTRY._swarms.values())


def _http(mode: int, query: str) -> None:
    if any(c in query for c in " #\r\n\x00") or not query.isascii():
        return  # not something an HTTP request line can carry; aiohttp rejects it before us
    path = "/announce" if mode == 0 else "/scrape"
    request = make_mocked_request("GET", f"{path}?{query}", transport=_Transport())
    handler = _SERVER._handle_announce if mode == 0 else _SERVER._handle_scrape
    response = _run(handler(request))
    assert response.status == 200
    body = bencoding.decode(response.body)
    assert isinstance(body, dict)
    if b"failure reason" in body:
        assert isinstance(body[b"failure reason"], bytes)
    elif mode == 0:
        assert {b"interval", b"complete", b"incomplete", b"peers"} <= set(body)
    else:
        assert isinstance(body.get(b"files"), dict)


def _udp(datagram: bytes, ipv6: bool) -> None:
    addr = _ADDR6 if ipv6 else _ADDR4
    if len(datagram) >= 16 and struct.unpack_from(">i", datagram, 8)[0] != udp.ACTION_CONNECT:
        window = int(_CLOCK // CONNECTION_WINDOW_S)
        datagram = struct.pack(">q", _SERVER.connection_id(addr, window)) + datagram[8:]
    answer = _SERVER.handle_datagram(datagram, addr, ipv6)
    if answer is None:
        assert len(datagram) < 16 or len(datagram) > udp.MAX_DATAGRAM_BYTES
        return
    action, tid = struct.unpack_from(">ii", answer)
    assert tid == struct.unpack_from(">i", datagram, 12)[0]
    assert action in (udp.ACTION_CONNECT, udp.ACTION_ANNOUNCE, udp.ACTION_SCRAPE, udp.ACTION_ERROR)
    if action == udp.ACTION_ANNOUNCE:
        assert (len(answer) - 20) % (18 if ipv6 else 6) == 0
