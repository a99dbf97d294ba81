"""Every way `torrentpy add` ends, as people run it: the installed console script, default options, from a
temporary folder, output to pipes (so the plain progress lines, not the dashboard).

README: 0 done, 1 error (one line on stderr, never a traceback), 2 bad usage, 130/143 interrupted.
`q` in the dashboard (0) is tests/interop/test_dashboard_pty.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.peers.base import LOOPBACK, free_port
from tests.interop.peers.payload import MiB

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]

TORRENTPY = Path(sys.executable).with_name("torrentpy")


def _argv(*args: str) -> list[str]:
    return [str(TORRENTPY), *args]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(_argv(*args), cwd=cwd, capture_output=True, text=True, timeout=40, env=env)


def _one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("torrentpy: "), proc.stderr
    return lines[0]


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    folder = tmp_path / "cwd"
    folder.mkdir()
    return folder


def test_console_script_is_installed() -> None:
    assert TORRENTPY.is_file() and os.access(TORRENTPY, os.X_OK), TORRENTPY


def test_add_completes_with_0(payload_factory, torrent_factory, libtorrent_peer, cwd: Path) -> None:
    payload = payload_factory(2 * MiB, name="done.bin")
    torrent = torrent_factory(payload, piece_length=64 * 1024)
    seeder = libtorrent_peer(torrent, payload.save_dir, True)
    seeder.wait_seeding(20)
    proc = _run(["add", str(torrent), "--seed-ratio", "0", "--bind", LOOPBACK,
                 "--listen-port", str(free_port()), "--peer", f"{LOOPBACK}:{seeder.port}"], cwd)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    # No -o: the download lands in the folder it was started from.
    assert payload.differences(cwd) == []


@pytest.mark.parametrize("content", [None, b"garbage\n", b"d4:infod4:name1:xee"],
                         ids=["missing", "not-bencode", "no-pieces"])
def test_add_of_a_bad_torrent_is_one_line_and_1(content: bytes | None, cwd: Path) -> None:
    if content is not None:
        (cwd / "bad.torrent").write_bytes(content)
    proc = _run(["add", "bad.torrent", "--bind", LOOPBACK, "--listen-port", str(free_port())], cwd)
    assert proc.returncode == 1, proc.stderr
    assert "bad.torrent" in _one_line_error(proc)
    assert sorted(p.name for p in cwd.iterdir()) == (["bad.torrent"] if content else [])


@pytest.mark.parametrize("args", [["add"], ["add", "x.torrent", "--max-peers", "lots"],
                                  ["add", "x.torrent", "--no-such-option"]],
                         ids=["no-source", "bad-int", "unknown-option"])
def test_add_with_bad_usage_is_2(args: list[str], cwd: Path) -> None:
    proc = _run(args, cwd)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "torrentpy" in proc.stderr and "error" in proc.stderr, proc.stderr
    assert list(cwd.iterdir()) == []


@pytest.fixture
def running_download(payload_factory, torrent_factory, libtorrent_peer, cwd: Path) -> Iterator[tuple]:
    # 8 MiB at 256 KiB/s: 32 s, so the signal always arrives mid-download.
    payload = payload_factory(8 * MiB, name="slow.bin")
    torrent = torrent_factory(payload, piece_length=64 * 1024)
    seeder = libtorrent_peer(torrent, payload.save_dir, True, upload_limit_bps=256 * 1024)
    seeder.wait_seeding(20)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.Popen(_argv("add", str(torrent), "--seed-ratio", "0", "--bind", LOOPBACK,
                                  "--listen-port", str(free_port()), "--peer", f"{LOOPBACK}:{seeder.port}"),
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        yield proc, payload, seeder
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(("signum", "expected"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["SIGINT", "SIGTERM"])
def test_add_interrupted_mid_download(signum: int, expected: int, running_download, cwd: Path) -> None:
    proc, payload, seeder = running_download
    # Mid-download: the seeder has sent something, and the file is far from complete.
    seeder.wait_status(lambda s: s["total_payload_upload"] > 256 * 1024, 30, "upload to torrentpy")
    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    proc.send_signal(signum)
    try:
        _, err = proc.communicate(timeout=20)  # a timeout for a hung exit, not a speed claim
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == expected, err
    assert "Traceback" not in err, err
    assert payload.differences(cwd), "the download was meant to be interrupted before the end"
    # What was verified is kept for the next run: the resume state is written on the way out.
    assert list((cwd / ".torrentpy").glob("*.resume")), sorted(str(p) for p in cwd.rglob("*"))
