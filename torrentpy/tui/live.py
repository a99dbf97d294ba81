"""The live dashboard: an asyncio task that redraws ~4×/s and turns key presses into controller calls.

No thread is involved: ``Live(auto_refresh=False)`` is refreshed from the event loop, keys arrive through
``loop.add_reader`` on stdin in cbreak mode, and the engine is only ever seen through
``Controller.snapshot()``. The terminal (alternate screen, cursor, termios mode) is restored on every
way out: normal return, exception, cancellation, Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import termios
import tty

from rich.console import Console
from rich.live import Live

from torrentpy.engine.snapshot import Controller, SessionSnapshot
from torrentpy.tui.dashboard import Dashboard, ViewState

__all__ = ["KeyDecoder", "handle_key", "run_dashboard"]

# Longest escape sequence we recognise is 4 bytes (ESC [ 5 ~); anything pending longer than this is
# garbage (or a paste) and is dropped rather than buffered without bound.
MAX_PENDING_KEY_BYTES = 8
# One read takes whatever is queued; a burst larger than this is simply read on the next callback.
READ_CHUNK_BYTES = 256

_SEQUENCES = {
    b"\x1b[A": "up",
    b"\x1bOA": "up",
    b"\x1b[B": "down",
    b"\x1bOB": "down",
    b"\x1b[C": "right",
    b"\x1bOC": "right",
    b"\x1b[D": "left",
    b"\x1bOD": "left",
    b"\x1b[Z": "shift-tab",
    b"\x1b[5~": "page-up",
    b"\x1b[6~": "page-down",
    b"\x1b[H": "home",
    b"\x1b[F": "end",
}
_SINGLE = {b"\t": "tab", b"\r": "enter", b"\n": "enter", b"\x7f": "backspace"}


class KeyDecoder:
    """Bytes from a cbreak-mode terminal → key names (``"q"``, ``"up"``, ``"tab"``, …)."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> list[str]:
        buf = self._pending + data
        keys: list[str] = []
        i = 0
        while i < len(buf):
            if buf[i] == 0x1B:
                rest = buf[i:]
                for seq, name in _SEQUENCES.items():
                    if rest.startswith(seq):
                        keys.append(name)
                        i += len(seq)
                        break
                else:
                    if any(seq.startswith(rest) for seq in _SEQUENCES) and len(rest) < MAX_PENDING_KEY_BYTES:
                        break  # the rest of the sequence has not arrived yet
                    keys.append("escape")
                    i += 1
                continue
            one = buf[i : i + 1]
            key = _SINGLE.get(one)
            if key is None:
                key = chr(buf[i]) if 0x20 <= buf[i] < 0x7F else "?"
            keys.append(key)
            i += 1
        self._pending = buf[i:]
        return keys


def handle_key(key: str, controller: Controller, snapshot: SessionSnapshot, view: ViewState) -> None:
    """Apply one key press to the view or the controller."""
    if key in ("q", "Q"):
        view.status = "stopping…"
        controller.request_stop()
    elif key in ("up", "k"):
        view.move(snapshot, -1)
    elif key in ("down", "j"):
        view.move(snapshot, 1)
    elif key == "page-up":
        view.move(snapshot, -10)
    elif key == "page-down":
        view.move(snapshot, 10)
    elif key in ("tab", "right", "l"):
        view.cycle_panel(1)
    elif key in ("shift-tab", "left", "h"):
        view.cycle_panel(-1)
    elif key in ("p", "P", " "):
        torrent = view.selected_torrent(snapshot)
        if torrent is None:
            return
        try:
            if torrent.state in ("paused", "stopped"):
                controller.resume(torrent.info_hash_hex)
                view.status = "resuming"
            else:
                controller.pause(torrent.info_hash_hex)
                view.status = "pausing"
        except Exception as exc:  # a failed command is shown, not allowed to take the dashboard down
            view.status = f"{type(exc).__name__}: {exc}"


def _stdin_fd() -> int | None:
    try:
        return sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):  # pytest's capture, a closed or absent stdin
        return None


async def run_dashboard(
    controller: Controller,
    *,
    console: Console | None = None,
    refresh_hz: float = 4.0,
    stop_event: asyncio.Event,
    input_fd: int | None = None,
) -> None:
    """Show the dashboard until ``stop_event`` is set; ``q`` asks the controller to stop.

    ``input_fd`` defaults to stdin. Only when it is a terminal is it switched to cbreak mode (and back);
    a pipe is still read for keys until it reaches end of file.
    """
    console = console if console is not None else Console()
    period_s = 1.0 / max(0.1, refresh_hz)
    loop = asyncio.get_running_loop()
    fd = input_fd if input_fd is not None else _stdin_fd()
    view = ViewState()
    decoder = KeyDecoder()
    wake = asyncio.Event()
    latest: list[SessionSnapshot] = []
    saved_mode: list[int | list[bytes | int]] | None = None
    was_blocking: bool | None = None
    reader_installed = False
    live = Live(
        console=console,
        screen=True,
        auto_refresh=False,
        transient=False,
        redirect_stdout=False,
        redirect_stderr=False,
    )

    def on_readable() -> None:
        nonlocal reader_installed
        assert fd is not None
        try:
            data = os.read(fd, READ_CHUNK_BYTES)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # end of input: stop watching, keep showing
            loop.remove_reader(fd)
            reader_installed = False
            return
        if not latest:
            return
        for key in decoder.feed(data):
            handle_key(key, controller, latest[-1], view)
        wake.set()

    stop_waiter = asyncio.ensure_future(stop_event.wait())
    stop_waiter.add_done_callback(lambda _: wake.set())
    try:
        if fd is not None and os.isatty(fd):
            saved_mode = termios.tcgetattr(fd)
            # cbreak, not raw: ISIG stays on so Ctrl-C still interrupts, and output post-processing stays.
            tty.setcbreak(fd, termios.TCSANOW)
        if fd is not None:
            was_blocking = os.get_blocking(fd)
            try:
                loop.add_reader(fd, on_readable)
                reader_installed = True
            except (OSError, ValueError, NotImplementedError):
                reader_installed = False  # e.g. a regular file, which epoll refuses
            # uvloop's add_reader makes the fd non-blocking, and a terminal's stdin and stdout are one open
            # file: a frame written while the terminal is still busy would fail half-written (and the
            # way back from the alternate screen with it). Reads only happen once the fd is readable.
            os.set_blocking(fd, True)
        live.start()
        while True:
            snapshot = controller.snapshot()
            latest[:] = [snapshot]
            view.selected_index(snapshot)
            live.update(Dashboard(snapshot, view), refresh=True)
            if stop_event.is_set():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=period_s)
            wake.clear()
    finally:
        stop_waiter.cancel()
        try:
            if reader_installed and fd is not None:
                loop.remove_reader(fd)
        finally:
            try:
                live.stop()
            finally:
                if saved_mode is not None and fd is not None:
                    termios.tcsetattr(fd, termios.TCSADRAIN, saved_mode)
                if was_blocking is not None and fd is not None:
                    os.set_blocking(fd, was_blocking)
