"""`add --only` and BEP 53's so=: the file numbers, and one-line errors (exit 2) for bad ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from torrentpy.cli import main
from torrentpy.creation import create_torrent
from torrentpy.metainfo import parse_file_ranges, parse_magnet


def test_file_ranges() -> None:
    assert parse_file_ranges("1,3-5", base=1) == [0, 2, 3, 4]
    assert parse_file_ranges("0,2,4,6-8", base=0) == [0, 2, 4, 6, 7, 8]
    assert parse_file_ranges(" 2 , 1 ", base=1) == [1, 0]
    for bad in ("", "0", "a", "3-1", "1,,2", "-1", "1-", "+1", "1_0", "١", "1-99999999", "1-600000,1-600000"):
        with pytest.raises(ValueError):
            parse_file_ranges(bad, base=1)


def test_magnet_so() -> None:
    h = "0123456789abcdef0123456789abcdef01234567"
    assert parse_magnet(f"magnet:?xt=urn:btih:{h}&so=0,2,4-5").select_only == (0, 2, 4, 5)
    assert parse_magnet(f"magnet:?xt=urn:btih:{h}").select_only is None
    assert parse_magnet(f"magnet:?xt=urn:btih:{h}&so=x").select_only is None  # ignored, as libtorrent does


@pytest.fixture
def two_files(tmp_path: Path) -> Path:
    root = tmp_path / "pair"
    root.mkdir()
    (root / "a.bin").write_bytes(b"a" * 1000)
    (root / "b.bin").write_bytes(b"b" * 1000)
    torrent = tmp_path / "pair.torrent"
    torrent.write_bytes(create_torrent(str(root), piece_length=16384))
    return torrent


@pytest.mark.parametrize(("only", "message"), [
    ("3", "--only: there is no file 3: pair has 2 files"),
    ("0", "files count from 1"),
    ("1-x", "is not a file number"),
])
def test_bad_only_is_a_one_line_usage_error(two_files: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            only: str, message: str) -> None:
    code = main(["add", str(two_files), "-o", str(tmp_path / "dl"), "--only", only, "--no-tui"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("torrentpy: error: ") and message in err, err


def test_only_takes_one_torrent(two_files: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    h = "0123456789abcdef0123456789abcdef01234567"
    code = main(["add", str(two_files), h, "-o", str(tmp_path / "dl"), "--only", "1", "--no-tui"])
    assert code == 2
    assert "single SOURCE" in capsys.readouterr().err
