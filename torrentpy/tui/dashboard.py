"""Renderables over a ``SessionSnapshot``: header, torrents table, detail panel (``tui.panels``), footer.

Everything here is a pure function of (snapshot, view state, console size). Every string that came from
outside (torrent names, file paths, tracker URLs and messages, client names) goes through
``printable`` and into a ``rich.text.Text`` — never into a markup string — so neither escape sequences
nor rich markup in a hostile name can reach the terminal.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from torrentpy.engine.snapshot import SessionSnapshot, TorrentSnapshot
from torrentpy.text import printable
from torrentpy.tui.cells import WIDE_MIN_COLS, bar, fit, fixed, percent, untrusted
from torrentpy.tui.panels import PANELS, PieceRow, detail_panel, peer_flags, piece_map
from torrentpy.units import format_eta, format_rate, format_size

__all__ = [
    "PANELS",
    "Dashboard",
    "PieceRow",
    "ViewState",
    "detail_panel",
    "format_eta",
    "format_rate",
    "format_size",
    "header",
    "peer_flags",
    "piece_map",
    "torrents_table",
]

# The torrents table shows a progress bar and whole state words only from here on: below it, those
# cells would come out of the name's share.
PROGRESS_BAR_MIN_COLS = 120


def _ratio_text(uploaded: int, downloaded: int) -> str:
    if downloaded > 0:
        return f"{uploaded / downloaded:.2f}"
    return "∞" if uploaded > 0 else "0.00"


_STATE_STYLE = {
    "downloading": "bold green",
    "seeding": "cyan",
    "finished": "cyan",
    "checking": "magenta",
    "metadata": "blue",
    "paused": "yellow",
    "stopped": "dim",
    "error": "bold red",
}
_STATE_SHORT = {
    "downloading": "down",
    "seeding": "seed",
    "finished": "done",
    "checking": "check",
    "metadata": "meta",
    "paused": "pause",
    "stopped": "stop",
    "error": "error",
}


def _state_text(state: str, *, compact: bool) -> Text:
    label = _STATE_SHORT.get(state, state) if compact else state
    return untrusted(label, _STATE_STYLE.get(state, ""))


@dataclass
class ViewState:
    """What the user has chosen to look at; survives from one snapshot to the next by info-hash."""

    selected: str | None = None
    panel: str = PANELS[0]
    status: str = ""
    can_remove: bool = False  # the controller removes torrents (`x`): the footer says so
    can_toggle_files: bool = False  # the controller marks files wanted/unwanted: the files panel has a cursor
    file_cursor: int = 0  # over the selected torrent's files, as the files panel numbers them (from 0)

    def selected_index(self, snapshot: SessionSnapshot) -> int:
        torrents = snapshot.torrents
        if not torrents:
            return -1
        for i, t in enumerate(torrents):
            if t.info_hash_hex == self.selected:
                return i
        self.selected = torrents[0].info_hash_hex
        return 0

    def selected_torrent(self, snapshot: SessionSnapshot) -> TorrentSnapshot | None:
        i = self.selected_index(snapshot)
        return snapshot.torrents[i] if i >= 0 else None

    def move(self, snapshot: SessionSnapshot, delta: int) -> None:
        i = self.selected_index(snapshot)
        if i < 0:
            return
        i = min(len(snapshot.torrents) - 1, max(0, i + delta))
        if snapshot.torrents[i].info_hash_hex != self.selected:
            self.file_cursor = 0  # another torrent's files: start at its first
        self.selected = snapshot.torrents[i].info_hash_hex

    def move_file(self, snapshot: SessionSnapshot, delta: int) -> None:
        torrent = self.selected_torrent(snapshot)
        count = len(torrent.files) if torrent is not None else 0
        self.file_cursor = min(max(0, count - 1), max(0, self.file_cursor + delta))

    def file_under_cursor(self, snapshot: SessionSnapshot) -> tuple[TorrentSnapshot, int] | None:
        """The selected torrent and the index of its file under the cursor (kept inside its file list)."""
        torrent = self.selected_torrent(snapshot)
        if torrent is None or not torrent.files:
            return None
        self.file_cursor = min(self.file_cursor, len(torrent.files) - 1)
        return torrent, self.file_cursor

    def cycle_panel(self, delta: int = 1) -> None:
        i = PANELS.index(self.panel) if self.panel in PANELS else 0
        self.panel = PANELS[(i + delta) % len(PANELS)]


# Where the header says peers were found: the four sources a user watches, always shown (a 0 says as
# much as a count); --peer and magnet addresses are in the peers panel's From column.
FOUND_SOURCES = (("tracker", "tracker", "T"), ("dht", "DHT", "D"), ("pex", "PEX", "P"), ("incoming", "in", "I"))


def _found_text(snapshot: SessionSnapshot, form: int) -> Text:
    """Peers found by source in one of three widths: ``  found tracker 3 · DHT 0 · PEX 5 · in 2``,
    ``  found tracker 3 DHT 0 PEX 5 in 2``, ``  found T3 D0 P5 I2``."""
    found = dict(snapshot.peers_found)
    text = Text("  found ", style="dim")
    for i, (source, label, letter) in enumerate(FOUND_SOURCES):
        gap = ("" if not i else " · " if form == 0 else " ")
        text.append(f"{gap}{letter if form == 2 else label + ' '}", style="dim")
        text.append(str(found.get(source, 0)))
    return text


def _dht_text(snapshot: SessionSnapshot, form: int) -> Text:
    """The DHT routing table's size: ``  DHT nodes 57``, or ``  nodes 57`` in the narrower forms;
    nothing when the DHT is not running."""
    text = Text()
    if snapshot.dht_nodes is not None:
        text.append("  DHT nodes " if form == 0 else "  nodes ", style="dim")
        text.append(str(snapshot.dht_nodes))
    return text


def header(snapshot: SessionSnapshot, width: int) -> Text:
    """One line: session rates, peers, ratio, port, uptime, then peers found by source and the DHT's
    node count where they fit (the count is dropped before the found counts are)."""
    line = Text(no_wrap=True, overflow="ellipsis", style="on grey15")
    line.append(" torrentpy ", style="bold white on blue")
    line.append("  ↓ ", style="bold green")
    line.append(format_rate(snapshot.down_rate_bps))
    line.append("  ↑ ", style="bold magenta")
    line.append(format_rate(snapshot.up_rate_bps))
    line.append("  peers ", style="dim")
    line.append(str(snapshot.peers))
    line.append("  ratio ", style="dim")
    line.append(_ratio_text(snapshot.uploaded, snapshot.downloaded))
    line.append("  port ", style="dim")
    line.append(str(snapshot.listen_port))
    line.append("  up ", style="dim")
    line.append(format_eta(snapshot.uptime_s))
    if width >= WIDE_MIN_COLS:
        line.append("  torrents ", style="dim")
        line.append(str(len(snapshot.torrents)))
    # The widest form that fits, with the DHT's node count if possible.
    for form, with_dht in [(f, True) for f in (0, 1, 2)] + [(f, False) for f in (0, 1, 2)]:
        found = _found_text(snapshot, form)
        if with_dht:
            found.append_text(_dht_text(snapshot, form))
        if line.cell_len + found.cell_len <= width:
            line.append_text(found)
            break
    if line.cell_len < width:
        line.append(" " * (width - line.cell_len))
    return fit(line, width)


def _peers_cell(t: TorrentSnapshot) -> str:
    """``connected/swarm``: peers we are connected to over the swarm size the trackers report (``?``
    when none has). Spelled out in the footer legend and the peers panel; seeds are counted there."""
    if t.swarm_seeds is None and t.swarm_leechers is None:
        return f"{t.peers}/?"
    return f"{t.peers}/{(t.swarm_seeds or 0) + (t.swarm_leechers or 0)}"


PEERS_LEGEND = "peers: connected/swarm"


def _table(*, expand: bool = True) -> Table:
    return Table(
        box=None,
        expand=expand,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1),
        collapse_padding=True,
        header_style="bold",
    )


def _table_columns(width: int) -> list[tuple[str, int, bool]]:
    """(header, width, right-aligned) of the fixed columns at this terminal width; the name takes the
    rest. Units, state words and the progress bar come back only where they leave the name room."""
    compact = width < WIDE_MIN_COLS
    cols = [("Size", 6 if compact else 8, True)]
    if width >= PROGRESS_BAR_MIN_COLS:
        cols.append(("Progress", 10, False))
    cols += [
        ("Done", 6, True),
        ("State", 11 if width >= PROGRESS_BAR_MIN_COLS else 5, False),
        ("↓", 6 if compact else 10, True),
        ("↑", 6 if compact else 10, True),
        ("ETA", 7, True),
        ("Peers", 7, True),
        ("Ratio", 5, True),
    ]
    return cols


def name_width(width: int) -> int:
    """Cells left for the torrent name in a ``width``-column torrents table."""
    cols = _table_columns(width)
    return max(8, width - sum(w for _, w, _ in cols) - len(cols))


def torrents_table(snapshot: SessionSnapshot, selected: int, *, width: int, max_rows: int) -> Table:
    """One row per torrent (a window of ``max_rows`` around the selected one), selected row highlighted."""
    compact = width < WIDE_MIN_COLS
    long_state = width >= PROGRESS_BAR_MIN_COLS
    table = _table()
    table.add_column("Name", width=name_width(width), no_wrap=True, overflow="ellipsis")
    for title, col_width, right in _table_columns(width):
        table.add_column(title, justify="right" if right else "left", width=col_width, no_wrap=True,
                         overflow="ellipsis")
    torrents = snapshot.torrents
    first = 0
    if len(torrents) > max_rows:
        first = min(max(0, selected - max_rows // 2), len(torrents) - max_rows)
    for i in range(first, min(len(torrents), first + max_rows)):
        t = torrents[i]
        done = t.state in ("seeding", "finished") or t.progress >= 1.0
        eta = "" if done or t.state in ("paused", "stopped", "error") else format_eta(t.eta_s)
        cells: list[Text] = [
            untrusted(t.name, "bold" if i == selected else ""),
            fixed(format_size(t.total_size, compact=compact)),
        ]
        if width >= PROGRESS_BAR_MIN_COLS:
            cells.append(bar(t.progress, 10))
        cells += [
            fixed(percent(t.progress)),
            _state_text(t.state, compact=not long_state),
            fixed(format_rate(t.down_rate_bps, compact=compact), "green" if t.down_rate_bps >= 1 else "dim"),
            fixed(format_rate(t.up_rate_bps, compact=compact), "magenta" if t.up_rate_bps >= 1 else "dim"),
            fixed(eta),
            fixed(_peers_cell(t)),
            fixed(f"{t.ratio:.2f}" if math.isfinite(t.ratio) else "∞"),
        ]
        table.add_row(*cells, style="reverse" if i == selected else None)
    return table


def _footer(view: ViewState, width: int) -> Text:
    footer = Text(no_wrap=True, overflow="ellipsis")
    keys = [("q", "quit"), ("p", "pause/resume"), ("↑↓", "select"), ("tab", "panel")]
    if view.can_remove:
        keys.insert(2, ("x", "remove"))
    if view.can_toggle_files and view.panel == "files":
        keys += [("[ ]", "file"), ("w", "get/skip")]
    for key, label in keys:
        footer.append(f" {key} ", style="bold reverse")
        footer.append(f" {label} ")
    if view.status:
        footer.append("  ")
        footer.append(printable(view.status), style="bold yellow")
    # What the torrents table's Peers column counts, at the right end, where the room allows.
    room = width - footer.cell_len - 2
    if room >= len(PEERS_LEGEND):
        footer.append(" " * (room - len(PEERS_LEGEND) + 1))
        footer.append(PEERS_LEGEND, style="dim")
    return fit(footer, width)


class Dashboard:
    """The whole screen for one snapshot; crops itself to the console's width and height."""

    def __init__(self, snapshot: SessionSnapshot, view: ViewState | None = None) -> None:
        self.snapshot = snapshot
        self.view = view if view is not None else ViewState()

    def _parts(self, width: int, height: int) -> Iterable[RenderableType]:
        snap, view = self.snapshot, self.view
        selected = view.selected_index(snap)
        yield header(snap, width)
        # The torrent list gets about a third of what is left; the detail panel takes the rest.
        max_rows = max(1, min(len(snap.torrents), (height - 10) // 3))
        if snap.torrents:
            yield torrents_table(snap, selected, width=width, max_rows=max_rows)
            used = 1 + max_rows + 1 + 1
        else:
            used = 1 + 1
        detail_h = height - used
        if detail_h >= 3:
            torrent = snap.torrents[selected] if selected >= 0 else None
            cursor = view.file_cursor if view.can_toggle_files else None
            yield detail_panel(torrent, view.panel, width=width, height=detail_h, file_cursor=cursor)
        yield _footer(view, width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = max(20, options.max_width)
        height = max(6, options.height or options.size.height)
        render_options = options.update(width=width, height=height, no_wrap=True)
        lines = console.render_lines(Group(*self._parts(width, height)), render_options, pad=True)
        newline = Segment.line()
        for line in lines:
            yield from line
            yield newline
