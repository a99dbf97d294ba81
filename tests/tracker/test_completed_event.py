"""`completed` reaches every tracker that answers, whatever another tier is doing.

A tier whose UDP tracker never answers keeps an announce in flight for minutes (BEP 15 retries). An
announce made meanwhile (the download completing) must still reach the working tier at once, and
the dead tier's own turn must come after its announce in flight ends, never be dropped.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from torrentpy.creation import create_torrent
from torrentpy.engine.session import Session, SessionConfig
from torrentpy.metainfo import parse_torrent
from torrentpy.net.tiers import TrackerTiers
from torrentpy.protocol.tracker_http import AnnounceResponse
from torrentpy.tracker import serve
from torrentpy.tracker.registry import AnnounceResult, SwarmRegistry

H = bytes(range(20))
# Generous: each step is a few loopback round trips; the bound only stops a hung test.
STEP_TIMEOUT_S = 10.0
# Torrent.stop() waits this long for the trackers' `stopped`; the exit must not wait longer.
EXIT_BOUND_S = 5.0


def pid(n: int) -> bytes:
    return f"-TP0001-{n:012d}".encode()


class RecordingRegistry(SwarmRegistry):
    """The built-in tracker's registry, remembering every (port, event) it was told."""

    def __init__(self) -> None:
        super().__init__(interval_s=1800)
        self.events: list[tuple[int, str]] = []

    def announce(self, info_hash: bytes, ip: str, port: int, peer_id: bytes, left: int, event: str,
                 numwant: int, now: float) -> AnnounceResult:
        self.events.append((port, event))
        return super().announce(info_hash, ip, port, peer_id, left, event, numwant, now)


@pytest.fixture
def dead_udp_url() -> Iterator[str]:
    """A UDP port that is bound, so nothing answers "port unreachable", and never replies."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as black_hole:
        black_hole.bind(("127.0.0.1", 0))
        yield f"udp://127.0.0.1:{black_hole.getsockname()[1]}/announce"


async def _until(predicate, what: str) -> None:  # type: ignore[no-untyped-def]
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(poll(), STEP_TIMEOUT_S)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


@pytest.mark.timeout(90)
async def test_a_download_that_completes_tells_the_working_tracker_while_a_dead_tier_hangs(
    tmp_path: Path, dead_udp_url: str
) -> None:
    registry = RecordingRegistry()
    tracker = await serve(0, None, "127.0.0.1", registry=registry)
    payload = tmp_path / "seed" / "data.bin"
    payload.parent.mkdir()
    payload.write_bytes(bytes(range(256)) * 1024)
    # The dead tier comes first, as in many public announce lists.
    meta = parse_torrent(create_torrent(str(payload), trackers=[[dead_udp_url], [tracker.http_url]]))
    seeder = Session(SessionConfig(save_dir=str(payload.parent), listen_port=0, bind="127.0.0.1",
                                   seed_ratio=None))
    leecher = Session(SessionConfig(save_dir=str(tmp_path / "dl"), listen_port=0, bind="127.0.0.1",
                                    seed_ratio=None))
    seeder.add(meta)
    torrent = leecher.add(meta)
    await seeder.listen()
    await leecher.listen()
    runs = [asyncio.ensure_future(seeder.run())]
    try:
        await _until(lambda: (seeder.listen_port, "started") in registry.events, "the seeder's started")
        runs.append(asyncio.ensure_future(leecher.run()))
        await _until(lambda: (leecher.listen_port, "started") in registry.events, "the leecher's started")
        await _until(lambda: torrent.complete, "the download")
        # The leecher's `started` to the dead tier is still being retried (15 s before the first retry).
        await _until(lambda: (leecher.listen_port, "completed") in registry.events,
                     "the working tracker to hear completed")
        assert torrent.announcing, "the dead tier's announce should still be in flight"
    finally:
        started = time.monotonic()
        for session in (leecher, seeder):
            session.request_stop()
        await asyncio.wait_for(asyncio.gather(*runs), STEP_TIMEOUT_S + EXIT_BOUND_S)
        exit_s = time.monotonic() - started
        await tracker.close()
    assert (leecher.listen_port, "stopped") in registry.events
    assert exit_s < EXIT_BOUND_S + 3.0, f"exit took {exit_s:.1f} s with a dead tier in flight"


class SlowTracker:
    """An HTTP tracker that answers after `delay_s`, recording the events it was sent and how many
    announces it had in flight at once."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.events: list[str] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/announce", self._announce)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/announce"

    async def _announce(self, request: web.Request) -> web.Response:
        self.events.append(request.query.get("event", ""))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay_s)
        finally:
            self.in_flight -= 1
        return web.Response(body=b"d8:intervali1800e5:peers0:e")

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


async def test_each_tier_takes_overlapping_announces_one_at_a_time_in_order() -> None:
    slow = SlowTracker(delay_s=0.5)
    await slow.start()
    fast = await serve(0, None, "127.0.0.1", registry=RecordingRegistry())
    registry = fast.registry
    assert isinstance(registry, RecordingRegistry)
    tiers = TrackerTiers([[slow.url], [fast.http_url]], H, pid(1), 7001, min_announce_interval_s=1)
    answers: list[AnnounceResponse] = []
    try:
        first = asyncio.ensure_future(tiers.announce("started", 0, 0, 100))
        await _until(lambda: slow.events == ["started"], "the slow tier's started")
        completed = asyncio.ensure_future(tiers.announce("completed", 0, 100, 0, on_response=answers.append))
        # The fast tier hears `completed` while the slow one is still busy with `started`.
        await _until(lambda: (7001, "completed") in registry.events, "the fast tier's completed")
        assert not first.done() and slow.events == ["started"]
        await asyncio.wait_for(asyncio.gather(first, completed), STEP_TIMEOUT_S)
        assert slow.events == ["started", "completed"]
        assert slow.most_in_flight == 1
        assert len(answers) == 2
    finally:
        await tiers.close()
        await fast.close()
        await slow.close()
