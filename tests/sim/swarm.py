"""A swarm of real torrentpy engines on one virtual-clock loop (tests/sim/clock.py).

One seeder and N leechers, each a `Torrent` on its own `FakeHost` (its own "session": peer id, address,
upload limit), joined by memnet links with a bandwidth and a latency. Files are real (on tmpfs when the
machine has one, so 200 copies of the payload cost no disk), disk jobs run inline, and every random
choice comes from seeded generators, so a run is reproducible (for a given PYTHONHASHSEED: set iteration
order in the engine follows string hashes).

Peers learn addresses as from a tracker: each leecher gets `known_peers` random members of the swarm at
the start. Everyone arrives at once (a flash crowd) and stays after completing, and the run ends when every
leecher has the payload or at `time_limit_s` of virtual time.

Run `python -m tests.sim` for a report.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.engine.harness import FakeHost, make_payload, seed_rng
from tests.engine.memnet import LinkSpec, Network
from tests.sim.clock import run as run_virtual
from torrentpy.engine.alerts import Alert, Completed
from torrentpy.engine.torrent import Torrent

# Every link of the swarm, both directions: a modest broadband line.
DEFAULT_LINK = LinkSpec(rate_bps=1_000_000, latency_s=0.025)


@dataclass(frozen=True)
class SwarmConfig:
    leechers: int = 200
    pieces: int = 256
    piece_length: int = 16384
    link: LinkSpec = DEFAULT_LINK
    max_peers: int = 6  # per torrent, as the session option; each HAVE goes to every peer: CPU ∝ this
    known_peers: int = 10  # addresses a leecher starts with (a tracker's answer)
    unchoke_slots: int = 4
    seeder_max_peers: int = 50
    # Bytes/s the seeder may upload in all (0: no limit). A limit also turns super-seeding on (BEP 16).
    seeder_upload_bps: float = 0.0
    seed: int = 1
    time_limit_s: float = 3600.0


@dataclass
class UnchokeSample:
    at: float
    unchoked: int
    interested: int


@dataclass
class SwarmResult:
    config: SwarmConfig
    payload: int
    completion_s: list[float | None]  # per leecher, virtual seconds from the start; None: never
    seeder_uploaded: int
    uploaded: int  # by everyone
    downloaded: int  # by everyone, duplicates included
    seeder_unchokes: list[UnchokeSample] = field(default_factory=list)
    leecher_max_unchoked: int = 0
    virtual_s: float = 0.0
    wall_s: float = 0.0

    @property
    def completed(self) -> int:
        return sum(1 for t in self.completion_s if t is not None)

    @property
    def seeder_ratio(self) -> float:
        """Seeder upload ÷ payload: 1.0 means the seeder sent each byte once."""
        return self.seeder_uploaded / self.payload

    def percentile(self, q: float) -> float:
        done = sorted(t for t in self.completion_s if t is not None)
        return done[min(len(done) - 1, int(q * len(done)))] if done else float("nan")

    def report(self) -> str:
        c = self.config
        limit = f", seeder limited to {c.seeder_upload_bps / 1e6:g} MB/s (super-seeding)" \
            if c.seeder_upload_bps else ""
        return "\n".join([
            f"{c.leechers} leechers, {c.pieces} pieces of {c.piece_length // 1024} KiB "
            f"({self.payload / 2**20:.1f} MiB), links {c.link.rate_bps / 1e6:g} MB/s "
            f"{c.link.latency_s * 1000:g} ms, {c.unchoke_slots} unchoke slots{limit}",
            f"  completed {self.completed}/{c.leechers}; completion time (virtual s): "
            f"first {self.percentile(0):.1f}, median {self.percentile(0.5):.1f}, "
            f"90% {self.percentile(0.9):.1f}, last {self.percentile(1.0):.1f}",
            f"  seeder upload / payload = {self.seeder_ratio:.2f}; swarm downloaded / needed = "
            f"{self.downloaded / (self.payload * c.leechers):.3f}",
            f"  seeder unchoked at most {max((s.unchoked for s in self.seeder_unchokes), default=0)}, "
            f"leechers at most {self.leecher_max_unchoked}",
            f"  {self.virtual_s:.1f} s simulated in {self.wall_s:.1f} s",
        ])


def _workdir() -> str:
    # 200 copies of the payload: in memory when possible (tmpfs fsyncs are free, too).
    shm = "/dev/shm"
    return tempfile.mkdtemp(prefix="torrentpy-sim-", dir=shm if os.path.isdir(shm) else None)


def simulate(config: SwarmConfig) -> SwarmResult:
    """Run one swarm on a fresh virtual-clock loop."""
    folder = Path(_workdir())
    try:
        return run_virtual(_simulate(config, folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def _simulate(config: SwarmConfig, folder: Path) -> SwarmResult:
    wall_start = time.monotonic()
    loop = asyncio.get_running_loop()
    rng = random.Random(config.seed)
    meta, _ = make_payload(folder / "seeder", config.pieces * config.piece_length,
                           piece_length=config.piece_length, seed=config.seed)
    net = Network(config.link)

    seed_host = FakeHost(net, "10.0.0.1", clock=loop.time, upload_rate_bps=config.seeder_upload_bps)
    seeder = seed_host.add(meta, folder / "seeder", max_peers=config.seeder_max_peers, seed_ratio=None,
                           unchoke_slots=config.unchoke_slots)
    hosts = [FakeHost(net, f"10.1.{i // 250}.{i % 250 + 1}", clock=loop.time) for i in range(config.leechers)]
    leechers = [h.add(meta, folder / f"leecher{i}", max_peers=config.max_peers, seed_ratio=None,
                      unchoke_slots=config.unchoke_slots) for i, h in enumerate(hosts)]
    for i, torrent in enumerate([seeder, *leechers]):
        seed_rng(torrent, config.seed * 100_003 + i)

    # The first check runs in a thread: all of it before any timer exists, so it takes no virtual time.
    await asyncio.gather(*(t.start() for t in [seeder, *leechers]))
    assert seeder.complete, "the seeder's payload failed its check"
    start = loop.time()

    completion: list[float | None] = [None] * config.leechers
    all_done = asyncio.Event()

    def on_completed(index: int) -> Any:
        def listener(event: Alert) -> None:
            if isinstance(event, Completed) and completion[index] is None:
                completion[index] = loop.time() - start
                if all(t is not None for t in completion):
                    all_done.set()
        return listener

    for i, host in enumerate(hosts):
        host.listeners.append(on_completed(i))

    population = [seed_host.addr, *(h.addr for h in hosts)]
    for host, torrent in zip(hosts, leechers, strict=True):
        others = [a for a in population if a != host.addr]
        torrent.add_candidates(rng.sample(others, min(config.known_peers, len(others))))

    result = SwarmResult(config=config, payload=meta.total_length, completion_s=completion,
                         seeder_uploaded=0, uploaded=0, downloaded=0)
    ticks = [asyncio.ensure_future(_ticking(seeder, rng.random(), result)),
             *(asyncio.ensure_future(_ticking(t, rng.random(), result, sample_every=10)) for t in leechers)]
    try:
        await asyncio.wait_for(all_done.wait(), config.time_limit_s)
    except TimeoutError:
        pass
    result.virtual_s = loop.time() - start
    for task in ticks:
        task.cancel()
    await asyncio.gather(*ticks, return_exceptions=True)
    snapshots = [t.snapshot(loop.time()) for t in [seeder, *leechers]]
    result.seeder_uploaded = snapshots[0].uploaded
    result.uploaded = sum(s.uploaded for s in snapshots)
    result.downloaded = sum(s.downloaded for s in snapshots[1:])
    await asyncio.gather(*(t.stop() for t in [seeder, *leechers]))
    result.wall_s = time.monotonic() - wall_start
    return result


async def _ticking(torrent: Torrent, phase: float, result: SwarmResult, *, sample_every: int = 1) -> None:
    """The session's 1 Hz tick for one torrent (each torrent at its own phase of the second), sampling
    how many peers it unchokes."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(phase)
    n = 0
    while True:
        now = loop.time()
        torrent.tick(now)
        if n % sample_every == 0:
            peers = torrent.snapshot(now).peer_list
            unchoked = sum(1 for p in peers if not p.am_choking)
            if sample_every == 1:
                result.seeder_unchokes.append(UnchokeSample(now, unchoked, sum(1 for p in peers if p.peer_interested)))
            else:
                result.leecher_max_unchoked = max(result.leecher_max_unchoked, unchoked)
        n += 1
        await asyncio.sleep(1.0)
