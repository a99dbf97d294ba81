"""Our HTTP/UDP clients and TrackerTiers against the built-in tracker and hostile loopback servers."""

from __future__ import annotations

import asyncio
import io
import random
import socket
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from torrentpy.net.tiers import TrackerTiers
from torrentpy.net.tracker import HttpTracker, UdpTracker
from torrentpy.protocol.tracker_http import (
    MAX_RESPONSE_BYTES,
    AnnounceRequest,
    TrackerError,
    TrackerFailure,
)
from torrentpy.protocol.tracker_udp import encode_error, parse_request
from torrentpy.tracker import run_forever, serve

from .lossy_udp import LossyUdpRelay

H = bytes(range(20))


def peer_id(n: int) -> bytes:
    return f"-TP0001-{n:012d}".encode()


def req(n: int, port: int, event: str = "started", left: int = 100, compact: bool = True) -> AnnounceRequest:
    return AnnounceRequest(H, peer_id(n), port, 0, 0, left, event, 50, n, compact)


def closed_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def tracker():
    server = await serve(0, 0, "127.0.0.1", interval_s=120, min_interval_s=30)
    yield server
    await server.close()


@pytest.fixture
async def http_session():
    async with aiohttp.ClientSession() as s:
        yield s


async def get_session_factory(session):
    async def get():
        return session
    return get


async def test_server_reports_real_ports(tracker):
    assert tracker.http_port and tracker.udp_port
    assert tracker.http_url == f"http://127.0.0.1:{tracker.http_port}/announce"
    assert tracker.udp_url == f"udp://127.0.0.1:{tracker.udp_port}/announce"


@pytest.mark.parametrize("compact", [True, False])
async def test_http_clients_find_each_other(tracker, http_session, compact):
    t = HttpTracker(tracker.http_url, await get_session_factory(http_session))
    first = await t.announce(req(1, 7001, compact=compact))
    assert first.peers == [] and first.interval_s == 120 and first.min_interval_s == 30
    second = await t.announce(req(2, 7002, left=0, compact=compact))
    assert second.peers == [("127.0.0.1", 7001)]
    assert (second.complete, second.incomplete) == (1, 1)
    again = await t.announce(req(1, 7001, event="", compact=compact))
    assert again.peers == [("127.0.0.1", 7002)]
    scrape = await t.scrape([H])
    assert scrape[H].complete == 1 and scrape[H].incomplete == 1
    await t.announce(req(2, 7002, event="stopped"))
    assert list(tracker.registry.peers(H)) == [("127.0.0.1", 7001)]


async def test_udp_clients_find_each_other(tracker):
    a, b = UdpTracker(tracker.udp_url), UdpTracker(tracker.udp_url)
    try:
        assert (await a.announce(req(1, 7101))).peers == []
        resp = await b.announce(req(2, 7102))
        assert resp.peers == [("127.0.0.1", 7101)] and resp.interval_s == 120
        assert (await a.announce(req(1, 7101, event=""))).peers == [("127.0.0.1", 7102)]
        assert (await a.scrape([H]))[H].incomplete == 2
        await b.announce(req(2, 7102, event="stopped"))
        assert list(tracker.registry.peers(H)) == [("127.0.0.1", 7101)]
    finally:
        await a.close()
        await b.close()


async def test_udp_retransmits_after_loss(tracker):
    async with LossyUdpRelay(("127.0.0.1", tracker.udp_port), drop_first=2) as relay:
        t = UdpTracker(relay.url, retry_scale=0.01, max_retries=4)
        try:
            resp = await t.announce(req(1, 7201))
        finally:
            await t.close()
    assert resp.interval_s == 120
    assert relay.dropped == 2 and relay.seen == 4  # 2 lost connects, 1 connect, 1 announce
    assert ("127.0.0.1", 7201) in tracker.registry.peers(H)


async def test_udp_gives_up_after_max_retries(tracker):
    async with LossyUdpRelay(("127.0.0.1", tracker.udp_port), drop_all=True) as relay:
        t = UdpTracker(relay.url, retry_scale=0.002, max_retries=3)
        try:
            with pytest.raises(TrackerError, match="no answer after 4 tries"):
                await t.announce(req(1, 7301))
        finally:
            await t.close()
    assert relay.seen == 4


async def test_udp_refused_port_is_an_error_not_a_hang():
    t = UdpTracker(f"udp://127.0.0.1:{closed_port(socket.SOCK_DGRAM)}/announce", retry_scale=0.1)
    try:
        with pytest.raises(TrackerError):
            await asyncio.wait_for(t.announce(req(1, 7401)), 10)
    finally:
        await t.close()


async def test_udp_error_action_surfaces_reason():
    class ErrorTracker(asyncio.DatagramProtocol):
        def connection_made(self, transport):
            self.transport = transport

        def datagram_received(self, data, addr):
            tid = parse_request(data).transaction_id
            self.transport.sendto(encode_error(tid, "unregistered torrent"), addr)

    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(ErrorTracker, local_addr=("127.0.0.1", 0))
    t = UdpTracker(f"udp://127.0.0.1:{transport.get_extra_info('sockname')[1]}/announce")
    try:
        with pytest.raises(TrackerFailure, match="unregistered torrent"):
            await t.announce(req(1, 7501))
    finally:
        await t.close()
        transport.close()


async def test_http_server_rejects_bad_requests(tracker, http_session):
    url = f"http://127.0.0.1:{tracker.http_port}/announce?info_hash=short&peer_id=x&port=1&left=0"
    async with http_session.get(url) as resp:
        body = await resp.read()
    assert body.startswith(b"d14:failure reason")


# --- hostile or failing HTTP trackers -------------------------------------------------------------


async def start_app(handler: Any) -> tuple[web.AppRunner, int]:
    app = web.Application()
    app.router.add_get("/announce", handler)
    app.router.add_get("/elsewhere", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    return runner, sock.getsockname()[1]


@pytest.fixture
async def canned_http():
    """An HTTP server on loopback whose /announce answer the test sets: (status, body)."""
    state: dict[str, Any] = {"status": 200, "body": b""}

    async def handler(request):
        if request.path == "/elsewhere":
            state["followed"] = True
            return web.Response(body=b"d8:intervali60e5:peers0:e")
        headers = {"Location": "/elsewhere"} if state["status"] in (301, 302, 307) else {}
        return web.Response(status=state["status"], body=state["body"], headers=headers)

    runner, port = await start_app(handler)
    state["url"] = f"http://127.0.0.1:{port}/announce"
    yield state
    await runner.cleanup()


async def test_failure_reason_from_http_tracker(canned_http, http_session):
    canned_http["body"] = b"d14:failure reason25:torrent not in whitelist.e"
    t = HttpTracker(canned_http["url"], await get_session_factory(http_session))
    with pytest.raises(TrackerFailure) as info:
        await t.announce(req(1, 1))
    assert info.value.reason == "torrent not in whitelist."


@pytest.mark.parametrize(
    ("status", "body", "match"),
    [
        (200, b"x" * (MAX_RESPONSE_BYTES + 10), "larger than"),
        (200, b"<html>hello</html>", "not valid bencoding"),
        (500, b"oops", "HTTP 500"),
        (404, b"d14:failure reason9:not theree", "not there"),
        (302, b"", "HTTP 302"),
    ],
)
async def test_hostile_http_answers(canned_http, http_session, status, body, match):
    canned_http["status"], canned_http["body"] = status, body
    t = HttpTracker(canned_http["url"], await get_session_factory(http_session))
    with pytest.raises(TrackerError, match=match):
        await t.announce(req(1, 1))
    assert "followed" not in canned_http  # redirects could point anywhere; never followed


async def test_http_timeout(http_session):
    release = asyncio.Event()

    async def slow(request):
        await release.wait()
        return web.Response(body=b"")

    runner, port = await start_app(slow)
    try:
        t = HttpTracker(f"http://127.0.0.1:{port}/announce", await get_session_factory(http_session), 0.3)
        with pytest.raises(TrackerError, match="timed out"):
            await t.announce(req(1, 1))
    finally:
        release.set()
        await runner.cleanup()


# --- tiers ----------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_tiers_fail_over_and_promote_working_tracker(tracker):
    dead_http = f"http://127.0.0.1:{closed_port(socket.SOCK_STREAM)}/announce"
    dead_udp = f"udp://127.0.0.1:{closed_port(socket.SOCK_DGRAM)}/announce"
    clock = Clock()
    tiers = TrackerTiers(
        [[dead_http, "wss://tracker.invalid/announce", dead_udp], [tracker.udp_url, tracker.http_url]],
        H, peer_id(1), 7601, clock=clock, rng=random.Random(3), udp_retry_scale=0.01,
        min_announce_interval_s=1,
    )
    try:
        states = {s.url: s for s in tiers.trackers}
        assert states["wss://tracker.invalid/announce"].status.startswith("error: unsupported tracker scheme")
        assert all(s.status == "not contacted" for u, s in states.items() if not u.startswith("wss"))
        resp = await tiers.announce("started", 0, 0, 100)
        assert resp.interval_s == 120
        assert states[dead_http].status.startswith("error") and states[dead_http].last_error
        assert states[dead_udp].status.startswith("error")
        working = [s for s in tiers.trackers if s.status == "working"]
        assert len(working) == 1 and working[0].tier == 1
        assert tiers.trackers[3] is working[0]  # moved to the front of tier 1
        assert working[0].next_announce_at == clock.now + 120
        assert ("127.0.0.1", 7601) in tracker.registry.peers(H)
    finally:
        await tiers.close()


async def test_tiers_schedule_interval_min_interval_and_early_announce(tracker, http_session):
    clock = Clock()
    tiers = TrackerTiers([[tracker.http_url]], H, peer_id(2), 7701, clock=clock, min_announce_interval_s=1,
                         get_session=lambda: http_session)
    try:
        assert tiers.next_announce_in(clock.now) == 0
        await tiers.announce("started", 0, 0, 100)
        assert tiers.next_announce_in(clock.now) == 120
        clock.now += 10
        assert not tiers.wants_early_announce(clock.now)
        # min interval is 30 s: an early announce may happen 20 s from now, not before.
        assert tiers.announce_early(clock.now) == 20
        clock.now += 15
        assert tiers.next_announce_in(clock.now) == 5
        assert not tiers.wants_early_announce(clock.now)
        clock.now += 40
        assert tiers.wants_early_announce(clock.now)
        assert tiers.announce_early(clock.now) == 0
        state = tiers.trackers[0]
        assert (state.peers_returned, state.seeders, state.leechers) == (0, 0, 1)
    finally:
        await tiers.close()
    assert not http_session.closed  # a session passed in belongs to the caller


async def test_tiers_all_failing_backs_off_and_keeps_errors():
    clock = Clock()
    dead = f"http://127.0.0.1:{closed_port(socket.SOCK_STREAM)}/announce"
    tiers = TrackerTiers([[dead], ["ftp://x/y"]], H, peer_id(3), 7801, clock=clock, retry_base_s=10)
    try:
        with pytest.raises(TrackerError, match="no tracker answered"):
            await tiers.announce("started", 0, 0, 100)
        assert tiers.next_announce_in(clock.now) == 10
        with pytest.raises(TrackerError):
            await tiers.announce("started", 0, 0, 100)
        assert tiers.next_announce_in(clock.now) == 20
        assert all(s.status.startswith("error: ") for s in tiers.trackers)
    finally:
        await tiers.close()


async def test_tiers_stop_sends_stopped_and_keeps_warning(tracker, canned_http):
    canned_http["body"] = b"d8:intervali60e5:peers0:15:warning message12:be nice \x1b[0me"
    tiers = TrackerTiers([[tracker.http_url], [canned_http["url"]]], H, peer_id(4), 7901,
                         min_announce_interval_s=1)
    other = TrackerTiers([[canned_http["url"]]], H, peer_id(5), 7902)
    try:
        await tiers.announce("started", 0, 0, 100)
        assert ("127.0.0.1", 7901) in tracker.registry.peers(H)
        await other.announce("started", 0, 0, 100)
        assert other.trackers[0].message == "be nice  [0m"
        await tiers.stop(0, 0, 100, timeout_s=2)
        assert ("127.0.0.1", 7901) not in tracker.registry.peers(H)
        assert tiers.trackers[0].status == "stopped"
    finally:
        await tiers.close()
        await other.close()


async def test_run_forever_prints_urls_and_stops_on_cancel():
    out = io.StringIO()
    task = asyncio.create_task(run_forever(0, 0, "127.0.0.1", out=out))
    for _ in range(100):
        if out.getvalue():
            break
        await asyncio.sleep(0.01)
    line = out.getvalue().strip()
    assert "http://127.0.0.1:" in line and "udp://127.0.0.1:" in line and "\n" not in line
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
