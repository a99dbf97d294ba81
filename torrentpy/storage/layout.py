"""Where each piece's bytes live on disk: the piece↔file map (no I/O except path checks).

A torrent's payload is its files concatenated in order; piece `i` covers payload bytes
`[i * piece_length, i * piece_length + piece_size(i))`. A piece may span many files; zero-length
files hold no bytes and so never appear in a segment. BEP 47 padding files do appear, marked
`padding=True`: they are zeros that are hashed but never stored.
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass

from torrentpy._core import Bitfield
from torrentpy.errors import StorageError
from torrentpy.metainfo import Metainfo


@dataclass(frozen=True, slots=True)
class Segment:
    """One contiguous run of a piece that lies in one file."""

    file_index: int
    file_offset: int  # where the run starts inside the file
    length: int
    piece_offset: int  # where the run starts inside the piece
    padding: bool


def _component_is_safe(part: str) -> bool:
    return part not in ("", ".", "..") and "/" not in part and "\\" not in part and "\x00" not in part


class Layout:
    """The piece↔file map of one torrent."""

    def __init__(self, meta: Metainfo) -> None:
        self.meta = meta
        self.piece_length = meta.piece_length
        self.num_pieces = meta.num_pieces
        self.total_length = meta.total_length
        # Only files that hold bytes take part in the lookup; bisect over their starts.
        self._nonempty = [i for i, f in enumerate(meta.files) if f.length > 0]
        self._starts = [meta.files[i].offset for i in self._nonempty]

    # --- piece → files ------------------------------------------------------

    def segments(self, piece: int, begin: int = 0, length: int | None = None) -> list[Segment]:
        """The file runs covering `length` bytes of `piece` from `begin` (whole rest of piece if None)."""
        if not 0 <= piece < self.num_pieces:
            raise IndexError(f"piece {piece} out of range (torrent has {self.num_pieces})")
        size = self.meta.piece_size(piece)
        if length is None:
            length = size - begin
        if begin < 0 or length < 0 or begin + length > size:
            raise IndexError(f"range {begin}+{length} is outside piece {piece} of {size} bytes")
        start = piece * self.piece_length + begin
        end = start + length
        files = self.meta.files
        out: list[Segment] = []
        k = bisect.bisect_right(self._starts, start) - 1
        pos = start
        while pos < end:
            f = files[self._nonempty[k]]
            file_end = f.offset + f.length
            run = min(end, file_end) - pos
            out.append(Segment(self._nonempty[k], pos - f.offset, run, pos - start + begin, f.padding))
            pos += run
            k += 1
        return out

    def files_of_piece(self, piece: int) -> list[int]:
        """Indices of the files on disk (padding excluded) that hold bytes of `piece`."""
        return [s.file_index for s in self.segments(piece) if not s.padding]

    def piece_range_of_file(self, file_index: int) -> range:
        """Pieces holding at least one byte of the file; empty for zero-length files."""
        f = self.meta.files[file_index]
        return self._piece_range(f.offset, f.length)

    def file_done_bytes(self, have: Bitfield) -> list[int]:
        """Verified bytes per file (index-aligned with `meta.files`)."""
        if len(have) != self.num_pieces:
            raise ValueError(f"bitfield has {len(have)} bits, torrent has {self.num_pieces} pieces")
        pl = self.piece_length
        out = []
        for f in self.meta.files:
            done = 0
            file_end = f.offset + f.length
            for p in self._piece_range(f.offset, f.length):
                if have[p]:
                    done += min(file_end, (p + 1) * pl) - max(f.offset, p * pl)
            out.append(done)
        return out

    def _piece_range(self, offset: int, length: int) -> range:
        if length == 0:
            return range(0)
        return range(offset // self.piece_length, (offset + length - 1) // self.piece_length + 1)

    # --- paths ----------------------------------------------------------------

    def relpath(self, file_index: int) -> str:
        return os.path.join(*self.meta.files[file_index].path)

    def abs_path(self, file_index: int, root: str | os.PathLike[str]) -> str:
        """The file's absolute path under `root`, verified (after resolving symlinks) to stay inside it.

        Metainfo already sanitises names; this is the second line of defence, so a bug there or a
        symlink planted under `root` still cannot make us touch a file elsewhere.
        """
        parts = self.meta.files[file_index].path
        relpath = "/".join(parts)
        if not all(_component_is_safe(p) for p in parts):
            raise StorageError(f"refusing unsafe path {relpath!r}")
        real_root = os.path.realpath(root)
        candidate = os.path.join(real_root, *parts)
        resolved = os.path.realpath(candidate)
        if os.path.commonpath([real_root, resolved]) != real_root or resolved == real_root:
            raise StorageError(f"refusing {relpath}: it resolves outside the download folder")
        return candidate
