"""Sizes, rates and durations as people write and read them.

Below the UI too: storage errors name sizes ("needs 64.0 MiB"), and the command line parses sizes and
rates here, so it need not reach into the engine to read its own arguments.
"""

from __future__ import annotations

import math
import re

__all__ = ["format_eta", "format_rate", "format_size", "parse_rate", "parse_size"]

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


def format_rate(bps: float, *, compact: bool = False) -> str:
    """Bytes per second as ``"12.3 MiB/s"``, or ``"12.3M"`` when ``compact``."""
    if compact:
        return "0" if bps < 0.5 or not math.isfinite(bps) else format_size(bps, compact=True)
    return f"{format_size(bps)}/s"


def format_eta(s: float | None) -> str:
    """Seconds as ``"0:12"``, ``"1:02:03"``, ``"14h05m"``, ``"3d04h"``; ``"∞"`` when unknown or ≥ 100 days."""
    if s is None or not math.isfinite(s) or s >= 100 * 86400:
        return "∞"
    total = max(0, int(s + 0.5))
    minutes, seconds = divmod(total, 60)
    hours, minutes = divmod(minutes, 60)
    if hours == 0:
        return f"{minutes}:{seconds:02d}"
    if hours < 10:
        return f"{hours}:{minutes:02d}:{seconds:02d}"
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


# A rate option is a short human string; anything longer is a mistake, not a rate.
MAX_RATE_TEXT = 32

_RATE_RE = re.compile(r"(?P<num>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>[kmgt]?)(?:i?b)?(?:/s|ps)?", re.IGNORECASE)
_MULTIPLIERS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_rate(text: str) -> int:
    """Parse a rate in bytes per second: ``500K``, ``2M``, ``1.5MiB``, ``800KB``, ``1G``, ``250000``.

    K, M, G, T are powers of 1024 whether written ``K``, ``KB`` or ``KiB`` (as in most BitTorrent clients);
    a trailing ``/s`` is allowed. A plain number is bytes per second; ``0`` means unlimited. Raises
    ValueError saying what was wrong."""
    return _parse_bytes(text, "rate")


def parse_size(text: str) -> int:
    """Parse a size in bytes (``256K``, ``1M``, ``32MiB``, ``262144``) with the same 1024-based suffixes
    as ``parse_rate``, so ``--piece-size 256K`` and ``--max-upload-rate 256K`` are the same number of
    bytes. Raises ValueError saying what was wrong."""
    return _parse_bytes(text, "size")


def _parse_bytes(text: str, what: str) -> int:
    # One grammar for both (a rate's "/s" is tolerated in a size, as it always was on the command line).
    zero = "; use 0 for unlimited" if what == "rate" else ""
    if not isinstance(text, str):
        raise ValueError(f"{what} must be text like '500K', got {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise ValueError("rate is empty; give bytes/s such as 500K, 2M or 0 for unlimited" if what == "rate"
                         else f"{what} is empty; give bytes such as 256K or 1M")
    if len(stripped) > MAX_RATE_TEXT:
        raise ValueError(f"{what} {stripped[:MAX_RATE_TEXT]!r}... is too long to be a {what}")
    if stripped.startswith("-"):
        raise ValueError(f"{what} {stripped!r} is negative{zero}")
    m = _RATE_RE.fullmatch(stripped)
    if m is None:
        raise ValueError(f"{what} {stripped!r} is not understood; use a number with an optional K, M or G "
                         "suffix (1024-based), e.g. 500K or 1.5M")
    value = float(m["num"]) * _MULTIPLIERS[m["unit"].lower()]
    return round(value)
