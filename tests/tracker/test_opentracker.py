"""Our HTTP and UDP tracker clients against a real opentracker on loopback."""

from __future__ import annotations

import aiohttp
import pytest

from tests.interop.opentracker import opentracker  # noqa: F401
from torrentpy.net.tiers import TrackerTiers
from torrentpy.net.tracker import HttpTracker, UdpTracker
from torrentpy.protocol.tracker_http import AnnounceRequest, TrackerError, TrackerFailure

from .lossy_udp import LossyUdpRelay

pytestmark = pytest.mark.interop

H = bytes.fromhex("0123456789abcdef0123456789abcdef01234567")


def req(n: int, port: int, event: str = "started", left: int = 100, info_hash: bytes = H) -> AnnounceRequest:
    return AnnounceRequest(info_hash, f"-TP0001-{n:012d}".encode(), port, 0, 0, left, event, 50, n)


def test_fixture_whitelist_reload(opentracker):  # noqa: F811
    assert not opentracker.is_allowed(H)
    opentracker.allow(H)
    assert opentracker.is_allowed(H)
    assert opentracker.reload_method == "sighup"
    assert opentracker.proc is not None and opentracker.proc.poll() is None


async def test_http_peers_see_each_other_and_stopped_removes(opentracker):  # noqa: F811
    opentracker.allow(H)
    async with aiohttp.ClientSession() as session:
        async def get_session():
            return session

        t = HttpTracker(opentracker.http_url, get_session)
        await t.announce(req(1, 7001))
        second = await t.announce(req(2, 7002, left=0))
        assert ("127.0.0.1", 7001) in second.peers
        assert second.interval_s > 0 and (second.complete, second.incomplete) == (1, 1)
        first_again = await t.announce(req(1, 7001, event=""))
        assert ("127.0.0.1", 7002) in first_again.peers
        await t.announce(req(2, 7002, event="stopped"))
        after = await t.announce(req(1, 7001, event=""))
        assert ("127.0.0.1", 7002) not in after.peers
        assert (after.complete, after.incomplete) == (0, 1)
        scrape = await t.scrape([H])
        assert scrape[H].incomplete == 1


async def test_udp_peers_see_each_other_and_stopped_removes(opentracker):  # noqa: F811
    opentracker.allow(H)
    a, b = UdpTracker(opentracker.udp_url), UdpTracker(opentracker.udp_url)
    try:
        await a.announce(req(1, 7101))
        resp = await b.announce(req(2, 7102))
        assert ("127.0.0.1", 7101) in resp.peers and resp.incomplete == 2
        assert ("127.0.0.1", 7102) in (await a.announce(req(1, 7101, event=""))).peers
        await b.announce(req(2, 7102, event="stopped"))
        assert ("127.0.0.1", 7102) not in (await a.announce(req(1, 7101, event=""))).peers
        assert (await a.scrape([H]))[H].incomplete == 1
    finally:
        await a.close()
        await b.close()


async def test_udp_retry_through_lossy_link(opentracker):  # noqa: F811
    opentracker.allow(H)
    async with LossyUdpRelay(("127.0.0.1", opentracker.udp_port), drop_first=1) as relay:
        t = UdpTracker(relay.url, retry_scale=0.01, max_retries=3)
        try:
            await t.announce(req(1, 7201))
            relay.drop_first = 1  # lose the next announce too: connection id is reused, announce resent
            resp = await t.announce(req(1, 7201, event=""))
        finally:
            await t.close()
    assert relay.dropped == 2 and relay.seen == 5
    assert ("127.0.0.1", 7201) in resp.peers  # opentracker lists the announcer itself


async def test_unlisted_torrent_failure_reason(opentracker):  # noqa: F811
    other = b"\x99" * 20
    async with aiohttp.ClientSession() as session:
        async def get_session():
            return session

        with pytest.raises(TrackerFailure, match="not authorized"):
            await HttpTracker(opentracker.http_url, get_session).announce(req(1, 7301, info_hash=other))
    t = UdpTracker(opentracker.udp_url)
    try:
        # opentracker answers an unlisted UDP announce with a bare 8-byte header, no error text.
        with pytest.raises(TrackerError, match="truncated announce response"):
            await t.announce(req(1, 7301, info_hash=other))
    finally:
        await t.close()


async def test_tiers_against_opentracker(opentracker):  # noqa: F811
    opentracker.allow(H)
    tiers = TrackerTiers([[opentracker.udp_url, opentracker.http_url]], H, b"-TP0001-000000000009", 7401,
                         min_announce_interval_s=1)
    try:
        resp = await tiers.announce("started", 0, 0, 100)
        assert ("127.0.0.1", 7401) in resp.peers
        assert tiers.trackers[0].status == "working"
        await tiers.stop(0, 0, 100)
    finally:
        await tiers.close()
    probe = UdpTracker(opentracker.udp_url)
    try:
        resp = await probe.announce(req(1, 7402))
    finally:
        await probe.close()
    assert ("127.0.0.1", 7401) not in resp.peers
