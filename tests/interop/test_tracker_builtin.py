"""`torrentpy tracker` as a real process: it prints its URLs, real clients find each other through it
(libtorrent → aria2 over HTTP, libtorrent → torrentpy over UDP), and it stops cleanly on a signal."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import bencodepy
import pytest

from tests.interop.peers.base import LOOPBACK, free_port
from tests.interop.peers.payload import MiB, info_hash_libtorrent
from tests.interop.peers.torrentpy_peer import torrentpy_factory

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]

ROOT = Path(__file__).resolve().parents[2]


class TrackerProcess:
    """`python -m torrentpy tracker` on two free loopback ports, stopped by its PID."""

    def __init__(self) -> None:
        self.http_port = free_port()
        self.udp_port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "torrentpy", "tracker", "--http-port", str(self.http_port),
             "--udp-port", str(self.udp_port), "--bind", LOOPBACK],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
        )
        self.banner = self._read_line(15.0)

    def _read_line(self, timeout_s: float) -> str:
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.process.stdout, selectors.EVENT_READ)
            if not sel.select(timeout_s):
                self.stop(signal.SIGTERM)
                raise AssertionError(f"tracker printed nothing in {timeout_s} s")
        return self.process.stdout.readline().decode()

    @property
    def http_url(self) -> str:
        return f"http://{LOOPBACK}:{self.http_port}/announce"

    @property
    def udp_url(self) -> str:
        return f"udp://{LOOPBACK}:{self.udp_port}/announce"

    def scrape(self, info_hash: bytes) -> dict[bytes, object]:
        query = urllib.parse.quote_from_bytes(info_hash)
        with urllib.request.urlopen(f"http://{LOOPBACK}:{self.http_port}/scrape?info_hash={query}",
                                    timeout=5) as resp:
            files = bencodepy.decode(resp.read())[b"files"]
        return files.get(info_hash, {})

    def stop(self, signum: int, timeout_s: float = 10.0) -> tuple[int, str]:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            _out, err = self.process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _out, err = self.process.communicate()
            raise AssertionError(f"tracker ignored signal {signum}") from None
        return self.process.returncode, err.decode(errors="replace")


@pytest.fixture
def builtin_tracker() -> Iterator[TrackerProcess]:
    tracker = TrackerProcess()
    yield tracker
    tracker.stop(signal.SIGTERM)


def _wait_seeders(tracker: TrackerProcess, info_hash: bytes, count: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while tracker.scrape(info_hash).get(b"complete", 0) < count:
        assert time.monotonic() < deadline, f"tracker never saw {count} seeder(s)"
        time.sleep(0.2)


@pytest.mark.parametrize(("signum", "expected_rc"), [(signal.SIGINT, 130), (signal.SIGTERM, 0)],
                         ids=["SIGINT", "SIGTERM"])
def test_tracker_prints_urls_and_stops_cleanly(builtin_tracker: TrackerProcess, signum: int,
                                               expected_rc: int) -> None:
    assert builtin_tracker.http_url in builtin_tracker.banner
    assert builtin_tracker.udp_url in builtin_tracker.banner
    # Serving: an unknown torrent scrapes as an empty swarm.
    assert builtin_tracker.scrape(os.urandom(20)).get(b"complete") == 0
    rc, err = builtin_tracker.stop(signum)
    assert rc == expected_rc, err
    assert "Traceback" not in err, err


def test_tracker_refuses_a_busy_port_in_one_line(builtin_tracker: TrackerProcess) -> None:
    second = subprocess.run(
        [sys.executable, "-m", "torrentpy", "tracker", "--http-port", str(builtin_tracker.http_port),
         "--udp-port", "0", "--bind", LOOPBACK],
        capture_output=True, timeout=20, cwd=ROOT,
    )
    err = second.stderr.decode()
    assert second.returncode == 1, err
    assert "Traceback" not in err and err.startswith("torrentpy: error:"), err


def test_libtorrent_seeder_and_aria2_leecher_meet_at_the_builtin_tracker(
        builtin_tracker: TrackerProcess, payload_factory, torrent_factory, libtorrent_peer, aria2_peer,
        tmp_path: Path) -> None:
    payload = payload_factory(3 * MiB, name="meet.bin")
    torrent = torrent_factory(payload, piece_length=64 * 1024, trackers=[builtin_tracker.http_url])
    seeder = libtorrent_peer(torrent, payload.save_dir, True)
    seeder.wait_seeding(20)
    _wait_seeders(builtin_tracker, info_hash_libtorrent(torrent), 1, 20)
    # Neither side is told about the other: the tracker is the only way they can meet.
    leecher = aria2_peer(torrent, tmp_path / "got", False, trackers=[builtin_tracker.http_url])
    leecher.wait_finished(45)
    assert payload.differences(tmp_path / "got") == []


def test_libtorrent_to_torrentpy_over_the_builtin_udp_tracker(
        builtin_tracker: TrackerProcess, payload_factory, torrent_factory, libtorrent_peer, peer_registry,
        tmp_path: Path) -> None:
    payload = payload_factory(3 * MiB, name="udp.bin")
    torrent = torrent_factory(payload, piece_length=64 * 1024, trackers=[builtin_tracker.udp_url])
    seeder = libtorrent_peer(torrent, payload.save_dir, True)
    seeder.wait_seeding(20)
    _wait_seeders(builtin_tracker, info_hash_libtorrent(torrent), 1, 20)
    tp = torrentpy_factory(peer_registry)(torrent, tmp_path / "dl", False)
    assert tp.wait_exit(50) == 0, tp.log_tail()
    assert payload.differences(tmp_path / "dl") == []
    stats = tp.stats()
    assert stats is not None
    trackers = stats["torrents"][0]["trackers"]
    assert [t["url"] for t in trackers] == [builtin_tracker.udp_url]
