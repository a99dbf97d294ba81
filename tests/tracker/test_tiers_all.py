"""TrackerTiers announces the session's real port, to every tier, and merges what the tiers answer."""

from __future__ import annotations

import asyncio
import socket

import pytest

from torrentpy.net.tiers import TrackerTiers
from torrentpy.net.tracker import TrackerError, UdpTracker
from torrentpy.protocol.tracker_http import AnnounceRequest, AnnounceResponse
from torrentpy.tracker import serve

H = bytes(range(20))
# Generous: a loopback announce takes milliseconds; the bound only stops a hung test.
STEP_TIMEOUT_S = 10.0


def pid(n: int) -> bytes:
    return f"-TP0001-{n:012d}".encode()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_no_announce_without_a_port_then_the_real_one_and_again_when_it_changes() -> None:
    server = await serve(0, 0, "127.0.0.1", interval_s=120, min_interval_s=30)
    listen_port = 0  # what a session says before listen()
    clock = Clock()
    tiers = TrackerTiers([[server.http_url]], H, pid(1), lambda: listen_port, clock=clock,
                         min_announce_interval_s=1)
    try:
        with pytest.raises(TrackerError, match="no listen port"):
            await tiers.announce("started", 0, 0, 100)
        assert server.registry.peers(H) == {}
        with pytest.raises(ValueError, match="out of range"):
            AnnounceRequest(H, pid(1), 0, 0, 0, 100)  # nothing below the tiers can build one either

        listen_port = 6881
        await tiers.announce("started", 0, 0, 100)
        assert set(server.registry.peers(H)) == {("127.0.0.1", 6881)}
        assert tiers.next_announce_in(clock.now) == 120

        listen_port = 6885
        assert tiers.next_announce_in(clock.now) == 0  # a new port is announced at once
        await tiers.announce("", 0, 0, 100)
        assert ("127.0.0.1", 6885) in server.registry.peers(H)
        await tiers.stop(0, 0, 100)
        assert ("127.0.0.1", 6885) not in server.registry.peers(H)
    finally:
        await tiers.close()
        await server.close()


async def test_every_tier_is_announced_to_and_peers_are_merged() -> None:
    a = await serve(0, 0, "127.0.0.1", interval_s=120)
    b = await serve(0, 0, "127.0.0.1", interval_s=60)
    # A tracker that never answers, in the first tier: it must not hide the other two.
    black_hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    black_hole.bind(("127.0.0.1", 0))
    dead_url = f"udp://127.0.0.1:{black_hole.getsockname()[1]}/announce"
    others = [UdpTracker(a.udp_url), UdpTracker(b.udp_url), UdpTracker(b.udp_url)]
    await others[0].announce(AnnounceRequest(H, pid(2), 6001, 0, 0, 0, "started"))
    await others[1].announce(AnnounceRequest(H, pid(2), 6001, 0, 0, 0, "started"))
    await others[2].announce(AnnounceRequest(H, pid(3), 6002, 0, 0, 0, "started"))
    tiers = TrackerTiers([[dead_url], [a.http_url], [b.udp_url]], H, pid(1), 7001, udp_retry_scale=0.05,
                         min_announce_interval_s=1)
    answers: list[AnnounceResponse] = []
    try:
        task = asyncio.ensure_future(tiers.announce("started", 0, 0, 100, on_response=answers.append))
        while len(answers) < 2:
            assert not task.done(), "announce ended before both live tiers answered"
            await asyncio.sleep(0.01)
        # Both live answers were handed over while the dead tier was still being retried.
        assert not task.done()
        merged = await asyncio.wait_for(task, STEP_TIMEOUT_S)
        assert sorted(merged.peers) == [("127.0.0.1", 6001), ("127.0.0.1", 6002)]  # 6001 once
        assert merged.interval_s == 60
        for server in (a, b):
            assert ("127.0.0.1", 7001) in server.registry.peers(H)
        status = {s.url: s.status for s in tiers.trackers}
        assert status[a.http_url] == "working" and status[b.udp_url] == "working"
        assert status[dead_url].startswith("error: ")
    finally:
        await tiers.close()
        for t in others:
            await t.close()
        black_hole.close()
        await a.close()
        await b.close()


async def test_inside_a_tier_the_first_answer_wins() -> None:
    a = await serve(0, 0, "127.0.0.1")
    b = await serve(0, 0, "127.0.0.1")
    tiers = TrackerTiers([[a.http_url, b.http_url]], H, pid(1), 7002)
    try:
        await tiers.announce("started", 0, 0, 100)
        # BEP 12 within a tier: one tracker of the tier gets the announce, not both.
        assert len(a.registry.peers(H)) + len(b.registry.peers(H)) == 1
    finally:
        await tiers.close()
        await a.close()
        await b.close()
