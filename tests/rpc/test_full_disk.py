"""A real full disk under `torrentpy daemon`: its state folder and download folder on one small tmpfs.

The disk fills while one torrent downloads and the daemon's own state writes then fail too. The daemon
says so in plain words (the torrent's errorString, the RPC's result), keeps answering, never leaves a
torn or empty state file, and once there is room again a restart brings every torrent back: the complete
one seeding, the interrupted one finishing from the seeder.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from tests.interop.peers.base import LOOPBACK
from tests.interop.peers.payload import MiB
from tests.rpc.daemon_process import DaemonProcess
from tests.tmpfs import Mount
from torrentpy.engine.statedir import StateDir

pytestmark = [pytest.mark.interop, pytest.mark.timeout(180)]

PIECE = 64 * 1024
DISK = 4 * MiB
SEEDING = 6


def fill(path: Path, leave: int = 0) -> int:
    """Write a file of random bytes until the disk has `leave` bytes free (0: until ENOSPC)."""
    written = 0
    with open(path, "ab") as fh:
        while True:
            free = os.statvfs(path.parent).f_bavail * os.statvfs(path.parent).f_frsize
            room = free - leave
            if room <= 0:
                return written
            try:
                fh.write(os.urandom(min(room, 256 * 1024)))
                fh.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                return written
            written += min(room, 256 * 1024)


def test_a_full_disk_is_reported_rpc_keeps_answering_and_a_restart_brings_every_torrent_back(
        tmpfs: Mount, payload_factory, torrent_factory, libtorrent_peer, tmp_path: Path) -> None:
    disk = tmpfs("disk", DISK)
    state, downloads = disk / "state", disk / "downloads"
    small = payload_factory(1 * MiB, name="small.bin")
    big = payload_factory(2 * MiB, name="big.bin", seed=2)
    t_small, t_big = torrent_factory(small, piece_length=PIECE), torrent_factory(big, piece_length=PIECE)
    third = torrent_factory(payload_factory(256 * 1024, name="third.bin", seed=3))
    s_small, s_big = libtorrent_peer(t_small, small.save_dir, True), libtorrent_peer(t_big, big.save_dir, True)
    s_small.wait_seeding(20)
    s_big.wait_seeding(20)

    daemon = DaemonProcess(tmp_path / "d1", download_dir=downloads, state_dir=state).start()
    try:
        assert daemon.call("torrent-add", {"filename": str(t_small)})["result"] == "success"
        s_small.add_peer(LOOPBACK, daemon.peer_port)
        daemon.wait_torrent(1, lambda r: r["percentDone"] == 1.0, what="complete")

        # Room for a state record, not for the big torrent's data: its download fills the disk.
        fill(disk / "filler", leave=512 * 1024)
        assert daemon.call("torrent-add", {"filename": str(t_big)})["result"] == "success"
        s_big.add_peer(LOOPBACK, daemon.peer_port)
        row = daemon.wait_torrent(2, lambda r: r["error"] != 0, what="stopped by the full disk")
        assert "disk full" in row["errorString"] and str(downloads) in row["errorString"], row
        assert row["status"] == 0 and 0 < row["haveValid"] < big.total_size

        # Not a byte left: the daemon's own writes fail now, and it says so instead of pretending.
        fill(disk / "filler2")
        answer = daemon.call("torrent-add", {"filename": str(third)})
        assert answer["result"] != "success" and "No space left on device" in answer["result"], answer
        answer = daemon.call("torrent-stop", {"ids": [1]})
        assert "No space left on device" in answer["result"], answer
        # ... and keeps answering: every torrent it had is still listed, the first one untouched.
        assert daemon.call("session-get")["result"] == "success"
        rows = {r["id"]: r for r in daemon.torrents("name", "percentDone", "error")}
        assert sorted(rows) == [1, 2] and rows[1]["percentDone"] == 1.0 and rows[1]["error"] == 0, rows
        assert daemon.stop() == 0
        assert "Traceback" not in daemon.log_tail()
    finally:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.stop()

    # Every record on the full disk is whole (the write that failed left the one before it).
    records = StateDir(str(state)).load_all()
    assert sorted(r.name for r in records) == ["big.bin", "small.bin"]
    assert all(os.path.getsize(p) > 0 for p in state.iterdir() if p.name.endswith((".state", ".state.bak")))

    (disk / "filler").unlink()
    (disk / "filler2").unlink()
    again = DaemonProcess(tmp_path / "d2", download_dir=downloads, state_dir=state).start()
    try:
        rows = {r["id"]: r for r in again.torrents("name")}
        assert {i: r["name"] for i, r in rows.items()} == {1: "small.bin", 2: "big.bin"}
        again.wait_torrent(1, lambda r: r["status"] == SEEDING and r["percentDone"] == 1.0, what="seeding")
        s_big.add_peer(LOOPBACK, again.peer_port)
        again.wait_torrent(2, lambda r: r["percentDone"] == 1.0 and r["error"] == 0, what="finished after the restart")
        assert small.differences(downloads) == [] and big.differences(downloads) == []
        assert again.stop() == 0
    finally:
        if again.proc is not None and again.proc.poll() is None:
            again.stop()
