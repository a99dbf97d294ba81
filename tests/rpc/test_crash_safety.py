"""kill -9 of the daemon while it writes its state, many times over: every torrent comes back."""

from __future__ import annotations

import base64
import random
import signal
import threading
import time

import pytest

from tests.rpc.daemon_process import DaemonProcess

pytestmark = [pytest.mark.interop, pytest.mark.timeout(240)]


def test_kill_9_during_state_writes_loses_no_torrent(daemon_factory, payload_factory, torrent_factory) -> None:
    torrents = [torrent_factory(payload_factory(64 * 1024 * (i + 1), name=f"t{i}.bin", seed=i)) for i in range(3)]
    daemon: DaemonProcess = daemon_factory()
    hashes = set()
    for path in torrents:
        answer = daemon.call("torrent-add", {"metainfo": base64.b64encode(path.read_bytes()).decode(),
                                             "paused": True})
        hashes.add(answer["arguments"]["torrent-added"]["hashString"])
    rng = random.Random(7)
    for round_ in range(8):
        stop = threading.Event()

        def churn(d: DaemonProcess = daemon, stop: threading.Event = stop, round_: int = round_) -> None:
            # Every stop/start/set rewrites a state file; the kill lands somewhere among them.
            while not stop.is_set():
                try:
                    d.call(rng.choice(["torrent-stop", "torrent-start"]), {"ids": [1, 2, 3]})
                    d.call("torrent-set", {"ids": [1, 2, 3], "labels": [f"round{round_}"]})
                except (OSError, AssertionError, ValueError):
                    return  # the daemon is gone

        worker = threading.Thread(target=churn)
        worker.start()
        time.sleep(rng.uniform(0.2, 0.8))
        daemon.stop(signal.SIGKILL)
        stop.set()
        worker.join(30)
        daemon = daemon_factory()
        rows = daemon.torrents("name", "labels")
        assert {r["hashString"] for r in rows} == hashes, (round_, rows)
        assert sorted(r["id"] for r in rows) == [1, 2, 3]
