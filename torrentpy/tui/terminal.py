"""The terminal as an input device: cbreak mode, key bytes read from the event loop, key names.

Every front end that listens for keys (the dashboard, the demo before the dashboard is up) goes through
here, so the terminal is put back the same way on every way out: normal return, exception,
cancellation, Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import termios
import tty
from collections.abc import Callable, Iterator

__all__ = ["KeyDecoder", "cbreak", "reading", "stdin_fd"]

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


def stdin_fd() -> int | None:
    """Standard input's descriptor, or None when there is none to read."""
    try:
        return sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):  # pytest's capture, a closed or absent stdin
        return None


@contextlib.contextmanager
def cbreak(fd: int | None) -> Iterator[None]:
    """Keys arrive one by one, unechoed, while inside; the terminal's mode is restored on the way out.
    A descriptor that is not a terminal (a pipe, None) is left alone."""
    if fd is None or not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    # cbreak, not raw: ISIG stays on so Ctrl-C still interrupts, and output post-processing stays.
    tty.setcbreak(fd, termios.TCSANOW)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


@contextlib.contextmanager
def reading(fd: int | None, on_data: Callable[[bytes], None]) -> Iterator[None]:
    """While inside, hand whatever arrives on ``fd`` to ``on_data`` from the event loop; at end of input
    stop watching. Leaves ``fd`` blocking meanwhile (see below) and as it was afterwards."""
    if fd is None:
        yield
        return
    loop = asyncio.get_running_loop()
    installed = False

    def on_readable() -> None:
        nonlocal installed
        try:
            data = os.read(fd, READ_CHUNK_BYTES)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # end of input: stop watching
            loop.remove_reader(fd)
            installed = False
            return
        on_data(data)

    was_blocking = os.get_blocking(fd)
    try:
        try:
            loop.add_reader(fd, on_readable)
            installed = True
        except (OSError, ValueError, NotImplementedError):
            installed = False  # e.g. a regular file, which epoll refuses
        # uvloop's add_reader makes the fd non-blocking, and a terminal's stdin and stdout are one open
        # file: a frame written while the terminal is still busy would fail half-written (and the
        # way back from the alternate screen with it). Reads only happen once the fd is readable.
        os.set_blocking(fd, True)
        yield
    finally:
        try:
            if installed:
                loop.remove_reader(fd)
        finally:
            os.set_blocking(fd, was_blocking)
