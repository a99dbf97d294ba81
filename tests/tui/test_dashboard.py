import dataclasses
import io
import re

import pytest
from rich.console import Console
from rich.text import Text

from tests.tui.snapshots import make_peer, make_session, make_torrent
from torrentpy.engine.snapshot import FileSnapshot, TrackerSnapshot
from torrentpy.tui.dashboard import (
    PANELS,
    Dashboard,
    ViewState,
    format_eta,
    format_rate,
    format_size,
    header,
    peer_flags,
    piece_map,
)

SIZES = [(80, 24), (120, 40)]
HOSTILE = "evil\x1b[2J\x1b]0;pwned\x07[bold red]markup[/] \u202eeman\nnext"


def render(snapshot, view=None, *, width=80, height=24, terminal=False) -> str:
    console = Console(
        file=io.StringIO(),
        width=width,
        height=height,
        force_terminal=terminal,
        color_system="truecolor" if terminal else None,
        legacy_windows=False,
    )
    console.print(Dashboard(snapshot, view or ViewState()))
    return console.file.getvalue()  # type: ignore[attr-defined]


def lines_of(output: str) -> list[str]:
    assert output.endswith("\n")
    return output[:-1].split("\n")


def assert_fits(output: str, width: int, height: int) -> None:
    lines = lines_of(output)
    assert len(lines) == height
    for line in lines:
        assert Text(line).cell_len <= width, line


@pytest.mark.parametrize(("width", "height"), SIZES)
@pytest.mark.parametrize("panel", PANELS)
def test_every_panel_fits(width: int, height: int, panel: str) -> None:
    snap = make_session(
        make_torrent(name="a-very-long-torrent-name-" * 8, pieces=2000, peers=50),
        make_torrent(name="second", info_hash_hex="bb" * 20, state="seeding", have_fraction=1.0),
    )
    out = render(snap, ViewState(panel=panel), width=width, height=height)
    assert_fits(out, width, height)
    assert "…" in out  # the long name was cut with an ellipsis, not wrapped
    assert "q  quit" in out  # footer still on screen


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_torrent_row_shows_name_percent_state_and_rates(width: int, height: int) -> None:
    snap = make_session(make_torrent(name="ubuntu.iso", pieces=1000, have_fraction=0.42, eta_s=12.0))
    out = render(snap, width=width, height=height)
    row = next(line for line in lines_of(out) if line.startswith("ubuntu.iso"))
    assert "42.0%" in row
    assert "0:12" in row
    assert ("12.3 MiB/s" if width >= 100 else "12.3M") in row
    assert ("downloading" if width >= 120 else "down") in row
    assert "5/15" in row  # connected/swarm, spelled out in the footer
    assert "↓ 12.3 MiB/s" in lines_of(out)[0]
    assert "port 6881" in lines_of(out)[0]
    assert "up 1:02:03" in lines_of(out)[0]


def test_pieces_panel_has_map_and_legend() -> None:
    torrent = make_torrent(pieces=2000, have_fraction=0.5)
    out = render(make_session(torrent), ViewState(panel="pieces"), width=80, height=24)
    assert "2000 pieces" in out
    assert "have 1000" in out
    for label in ("have", "downloading", "rare (≤1 of 5 peers)", "missing"):
        assert label in out
    map_rows = [line for line in lines_of(out) if re.fullmatch(r"│ [█▓▒░·]+ +│", line)]
    assert len(map_rows) >= 3


def test_piece_map_cells_follow_piece_states() -> None:
    states = b"\x01" * 10 + b"\x02" * 10 + b"\x00" * 10 + b"\x00" * 10
    availability = b"\x05" * 30 + b"\x01" * 10  # last 10 missing pieces are rare
    torrent = make_torrent(piece_states=states, availability=availability)  # 5 peers: rare is ≤ 1
    lines = piece_map(torrent, width=40, max_lines=1)
    assert [line.plain for line in lines] == ["█" * 10 + "▒" * 10 + "·" * 10 + "░" * 10]
    # Squeezed: 4 cells of 10 pieces each keep the same story.
    assert [line.plain for line in piece_map(torrent, width=4, max_lines=1)] == ["█▒·░"]
    # Stretched: 40 pieces over 3 lines of 40 cells, each piece 3 cells wide, every line full.
    stretched = piece_map(torrent, width=40, max_lines=3)
    assert "".join(line.plain for line in stretched) == "█" * 30 + "▒" * 30 + "·" * 30 + "░" * 30


def test_piece_map_bucket_mixing_priority() -> None:
    # One cell holding have + missing shows "partial"; adding one downloading piece wins over it.
    torrent = make_torrent(piece_states=b"\x01\x00\x00\x00", availability=b"\x09" * 4)
    assert piece_map(torrent, width=1, max_lines=1)[0].plain == "▓"
    torrent = make_torrent(piece_states=b"\x01\x00\x02\x00", availability=b"\x00" * 4)
    assert piece_map(torrent, width=1, max_lines=1)[0].plain == "▒"
    torrent = make_torrent(piece_states=b"\x01\x00\x01\x01", availability=b"\x09\x01\x09\x09")
    assert piece_map(torrent, width=1, max_lines=1)[0].plain == "░"


def test_piece_map_of_2000_pieces_uses_all_lines() -> None:
    torrent = make_torrent(pieces=2000)
    lines = piece_map(torrent, width=76, max_lines=4)
    assert len(lines) == 4
    assert all(len(line.plain) == 76 for line in lines)


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_peers_panel(width: int, height: int) -> None:
    torrent = make_torrent(peers=3)
    out = render(make_session(torrent), ViewState(panel="peers"), width=width, height=height)
    assert "libtorrent 2.0.1" in out
    assert "Transmission 3.00" in out
    assert "qBittorrent 4.5.2" in out
    assert "127.0.0.1:6881" in out
    assert "D/d" in out  # flags legend
    assert "peers 3" in out  # tab label with the count


def test_peers_panel_with_many_peers_says_how_many_are_hidden() -> None:
    torrent = make_torrent(peers=50)
    out = render(make_session(torrent), ViewState(panel="peers"), width=80, height=24)
    assert_fits(out, 80, 24)
    m = re.search(r"… (\d+) more", out)
    assert m is not None
    shown = sum(1 for line in lines_of(out) if re.search(r"127\.0\.0\.\d+:\d+", line))
    assert shown + int(m.group(1)) == 50


def test_peer_without_client_name_is_decoded_and_ipv6_is_bracketed() -> None:
    peer = make_peer(0, peer_id=b"-TR3000-" + b"x" * 12, ip="::1", client="")
    torrent = make_torrent(peer_list=(peer,), peers=1)
    out = render(make_session(torrent), ViewState(panel="peers"), width=120, height=40)
    assert "[::1]:6881" in out
    assert "Transmission 3.00" in out


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (dict(am_interested=True, peer_choking=False, peer_interested=True, am_choking=False), "DU"),
        (dict(am_interested=True, peer_choking=True, peer_interested=True, am_choking=True), "du"),
        (dict(am_interested=False, peer_choking=False, peer_interested=False, am_choking=False), "K?"),
        (dict(am_interested=False, peer_choking=True, peer_interested=False, am_choking=True), ""),
        (
            dict(
                am_interested=False,
                peer_choking=True,
                peer_interested=False,
                am_choking=True,
                incoming=True,
                snubbed=True,
            ),
            "IS",
        ),
    ],
)
def test_peer_flags(flags: dict, expected: str) -> None:
    fields = dict(incoming=False, snubbed=False)
    fields.update(flags)
    assert peer_flags(make_peer(1, **fields)) == expected


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_trackers_panel(width: int, height: int) -> None:
    out = render(make_session(), ViewState(panel="trackers"), width=width, height=height)
    assert "http://127.0.0.1:6969/announce" in out
    assert "working" in out
    assert "error" in out
    assert "3/12" in out
    assert "29:02" in out  # next announce in 1742 s
    if width >= 100:
        assert "connection refused" in out


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_files_panel(width: int, height: int) -> None:
    files = tuple(
        FileSnapshot(path=f"dir/file-{i:03d}.bin", size=1 << 20, done=(i % 3) * (1 << 19)) for i in range(100)
    )
    out = render(
        make_session(make_torrent(files=files)), ViewState(panel="files"), width=width, height=height
    )
    assert_fits(out, width, height)
    assert "dir/file-000.bin" in out
    assert "1.00 MiB" in out
    assert "50.0%" in out and "100.0%" in out
    assert re.search(r"… \d+ more files", out)
    assert "files 100" in out


def test_empty_session_and_metadata_torrent() -> None:
    out = render(
        make_session(make_torrent()).__class__(
            torrents=(),
            down_rate_bps=0,
            up_rate_bps=0,
            downloaded=0,
            uploaded=0,
            peers=0,
            listen_port=1,
            uptime_s=0,
        )
    )
    assert_fits(out, 80, 24)
    assert "no torrents" in out
    magnet = make_torrent(
        name="from magnet",
        state="metadata",
        piece_states=b"",
        availability=b"",
        files=(),
        total_size=0,
        progress=0.0,
    )
    for panel in PANELS:
        out = render(make_session(magnet), ViewState(panel=panel))
        assert_fits(out, 80, 24)
    assert "waiting for metadata" in render(make_session(magnet), ViewState(panel="pieces"))


def test_error_state_is_shown() -> None:
    t = make_torrent(state="error", error="disk full: /data/\x1b[2Jx")
    out = render(make_session(t))
    assert "error: disk full: /data/\\x1b[2Jx" in out
    assert "\x1b" not in out


@pytest.mark.parametrize(("width", "height"), SIZES)
@pytest.mark.parametrize("panel", PANELS)
def test_hostile_strings_never_reach_the_terminal(width: int, height: int, panel: str) -> None:
    peer = make_peer(0, client="\x1b[2Jclient", peer_id=b"\x1b[2J\n" + b"x" * 15)
    tracker = TrackerSnapshot(
        url="http://x/\x1b]8;;evil\x1b\\",
        tier=0,
        status="\x1b[5m",
        peers_returned=0,
        seeders=None,
        leechers=None,
        next_announce_s=None,
        message="\x1b[2J",
    )
    t = make_torrent(
        name=HOSTILE,
        peer_list=(peer,),
        trackers=(tracker,),
        files=(FileSnapshot(path=HOSTILE + "/f\x1b[1A", size=10, done=5),),
    )
    plain = render(make_session(t), ViewState(panel=panel), width=width, height=height)
    assert "\x1b" not in plain
    assert "\u202e" not in plain
    assert "\x07" not in plain
    assert "evil\\x1b[2J" in plain  # shown, escaped
    assert_fits(plain, width, height)
    # With a real terminal console only rich's own SGR styling and nothing else may be emitted.
    styled = render(make_session(t), ViewState(panel=panel), width=width, height=height, terminal=True)
    escapes = re.findall(r"\x1b[^m]*m|\x1b.", styled)
    assert escapes
    assert all(re.fullmatch(r"\x1b\[[0-9;]*m", e) for e in escapes), {e for e in escapes if "[" not in e[:2]}
    assert "\x07" not in styled
    assert "[bold red]markup[/]" in re.sub(r"\x1b\[[0-9;]*m", "", styled)  # markup shown, not obeyed


def test_selected_row_is_highlighted_and_view_follows_info_hash() -> None:
    a = make_torrent(name="alpha", info_hash_hex="aa" * 20)
    b = make_torrent(name="bravo", info_hash_hex="bb" * 20)
    snap = make_session(a, b)
    view = ViewState()
    assert view.selected_index(snap) == 0
    view.move(snap, 1)
    assert view.selected == "bb" * 20
    view.move(snap, 5)
    assert view.selected == "bb" * 20  # clamped
    out = render(snap, view, terminal=True)
    bravo_line = next(line for line in out.split("\n") if "bravo" in line)
    alpha_line = next(line for line in out.split("\n") if "alpha" in line)
    assert "\x1b[7m" in bravo_line or ";7m" in bravo_line or "[1;7" in bravo_line
    assert "7m" not in alpha_line
    # The detail panel is the selected torrent's.
    assert "bravo" in render(snap, view).split("╰")[1]
    # Reordered snapshot: selection stays on the same torrent.
    assert ViewState(selected="bb" * 20).selected_index(make_session(b, a)) == 0
    view.cycle_panel()
    assert view.panel == "peers"
    view.cycle_panel(-2)
    assert view.panel == "files"


def test_many_torrents_scroll_to_the_selected_one() -> None:
    torrents = [make_torrent(name=f"torrent-{i:02d}", info_hash_hex=f"{i:040x}") for i in range(30)]
    snap = make_session(*torrents)
    view = ViewState(selected=f"{25:040x}")
    out = render(snap, view)
    assert_fits(out, 80, 24)
    assert "torrent-25" in out
    assert "torrent-00" not in out


@pytest.mark.parametrize(
    ("value", "expected", "compact"),
    [
        (0, "0 B", "0B"),
        (999, "999 B", "999B"),
        (1000, "0.98 KiB", "0.98K"),
        (1536, "1.50 KiB", "1.50K"),
        (12.3 * 1024 * 1024, "12.3 MiB", "12.3M"),
        (500 * 1024 * 1024, "500 MiB", "500M"),
        (1023.9 * 1024 * 1024, "1.00 GiB", "1.00G"),
        (3 * 1024**4, "3.00 TiB", "3.00T"),
        (float("nan"), "0 B", "0B"),
        (-5, "0 B", "0B"),
    ],
)
def test_format_size(value: float, expected: str, compact: str) -> None:
    assert format_size(value) == expected
    assert format_size(value, compact=True) == compact


def test_format_rate() -> None:
    assert format_rate(0) == "0 B/s"
    assert format_rate(12.3 * 1024 * 1024) == "12.3 MiB/s"
    assert format_rate(0, compact=True) == "0"
    assert format_rate(2048, compact=True) == "2.00K"
    assert format_rate(float("inf")) == "0 B/s"


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (None, "∞"),
        (float("inf"), "∞"),
        (-3, "0:00"),
        (12, "0:12"),
        (754, "12:34"),
        (3723, "1:02:03"),
        (14 * 3600 + 5 * 60, "14h05m"),
        (3 * 86400 + 4 * 3600, "3d04h"),
        (200 * 86400, "∞"),
    ],
)
def test_format_eta(seconds: float | None, expected: str) -> None:
    assert format_eta(seconds) == expected


def test_progress_never_rounds_up_to_complete() -> None:
    t = make_torrent(pieces=10000, piece_states=b"\x01" * 9999 + b"\x00", progress=0.9999)
    out = render(make_session(dataclasses.replace(t, name="almost")))
    row = next(line for line in lines_of(out) if line.startswith("almost"))
    assert "99.9%" in row and "100.0%" not in row


@pytest.mark.parametrize(("width", "height"), [(20, 6), (40, 10), (60, 15), (99, 30), (100, 30), (200, 60)])
@pytest.mark.parametrize("panel", PANELS)
def test_odd_sizes_still_fit(width: int, height: int, panel: str) -> None:
    snap = make_session(
        make_torrent(name="x" * 300, pieces=5000, peers=40),
        *(make_torrent(name=f"t{i}", info_hash_hex=f"{i:040x}") for i in range(12)),
    )
    out = render(snap, ViewState(panel=panel), width=width, height=height)
    assert_fits(out, width, height)


# --- what a user reads at the sizes terminals come in -------------------------------------------------

ALL_SIZES = [(80, 24), (100, 30), (120, 40), (160, 50)]
LONG_ERROR = ("Cannot connect to host tracker.example:6969 ssl:default [Connect call failed "
              "('127.0.0.1', 6969)] after 3 attempts, backing off for 120 seconds")


def _torrent_row(out: str, prefix: str) -> str:
    return next(line for line in lines_of(out)[1:] if line.startswith(prefix))


@pytest.mark.parametrize(("width", "height", "name_cells"), [(80, 24, 24), (100, 30, 34), (120, 40, 37),
                                                             (160, 50, 77)])
def test_the_name_gets_the_width_the_fixed_columns_leave(width: int, height: int, name_cells: int) -> None:
    # A name exactly as wide as the leftover shows whole; one cell more is cut with an ellipsis there.
    whole = ("ubuntu-24.04.1-desktop-amd64-" * 4)[:name_cells]
    out = render(make_session(make_torrent(name=whole)), width=width, height=height)
    row = _torrent_row(out, whole[:8])
    assert row.startswith(whole + " "), row
    assert row.rstrip().endswith("0.25")  # the ratio, last of the fixed columns, is still on the row
    longer = whole + "X"
    row = _torrent_row(render(make_session(make_torrent(name=longer)), width=width, height=height), whole[:8])
    assert row.startswith(whole[: name_cells - 1] + "… "), row


@pytest.mark.parametrize(("width", "height"), ALL_SIZES)
@pytest.mark.parametrize("pieces", [1, 48, 1024, 20000])
def test_the_piece_map_fills_its_panel(width: int, height: int, pieces: int) -> None:
    out = render(make_session(make_torrent(pieces=pieces)), ViewState(panel="pieces"), width=width,
                 height=height)
    assert_fits(out, width, height)
    lines = lines_of(out)
    top = next(i for i, line in enumerate(lines) if line.startswith("╭"))
    bottom = next(i for i, line in enumerate(lines) if line.startswith("╰"))
    inside = [line[1:-1].strip() for line in lines[top + 1 : bottom]]
    assert inside[0].startswith(f"{pieces} pieces")
    assert inside[-1].startswith("█ have")
    assert all(inside), "\n".join(lines[top : bottom + 1])  # no blank row in the panel
    assert all(re.fullmatch(r"[█▓▒░·]+", row) and len(row) == width - 4 for row in inside[1:-1]), out


@pytest.mark.parametrize(("width", "height"), ALL_SIZES)
def test_the_peers_column_says_what_it_counts(width: int, height: int) -> None:
    torrent = make_torrent(name="ubuntu.iso", peers=3, seeds=3, swarm_seeds=3, swarm_leechers=1)
    out = render(make_session(torrent), width=width, height=height)
    header_row = lines_of(out)[1]
    row = _torrent_row(out, "ubuntu.iso")
    assert "Peers" in header_row
    assert re.search(r" 3/4 ", row), row
    assert lines_of(out)[-1].rstrip().endswith("peers: connected/swarm")  # the legend, in the footer
    peers = render(make_session(torrent), ViewState(panel="peers"), width=width, height=height)
    assert "3 connected (3 seeds) · 4 in the swarm (3 seeds, 1 leecher)" in peers
    # No tracker has answered yet: the swarm is unknown, and said to be.
    unknown = make_torrent(name="ubuntu.iso", peers=1, seeds=0, swarm_seeds=None, swarm_leechers=None)
    assert re.search(r" 1/\? ", _torrent_row(render(make_session(unknown), width=width, height=height),
                                             "ubuntu.iso"))
    assert "swarm size unknown" in render(make_session(unknown), ViewState(panel="peers"), width=120,
                                          height=40)


def _map_and_legend(torrent) -> tuple[str, str]:
    out = render(make_session(torrent), ViewState(panel="pieces"), width=100, height=30)
    inside = [line[1:-1].strip() for line in lines_of(out) if line.startswith("│")]
    return "".join(inside[1:-1]), inside[0] + "\n" + inside[-1]


def test_one_peer_does_not_make_every_piece_rare() -> None:
    # The one connected peer has every piece we lack: nothing is rare, nothing unavailable.
    states = b"\x01" * 50 + b"\x00" * 150
    torrent = make_torrent(piece_states=states, availability=b"\x01" * 200, peers=1,
                           peer_list=(make_peer(0),))
    cells, text = _map_and_legend(torrent)
    assert "░" not in cells and "·" in cells
    assert "unavailable 0" in text and "rare" not in text
    # Pieces that peer lacks stand out: no one connected can give them to us.
    torrent = dataclasses.replace(torrent, availability=b"\x01" * 100 + b"\x00" * 100)
    cells, text = _map_and_legend(torrent)
    assert "░" in cells and "unavailable 100" in text and "░ unavailable (no peer has it)" in text
    # With nobody connected every piece is equally out of reach: nothing is singled out.
    torrent = dataclasses.replace(torrent, peers=0, peer_list=(), availability=bytes(200))
    cells, text = _map_and_legend(torrent)
    assert "░" not in cells and "rare" not in text and "unavailable" not in text


def test_with_many_peers_a_piece_only_one_has_is_rare() -> None:
    states = b"\x00" * 200
    availability = b"\x01" * 20 + b"\x03" * 20 + b"\x04" * 160  # 9 peers: rare is held by ≤ 3
    torrent = make_torrent(piece_states=states, availability=availability, peers=9,
                           peer_list=tuple(make_peer(i) for i in range(9)))
    cells, text = _map_and_legend(torrent)
    assert "rare 40" in text and "░ rare (≤3 of 9 peers)" in text
    assert set(cells[: len(cells) // 5]) == {"░"} and set(cells[len(cells) // 5 + 1 :]) == {"·"}


@pytest.mark.parametrize(("width", "height"), ALL_SIZES)
def test_a_tracker_error_is_shown_whole(width: int, height: int) -> None:
    trackers = (
        TrackerSnapshot(url="http://tracker.example:6969/announce", tier=0, status=f"error: {LONG_ERROR}",
                        peers_returned=0, seeders=None, leechers=None, next_announce_s=120.0,
                        message=LONG_ERROR),
        TrackerSnapshot(url="udp://127.0.0.1:6970/announce", tier=1, status="working", peers_returned=4,
                        seeders=3, leechers=1, next_announce_s=1742.0, message=""),
    )
    out = render(make_session(make_torrent(trackers=trackers)), ViewState(panel="trackers"), width=width,
                 height=height)
    assert_fits(out, width, height)
    inside = [line[1:-1] for line in lines_of(out) if line.startswith("│")]
    error_row = next(i for i, line in enumerate(inside) if "tracker.example:6969/announce" in line)
    assert re.search(r" error ", inside[error_row])
    # The message wraps beside the row (wide) or under it (narrow); read back in order it is all there.
    words = " ".join(" ".join(inside[error_row : error_row + 6]).split())
    assert LONG_ERROR in words, "\n".join(inside)
    assert "error: Cannot" not in out  # the reason is not squeezed into the status column
    assert "udp://127.0.0.1:6970/announce" in out and "working" in out


@pytest.mark.parametrize(("width", "want"), [(170, "found tracker 7 · DHT 0 · PEX 3 · in 0  DHT nodes 57"),
                                              (140, "found tracker 7 DHT 0 PEX 3 in 0  nodes 57"),
                                              (125, "found T7 D0 P3 I0  nodes 57")])
def test_header_shows_the_dht_node_count_where_it_fits(width: int, want: str) -> None:
    snap = make_session(make_torrent(peers=0, peer_list=()), peers_found=(("tracker", 7), ("pex", 3)),
                        dht_nodes=57)
    line = header(snap, width).plain
    assert want in line, line
    assert len(line) == width
    # No DHT running: no count at all, and the found counts keep their widest form.
    assert "nodes" not in header(dataclasses.replace(snap, dht_nodes=None), width).plain
