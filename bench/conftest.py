"""Prints "ours vs baseline" speed ratios after a benchmark run.

A benchmark joins a comparison by calling the `compare` fixture, `compare(benchmark, label, side,
baseline=...)`, which sets
`extra_info["compare"]` (the line's label) and `extra_info["side"]` ("ours" or "baseline"). At the end
of the session each label with both sides gets one line: how many times the baseline's median time
ours takes to run, inverted into a speed ratio ("2.10× hashlib" means twice as fast)."""

from __future__ import annotations

import os
import tempfile
from typing import Any

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # Benchmarks run torrentpy with its default options, and the DHT is on by default: its bootstrap would
    # look up and contact public routers. Loopback only: no bootstrap nodes, and a DHT state file of the
    # run's own rather than the user's.
    os.environ["TORRENTPY_DHT_BOOTSTRAP"] = ""
    os.environ["TORRENTPY_DHT_STATE"] = os.path.join(tempfile.mkdtemp(prefix="bench-dht-"), "dht.dat")


def tag(benchmark: Any, label: str, side: str, *, baseline: str = "baseline", nbytes: int = 0) -> None:
    """Tag `benchmark` as one side of the comparison called `label`."""
    if side not in ("ours", "baseline"):
        raise ValueError("side is 'ours' or 'baseline'")
    benchmark.extra_info.update({"compare": label, "side": side, "baseline": baseline, "bytes": nbytes})


@pytest.fixture
def compare() -> Any:
    """`compare(benchmark, label, "ours" | "baseline", baseline="hashlib", nbytes=N)`."""
    return tag


def _duration(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.2f} {unit}"
    return f"{seconds * 1e9:.0f} ns"


def _rate(median_s: float, nbytes: int) -> str:
    return f", {nbytes / median_s / 1e6:,.0f} MB/s" if nbytes and median_s else ""


def ratio_lines(benchmarks: list[Any]) -> list[str]:
    sides: dict[str, dict[str, Any]] = {}
    for bench in benchmarks:
        info = getattr(bench, "extra_info", {}) or {}
        if "compare" not in info or not bench.stats or not bench.stats.rounds:
            continue
        sides.setdefault(info["compare"], {})[info["side"]] = bench
    lines = []
    for label in sorted(sides):
        pair = sides[label]
        if {"ours", "baseline"} - pair.keys():
            continue
        ours, base = pair["ours"], pair["baseline"]
        ours_s, base_s = ours.stats.median, base.stats.median
        nbytes = ours.extra_info.get("bytes", 0)
        lines.append(
            f"{label}: {base_s / ours_s:.2f}× {base.extra_info['baseline']} "
            f"(median {_duration(ours_s)} vs {_duration(base_s)}{_rate(ours_s, nbytes)})"
        )
    return lines


# The issue-11 goals, measured end to end: (what, measured value, the bar, how it was measured).
GOALS: list[tuple[str, str, str, str]] = []


def goal(what: str, value: str, bar: str, detail: str = "") -> None:
    """Add one line to the "goals" table printed at the end of the run."""
    GOALS.append((what, value, bar, detail))


def goal_table() -> list[str]:
    if not GOALS:
        return []
    widths = [max(len(row[i]) for row in [("what", "measured", "goal", ""), *GOALS]) for i in range(3)]
    lines = [f"{'what':<{widths[0]}}  {'measured':>{widths[1]}}  {'goal':<{widths[2]}}  detail"]
    for what, value, bar, detail in GOALS:
        lines.append(f"{what:<{widths[0]}}  {value:>{widths[1]}}  {bar:<{widths[2]}}  {detail}")
    return lines


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    table = goal_table()
    if table:
        terminalreporter.section("torrentpy vs libtorrent, same run (ratio > 1: torrentpy better)")
        for line in table:
            terminalreporter.write_line(line)
    session = getattr(config, "_benchmarksession", None)
    if session is None:
        return
    lines = ratio_lines(session.benchmarks)
    if lines:
        terminalreporter.section("speed vs baselines (× = how many times as fast as the baseline)")
        for line in lines:
            terminalreporter.write_line(line)
