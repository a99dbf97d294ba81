"""Running a session under a front end: the dashboard, plain lines or JSON lines, and the process's signals.

The engine only ever hears "stop"; which signals mean that is the front end's business, so both
`torrentpy add` and `torrentpy demo` run their session through here.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Literal, TextIO

if TYPE_CHECKING:
    from torrentpy.engine.alerts import Alert
    from torrentpy.engine.session import Session

__all__ = ["UI", "choose_ui", "run_session", "stop_on_signals"]

UI = Literal["dashboard", "plain", "json"]


def _is_terminal(stream: TextIO | None) -> bool:
    return stream is not None and not stream.closed and stream.isatty()


def choose_ui(*, tui: bool, json: bool = False) -> UI:
    """JSON lines when asked; the dashboard when wanted and both stdin and stdout are terminals (it
    draws on one and reads keys from the other); plain progress lines otherwise."""
    if json:
        return "json"
    if tui and _is_terminal(sys.stdout) and _is_terminal(sys.stdin):
        return "dashboard"
    return "plain"


def stop_on_signals(session: Session) -> None:
    """From now on Ctrl-C and SIGTERM ask ``session`` to stop, and it remembers which signal did.

    The handlers stay after the session has stopped: a second Ctrl-C while the last lines are printed
    is still a request to stop, not a KeyboardInterrupt in the middle of them."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, session.request_stop, signum)


async def run_session(session: Session, ui: UI, *, interval_s: float, refresh_hz: float = 4.0) -> None:
    """Run ``session`` to its end under ``ui``, which is drawn once more after the session has stopped.

    Alerts for the caller's own use go in ``session.listeners`` before this is called."""
    ui_stop = asyncio.Event()
    shown: Coroutine[Any, Any, None]
    if ui == "json":
        from torrentpy.tui.plain import run_json

        queue: asyncio.Queue[Alert] = asyncio.Queue()
        session.listeners.append(queue.put_nowait)
        shown = run_json(session, stop_event=ui_stop, events=queue, interval_s=interval_s)
    elif ui == "dashboard":
        from torrentpy.tui.live import run_dashboard

        shown = run_dashboard(session, stop_event=ui_stop, refresh_hz=refresh_hz)
    else:
        from torrentpy.tui.plain import run_plain

        shown = run_plain(session, stop_event=ui_stop, interval_s=interval_s)
    ui_task = asyncio.ensure_future(shown)
    stop_on_signals(session)
    try:
        await session.run()
    finally:
        ui_stop.set()
        await ui_task
