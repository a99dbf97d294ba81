"""Terminal front ends: the live rich dashboard and the plain / JSON progress reporters.

They render ``torrentpy.engine.snapshot`` objects and send commands through a ``Controller``; nothing
here touches engine state directly.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torrentpy.tui.dashboard import Dashboard, ViewState, format_eta, format_rate, format_size
    from torrentpy.tui.live import run_dashboard
    from torrentpy.tui.plain import JsonReporter, PlainReporter, run_json, run_plain

# Importing a submodule (tui.plain, tui.run) runs this file first: naming the exports lazily keeps rich,
# which only the dashboard needs, out of `torrentpy add --no-tui` and out of every command's start-up.
_HOMES = {
    "Dashboard": "dashboard", "ViewState": "dashboard", "format_eta": "dashboard", "format_rate": "dashboard",
    "format_size": "dashboard", "run_dashboard": "live", "JsonReporter": "plain", "PlainReporter": "plain",
    "run_json": "plain", "run_plain": "plain",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)

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
