"""The tracker client and server on uvloop and plain asyncio, over IPv4 and IPv6 loopback."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from torrentpy.net.tiers import TrackerTiers
from torrentpy.net.tracker import UdpTracker
from torrentpy.protocol.tracker_http import AnnounceRequest, TrackerError
from torrentpy.tracker import SwarmRegistry, serve

H = b"\x07" * 20

RUNNERS: dict[str, Callable[[Coroutine[Any, Any, None]], None]] = {
    "asyncio": asyncio.run,
    "uvloop": uvloop.run,
}


def pid(n: int) -> bytes:
    return f"-TP0001-{n:012d}".encode()


async def find_each_other(bind: str) -> None:
    server = await serve(0, 0, bind, interval_s=60)
    a = TrackerTiers([[server.udp_url]], H, pid(1), 5001)
    b = TrackerTiers([[server.http_url]], H, pid(2), 5002)
    try:
        assert (await a.announce("started", 0, 0, 1)).peers == []
        assert (await b.announce("started", 0, 0, 1)).peers == [(bind, 5001)]
        assert (await a.announce("", 0, 0, 1)).peers == [(bind, 5002)]
        await a.stop()
        await b.stop()
        assert server.registry.peers(H) == {}
    finally:
        await a.close()
        await b.close()
        await server.close()

    # A closed UDP port fails fast (ICMP port unreachable) instead of retrying for minutes.
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.bind((bind, 0))
        port = s.getsockname()[1]
    host = f"[{bind}]" if ":" in bind else bind
    dead = UdpTracker(f"udp://{host}:{port}/announce", retry_scale=1.0)
    try:
        with pytest.raises(TrackerError):
            await asyncio.wait_for(dead.announce(AnnounceRequest(H, pid(3), 5003, 0, 0, 1)), 5)
    finally:
        await dead.close()


@pytest.mark.parametrize("bind", ["127.0.0.1", "::1"])
@pytest.mark.parametrize("loop", sorted(RUNNERS))
def test_clients_and_server_on_each_loop_and_family(loop: str, bind: str) -> None:
    RUNNERS[loop](find_each_other(bind))


async def test_mixed_families_share_one_registry() -> None:
    registry = SwarmRegistry()
    v4 = await serve(0, 0, "127.0.0.1", registry=registry)
    v6 = await serve(0, 0, "::1", registry=registry)
    six = TrackerTiers([[v6.udp_url]], H, pid(6), 6006)
    four_http = TrackerTiers([[v4.http_url]], H, pid(4), 4004)
    four_udp = UdpTracker(v4.udp_url)
    try:
        await six.announce("started", 0, 0, 1)
        # HTTP carries both families: the IPv6 peer comes back in `peers6` (BEP 7).
        assert (await four_http.announce("started", 0, 0, 1)).peers == [("::1", 6006)]
        # A BEP 15 answer over an IPv4 socket can only hold IPv4 records.
        resp = await four_udp.announce(AnnounceRequest(H, pid(5), 5005, 0, 0, 1, "started"))
        assert resp.peers == [("127.0.0.1", 4004)] and resp.incomplete == 3
        # ... and over IPv6 only IPv6 ones.
        assert (await six.announce("", 0, 0, 1)).peers == []
    finally:
        for t in (six, four_http):
            await t.close()
        await four_udp.close()
        await v4.close()
        await v6.close()
