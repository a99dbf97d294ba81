from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.storage.builders import build
from torrentpy._core import Bitfield
from torrentpy.errors import StorageError
from torrentpy.storage.layout import Layout, Segment


def test_piece_spans_three_files_across_an_empty_one() -> None:
    b = build([("a", 5), ("empty", 0), ("b", 2), ("c", 10)], 8)
    lay = Layout(b.meta)
    assert lay.segments(0) == [
        Segment(0, 0, 5, 0, False),
        Segment(2, 0, 2, 5, False),
        Segment(3, 0, 1, 7, False),
    ]
    assert lay.segments(1) == [Segment(3, 1, 8, 0, False)]
    assert lay.segments(2) == [Segment(3, 9, 1, 0, False)]  # last piece: 17 - 16 bytes
    assert lay.files_of_piece(0) == [0, 2, 3]
    assert lay.piece_range_of_file(1) == range(0)
    assert lay.piece_range_of_file(3) == range(0, 3)


def test_sub_range_of_a_piece() -> None:
    b = build([("a", 5), ("b", 2), ("c", 10)], 8)
    lay = Layout(b.meta)
    assert lay.segments(0, 4, 3) == [Segment(0, 4, 1, 4, False), Segment(1, 0, 2, 5, False)]
    assert lay.segments(0, 7) == [Segment(2, 0, 1, 7, False)]
    with pytest.raises(IndexError):
        lay.segments(0, 4, 5)
    with pytest.raises(IndexError):
        lay.segments(3)


def test_padding_segments_are_marked_and_not_files_of_the_piece() -> None:
    b = build([("a", 5), (".pad/3", 3, "p"), ("b", 12)], 8)
    lay = Layout(b.meta)
    assert lay.segments(0) == [Segment(0, 0, 5, 0, False), Segment(1, 0, 3, 5, True)]
    assert lay.files_of_piece(0) == [0]
    assert lay.files_of_piece(1) == [2]


def test_file_done_bytes() -> None:
    b = build([("a", 5), ("empty", 0), ("b", 2), ("c", 10)], 8)
    lay = Layout(b.meta)
    assert lay.file_done_bytes(Bitfield.from_string("100")) == [5, 0, 2, 1, ]
    assert lay.file_done_bytes(Bitfield.from_string("011")) == [0, 0, 0, 9]
    assert lay.file_done_bytes(Bitfield.from_string("111")) == [5, 0, 2, 10]
    with pytest.raises(ValueError):
        lay.file_done_bytes(Bitfield(4))


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 40), min_size=1, max_size=8).filter(lambda ls: sum(ls) > 0),
    piece_length=st.integers(1, 33),
    data=st.data(),
)
def test_segments_tile_the_payload(lengths: list[int], piece_length: int, data: st.DataObject) -> None:
    b = build([(f"f{i}", n) for i, n in enumerate(lengths)], piece_length)
    lay = Layout(b.meta)
    piece = data.draw(st.integers(0, b.meta.num_pieces - 1))
    size = b.meta.piece_size(piece)
    begin = data.draw(st.integers(0, size))
    length = data.draw(st.integers(0, size - begin))
    segs = lay.segments(piece, begin, length)
    assert sum(s.length for s in segs) == length
    got = b"".join(b.contents[s.file_index][s.file_offset : s.file_offset + s.length] for s in segs)
    start = piece * piece_length + begin
    assert got == b.payload[start : start + length]
    assert all(s.length > 0 and lengths[s.file_index] > 0 for s in segs)
    pos = begin
    for s in segs:
        assert s.piece_offset == pos
        pos += s.length
    # Every piece a file's range names really holds bytes of that file, and no other does.
    for i in range(len(lengths)):
        for p in range(b.meta.num_pieces):
            assert (i in lay.files_of_piece(p)) == (p in lay.piece_range_of_file(i))
    assert sum(lay.file_done_bytes(Bitfield.full(b.meta.num_pieces))) == sum(lengths)


def test_abs_path_stays_inside_root(root: Path) -> None:
    b = build([("d/a", 4)], 4)
    lay = Layout(b.meta)
    assert lay.abs_path(0, root) == os.path.join(os.path.realpath(root), "t", "d", "a")


def test_abs_path_refuses_a_symlink_leading_outside(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "t").symlink_to(outside)
    lay = Layout(build([("d/a", 4)], 4).meta)
    with pytest.raises(StorageError, match="outside the download folder"):
        lay.abs_path(0, root)


def test_abs_path_refuses_unsafe_components_even_if_metainfo_let_them_through(root: Path) -> None:
    meta = build([("a", 4)], 4).meta
    evil = dataclasses.replace(meta.files[0], path=("t", "..", "..", "etc", "passwd"))
    lay = Layout(dataclasses.replace(meta, files=(evil,)))
    with pytest.raises(StorageError, match="unsafe path"):
        lay.abs_path(0, root)
