"""--max-upload-rate and --max-download-rate hold on loopback, measured by the libtorrent peer at the
other end.

Each test measures over a fixed window after a short warm-up (TCP slow start, the first requests) and stops
as soon as the window is over; the payload is large enough that the transfer cannot finish inside it even
at twice the limit, and without a limit it would finish in about a second on loopback. Only an upper bound
is asserted: a loaded machine can make the transfer slower than the limit, never faster.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.interop.peers.payload import MiB
from tests.interop.peers.torrentpy_peer import torrentpy_factory

pytestmark = [pytest.mark.interop, pytest.mark.timeout(90)]

PIECE = 256 * 1024
RATE_BPS = 2 * MiB
# The sanity bound: a limiter that works never lets twice the limit through over 10 s (a token bucket's
# burst is under a second's worth); a broken or bypassed one runs at loopback speed, hundreds of MiB/s.
MAX_OVER_LIMIT = 2.0
WARMUP_S = 3.0
WINDOW_S = 10.0


def _measure(peer: Any, key: str, window_s: float) -> float:
    """Bytes/s of `key` over `window_s`, from the peer's own status samples (their own timestamps)."""
    peer.wait_status(lambda s: s[key] > 0, 20, f"{key} to start")
    time.sleep(WARMUP_S)
    first = peer.status()
    time.sleep(window_s)
    last = peer.status()
    return (last[key] - first[key]) / (last["time"] - first["time"])


def _check(rate_bps: float, what: str) -> None:
    print(f"{what}: {rate_bps / MiB:.3f} MiB/s (limit {RATE_BPS / MiB:.1f} MiB/s)")
    assert rate_bps <= MAX_OVER_LIMIT * RATE_BPS, (
        f"{what} {rate_bps / MiB:.3f} MiB/s is over {MAX_OVER_LIMIT} x the {RATE_BPS / MiB:.1f} MiB/s limit")


def test_upload_limit_holds_towards_a_loopback_leecher(payload_factory, torrent_factory, libtorrent_peer,
                                                       peer_registry, tmp_path: Path) -> None:
    window_s = WINDOW_S
    payload = payload_factory(64 * MiB, name="big.bin")  # 2 × 2 MiB/s × (3 + 10) s = 52 MiB: never finishes
    torrent = torrent_factory(payload, piece_length=PIECE)
    seeder = torrentpy_factory(peer_registry)(torrent, payload.save_dir, True,
                                              extra_args=["--max-upload-rate", "2M"])
    seeder.wait_event("resumed", 30)
    leecher = libtorrent_peer(torrent, tmp_path / "lt", seed=False, peers=[seeder.address])
    rate = _measure(leecher, "total_payload_download", window_s)
    _check(rate, "libtorrent download from a torrentpy seeder at --max-upload-rate 2M")
    assert leecher.status()["total_wanted_done"] < payload.total_size


def test_download_limit_holds_from_a_loopback_seeder(payload_factory, torrent_factory, libtorrent_peer,
                                                     peer_registry, tmp_path: Path) -> None:
    window_s = WINDOW_S
    payload = payload_factory(64 * MiB, name="big.bin")  # 2 × 2 MiB/s × (3 + 10) s = 52 MiB
    torrent = torrent_factory(payload, piece_length=PIECE)
    seeder = libtorrent_peer(torrent, payload.save_dir, seed=True, seed_mode=True)
    seeder.wait_seeding(20)
    leecher = torrentpy_factory(peer_registry)(torrent, tmp_path / "tp", False, peers=[seeder.address],
                                               extra_args=["--max-download-rate", "2M"])
    rate = _measure(seeder, "total_payload_upload", window_s)
    _check(rate, "libtorrent upload to a torrentpy leecher at --max-download-rate 2M")
    stats = leecher.stats()
    assert stats is not None and stats["downloaded"] < payload.total_size
