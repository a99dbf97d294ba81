"""Torrent creation: piece-size choice, file collection, and hashes checked against hashlib."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import pytest

from torrentpy import creation
from torrentpy.bencoding import decode
from torrentpy.creation import auto_piece_length, collect_files, create_torrent
from torrentpy.errors import UsageError
from torrentpy.metainfo import Metainfo, parse_torrent

KiB, MiB, GiB = 1024, 1024**2, 1024**3


@pytest.mark.parametrize(
    ("total", "piece_length"),
    [
        (0, 16 * KiB),
        (1, 16 * KiB),
        (1 * MiB, 16 * KiB),
        (1500 * 16 * KiB, 16 * KiB),  # exactly the target count: stays
        (1500 * 16 * KiB + 16 * KiB, 32 * KiB),  # one piece over: doubles
        (100 * MiB, 128 * KiB),
        (1 * GiB, 1 * MiB),
        (4 * GiB, 4 * MiB),
        (24 * GiB, 16 * MiB),
        (100 * GiB, 16 * MiB),  # capped
        (1 << 50, 16 * MiB),
    ],
)
def test_auto_piece_length_table(total: int, piece_length: int) -> None:
    assert auto_piece_length(total) == piece_length


def test_auto_piece_length_is_a_power_of_two_and_monotonic() -> None:
    last = 0
    for exp in range(0, 45):
        length = auto_piece_length(1 << exp)
        assert length & (length - 1) == 0
        assert length >= last
        last = length


def _write(path: Path, size: int, seed: int) -> bytes:
    data = random.Random(seed).randbytes(size)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def _hashlib_pieces(payload: bytes, piece_length: int) -> bytes:
    return b"".join(hashlib.sha1(payload[i : i + piece_length]).digest()
                    for i in range(0, len(payload), piece_length))


def test_single_file(tmp_path: Path) -> None:
    data = _write(tmp_path / "movie.bin", 100_000, 1)
    raw = create_torrent(str(tmp_path / "movie.bin"), piece_length=16 * KiB, creation_date=1234)
    meta = parse_torrent(raw)
    assert meta.name == "movie.bin" and not meta.multi_file
    assert meta.total_length == 100_000
    assert meta.pieces == _hashlib_pieces(data, 16 * KiB)
    assert meta.creation_date == 1234
    assert meta.created_by is not None and meta.created_by.startswith("torrentpy/")
    assert not meta.private and meta.trackers == () and meta.web_seeds == () and meta.comment is None
    top = decode(raw)
    assert b"files" not in top[b"info"] and top[b"info"][b"length"] == 100_000


def _tree(root: Path) -> dict[str, bytes]:
    spec = {"b/z.bin": 70_000, "a.bin": 16 * KiB, "b/empty.txt": 0, "b/c/deep.bin": 5, ".hidden": 33,
            "B.bin": 1000, "b/c/d/e/f.bin": 40_000}
    return {rel: _write(root / rel, size, i) for i, (rel, size) in enumerate(spec.items())}


def test_folder_order_nesting_and_hashes(tmp_path: Path) -> None:
    root = tmp_path / "folder"
    files = _tree(root)
    raw = create_torrent(str(root), piece_length=16 * KiB)
    meta = parse_torrent(raw)
    order = sorted(files, key=lambda rel: tuple(rel.split("/")))
    assert meta.multi_file and meta.name == "folder"
    assert ["/".join(f.path[1:]) for f in meta.files] == order
    assert [f.length for f in meta.files] == [len(files[r]) for r in order]
    assert "b/empty.txt" in order
    payload = b"".join(files[r] for r in order)
    assert meta.total_length == len(payload)
    assert meta.pieces == _hashlib_pieces(payload, 16 * KiB)


def test_many_batches_cross_file_boundaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Batches of 2 pieces, so batch edges fall inside files and inside the stream of small ones.
    monkeypatch.setattr(creation, "BATCH_BYTES", 2 * 16 * KiB)
    root = tmp_path / "folder"
    files = _tree(root)
    seen: list[int] = []
    totals: list[int] = []
    meta = parse_torrent(create_torrent(str(root), piece_length=16 * KiB, progress=seen.append,
                                        on_total=totals.append))
    payload = b"".join(files[r] for r in sorted(files, key=lambda rel: tuple(rel.split("/"))))
    assert meta.pieces == _hashlib_pieces(payload, 16 * KiB)
    assert sum(seen) == len(payload) and len(seen) > 3
    assert totals == [len(payload)]


def test_collect_files_skips_symlinks_leaving_the_folder(tmp_path: Path) -> None:
    root = tmp_path / "folder"
    _write(root / "real.bin", 10, 1)
    _write(tmp_path / "outside.bin", 10, 2)
    os.symlink(tmp_path / "outside.bin", root / "escape.bin")
    os.symlink(root / "real.bin", root / "inside-link.bin")
    name, files, multi = collect_files(str(root))
    assert name == "folder" and multi
    assert [f.parts for f in files] == [("inside-link.bin",), ("real.bin",)]


def test_trailing_slash_name(tmp_path: Path) -> None:
    _write(tmp_path / "folder" / "a", 5, 1)
    assert parse_torrent(create_torrent(str(tmp_path / "folder") + "/")).name == "folder"


def test_options(tmp_path: Path) -> None:
    _write(tmp_path / "f.bin", 50_000, 3)
    raw = create_torrent(
        str(tmp_path / "f.bin"),
        trackers=[["http://127.0.0.1:1/a", "http://127.0.0.1:2/a"], [""], ["udp://127.0.0.1:3"]],
        web_seeds=["http://127.0.0.1:4/f.bin"],
        private=True,
        comment="made for a test",
        source="TEST",
    )
    meta = parse_torrent(raw)
    assert meta.private
    assert meta.trackers == (("http://127.0.0.1:1/a", "http://127.0.0.1:2/a"), ("udp://127.0.0.1:3",))
    assert meta.web_seeds == ("http://127.0.0.1:4/f.bin",)
    assert meta.comment == "made for a test"
    top = decode(raw)
    assert top[b"announce"] == b"http://127.0.0.1:1/a"
    assert top[b"info"][b"source"] == b"TEST"
    assert top[b"info"][b"private"] == 1


def test_one_tracker_has_no_announce_list(tmp_path: Path) -> None:
    _write(tmp_path / "f.bin", 10, 3)
    top = decode(create_torrent(str(tmp_path / "f.bin"), trackers=[["http://127.0.0.1:1/a"]]))
    assert top[b"announce"] == b"http://127.0.0.1:1/a" and b"announce-list" not in top


def test_auto_piece_length_used(tmp_path: Path) -> None:
    _write(tmp_path / "f.bin", 30 * MiB, 4)
    meta = parse_torrent(create_torrent(str(tmp_path / "f.bin")))
    assert meta.piece_length == auto_piece_length(30 * MiB) == 32 * KiB


@pytest.mark.parametrize("piece_length", [0, 8 * KiB, 16 * KiB + 1, 48 * KiB])
def test_bad_piece_length(tmp_path: Path, piece_length: int) -> None:
    _write(tmp_path / "f.bin", 10, 1)
    with pytest.raises(UsageError, match="power of two"):
        create_torrent(str(tmp_path / "f.bin"), piece_length=piece_length)


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such"):
        create_torrent(str(tmp_path / "missing"))
    (tmp_path / "empty-dir").mkdir()
    with pytest.raises(UsageError, match="no files"):
        create_torrent(str(tmp_path / "empty-dir"))
    (tmp_path / "zeros").mkdir()
    (tmp_path / "zeros" / "a").write_bytes(b"")
    with pytest.raises(UsageError, match="nothing to share"):
        create_torrent(str(tmp_path / "zeros"))


def test_round_trip_through_parse_is_a_metainfo(tmp_path: Path) -> None:
    _write(tmp_path / "x", 1, 1)
    meta = parse_torrent(create_torrent(str(tmp_path / "x")))
    assert isinstance(meta, Metainfo) and meta.num_pieces == 1
