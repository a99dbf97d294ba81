"""Queueing through Transmission's RPC: at most N torrents downloading and N seeding, the rest waiting
(status 3 "download wait", 5 "seed wait") and started in queue order as slots free; queuePosition and
the queue-move-* methods; settings and order kept over a restart.

The downloads have no peers (no tracker, nobody dials): they stay "downloading" for as long as the test
needs. The seeds have their data in the download folder already.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from tests.rpc.daemon_process import DaemonProcess

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

STOPPED, DOWNLOAD_WAIT, DOWNLOADING, SEED_WAIT, SEEDING = 0, 3, 4, 5, 6


def statuses(daemon: DaemonProcess, want: dict[int, int], timeout_s: float = 20.0) -> dict[int, dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    rows: dict[int, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        rows = {r["id"]: r for r in daemon.torrents("status", "queuePosition", "peersConnected")}
        if {i: r["status"] for i, r in rows.items()} == want:
            return rows
        time.sleep(0.2)
    raise AssertionError(f"statuses {({i: r['status'] for i, r in rows.items()})}, wanted {want}\n"
                         f"{daemon.log_tail()}")


def ok(answer: dict[str, Any]) -> dict[str, Any]:
    assert answer["result"] == "success", answer
    return answer["arguments"]


def test_queue_limits_active_downloads_and_seeds(daemon_factory, payload_factory, torrent_factory,
                                                 tmp_path: Path) -> None:
    downloads = [torrent_factory(payload_factory(128 * 1024, name=f"d{i}.bin", seed=i)) for i in range(4)]
    seeds = []
    daemon = daemon_factory()
    daemon.download_dir.mkdir(parents=True, exist_ok=True)
    for i in range(2):
        payload = payload_factory(128 * 1024, name=f"s{i}.bin", seed=10 + i)
        shutil.copy(payload.root, daemon.download_dir / f"s{i}.bin")
        seeds.append(torrent_factory(payload))

    defaults = ok(daemon.call("session-get"))
    assert (defaults["download-queue-enabled"], defaults["seed-queue-enabled"]) == (False, False)
    ok(daemon.call("session-set", {"download-queue-enabled": True, "download-queue-size": 2,
                                   "seed-queue-enabled": True, "seed-queue-size": 1}))
    got = ok(daemon.call("session-get", {"fields": ["download-queue-enabled", "download-queue-size",
                                                    "seed-queue-enabled", "seed-queue-size"]}))
    assert got == {"download-queue-enabled": True, "download-queue-size": 2, "seed-queue-enabled": True,
                   "seed-queue-size": 1}
    assert daemon.call("session-set", {"download-queue-size": "many"})["result"] != "success"

    for path in [*downloads, *seeds]:
        ok(daemon.call("torrent-add", {"filename": str(path)}))
    rows = statuses(daemon, {1: DOWNLOADING, 2: DOWNLOADING, 3: DOWNLOAD_WAIT, 4: DOWNLOAD_WAIT,
                             5: SEEDING, 6: SEED_WAIT})
    assert [rows[i]["queuePosition"] for i in range(1, 7)] == [0, 1, 2, 3, 4, 5]

    # A slot frees: the next in queue order starts, the one after it still waits.
    ok(daemon.call("torrent-stop", {"ids": [1]}))
    statuses(daemon, {1: STOPPED, 2: DOWNLOADING, 3: DOWNLOADING, 4: DOWNLOAD_WAIT, 5: SEEDING, 6: SEED_WAIT})
    ok(daemon.call("torrent-stop", {"ids": [5]}))
    statuses(daemon, {1: STOPPED, 2: DOWNLOADING, 3: DOWNLOADING, 4: DOWNLOAD_WAIT, 5: STOPPED, 6: SEEDING})

    # Moved to the top, 4 takes a slot; the last of the running ones in queue order waits.
    ok(daemon.call("queue-move-top", {"ids": [4]}))
    rows = statuses(daemon, {1: STOPPED, 2: DOWNLOADING, 3: DOWNLOAD_WAIT, 4: DOWNLOADING, 5: STOPPED,
                             6: SEEDING})
    assert [rows[i]["queuePosition"] for i in (4, 1, 2, 3, 5, 6)] == [0, 1, 2, 3, 4, 5]
    ok(daemon.call("queue-move-down", {"ids": [4]}))
    ok(daemon.call("queue-move-bottom", {"ids": [1]}))
    rows = statuses(daemon, {1: STOPPED, 2: DOWNLOADING, 3: DOWNLOAD_WAIT, 4: DOWNLOADING, 5: STOPPED,
                             6: SEEDING})
    order = [i for i, _ in sorted(rows.items(), key=lambda kv: kv[1]["queuePosition"])]
    assert order == [4, 2, 3, 5, 6, 1]

    # torrent-start-now skips the queue and takes no slot.
    ok(daemon.call("torrent-start-now", {"ids": [3]}))
    statuses(daemon, {1: STOPPED, 2: DOWNLOADING, 3: DOWNLOADING, 4: DOWNLOADING, 5: STOPPED, 6: SEEDING})
    # Starting 1 again puts it back in the queue: no slot is free.
    ok(daemon.call("torrent-start", {"ids": [1]}))
    statuses(daemon, {1: DOWNLOAD_WAIT, 2: DOWNLOADING, 3: DOWNLOADING, 4: DOWNLOADING, 5: STOPPED, 6: SEEDING})

    # The queue is off: everything the user started runs.
    ok(daemon.call("session-set", {"download-queue-enabled": False}))
    statuses(daemon, {1: DOWNLOADING, 2: DOWNLOADING, 3: DOWNLOADING, 4: DOWNLOADING, 5: STOPPED, 6: SEEDING})
    ok(daemon.call("session-set", {"download-queue-enabled": True, "download-queue-size": 1}))
    statuses(daemon, {1: DOWNLOAD_WAIT, 2: DOWNLOAD_WAIT, 3: DOWNLOADING, 4: DOWNLOADING, 5: STOPPED,
                      6: SEEDING})
    assert daemon.stop() == 0

    # A restart keeps the settings, the order and who waits (torrent-start-now is not a lasting state).
    again = daemon_factory()
    got = ok(again.call("session-get", {"fields": ["download-queue-enabled", "download-queue-size",
                                                   "seed-queue-enabled", "seed-queue-size"]}))
    assert got == {"download-queue-enabled": True, "download-queue-size": 1, "seed-queue-enabled": True,
                   "seed-queue-size": 1}
    rows = statuses(again, {1: DOWNLOAD_WAIT, 2: DOWNLOAD_WAIT, 3: DOWNLOAD_WAIT, 4: DOWNLOADING, 5: STOPPED,
                            6: SEEDING})
    order = [i for i, _ in sorted(rows.items(), key=lambda kv: kv[1]["queuePosition"])]
    assert order == [4, 2, 3, 5, 6, 1]
    ok(again.call("torrent-remove", {"ids": [4]}))
    rows = statuses(again, {1: DOWNLOAD_WAIT, 2: DOWNLOADING, 3: DOWNLOAD_WAIT, 5: STOPPED, 6: SEEDING})
    assert [rows[i]["queuePosition"] for i in (2, 3, 5, 6, 1)] == [0, 1, 2, 3, 4]
