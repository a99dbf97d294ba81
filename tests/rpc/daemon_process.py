"""`torrentpy daemon` as a process on 127.0.0.1, and a tiny Transmission-RPC client for checking it.

The client is deliberately naive (urllib, one request at a time) so that what it checks is the daemon's
answer, not a library's interpretation of it; the real front ends are driven in the tests themselves.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.interop.peers.base import LOOPBACK, free_port

TORRENTPY = Path(sys.executable).with_name("torrentpy")


class DaemonProcess:
    def __init__(self, work: Path, *, download_dir: Path | None = None, state_dir: Path | None = None,
                 extra: tuple[str, ...] = (), auth: tuple[str, str] | None = None) -> None:
        self.work = work
        self.download_dir = download_dir or work / "downloads"
        self.state_dir = state_dir or work / "state"
        self.rpc_port = free_port()
        self.peer_port = free_port()
        self.extra = extra
        self.auth = auth
        self.proc: subprocess.Popen[bytes] | None = None
        self.session_id = ""
        self.log = work / f"daemon-{self.rpc_port}.log"

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.rpc_port}/transmission/rpc"

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.rpc_port}"

    def argv(self) -> list[str]:
        argv = [str(TORRENTPY), "daemon", "--download-dir", str(self.download_dir), "--state-dir",
                str(self.state_dir), "--rpc-port", str(self.rpc_port), "--listen-port", str(self.peer_port),
                "--bind", LOOPBACK, "--log-file", str(self.log), *self.extra]
        if self.auth:
            argv += ["--rpc-username", self.auth[0], "--rpc-password", self.auth[1]]
        return argv

    def start(self, timeout_s: float = 20.0) -> DaemonProcess:
        self.work.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        self.proc = subprocess.Popen(self.argv(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}: {self.proc.stderr.read().decode()}"
                                     if self.proc.stderr else "daemon exited")
            try:
                self.post(b"{}", session_id="")
                return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError("the daemon's RPC did not answer in time")

    def stop(self, signum: int = signal.SIGTERM, timeout_s: float = 20.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("the daemon did not stop in time") from None
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        return self.proc.returncode

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    # --- raw HTTP ----------------------------------------------------------------

    def post(self, body: bytes, *, session_id: str | None = None, headers: dict[str, str] | None = None,
             auth: tuple[str, str] | None = None, path: str = "/transmission/rpc") -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(f"http://{LOOPBACK}:{self.rpc_port}{path}", data=body, method="POST")
        sid = self.session_id if session_id is None else session_id
        if sid:
            request.add_header("X-Transmission-Session-Id", sid)
        credentials = auth if auth is not None else self.auth
        if credentials:
            token = base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    def call(self, method: str, arguments: dict[str, Any] | None = None, tag: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"method": method, "arguments": arguments or {}}
        if tag is not None:
            body["tag"] = tag
        data = json.dumps(body).encode()
        status, headers, reply = self.post(data)
        if status == 409:
            self.session_id = headers["X-Transmission-Session-Id"]
            status, headers, reply = self.post(data)
        assert status == 200, (status, reply[:300])
        answer: dict[str, Any] = json.loads(reply)
        return answer

    def torrents(self, *fields: str, ids: Any = None) -> list[dict[str, Any]]:
        args: dict[str, Any] = {"fields": ["id", "hashString", *fields]}
        if ids is not None:
            args["ids"] = ids
        answer = self.call("torrent-get", args)
        assert answer["result"] == "success", answer
        rows: list[dict[str, Any]] = answer["arguments"]["torrents"]
        return rows

    def wait_torrent(self, torrent_id: int, check: Any, timeout_s: float = 40.0, what: str = "") -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        row: dict[str, Any] = {}
        while time.monotonic() < deadline:
            rows = self.torrents("status", "percentDone", "leftUntilDone", "error", "errorString", "name",
                                 "haveValid", "recheckProgress", "isFinished", "downloadDir", ids=[torrent_id])
            if rows:
                row = rows[0]
                if check(row):
                    return row
            time.sleep(0.2)
        raise AssertionError(f"torrent {torrent_id} never became {what or check}: last {row}\n{self.log_tail()}")
