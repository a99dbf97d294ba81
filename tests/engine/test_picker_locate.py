"""PiecePicker._locate's fast path for full blocks accepts exactly what the general checks accept."""

from __future__ import annotations

import itertools
import random

import pytest

from torrentpy.engine.picker import Block, PiecePicker


def _reference(index: int, begin: int, length: int, *, num_pieces: int, piece_length: int, total: int,
               bs: int) -> int | None:
    if not 0 <= index < num_pieces:
        return None
    size = total - index * piece_length if index == num_pieces - 1 else piece_length
    b, rem = divmod(begin, bs)
    if rem or not 0 <= b < -(-size // bs) or length != min(bs, size - begin):
        return None
    return b


@pytest.mark.parametrize(("piece_length", "total"), [(64, 64 * 3 + 20), (56, 56 * 4), (16, 16 * 2 + 1)])
def test_locate_matches_the_general_checks(piece_length: int, total: int) -> None:
    bs = 16
    num_pieces = -(-total // piece_length)
    picker = PiecePicker(num_pieces, piece_length, total, block_size=bs, rng=random.Random(0))
    for index, begin, length in itertools.product(range(-1, num_pieces + 1), range(-16, piece_length + 17, 4),
                                                  range(-1, bs + 2)):
        want = _reference(index, begin, length, num_pieces=num_pieces, piece_length=piece_length, total=total,
                          bs=bs)
        if want is None:
            with pytest.raises(ValueError):
                picker._locate(Block(index, begin, length))
        else:
            assert picker._locate(Block(index, begin, length)) == want
