"""Start-up latency: process start to the first REQUEST message on the wire.

A scripted seeder (a plain socket in a thread) answers the handshake with a full bitfield and an
unchoke, and timestamps the first REQUEST it reads. Optionally a one-line HTTP tracker hands out that
seeder, so the path a user takes (announce, then dial) is timed too. The clock starts just before the
client process is spawned, so interpreter start, imports and session set-up all count.

`python bench/startup_probe.py [ROUNDS]` prints one JSON line per client and mode.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

PIECE = 256 * 1024
PIECES = 16
REQUEST = 6
TIMEOUT_S = 20.0

LT_CLIENT = """
import sys, time
import libtorrent as lt
torrent, save, host, port, tracker = sys.argv[1:6]
s = lt.session({"listen_interfaces": "127.0.0.1:0", "enable_dht": False, "enable_lsd": False,
                "enable_upnp": False, "enable_natpmp": False, "enable_ip_notifier": False,
                "enable_incoming_utp": False, "enable_outgoing_utp": False,
                "allow_multiple_connections_per_ip": True})
p = lt.add_torrent_params()
p.ti = lt.torrent_info(torrent)
p.save_path = save
h = s.add_torrent(p)
if tracker == "-":
    # connect_peer on a torrent still checking waits for a later tick: dial as soon as it may.
    while h.status().state in (lt.torrent_status.checking_files, lt.torrent_status.checking_resume_data):
        time.sleep(0.002)
    h.connect_peer((host, int(port)))
time.sleep(float(sys.argv[6]))
"""


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError("peer closed")
        out += chunk
    return bytes(out)


class FirstRequestSeeder:
    """Accepts one peer, pretends to have every piece, and records when the first REQUEST arrives."""

    def __init__(self, info_hash: bytes, num_pieces: int) -> None:
        self.info_hash = info_hash
        self.num_pieces = num_pieces
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(TIMEOUT_S)
        self.port = self.listener.getsockname()[1]
        self.first_request_at: float | None = None
        self.error: str | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        try:
            # Other programs on a busy machine may dial a port they once knew (with MSE, say): strangers
            # are dropped and the wait goes on.
            while time.monotonic() < deadline:
                conn, _ = self.listener.accept()
                with conn:
                    if self._session(conn):
                        return
        except Exception as exc:  # reported by wait(), not swallowed
            self.error = repr(exc)
        finally:
            self.listener.close()

    def _session(self, conn: socket.socket) -> bool:
        conn.settimeout(TIMEOUT_S)
        try:
            theirs = _recv_exact(conn, 68)
        except (ConnectionError, TimeoutError):
            return False
        if theirs[:20] != b"\x13BitTorrent protocol" or theirs[28:48] != self.info_hash:
            self.error = f"stranger's handshake {theirs[:20]!r}"
            return False
        bits = bytearray((self.num_pieces + 7) // 8)
        for i in range(self.num_pieces):
            bits[i // 8] |= 0x80 >> (i % 8)
        conn.sendall(b"\x13BitTorrent protocol" + bytes(8) + self.info_hash + b"-XX0000-probeprobe00"
                     + struct.pack(">IB", 1 + len(bits), 5) + bits + struct.pack(">IB", 1, 1))
        while True:
            (length,) = struct.unpack(">I", _recv_exact(conn, 4))
            body = _recv_exact(conn, length) if length else b""
            if body and body[0] == REQUEST:
                self.first_request_at = time.monotonic()
                return True

    def wait(self) -> float:
        self._thread.join(TIMEOUT_S)
        if self.first_request_at is None:
            raise RuntimeError(f"no REQUEST arrived ({self.error})")
        return self.first_request_at


class OneTracker:
    """An HTTP tracker that answers every announce with one compact peer: 127.0.0.1:`peer_port`."""

    def __init__(self) -> None:
        self.peer_port = 0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                peers = socket.inet_aton("127.0.0.1") + struct.pack(">H", owner.peer_port)
                body = b"d8:intervali1800e5:peers6:" + peers + b"e"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/announce"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def make_torrent(folder: Path, tracker: str | None) -> tuple[Path, bytes]:
    """A small single-file torrent (its payload stays on the seeder's side only: nobody serves data)."""
    from torrentpy.creation import create_torrent
    from torrentpy.metainfo import load

    data = folder / "probe.bin"
    if not data.exists():
        data.write_bytes(os.urandom(PIECE * PIECES))
    out = folder / ("probe-tracker.torrent" if tracker else "probe.torrent")
    out.write_bytes(create_torrent(str(data), piece_length=PIECE, trackers=[[tracker]] if tracker else []))
    meta = load(str(out))
    return out, meta.info_hash


def _torrentpy_argv(torrent: Path, save: Path, port: int | None) -> list[str]:
    argv = [sys.executable, "-P", "-m", "torrentpy", "add", str(torrent), "-o", str(save), "--no-tui",
            "--bind", "127.0.0.1", "--seed-ratio", "0"]
    return argv + (["--peer", f"127.0.0.1:{port}"] if port is not None else [])


def start_probe(work: Path, via_tracker: bool) -> tuple[OneTracker | None, Path, FirstRequestSeeder]:
    """A torrent in `work` and the seeder waiting for its first REQUEST, plus the tracker handing that
    seeder out when `via_tracker` (the caller closes it)."""
    tracker = OneTracker() if via_tracker else None
    try:
        torrent, info_hash = make_torrent(work, tracker.url if tracker else None)
        seeder = FirstRequestSeeder(info_hash, PIECES)
    except BaseException:
        if tracker is not None:
            tracker.close()
        raise
    if tracker is not None:
        tracker.peer_port = seeder.port
    return tracker, torrent, seeder


def measure(client: str, via_tracker: bool, work: Path) -> float:
    """Seconds from spawning `client` to the first REQUEST it sends."""
    tracker, torrent, seeder = start_probe(work, via_tracker)
    try:
        with tempfile.TemporaryDirectory(dir=work) as save_dir:
            if client == "torrentpy":
                argv = _torrentpy_argv(torrent, Path(save_dir), None if via_tracker else seeder.port)
            else:
                argv = [sys.executable, "-c", LT_CLIENT, str(torrent), save_dir, "127.0.0.1", str(seeder.port),
                        "tracker" if via_tracker else "-", "5"]
            # The DHT stays on (a user's default) but has no bootstrap nodes and keeps its state in `work`:
            # the probe never contacts anything beyond loopback nor touches the user's DHT state.
            env = {**os.environ, "TORRENTPY_DHT_BOOTSTRAP": "", "TORRENTPY_DHT_STATE": str(work / "dht.dat")}
            start = time.monotonic()
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            try:
                return seeder.wait() - start
            finally:
                proc.terminate()
                proc.wait(10)
    finally:
        if tracker is not None:
            tracker.close()


def compile_bytecode() -> None:
    """Write torrentpy's .pyc files, as pip does when it installs a wheel.

    A source checkout run with PYTHONDONTWRITEBYTECODE (set in some CI and sandbox environments) would
    otherwise compile every module from source on each start: 0.1–0.3 s that a user never pays.
    """
    import compileall

    import torrentpy

    compileall.compile_dir(str(Path(torrentpy.__file__).parent), quiet=1)


def run(rounds: int = 5) -> dict[str, float]:
    """Median seconds to the first request: {"torrentpy peer": …, "libtorrent peer": …, "… tracker": …}."""
    compile_bytecode()
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="startup-probe-") as work:
        for _ in range(rounds):
            for mode in (False, True):
                for client in ("torrentpy", "libtorrent"):
                    key = f"{client} {'tracker' if mode else 'peer'}"
                    results.setdefault(key, []).append(measure(client, mode, Path(work)))
    return {k: statistics.median(v) for k, v in results.items()}


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 5)))
