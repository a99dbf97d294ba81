"""Disks that fail under `torrentpy add`, run as people run it (the installed script, from a folder).

A real tmpfs fills up, or is read-only; libfiu (`fiu-run -x`) makes the data writes fail in a real
process. Each time: one clear line, exit 1, the verified pieces recorded, and a second run after the
problem is gone finishes without fetching those pieces again (torrentpy's counters and the seeder's
own upload counter agree).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.interop.peers.base import LOOPBACK, wait_for
from tests.interop.peers.libtorrent_peer import LibtorrentPeer
from tests.interop.peers.payload import info_hash_libtorrent
from tests.tmpfs import Mount, remount
from torrentpy.metainfo import Metainfo, load
from torrentpy.storage.resume import reserve_path, resume_path, resume_state

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

TORRENTPY = Path(sys.executable).with_name("torrentpy")
MiB = 1024 * 1024
PIECE = 64 * 1024
SIZE = 4 * MiB  # 64 pieces
SMALL_DISK = 1 * MiB  # room for about a quarter of them
BIG_DISK = 8 * MiB
# A whole run moves 4 MiB over loopback; a minute is far beyond any correct run, even on a loaded box.
RUN_TIMEOUT_S = 60.0


class CliRun:
    """One `torrentpy add … --json` process: JSON lines to a file, stderr to another."""

    def __init__(self, argv: Sequence[str], cwd: Path, work: Path) -> None:
        work.mkdir(parents=True, exist_ok=True)
        self.stdout_path = work / "stdout.jsonl"
        self.stderr_path = work / "stderr.txt"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.popen = subprocess.Popen([str(a) for a in argv], cwd=cwd, stdin=subprocess.DEVNULL,
                                          stdout=out, stderr=err, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def records(self) -> list[dict[str, Any]]:
        lines = self.stdout_path.read_text().splitlines()
        if lines and not self.stdout_path.read_bytes().endswith(b"\n"):
            lines.pop()  # a line still being written
        return [json.loads(line) for line in lines if line.strip()]

    def event(self, name: str) -> dict[str, Any] | None:
        found = [r for r in self.records() if r.get("type") == "event" and r.get("event") == name]
        return found[-1] if found else None

    def stats(self) -> dict[str, Any] | None:
        found = [r for r in self.records() if r.get("type") == "stats"]
        return found[-1] if found else None

    def stderr_lines(self) -> list[str]:
        return self.stderr_path.read_text().splitlines()

    def wait(self, timeout_s: float = RUN_TIMEOUT_S) -> int:
        try:
            return self.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"torrentpy still running after {timeout_s}s; stderr:\n"
                                 + self.stderr_path.read_text()) from None

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()  # by the PID we started
            self.popen.wait(timeout=10)


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Callable[..., CliRun]]:
    """``cli(torrent, cwd, *extra, prefix=())``: `torrentpy add TORRENT --json …` run from `cwd`, which
    is also where the files go (the default `-o .`). Only what the test needs is added: loopback,
    the seeder's address, and exit when done."""
    runs: list[CliRun] = []

    def start(torrent: Path, cwd: Path, *extra: str, prefix: Sequence[str] = ()) -> CliRun:
        argv = [*prefix, TORRENTPY, "add", torrent, "--json", "--interval", "0.2", "--bind", LOOPBACK,
                "--seed-ratio", "0", *extra]
        run = CliRun(argv, cwd, tmp_path / f"run{len(runs) + 1}")
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.stop()


def seeder_upload_when_idle(seeder: LibtorrentPeer, after: float) -> int:
    """The seeder's payload upload counter, read from a status written after `after` with no peer left."""
    status = seeder.wait_status(lambda s: s["time"] > after + 0.6 and s["num_peers"] == 0, 20, "idle status")
    return int(status["total_payload_upload"])


def saved_pieces(meta: Metainfo, folder: Path) -> int:
    state = resume_state(meta, folder)
    assert state is not None, f"no usable resume file at {resume_path(meta, folder)}"
    return state.saved_have.count()


def restart_finishes_without_refetching(
    cli: Callable[..., CliRun], seeder: LibtorrentPeer, torrent: Path, disk: Path, payload: Any,
    saved: int, failed_at: float,
) -> None:
    """A plain second run completes; it fetches exactly the pieces the first one had not verified."""
    meta = load(str(torrent))
    assert isinstance(meta, Metainfo)
    uploaded_before = seeder_upload_when_idle(seeder, failed_at)
    second = cli(torrent, disk, "--peer", f"{LOOPBACK}:{seeder.port}")
    assert second.wait() == 0, second.stderr_path.read_text()
    assert payload.differences(disk) == []
    assert not os.path.exists(reserve_path(meta, disk)), "a complete download keeps no reserve"
    resumed, completed = second.event("resumed"), second.event("completed")
    assert resumed is not None and completed is not None
    # Pieces written after the last save are found again by hashing: at least the saved ones survive.
    assert resumed["pieces"] >= saved, (resumed, saved)
    assert completed["downloaded_pieces"] == meta.num_pieces - resumed["pieces"]
    refetched = seeder_upload_when_idle(seeder, time.time()) - uploaded_before
    # The seeder's own count: no more than the pieces the second run was missing (every piece is whole).
    assert 0 < refetched <= (meta.num_pieces - resumed["pieces"]) * PIECE, (refetched, resumed)


@pytest.fixture
def seeded(payload_factory, torrent_factory, libtorrent_peer) -> tuple[Any, Path, LibtorrentPeer]:
    payload = payload_factory(SIZE, name="big.bin")
    torrent = torrent_factory(payload, piece_length=PIECE)
    seeder = libtorrent_peer(torrent, payload.save_dir, True)
    seeder.wait_seeding(20)
    return payload, torrent, seeder


def test_disk_full_one_line_with_sizes_then_resume_after_making_room(
    seeded: tuple[Any, Path, LibtorrentPeer], cli: Callable[..., CliRun], tmpfs: Mount,
) -> None:
    payload, torrent, seeder = seeded
    meta = load(str(torrent))
    assert isinstance(meta, Metainfo)
    disk = tmpfs("disk", SMALL_DISK)

    first = cli(torrent, disk, "--peer", f"{LOOPBACK}:{seeder.port}")
    assert first.wait() == 1, first.stderr_path.read_text()
    failed_at = time.time()
    lines = first.stderr_lines()
    assert "Traceback" not in "\n".join(lines)
    # The small disk was seen at start: a warning, not a refusal.
    assert lines[0].startswith(f"torrentpy: warning: {disk} has "), lines
    assert "the download needs 4.00 MiB more" in lines[0], lines
    assert len(lines) == 2, lines
    error = lines[1]
    assert error.startswith(f"torrentpy: error: big.bin: disk full writing to {disk}: "
                            "the torrent needs 4.00 MiB, "), error
    assert "verified pieces are kept" in error
    event = first.event("error")
    assert event is not None and event["message"] in error

    # The resume file was written on the full disk and vouches for pieces that really are there.
    saved = saved_pieces(meta, disk)
    last = first.stats()
    assert last is not None
    assert saved == last["torrents"][0]["pieces_have"], (saved, last)
    assert 0 < saved < meta.num_pieces

    remount(disk, size_bytes=BIG_DISK)
    restart_finishes_without_refetching(cli, seeder, torrent, disk, payload, saved, failed_at)


def test_disk_full_under_the_dashboard_leaves_one_error_line(
    seeded: tuple[Any, Path, LibtorrentPeer], tmpfs: Mount,
) -> None:
    """The default on a terminal: the dashboard, which leaves the screen before the one error line."""
    import pexpect

    _, torrent, seeder = seeded
    disk = tmpfs("disk", SMALL_DISK)
    child = pexpect.spawn(str(TORRENTPY), ["add", str(torrent), "--bind", LOOPBACK, "--peer",
                                           f"{LOOPBACK}:{seeder.port}", "--seed-ratio", "0"],
                          cwd=str(disk), dimensions=(40, 120), env={**os.environ, "TERM": "xterm"})
    out = b""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            try:
                out += child.read_nonblocking(65536, timeout=1)
            except pexpect.TIMEOUT:
                continue
        raise AssertionError(f"still running after {RUN_TIMEOUT_S}s")
    except pexpect.EOF:
        pass
    finally:
        child.close(force=True)  # the PID it started
    assert child.exitstatus == 1, out[-2000:]
    assert b"\x1b[?1049h" in out, "no dashboard was shown"
    after = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.split(b"\x1b[?1049l")[-1].decode()).splitlines()
    errors = [line for line in after if "error" in line.lower() and not line.startswith("big.bin: error, ")]
    assert len(errors) == 1 and errors[0].startswith(
        f"torrentpy: error: big.bin: disk full writing to {disk}: the torrent needs 4.00 MiB, "), after


def test_read_only_folder_refused_before_any_connection_or_announce(
    payload_factory, torrent_factory, libtorrent_peer, cli: Callable[..., CliRun], tmpfs: Mount,
) -> None:
    # A tracker that only counts connections: nothing may reach it.
    with socket.socket() as tracker:
        tracker.bind((LOOPBACK, 0))
        tracker.listen()
        tracker.setblocking(False)
        url = f"http://{LOOPBACK}:{tracker.getsockname()[1]}/announce"
        payload = payload_factory(SIZE // 4, name="ro.bin")
        torrent = torrent_factory(payload, piece_length=PIECE, trackers=[url])
        # The seeder gets the same info without the tracker, so any connection to it is ours.
        untracked = torrent_factory(payload, piece_length=PIECE)
        assert info_hash_libtorrent(untracked) == info_hash_libtorrent(torrent)
        seeder = libtorrent_peer(untracked, payload.save_dir, True)
        seeder.wait_seeding(20)
        disk = tmpfs("ro", SMALL_DISK, read_only=True)

        started = time.time()
        run = cli(torrent, disk, "--peer", f"{LOOPBACK}:{seeder.port}")
        assert run.wait() == 1
        assert run.stderr_lines() == [f"torrentpy: error: cannot write to {disk}: read-only file system"]
        # Also one level down: the folder it would have to create.
        run = cli(torrent, disk.parent, "-o", "ro/new")
        assert run.wait() == 1
        assert run.stderr_lines() == [f"torrentpy: error: cannot create {disk}/new: read-only file system"]
        with pytest.raises(BlockingIOError):
            tracker.accept()
    assert run.records() == [], "it started before refusing"
    status = seeder.wait_status(lambda s: s["time"] > started + 1.0, 20, "a status written since")
    assert status["peers_seen"] == [], status["peers_seen"]
    assert os.listdir(disk) == []


FIU_RUN = "/usr/bin/fiu-run"
FIU_CTRL = "/usr/bin/fiu-ctrl"


@pytest.mark.parametrize(
    ("errno_name", "expect"),
    [("EIO", r"cannot write big\.bin: Input/output error$"),
     # The disk is not really full: no room to ask for, only the advice.
     ("ENOSPC", r"disk full writing to /\S+/dl: the torrent needs 4\.00 MiB, \S+ \S+ free \(\S+ MiB of it already "
                r"written; run again when there is room: verified pieces are kept\)$")],
)
def test_write_error_injected_mid_download(
    errno_name: str, expect: str, payload_factory, torrent_factory, libtorrent_peer,
    cli: Callable[..., CliRun], tmp_path: Path,
) -> None:
    """libfiu fails every data write (pwrite, which torrentpy's storage uses for pieces and nothing
    else: the resume file goes through write(), sockets through write/writev) once a quarter of the
    payload is verified."""
    import errno

    assert os.access(FIU_RUN, os.X_OK), "fiu-run is missing: apt-get install fiu-utils (Makefile DEBS)"
    payload = payload_factory(SIZE, name="big.bin")
    torrent = torrent_factory(payload, piece_length=PIECE)
    # Slow enough that the failure lands mid-download, not after it.
    seeder = libtorrent_peer(torrent, payload.save_dir, True, upload_limit_bps=MiB)
    seeder.wait_seeding(20)
    meta = load(str(torrent))
    assert isinstance(meta, Metainfo)
    folder = tmp_path / "dl"
    folder.mkdir()
    fifo = tmp_path / "fiu"
    run = cli(torrent, folder, "--peer", f"{LOOPBACK}:{seeder.port}", prefix=[FIU_RUN, "-x", "-f", fifo])
    wait_for(lambda: (s := run.stats()) and s["torrents"][0]["pieces_have"] >= meta.num_pieces // 4,
             RUN_TIMEOUT_S, 0.05, "a quarter of the pieces")
    code = getattr(errno, errno_name)
    subprocess.run([FIU_CTRL, "-f", str(fifo), "-c", f"enable name=posix/io/rw/pwrite,failinfo={code}",
                    str(run.pid)], check=True, timeout=10)
    assert run.wait() == 1, run.stderr_path.read_text()
    failed_at = time.time()
    lines = run.stderr_lines()
    assert len(lines) == 1 and lines[0].startswith("torrentpy: error: big.bin: "), lines
    assert re.search(expect, lines[0]), lines[0]
    saved = saved_pieces(meta, folder)
    assert meta.num_pieces // 4 <= saved < meta.num_pieces, saved
    restart_finishes_without_refetching(cli, seeder, torrent, folder, payload, saved, failed_at)
