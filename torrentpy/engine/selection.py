"""Which files of a torrent to download, at which priority, and whether in order (sequential mode).

File indices here are 0-based over the payload files, padding files skipped: the order of the
snapshot's files and of `torrentpy info --files` (which the command line numbers from 1). BEP 53's
``so=`` counts every entry of the info dictionary's file list, so it is translated at ``bind``.
Priorities are Transmission's: -1 low, 0 normal, 1 high.

Changes made before the metadata is known (a magnet, or a torrent not started yet) are kept and
replayed on ``bind``, after the selection saved in the resume file: what the user asks now wins.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torrentpy.engine.priority import LEVEL_NORMAL, LEVEL_SKIP
from torrentpy.engine.state import TorrentState
from torrentpy.metainfo import Metainfo
from torrentpy.storage.layout import Layout

if TYPE_CHECKING:
    from torrentpy.engine.download import Downloader
    from torrentpy.engine.peer import Peer
    from torrentpy.engine.picker import PiecePicker
    from torrentpy.engine.upload import Uploader
    from torrentpy.storage.files import Storage
    from torrentpy.storage.resume import ResumeState

__all__ = [
    "PRIORITY_HIGH",
    "PRIORITY_LOW",
    "PRIORITY_NORMAL",
    "FileChoice",
    "FileSelection",
    "SelectionControls",
    "SelectionError",
]

log = logging.getLogger("torrentpy")

PRIORITY_LOW = -1
PRIORITY_NORMAL = 0
PRIORITY_HIGH = 1
_PRIORITIES = (PRIORITY_LOW, PRIORITY_NORMAL, PRIORITY_HIGH)

class SelectionError(ValueError):
    """A file index or priority that does not fit the torrent; the message is one line."""


@dataclass(frozen=True, slots=True)
class FileChoice:
    wanted: bool
    priority: int


class FileSelection:
    def __init__(self, *, info_only: Collection[int] | None = None) -> None:
        self._info_only = info_only  # BEP 53 so=: indices into the info dictionary's file list
        self._ops: list[tuple[str, tuple[int, ...], int]] = []  # changes to replay at bind
        self._final = False
        self._sequential: bool | None = None  # None: not set by the user (the saved value stands)
        self.wanted: list[bool] = []
        self.priority: list[int] = []
        self._payload: list[int] = []  # payload index -> index in meta.files
        self.warnings: list[str] = []

    # --- changes ----------------------------------------------------------------------------------

    @property
    def bound(self) -> bool:
        return self._final

    @property
    def sequential(self) -> bool:
        return bool(self._sequential)

    @sequential.setter
    def sequential(self, on: bool) -> None:
        self._sequential = bool(on)

    def set_wanted(self, indices: Iterable[int], wanted: bool) -> None:
        self._change("wanted", tuple(indices), int(bool(wanted)))

    def set_priority(self, indices: Iterable[int], priority: int) -> None:
        if priority not in _PRIORITIES:
            raise SelectionError(f"priority {priority} is not -1 (low), 0 (normal) or 1 (high)")
        self._change("priority", tuple(indices), priority)

    def only(self, indices: Iterable[int]) -> None:
        """Download exactly these files (``add --only``)."""
        self._change("only", tuple(indices), 1)

    def _change(self, kind: str, indices: tuple[int, ...], value: int) -> None:
        if self._payload:
            self._apply(kind, indices, value)  # raises before anything is kept
        if not self._final:
            self._ops.append((kind, indices, value))

    def _apply(self, kind: str, indices: tuple[int, ...], value: int) -> None:
        n = len(self._payload)
        bad = [i for i in indices if not 0 <= i < n]
        if bad:
            raise SelectionError(f"file {bad[0] + 1} does not exist: the torrent has {n} files")
        if kind == "only":
            self.wanted = [False] * n
        for i in indices:
            if kind == "priority":
                self.priority[i] = value
            else:
                self.wanted[i] = bool(value)

    # --- binding to the metadata ------------------------------------------------------------------

    def bind(self, meta: Metainfo, saved: bytes | None = None, saved_sequential: bool | None = None, *,
             final: bool = True) -> None:
        """Build the per-file state: all wanted at normal priority, then the saved selection, then BEP
        53's so=, then every change made so far. A change that does not fit the torrent (a magnet's
        --only naming file 9 of 3) is dropped with a warning rather than failing the download."""
        self._payload = [i for i, f in enumerate(meta.files) if not f.padding]
        n = len(self._payload)
        self.wanted = [True] * n
        self.priority = [PRIORITY_NORMAL] * n
        self.warnings = []
        if saved is not None and len(saved) == n and all(b <= LEVEL_NORMAL + 1 for b in saved):
            for i, b in enumerate(saved):
                self.wanted[i] = b != LEVEL_SKIP
                self.priority[i] = b - LEVEL_NORMAL if b != LEVEL_SKIP else PRIORITY_NORMAL
        if self._sequential is None and saved_sequential is not None:
            self._sequential = saved_sequential
        if self._info_only is not None:
            position = {m: k for k, m in enumerate(self._payload)}
            chosen = [position[i] for i in self._info_only if i in position]
            if chosen:  # an so= naming no real file would select nothing: ignore it instead
                self.wanted = [False] * n
                for k in chosen:
                    self.wanted[k] = True
        for kind, indices, value in self._ops:
            try:
                self._apply(kind, indices, value)
            except SelectionError as exc:  # e.g. a magnet's --only naming a file it does not have
                log.warning("file selection of %s ignored: %s", meta.name, exc)
                self.warnings.append(str(exc))
        if final:
            self._final = True
            self._ops.clear()

    def record(self) -> bytes | None:
        """One byte per payload file for the resume file: 0 unwanted, else priority + 2."""
        if not self._payload:
            return None
        return bytes(LEVEL_SKIP if not w else p + LEVEL_NORMAL for w, p in zip(self.wanted, self.priority,
                                                                               strict=True))

    def unwanted_files(self) -> set[int]:
        """Indices into meta.files of the files not to create."""
        return {m for k, m in enumerate(self._payload) if not self.wanted[k]}

    def choices(self) -> list[FileChoice]:
        return [FileChoice(w, p) for w, p in zip(self.wanted, self.priority, strict=True)]

    def piece_levels(self, layout: Layout) -> bytes | None:
        """The picker's per-piece levels (engine/priority.py), or None when every file is wanted at the
        same priority: a piece takes the highest level of the wanted files it holds bytes of."""
        if all(self.wanted) and len(set(self.priority)) <= 1:
            return None
        levels = bytearray(layout.num_pieces)
        for k, m in enumerate(self._payload):
            if not self.wanted[k]:
                continue
            level = self.priority[k] + LEVEL_NORMAL
            for p in layout.piece_range_of_file(m):
                if levels[p] < level:
                    levels[p] = level
        return bytes(levels)


class SelectionControls:
    """The file-selection part of Torrent's API, mixed into engine/torrent.py's Torrent (which sets the
    attributes below): the daemon's torrent-set and the command line call these at any time."""

    selection: FileSelection
    meta: Metainfo | None
    picker: PiecePicker | None
    state: str
    seeding_since: float | None
    resume_dirty: bool
    downloader: Downloader
    uploader: Uploader

    def set_files_wanted(self, indices: Iterable[int], wanted: bool) -> None:
        """Indices over the snapshot's files (0-based). SelectionError names a file that does not exist."""
        self.selection.set_wanted(indices, wanted)
        self._selection_changed()

    def set_files_priority(self, indices: Iterable[int], priority: int) -> None:
        """Transmission's priorities: -1 low, 0 normal, 1 high."""
        self.selection.set_priority(indices, priority)
        self._selection_changed()

    @property
    def sequential(self) -> bool:
        return self.selection.sequential

    @sequential.setter
    def sequential(self, on: bool) -> None:
        self.selection.sequential = on
        self._selection_changed()

    def _bind_selection(self, saved: ResumeState | None) -> None:
        """The metadata and the resume file are in: the saved choice, then every change since, apply."""
        assert self.meta is not None
        self.selection.bind(self.meta, *((saved.selection, saved.sequential) if saved else ()))
        self._selection_changed()

    def _selection_changed(self) -> None:
        """Hand the choice to the picker; a download it completes is complete, a seed that now wants
        more files downloads again."""
        picker, storage = self.picker, self.storage
        if picker is None or storage is None or not self.selection.bound:
            return  # applied once the metadata and the resume file are in
        was_done = picker.done()
        picker.set_piece_levels(self.selection.piece_levels(storage.layout))
        picker.sequential = self.selection.sequential
        self.resume_dirty = True
        if not was_done and picker.done() and self.state == TorrentState.DOWNLOADING:
            self._on_download_complete(announce=True)
        elif was_done and not picker.done() and self.state == TorrentState.SEEDING \
                and self.uploader.leaving_since is None:
            self.state, self.seeding_since = TorrentState.DOWNLOADING, None
        for peer in list(self.peers.values()):
            self.downloader.update_interest(peer)

    # Provided by Torrent.
    @property
    def storage(self) -> Storage | None:
        raise NotImplementedError

    @property
    def peers(self) -> dict[tuple[str, int], Peer]:
        raise NotImplementedError

    def _on_download_complete(self, *, announce: bool) -> None:
        raise NotImplementedError

