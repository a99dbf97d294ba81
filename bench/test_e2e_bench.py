"""End-to-end loopback transfers, torrentpy against libtorrent in the same run.

- download: a libtorrent seeder serves a generated torrent (1 GiB, 1 MiB pieces by default) to a
  torrentpy leecher and to a libtorrent leecher, in alternation; MB/s of each, the ratio, and
  torrentpy's CPU seconds and peak RSS.
- upload: a libtorrent leecher downloads the same torrent from a torrentpy seeder and from a libtorrent
  seeder, in alternation.

TORRENTPY_BENCH_MIB sets the payload size (default 1024)."""

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

import pytest

from tests.interop.peers.base import free_port
from tests.interop.peers.libtorrent_peer import LibtorrentPeer
from tests.interop.peers.torrentpy_peer import TorrentpyPeer

SIZE_MIB = int(os.environ.get("TORRENTPY_BENCH_MIB", "1024"))
PIECE = 1024 * 1024
ROUNDS = 3
LT_LEECH = Path(__file__).with_name("lt_leech.py")


@pytest.fixture(scope="module")
def swarm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("e2e")
    data = base / "seed" / "bench"
    data.mkdir(parents=True)
    with open(data / "payload.bin", "wb") as fh:
        chunk = os.urandom(PIECE)
        for i in range(SIZE_MIB):
            # Distinct pieces without paying for 1 GiB of urandom.
            fh.write(i.to_bytes(8, "little") + chunk[8:])
    torrent = base / "bench.torrent"
    subprocess.run([sys.executable, "-m", "torrentpy", "create", str(data), "--piece-size", str(PIECE),
                    "-o", str(torrent)], check=True, stdout=subprocess.DEVNULL)
    lt_seed = LibtorrentPeer(base / "peers", torrent, base / "seed", True, seed_mode=True, name="lt-seed").start()
    tp_seed = TorrentpyPeer(base / "peers", torrent, base / "seed", True, name="tp-seed").start()
    tp_seed.wait_event("resumed", 120)
    lt_seed.wait_seeding(120)
    results: dict[str, list[float]] = {}
    yield {"base": base, "torrent": torrent, "lt_seed": lt_seed, "tp_seed": tp_seed, "results": results}
    lt_seed.stop()
    tp_seed.stop()


def _torrentpy_leech(torrent: Path, save: Path, seed_port: int) -> dict[str, float]:
    argv = [sys.executable, "-m", "torrentpy", "add", str(torrent), "-o", str(save), "--seed-ratio", "0",
            "--no-tui", "--bind", "127.0.0.1", "--listen-port", str(free_port()),
            "--peer", f"127.0.0.1:{seed_port}", "--interval", "60"]
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, f"torrentpy exited {proc.returncode}"
    return {"elapsed_s": elapsed, "cpu_s": usage.ru_utime + usage.ru_stime, "rss_mib": usage.ru_maxrss / 1024}


def _libtorrent_leech(torrent: Path, save: Path, seed_port: int) -> dict[str, float]:
    start = time.monotonic()
    out = subprocess.run([sys.executable, str(LT_LEECH), str(torrent), str(save), f"127.0.0.1:{seed_port}"],
                         capture_output=True, text=True, timeout=900)
    record = json.loads(out.stdout.strip().splitlines()[-1])
    assert "elapsed_s" in record, record
    # Same yardstick as torrentpy's: process start to finish, so start-up costs count on both sides.
    return {"elapsed_s": time.monotonic() - start, "transfer_s": record["elapsed_s"]}


def _mbps(seconds: list[float]) -> float:
    return SIZE_MIB * PIECE / statistics.median(seconds) / 1e6


def test_download_from_libtorrent_seeder(benchmark: Any, swarm: dict[str, Any]) -> None:
    base, torrent, seed_port = swarm["base"], swarm["torrent"], swarm["lt_seed"].port
    tp_times: list[float] = []
    lt_times: list[float] = []
    cpu: list[float] = []
    rss: list[float] = []

    def one_round() -> None:
        for leech in ("torrentpy", "libtorrent"):
            save = base / f"dl-{leech}"
            shutil.rmtree(save, ignore_errors=True)
            if leech == "torrentpy":
                r = _torrentpy_leech(torrent, save, seed_port)
                tp_times.append(r["elapsed_s"])
                cpu.append(r["cpu_s"])
                rss.append(r["rss_mib"])
            else:
                lt_times.append(_libtorrent_leech(torrent, save, seed_port)["elapsed_s"])
            shutil.rmtree(save, ignore_errors=True)

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    ratio = _mbps(tp_times) / _mbps(lt_times)
    benchmark.extra_info.update({
        "torrentpy_MBps": round(_mbps(tp_times), 1), "libtorrent_MBps": round(_mbps(lt_times), 1),
        "ratio": round(ratio, 3), "torrentpy_cpu_s": round(statistics.median(cpu), 2),
        "torrentpy_peak_rss_MiB": round(max(rss), 1),
    })
    print(f"\ndownload {SIZE_MIB} MiB from a libtorrent seeder: torrentpy {_mbps(tp_times):.0f} MB/s, "
          f"libtorrent {_mbps(lt_times):.0f} MB/s, ratio torrentpy/libtorrent {ratio:.2f}; torrentpy CPU "
          f"{statistics.median(cpu):.2f} s, peak RSS {max(rss):.0f} MiB")


def test_upload_to_libtorrent_leecher(benchmark: Any, swarm: dict[str, Any]) -> None:
    base, torrent = swarm["base"], swarm["torrent"]
    times: dict[str, list[float]] = {"torrentpy": [], "libtorrent": []}

    def one_round() -> None:
        for seeder in ("torrentpy", "libtorrent"):
            port = swarm["tp_seed"].port if seeder == "torrentpy" else swarm["lt_seed"].port
            save = base / f"ul-{seeder}"
            shutil.rmtree(save, ignore_errors=True)
            times[seeder].append(_libtorrent_leech(torrent, save, port)["transfer_s"])
            shutil.rmtree(save, ignore_errors=True)

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    ratio = _mbps(times["torrentpy"]) / _mbps(times["libtorrent"])
    benchmark.extra_info.update({"from_torrentpy_MBps": round(_mbps(times["torrentpy"]), 1),
                                 "from_libtorrent_MBps": round(_mbps(times["libtorrent"]), 1),
                                 "ratio": round(ratio, 3)})
    print(f"\nlibtorrent leecher, {SIZE_MIB} MiB: from torrentpy {_mbps(times['torrentpy']):.0f} MB/s, from "
          f"libtorrent {_mbps(times['libtorrent']):.0f} MB/s, ratio torrentpy/libtorrent {ratio:.2f}")
