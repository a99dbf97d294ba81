"""Process management for real peer clients started by the interop tests.

Every client is started with :class:`ManagedProcess` and stopped by the PID it started (SIGTERM, then
SIGKILL after a timeout). Nothing here signals a process by name.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import os
import random
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

LOOPBACK = "127.0.0.1"
# Ports handed out below the kernel's ephemeral range (32768-60999 here) so an outgoing connection of
# some other process cannot take one between free_port() and the client's bind().
_PORT_RANGE = (20000, 32000)
# Remembered so two fixtures asking at the same moment never get the same port.
_handed_out: set[int] = set()
# Bytes of a log tail put into error messages: enough for the last few lines, short enough to read.
LOG_TAIL_BYTES = 4000
# Cap on an RPC response body; the largest legitimate one (a peer list) is a few kilobytes.
RPC_RESPONSE_LIMIT_BYTES = 4 * 1024 * 1024

T = TypeVar("T")


class PeerError(RuntimeError):
    """A peer client failed to start, died, or did not reach the expected state."""


def _port_is_free(host: str, port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                return False
    return True


def _worker_range() -> tuple[int, int]:
    """This process's share of _PORT_RANGE: pytest-xdist workers (gw0, gw1, …) each keep to their own
    slice, since one worker cannot see the ports another has handed out but not yet bound."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if not worker.startswith("gw") or not worker[2:].isdigit() or count <= 1:
        return _PORT_RANGE
    low, high = _PORT_RANGE
    span = (high - low) // count
    index = int(worker[2:]) % count
    return low + index * span, low + (index + 1) * span


def free_port(host: str = LOOPBACK) -> int:
    """A port on ``host`` free for both TCP and UDP right now, never returned before in this process."""
    rng = random.Random()
    low, high = _worker_range()
    for _ in range(500):
        port = rng.randrange(low, high)
        if port in _handed_out or not _port_is_free(host, port):
            continue
        _handed_out.add(port)
        return port
    raise PeerError(f"no free port on {host} in {_PORT_RANGE}")


def wait_for(
    predicate: Callable[[], T | None], timeout_s: float, interval_s: float = 0.1, message: str = "condition"
) -> T:
    """Call ``predicate`` until it returns something truthy and return that; TimeoutError otherwise."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout_s:.1f} s waiting for {message}")
        time.sleep(interval_s)


def port_accepts(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def wait_port(host: str, port: int, timeout_s: float) -> None:
    """Wait until a TCP connect to (host, port) succeeds."""
    wait_for(lambda: port_accepts(host, port), timeout_s, 0.05, f"TCP {host}:{port} to accept")


def _is_loopback_ip(ip: str) -> bool:
    return ip.startswith("127.") or ip == "::1" or ip.startswith("::ffff:127.")


@dataclass(frozen=True)
class ListeningSocket:
    proto: str  # "tcp" or "udp"
    ip: str
    port: int

    def is_loopback(self) -> bool:
        return _is_loopback_ip(self.ip)


@dataclass(frozen=True)
class OpenSocket:
    proto: str  # "tcp" or "udp"
    local: tuple[str, int]
    remote: tuple[str, int]  # ("0.0.0.0", 0) / ("::", 0) when not connected
    listening: bool

    def remote_is_loopback_or_unset(self) -> bool:
        return self.remote[1] == 0 or _is_loopback_ip(self.remote[0])


def _decode_proc_addr(hex_addr: str) -> tuple[str, int]:
    ip_hex, port_hex = hex_addr.split(":")
    raw = bytes.fromhex(ip_hex)
    if len(raw) == 4:
        ip = socket.inet_ntop(socket.AF_INET, raw[::-1])
    else:
        # /proc/net/tcp6 stores the address as four host-order (little-endian) 32-bit words.
        words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
        ip = socket.inet_ntop(socket.AF_INET6, words)
    return ip, int(port_hex, 16)


def open_sockets(pid: int) -> list[OpenSocket]:
    """Every TCP/UDP socket ``pid`` holds, from /proc (what ``ss -tunap`` shows, without ss)."""
    inodes: set[str] = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found: list[OpenSocket] = []
    for table in ("tcp", "tcp6", "udp", "udp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
            if inode not in inodes:
                continue
            # 0A is TCP_LISTEN; a UDP socket is "listening" as soon as it is bound (state 07, TCP_CLOSE).
            listening = state == "0A" if table.startswith("tcp") else state == "07"
            found.append(
                OpenSocket(table[:3], _decode_proc_addr(local), _decode_proc_addr(remote), listening)
            )
    return found


def listening_sockets(pid: int) -> list[ListeningSocket]:
    """TCP listeners and bound UDP sockets owned by ``pid``."""
    found = {ListeningSocket(s.proto, *s.local) for s in open_sockets(pid) if s.listening}
    return sorted(found, key=lambda s: (s.proto, s.port, s.ip))


def listens_on(pid: int, port: int, proto: str = "tcp") -> bool:
    """True once ``pid`` itself (not some other process) listens on ``port``."""
    with contextlib.suppress(OSError):
        return any(s.proto == proto and s.port == port for s in listening_sockets(pid))
    return False


# Loaded in the parent: the child between fork and exec should only make one plain C call.
_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _set_parent_death_signal() -> None:
    # If the pytest process dies without running teardown, the kernel SIGKILLs the client instead of
    # leaving it seeding on loopback forever.
    _libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))


class ManagedProcess:
    """One child process, logged to a file, stopped only through the PID it was started with."""

    def __init__(
        self,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_path)
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._popen is None:
            raise PeerError("process not started")
        return self._popen.pid

    def start(self) -> ManagedProcess:
        if self._popen is not None:
            raise PeerError("process already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"$ {' '.join(self.argv)}\n".encode())
            log.flush()
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                # Own session: a Ctrl-C aimed at pytest reaches pytest, whose teardown then stops us.
                start_new_session=True,
                preexec_fn=_set_parent_death_signal,
            )
        return self

    def poll(self) -> int | None:
        return None if self._popen is None else self._popen.poll()

    def is_running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.poll()

    def log_tail(self, limit_bytes: int = LOG_TAIL_BYTES) -> str:
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return ""
        return data[-limit_bytes:].decode(errors="replace")

    def check_alive(self, what: str) -> None:
        """Raise PeerError with the log tail if the process has exited."""
        rc = self.poll()
        if rc is not None:
            raise PeerError(f"{what} exited with status {rc}; log {self.log_path}:\n{self.log_tail()}")

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """SIGTERM the PID we started, wait, SIGKILL after ``timeout_s``. Returns the exit status."""
        popen = self._popen
        if popen is None:
            return None
        if popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(popen.pid, signal.SIGTERM)
            try:
                popen.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                return self.kill9()
        return popen.returncode

    def kill9(self, timeout_s: float = 5.0) -> int | None:
        popen = self._popen
        if popen is None:
            return None
        if popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(popen.pid, signal.SIGKILL)
            popen.wait(timeout=timeout_s)
        return popen.returncode


def client_env(home: Path) -> dict[str, str]:
    """Environment for a client whose config, cache and data must stay inside the test's tmp dir."""
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        LANG="C.UTF-8",
        LC_ALL="C.UTF-8",
    )
    return env


# Proxies are for the outside world; every URL here is 127.0.0.1, so never route through one.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _lower(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def http_request(
    url: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout_s: float = 5.0,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request to a loopback URL; returns (status, lower-cased headers, body) for any status."""
    if not url.startswith(f"http://{LOOPBACK}:"):
        raise PeerError(f"refusing non-loopback URL {url}")
    req = urllib.request.Request(url, data=body, headers=dict(headers or {}))
    try:
        with _opener.open(req, timeout=timeout_s) as resp:
            return resp.status, _lower(resp.headers), resp.read(RPC_RESPONSE_LIMIT_BYTES)
    except urllib.error.HTTPError as err:
        return err.code, _lower(err.headers), err.read(RPC_RESPONSE_LIMIT_BYTES)


def http_json(
    url: str, payload: Any, headers: Mapping[str, str] | None = None, timeout_s: float = 5.0
) -> Any:
    status, _, body = http_request(
        url, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})}, timeout_s
    )
    if status != 200:
        raise PeerError(f"POST {url} -> HTTP {status}: {body[:500]!r}")
    return json.loads(body)


# Port races (another process grabbing the free port we picked) are retried with a fresh port.
START_ATTEMPTS = 3


class PeerProcess:
    """What every peer fixture offers: an address, a status dict, a finish wait, and a PID-based stop."""

    name = "peer"
    process: ManagedProcess | None = None
    _port: int | None = None
    requested_port: int | None = None

    def _launch_until_listening(
        self, launch: Callable[[int, int], ManagedProcess], ready: Callable[[int], bool], timeout_s: float
    ) -> int:
        """Start the client (``launch(port, attempt)``) until ``ready(port)`` — its own PID listening —
        holds, with a fresh port after a failed attempt unless the caller asked for one. Returns the port."""
        last_error: Exception | None = None
        for attempt in range(START_ATTEMPTS):
            port = self.requested_port or free_port()
            self.process = launch(port, attempt)
            self.process.start()
            try:
                wait_for(functools.partial(ready, port), timeout_s, 0.05, f"{self.name} to listen on {port}")
            except (TimeoutError, PeerError) as err:
                last_error = err
                self.process.stop()
                if self.requested_port:
                    break
                continue
            self._port = port
            return port
        raise PeerError(f"{self.name} did not start: {last_error}\n{self.log_tail()}")

    def _alive(self) -> bool:
        assert self.process is not None
        self.process.check_alive(self.name)
        return True

    @property
    def port(self) -> int:
        if self._port is None:
            raise PeerError(f"{self.name} has no port yet; call start() first")
        return self._port

    @property
    def address(self) -> tuple[str, int]:
        return (LOOPBACK, self.port)

    @property
    def pid(self) -> int:
        if self.process is None:
            raise PeerError(f"{self.name} not started")
        return self.process.pid

    def listening_sockets(self) -> list[ListeningSocket]:
        return listening_sockets(self.pid)

    def open_sockets(self) -> list[OpenSocket]:
        return open_sockets(self.pid)

    def log_tail(self) -> str:
        return "" if self.process is None else self.process.log_tail()

    def stop(self, timeout_s: float = 10.0) -> int | None:
        return None if self.process is None else self.process.stop(timeout_s)

    def kill9(self) -> int | None:
        return None if self.process is None else self.process.kill9()
