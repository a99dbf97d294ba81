"""The live dashboard: an asyncio task that redraws ~4×/s and turns key presses into controller calls.

No thread is involved: ``Live(auto_refresh=False)`` is refreshed from the event loop, keys arrive through
``loop.add_reader`` on stdin in cbreak mode (``tui.terminal``), and the engine is only ever seen through
``Controller.snapshot()``. The terminal (alternate screen, cursor, termios mode) is restored on every
way out: normal return, exception, cancellation, Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from rich.console import Console
from rich.live import Live

from torrentpy.engine.snapshot import Controller, SessionSnapshot
from torrentpy.tui import terminal
from torrentpy.tui.dashboard import Dashboard, ViewState
from torrentpy.tui.terminal import KeyDecoder

__all__ = ["KeyDecoder", "handle_key", "run_dashboard"]


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
    elif key in ("x", "X"):
        # Only a controller that can remove (the RPC one of `torrentpy dashboard`) offers it.
        remove = getattr(controller, "remove", None)
        torrent = view.selected_torrent(snapshot)
        if remove is not None and torrent is not None:
            remove(torrent.info_hash_hex)
            view.status = f"removing {torrent.name} (its data stays)"
    elif key in ("[", "]") and view.panel == "files":
        view.move_file(snapshot, -1 if key == "[" else 1)
    elif key in ("w", "W") and view.panel == "files":
        _toggle_file(controller, snapshot, view)


def _toggle_file(controller: Controller, snapshot: SessionSnapshot, view: ViewState) -> None:
    """The file under the files panel's cursor: wanted ↔ skipped (a controller without set_file_wanted
    offers no cursor, and the key does nothing)."""
    set_file_wanted = getattr(controller, "set_file_wanted", None)
    chosen = view.file_under_cursor(snapshot)
    if set_file_wanted is None or chosen is None:
        return
    torrent, index = chosen
    wanted = not torrent.files[index].wanted
    try:
        set_file_wanted(torrent.info_hash_hex, index, wanted)
        view.status = f"{'getting' if wanted else 'skipping'} file {index + 1}: {torrent.files[index].path}"
    except Exception as exc:  # e.g. the engine refusing the choice: shown, not allowed to end the dashboard
        view.status = f"{type(exc).__name__}: {exc}"


async def run_dashboard(
    controller: Controller,
    *,
    console: Console | None = None,
    refresh_hz: float = 4.0,
    stop_event: asyncio.Event,
    input_fd: int | None = None,
    problem: Callable[[], str] | None = None,
) -> None:
    """Show the dashboard until ``stop_event`` is set; ``q`` asks the controller to stop.

    ``input_fd`` defaults to stdin. Only when it is a terminal is it switched to cbreak mode (and back);
    a pipe is still read for keys until it reaches end of file. ``problem`` (when given and not empty)
    is shown in the footer: e.g. a daemon that stopped answering.
    """
    console = console if console is not None else Console()
    period_s = 1.0 / max(0.1, refresh_hz)
    fd = input_fd if input_fd is not None else terminal.stdin_fd()
    view = ViewState(can_remove=callable(getattr(controller, "remove", None)),
                     can_toggle_files=callable(getattr(controller, "set_file_wanted", None)))
    decoder = KeyDecoder()
    wake = asyncio.Event()
    latest: list[SessionSnapshot] = []
    live = Live(
        console=console,
        screen=True,
        auto_refresh=False,
        transient=False,
        redirect_stdout=False,
        redirect_stderr=False,
    )

    def on_data(data: bytes) -> None:
        if not latest:
            return
        for key in decoder.feed(data):
            handle_key(key, controller, latest[-1], view)
        wake.set()

    stop_waiter = asyncio.ensure_future(stop_event.wait())
    stop_waiter.add_done_callback(lambda _: wake.set())
    try:
        # Left in reverse: the screen first (while the fd is still blocking), then the reader, then the mode.
        with terminal.cbreak(fd), terminal.reading(fd, on_data):
            live.start()
            try:
                while True:
                    snapshot = controller.snapshot()
                    latest[:] = [snapshot]
                    view.selected_index(snapshot)
                    if problem is not None and problem():
                        view.status = problem()
                    live.update(Dashboard(snapshot, view), refresh=True)
                    if stop_event.is_set():
                        break
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), timeout=period_s)
                    wake.clear()
            finally:
                live.stop()
    finally:
        stop_waiter.cancel()
