"""Hash-check pieces on disk with the compiled core.

Pieces are checked in one parallel pass per group of files (`SpanCheck`), with the GIL released: every
core pulls the next piece from a shared counter, reads it with pread through a small buffer of its own
and hashes it, so a thread that loses its core for a moment does not hold the others up at the end of
a batch, and memory stays a few buffers however big the files are. A piece may span files and padding.
The calling thread meanwhile reports progress and passes on cancellation. Pieces whose files are
missing or too short fail without being read.
"""

from __future__ import annotations

import array
import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

from torrentpy._core import Bitfield, SpanCheck
from torrentpy.metainfo import Metainfo
from torrentpy.storage.files import Storage

# A pass holds a descriptor of each file it touches: at most this many, so a torrent of many small
# files does not run the process out of descriptors. Also bounds a pass's tables.
MAX_PASS_FILES = 64
MAX_PASS_PIECES = 1 << 16
# Bytes the kernel is asked to read ahead of the pieces being hashed (matters when not cached); at
# least two groups of 16 pieces per core, as each core hashes 16 pieces at once where it can.
READ_AHEAD_BYTES = 64 * 1024 * 1024
# Seconds between progress reports (and cancellation checks) during a pass.
POLL_SECONDS = 0.05


def present_pieces(storage: Storage, pieces: Iterable[int] | None = None) -> list[int]:
    """Pieces whose every (non-padding) byte lies inside a file that exists and is long enough."""
    meta = storage.meta
    layout = storage.layout
    sizes: list[int | None] = []
    for i, f in enumerate(meta.files):
        if f.padding:
            sizes.append(f.length)
            continue
        st = storage.stat_file(i)
        sizes.append(st.st_size if st is not None else None)
    out = []
    for p in range(meta.num_pieces) if pieces is None else pieces:
        for seg in layout.segments(p):
            size = sizes[seg.file_index]
            if size is None or size < seg.file_offset + seg.length:
                break
        else:
            out.append(p)
    return out


def _passes(storage: Storage, pieces: list[int]) -> list[tuple[list[int], set[int]]]:
    """`pieces` cut into runs that touch at most MAX_PASS_FILES files and MAX_PASS_PIECES pieces,
    each with the files it touches."""
    out: list[tuple[list[int], set[int]]] = []
    current: list[int] = []
    files: set[int] = set()
    for p in pieces:
        touched = {seg.file_index for seg in storage.layout.segments(p) if not seg.padding}
        if current and (len(files | touched) > MAX_PASS_FILES or len(current) == MAX_PASS_PIECES):
            out.append((current, files))
            current, files = [], set()
        current.append(p)
        files |= touched
    if current:
        out.append((current, files))
    return out


class _Progress:
    """Calls `progress` with the running total, only when it moved on."""

    def __init__(self, progress: Callable[[int], None] | None) -> None:
        self.progress = progress
        self.reported = -1

    def __call__(self, n: int) -> None:
        if self.progress is not None and n != self.reported:
            self.reported = n
            self.progress(n)


def _check_pass(
    storage: Storage, meta: Metainfo, pieces: list[int], fds: dict[int, int]
) -> tuple[SpanCheck, list[int]]:
    """The SpanCheck for those of `pieces` whose files are open, and those pieces."""
    slots: dict[int, int] = {}
    starts = array.array("q", [0])
    which = array.array("i")
    offsets = array.array("q")
    lengths = array.array("q")
    expected = bytearray()
    checked: list[int] = []
    for p in pieces:
        segments = storage.layout.segments(p)
        if any(not seg.padding and seg.file_index not in fds for seg in segments):
            continue  # a file could not be opened: the piece fails
        for seg in segments:
            if seg.padding:
                which.append(-1)
            else:
                which.append(slots.setdefault(seg.file_index, len(slots)))
            offsets.append(seg.file_offset)
            lengths.append(seg.length)
        starts.append(len(which))
        expected += meta.piece_hash(p)
        checked.append(p)
    return SpanCheck([fds[i] for i in slots], starts, which, offsets, lengths, expected), checked


def _run_pass(check: SpanCheck, report: _Progress, handled: int, threads: int, ahead: int,
              cancel: threading.Event | None, worker: concurrent.futures.ThreadPoolExecutor) -> list[bool]:
    """Run the pass on the worker thread; this one reports progress and passes on cancellation."""
    job = worker.submit(check.run, threads, ahead)
    try:
        while True:
            try:
                return job.result(timeout=POLL_SECONDS)
            except concurrent.futures.TimeoutError:
                if cancel is not None and cancel.is_set():
                    check.cancel()
                report(handled + check.done)
    finally:
        if not job.done():  # an exception here (a progress callback's, an interrupt): stop the pass
            check.cancel()
            concurrent.futures.wait([job])


def check_pieces(
    storage: Storage,
    meta: Metainfo,
    *,
    pieces: Iterable[int] | None = None,
    progress: Callable[[int], None] | None = None,
    threads: int = 0,
    cancel: threading.Event | None = None,
) -> Bitfield:
    """Hash-check `pieces` (all by default) and return the bitfield of those that are good.

    `cancel`, when set by another thread, stops the check within about POLL_SECONDS
    (CheckCancelled): a stop request must not wait for a whole torrent to be hashed.

    `progress(n)` is called with the cumulative number of pieces handled so far (good or not; pieces
    whose files are missing or short count at once), suitable for
    `rich.progress.Progress.update(task, completed=n)`. `threads=0` lets the core pick (all cores).
    """
    if storage.meta.info_hash != meta.info_hash:
        raise ValueError("storage belongs to another torrent")
    num = meta.num_pieces
    order = list(range(num)) if pieces is None else sorted(set(pieces))
    for p in order:
        if not 0 <= p < num:
            raise IndexError(f"piece {p} out of range (torrent has {num})")
    have = Bitfield(num)
    readable = present_pieces(storage, order)
    report = _Progress(progress)
    handled = len(order) - len(readable)
    if handled:
        report(handled)
    ahead = max(32 * (threads or os.cpu_count() or 1), READ_AHEAD_BYTES // meta.piece_length)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="torrentpy-check") as worker:
        for group, files in _passes(storage, readable):
            if cancel is not None and cancel.is_set():
                raise CheckCancelled("piece check cancelled")
            with storage.reading(sorted(files)) as fds:
                check, checked = _check_pass(storage, meta, group, fds)
                results = _run_pass(check, report, handled, threads, ahead, cancel, worker)
            if cancel is not None and cancel.is_set():
                raise CheckCancelled("piece check cancelled")
            for p, good in zip(checked, results, strict=True):
                if good:
                    have.set(p)
            handled += len(group)
            report(handled)
    report(len(order))
    return have


async def check_pieces_async(
    storage: Storage,
    meta: Metainfo,
    *,
    pieces: Iterable[int] | None = None,
    progress: Callable[[int], None] | None = None,
    threads: int = 0,
) -> Bitfield:
    """`check_pieces` in a worker thread; `progress` is called on the event loop's thread."""
    loop = asyncio.get_running_loop()
    report = None
    if progress is not None:
        callback = progress

        def report(n: int) -> None:
            loop.call_soon_threadsafe(callback, n)

    cancel = threading.Event()
    try:
        have = await asyncio.to_thread(check_pieces, storage, meta, pieces=pieces, progress=report,
                                       threads=threads, cancel=cancel)
    except asyncio.CancelledError:
        cancel.set()  # the worker thread stops after its current batch
        raise
    await asyncio.sleep(0)  # let the last progress call run before the caller goes on
    return have


class CheckCancelled(Exception):
    """A piece check was stopped before it finished."""


class FileStatus(NamedTuple):
    relpath: str
    size: int
    done_bytes: int
    complete: bool


@dataclass(frozen=True)
class VerifyReport:
    have: Bitfield
    good_pieces: int
    total_pieces: int
    files: list[FileStatus]  # padding files left out
    complete: bool


def verify(
    meta: Metainfo,
    root: str | os.PathLike[str],
    progress: Callable[[int], None] | None = None,
    *,
    threads: int = 0,
) -> VerifyReport:
    """Check a download folder against the torrent without changing anything on disk."""
    with Storage(meta, root) as storage:
        have = check_pieces(storage, meta, progress=progress, threads=threads)
        done = storage.layout.file_done_bytes(have)
        files = [
            FileStatus(storage.relpath(i), f.length, done[i],
                       done[i] == f.length and (f.length > 0 or storage.stat_file(i) is not None))
            for i, f in enumerate(meta.files)
            if not f.padding
        ]
    good = have.count()
    return VerifyReport(have=have, good_pieces=good, total_pieces=meta.num_pieces, files=files,
                        complete=good == meta.num_pieces and all(f.complete for f in files))
