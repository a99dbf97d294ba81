"""10,000 torrents in `torrentpy daemon` (issue 13): start-up until the RPC answers with every torrent loaded,
the RPC calls a front end polls with, CPU while idle and RSS per torrent.

Tiny single-piece torrents made by torrentpy's create code, their data in the download folder (so they
seed), recorded in the state folder as torrent-add records them (tests/rpc/many.py). The daemon runs as
a real process, driven over HTTP by tests/rpc/daemon_process.py's plain client, so each RPC time
includes the HTTP round trip and the JSON both ways. TORRENTPY_BENCH_TORRENTS sets the counts (default
1000,10000)."""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

import pytest

from bench.conftest import goal
from tests.procstatus import status_bytes
from tests.rpc.daemon_process import DaemonProcess
from tests.rpc.many import LIST_FIELDS, STATUS_SEED, make_torrents, record_torrents, write_session_settings

COUNTS = [int(n) for n in os.environ.get("TORRENTPY_BENCH_TORRENTS", "1000,10000").split(",")]
IDLE_WINDOW_S = 10.0
# "recently-active" covers Transmission's 60 s; shortened so the bench sees the steady state (start-up
# over) without waiting a minute: a poll then returns the few torrents a front end just touched.
WINDOW_S = 8.0
TOUCHED = 10
CALLS = 7
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def start(work: Path, downloads: Path, state: Path) -> tuple[DaemonProcess, float]:
    """A daemon and the seconds until its RPC answered."""
    started = time.monotonic()
    daemon = DaemonProcess(work, download_dir=downloads, state_dir=state).start(timeout_s=600)
    return daemon, time.monotonic() - started


def wait_loaded(daemon: DaemonProcess, count: int, timeout_s: float = 1200) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rows = daemon.torrents("status", "error")
        if len(rows) == count and all(r["status"] == STATUS_SEED for r in rows):
            return
        assert not any(r["error"] for r in rows), [r for r in rows if r["error"]][:3]
        time.sleep(0.5)
    raise AssertionError(f"not every torrent seeding after {timeout_s} s\n{daemon.log_tail()}")


def call_ms(daemon: DaemonProcess, method: str, arguments: dict[str, Any], rows: int | None = None) -> float:
    """Median of CALLS calls, client side (HTTP and JSON included); checks each answer's size."""
    times = []
    for _ in range(CALLS):
        started = time.perf_counter()
        answer = daemon.call(method, arguments)
        times.append(time.perf_counter() - started)
        assert answer["result"] == "success", answer
        if rows is not None:
            assert len(answer["arguments"]["torrents"]) == rows, len(answer["arguments"]["torrents"])
    return statistics.median(times) * 1e3


def measure(tmp: Path, count: int) -> dict[str, float]:
    downloads, state = tmp / "downloads", tmp / "state"
    empty, _ = start(tmp / "empty", tmp / "empty-dl", tmp / "empty-state")
    baseline_rss = status_bytes(empty.proc.pid, "VmRSS")  # type: ignore[union-attr]
    empty.stop()

    made = time.monotonic()
    metas = make_torrents(downloads, count)
    record_torrents(state, metas, downloads)
    write_session_settings(state, recently_active_s=WINDOW_S)
    result: dict[str, float] = {"setup_s": time.monotonic() - made}

    # First start: no resume files yet, so each torrent's piece is hashed and its resume file written.
    daemon, result["first_rpc_s"] = start(tmp / "first", downloads, state)
    wait_loaded(daemon, count)
    result["first_loaded_s"] = time.monotonic() - made - result["setup_s"]
    stopping = time.monotonic()
    assert daemon.stop(timeout_s=600) == 0
    result["stop_s"] = time.monotonic() - stopping

    # The restart a user sees: records and resume files all there.
    restarted = time.monotonic()
    daemon, result["restart_rpc_s"] = start(tmp / "again", downloads, state)
    pid = daemon.proc.pid  # type: ignore[union-attr]
    try:
        wait_loaded(daemon, count)
        result["restart_loaded_s"] = time.monotonic() - restarted
        time.sleep(WINDOW_S + 2.0)  # start-up is no longer "recent"; the first idle ticks are over
        result["rss_per_torrent"] = (status_bytes(pid, "VmRSS") - baseline_rss) / count
        cpu, wall = proc_cpu_s(pid), time.monotonic()
        time.sleep(IDLE_WINDOW_S)
        result["idle_cpu"] = (proc_cpu_s(pid) - cpu) / (time.monotonic() - wall)

        touched = list(range(1, count + 1, max(1, count // TOUCHED)))[:TOUCHED]
        assert daemon.call("torrent-set", {"ids": touched, "labels": ["bench"]})["result"] == "success"
        result["recent_ms"] = call_ms(daemon, "torrent-get", {"ids": "recently-active", "fields": LIST_FIELDS},
                                      rows=len(touched))
        result["few_ms"] = call_ms(daemon, "torrent-get", {"ids": [1, count // 2, count], "fields": LIST_FIELDS},
                                   rows=3)
        result["all_ms"] = call_ms(daemon, "torrent-get", {"fields": LIST_FIELDS}, rows=count)
        result["all_table_ms"] = call_ms(daemon, "torrent-get", {"fields": LIST_FIELDS, "format": "table"})
        result["stats_ms"] = call_ms(daemon, "session-stats", {})
    finally:
        daemon.stop(timeout_s=600)
    return result


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("count", COUNTS)
def test_daemon_with_many_torrents(benchmark: Any, tmp_path: Path, count: int) -> None:
    result: dict[str, float] = {}
    benchmark.pedantic(lambda: result.update(measure(tmp_path, count)), rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    n = f"daemon, {count:,} torrents"
    goal(f"{n}: restart until the RPC answers", f"{result['restart_rpc_s']:.1f} s", "seconds",
         f"first start (no resume files) {result['first_rpc_s']:.1f} s")
    goal(f"{n}: restart until all seeding", f"{result['restart_loaded_s']:.1f} s", "seconds",
         f"{result['restart_loaded_s'] / count * 1e3:.2f} ms a torrent; first start "
         f"{result['first_loaded_s']:.1f} s (hash + first resume save each); SIGTERM to exit {result['stop_s']:.1f} s")
    goal(f"{n}: RSS per torrent", f"{result['rss_per_torrent'] / 1024:.1f} KiB", "(for scale)",
         "over an empty daemon's RSS")
    goal(f"{n}: CPU while idle", f"{result['idle_cpu']:.2%}", "≈ 0", f"of one core over {IDLE_WINDOW_S:.0f} s")
    goal(f"{n}: torrent-get recently-active ({TOUCHED} touched)", f"{result['recent_ms']:.1f} ms", "ms",
         f"{len(LIST_FIELDS)} fields (transmission-remote -l's), HTTP + JSON included")
    goal(f"{n}: torrent-get of 3 ids", f"{result['few_ms']:.1f} ms", "ms", "same fields")
    goal(f"{n}: torrent-get of all", f"{result['all_ms']:.0f} ms", "(O(torrents))",
         f"same fields; format=table {result['all_table_ms']:.0f} ms")
    goal(f"{n}: session-stats", f"{result['stats_ms']:.1f} ms", "ms", "")
