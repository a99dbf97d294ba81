"""End-to-end loopback transfers, torrentpy against libtorrent in the same run, as a user gets them.

- download: one libtorrent seeder announces a generated torrent (1 MiB pieces) to a real opentracker;
  a torrentpy leecher (`torrentpy add T -o DIR --seed-ratio 0`, nothing else but loopback) and a
  libtorrent leecher (its defaults) find it through the tracker and download, in alternation. The clock
  runs from spawning the process to its exit, so start-up, announce and shutdown count on both sides.
  Nothing else runs in the fixture (an idle torrentpy seeder used to share the two cores with both).
- upload: a libtorrent leecher downloads the same torrent from a torrentpy seeder and from a libtorrent
  seeder, dialing each directly, in alternation (timed by the leecher, add to finished). aria2 cannot be
  handed a peer, so it finds each seeder through the tracker: each seeds its own copy of the torrent (the
  same files; an info `source` key tells the info-hashes apart), and aria2 is timed from spawn to exit.
- many seeders: 50 libtorrent sessions (one process, `lt_swarm.py`) seed another copy; torrentpy leeches
  it through the tracker vs the one-seeder torrent, in alternation: rate and CPU per GiB, torrentpy
  against itself (the bar is keeping ≥ 0.9 of the one-seeder rate at ≤ 1.2× the CPU).

TORRENTPY_BENCH_SIZES sets the payload sizes in MiB (default "256,1024"); TORRENTPY_BENCH_ROUNDS the
rounds (default 3, medians reported)."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bencode
import pytest

from bench.conftest import goal
from tests.interop.opentracker import OpenTracker
from tests.interop.peers.base import free_port
from tests.interop.peers.libtorrent_peer import LibtorrentPeer
from tests.interop.peers.torrentpy_peer import TorrentpyPeer
from torrentpy.metainfo import load

SIZES_MIB = [int(s) for s in os.environ.get("TORRENTPY_BENCH_SIZES", "256,1024").split(",") if s.strip()]
PIECE = 1024 * 1024
ROUNDS = int(os.environ.get("TORRENTPY_BENCH_ROUNDS", "3"))
LT_LEECH = Path(__file__).with_name("lt_leech.py")
LT_SWARM = Path(__file__).with_name("lt_swarm.py")
MANY_SEEDERS = int(os.environ.get("TORRENTPY_BENCH_SEEDERS", "50"))


@pytest.fixture(scope="module")
def tracker() -> Iterator[OpenTracker]:
    ot = OpenTracker()
    yield ot
    ot.close()


def _payload(base: Path, size_mib: int, tracker_url: str) -> tuple[Path, Path]:
    """(torrent naming the tracker, the same torrent without it: for leechers told whom to dial)."""
    data = base / "seed" / "bench"
    data.mkdir(parents=True)
    with open(data / "payload.bin", "wb") as fh:
        chunk = bytearray(os.urandom(PIECE))
        for i in range(size_mib):
            chunk[:8] = i.to_bytes(8, "little")  # distinct pieces without paying for 1 GiB of urandom
            fh.write(chunk)
    torrents = base / "bench.torrent", base / "bench-direct.torrent"
    for torrent, trackers in zip(torrents, (["-t", tracker_url], []), strict=True):
        subprocess.run([sys.executable, "-P", "-m", "torrentpy", "create", str(data), "--piece-size", str(PIECE),
                        *trackers, "-o", str(torrent)], check=True, stdout=subprocess.DEVNULL)
    assert load(str(torrents[0])).info_hash == load(str(torrents[1])).info_hash
    return torrents


@pytest.fixture(scope="module", params=SIZES_MIB, ids=lambda mib: f"{mib}MiB")
def swarm(request: pytest.FixtureRequest, tracker: OpenTracker,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    size_mib = request.param
    base = tmp_path_factory.mktemp(f"e2e{size_mib}")
    torrent, direct = _payload(base, size_mib, tracker.http_url)
    tracker.allow(load(str(torrent)).info_hash)
    lt_seed = LibtorrentPeer(base / "peers", torrent, base / "seed", True, seed_mode=True, name="lt-seed").start()
    lt_seed.wait_seeding(120)
    yield {"base": base, "torrent": torrent, "direct": direct, "lt_seed": lt_seed, "size_mib": size_mib}
    lt_seed.stop()
    shutil.rmtree(base, ignore_errors=True)


def _variant(torrent: Path, source: str, tracker: OpenTracker) -> Path:
    """The same torrent (same files and pieces) under another info-hash, allowed on the tracker: a swarm
    of its own, so a leecher finds exactly the seeders of that copy."""
    meta = bencode.bread(str(torrent))
    meta["info"]["source"] = source
    out = torrent.with_name(f"{torrent.stem}-{source}.torrent")
    bencode.bwrite(meta, str(out))
    tracker.allow(load(str(out)).info_hash)
    return out


def _timed(argv: list[str]) -> tuple[dict[str, float], str]:
    """Spawn `argv` and wait for it: wall seconds from spawn to exit, its CPU seconds and peak RSS."""
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, f"{argv[:4]} exited {proc.returncode}"
    return {"elapsed_s": elapsed, "cpu_s": usage.ru_utime + usage.ru_stime, "rss_mib": usage.ru_maxrss / 1024}, out


def _torrentpy_leech(torrent: Path, save: Path) -> dict[str, float]:
    # Default options; only the exit after download (--seed-ratio 0) and loopback (--bind) are asked for.
    return _timed([sys.executable, "-P", "-m", "torrentpy", "add", str(torrent), "-o", str(save),
                   "--seed-ratio", "0", "--no-tui", "--bind", "127.0.0.1"])[0]


def _libtorrent_leech(torrent: Path, save: Path, peer: str | None = None) -> dict[str, float]:
    result, out = _timed([sys.executable, str(LT_LEECH), str(torrent), str(save), *([peer] if peer else [])])
    record = json.loads(out.strip().splitlines()[-1])
    assert "elapsed_s" in record, record
    return {**result, "transfer_s": record["elapsed_s"]}


def _fresh_save(save: Path, size_mib: int) -> None:
    """Remove `save`, then write and delete as many MiB as the download will write.

    On this project's virtual machines the host takes freed memory back after a few seconds, and the
    next process to fill the page cache pays for it again: whichever client ran first after a pause wrote
    1 GiB with 4 s of system time, against 0.8-0.9 s once memory had been touched (torrentpy and
    libtorrent alike). Touching it right before each timed run gives every client the same start."""
    shutil.rmtree(save, ignore_errors=True)
    warm = save.with_name(save.name + ".warm")
    chunk = bytes(1024 * 1024)
    with open(warm, "wb") as fh:
        for _ in range(size_mib + 64):
            fh.write(chunk)
    warm.unlink()


def _med(values: list[float]) -> float:
    return statistics.median(values)


def test_download_from_libtorrent_seeder(benchmark: Any, swarm: dict[str, Any]) -> None:
    base, torrent, size_mib = swarm["base"], swarm["torrent"], swarm["size_mib"]
    runs: dict[str, list[dict[str, float]]] = {"torrentpy": [], "libtorrent": []}

    def one_round() -> None:
        for leech in ("torrentpy", "libtorrent"):
            save = base / f"dl-{leech}"
            _fresh_save(save, size_mib)
            run = _torrentpy_leech if leech == "torrentpy" else _libtorrent_leech
            runs[leech].append(run(torrent, save))
            shutil.rmtree(save, ignore_errors=True)

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    tp, lt = runs["torrentpy"], runs["libtorrent"]
    wall = _med([r["elapsed_s"] for r in lt]) / _med([r["elapsed_s"] for r in tp])
    cpu = _med([r["cpu_s"] for r in tp]) / _med([r["cpu_s"] for r in lt])
    rate = size_mib * PIECE / _med([r["elapsed_s"] for r in tp]) / 1e6
    lt_rate = size_mib * PIECE / _med([r["elapsed_s"] for r in lt]) / 1e6
    rss = max(r["rss_mib"] for r in tp)
    benchmark.extra_info.update({"wall_ratio": round(wall, 3), "cpu_ratio": round(cpu, 3), "torrentpy_MBps": rate,
                                 "libtorrent_MBps": lt_rate, "torrentpy_peak_rss_MiB": rss})
    goal(f"leech {size_mib} MiB via tracker, start to exit (speed)", f"{wall:.2f}×", "≥ 1.0 (floor 0.9)",
         f"{rate:.0f} vs {lt_rate:.0f} MB/s")
    goal(f"leech {size_mib} MiB: CPU s torrentpy ÷ libtorrent", f"{cpu:.2f}×", "≤ 1.5",
         f"{_med([r['cpu_s'] for r in tp]):.2f} vs {_med([r['cpu_s'] for r in lt]):.2f} s")
    goal(f"leech {size_mib} MiB: torrentpy peak RSS", f"{rss:.0f} MiB", "≤ 64 MiB (1 GiB)",
         f"libtorrent {max(r['rss_mib'] for r in lt):.0f} MiB (ru_maxrss, not only anonymous)")


@pytest.fixture(scope="module")
def tp_seed(swarm: dict[str, Any]) -> Iterator[TorrentpyPeer]:
    """A torrentpy seeder, started only for the upload test so that it idles through no download."""
    base = swarm["base"]
    seed = TorrentpyPeer(base / "peers", swarm["torrent"], base / "seed", True, name="tp-seed").start()
    seed.wait_event("resumed", 120)
    yield seed
    seed.stop()


def test_upload_to_libtorrent_leecher(benchmark: Any, swarm: dict[str, Any], tp_seed: TorrentpyPeer) -> None:
    base, torrent, size_mib = swarm["base"], swarm["direct"], swarm["size_mib"]
    times: dict[str, list[float]] = {"torrentpy": [], "libtorrent": []}

    def one_round() -> None:
        for seeder in ("torrentpy", "libtorrent"):
            port = tp_seed.port if seeder == "torrentpy" else swarm["lt_seed"].port
            save = base / f"ul-{seeder}"
            _fresh_save(save, swarm["size_mib"])
            times[seeder].append(_libtorrent_leech(torrent, save, f"127.0.0.1:{port}")["transfer_s"])
            shutil.rmtree(save, ignore_errors=True)

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    ratio = _med(times["libtorrent"]) / _med(times["torrentpy"])
    benchmark.extra_info.update({"ratio": round(ratio, 3)})
    goal(f"seed {size_mib} MiB to a libtorrent leecher", f"{ratio:.2f}×", "≥ 1.0",
         f"{size_mib * PIECE / _med(times['torrentpy']) / 1e6:.0f} vs "
         f"{size_mib * PIECE / _med(times['libtorrent']) / 1e6:.0f} MB/s (leecher's add to finished)")


def _aria2_leech(torrent: Path, save: Path) -> dict[str, float]:
    # Loopback only, no DHT/LPD/PEX; otherwise aria2's defaults. It exits once the download is verified.
    return _timed(["aria2c", "--no-conf", "--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false",
                   "--enable-peer-exchange=false", "--disable-ipv6=true", "--interface=127.0.0.1",
                   "--bt-external-ip=127.0.0.1", f"--listen-port={free_port()}", "--seed-time=0",
                   "--summary-interval=0", "--console-log-level=warn", f"--dir={save}", str(torrent)])[0]


@pytest.fixture(scope="module")
def aria2_swarms(swarm: dict[str, Any], tracker: OpenTracker) -> Iterator[dict[str, Path]]:
    """One copy of the torrent seeded only by torrentpy, one only by libtorrent, both via the tracker."""
    base = swarm["base"]
    copies = {who: _variant(swarm["torrent"], f"aria2-{who}", tracker) for who in ("torrentpy", "libtorrent")}
    tp = TorrentpyPeer(base / "peers", copies["torrentpy"], base / "seed", True, name="tp-seed-aria2").start()
    lt = LibtorrentPeer(base / "peers", copies["libtorrent"], base / "seed", True, seed_mode=True,
                        name="lt-seed-aria2").start()
    try:
        tp.wait_event("resumed", 120)
        lt.wait_seeding(120)
        yield copies
    finally:
        tp.stop()
        lt.stop()


def test_upload_to_aria2(benchmark: Any, swarm: dict[str, Any], aria2_swarms: dict[str, Path]) -> None:
    base, size_mib = swarm["base"], swarm["size_mib"]
    times: dict[str, list[float]] = {"torrentpy": [], "libtorrent": []}

    def one_round() -> None:
        for seeder, torrent in aria2_swarms.items():
            save = base / f"aria2-{seeder}"
            _fresh_save(save, swarm["size_mib"])
            times[seeder].append(_aria2_leech(torrent, save)["elapsed_s"])
            shutil.rmtree(save, ignore_errors=True)

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    ratio = _med(times["libtorrent"]) / _med(times["torrentpy"])
    benchmark.extra_info.update({"ratio": round(ratio, 3)})
    goal(f"seed {size_mib} MiB to aria2 (found via tracker)", f"{ratio:.2f}×", "≥ 1.0",
         f"{size_mib * PIECE / _med(times['torrentpy']) / 1e6:.0f} vs "
         f"{size_mib * PIECE / _med(times['libtorrent']) / 1e6:.0f} MB/s (aria2 spawn to exit)")


@pytest.fixture(scope="module")
def many_seeders(swarm: dict[str, Any], tracker: OpenTracker) -> Iterator[Path]:
    """A copy of the torrent seeded by MANY_SEEDERS libtorrent sessions, each announcing itself."""
    torrent = _variant(swarm["torrent"], f"many{MANY_SEEDERS}", tracker)
    proc = subprocess.Popen([sys.executable, str(LT_SWARM), str(torrent), str(swarm["base"] / "seed"),
                             str(MANY_SEEDERS)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ports = json.loads(proc.stdout.readline())["ports"]
        assert len(set(ports)) == MANY_SEEDERS, ports
        time.sleep(3)  # every session's first announce has reached the tracker
        yield torrent
    finally:
        proc.terminate()
        proc.wait(30)


def test_download_from_many_seeders(benchmark: Any, swarm: dict[str, Any], many_seeders: Path) -> None:
    base, size_mib = swarm["base"], swarm["size_mib"]
    runs: dict[str, list[dict[str, float]]] = {"many": [], "one": [], "lt-many": [], "lt-one": []}

    def one_round() -> None:
        # libtorrent leeches the same two swarms too: how much of the drop the 50 seeders' own CPU on the
        # same two cores explains.
        for case, torrent in (("many", many_seeders), ("one", swarm["torrent"]),
                              ("lt-many", many_seeders), ("lt-one", swarm["torrent"])):
            save = base / f"dl-{case}"
            _fresh_save(save, swarm["size_mib"])
            leech = _libtorrent_leech if case.startswith("lt-") else _torrentpy_leech
            runs[case].append(leech(torrent, save))
            shutil.rmtree(save, ignore_errors=True)

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    many, one = runs["many"], runs["one"]
    rate = _med([r["elapsed_s"] for r in one]) / _med([r["elapsed_s"] for r in many])
    cpu = _med([r["cpu_s"] for r in many]) / _med([r["cpu_s"] for r in one])
    benchmark.extra_info.update({"rate_ratio": round(rate, 3), "cpu_ratio": round(cpu, 3)})
    lt_rate = _med([r["elapsed_s"] for r in runs["lt-one"]]) / _med([r["elapsed_s"] for r in runs["lt-many"]])
    goal(f"leech {size_mib} MiB from {MANY_SEEDERS} seeders ÷ from 1 (torrentpy rate)", f"{rate:.2f}×", "≥ 0.9",
         f"{size_mib * PIECE / _med([r['elapsed_s'] for r in many]) / 1e6:.0f} vs "
         f"{size_mib * PIECE / _med([r['elapsed_s'] for r in one]) / 1e6:.0f} MB/s; libtorrent's own {lt_rate:.2f}×")
    lt_cpu = _med([r["cpu_s"] for r in runs["lt-many"]]) / _med([r["cpu_s"] for r in runs["lt-one"]])
    goal(f"leech {size_mib} MiB from {MANY_SEEDERS} seeders: CPU ÷ from 1", f"{cpu:.2f}×", "≤ 1.2",
         f"{_med([r['cpu_s'] for r in many]):.2f} vs {_med([r['cpu_s'] for r in one]):.2f} s; "
         f"libtorrent's own {lt_cpu:.2f}×")
