"""The real dashboard in a real pseudo-terminal, read back through a terminal emulator (pyte)."""

import os
import re
import sys
import termios
import time
from pathlib import Path

import pexpect
import pyte
import pytest

ROOT = Path(__file__).resolve().parents[2]
ALT_SCREEN = 1049 << 5  # pyte stores private (DEC) modes shifted left by 5


class Terminal:
    def __init__(self, cols: int, rows: int) -> None:
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        env = dict(os.environ, TERM="xterm-256color", PYTHONPATH=str(ROOT))
        env.pop("COLUMNS", None)
        env.pop("LINES", None)
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "tests.tui.fake_dashboard"],
            cwd=str(ROOT),
            env=env,
            dimensions=(rows, cols),
            timeout=10,
        )
        self.raw = b""

    def pump(self, timeout_s: float = 0.05) -> None:
        try:
            data = self.child.read_nonblocking(65536, timeout=timeout_s)
        except pexpect.TIMEOUT:
            return
        except pexpect.EOF:
            return
        self.raw += data
        self.stream.feed(data)

    def text(self) -> str:
        return "\n".join(self.screen.display)

    def wait_for(self, predicate, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate(self.text()):
            if time.monotonic() > deadline:
                raise AssertionError(f"screen never matched; it shows:\n{self.text()}")
            self.pump()

    def percent(self) -> float:
        m = re.search(r"fake-linux-distro\.iso.*?(\d+\.\d)%", self.text())
        assert m is not None, self.text()
        return float(m.group(1))

    def lflags(self) -> int:
        # On Linux the master side reports the terminal settings shared with the child's side.
        return termios.tcgetattr(self.child.child_fd)[3]


@pytest.fixture(params=[(80, 24), (120, 40)], ids=["80x24", "120x40"])
def term(request: pytest.FixtureRequest):
    cols, rows = request.param
    t = Terminal(cols, rows)
    yield t
    if t.child.isalive():
        t.child.terminate(force=True)


def test_dashboard_in_a_pty(term: Terminal) -> None:
    cols, rows = term.screen.columns, term.screen.lines
    assert term.lflags() & termios.ECHO  # a fresh pty echoes
    term.wait_for(lambda s: "2000 pieces" in s and "q  quit" in term.screen.display[rows - 1])
    assert ALT_SCREEN in term.screen.mode
    assert term.screen.cursor.hidden
    assert not term.lflags() & termios.ECHO and not term.lflags() & termios.ICANON  # cbreak while running

    # The frame fills the terminal exactly: header on the first row, footer on the last.
    assert term.screen.display[0].startswith(" torrentpy")
    assert term.screen.display[rows - 2].startswith("╰")
    assert len(term.screen.display[0]) == cols

    # The progress rises between frames.
    first = term.percent()
    term.wait_for(lambda s: term.percent() >= first + 0.5)

    # The hostile name is shown as text: no screen clear, no title change, no colour change.
    assert "evil\\x1b[2J" in term.text()
    assert "pwned" not in (term.screen.title or "")
    evil_row = next(i for i, line in enumerate(term.screen.display) if "evil\\x1b" in line)
    assert all(ch.fg != "red" for ch in term.screen.buffer[evil_row].values())

    # tab: pieces → peers (the peers table appears, the piece summary goes).
    term.child.send("\t")
    term.wait_for(lambda s: "Address" in s and "libtorrent 2.0.1" in s and "2000 pieces" not in s)
    term.child.send("\t")
    term.wait_for(lambda s: "http://127.0.0.1:6969/announce" in s)
    term.child.send("\t")
    term.wait_for(lambda s: "README.txt" in s)

    # p pauses the selected torrent, ↓ selects the next one.
    term.child.send("p")
    term.wait_for(lambda s: re.search(r"fake-linux-distro\.iso.*paus", s) is not None)
    term.child.send("\x1b[B")
    term.wait_for(lambda s: re.search(r"╰─+ evil", s) is not None)

    term.child.send("q")
    term.child.expect(pexpect.EOF, timeout=10)
    term.stream.feed(term.child.before or b"")
    term.child.close()
    assert term.child.exitstatus == 0, term.child.before
    assert term.child.signalstatus is None
    assert b"fake dashboard exited" in term.raw + (term.child.before or b"")
    assert ALT_SCREEN not in term.screen.mode
    assert not term.screen.cursor.hidden


def test_terminal_settings_restored_after_exit() -> None:
    # A shell runs the dashboard and then `stty -a` on the same terminal, as a user would see it.
    env = dict(os.environ, TERM="xterm-256color", PYTHONPATH=str(ROOT))
    child = pexpect.spawn(
        "/bin/sh",
        ["-c", f"{sys.executable} -m tests.tui.fake_dashboard; echo EXIT=$?; stty -a"],
        cwd=str(ROOT),
        env=env,
        dimensions=(24, 80),
        timeout=10,
    )
    try:
        child.expect("torrentpy")
        time.sleep(0.5)
        child.send("q")
        child.expect(r"EXIT=(\d+)")
        assert child.match.group(1) == b"0"
        child.expect(pexpect.EOF)
        stty = child.before.decode()
        words = set(re.split(r"[\s;]+", stty))
        assert "echo" in words and "icanon" in words and "isig" in words, stty
        assert "-echo" not in words and "-icanon" not in words, stty
    finally:
        child.close(force=True)


@pytest.mark.parametrize(("cols", "header_form"), [(140, "full"), (120, "letters"), (80, None)])
def test_dashboard_shows_where_peers_came_from(cols: int, header_form: str | None) -> None:
    import asyncio

    from tests.tui.fake_dashboard import FakeController

    found = dict(FakeController(asyncio.Event()).snapshot().peers_found)
    term = Terminal(cols, 30)
    try:
        term.wait_for(lambda s: "2000 pieces" in s)
        top = term.screen.display[0]
        if header_form == "full":
            want = (f"found tracker {found['tracker']} · DHT {found['dht']} · PEX {found['pex']} "
                    f"· in {found['incoming']}")
            assert want in top, top
        elif header_form == "letters":
            want = f"found T{found['tracker']} D{found['dht']} P{found['pex']} I{found['incoming']}"
            assert want in top, top
        else:  # no room: the header keeps its port and uptime rather than a cut-off count
            assert "found" not in top and "port 6881" in top, top

        # The peers panel names each peer's source in its From column.
        term.child.send("\t")
        def peer_rows() -> dict[str, str]:
            return {line.split()[1]: line for line in term.screen.display if line.startswith("│ 127.0.0.")}

        def sources_shown(_: str) -> bool:
            rows = peer_rows()
            return (
                re.search(r"\bin\b", rows.get("127.0.0.1:6881", "")) is not None
                and "PEX" in rows.get("127.0.0.2:6882", "")
                and "DHT" in rows.get("127.0.0.3:6883", "")
                and "tracker" in rows.get("127.0.0.5:6885", "")
            )

        # A frame may be read half-drawn, so wait for the rows themselves rather than the panel's header;
        # wait_for fails with the screen if a source never shows.
        term.wait_for(lambda s: "Address" in s and "From" in s)
        term.wait_for(sources_shown)
        term.child.send("q")
        term.child.expect(pexpect.EOF, timeout=10)
    finally:
        if term.child.isalive():
            term.child.terminate(force=True)
