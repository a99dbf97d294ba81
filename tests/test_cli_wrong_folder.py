"""The torrent's own folder (or file) passed where the folder *holding* it belongs: `verify` and `add -o`
say which folder to pass, in one line, instead of reporting 0 pieces good or downloading it all again."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.test_cli_basic import one_line_error, run
from torrentpy.metainfo import Metainfo, load
from torrentpy.storage.placement import misplaced_hint


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    """data/album: a multi-file torrent's folder, with a subfolder."""
    root = tmp_path / "data" / "album"
    (root / "sub").mkdir(parents=True)
    for rel, size in {"one.bin": 40_000, "sub/two.bin": 30_000, "three.txt": 777}.items():
        (root / rel).write_bytes(os.urandom(size))
    return root


@pytest.fixture
def made(payload: Path, tmp_path: Path) -> Path:
    out = tmp_path / "album.torrent"
    assert run("create", str(payload), "-o", str(out), "--piece-size", "16K").returncode == 0
    return out


def test_verify_the_torrent_folder_itself_names_its_parent(made: Path, payload: Path) -> None:
    proc = run("verify", str(made), str(payload))
    assert proc.returncode == 3, proc  # as for incomplete data
    line = one_line_error(proc)
    assert "torrent's own folder" in line and f"({payload.parent})" in line, line
    assert proc.stdout == ""
    # …and the folder it names is the one that works.
    assert run("verify", str(made), str(payload.parent)).returncode == 0


def test_verify_json_carries_the_hint(made: Path, payload: Path) -> None:
    proc = run("verify", "--json", str(made), str(payload))
    assert proc.returncode == 3, proc
    d = json.loads(proc.stdout)
    assert d["complete"] is False and d["good_pieces"] == 0
    assert str(payload.parent) in d["hint"]


def test_verify_a_renamed_torrent_folder_says_what_name_it_needs(made: Path, payload: Path) -> None:
    renamed = payload.parent / "my-music"
    payload.rename(renamed)
    line = one_line_error(run("verify", str(made), str(renamed)))
    assert "folder named 'album'" in line, line


def test_verify_an_empty_folder_is_a_plain_report(made: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run("verify", str(made), str(empty))
    assert proc.returncode == 3
    assert "0/" in proc.stdout and "pieces good" in proc.stdout, proc.stdout
    assert "pass the folder" not in proc.stderr


def test_verify_single_file_given_as_the_folder(payload: Path, tmp_path: Path) -> None:
    one = payload / "one.bin"
    torrent = tmp_path / "one.torrent"
    assert run("create", str(one), "-o", str(torrent)).returncode == 0
    proc = run("verify", str(torrent), str(one))
    assert proc.returncode == 3, proc
    line = one_line_error(proc)
    assert "torrent's file itself" in line and f"({payload})" in line, line


def test_add_into_the_torrent_folder_itself_refuses_and_downloads_nothing(made: Path, payload: Path) -> None:
    before = sorted(p.relative_to(payload) for p in payload.rglob("*"))
    proc = run("add", str(made), "-o", str(payload), "--no-tui", "--seed-ratio", "0")
    line = one_line_error(proc)
    assert f"({payload.parent})" in line, line
    assert sorted(p.relative_to(payload) for p in payload.rglob("*")) == before  # no album/album/


def test_hint_only_when_data_sits_one_level_off(made: Path, payload: Path, tmp_path: Path) -> None:
    """An empty folder named like the torrent, or a partly downloaded right place, is a normal target."""
    meta = load(str(made))
    assert isinstance(meta, Metainfo)
    fresh = tmp_path / "elsewhere" / "album"
    fresh.mkdir(parents=True)
    assert misplaced_hint(meta, str(fresh)) is None
    assert misplaced_hint(meta, str(payload.parent)) is None
    assert misplaced_hint(meta, str(payload)) is not None
    # One file already at its right place (album/three.txt) means this folder is the right one.
    (fresh / "album").mkdir()
    shutil.copy(payload / "three.txt", fresh / "album" / "three.txt")
    shutil.copy(payload / "one.bin", fresh / "one.bin")
    assert misplaced_hint(meta, str(fresh.parent)) is None
    # A file of the wrong size one level off is no evidence.
    (payload / "one.bin").write_bytes(b"x")
    for name in ("three.txt", "sub/two.bin"):
        (payload / name).unlink()
    assert misplaced_hint(meta, str(payload)) is None
