"""Cells the dashboard's tables and panels are built of: safe text, fixed columns, bars, percentages.

Every string that came from outside goes through ``untrusted`` (``printable`` into a ``rich.text.Text``,
never into a markup string), so neither escape sequences nor rich markup in a hostile name reach the
terminal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rich.text import Text

from torrentpy.text import printable

__all__ = ["WIDE_MIN_COLS", "Col", "bar", "fit", "fixed", "grid", "percent", "untrusted"]

# Below this width the tables switch to compact units and drop the progress bar so 80 columns stay legible.
WIDE_MIN_COLS = 100

def untrusted(text: str, style: str = "") -> Text:
    """Untrusted text made safe for the screen, as a single-line Text."""
    return Text(printable(text), style=style, no_wrap=True, overflow="ellipsis")


def fixed(text: str, style: str = "") -> Text:
    """Text we formatted ourselves (numbers, units): nothing to sanitise."""
    return Text(text, style=style, no_wrap=True, overflow="ellipsis")


def fit(text: Text, width: int) -> Text:
    text.truncate(max(1, width), overflow="ellipsis")
    return text


@dataclass(frozen=True, slots=True)
class Col:
    header: str
    width: int = 0  # 0: this column takes whatever width the others leave
    right: bool = False


def grid(cols: list[Col], rows: list[list[Text]], width: int) -> list[Text]:
    """Rows of cells in fixed columns, one space apart. rich's Table measures every cell of every
    frame; with the widths known up front this costs a tenth of that (bench/test_dashboard_bench.py)."""
    fixed_w = sum(c.width for c in cols) + len(cols) - 1
    flex = max(4, width - fixed_w)
    lines = []
    for cells in [[Text(c.header, style="bold") for c in cols], *rows]:
        line = Text(no_wrap=True, overflow="ellipsis")
        for i, (col, cell) in enumerate(zip(cols, cells, strict=False)):
            w = col.width or flex
            cell.truncate(w, overflow="ellipsis")
            if col.right:
                cell.pad_left(w - cell.cell_len)
            elif i < len(cols) - 1:
                cell.pad_right(w - cell.cell_len)
            if i:
                line.append(" ")
            line.append_text(cell)
        lines.append(fit(line, width))
    return lines


def bar(fraction: float, width: int) -> Text:
    fraction = min(1.0, max(0.0, fraction if math.isfinite(fraction) else 0.0))
    filled = int(fraction * width + 1e-9)
    line = Text(no_wrap=True)
    line.append("█" * filled, style="green")
    line.append("░" * (width - filled), style="grey35")
    return line


def percent(fraction: float) -> str:
    fraction = min(1.0, max(0.0, fraction if math.isfinite(fraction) else 0.0))
    # Never show 100.0% for a torrent that is not complete.
    return f"{math.floor(fraction * 1000) / 10:.1f}%"
