"""`torrentpy daemon` out of memory under a real address-space limit: one torrent stops, the daemon does not.

As in tests/interop/test_memory_limit.py, the limit is set on the running daemon (prlimit(2)) a few MiB above
its measured size, before the big torrent has a peer: its first block needs a 16 MiB buffer that cannot be
had. That torrent stops with "out of memory" as its errorString; the RPC keeps answering under the limit, the
other torrent keeps seeding to a new leecher, SIGTERM still stops the daemon cleanly, and a restart without
the limit finishes the download.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.interop.peers.base import LOOPBACK
from tests.interop.peers.payload import MiB
from tests.interop.test_memory_limit import PIECE, limit_memory, one_malloc_arena  # noqa: F401 (a fixture)
from tests.rpc.daemon_process import DaemonProcess

pytestmark = [pytest.mark.interop, pytest.mark.timeout(150)]

SEEDING, DOWNLOADING = 6, 4


@pytest.mark.usefixtures("one_malloc_arena")
def test_out_of_memory_stops_one_torrent_and_the_daemon_runs_on(
        payload_factory, torrent_factory, libtorrent_peer, tmp_path: Path) -> None:
    small = payload_factory(1 * MiB, name="small.bin")
    big = payload_factory(6 * PIECE, name="big.bin", seed=2)
    t_small, t_big = torrent_factory(small, piece_length=64 * 1024), torrent_factory(big, piece_length=PIECE)
    s_small = libtorrent_peer(t_small, small.save_dir, True, seed_mode=True)
    s_big = libtorrent_peer(t_big, big.save_dir, True, seed_mode=True)
    downloads, state = tmp_path / "downloads", tmp_path / "state"

    daemon = DaemonProcess(tmp_path / "d1", download_dir=downloads, state_dir=state).start()
    try:
        assert daemon.call("torrent-add", {"filename": str(t_small)})["result"] == "success"
        s_small.add_peer(LOOPBACK, daemon.peer_port)
        daemon.wait_torrent(1, lambda r: r["status"] == SEEDING and r["percentDone"] == 1.0, what="seeding")
        assert daemon.call("torrent-add", {"filename": str(t_big)})["result"] == "success"
        daemon.wait_torrent(2, lambda r: r["status"] == DOWNLOADING, what="downloading (no peer yet)")

        assert daemon.proc is not None
        limit_memory(daemon.proc.pid)
        s_big.add_peer(LOOPBACK, daemon.peer_port)
        row = daemon.wait_torrent(2, lambda r: r["error"] != 0, what="stopped for want of memory")
        assert row["errorString"].startswith("out of memory (no memory for a 16.0 MiB piece buffer)"), row

        # Under the same limit: the RPC answers, and the other torrent serves a leecher that comes now.
        rows = {r["id"]: r for r in daemon.torrents("status", "percentDone", "error")}
        assert rows[1]["status"] == SEEDING and rows[1]["error"] == 0, rows
        leecher = libtorrent_peer(t_small, tmp_path / "leecher", False, peers=[(LOOPBACK, daemon.peer_port)])
        leecher.wait_finished(30)
        assert small.differences(tmp_path / "leecher") == []

        daemon.proc.send_signal(signal.SIGTERM)
        assert daemon.proc.wait(20) == 0
        assert daemon.proc.stderr is not None
        stderr, log = daemon.proc.stderr.read().decode(), daemon.log_tail()
        assert "Traceback" not in log + stderr, log + stderr
    finally:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.stop()

    again = DaemonProcess(tmp_path / "d2", download_dir=downloads, state_dir=state).start()
    try:
        s_big.add_peer(LOOPBACK, again.peer_port)
        again.wait_torrent(2, lambda r: r["percentDone"] == 1.0 and r["error"] == 0, what="finished after a restart")
        assert big.differences(downloads) == [] and small.differences(downloads) == []
        assert again.stop() == 0
    finally:
        if again.proc is not None and again.proc.poll() is None:
            again.stop()
