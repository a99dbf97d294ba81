"""`torrentpy add --no-tui` as a script or a service runs it: plain lines on stdout, and whichever way it
stops, the same one-line summary per torrent that the dashboard leaves behind."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.interop.peers.base import LOOPBACK, free_port
from tests.interop.peers.payload import MiB

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]

# The installed console script, run from a folder of its own, as a user runs it.
TORRENTPY = str(Path(sys.executable).with_name("torrentpy"))
SUMMARY = r"{name}: {state}, (\d+\.\d)% of 4\.00 MiB, downloaded [\d.]+ [KMG]?i?B, uploaded [\d.]+ [KMG]?i?B"


@pytest.mark.parametrize(("signum", "expected_rc"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["SIGINT", "SIGTERM"])
def test_a_signal_midway_leaves_the_summary_line(signum: int, expected_rc: int, payload_factory,
                                                 torrent_factory, libtorrent_peer, tmp_path: Path) -> None:
    payload = payload_factory(4 * MiB, name="plain.bin")
    torrent = torrent_factory(payload, piece_length=64 * 1024)
    # ~300 KiB/s: the 4 MiB take ~13 s, so the signal lands midway.
    seeder = libtorrent_peer(torrent, payload.save_dir, True, upload_limit_bps=300 * 1024)
    seeder.wait_seeding(20)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    out_path, err_path = run_dir / "out.txt", run_dir / "err.txt"
    argv = [TORRENTPY, "add", str(torrent), "-o", "dl", "--no-tui", "--interval", "0.5", "--seed-ratio", "0",
            "--listen-port", str(free_port()), "--bind", LOOPBACK,
            "--peer", f"{seeder.address[0]}:{seeder.address[1]}"]
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen(argv, cwd=run_dir, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30  # generous: the first verified piece comes well within a second
        while not re.search(r"^plain\.bin  [1-9][\d.]*%", out_path.read_text(), re.M):
            assert proc.poll() is None and time.monotonic() < deadline, out_path.read_text()
            time.sleep(0.1)
        proc.send_signal(signum)
        rc = proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out, err = out_path.read_text(), err_path.read_text()
    assert rc == expected_rc, (out, err)
    last = out.rstrip("\n").splitlines()[-1]
    m = re.fullmatch(SUMMARY.format(name=r"plain\.bin", state="downloading"), last)
    assert m is not None, out
    assert 0 < float(m.group(1)) < 100, last
    assert "Traceback" not in err, err


def test_a_finished_download_leaves_the_summary_line(payload_factory, torrent_factory, libtorrent_peer,
                                                     tmp_path: Path) -> None:
    payload = payload_factory(4 * MiB, name="plain.bin")
    torrent = torrent_factory(payload, piece_length=64 * 1024)
    seeder = libtorrent_peer(torrent, payload.save_dir, True)
    seeder.wait_seeding(20)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    done = subprocess.run(
        [TORRENTPY, "add", str(torrent), "-o", "dl", "--no-tui", "--seed-ratio", "0",
         "--listen-port", str(free_port()), "--bind", LOOPBACK, "--peer", f"{seeder.address[0]}:{seeder.address[1]}"],
        cwd=run_dir, capture_output=True, text=True, timeout=40, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, (done.stdout, done.stderr)
    last = done.stdout.rstrip("\n").splitlines()[-1]
    m = re.fullmatch(SUMMARY.format(name=r"plain\.bin", state=r"(?:seeding|finished)"), last)
    assert m is not None and m.group(1) == "100.0", done.stdout
    assert payload.differences(run_dir / "dl") == []


def test_an_error_leaves_the_summary_line(payload_factory, torrent_factory, libtorrent_peer,
                                         tmp_path: Path) -> None:
    # A directory stands where the downloaded file must go: the first write fails, the torrent stops
    # with an error, and so does the run.
    payload = payload_factory(4 * MiB, name="plain.bin")
    torrent = torrent_factory(payload, piece_length=64 * 1024)
    seeder = libtorrent_peer(torrent, payload.save_dir, True)
    seeder.wait_seeding(20)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "dl").mkdir()
    (run_dir / "dl" / "plain.bin").mkdir()
    done = subprocess.run(
        [TORRENTPY, "add", str(torrent), "-o", "dl", "--no-tui", "--listen-port", str(free_port()),
         "--bind", LOOPBACK, "--peer", f"{seeder.address[0]}:{seeder.address[1]}"],
        cwd=run_dir, capture_output=True, text=True, timeout=40, stdin=subprocess.DEVNULL)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    last = done.stdout.rstrip("\n").splitlines()[-1]
    assert re.fullmatch(SUMMARY.format(name=r"plain\.bin", state="error"), last), done.stdout
