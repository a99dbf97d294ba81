"""Start-up latency and recheck speed, torrentpy against libtorrent in the same run (bench/startup_probe.py,
bench/recheck.py). TORRENTPY_BENCH_RECHECK_MIB sets the recheck size (default 1024);
TORRENTPY_BENCH_ROUNDS the rounds (default 3; the start-up probe runs twice as many, it is quick)."""

from __future__ import annotations

import os
from typing import Any

from bench import recheck, startup_probe
from bench.conftest import goal

ROUNDS = int(os.environ.get("TORRENTPY_BENCH_ROUNDS", "3"))
RECHECK_MIB = int(os.environ.get("TORRENTPY_BENCH_RECHECK_MIB", "1024"))


def test_startup_to_first_request(benchmark: Any) -> None:
    result: dict[str, float] = {}
    benchmark.pedantic(lambda: result.update(startup_probe.run(ROUNDS * 2)), rounds=1, iterations=1)
    for mode, how in (("peer", "peer given (--peer)"), ("tracker", "peer from an HTTP tracker")):
        ours, theirs = result[f"torrentpy {mode}"], result[f"libtorrent {mode}"]
        goal(f"start-up to first REQUEST, {how}", f"{ours:.3f} s", "≤ 0.15 s",
             f"libtorrent {theirs:.3f} s ({theirs / ours:.2f}× ours)")


def test_recheck(benchmark: Any) -> None:
    result: dict[str, float] = {}
    benchmark.pedantic(lambda: result.update(recheck.run(RECHECK_MIB, ROUNDS)), rounds=1, iterations=1)
    rate = {side: RECHECK_MIB * recheck.PIECE / s / 1e6 for side, s in result.items()}
    goal(f"recheck {RECHECK_MIB} MiB vs libtorrent (defaults)", f"{result['libtorrent'] / result['torrentpy']:.2f}×",
         "≥ 1.7", f"{rate['torrentpy']:.0f} vs {rate['libtorrent']:.0f} MB/s")
    goal(f"recheck {RECHECK_MIB} MiB vs plain hashlib (1 thread)", f"{result['hashlib'] / result['torrentpy']:.2f}×",
         "(for scale)", f"hashlib {rate['hashlib']:.0f} MB/s")
