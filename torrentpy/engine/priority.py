"""Piece priorities for the picker: which pieces a file selection skips, which come first, and the
read-ahead window of sequential download.

Levels are per piece: 0 skip (only unwanted files in it), 1 low, 2 normal, 3 high. A piece shared by
files of different priorities takes the highest, and a piece shared by a wanted and an unwanted file
is downloaded (the unwanted file's bytes in it get written too), as libtorrent and Transmission do.
Pure data: the picker calls in, nothing here reads the clock or does I/O.
"""

from __future__ import annotations

from collections.abc import Iterator

from torrentpy._core import Bitfield

__all__ = [
    "LEVEL_HIGH",
    "LEVEL_LOW",
    "LEVEL_NORMAL",
    "LEVEL_SKIP",
    "PiecePriorities",
    "sequential_candidates",
    "sequential_window",
]

LEVEL_SKIP = 0
LEVEL_LOW = 1
LEVEL_NORMAL = 2
LEVEL_HIGH = 3

# Sequential download starts pieces only this far past the first missing one, so a player reading
# the file front to back finds the next bytes soon; a few MiB keeps a fast peer's queue busy.
SEQUENTIAL_WINDOW_BYTES = 8 << 20
# ...but at least a few pieces (big pieces) and at most this many (tiny pieces: each pick scans it).
SEQUENTIAL_WINDOW_MIN_PIECES = 4
SEQUENTIAL_WINDOW_MAX_PIECES = 64


def sequential_window(piece_length: int) -> int:
    """The read-ahead window of sequential mode, in pieces."""
    return max(SEQUENTIAL_WINDOW_MIN_PIECES,
               min(SEQUENTIAL_WINDOW_MAX_PIECES, SEQUENTIAL_WINDOW_BYTES // max(1, piece_length)))


class PiecePriorities:
    """The picker's view of a file selection.

    ``skip``: pieces not to download. ``needless``: had or skipped, the pieces a peer cannot interest
    us with. ``masks``: one bitfield per level present, highest first, or empty when every wanted piece
    has the same level (then the picker's plain rarest-first path runs, with its cache)."""

    __slots__ = ("cursor", "masks", "needless", "skip")

    def __init__(self, num_pieces: int, have: Bitfield) -> None:
        self.skip = Bitfield(num_pieces)
        self.needless = have.copy()
        self.masks: list[Bitfield] = []
        self.cursor = 0  # no wanted piece is missing below this one (sequential mode's window start)

    def set_levels(self, levels: bytes | None, have: Bitfield) -> None:
        n = len(have)
        if levels is not None and len(levels) != n:
            raise ValueError(f"{len(levels)} piece levels for {n} pieces")
        self.skip = Bitfield(n)
        self.masks = []
        if levels is not None:
            present = sorted({lv for lv in levels if lv != LEVEL_SKIP}, reverse=True)
            if LEVEL_SKIP in levels:
                self.skip = Bitfield.from_string("".join("1" if lv == LEVEL_SKIP else "0" for lv in levels))
            if len(present) > 1:
                for level in present:
                    self.masks.append(
                        Bitfield.from_string("".join("1" if lv == level else "0" for lv in levels)))
        self.needless = have | self.skip
        self.cursor = 0

    def passed(self, index: int) -> bool:
        """A piece came in; True when it was one we wanted (it counts against what is left)."""
        wanted = not self.needless.get(index)
        self.needless.set(index)
        return wanted

    def classes(self, fresh: Bitfield, *, sequential: bool) -> Iterator[Bitfield]:
        """Pools of startable pieces, the picker trying each in turn: the highest level first. Sequential
        mode orders by position alone (a player needs the next bytes whatever their priority)."""
        if not fresh.any():
            return
        if sequential or not self.masks:
            yield fresh
            return
        for mask in self.masks:
            pool = fresh & mask
            if pool.any():
                yield pool

    def first_needed(self) -> int:
        """The first wanted piece still missing (the number of pieces when there is none)."""
        needless, n = self.needless, len(self.needless)
        i = self.cursor
        while i < n and needless.get(i):
            i += 1
        self.cursor = i
        return i


def sequential_candidates(pr: PiecePriorities, peer: Bitfield, fresh: Bitfield, count: int,
                          num_pieces: int, window: int) -> list[int]:
    """Up to ``count`` pieces to start, lowest index first, inside the window that begins at the first
    missing wanted piece. A peer with nothing we need in the window may still start pieces past it, in
    order, rather than idle (a partial seed would otherwise never be asked for anything)."""
    start = pr.first_needed()
    end = min(num_pieces, start + window)
    out = [i for i in range(start, end) if fresh.get(i)][:count]
    if out:
        return out
    needless = pr.needless
    if any(peer.get(i) and not needless.get(i) for i in range(start, end)):
        return []  # it can help inside the window, just not with a new piece: share blocks instead
    for i in fresh:
        if i >= end:
            out.append(i)
            if len(out) >= count:
                break
    return out
