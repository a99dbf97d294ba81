"""The picker's values: blocks, what a received block means, and the bookkeeping of one partial piece."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import NamedTuple

DEFAULT_BLOCK_SIZE = 16384

# Block states inside a partial piece.
FREE = 0
REQUESTED = 1
RECEIVED = 2

PeerKey = Hashable


class Block(NamedTuple):
    """One REQUEST's worth of a piece: ``begin`` is the byte offset inside the piece.

    A NamedTuple rather than a dataclass because the engine creates and hashes one per 16 KiB block;
    the field named like tuple.index (the wire protocol's name) needs the type: ignore."""

    index: int  # type: ignore[assignment]
    begin: int
    length: int


@dataclass(frozen=True, slots=True)
class BlockResult:
    """What ``on_block`` concluded about a received block.

    ``piece_complete``: every block of the piece is now in; hash it, then call ``piece_passed`` or
    ``piece_failed``. ``duplicate``: we already had the block; drop the data. ``cancel``: other peers that
    still have this block outstanding (endgame); send them CANCEL. ``unrequested``: this peer sent a
    block we never asked it for (the data is still accepted when we lacked it)."""

    piece_complete: bool = False
    duplicate: bool = False
    cancel: tuple[tuple[PeerKey, Block], ...] = ()
    unrequested: bool = False


# The common results are immutable, so share them instead of building one per block.
DUPLICATE = (BlockResult(duplicate=True), BlockResult(duplicate=True, unrequested=True))
ACCEPTED = (
    (BlockResult(), BlockResult(unrequested=True)),
    (BlockResult(piece_complete=True), BlockResult(piece_complete=True, unrequested=True)),
)


class PieceProgress(NamedTuple):
    index: int  # type: ignore[assignment]
    blocks: int
    received: int
    requested: int


class PartialPiece:
    """Per-block bookkeeping of one partial piece."""

    __slots__ = ("contributors", "downloaders", "free", "index", "num_blocks", "received", "requesters",
                 "state")

    def __init__(self, index: int, num_blocks: int) -> None:
        self.index = index
        self.num_blocks = num_blocks
        self.state = bytearray(num_blocks)  # FREE / REQUESTED / RECEIVED per block
        self.requesters: dict[int, list[PeerKey]] = {}  # block -> peers with it outstanding
        self.downloaders: dict[PeerKey, int] = {}  # peer -> outstanding blocks in this piece
        self.contributors: set[PeerKey] = set()  # peers whose data is in the piece (for hash-fail strikes)
        self.received = 0
        self.free = num_blocks


def most_complete_first(p: PartialPiece) -> tuple[int, int]:
    return (-p.received, -(p.num_blocks - p.free))
