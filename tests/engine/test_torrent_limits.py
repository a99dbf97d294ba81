"""A torrent's own limits, in-process: its upload and download rates (with and without the session's), and
the idle seeding limit.

Rates are measured on the virtual-clock loop (tests/sim/clock.py): the hosts read the loop's clock, so the
pacing's sleeps and the limit's read pauses take virtual time, and a transfer's duration is exact and
costs no wall time. The idle limit is driven by a ManualClock, moved by the test."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.engine.harness import FakeHost, ManualClock, ScriptedPeer, make_payload, until
from tests.engine.memnet import Network
from tests.sim.clock import run as run_virtual
from torrentpy.engine.torrent import Torrent
from torrentpy.metainfo import Metainfo
from torrentpy.protocol import events as ev

pytestmark = pytest.mark.timeout(60)

PIECE = 16384
PIECE_LENGTH = 4 * PIECE
SIZE = 64 * PIECE_LENGTH  # 4 MiB: several seconds at the rates below, so the burst is a small part


def transfer_seconds(folder: Path, *, session_up_bps: float = 0,
                     seeder_limits: Callable[[Torrent], None] = lambda t: None,
                     leecher_limits: Callable[[Torrent], None] = lambda t: None) -> float:
    """Virtual seconds a leecher takes to fetch SIZE bytes from one in-process seeder."""

    async def main() -> float:
        loop = asyncio.get_running_loop()
        meta, data = make_payload(folder / "seed", SIZE, piece_length=PIECE_LENGTH)
        net = Network()
        seed_host = FakeHost(net, "10.0.0.1", clock=loop.time, upload_rate_bps=session_up_bps)
        host = FakeHost(net, "10.0.1.1", clock=loop.time)
        seeder = seed_host.add(meta, folder / "seed", seed_ratio=None)
        leecher = host.add(meta, folder / "dl", seed_ratio=None)
        await seeder.start()  # the checks run in a thread: before any timer, so they take no virtual time
        await leecher.start()
        seeder_limits(seeder)
        leecher_limits(leecher)
        start = loop.time()
        leecher.add_candidates([seed_host.addr])
        ticks = [asyncio.ensure_future(ticking(t)) for t in (seeder, leecher)]
        try:
            await asyncio.wait_for(until_complete(leecher), 600)
        finally:
            for task in ticks:
                task.cancel()
        elapsed = loop.time() - start
        assert (folder / "dl" / meta.name).read_bytes() == data
        await asyncio.gather(seeder.stop(), leecher.stop(), *ticks, return_exceptions=True)
        return elapsed

    return float(run_virtual(main()))


async def ticking(torrent: Torrent) -> None:
    loop = asyncio.get_running_loop()
    while True:
        torrent.tick(loop.time())
        await asyncio.sleep(1.0)


async def until_complete(torrent: Torrent) -> None:
    while not torrent.complete:
        await asyncio.sleep(0.05)


def test_unlimited_transfer_is_quick(tmp_path: Path) -> None:
    assert transfer_seconds(tmp_path) < 1.5  # the reference the limited runs are compared with


def test_a_torrents_upload_limit_paces_its_seeding(tmp_path: Path) -> None:
    elapsed = transfer_seconds(tmp_path, seeder_limits=lambda t: t.limits.set_rates(upload_bps=1_000_000))
    assert SIZE / 1_000_000 * 0.9 < elapsed < SIZE / 1_000_000 * 1.15, elapsed


def test_a_torrents_download_limit_holds_its_reads(tmp_path: Path) -> None:
    elapsed = transfer_seconds(tmp_path, leecher_limits=lambda t: t.limits.set_rates(download_bps=1_000_000))
    # The limit counts wire bytes (payload plus message headers), as the session's does.
    assert SIZE / 1_000_000 * 0.9 < elapsed < SIZE / 1_000_000 * 1.15, elapsed


def test_the_slower_of_the_torrents_and_the_sessions_upload_limit_wins(tmp_path: Path) -> None:
    elapsed = transfer_seconds(tmp_path / "a", session_up_bps=500_000,
                               seeder_limits=lambda t: t.limits.set_rates(upload_bps=2_000_000))
    assert SIZE / 500_000 * 0.9 < elapsed < SIZE / 500_000 * 1.15, elapsed


def test_a_torrent_not_honoring_session_limits_ignores_the_sessions_upload_limit(tmp_path: Path) -> None:
    def exempt(torrent: Torrent) -> None:
        torrent.limits.honors_session = False
        torrent.limits.set_rates(upload_bps=2_000_000)

    elapsed = transfer_seconds(tmp_path, session_up_bps=500_000, seeder_limits=exempt)
    assert SIZE / 2_000_000 * 0.9 < elapsed < SIZE / 2_000_000 * 1.15, elapsed


def test_lifting_a_download_limit_resumes_reading_at_once(tmp_path: Path) -> None:
    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        meta, _ = make_payload(tmp_path / "seed", SIZE, piece_length=PIECE_LENGTH)
        net = Network()
        seed_host = FakeHost(net, "10.0.0.1", clock=loop.time)
        host = FakeHost(net, "10.0.1.1", clock=loop.time)
        seeder = seed_host.add(meta, tmp_path / "seed", seed_ratio=None)
        leecher = host.add(meta, tmp_path / "dl", seed_ratio=None)
        await seeder.start()
        await leecher.start()
        leecher.limits.set_rates(download_bps=100_000)  # 40 s for the whole payload
        start = loop.time()
        leecher.add_candidates([seed_host.addr])
        ticks = [asyncio.ensure_future(ticking(t)) for t in (seeder, leecher)]
        await asyncio.sleep(5.0)
        halfway = leecher.downloaded
        leecher.limits.set_rates(download_bps=0)
        await asyncio.wait_for(until_complete(leecher), 600)
        elapsed = loop.time() - start
        for task in ticks:
            task.cancel()
        await asyncio.gather(seeder.stop(), leecher.stop(), *ticks, return_exceptions=True)
        return halfway, elapsed

    halfway, elapsed = run_virtual(main())
    assert 0 < halfway < 5 * 100_000 + 64 * 1024, halfway  # limited: at most the rate plus a burst and a read
    assert elapsed < 7.0, elapsed


# --- the idle seeding limit -----------------------------------------------------------


async def seeding(tmp_path: Path, clock: ManualClock, idle_s: float) -> tuple[FakeHost, Torrent, Metainfo, bytes]:
    net = Network()
    meta, data = make_payload(tmp_path / "seed", SIZE // 16, piece_length=PIECE_LENGTH)
    host = FakeHost(net, "10.0.0.1", clock=clock)
    torrent = host.add(meta, tmp_path / "seed", seed_ratio=None)
    torrent.limits.seed_idle_s = idle_s
    await torrent.start()
    assert torrent.state == "seeding"
    return host, torrent, meta, data


async def test_a_seed_that_uploads_nothing_for_the_idle_limit_finishes(tmp_path: Path) -> None:
    clock = ManualClock()
    host, torrent, _, _ = await seeding(tmp_path, clock, idle_s=600)
    torrent.tick(clock.advance(599))
    assert not torrent.finished
    torrent.tick(clock.advance(1))
    assert torrent.finished and torrent.state == "finished"
    assert host.events_of("finished")


async def test_an_upload_restarts_the_idle_count(tmp_path: Path) -> None:
    clock = ManualClock()
    host, torrent, meta, data = await seeding(tmp_path, clock, idle_s=60)
    leecher = ScriptedPeer(host.network, "10.0.1.1", meta, have=(), listen=False)
    await leecher.dial(host.addr)
    await until(lambda: bool(leecher.of(ev.BitfieldReceived)), what="the seeder's bitfield")
    torrent.tick(clock.advance(40))
    leecher.send(leecher.conn.send_interested())
    await until(lambda: bool(leecher.of(ev.Unchoke)), what="unchoke")
    leecher.send(leecher.conn.send_request(0, 0, PIECE))
    await until(lambda: (0, 0) in leecher.blocks, what="a block served")
    assert leecher.blocks[(0, 0)] == data[:PIECE]
    assert torrent.limits.idle_goal_at(torrent.seeding_since) == clock.now + 60  # for a sleeping scheduler
    torrent.tick(clock.advance(59))  # 99 s a seed, 59 s since its last upload
    assert torrent.uploader.leaving_since is None
    torrent.tick(clock.advance(1))
    assert torrent.uploader.leaving_since is not None  # the goal is met: it parts with its peers
    await until(lambda: torrent.finished, what="left")


async def test_no_idle_limit_seeds_on(tmp_path: Path) -> None:
    clock = ManualClock()
    _, torrent, _, _ = await seeding(tmp_path, clock, idle_s=60)
    torrent.limits.seed_idle_s = None
    torrent.tick(clock.advance(3600))
    assert not torrent.finished
