"""The detail panel under the torrents table: the selected torrent's pieces, peers, trackers or files.

Pure functions of (torrent snapshot, width, height), like the rest of the dashboard.
"""

from __future__ import annotations

import textwrap

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.panel import Panel
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

from torrentpy.clients import client_name
from torrentpy.engine.snapshot import PIECE_DOWNLOADING, PIECE_HAVE, PIECE_MISSING, PeerSnapshot, TorrentSnapshot
from torrentpy.text import printable
from torrentpy.tui.cells import WIDE_MIN_COLS, Col, bar, fit, fixed, grid, percent, untrusted
from torrentpy.units import format_eta, format_rate, format_size

__all__ = ["PANELS", "PieceRow", "detail_panel", "peer_flags", "peer_source", "piece_map", "rare_threshold"]

PANELS = ("pieces", "peers", "trackers", "files")


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
        return [fixed("no piece information yet (waiting for metadata)", "dim")]
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
    return [fit(summary, width), *map_lines, fit(legend, width)]


# ----------------------------------------------------------------------------------------------- peers

_FLAGS_LEGEND_WIDE = (
    "D/d downloading/they choke us  U/u uploading/we choke them  K they unchoke, we're not interested  "
    "? we unchoke, they're not interested  I incoming  S snubbed  From: where we learned of the peer"
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


# The From column: where we learned of a peer, in at most 7 cells.
_SOURCE_LABELS = {"tracker": "tracker", "dht": "DHT", "pex": "PEX", "incoming": "in", "manual": "manual",
                  "magnet": "magnet", "resume": "resume"}


def peer_source(p: PeerSnapshot) -> str:
    return _SOURCE_LABELS.get(p.source, p.source[:7])


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
    swarm = fit(_swarm_line(t), width)
    if not t.peer_list:
        return [swarm, fixed("no connected peers", "dim")]
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
    cols = [Col("Address", address_w), Col("Client"), Col("Flags", 5), Col("From", 7),
            Col("↓", 6 if compact else 10, right=True), Col("↑", 6 if compact else 10, right=True)]
    if not compact:
        cols += [Col("Got", 8, right=True), Col("Sent", 8, right=True)]
    cols.append(Col("Has", 4, right=True))
    cells = []
    for p in shown:
        client = p.client or client_name(p.peer_id)
        row = [
            untrusted(_address(p)),
            untrusted(client),
            fixed(peer_flags(p), "bold"),
            untrusted(peer_source(p)),
            fixed(format_rate(p.down_rate_bps, compact=compact), "green" if p.down_rate_bps >= 1 else "dim"),
            fixed(format_rate(p.up_rate_bps, compact=compact), "magenta" if p.up_rate_bps >= 1 else "dim"),
        ]
        if not compact:
            row += [fixed(format_size(p.downloaded)), fixed(format_size(p.uploaded))]
        row.append(fixed(f"{min(100, max(0, int(p.progress * 100)))}%"))
        cells.append(row)
    lines: list[RenderableType] = list(grid(cols, cells, width))
    if hidden:
        lines.append(fixed(f"… {hidden} more", "dim"))
    legend = fixed(_FLAGS_LEGEND_NARROW if compact else _FLAGS_LEGEND_WIDE, "dim")
    return [swarm, *lines, fit(legend, width)]


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
        return [fixed("no trackers", "dim")]
    url_w = min(48, max(16, *(len(printable(tr.url)) for tr in t.trackers)))
    cols = [Col("Tracker", url_w), Col("Tier", 4, right=True), Col("Status", 8),
            Col("Peers", 5, right=True), Col("S/L", 9, right=True), Col("Next", 7, right=True)]
    left = width - sum(c.width for c in cols) - len(cols)
    beside = left >= _MESSAGE_MIN_COLS  # else each message gets whole lines under its tracker's row
    if beside:
        cols.append(Col("Message"))
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
            untrusted(tr.url),
            fixed(str(tr.tier)),
            fixed(status, "red") if failed else untrusted(status),
            fixed(str(tr.peers_returned)),
            fixed(f"{seeds}/{leechers}"),
            fixed("" if tr.next_announce_s is None else format_eta(tr.next_announce_s)),
        ]
        if beside:
            row.append(fixed(first[0] if first else "", "red" if failed else "dim"))
        cells.append(row)
        notes.append((extra, failed))
    out: list[RenderableType] = []
    grid_lines = grid(cols, cells, width)
    out.append(grid_lines[0])
    for row_line, (note_lines, failed) in zip(grid_lines[1:], notes, strict=False):
        out.append(row_line)
        for note in note_lines:
            out.append(fit(fixed(" " * indent + note, "red" if failed else "dim"), width))
    if len(cells) < len(trackers):
        out.append(fixed(f"… {len(trackers) - len(cells)} more", "dim"))
    return out


# ----------------------------------------------------------------------------------------------- files


_GET = {-1: "low", 0: "norm", 1: "high"}
_GET_STYLE = {"skip": "dim", "high": "bold", "low": "dim"}


def _files_body(t: TorrentSnapshot, width: int, height: int, cursor: int | None = None) -> list[RenderableType]:
    """``cursor`` (when the controller can toggle files) is highlighted and kept in the window shown."""
    if not t.files:
        return [fixed("no file list yet (waiting for metadata)", "dim")]
    compact = width < WIDE_MIN_COLS - 4
    files = list(t.files)
    # The numbers `add --only` takes; "Get": skip, or the priority of a wanted file.
    cols = [Col("#", len(str(len(files))), right=True), Col("Path"), Col("Size", 8, right=True),
            Col("Get", 4)]
    if not compact:
        cols.append(Col("Progress", 12))
    cols.append(Col("Done", 6, right=True))
    rows = max(1, height - 1)
    first = 0
    if len(files) > rows and cursor is not None:
        first = min(max(0, cursor - (rows - 1) // 2), len(files) - (rows - 1))
    shown = files if len(files) <= rows else files[first : first + rows - 1]
    cells = []
    for number, f in enumerate(shown, first + 1):
        fraction = f.done / f.size if f.size > 0 else 1.0
        get = _GET.get(f.priority, "?") if f.wanted else "skip"
        row = [fixed(str(number), "dim"), untrusted(f.path, "" if f.wanted else "dim"), fixed(format_size(f.size)),
               fixed(get, _GET_STYLE.get(get, ""))]
        if not compact:
            row.append(bar(fraction, 12))
        row.append(fixed(percent(fraction), "green" if fraction >= 1.0 else ""))
        cells.append(row)
    grid_lines = grid(cols, cells, width)
    if cursor is not None and 0 <= cursor - first < len(shown):
        grid_lines[1 + cursor - first].stylize("reverse")  # after the header line
    lines: list[RenderableType] = list(grid_lines)
    if len(shown) < len(files):
        lines.append(fixed(f"… {len(files) - len(shown)} more files", "dim"))
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


def detail_panel(torrent: TorrentSnapshot | None, panel: str, *, width: int, height: int,
                 file_cursor: int | None = None) -> Panel:
    """The selected torrent's pieces / peers / trackers / files in a bordered box of exactly ``height``;
    ``file_cursor`` is the file the files panel highlights (None: no cursor)."""
    inner_w = max(1, width - 4)
    inner_h = max(1, height - 2)
    body: list[RenderableType]
    if torrent is None:
        body = [fixed("no torrents — add one with `torrentpy add FILE.torrent`", "dim")]
        subtitle = None
    else:
        body = []
        if torrent.error:
            body.append(fit(untrusted(f"error: {torrent.error}", "bold red"), inner_w))
        if panel == "files":
            body += _files_body(torrent, inner_w, inner_h - len(body), file_cursor)
        else:
            body += _BODIES.get(panel, _pieces_body)(torrent, inner_w, inner_h - len(body))
        subtitle = fit(untrusted(torrent.name, "bold"), max(1, width - 6))
    return Panel(
        Group(*body),
        title=fit(_tabs(torrent, panel), max(1, width - 6)),
        title_align="left",
        subtitle=subtitle,
        subtitle_align="right",
        box=box.ROUNDED,
        padding=(0, 1),
        height=height,
        width=width,
    )
