"""torrentpy with default options sends no datagram (and opens no connection) to any address outside
127.0.0.0/8 and ::1 while the test suite runs: the autouse fixture empties TORRENTPY_DHT_BOOTSTRAP,
and this test watches the real process's system calls with strace to prove it."""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.interop.peers.base import free_port

STRACE = shutil.which("strace")
# An inet address in strace's rendering of sendto/sendmsg/connect arguments.
_ADDR = re.compile(r'inet_addr\("([0-9.]+)"\)|inet_pton\(AF_INET6, "([0-9a-fA-F:.]+)"')


def outside_loopback(strace_log: str) -> list[str]:
    """Every destination address in the log that is not 127.0.0.0/8 or ::1 (nor the wildcard)."""
    bad = []
    for line in strace_log.splitlines():
        if not re.search(r"\b(sendto|sendmsg|sendmmsg|connect)\(", line):
            continue
        for v4, v6 in _ADDR.findall(line):
            addr = ipaddress.ip_address(v4 or v6)
            if addr.is_unspecified or addr.is_loopback or \
                    (isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped and addr.ipv4_mapped.is_loopback):
                continue
            bad.append(line.strip())
    return bad


def test_the_checker_sees_an_outside_address() -> None:
    log = '\n'.join([
        '123 sendto(7, "d1:ad2:id20:", 58, 0, {sa_family=AF_INET, sin_port=htons(6881), '
        'sin_addr=inet_addr("67.215.246.10")}, 16) = 58',
        '123 sendto(7, "x", 1, 0, {sa_family=AF_INET, sin_port=htons(1), sin_addr=inet_addr("127.0.0.5")}, 16) = 1',
        '124 connect(9, {sa_family=AF_INET6, sin6_port=htons(80), inet_pton(AF_INET6, "2001:db8::1", &sin6_addr)}, 28)',
        '124 connect(9, {sa_family=AF_INET6, sin6_port=htons(80), inet_pton(AF_INET6, "::1", &sin6_addr)}, 28)',
    ])
    assert len(outside_loopback(log)) == 2


def test_default_options_run_stays_on_this_machine(tmp_path: Path) -> None:
    assert STRACE is not None, "strace is missing: the Makefile's DEBS install it"
    assert os.environ["TORRENTPY_DHT_BOOTSTRAP"] == ""  # the autouse fixture
    trace = tmp_path / "strace.log"
    magnet = "magnet:?xt=urn:btih:" + "ab" * 20 + "&dn=nothing"
    argv = [str(STRACE), "-f", "-qq", "-e", "trace=sendto,sendmsg,sendmmsg,connect", "-o", str(trace),
            sys.executable, "-m", "torrentpy", "add", magnet, "-o", str(tmp_path), "--no-tui",
            "--listen-port", str(free_port())]
    proc = subprocess.Popen(argv, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        time.sleep(6.0)  # long enough to start the DHT, bootstrap (from nothing) and tick
        assert proc.poll() is None, proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    log = trace.read_text(errors="replace")
    # A trace with nothing in it would pass the check below without proving anything.
    assert log.strip() and "PTRACE" not in log, f"strace could not trace torrentpy: {log[:500]!r}"
    assert outside_loopback(log) == []
