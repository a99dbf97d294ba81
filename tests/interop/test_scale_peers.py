"""A crowd of peers against one `torrentpy add`: a flood of connections, slow and stalled peers.

A load generator in this process (tests/interop/loadgen.py) opens the connections; an honest libtorrent
seeder, upload-limited so the download lasts while the crowd is there, has the data. torrentpy must
complete the download, keep its file descriptors and memory bounded, and refuse excess connections on
accept, before they cost a handshake."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.interop.hostile import TorrentData
from tests.interop.loadgen import LoadGenerator
from tests.interop.peers.libtorrent_peer import LibtorrentPeer
from tests.interop.peers.payload import MiB, Payload
from tests.interop.peers.torrentpy_peer import TorrentpyPeer
from tests.procstatus import status_bytes
from torrentpy.engine.session import HANDSHAKE_TIMEOUT_S, MAX_CONNECTIONS, MAX_INCOMING_HALF_OPEN

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

PIECE = 64 * 1024
SIZE = 4 * MiB
# About 8 s for the payload: the crowd is there for all of the download.
HONEST_UPLOAD_BPS = 512 * 1024
# Every socket torrentpy holds comes from its limits; the rest (listener, log, epoll, pipes) is small.
FD_SLACK = 40


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def socket_count(pid: int) -> int:
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except OSError:
            pass
    return count


class Samples:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.base_fds = fd_count(pid)
        self.base_rss = status_bytes(pid, "VmRSS")
        self.max_fds = self.base_fds
        self.max_rss = self.base_rss
        self.max_sockets = 0
        self.rss_at_max_sockets = self.base_rss

    def take(self) -> None:
        try:
            fds, sockets, rss = fd_count(self.pid), socket_count(self.pid), status_bytes(self.pid, "VmRSS")
        except (FileNotFoundError, ProcessLookupError):
            return  # it has exited
        self.max_fds = max(self.max_fds, fds)
        self.max_rss = max(self.max_rss, rss)
        if sockets > self.max_sockets:
            self.max_sockets, self.rss_at_max_sockets = sockets, rss

    def rss_per_connection(self) -> float:
        return (self.rss_at_max_sockets - self.base_rss) / max(1, self.max_sockets)


@pytest.fixture
def honest(payload_factory: Callable[..., Payload], torrent_factory: Callable[..., Path],
           libtorrent_peer: Callable[..., LibtorrentPeer]) -> tuple[Payload, Path, LibtorrentPeer, TorrentData]:
    payload = payload_factory(SIZE, name="crowd.bin")
    torrent = torrent_factory(payload, piece_length=PIECE)
    seeder = libtorrent_peer(torrent, payload.save_dir, True, upload_limit_bps=HONEST_UPLOAD_BPS)
    seeder.wait_seeding(20)
    return payload, torrent, seeder, TorrentData.from_payload(torrent, payload)


def _run_until_exit(tp: TorrentpyPeer, samples: Samples, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        samples.take()
        code = tp.process.poll() if tp.process is not None else None
        if code is not None:
            return code
        time.sleep(0.1)
    raise AssertionError(f"torrentpy did not finish in {timeout_s} s:\n{tp.log_tail()}")


def test_a_thousand_connections(honest: tuple[Payload, Path, LibtorrentPeer, TorrentData],
                                torrentpy_peer: Callable[..., TorrentpyPeer], tmp_path: Path) -> None:
    payload, torrent, seeder, data = honest
    # Peers per torrent above the session's limit, so the session-wide limit is the one under test.
    tp = torrentpy_peer(torrent, tmp_path / "dl", False, peers=[seeder.address],
                        extra_args=["--max-peers", str(2 * MAX_CONNECTIONS)])
    samples = Samples(tp.pid)
    gen = LoadGenerator(data, tp.address, clients=1000, mode="flood").start()
    try:
        code = _run_until_exit(tp, samples, 60)
    finally:
        gen.stop()
    stats = gen.stats
    counts = {k: v for k, v in vars(stats).items() if k != "lifetimes_s"}
    print(f"\nflood: {counts}; torrentpy fds {samples.base_fds}->{samples.max_fds}, "
          f"sockets at most {samples.max_sockets}, RSS {samples.base_rss >> 20}->{samples.max_rss >> 20} MiB, "
          f"{samples.rss_per_connection() / 1024:.1f} KiB per connection")
    assert code == 0, tp.log_tail()
    assert payload.differences(tmp_path / "dl") == []
    # The load was real: a thousand clients connected at once and kept coming back.
    assert stats.attempts >= 2000 and stats.max_open >= MAX_CONNECTIONS, stats.max_open
    assert stats.handshakes > 0 and stats.refused_early > stats.attempts // 2, (stats.handshakes, stats.refused_early)
    # The connection limit held, counting every socket: peers, half-open, listener.
    assert samples.max_sockets <= MAX_CONNECTIONS + 8, samples.max_sockets
    assert samples.max_fds <= samples.base_fds + MAX_CONNECTIONS + FD_SLACK
    # Measured ~24 KiB a connection (a 16 KiB first read buffer, protocol state, a handshake timer).
    assert samples.rss_per_connection() < 100 * 1024, samples.rss_per_connection()
    assert "Traceback" not in tp.log_tail()


def test_slow_and_stalled_peers_do_not_starve_an_honest_one(
        honest: tuple[Payload, Path, LibtorrentPeer, TorrentData],
        torrentpy_peer: Callable[..., TorrentpyPeer], tmp_path: Path) -> None:
    payload, torrent, seeder, data = honest
    tp = torrentpy_peer(torrent, tmp_path / "dl", True, peers=[seeder.address])  # seeds on: we watch the slots
    samples = Samples(tp.pid)
    trickle = LoadGenerator(data, tp.address, clients=100, mode="trickle").start()
    stall = LoadGenerator(data, tp.address, clients=100, mode="stall").start()
    started = time.monotonic()
    try:
        while tp.event("completed") is None:
            samples.take()
            assert time.monotonic() - started < 45, f"no completion with slow peers around:\n{tp.log_tail()}"
            assert tp.process is not None and tp.process.poll() is None, tp.log_tail()
            time.sleep(0.2)
        took = time.monotonic() - started
        # The handshake time-out frees every slot a trickling peer took; none is still open after it.
        deadline = started + HANDSHAKE_TIMEOUT_S + 10
        while trickle.stats.open_now and time.monotonic() < deadline:
            samples.take()
            time.sleep(0.2)
        print(f"\nslow peers: completed in {took:.1f} s; trickle {trickle.stats.refused_early} refused "
              f"{trickle.stats.attempts} tried; stall {stall.stats.handshakes} handshakes; "
              f"fds at most {samples.max_fds}")
        assert trickle.stats.open_now == 0, trickle.stats
        # More trickling peers than half-open slots: the excess was refused on accept, at once; the
        # rest were cut by the handshake time-out.
        lifetimes = trickle.stats.lifetimes_s
        assert sum(t < 2 for t in lifetimes) >= 100 - MAX_INCOMING_HALF_OPEN - 5, lifetimes
        assert max(lifetimes) < HANDSHAKE_TIMEOUT_S + 5, lifetimes
        assert stall.stats.attempts == 100  # every stalled peer connected and held its slot meanwhile
    finally:
        trickle.stop()
        stall.stop()
    assert payload.differences(tmp_path / "dl") == []
    assert "Traceback" not in tp.log_tail()
