"""`torrentpy demo`: generated payload, built-in tracker, seeder processes, a verified download — and
everything it started or wrote is gone afterwards, however it ended (done, `q`, Ctrl-C, SIGTERM)."""

from __future__ import annotations

import filecmp
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.interop.test_dashboard_pty import ALT_SCREEN, assert_terminal_restored, pty_terminal  # noqa: F401
from torrentpy import selfexec

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]

ROOT = Path(__file__).resolve().parents[2]
PIDS = re.compile(r"ready \(pids ([\d, ]+)\)")


def _env(tmp_path: Path) -> dict[str, str]:
    # The demo makes its folder with tempfile; pointing TMPDIR here lets the test see what is left.
    env = dict(os.environ, TMPDIR=str(tmp_path), PYTHONPATH=str(ROOT))
    env.pop("COLUMNS", None)
    return env


def _demo_argv(*args: str) -> list[str]:
    return selfexec.command("demo", *args)


def _pids(output: str) -> list[int]:
    m = PIDS.search(output)
    assert m is not None, output
    return [int(p) for p in m.group(1).split(",")]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by a dead parent's init) is not running.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _assert_cleaned_up(tmp_path: Path, output: str) -> None:
    for pid in _pids(output):
        deadline = time.monotonic() + 5
        while _alive(pid):
            assert time.monotonic() < deadline, f"seeder {pid} still running"
            time.sleep(0.05)
    assert not list(tmp_path.glob("torrentpy-demo-*")), list(tmp_path.iterdir())


def test_demo_downloads_verifies_and_cleans_up_without_a_terminal(tmp_path: Path) -> None:
    done = subprocess.run(_demo_argv("--size", "32M", "--no-tui"), capture_output=True, text=True,
                          timeout=50, env=_env(tmp_path), stdin=subprocess.DEVNULL)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "verified: all 1024 pieces match" in out, out
    assert re.search(r"downloaded 32\.0 MiB in [\d.]+ s, average [\d.]+ [KMG]iB/s", out), out
    # Every byte is credited to one of the three seeders, each shown with its share.
    rows = re.findall(r"seeder (\d) │ 127\.0\.0\.1:\d+ │ torrentpy [\d.]+ │ +([\d.]+ [KM]iB|\d+ B) │ +(\d+)%", out)
    assert {r[0] for r in rows} <= {"1", "2", "3"} and rows, out
    assert 98 <= sum(int(r[2]) for r in rows) <= 102, out
    assert "torrentpy-demo  " in out  # plain progress lines stand in for the dashboard
    _assert_cleaned_up(tmp_path, out)


def test_demo_keep_leaves_payload_download_and_logs(tmp_path: Path) -> None:
    done = subprocess.run(_demo_argv("--size", "4M", "--peers", "2", "--keep", "--no-tui"), capture_output=True,
                          text=True, timeout=50, env=_env(tmp_path), stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    [work] = tmp_path.glob("torrentpy-demo-*")
    assert f"kept {work}" in done.stdout
    seed, got = work / "seed" / "torrentpy-demo", work / "download" / "torrentpy-demo"
    files = sorted(p.relative_to(seed) for p in seed.rglob("*") if p.is_file())
    assert len(files) == 3 and sum((seed / f).stat().st_size for f in files) == 4 * 1024 * 1024
    match, mismatch, errors = filecmp.cmpfiles(seed, got, [str(f) for f in files], shallow=False)
    assert (mismatch, errors) == ([], []) and len(match) == 3
    assert (work / "torrentpy-demo.torrent").is_file()
    assert {p.name for p in work.glob("seeder*.log")} == {"seeder1.log", "seeder2.log"}
    for pid in _pids(done.stdout):  # kept files, but no processes
        assert not _alive(pid)


def test_demo_under_a_pty_shows_the_dashboard_then_the_summary(pty_terminal, tmp_path: Path) -> None:  # noqa: F811
    # A download limit keeps the dashboard up for a few seconds.
    term = pty_terminal(_demo_argv("--size", "32M", "--rate", "8M"), 120, 40, _env(tmp_path))
    term.wait_for(lambda s: "torrentpy-demo" in s and "1024 pieces  have" in s, 30, "the dashboard")
    assert ALT_SCREEN in term.screen.mode
    rc, stty = term.wait_exit(40)
    assert rc == 0, term.raw[-3000:]
    assert_terminal_restored(term, stty)
    out = term.raw.decode(errors="replace")
    after = out[out.rindex("\x1b[?1049l"):]
    assert "verified: all 1024 pieces match" in after and "seeder" in after, after
    _assert_cleaned_up(tmp_path, out)


def test_demo_q_stops_everything_midway(pty_terminal, tmp_path: Path) -> None:  # noqa: F811
    term = pty_terminal(_demo_argv("--size", "32M", "--rate", "2M"), 80, 24, _env(tmp_path))
    term.wait_for(lambda s: (term.percent("torrentpy-demo") or 0) > 0, 30, "the download under way")
    term.child.send("q")
    rc, stty = term.wait_exit(30)
    assert rc == 0, term.raw[-3000:]
    assert_terminal_restored(term, stty)
    out = term.raw.decode(errors="replace")
    assert re.search(r"stopped \(q\) at \d+\.\d%", out), out[-2000:]
    assert "verified" not in out
    _assert_cleaned_up(tmp_path, out)


def test_demo_q_while_preparing_stops_at_once(pty_terminal, tmp_path: Path) -> None:  # noqa: F811
    # 256 MiB takes a second or more to write and hash, so `q` lands before the dashboard is up.
    term = pty_terminal(_demo_argv("--size", "256M"), 100, 30, _env(tmp_path))
    term.wait_for(lambda s: "torrentpy demo:" in s, 20, "the banner")
    term.child.send("q")
    # A timeout, not a speed claim: "stopped" without "downloaded" below is what shows it did not finish.
    rc, stty = term.wait_exit(20)
    assert rc == 0, term.raw[-2000:]
    out = term.raw.decode(errors="replace")
    assert "stopped" in out and "downloaded" not in out, out[-2000:]
    assert_terminal_restored_after_prepare(stty)
    assert not list(tmp_path.glob("torrentpy-demo-*"))


def assert_terminal_restored_after_prepare(stty: str) -> None:
    flags = set(re.split(r"[\s;]+", stty))
    assert {"echo", "icanon"} <= flags and not {"-echo", "-icanon"} & flags, stty


@pytest.mark.parametrize(("signum", "expected_rc", "word"),
                         [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "interrupted")],
                         ids=["SIGINT", "SIGTERM"])
def test_demo_signal_stops_seeders_and_removes_its_folder(tmp_path: Path, signum: int, expected_rc: int,
                                                          word: str) -> None:
    log = tmp_path / "demo.out"
    with open(log, "w") as out_file:
        demo = subprocess.Popen(_demo_argv("--size", "32M", "--rate", "2M", "--no-tui"), stdout=out_file,
                                stderr=subprocess.STDOUT, env=_env(tmp_path), stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not re.search(r"torrentpy-demo  [1-9][\d.]*%", log.read_text()):
            assert demo.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        demo.send_signal(signum)
        rc = demo.wait(20)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    out = log.read_text()
    assert rc == expected_rc, out
    assert word in out and "Traceback" not in out, out
    log.unlink()
    _assert_cleaned_up(tmp_path, out)


def test_demo_killed_outright_takes_its_seeders_along(tmp_path: Path) -> None:
    log = tmp_path / "demo.out"
    with open(log, "w") as out_file:
        demo = subprocess.Popen(_demo_argv("--size", "8M", "--rate", "1M", "--no-tui"), stdout=out_file,
                                stderr=subprocess.STDOUT, env=_env(tmp_path), stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not PIDS.search(log.read_text()):
            assert demo.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    finally:
        demo.kill()  # SIGKILL: no cleanup code runs; the kernel's parent-death signal stops the seeders
        demo.wait()
    pids = _pids(log.read_text())
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids):
        assert time.monotonic() < deadline, [pid for pid in pids if _alive(pid)]
        time.sleep(0.05)


@pytest.mark.parametrize("args", [["--peers", "0"], ["--size", "12 parsecs"], ["--size", "1K"]])
def test_demo_rejects_bad_options_in_one_line(args: list[str], tmp_path: Path) -> None:
    done = subprocess.run(_demo_argv(*args), capture_output=True, text=True, timeout=20, env=_env(tmp_path),
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("torrentpy: error:") and done.stderr.count("\n") == 1, done.stderr
    assert not list(tmp_path.iterdir())


def test_demo_dht_finds_the_seeders_with_no_tracker(tmp_path: Path) -> None:
    done = subprocess.run(_demo_argv("--size", "8M", "--peers", "3", "--dht", "--keep", "--no-tui"),
                          capture_output=True, text=True, timeout=55, env=_env(tmp_path), stdin=subprocess.DEVNULL)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert re.search(r"no tracker: a DHT bootstrap node on 127\.0\.0\.1:\d+", out) and "tracker: http" not in out, out
    assert "verified: all" in out, out
    rows = re.findall(r"seeder (\d) │ 127\.0\.0\.1:\d+ │", out)
    assert rows and set(rows) <= {"1", "2", "3"}, out
    [work] = tmp_path.glob("torrentpy-demo-*")
    from torrentpy.metainfo import parse_torrent

    meta = parse_torrent((work / "torrentpy-demo.torrent").read_bytes())
    assert not meta.trackers, meta.trackers  # nothing but the DHT to meet on
    # The seeders kept their DHT state in the demo's folder, not the user's.
    assert {p.name for p in work.glob("dht-seeder*.dat")} == {"dht-seeder1.dat", "dht-seeder2.dat", "dht-seeder3.dat"}
    for pid in _pids(out):
        assert not _alive(pid)
