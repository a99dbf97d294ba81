"""A tiny picture language for picker tests, after libtorrent's test_piece_picker.cpp.

    p = picker("2223333", have="1010100", partial="..3....")

- ``avail``: one digit per piece, how many of the background peers ``src0`` … ``src8`` have it.
- ``have``: ``1`` = verified piece.
- ``partial``: per piece ``.`` or a hex digit, a bitmask of blocks already received (bit j = block j),
  delivered by the peer ``"old"`` as unsolicited data.

Pieces are ``blocks`` blocks of ``BS`` bytes, so block offsets stay readable (0, 16, 32, …).
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Iterable

from torrentpy._core import Bitfield
from torrentpy.engine.picker import Block, PiecePicker

BS = 16
SOURCES = [f"src{i}" for i in range(9)]


def bits(picture: str) -> Bitfield:
    return Bitfield.from_string(picture)


def picker(avail: str, *, have: str | None = None, partial: str | None = None, blocks: int = 4,
           last_piece_length: int | None = None, seed: int = 0, random_first: int = 0,
           endgame_copies: int = 2, max_partial: int | None = None) -> PiecePicker:
    n = len(avail)
    piece_length = blocks * BS
    total = piece_length * (n - 1) + (last_piece_length if last_piece_length is not None else piece_length)
    p = PiecePicker(n, piece_length, total, block_size=BS, rng=random.Random(seed),
                    random_first=random_first, endgame_copies=endgame_copies, max_partial=max_partial)
    for j, key in enumerate(SOURCES):
        if any(int(c) > j for c in avail):
            p.add_peer(key, bits("".join("1" if int(c) > j else "0" for c in avail)))
    if have is not None:
        assert len(have) == n
        for i, c in enumerate(have):
            if c == "1":
                p.piece_passed(i)
    if partial is not None:
        assert len(partial) == n
        for i, c in enumerate(partial):
            if c in ". ":
                continue
            mask = int(c, 16)
            for b in range(p.blocks_in_piece(i)):
                if mask & (1 << b):
                    p.on_block("old", block(p, i, b))
    assert p.availability.counts() == [int(c) for c in avail]
    p.check_invariants()
    return p


def block(p: PiecePicker, index: int, b: int) -> Block:
    begin = b * p.block_size
    return Block(index, begin, min(p.block_size, p.piece_size(index) - begin))


def peer(p: PiecePicker, key: Hashable, has: str) -> Hashable:
    """Connect a peer with the pieces drawn in ``has`` (which also raises availability)."""
    p.add_peer(key, bits(has))
    return key


def pieces_of(blocks: Iterable[Block]) -> list[int]:
    """Piece indexes in the order they first appear."""
    out: list[int] = []
    for blk in blocks:
        if blk.index not in out:
            out.append(blk.index)
    return out


def blocks_of(blocks: Iterable[Block]) -> list[tuple[int, int]]:
    """(piece, block number) pairs: easier to read than byte offsets."""
    return [(blk.index, blk.begin // BS) for blk in blocks]


def picture(p: PiecePicker) -> str:
    """Piece states: ``H`` have, ``.`` untouched, ``*`` all blocks in (awaiting hash), ``p`` partial."""
    chars = []
    partial = {pp.index: pp for pp in p.partial_pieces()}
    for i in range(p.num_pieces):
        if p.have.get(i):
            chars.append("H")
        elif i in partial:
            chars.append("*" if partial[i].received == partial[i].blocks else "p")
        else:
            chars.append(".")
    return "".join(chars)


def deliver(p: PiecePicker, key: Hashable, blocks: Iterable[Block]) -> list[int]:
    """Feed blocks from ``key``; pass every completed piece. Returns the completed piece indexes."""
    done = []
    for blk in blocks:
        if p.on_block(key, blk).piece_complete:
            p.piece_passed(blk.index)
            done.append(blk.index)
    return done
