"""torrentpy as a user runs it: the installed `torrentpy` script, default options, a temporary folder.

No `--listen-port`, no `--peer`: each `torrentpy add` picks its own port (6881, the next free one …)
and the only way the seeder and the leecher meet is the tracker named by `torrentpy create -t URL`:
the built-in `torrentpy tracker` or opentracker, over HTTP and over UDP; and a default torrentpy
seeder serves a libtorrent leecher the same way. The tracker must list the seeder with its real
listening port, not 0.

stdout is a file here, not a terminal, so `add` prints plain progress lines by itself (no flag).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote, quote_from_bytes

import bencodepy
import pytest

from tests.interop.opentracker import OpenTracker
from tests.interop.peers.base import LOOPBACK, free_port
from tests.interop.peers.payload import MiB, Payload, info_hash_libtorrent

pytestmark = [pytest.mark.interop, pytest.mark.timeout(240)]

TORRENTPY = Path(sys.executable).parent / "torrentpy"
# Generous bounds that no correct run gets near (a few seconds on loopback for a few MiB): they only
# turn a hang into a failure. Before the port fix the seeder announced port 0, trackers refused or
# listed it unreachable, and the leecher waited forever: that is what these bounds catch.
MEET_TIMEOUT_S = 60.0
COMPLETE_TIMEOUT_S = 60.0
START_TIMEOUT_S = 15.0
PROBE_PORT = 1  # the tracker probe's own (unused) port, told apart from real peers
PROBE_PEER_ID = b"-PROBE0-" + bytes(12)


class Process:
    """One `torrentpy …` process in its own folder, stdout and stderr in one log; stopped by its PID."""

    def __init__(self, argv: list[str], cwd: Path, log: Path) -> None:
        self.log_path = log
        with open(log, "wb") as out:
            self.popen = subprocess.Popen([str(TORRENTPY), *argv], cwd=cwd, stdin=subprocess.DEVNULL,
                                          stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, text: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.log():
            assert self.popen.poll() is None or text in self.log(), \
                f"exited ({self.popen.returncode}) before printing {text!r}:\n{self.log()[-3000:]}"
            assert time.monotonic() < deadline, f"no {text!r} in {timeout_s} s:\n{self.log()[-3000:]}"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Callable[..., Process]]:
    started: list[Process] = []

    def start(argv: list[str], cwd: Path, name: str) -> Process:
        cwd.mkdir(parents=True, exist_ok=True)
        proc = Process(argv, cwd, tmp_path / f"{name}.log")
        started.append(proc)
        return proc

    yield start
    for proc in reversed(started):
        proc.stop()


def create(payload: Payload, tracker_url: str) -> Path:
    """`torrentpy create NAME -t URL` in the folder that holds the data, as a user would."""
    done = subprocess.run([str(TORRENTPY), "create", payload.name, "-t", tracker_url], cwd=payload.save_dir,
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    torrent = payload.save_dir / f"{payload.name}.torrent"
    assert torrent.is_file()
    return torrent


def builtin_tracker(run: Callable[..., Process], tmp_path: Path, name: str = "tracker") -> tuple[str, str]:
    """`torrentpy tracker` on loopback; its URLs (HTTP, UDP). Free ports rather than its default 6969:
    other tests on this machine may run one at the same time."""
    http_port, udp_port = free_port(), free_port()
    proc = run(["tracker", "--http-port", str(http_port), "--udp-port", str(udp_port), "--bind", LOOPBACK],
               tmp_path / name, name)
    http_url, udp_url = f"http://{LOOPBACK}:{http_port}/announce", f"udp://{LOOPBACK}:{udp_port}/announce"
    proc.wait_log(http_url, START_TIMEOUT_S)
    return http_url, udp_url


def listed_peers(http_url: str, info_hash: bytes) -> set[tuple[str, int]]:
    """Who the tracker hands out for this torrent, asked over HTTP by a probe that withdraws at once."""
    def announce(event: str) -> dict[bytes, object]:
        url = (f"{http_url}?info_hash={quote_from_bytes(info_hash, safe='')}"
               f"&peer_id={quote_from_bytes(PROBE_PEER_ID, safe='')}&port={PROBE_PORT}"
               f"&uploaded=0&downloaded=0&left=1&compact=1&numwant=50&event={event}")
        with urllib.request.urlopen(url, timeout=5) as resp:
            body = bencodepy.decode(resp.read())
        assert isinstance(body, dict) and b"failure reason" not in body, body
        return body

    peers = announce("started").get(b"peers", b"")
    announce("stopped")
    if isinstance(peers, bytes):
        found = {(socket.inet_ntoa(peers[i:i + 4]), int.from_bytes(peers[i + 4:i + 6], "big"))
                 for i in range(0, len(peers) - 5, 6)}
    else:
        assert isinstance(peers, list)
        found = {(p[b"ip"].decode(), int(p[b"port"])) for p in peers}
    return {p for p in found if p[1] != PROBE_PORT}


def wait_listed_seeder(http_url: str, info_hash: bytes, seeder: Process) -> tuple[str, int]:
    deadline = time.monotonic() + MEET_TIMEOUT_S
    while not (found := listed_peers(http_url, info_hash)):
        assert seeder.popen.poll() is None, f"seeder exited:\n{seeder.log()[-3000:]}"
        assert time.monotonic() < deadline, \
            f"the tracker never listed the seeder in {MEET_TIMEOUT_S} s:\n{seeder.log()[-3000:]}"
        time.sleep(0.3)
    assert len(found) == 1, found
    addr = found.pop()
    assert addr[1] != 0, f"the seeder announced port 0: {addr}"
    # ... and it is the port the seeder really listens on.
    with socket.create_connection(addr, timeout=5):
        pass
    return addr


def seed_and_leech(run: Callable[..., Process], tmp_path: Path, payload: Payload, tracker_url: str,
                   probe_url: str, allow: Callable[[bytes], None] | None = None) -> None:
    torrent = create(payload, tracker_url)
    info_hash = info_hash_libtorrent(torrent)
    if allow is not None:
        allow(info_hash)
    seeder = run(["add", torrent.name], payload.save_dir, "seeder")
    wait_listed_seeder(probe_url, info_hash, seeder)
    leech_dir = tmp_path / "leecher"
    leecher = run(["add", str(torrent)], leech_dir, "leecher")
    leecher.wait_log(f"{payload.name}: completed", COMPLETE_TIMEOUT_S)
    assert payload.differences(leech_dir) == []


@pytest.mark.parametrize("scheme", ["http", "udp"])
def test_defaults_meet_at_the_builtin_tracker(scheme: str, run, payload_factory, tmp_path: Path) -> None:
    http_url, udp_url = builtin_tracker(run, tmp_path)
    payload = payload_factory(4 * MiB, name=f"builtin-{scheme}.bin")
    seed_and_leech(run, tmp_path, payload, http_url if scheme == "http" else udp_url, http_url)


@pytest.mark.parametrize("scheme", ["http", "udp"])
def test_defaults_meet_at_opentracker(scheme: str, run, payload_factory, opentracker: OpenTracker,
                                      tmp_path: Path) -> None:
    payload = payload_factory(4 * MiB, name=f"opentracker-{scheme}.bin")
    url = opentracker.http_url if scheme == "http" else opentracker.udp_url
    seed_and_leech(run, tmp_path, payload, url, opentracker.http_url, allow=opentracker.allow)


def test_default_seeder_serves_a_libtorrent_leecher(run, payload_factory, libtorrent_peer,
                                                    tmp_path: Path) -> None:
    http_url, _udp_url = builtin_tracker(run, tmp_path)
    payload = payload_factory(4 * MiB, name="to-libtorrent.bin")
    torrent = create(payload, http_url)
    seeder = run(["add", torrent.name], payload.save_dir, "seeder")
    wait_listed_seeder(http_url, info_hash_libtorrent(torrent), seeder)
    # libtorrent is told nothing but the .torrent: it finds the seeder through the tracker.
    leecher = libtorrent_peer(torrent, tmp_path / "lt", False)
    leecher.wait_finished(COMPLETE_TIMEOUT_S)
    assert payload.differences(tmp_path / "lt") == []


def test_default_magnet_uses_every_tracker(run, payload_factory, tmp_path: Path) -> None:
    # The magnet's first tracker answers but knows nobody; only the second one knows the seeder.
    # A client that stops at the first tracker that answers never finds it.
    empty_url, _ = builtin_tracker(run, tmp_path, "empty-tracker")
    http_url, _udp_url = builtin_tracker(run, tmp_path)
    payload = payload_factory(4 * MiB, name="magnet.bin")
    torrent = create(payload, http_url)
    info_hash = info_hash_libtorrent(torrent)
    seeder = run(["add", torrent.name], payload.save_dir, "seeder")
    wait_listed_seeder(http_url, info_hash, seeder)
    magnet = (f"magnet:?xt=urn:btih:{info_hash.hex()}&dn={payload.name}"
              f"&tr={quote(empty_url, safe='')}&tr={quote(http_url, safe='')}")
    leech_dir = tmp_path / "leecher"
    leecher = run(["add", magnet], leech_dir, "leecher")
    leecher.wait_log(f"{payload.name}: completed", COMPLETE_TIMEOUT_S)
    assert payload.differences(leech_dir) == []
    # The empty tracker was announced to as well: it now lists the leecher, with a real port.
    assert [port for _ip, port in listed_peers(empty_url, info_hash)] != [0]
    assert len(listed_peers(empty_url, info_hash)) == 1
