"""Swarm efficiency, torrentpy next to libtorrent in the same run.

One seeder limited to 4 MiB/s and four leechers (separate processes, found through opentracker) on a
64 MiB torrent. Printed for each client: seeder bytes up ÷ payload, and the time until the last leecher
completes against the ideal (payload ÷ seeder rate). The libtorrent seeder gets a per-torrent upload
limit: its session limit exempts local peers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.interop.opentracker import OpenTracker
from tests.interop.peers.base import wait_for
from tests.interop.peers.libtorrent_peer import LibtorrentPeer
from tests.interop.peers.payload import MiB, info_hash_libtorrent, make_payload, make_torrent_libtorrent
from tests.interop.peers.torrentpy_peer import TorrentpyPeer

PAYLOAD_BYTES = 64 * MiB
PIECE = 256 * 1024
SEEDER_RATE_BPS = 4 * MiB
LEECHERS = 4
IDEAL_S = PAYLOAD_BYTES / SEEDER_RATE_BPS


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("swarm")
    tracker = OpenTracker()
    payload = make_payload(base / "payload", PAYLOAD_BYTES, name="swarm.bin")
    torrent = make_torrent_libtorrent(payload.root, PIECE, [tracker.http_url], base / "swarm.torrent")
    tracker.allow(info_hash_libtorrent(torrent))
    yield {"base": base, "tracker": tracker, "payload": payload, "torrent": torrent}
    tracker.close()


def _run_swarm(client: str, setup: dict[str, Any]) -> tuple[float, float]:
    base: Path = setup["base"] / client
    torrent, payload = setup["torrent"], setup["payload"]
    peers: list[Any] = []
    try:
        if client == "torrentpy":
            seeder = TorrentpyPeer(base, torrent, payload.save_dir, True, name="seed",
                                   extra_args=["--max-upload-rate", "4M"]).start()
            seeder.wait_event("resumed", 30)
        else:
            seeder = LibtorrentPeer(base, torrent, payload.save_dir, True, upload_limit_bps=SEEDER_RATE_BPS,
                                    name="seed").start()
            seeder.wait_seeding(30)
        peers.append(seeder)
        started = time.monotonic()
        for i in range(LEECHERS):
            cls = TorrentpyPeer if client == "torrentpy" else LibtorrentPeer
            peers.append(cls(base, torrent, base / f"leech{i}", True, name=f"leech{i}").start())
        done_at: dict[int, float] = {}

        def finished(i: int, peer: Any) -> bool:
            if client == "torrentpy":
                return peer.event("completed") is not None
            return bool(peer.status().get("is_finished"))

        def all_done() -> bool:
            for i, peer in enumerate(peers[1:]):
                if i not in done_at and finished(i, peer):
                    done_at[i] = time.monotonic() - started
            return len(done_at) == LEECHERS

        wait_for(all_done, 180, 0.1, f"{client} leechers")
        elapsed = max(done_at.values())
        time.sleep(1.0)  # let the seeder's counters catch up with the last block
        if client == "torrentpy":
            uploaded = seeder.stats()["uploaded"]
        else:
            uploaded = seeder.status()["total_payload_upload"]
        return uploaded / PAYLOAD_BYTES, elapsed
    finally:
        for peer in reversed(peers):
            peer.stop()


def test_swarm_efficiency(benchmark: Any, setup: dict[str, Any]) -> None:
    results: dict[str, tuple[float, float]] = {}

    def both() -> None:
        for client in ("torrentpy", "libtorrent"):
            results[client] = _run_swarm(client, setup)

    benchmark.pedantic(both, rounds=1, iterations=1)
    for client, (ratio, elapsed) in results.items():
        benchmark.extra_info[f"{client}_upload_ratio"] = round(ratio, 2)
        benchmark.extra_info[f"{client}_time_over_ideal"] = round(elapsed / IDEAL_S, 2)
        print(f"\nswarm, {client}: seeder uploaded {ratio:.2f}x the payload; last leecher after {elapsed:.1f} s "
              f"({elapsed / IDEAL_S:.2f}x the ideal {IDEAL_S:.0f} s)")
