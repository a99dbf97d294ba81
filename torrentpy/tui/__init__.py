"""Terminal front ends: the live rich dashboard and the plain / JSON progress reporters.

They render ``torrentpy.engine.snapshot`` objects and send commands through a ``Controller``; nothing
here touches engine state directly.
"""

from torrentpy.tui.dashboard import Dashboard, ViewState, format_eta, format_rate, format_size
from torrentpy.tui.live import run_dashboard
from torrentpy.tui.plain import JsonReporter, PlainReporter, run_json, run_plain

__all__ = [
    "Dashboard",
    "JsonReporter",
    "PlainReporter",
    "ViewState",
    "format_eta",
    "format_rate",
    "format_size",
    "run_dashboard",
    "run_json",
    "run_plain",
]
