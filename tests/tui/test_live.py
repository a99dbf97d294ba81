"""run_dashboard in-process: keys through a pipe or a pty, frames into a StringIO console."""

import asyncio
import dataclasses
import io
import os
import re
import select
import termios
import threading
import time

import pytest
import uvloop
from rich.console import Console

from tests.tui.snapshots import make_session, make_torrent
from torrentpy.engine.snapshot import Controller, SessionSnapshot
from torrentpy.tui.live import KeyDecoder, run_dashboard

A, B = "aa" * 20, "bb" * 20


class RecordingController:
    def __init__(self, stop_event: asyncio.Event, *, fail_after: int | None = None) -> None:
        self.stop_event = stop_event
        self.calls: list[tuple[str, str]] = []
        self.paused: set[str] = set()
        self.snapshots = 0
        self.fail_after = fail_after

    def snapshot(self) -> SessionSnapshot:
        self.snapshots += 1
        if self.fail_after is not None and self.snapshots > self.fail_after:
            raise RuntimeError("engine exploded")
        torrents = [
            make_torrent(name="alpha", info_hash_hex=A),
            make_torrent(name="bravo", info_hash_hex=B, have_fraction=0.9),
        ]
        torrents = [
            dataclasses.replace(t, state="paused") if t.info_hash_hex in self.paused else t for t in torrents
        ]
        return make_session(*torrents)

    def pause(self, info_hash_hex: str) -> None:
        self.calls.append(("pause", info_hash_hex))
        self.paused.add(info_hash_hex)

    def resume(self, info_hash_hex: str) -> None:
        self.calls.append(("resume", info_hash_hex))
        self.paused.discard(info_hash_hex)

    def request_stop(self) -> None:
        self.calls.append(("stop", ""))
        self.stop_event.set()


def test_controller_protocol_is_satisfied() -> None:
    assert isinstance(RecordingController(asyncio.Event()), Controller)


def make_console() -> Console:
    # A terminal console: Live only draws frames on terminals.
    return Console(
        file=io.StringIO(), width=80, height=24, force_terminal=True, color_system=None, legacy_windows=False
    )


def raw_output(console: Console) -> str:
    return console.file.getvalue()  # type: ignore[attr-defined]


def output(console: Console) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw_output(console))


async def wait_until(predicate, timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def last_frame(console: Console) -> str:
    return output(console).rsplit(" torrentpy ", 1)[-1]


async def test_keys_drive_the_view_and_the_controller() -> None:
    stop_event = asyncio.Event()
    controller = RecordingController(stop_event)
    console = make_console()
    read_fd, write_fd = os.pipe()
    try:
        task = asyncio.create_task(
            run_dashboard(controller, console=console, refresh_hz=20, stop_event=stop_event, input_fd=read_fd)
        )
        await wait_until(lambda: "pieces" in output(console))
        assert "alpha" in output(console) and "2 pieces" not in output(console)

        os.write(write_fd, b"\t")
        await wait_until(lambda: "Address" in last_frame(console))
        os.write(write_fd, b"\t\t")
        await wait_until(lambda: "Path" in last_frame(console))

        os.write(write_fd, b"p")
        await wait_until(lambda: ("pause", A) in controller.calls)
        await wait_until(lambda: "pause" in last_frame(console).split("\n")[2])  # alpha row shows paused
        os.write(write_fd, b"p")
        await wait_until(lambda: ("resume", A) in controller.calls)

        os.write(write_fd, b"\x1b[B")  # arrow down, then pause: acts on bravo
        os.write(write_fd, b"p")
        await wait_until(lambda: ("pause", B) in controller.calls)
        os.write(write_fd, b"\x1bO")  # an arrow split across two reads
        await asyncio.sleep(0.05)
        os.write(write_fd, b"Ap")
        await wait_until(lambda: controller.calls.count(("pause", A)) == 2)

        assert not task.done()
        os.write(write_fd, b"q")
        await asyncio.wait_for(task, 5)
        assert controller.calls[-1] == ("stop", "")
    finally:
        os.close(read_fd)
        os.close(write_fd)


async def test_returns_when_stop_event_is_set_without_input() -> None:
    stop_event = asyncio.Event()
    controller = RecordingController(stop_event)
    console = make_console()
    task = asyncio.create_task(
        run_dashboard(controller, console=console, refresh_hz=50, stop_event=stop_event, input_fd=None)
    )
    await wait_until(lambda: controller.snapshots >= 5)  # refreshes on its own, ~50×/s
    stop_event.set()
    await asyncio.wait_for(task, 2)


async def test_pipe_at_eof_is_dropped_not_spun_on() -> None:
    stop_event = asyncio.Event()
    controller = RecordingController(stop_event)
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"\t")
    os.close(write_fd)
    try:
        console = make_console()
        task = asyncio.create_task(
            run_dashboard(controller, console=console, refresh_hz=10, stop_event=stop_event, input_fd=read_fd)
        )
        await wait_until(lambda: controller.snapshots >= 3)
        # The tab before EOF was read, then the reader was removed (a reader left on an EOF pipe would be
        # called in a busy loop): removing it again finds nothing, while the dashboard is still running.
        assert not asyncio.get_running_loop().remove_reader(read_fd)
        assert not task.done()
        assert "Address" in last_frame(console)  # the tab was applied
        stop_event.set()
        await asyncio.wait_for(task, 2)
    finally:
        os.close(read_fd)


def lflags(fd: int) -> int:
    return termios.tcgetattr(fd)[3]


async def test_terminal_mode_is_cbreak_while_running_and_restored_after() -> None:
    master, slave = os.openpty()
    try:
        before = termios.tcgetattr(slave)
        assert before[3] & termios.ECHO and before[3] & termios.ICANON
        stop_event = asyncio.Event()
        controller = RecordingController(stop_event)
        console = make_console()
        task = asyncio.create_task(
            run_dashboard(controller, console=console, refresh_hz=20, stop_event=stop_event, input_fd=slave)
        )
        await wait_until(lambda: controller.snapshots >= 1)
        assert not lflags(slave) & termios.ECHO
        assert not lflags(slave) & termios.ICANON
        assert lflags(slave) & termios.ISIG  # Ctrl-C still works
        os.write(master, b"q")
        await asyncio.wait_for(task, 5)
        assert termios.tcgetattr(slave) == before
        text = raw_output(console)
        assert "\x1b[?1049h" in text and "\x1b[?25l" in text  # alternate screen, hidden cursor...
        assert text.rindex("\x1b[?1049l") > text.rindex("\x1b[?1049h")  # ...and back
        assert text.rindex("\x1b[?25h") > text.rindex("\x1b[?25l")
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.parametrize("how", ["exception", "cancel"])
async def test_terminal_restored_on_exception_and_cancellation(how: str) -> None:
    master, slave = os.openpty()
    try:
        before = termios.tcgetattr(slave)
        stop_event = asyncio.Event()
        controller = RecordingController(stop_event, fail_after=3 if how == "exception" else None)
        console = make_console()
        task = asyncio.create_task(
            run_dashboard(controller, console=console, refresh_hz=20, stop_event=stop_event, input_fd=slave)
        )
        if how == "exception":
            with pytest.raises(RuntimeError, match="engine exploded"):
                await asyncio.wait_for(task, 5)
        else:
            await wait_until(lambda: controller.snapshots >= 2)
            assert termios.tcgetattr(slave) != before
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert termios.tcgetattr(slave) == before
        text = raw_output(console)
        assert text.rindex("\x1b[?1049l") > text.rindex("\x1b[?1049h")
        assert text.rindex("\x1b[?25h") > text.rindex("\x1b[?25l")
        # The reader was removed: a key now is not consumed by a dead dashboard.
        assert not asyncio.get_running_loop().remove_reader(slave)
    finally:
        os.close(master)
        os.close(slave)


async def test_failed_command_is_shown_not_raised() -> None:
    stop_event = asyncio.Event()
    controller = RecordingController(stop_event)

    def broken_pause(info_hash_hex: str) -> None:
        raise KeyError(info_hash_hex)

    controller.pause = broken_pause  # type: ignore[method-assign]
    console = make_console()
    read_fd, write_fd = os.pipe()
    try:
        task = asyncio.create_task(
            run_dashboard(controller, console=console, refresh_hz=20, stop_event=stop_event, input_fd=read_fd)
        )
        await wait_until(lambda: controller.snapshots >= 1)
        os.write(write_fd, b"p")
        await wait_until(lambda: "KeyError" in last_frame(console))
        assert not task.done()
        stop_event.set()
        await asyncio.wait_for(task, 2)
    finally:
        os.close(read_fd)
        os.close(write_fd)


def test_key_decoder() -> None:
    d = KeyDecoder()
    assert d.feed(b"q\t\x1b[A\x1b[B\x1bOA\x1b[Zj") == ["q", "tab", "up", "down", "up", "shift-tab", "j"]
    assert d.feed(b"\x1b[") == []
    assert d.feed(b"B") == ["down"]
    assert d.feed(b"\x1bq") == ["escape", "q"]
    assert d.feed(b"\x00\xff") == ["?", "?"]
    assert d.feed(b"\x1b[5~\x1b[6~") == ["page-up", "page-down"]



def test_a_slow_terminal_gets_every_frame_and_the_way_back() -> None:
    """uvloop's add_reader makes the terminal non-blocking, and stdin and stdout share it: a frame written
    while the terminal is still busy with the last one must wait, not fail half-written."""
    master, slave = os.openpty()
    received = bytearray()
    done = threading.Event()

    def slow_terminal() -> None:  # reads in small bites with pauses, as a terminal over ssh falls behind
        while True:
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                if done.is_set():
                    return
                continue
            received.extend(os.read(master, 1024))
            time.sleep(0.002)

    reader = threading.Thread(target=slow_terminal, daemon=True)
    reader.start()
    out = os.fdopen(os.dup(slave), "w", encoding="utf-8")
    console = Console(file=out, width=160, height=50, force_terminal=True, color_system="truecolor",
                      legacy_windows=False)
    was_blocking = os.get_blocking(slave)
    blocking_while_running: list[bool] = []

    async def main() -> None:
        stop_event = asyncio.Event()
        controller = RecordingController(stop_event)
        task = asyncio.ensure_future(
            run_dashboard(controller, console=console, refresh_hz=50, stop_event=stop_event, input_fd=slave)
        )
        while controller.snapshots < 20 and not task.done():  # 20 frames of ~10 KB: more than a pty holds
            await asyncio.sleep(0.01)
        blocking_while_running.append(os.get_blocking(slave))
        stop_event.set()
        await asyncio.wait_for(task, 60)  # generous: a loaded machine drains slowly

    try:
        uvloop.run(main())
        out.flush()
        restored = os.get_blocking(slave)
    finally:
        done.set()
        reader.join(10)
        out.close()
        os.close(slave)
        os.close(master)
    assert blocking_while_running == [True]
    assert restored == was_blocking
    assert received.rindex(b"\x1b[?1049l") > received.rindex(b"\x1b[?1049h"), bytes(received[-300:])
