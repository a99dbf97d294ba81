"""Trackers end to end: a UDP announce to opentracker finds the seeder; an HTTP tracker's failure reason
reaches the user, as a `tracker_error` JSON event and as text on stderr."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.interop.opentracker import opentracker  # noqa: F401  (fixture)
from tests.interop.peers.base import LOOPBACK, free_port, wait_for
from tests.interop.peers.payload import MiB
from tests.interop.peers.torrentpy_peer import torrentpy_factory
from tests.interop.test_download import PIECE, address_text, sources, tracked_torrent, wait_registered

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]

FAILURE_BODY = b"d14:failure reason22:torrent not registerede"
FAILURE_REASON = "torrent not registered"


def test_udp_only_tracker_finds_the_seeder(payload_factory, torrent_factory, libtorrent_peer, peer_registry,
                                           opentracker, tmp_path: Path) -> None:  # noqa: F811
    payload, torrent, info_hash = tracked_torrent(payload_factory, torrent_factory, opentracker, 2 * MiB,
                                                  name="udp.bin", trackers=[opentracker.udp_url])
    seeder = libtorrent_peer(torrent, payload.save_dir, True)
    seeder.wait_seeding(20)
    # The seeder announced over UDP too (the torrent names no other tracker); scrape over HTTP to see it.
    wait_registered(opentracker, info_hash, 1)

    tp = torrentpy_factory(peer_registry)(torrent, tmp_path / "dl", False)
    assert tp.wait_exit(60) == 0, tp.log_tail()
    assert payload.differences(tmp_path / "dl") == []
    # No --peer and libtorrent never learnt our address: torrentpy dialled what the UDP tracker returned.
    assert set(sources(tp)) == {address_text(seeder)}
    stats = [s for s in tp.read() if s.get("type") == "stats"]
    assert {tr["url"] for s in stats for t in s["torrents"] for tr in t["trackers"]} == {opentracker.udp_url}
    assert not tp.events("tracker_error")


class FailingTracker:
    """An HTTP tracker on 127.0.0.1 that answers every announce with a bencoded failure reason."""

    def __init__(self) -> None:
        self.announces: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.announces.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(FAILURE_BODY)))
                self.end_headers()
                self.wfile.write(FAILURE_BODY)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.url = f"http://{LOOPBACK}:{self.server.server_address[1]}/announce"
        self.thread = threading.Thread(target=self.server.serve_forever, name="failing-tracker", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def failing_tracker() -> Iterator[FailingTracker]:
    tracker = FailingTracker()
    yield tracker
    tracker.close()


def test_tracker_failure_reason_is_a_json_event(payload_factory, torrent_factory, peer_registry,
                                                failing_tracker: FailingTracker, tmp_path: Path) -> None:
    payload = payload_factory(256 * 1024, name="refused.bin")
    torrent = torrent_factory(payload, piece_length=PIECE, trackers=[failing_tracker.url])
    tp = torrentpy_factory(peer_registry)(torrent, tmp_path / "dl", False)
    event = tp.wait_event("tracker_error", 20)
    assert FAILURE_REASON in event["message"], event
    assert failing_tracker.announces and "info_hash=" in failing_tracker.announces[0]
    # A refusing tracker is not fatal: the torrent keeps waiting for peers.
    assert tp.process is not None and tp.process.poll() is None
    assert tp.stop() == 128 + signal.SIGTERM
    assert tp.event("error") is None


def test_tracker_failure_reason_is_printed_on_stderr(payload_factory, torrent_factory,
                                                     failing_tracker: FailingTracker, tmp_path: Path) -> None:
    payload = payload_factory(256 * 1024, name="refused.bin")
    torrent = torrent_factory(payload, piece_length=PIECE, trackers=[failing_tracker.url])
    stdout_path, stderr_path = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    argv = [sys.executable, "-m", "torrentpy", "add", str(torrent), "-o", str(tmp_path / "dl"),
            "--no-tui", "--bind", LOOPBACK, "--listen-port", str(free_port()), "--seed-ratio", "0"]
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                start_new_session=True)
    try:
        wait_for(lambda: FAILURE_REASON in stderr_path.read_text(errors="replace"), 20, 0.1,
                 f"'{FAILURE_REASON}' on stderr")
        assert proc.poll() is None, "torrentpy exited on a tracker failure"
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
    stderr = stderr_path.read_text(errors="replace")
    line = next(line for line in stderr.splitlines() if FAILURE_REASON in line)
    assert "refused.bin" in line and "tracker" in line, stderr
    assert FAILURE_REASON not in stdout_path.read_text(errors="replace")
    assert proc.returncode == 128 + signal.SIGTERM
