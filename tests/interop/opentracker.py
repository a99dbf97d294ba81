"""A real opentracker (Debian's whitelist-only build) on loopback, as a pytest fixture.

Use it with ``from tests.interop.opentracker import opentracker  # noqa: F401`` and a test argument
named ``opentracker``; call ``opentracker.allow(info_hash)`` before announcing a torrent to it.
"""

from __future__ import annotations

import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote_from_bytes

import pytest

from tests.interop.peers.base import free_port

__all__ = ["OpenTracker", "opentracker"]

START_TIMEOUT_S = 10.0
RELOAD_TIMEOUT_S = 5.0
# A placeholder line: opentracker warns about (and does not load) an empty whitelist file.
_PLACEHOLDER_HASH = "00" * 20


class OpenTracker:
    """One opentracker process. Stopped only through the PID we started."""

    def __init__(self) -> None:
        binary = shutil.which("opentracker")
        if binary is None:
            raise RuntimeError("opentracker is not installed (apt-get install opentracker)")
        self.binary = binary
        # opentracker drops privileges to `nobody`, so the whitelist must be world-readable.
        self.workdir = Path(tempfile.mkdtemp(prefix="opentracker-"))
        self.workdir.chmod(0o755)
        self.whitelist = self.workdir / "whitelist.txt"
        self.whitelist.write_text(_PLACEHOLDER_HASH + "\n")
        self.whitelist.chmod(0o644)
        self.log_path = self.workdir / "opentracker.log"
        self.http_port = free_port()
        self.udp_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.reload_method = "sighup"
        self._start()

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/announce"

    @property
    def udp_url(self) -> str:
        return f"udp://127.0.0.1:{self.udp_port}/announce"

    def _start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-i", "127.0.0.1", "-p", str(self.http_port), "-P", str(self.udp_port),
                 "-w", str(self.whitelist)],
                cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"opentracker exited with {self.proc.returncode}: {self.log()}")
            if self._http_ready() and self._udp_ready():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"opentracker did not open its ports in {START_TIMEOUT_S} s: {self.log()}")

    def _http_ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.http_port), timeout=0.5):
                return True
        except OSError:
            return False

    def _udp_ready(self) -> bool:
        # A BEP 15 connect request is answered whatever the whitelist says.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.5)
            try:
                s.sendto(struct.pack(">qii", 0x41727101980, 0, 1234), ("127.0.0.1", self.udp_port))
                data = s.recv(64)
            except OSError:
                return False
        return len(data) >= 16 and struct.unpack(">ii", data[:8]) == (0, 1234)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace").strip()[-2000:]
        except OSError:
            return ""

    def _probe(self, info_hash: bytes, event: str) -> bytes | None:
        url = (f"{self.http_url}?info_hash={quote_from_bytes(info_hash, safe='')}"
               f"&peer_id={quote_from_bytes(b'-PROBE0-' + bytes(12), safe='')}"
               f"&port=1&uploaded=0&downloaded=0&left=1&compact=1&numwant=0&event={event}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return bytes(resp.read(65536))
        except (urllib.error.URLError, OSError):
            return None

    def is_allowed(self, info_hash: bytes) -> bool:
        """Probe with a `started` announce, removed again by a `stopped` (which opentracker never refuses)."""
        body = self._probe(info_hash, "started")
        if body is None or b"failure reason" in body:
            return False
        self._probe(info_hash, "stopped")
        return True

    def allow(self, info_hash: bytes) -> None:
        """Whitelist a torrent: append its hex info-hash and reload (SIGHUP, else a restart)."""
        assert len(info_hash) == 20
        with open(self.whitelist, "a") as f:
            f.write(info_hash.hex() + "\n")
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + RELOAD_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.is_allowed(info_hash):
                return
            time.sleep(0.05)
        # SIGHUP did not take: the whitelist is always read at start-up, so restart on the same ports.
        self.reload_method = "restart"
        self.stop()
        self._start()
        if not self.is_allowed(info_hash):
            raise RuntimeError(f"opentracker still refuses {info_hash.hex()} after a restart: {self.log()}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


@pytest.fixture
def opentracker() -> Iterator[OpenTracker]:
    tracker = OpenTracker()
    try:
        yield tracker
    finally:
        tracker.close()

