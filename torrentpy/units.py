"""Byte counts as people read them. Below the UI too: storage errors name sizes ("needs 64.0 MiB")."""

from __future__ import annotations

import math

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def _scaled(value: float) -> tuple[str, int]:
    """``value`` as three significant digits and the index of its 1024-based unit."""
    if not math.isfinite(value) or value < 0:
        value = 0.0
    unit = 0
    # Switch unit at 999.5 rather than 1024 so the number never needs a fourth digit.
    while value >= 999.5 and unit < len(_UNITS) - 1:
        value /= 1024.0
        unit += 1
    if unit == 0:
        return f"{round(value)}", 0
    if value < 9.995:
        return f"{value:.2f}", unit
    if value < 99.95:
        return f"{value:.1f}", unit
    return f"{value:.0f}", unit


def format_size(n: float, *, compact: bool = False) -> str:
    """Bytes as ``"12.3 MiB"`` (three significant digits), or ``"12.3M"`` when ``compact``."""
    number, unit = _scaled(float(n))
    if compact:
        return f"{number}{_UNITS[unit][0]}"
    return f"{number} {_UNITS[unit]}"
