"""`torrentpy dashboard --rpc URL` in a pseudo-terminal, attached to a running daemon over the RPC:
torrentpy's own daemon (keys pause/resume, remove and file toggling, each checked in torrent-get) and a real
Debian transmission-daemon (its torrent listed as seeding). `q` leaves the dashboard; the daemon runs on.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import pytest

from tests.interop.peers.payload import MiB
from tests.interop.test_dashboard_pty import assert_terminal_restored
from tests.rpc.daemon_process import DaemonProcess

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

TORRENTPY = str(Path(sys.executable).with_name("torrentpy"))
STOPPED, DOWNLOADING, SEEDING = 0, 4, 6


def status_of(daemon: DaemonProcess, torrent_id: int) -> int | None:
    rows = daemon.torrents("status", ids=[torrent_id])
    return rows[0]["status"] if rows else None


def wait_until(check, timeout_s: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"never: {what}")
        time.sleep(0.2)


def row_of(text: str, name: str) -> str:
    return next((line for line in text.splitlines() if name in line), "")


def test_dashboard_drives_the_daemon(daemon_factory, payload_factory, torrent_factory, pty_terminal) -> None:
    seeded = payload_factory(1 * MiB, name="alpha.bin")
    waiting = payload_factory(2 * MiB, name="omega.bin", seed=2)
    daemon = daemon_factory()
    daemon.download_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(seeded.root, daemon.download_dir / "alpha.bin")
    for payload in (seeded, waiting):
        answer = daemon.call("torrent-add", {"filename": str(torrent_factory(payload))})
        assert answer["result"] == "success", answer
    wait_until(lambda: status_of(daemon, 1) == SEEDING, what="alpha seeding")

    term = pty_terminal([TORRENTPY, "dashboard", "--rpc", daemon.url], 120, 30)
    text = term.wait_for(lambda t: "alpha.bin" in t and "omega.bin" in t and "remove" in t, 15, "both torrents")
    assert "seeding" in row_of(text, "alpha.bin") and "downloading" in row_of(text, "omega.bin"), text
    assert " x " in text and "remove" in text, text  # the footer offers the key

    term.child.send("p")  # the first row is selected: alpha is stopped over the RPC
    wait_until(lambda: status_of(daemon, 1) == STOPPED, what="alpha stopped")
    term.wait_for(lambda t: "paused" in row_of(t, "alpha.bin"), 10, "alpha paused")
    term.child.send("p")
    wait_until(lambda: status_of(daemon, 1) == SEEDING, what="alpha seeding again")
    term.wait_for(lambda t: "seeding" in row_of(t, "alpha.bin"), 10, "alpha seeding on screen")

    term.child.send("\x1b[B")  # down to omega (the detail panel names the selected torrent) ...
    term.wait_for(lambda t: "omega.bin ─╯" in t, 10, "omega selected")
    term.child.send("x")  # ... and remove it (its data stays)
    wait_until(lambda: status_of(daemon, 2) is None, what=f"omega removed: {term.text()}\n{daemon.log_tail()}")
    term.wait_for(lambda t: "torrents 1" in t and not any("omega.bin" in line and "MiB" in line
                                                          for line in t.splitlines()), 10, "omega gone from the list")
    assert (daemon.download_dir / "alpha.bin").exists()

    term.child.send("q")
    code, stty = term.wait_exit(15)
    assert code == 0
    assert_terminal_restored(term, stty)
    assert status_of(daemon, 1) == SEEDING  # the daemon runs on


def test_dashboard_attaches_to_a_real_transmission_daemon(payload_factory, torrent_factory, transmission_peer,
                                                          pty_terminal, tmp_path: Path) -> None:
    payload = payload_factory(3 * MiB, name="trans.bin")
    peer = transmission_peer(torrent_factory(payload), payload.save_dir, True)
    peer.wait_seeding(30)
    url = f"http://127.0.0.1:{peer.rpc_port}/transmission/rpc"
    term = pty_terminal([TORRENTPY, "dashboard", "--rpc", url], 120, 30)
    text = term.wait_for(lambda t: "seeding" in row_of(t, "trans.bin"), 15, "Transmission's torrent seeding")
    assert "100" in row_of(text, "trans.bin"), text
    term.child.send("q")
    code, stty = term.wait_exit(15)
    assert code == 0
    assert_terminal_restored(term, stty)
    assert peer.status()["status"] == SEEDING


def test_a_daemon_that_does_not_answer_is_one_line(tmp_path: Path, pty_terminal) -> None:
    from tests.interop.peers.base import free_port

    term = pty_terminal([TORRENTPY, "dashboard", "--rpc", f"http://127.0.0.1:{free_port()}/transmission/rpc"],
                        100, 20)
    code, _ = term.wait_exit(15)
    assert code == 1
    assert "torrentpy: error: http://127.0.0.1:" in term.raw.decode(errors="replace")
    assert "Traceback" not in term.raw.decode(errors="replace")


def test_dashboard_toggles_files(daemon_factory, payload_factory, torrent_factory, pty_terminal) -> None:
    """In the files panel `]`/`[` move a cursor over the files and `w` flips the one under it between
    wanted and skipped: torrent-set files-unwanted/-wanted, seen in torrent-get's `wanted`."""
    payload = payload_factory({"a.bin": 200_000, "b.bin": 300_000, "c.bin": 100_000}, name="multi")
    daemon = daemon_factory()
    answer = daemon.call("torrent-add", {"filename": str(torrent_factory(payload))})
    assert answer["result"] == "success", answer
    names = [Path(f["name"]).name for f in daemon.torrents("files")[0]["files"]]

    def wanted() -> dict[str, int]:
        return dict(zip(names, daemon.torrents("wanted")[0]["wanted"], strict=True))

    assert set(wanted().values()) == {1}
    term = pty_terminal([TORRENTPY, "dashboard", "--rpc", daemon.url], 120, 30)
    term.wait_for(lambda t: "multi" in t and "remove" in t, 15, "the torrent")
    term.child.send("\t\t\t")  # pieces → peers → trackers → files
    text = term.wait_for(lambda t: "get/skip" in t and names[1] in t, 10, "the files panel and its keys")
    assert "norm" in row_of(text, names[1]), text

    term.child.send("]w")  # the second file: skipped
    wait_until(lambda: wanted() == {names[0]: 1, names[1]: 0, names[2]: 1}, what=f"b skipped: {term.text()}")
    term.wait_for(lambda t: "skip" in row_of(t, names[1]), 10, "b shown skipped")
    term.child.send("[w")  # the first file too
    wait_until(lambda: wanted() == {names[0]: 0, names[1]: 0, names[2]: 1}, what=f"a skipped: {term.text()}")
    term.child.send("]w")  # the second file wanted again
    wait_until(lambda: wanted() == {names[0]: 0, names[1]: 1, names[2]: 1}, what=f"b wanted: {term.text()}")
    term.wait_for(lambda t: "norm" in row_of(t, names[1]) and "skip" in row_of(t, names[0]), 10, "both shown")

    term.child.send("q")
    code, stty = term.wait_exit(15)
    assert code == 0
    assert_terminal_restored(term, stty)
