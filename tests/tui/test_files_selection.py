"""The files panel shows each file's number (as `add --only` takes it), and whether and how it is fetched."""

from __future__ import annotations

import pytest

from tests.tui.snapshots import make_session, make_torrent
from tests.tui.test_dashboard import SIZES, assert_fits, render
from torrentpy.engine.snapshot import FileSnapshot
from torrentpy.tui.dashboard import ViewState


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_files_panel_shows_numbers_and_selection(width: int, height: int) -> None:
    files = (
        FileSnapshot(path="movie.mkv", size=1 << 30, done=0, wanted=True, priority=1),
        FileSnapshot(path="extras.mkv", size=1 << 20, done=0, wanted=False),
        FileSnapshot(path="subs.srt", size=1 << 10, done=1 << 10, wanted=True, priority=-1),
        FileSnapshot(path="readme.txt", size=10, done=0),
    )
    out = render(make_session(make_torrent(files=files)), ViewState(panel="files"), width=width, height=height)
    assert_fits(out, width, height)
    rows = [line for line in out.splitlines() if any(n in line for n in ("movie", "extras", "subs", "readme"))]
    assert len(rows) == 4, out
    for number, (row, get) in enumerate(zip(rows, ("high", "skip", "low", "norm"), strict=True), 1):
        assert f" {number} " in row and f" {get} " in row, row
