"""The real dashboard of `torrentpy add`, in a pseudo-terminal, downloading from a real libtorrent seeder.

The screen is read back through a terminal emulator (pyte). The command runs under `sh -c` so that,
after torrentpy exits, `stty -a` reports the terminal settings it left behind in the same pty.
`q` is a user quitting, not an error: torrentpy exits 0 (as libtorrent-based clients do), even though
the download is not complete; what was verified so far stays on disk for the next run.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pexpect
import pyte
import pytest

from tests.interop.peers.base import LOOPBACK, free_port
from tests.interop.peers.payload import MiB

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]

ROOT = Path(__file__).resolve().parents[2]
ALT_SCREEN = 1049 << 5  # pyte keeps private (DEC) modes shifted left by 5
# Printed by the wrapping shell once torrentpy has exited, then `stty -a`.
EXIT_MARK = re.compile(r"TORRENTPY_EXIT=(\d+)")
PERCENT = re.compile(r"(\d{1,3}\.\d)%")


class PtyTerminal:
    """A command in a pty of a given size, its output fed to a pyte screen."""

    def __init__(self, argv: Sequence[str], cols: int, rows: int, env: dict[str, str] | None = None,
                 cwd: Path = ROOT) -> None:
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        full_env = {**os.environ, **(env or {}), "TERM": "xterm-256color", "PYTHONPATH": str(ROOT)}
        full_env.pop("COLUMNS", None)
        full_env.pop("LINES", None)
        script = '"$@"; rc=$?; echo; echo "TORRENTPY_EXIT=$rc"; stty -a'
        self.child = pexpect.spawn("/bin/sh", ["-c", script, "sh", *argv], cwd=str(cwd), env=full_env,
                                   dimensions=(rows, cols), timeout=10)
        self.raw = b""

    def pump(self, timeout_s: float = 0.05) -> bool:
        """Read what is there; False once the child closed the pty."""
        try:
            data = self.child.read_nonblocking(65536, timeout=timeout_s)
        except pexpect.TIMEOUT:
            return True
        except pexpect.EOF:
            return False
        self.raw += data
        self.stream.feed(data)
        return True

    def text(self) -> str:
        return "\n".join(self.screen.display)

    def wait_for(self, predicate: Callable[[str], bool], timeout_s: float, what: str) -> str:
        deadline = time.monotonic() + timeout_s
        while True:
            text = self.text()
            if predicate(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"screen never showed {what}; it shows:\n{text}")
            if not self.pump() and not predicate(self.text()):
                raise AssertionError(f"program ended before showing {what}; screen:\n{self.text()}")

    def percent(self, name: str) -> float | None:
        for line in self.screen.display:
            if name in line:
                m = PERCENT.search(line)
                if m:
                    return float(m.group(1))
        return None

    def wait_exit(self, timeout_s: float) -> tuple[int, str]:
        """(torrentpy's exit status, the `stty -a` output after it)."""
        deadline = time.monotonic() + timeout_s
        while self.pump():
            if time.monotonic() > deadline:
                raise AssertionError(f"torrentpy did not exit in {timeout_s} s; screen:\n{self.text()}")
        self.child.close()
        tail = self.raw.decode(errors="replace")
        m = EXIT_MARK.search(tail)
        assert m is not None, tail[-2000:]
        return int(m.group(1)), tail[m.end():]

    def close(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)


def _stty_flags(stty: str) -> set[str]:
    return set(re.split(r"[\s;]+", stty))


def assert_terminal_restored(term: PtyTerminal, stty: str) -> None:
    assert ALT_SCREEN not in term.screen.mode, "still on the alternate screen"
    assert not term.screen.cursor.hidden, "cursor left hidden"
    assert b"\x1b[?1049l" in term.raw
    flags = _stty_flags(stty)
    assert {"echo", "icanon", "isig"} <= flags, stty
    assert not {"-echo", "-icanon"} & flags, stty


@pytest.fixture
def pty_terminal() -> Iterator[Callable[..., PtyTerminal]]:
    made: list[PtyTerminal] = []

    def make(argv: Sequence[str], cols: int, rows: int, env: dict[str, str] | None = None,
             cwd: Path = ROOT) -> PtyTerminal:
        term = PtyTerminal(argv, cols, rows, env, cwd)
        made.append(term)
        return term

    yield make
    for term in made:
        term.close()


def _add_argv(torrent: Path, out: Path, seeder_address: tuple[str, int]) -> list[str]:
    # The installed console script, as people run it (started from the test's temp folder).
    return [str(Path(sys.executable).with_name("torrentpy")), "add", str(torrent), "-o", str(out), "--seed-ratio", "0",
            "--listen-port", str(free_port()), "--bind", LOOPBACK,
            "--peer", f"{seeder_address[0]}:{seeder_address[1]}"]


@pytest.mark.parametrize(("cols", "rows"), [(120, 40), (80, 24)], ids=["120x40", "80x24"])
def test_dashboard_follows_a_download_and_q_quits(cols: int, rows: int, payload_factory, torrent_factory,
                                                  libtorrent_peer, pty_terminal, tmp_path: Path) -> None:
    payload = payload_factory(12 * MiB, name="dash.bin")
    torrent = torrent_factory(payload, piece_length=256 * 1024)
    # 150 KiB/s makes the 12 MiB download last ~80 s, longer than this test's timeout: however slowly a
    # loaded machine draws frames, `q` always lands before the download could finish.
    seeder = libtorrent_peer(torrent, payload.save_dir, True, upload_limit_bps=150 * 1024)
    seeder.wait_seeding(20)
    term = pty_terminal(_add_argv(torrent, tmp_path / "dl", seeder.address), cols, rows, cwd=tmp_path)

    # Wait for a whole frame: pyte may hold one drawn only up to the piece summary.
    term.wait_for(lambda s: "dash.bin" in s and "48 pieces" in s and "█ have" in s, 20,
                  "the torrent and its piece map")
    assert ALT_SCREEN in term.screen.mode and term.screen.cursor.hidden
    assert term.screen.display[rows - 1].lstrip().startswith("q")  # the key help on the last row
    # The piece map: a legend and at least one row of cells, have (█) or missing (·) or downloading (▒).
    assert "█ have" in term.text()
    assert any(re.fullmatch(r"│ [█▓▒░·]+ *│", line.rstrip()) for line in term.screen.display), term.text()

    term.wait_for(lambda s: (term.percent("dash.bin") or 0) > 0, 20, "progress above 0%")
    first = term.percent("dash.bin")
    assert first is not None and first < 100
    term.wait_for(lambda s: (term.percent("dash.bin") or 0) >= first + 5, 20, f"progress rising past {first}%")

    term.child.send("\t")  # pieces → peers
    term.wait_for(lambda s: "Address" in s and "libtorrent" in s, 10, "the peers table with libtorrent")
    peer_row = next(line for line in term.screen.display if "libtorrent" in line)
    assert f"{LOOPBACK}:{seeder.address[1]}" in peer_row, peer_row

    before_quit = term.percent("dash.bin")
    assert before_quit is not None and before_quit < 100, "finished too soon to test quitting midway"
    term.child.send("q")
    rc, stty = term.wait_exit(20)
    assert rc == 0, term.raw[-2000:]
    assert_terminal_restored(term, stty)
    assert payload.differences(tmp_path / "dl"), "the download was meant to be stopped before the end"


def test_dashboard_exits_by_itself_when_the_download_completes(payload_factory, torrent_factory,
                                                               libtorrent_peer, pty_terminal,
                                                               tmp_path: Path) -> None:
    payload = payload_factory(2 * MiB, name="done.bin")
    torrent = torrent_factory(payload, piece_length=64 * 1024)
    seeder = libtorrent_peer(torrent, payload.save_dir, True, upload_limit_bps=1024 * 1024)
    seeder.wait_seeding(20)
    term = pty_terminal(_add_argv(torrent, tmp_path / "dl", seeder.address), 120, 40, cwd=tmp_path)
    term.wait_for(lambda s: "done.bin" in s, 20, "the torrent")
    rc, stty = term.wait_exit(40)  # --seed-ratio 0: nothing to seed, so it leaves once complete
    assert rc == 0, term.raw[-2000:]
    assert_terminal_restored(term, stty)
    assert payload.differences(tmp_path / "dl") == []


def test_p_pauses_and_resumes_the_selected_torrent(payload_factory, torrent_factory, libtorrent_peer,
                                                   pty_terminal, tmp_path: Path) -> None:
    payload = payload_factory(3 * MiB, name="pause.bin")
    torrent = torrent_factory(payload, piece_length=64 * 1024)
    # ~300 KiB/s: 10 s for 3 MiB, so `p` lands well before the end even when the machine is loaded.
    seeder = libtorrent_peer(torrent, payload.save_dir, True, upload_limit_bps=300 * 1024)
    seeder.wait_seeding(20)
    term = pty_terminal(_add_argv(torrent, tmp_path / "dl", seeder.address), 120, 40, cwd=tmp_path)
    term.wait_for(lambda s: (term.percent("pause.bin") or 0) > 0, 20, "progress above 0%")
    term.child.send("p")
    term.wait_for(lambda s: "paused" in s, 10, "the paused state")
    held = term.percent("pause.bin")
    time.sleep(2.0)
    term.pump()
    assert term.percent("pause.bin") == held, "progress moved while paused"
    assert held is not None and held < 100
    term.child.send("p")
    # Resuming reconnects (torrentpy redials at once; libtorrent may also dial back) and completes.
    rc, stty = term.wait_exit(40)  # ~10 s of download; the rest is slack for a loaded machine
    assert rc == 0, term.raw[-2000:]
    assert_terminal_restored(term, stty)
    assert payload.differences(tmp_path / "dl") == []


# The installed console script, as a user runs it (not `python -m` from the checkout).
TORRENTPY = str(Path(sys.executable).with_name("torrentpy"))
LONG_NAME = "ubuntu-24.04.1-desktop-amd64.iso"  # 32 characters; the old table gave a name 8 at 100 columns


def test_at_100_columns_the_whole_name_and_the_peer_counts_are_readable(payload_factory, torrent_factory,
                                                                        libtorrent_peer, pty_terminal,
                                                                        tmp_path: Path) -> None:
    payload = payload_factory(3 * MiB, name=LONG_NAME)
    torrent = torrent_factory(payload, piece_length=64 * 1024)  # 48 pieces: far fewer than map cells
    # ~300 KiB/s keeps the download going for ~10 s, long enough to read every panel.
    seeder = libtorrent_peer(torrent, payload.save_dir, True, upload_limit_bps=300 * 1024)
    seeder.wait_seeding(20)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    argv = [TORRENTPY, "add", str(torrent), "-o", "dl", "--seed-ratio", "0", "--listen-port", str(free_port()),
            "--bind", LOOPBACK, "--peer", f"{seeder.address[0]}:{seeder.address[1]}"]
    term = pty_terminal(argv, 100, 30, cwd=run_dir)

    def row(screen: str) -> str | None:
        return next((line for line in screen.splitlines() if line.startswith(LONG_NAME[:8]) and "%" in line),
                    None)

    term.wait_for(lambda s: row(s) is not None and "█ have" in s and " 1/? " in (row(s) or ""), 20,
                  "the torrent row with one connected peer")
    name_row = row(term.text())
    assert name_row is not None and name_row.startswith(LONG_NAME + " "), term.text()
    assert term.screen.display[29].rstrip().endswith("peers: connected/swarm"), term.text()

    # The piece map fills its panel: between the summary and the legend, no row is blank.
    lines = term.screen.display
    top = next(i for i, line in enumerate(lines) if line.startswith("╭"))
    bottom = next(i for i, line in enumerate(lines) if line.startswith("╰"))
    inside = [line[1:-1].strip() for line in lines[top + 1 : bottom]]
    assert inside[0].startswith("48 pieces") and inside[-1].startswith("█ have"), term.text()
    assert all(re.fullmatch(r"[█▓▒░·]+", cells) for cells in inside[1:-1]), term.text()
    # One peer, and it has every piece: nothing may be flagged as rare or unavailable.
    assert "░" not in "".join(inside[1:-1]) and "unavailable 0" in inside[0], term.text()

    term.child.send("\t")  # pieces → peers: the counts behind "1/?" spelled out
    term.wait_for(lambda s: "1 connected (1 seed) · swarm size unknown" in s, 10, "the swarm line")
    term.child.send("q")
    rc, stty = term.wait_exit(20)
    assert rc == 0, term.raw[-2000:]
    assert_terminal_restored(term, stty)
    # Back on the normal screen, the summary line names the torrent whole, as the dashboard did.
    assert re.search(rf"{re.escape(LONG_NAME)}: downloading, \d+\.\d% of 3\.00 MiB",
                     term.raw.decode(errors="replace")), term.raw[-2000:]
    assert (run_dir / "dl").is_dir()  # a relative -o lands in the folder it was run from
