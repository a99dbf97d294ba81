"""Renderables over a ``SessionSnapshot``: header, torrents table, detail panel, footer.

Everything here is a pure function of (snapshot, view state, console size). Every string that came from
outside (torrent names, file paths, tracker URLs and messages, client names) goes through
``printable`` and into a ``rich.text.Text`` — never into a markup string — so neither escape sequences
nor rich markup in a hostile name can reach the terminal.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.panel import Panel
from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text

from torrentpy.clients import client_name
from torrentpy.engine.snapshot import (
    PIECE_DOWNLOADING,
    PIECE_HAVE,
    PIECE_MISSING,
    PeerSnapshot,
    SessionSnapshot,
    TorrentSnapshot,
)
from torrentpy.text import printable
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

PANELS = ("pieces", "peers", "trackers", "files")

# Below this width the tables switch to compact units and drop the progress bar so 80 columns stay legible.
WIDE_MIN_COLS = 100
# The torrents table shows a progress bar and whole state words only from here on: below it, those
# cells would come out of the name's share.
PROGRESS_BAR_MIN_COLS = 120


def _ratio_text(uploaded: int, downloaded: int) -> str:
    if downloaded > 0:
        return f"{uploaded / downloaded:.2f}"
    return "∞" if uploaded > 0 else "0.00"


def _plain(text: str, style: str = "") -> Text:
    """Untrusted text made safe for the screen, as a single-line Text."""
    return Text(printable(text), style=style, no_wrap=True, overflow="ellipsis")


def _fixed(text: str, style: str = "") -> Text:
    """Text we formatted ourselves (numbers, units): nothing to sanitise."""
    return Text(text, style=style, no_wrap=True, overflow="ellipsis")


def _fit(text: Text, width: int) -> Text:
    text.truncate(max(1, width), overflow="ellipsis")
    return text


@dataclass(frozen=True, slots=True)
class _Col:
    header: str
    width: int = 0  # 0: this column takes whatever width the others leave
    right: bool = False


def _grid(cols: list[_Col], rows: list[list[Text]], width: int) -> list[Text]:
    """Rows of cells in fixed columns, one space apart. rich's Table measures every cell of every
    frame; with the widths known up front this costs a tenth of that (bench/test_dashboard_bench.py)."""
    fixed = sum(c.width for c in cols) + len(cols) - 1
    flex = max(4, width - fixed)
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
        lines.append(_fit(line, width))
    return lines


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
    return _plain(label, _STATE_STYLE.get(state, ""))


def _bar(fraction: float, width: int) -> Text:
    fraction = min(1.0, max(0.0, fraction if math.isfinite(fraction) else 0.0))
    filled = int(fraction * width + 1e-9)
    bar = Text(no_wrap=True)
    bar.append("█" * filled, style="green")
    bar.append("░" * (width - filled), style="grey35")
    return bar


def _percent(fraction: float) -> str:
    fraction = min(1.0, max(0.0, fraction if math.isfinite(fraction) else 0.0))
    # Never show 100.0% for a torrent that is not complete.
    return f"{math.floor(fraction * 1000) / 10:.1f}%"


@dataclass
class ViewState:
    """What the user has chosen to look at; survives from one snapshot to the next by info-hash."""

    selected: str | None = None
    panel: str = PANELS[0]
    status: str = ""

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
        self.selected = snapshot.torrents[i].info_hash_hex

    def cycle_panel(self, delta: int = 1) -> None:
        i = PANELS.index(self.panel) if self.panel in PANELS else 0
        self.panel = PANELS[(i + delta) % len(PANELS)]


def header(snapshot: SessionSnapshot, width: int) -> Text:
    """One line: session rates, peers, ratio, port, uptime."""
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
    if line.cell_len < width:
        line.append(" " * (width - line.cell_len))
    return _fit(line, width)


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
            _plain(t.name, "bold" if i == selected else ""),
            _fixed(format_size(t.total_size, compact=compact)),
        ]
        if width >= PROGRESS_BAR_MIN_COLS:
            cells.append(_bar(t.progress, 10))
        cells += [
            _fixed(_percent(t.progress)),
            _state_text(t.state, compact=not long_state),
            _fixed(format_rate(t.down_rate_bps, compact=compact), "green" if t.down_rate_bps >= 1 else "dim"),
            _fixed(format_rate(t.up_rate_bps, compact=compact), "magenta" if t.up_rate_bps >= 1 else "dim"),
            _fixed(eta),
            _fixed(_peers_cell(t)),
            _fixed(f"{t.ratio:.2f}" if math.isfinite(t.ratio) else "∞"),
        ]
        table.add_row(*cells, style="reverse" if i == selected else None)
    return table


# ---------------------------------------------------------------------------------------------- pieces

_CELL_HAVE = ("█", Style.parse("green"))
_CELL_PARTIAL = ("▓", Style.parse("green4"))
_CELL_DOWNLOADING = ("▒", Style.parse("yellow"))
_CELL_RARE = ("░", Style.parse("bold red"))
_CELL_MISSING = ("·", Style.parse("grey50"))

# bytes.translate table turning piece states into a 0/1 mask, so the rarity test runs in C.
_MISSING_MASK = bytes(1 if i == PIECE_MISSING else 0 for i in range(256))


def rare_threshold(peers: int) -> int | None:
    """The availability at or below which a missing piece counts as rare with ``peers`` connected.

    Rare is relative to the swarm we see: held by at most a third of the connected peers. With one or
    two peers that is 0 — only a piece none of them has stands out; with none connected nothing does
    (``None``), since every piece is then equally unavailable and flagging them all says nothing.
    """
    return None if peers <= 0 else peers // 3


def _rare_mask(piece_states: bytes, availability: bytes, peers: int) -> bytes:
    """1 for each missing piece that at most ``rare_threshold(peers)`` connected peers have."""
    n = len(piece_states)
    threshold = rare_threshold(peers)
    if n == 0 or threshold is None:
        return bytes(n)
    avail = availability[:n].ljust(n, b"\x00")
    low_mask = bytes(1 if i <= threshold else 0 for i in range(256))
    missing = int.from_bytes(piece_states.translate(_MISSING_MASK), "big")
    low = int.from_bytes(avail.translate(low_mask), "big")
    return (missing & low).to_bytes(n, "big")


def _rare_label(peers: int) -> str | None:
    threshold = rare_threshold(peers)
    if threshold is None:
        return None  # nothing is marked, so nothing to explain
    if threshold == 0:
        return "unavailable (no peer has it)"
    return f"rare (≤{threshold} of {peers} peers)"


class PieceRow:
    """One line of the piece map, rendered straight to segments (thousands of cells per frame)."""

    __slots__ = ("runs",)

    def __init__(self, runs: list[tuple[str, Style]]) -> None:
        self.runs = runs

    @property
    def plain(self) -> str:
        return "".join(text for text, _ in self.runs)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        room = options.max_width
        for text, style in self.runs:
            if room <= 0:
                break
            yield Segment(text[:room], style)
            room -= len(text)
        yield Segment.line()

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        width = sum(len(text) for text, _ in self.runs)
        return Measurement(width, width)


def piece_map(torrent: TorrentSnapshot, width: int, max_lines: int) -> list[PieceRow]:
    """All pieces spread over exactly ``max_lines`` full lines of ``width`` cells.

    With more pieces than cells each cell stands for a run of neighbouring pieces and shows the most
    urgent thing in it: downloading, then rare (see ``rare_threshold``), then partially had. With fewer
    pieces each piece is drawn several cells wide, so the map fills its panel rather than leaving
    blank lines under it.
    """
    states = bytes(torrent.piece_states)
    n = len(states)
    width = max(1, width)
    if n == 0 or max_lines <= 0:
        return []
    rare = _rare_mask(states, bytes(torrent.availability), torrent.peers)
    cells_total = width * max_lines

    def kind(lo: int, hi: int) -> tuple[str, Style]:
        have = states.count(PIECE_HAVE, lo, hi)
        if have == hi - lo:
            return _CELL_HAVE
        if states.count(PIECE_DOWNLOADING, lo, hi):
            return _CELL_DOWNLOADING
        if rare.count(1, lo, hi):
            return _CELL_RARE
        return _CELL_PARTIAL if have else _CELL_MISSING

    if cells_total >= n:  # every cell shows one piece: work each piece out once, not once per cell
        per_piece = [kind(i, i + 1) for i in range(n)]
        kinds = [per_piece[cell * n // cells_total] for cell in range(cells_total)]
    else:
        kinds = [kind(cell * n // cells_total, (cell + 1) * n // cells_total) for cell in range(cells_total)]
    rows: list[PieceRow] = []
    for start in range(0, cells_total, width):
        runs: list[tuple[str, Style]] = []
        for glyph, style in kinds[start : start + width]:
            if runs and runs[-1][1] is style:
                runs[-1] = (runs[-1][0] + glyph, style)
            else:
                runs.append((glyph, style))
        rows.append(PieceRow(runs))
    return rows


def _pieces_body(t: TorrentSnapshot, width: int, height: int) -> list[RenderableType]:
    states = bytes(t.piece_states)
    n = len(states)
    if n == 0:
        return [_fixed("no piece information yet (waiting for metadata)", "dim")]
    have = states.count(PIECE_HAVE)
    downloading = states.count(PIECE_DOWNLOADING)
    rare = _rare_mask(states, bytes(t.availability), t.peers).count(1)
    avail = bytes(t.availability[:n])
    summary = Text(no_wrap=True, overflow="ellipsis")
    summary.append(f"{n} pieces", style="bold")
    summary.append(f"  have {have}")
    summary.append(f"  downloading {downloading}", style="yellow" if downloading else "")
    threshold = rare_threshold(t.peers)
    if threshold is not None:
        summary.append(f"  {'rare' if threshold else 'unavailable'} {rare}", style="red" if rare else "")
    if avail:
        summary.append(f"  availability min {min(avail)} avg {sum(avail) / len(avail):.1f}", style="dim")
    legend = Text(no_wrap=True, overflow="ellipsis")
    entries: tuple[tuple[tuple[str, Style], str | None], ...] = (
        (_CELL_HAVE, "have"),
        (_CELL_PARTIAL, "part"),
        (_CELL_DOWNLOADING, "downloading"),
        (_CELL_RARE, _rare_label(t.peers)),
        (_CELL_MISSING, "missing"),
    )
    for (glyph, style), label in entries:
        if label is None:
            continue
        legend.append(glyph, style=style)
        legend.append(f" {label}  ", style="dim")
    map_lines = piece_map(t, width, max(1, height - 2))
    return [_fit(summary, width), *map_lines, _fit(legend, width)]


# ----------------------------------------------------------------------------------------------- peers

_FLAGS_LEGEND_WIDE = (
    "D/d downloading/they choke us  U/u uploading/we choke them  K they unchoke, we're not interested  "
    "? we unchoke, they're not interested  I incoming  S snubbed"
)
_FLAGS_LEGEND_NARROW = "D/d down/choked  U/u up/choking  K,? unchoked, not interested  I in  S snub"


def peer_flags(p: PeerSnapshot) -> str:
    """µTorrent-style flags: D/d, U/u, K, ?, I, S (see the legend under the peers table)."""
    flags = []
    if p.am_interested:
        flags.append("d" if p.peer_choking else "D")
    elif not p.peer_choking:
        flags.append("K")
    if p.peer_interested:
        flags.append("u" if p.am_choking else "U")
    elif not p.am_choking:
        flags.append("?")
    if p.incoming:
        flags.append("I")
    if p.snubbed:
        flags.append("S")
    return "".join(flags)


def _address(p: PeerSnapshot) -> str:
    return f"[{p.ip}]:{p.port}" if ":" in p.ip else f"{p.ip}:{p.port}"


def _swarm_line(t: TorrentSnapshot) -> Text:
    """The counts behind the torrents table's ``connected/swarm`` cell, spelled out."""
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append(f"{t.peers} connected", style="bold")
    line.append(f" ({t.seeds} {'seed' if t.seeds == 1 else 'seeds'})")
    if t.swarm_seeds is None and t.swarm_leechers is None:
        line.append(" · swarm size unknown (no tracker has answered)", style="dim")
    else:
        seeds, leechers = t.swarm_seeds or 0, t.swarm_leechers or 0
        line.append(f" · {seeds + leechers} in the swarm ({seeds} {'seed' if seeds == 1 else 'seeds'}, "
                    f"{leechers} {'leecher' if leechers == 1 else 'leechers'}) per tracker", style="dim")
    return line


def _peers_body(t: TorrentSnapshot, width: int, height: int) -> list[RenderableType]:
    compact = width < WIDE_MIN_COLS - 4
    swarm = _fit(_swarm_line(t), width)
    if not t.peer_list:
        return [swarm, _fixed("no connected peers", "dim")]
    peers = sorted(
        t.peer_list, key=lambda p: (-(p.down_rate_bps + p.up_rate_bps), -p.downloaded, p.ip, p.port)
    )
    rows = max(1, height - 3)  # swarm line, header and legend
    shown = peers[:rows]
    hidden = len(peers) - len(shown)
    if hidden:
        shown = peers[: max(1, rows - 1)]
        hidden = len(peers) - len(shown)
    address_w = min(47, max(12, *(len(_address(p)) for p in shown)))
    cols = [_Col("Address", address_w), _Col("Client"), _Col("Flags", 5),
            _Col("↓", 6 if compact else 10, right=True), _Col("↑", 6 if compact else 10, right=True)]
    if not compact:
        cols += [_Col("Got", 8, right=True), _Col("Sent", 8, right=True)]
    cols.append(_Col("Has", 4, right=True))
    cells = []
    for p in shown:
        client = p.client or client_name(p.peer_id)
        row = [
            _plain(_address(p)),
            _plain(client),
            _fixed(peer_flags(p), "bold"),
            _fixed(format_rate(p.down_rate_bps, compact=compact), "green" if p.down_rate_bps >= 1 else "dim"),
            _fixed(format_rate(p.up_rate_bps, compact=compact), "magenta" if p.up_rate_bps >= 1 else "dim"),
        ]
        if not compact:
            row += [_fixed(format_size(p.downloaded)), _fixed(format_size(p.uploaded))]
        row.append(_fixed(f"{min(100, max(0, int(p.progress * 100)))}%"))
        cells.append(row)
    lines: list[RenderableType] = list(_grid(cols, cells, width))
    if hidden:
        lines.append(_fixed(f"… {hidden} more", "dim"))
    legend = _fixed(_FLAGS_LEGEND_NARROW if compact else _FLAGS_LEGEND_WIDE, "dim")
    return [swarm, *lines, _fit(legend, width)]


# -------------------------------------------------------------------------------------------- trackers


# Below this many cells a message column would show a word or two: the message goes under its row.
_MESSAGE_MIN_COLS = 24


def _status_and_message(status: str, message: str) -> tuple[str, str]:
    """A one-word status for its column and everything the tracker or the network said for the message.

    The engine reports a failed announce as ``"error: <reason>"`` (and often the same reason again as
    the message); the reason belongs with the message, where there is room to read it whole.
    """
    word, sep, detail = status.partition(":")
    if not sep or word.strip().lower() != "error":
        return status, message
    detail = detail.strip()
    if not message or message in detail:
        return "error", detail
    if not detail or detail in message:
        return "error", message
    return "error", f"{detail}; {message}"


def _trackers_body(t: TorrentSnapshot, width: int, height: int) -> list[RenderableType]:
    if not t.trackers:
        return [_fixed("no trackers", "dim")]
    url_w = min(48, max(16, *(len(printable(tr.url)) for tr in t.trackers)))
    cols = [_Col("Tracker", url_w), _Col("Tier", 4, right=True), _Col("Status", 8),
            _Col("Peers", 5, right=True), _Col("S/L", 9, right=True), _Col("Next", 7, right=True)]
    left = width - sum(c.width for c in cols) - len(cols)
    beside = left >= _MESSAGE_MIN_COLS  # else each message gets whole lines under its tracker's row
    if beside:
        cols.append(_Col("Message"))
        indent, wrap_w = width - left, left
    else:
        indent, wrap_w = 2, width - 2
    budget = max(1, height - 1)  # lines under the header
    cells: list[list[Text]] = []
    notes: list[tuple[list[str], bool]] = []
    trackers = list(t.trackers)
    for i, tr in enumerate(trackers):
        status, message = _status_and_message(printable(tr.status), printable(tr.message))
        lines = textwrap.wrap(message, max(8, wrap_w), break_on_hyphens=False) if message else []
        first, extra = (lines[:1], lines[1:]) if beside else ([], lines)
        room = budget - (1 if i < len(trackers) - 1 else 0)  # keep a line for "… N more"
        if room < 1:
            break
        if 1 + len(extra) > room:
            extra = extra[: room - 1]
            cut = extra or first
            if cut:
                cut[-1] += " …"
        budget -= 1 + len(extra)
        seeds = "?" if tr.seeders is None else str(tr.seeders)
        leechers = "?" if tr.leechers is None else str(tr.leechers)
        failed = status.lower().startswith(("error", "fail"))
        row = [
            _plain(tr.url),
            _fixed(str(tr.tier)),
            _fixed(status, "red") if failed else _plain(status),
            _fixed(str(tr.peers_returned)),
            _fixed(f"{seeds}/{leechers}"),
            _fixed("" if tr.next_announce_s is None else format_eta(tr.next_announce_s)),
        ]
        if beside:
            row.append(_fixed(first[0] if first else "", "red" if failed else "dim"))
        cells.append(row)
        notes.append((extra, failed))
    out: list[RenderableType] = []
    grid = _grid(cols, cells, width)
    out.append(grid[0])
    for row_line, (note_lines, failed) in zip(grid[1:], notes, strict=False):
        out.append(row_line)
        for note in note_lines:
            out.append(_fit(_fixed(" " * indent + note, "red" if failed else "dim"), width))
    if len(cells) < len(trackers):
        out.append(_fixed(f"… {len(trackers) - len(cells)} more", "dim"))
    return out


# ----------------------------------------------------------------------------------------------- files


def _files_body(t: TorrentSnapshot, width: int, height: int) -> list[RenderableType]:
    if not t.files:
        return [_fixed("no file list yet (waiting for metadata)", "dim")]
    compact = width < WIDE_MIN_COLS - 4
    cols = [_Col("Path"), _Col("Size", 8, right=True)]
    if not compact:
        cols.append(_Col("Progress", 12))
    cols.append(_Col("Done", 6, right=True))
    rows = max(1, height - 1)
    files = list(t.files)
    shown = files if len(files) <= rows else files[: rows - 1]
    cells = []
    for f in shown:
        fraction = f.done / f.size if f.size > 0 else 1.0
        row = [_plain(f.path), _fixed(format_size(f.size))]
        if not compact:
            row.append(_bar(fraction, 12))
        row.append(_fixed(_percent(fraction), "green" if fraction >= 1.0 else ""))
        cells.append(row)
    lines: list[RenderableType] = list(_grid(cols, cells, width))
    if len(shown) < len(files):
        lines.append(_fixed(f"… {len(files) - len(shown)} more files", "dim"))
    return lines


_BODIES = {"pieces": _pieces_body, "peers": _peers_body, "trackers": _trackers_body, "files": _files_body}


def _tabs(t: TorrentSnapshot | None, active: str) -> Text:
    counts = {
        "pieces": "",
        "peers": f" {len(t.peer_list)}" if t else "",
        "trackers": f" {len(t.trackers)}" if t else "",
        "files": f" {len(t.files)}" if t else "",
    }
    tabs = Text(no_wrap=True)
    for i, name in enumerate(PANELS):
        if i:
            tabs.append("│", style="dim")
        tabs.append(f" {name}{counts[name]} ", style="bold reverse" if name == active else "")
    return tabs


def detail_panel(torrent: TorrentSnapshot | None, panel: str, *, width: int, height: int) -> Panel:
    """The selected torrent's pieces / peers / trackers / files in a bordered box of exactly ``height``."""
    inner_w = max(1, width - 4)
    inner_h = max(1, height - 2)
    body: list[RenderableType]
    if torrent is None:
        body = [_fixed("no torrents — add one with `torrentpy add FILE.torrent`", "dim")]
        subtitle = None
    else:
        body = []
        if torrent.error:
            body.append(_fit(_plain(f"error: {torrent.error}", "bold red"), inner_w))
        body += _BODIES.get(panel, _pieces_body)(torrent, inner_w, inner_h - len(body))
        subtitle = _fit(_plain(torrent.name, "bold"), max(1, width - 6))
    return Panel(
        Group(*body),
        title=_fit(_tabs(torrent, panel), max(1, width - 6)),
        title_align="left",
        subtitle=subtitle,
        subtitle_align="right",
        box=box.ROUNDED,
        padding=(0, 1),
        height=height,
        width=width,
    )


def _footer(view: ViewState, width: int) -> Text:
    footer = Text(no_wrap=True, overflow="ellipsis")
    for key, label in (("q", "quit"), ("p", "pause/resume"), ("↑↓", "select"), ("tab", "panel")):
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
    return _fit(footer, width)


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
            yield detail_panel(torrent, view.panel, width=width, height=detail_h)
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
