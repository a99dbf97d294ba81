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
# Bytes the kernel is asked to read ahead of the pieces being hashed (matters when not cached): enough
# to keep every core's next pieces in flight while the disk catches up.
READ_AHEAD_BYTES = 64 * 1024 * 1024
# Seconds between progress reports (and cancellation checks) during a pass.
POLL_SECONDS = 0.05


def present_pieces(storage: Storage, pieces: Iterable[int] | None = None) -> list[int]:
    """Pieces whose every (non-padding) byte lies inside a file that exists and is long enough."""
    meta = storage.meta
    pl = meta.piece_length
    unreadable: set[int] = set()
    for i, f in enumerate(meta.files):
        if f.padding or f.length == 0:
            continue
        st = storage.stat_file(i)
        size = st.st_size if st is not None else 0
        if size < f.length:  # the pieces holding bytes [size, length) of the file cannot be good
            unreadable.update(range((f.offset + size) // pl, (f.offset + f.length - 1) // pl + 1))
    return [p for p in (range(meta.num_pieces) if pieces is None else pieces) if p not in unreadable]


class _Pass(NamedTuple):
    """Pieces checked in one SpanCheck, with its tables; `files[k]` is span file slot k."""

    pieces: list[int]
    files: list[int]
    starts: array.array[int]
    which: array.array[int]
    offsets: array.array[int]
    lengths: array.array[int]
    expected: bytes


def _tables() -> tuple[array.array[int], array.array[int], array.array[int], array.array[int]]:
    """Empty (piece starts, span files, span offsets, span lengths)."""
    return array.array("q", [0]), array.array("i"), array.array("q"), array.array("q")


def _plan(meta: Metainfo, pieces: list[int], max_files: int | None = None) -> list[_Pass]:
    """`pieces` (ascending) as passes touching at most `max_files` (default MAX_PASS_FILES) files and
    MAX_PASS_PIECES pieces.

    With 16 KiB pieces a 1 GiB torrent has 65,536 of them and the tables are built in Python, so runs
    of pieces inside one file are added in bulk, and no per-piece objects are made (Layout.segments
    per piece made this 0.3 s of a 0.5 s check)."""
    pl, total, hashes, num = meta.piece_length, meta.total_length, meta.pieces, meta.num_pieces
    max_files = MAX_PASS_FILES if max_files is None else max(1, max_files)
    files = [(f.offset, f.offset + f.length, i, f.padding) for i, f in enumerate(meta.files) if f.length]
    out: list[_Pass] = []
    slots: dict[int, int] = {}
    current: list[int] = []
    starts, which, offsets, lengths = _tables()
    digests: list[bytes] = []

    def room(new_files: int) -> None:
        """Start a new pass if this one cannot take another piece with `new_files` files not in it yet."""
        nonlocal slots, current, digests, starts, which, offsets, lengths
        if current and (len(slots) + new_files > max_files or len(current) >= MAX_PASS_PIECES):
            out.append(_Pass(current, list(slots), starts, which, offsets, lengths, b"".join(digests)))
            slots, current, digests = {}, [], []
            starts, which, offsets, lengths = _tables()

    k = 0
    i = 0
    while i < len(pieces):
        p = pieces[i]
        start = p * pl
        while files[k][1] <= start:
            k += 1
        lo, hi, index, padding = files[k]
        # Pieces p, p+1, ... that are in `pieces` and lie wholly in this (real) file: in bulk.
        last = num if hi == total else hi // pl  # pieces below `last` end inside the file
        run = 0
        if not padding:
            limit = min(last - p, len(pieces) - i)
            while run < limit and pieces[i + run] == p + run:
                run += 1
        if run:
            room(0 if index in slots else 1)
            run = min(run, MAX_PASS_PIECES - len(current))
            slot = slots.setdefault(index, len(slots))
            starts.extend(range(len(which) + 1, len(which) + run + 1))  # one span per piece
            which.extend(array.array("i", [slot]) * run)
            offsets.extend(range(start - lo, start - lo + run * pl, pl))
            lengths.extend(array.array("q", [pl]) * run)
            if p + run == num:
                lengths[-1] = total - (num - 1) * pl
            digests.append(hashes[p * 20 : (p + run) * 20])
            current.extend(range(p, p + run))
            i += run
            continue
        # A piece across files or padding: span by span.
        end = min(start + pl, total)
        spans = []
        j, pos = k, start
        while pos < end:
            lo, hi, index, padding = files[j]
            stop = min(end, hi)
            spans.append((-1 if padding else index, pos - lo, stop - pos))
            pos = stop
            j += 1
        room(len({index for index, _, _ in spans if index >= 0 and index not in slots}))
        for index, offset, length in spans:
            which.append(slots.setdefault(index, len(slots)) if index >= 0 else -1)
            offsets.append(offset)
            lengths.append(length)
        starts.append(len(which))
        digests.append(hashes[p * 20 : p * 20 + 20])
        current.append(p)
        i += 1
    if current:
        out.append(_Pass(current, list(slots), starts, which, offsets, lengths, b"".join(digests)))
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


def _check_pass(storage: Storage, meta: Metainfo, plan: _Pass, have: Bitfield, report: _Progress, handled: int,
                threads: int, ahead: int, cancel: threading.Event | None,
                worker: concurrent.futures.ThreadPoolExecutor) -> tuple[list[int], int]:
    """Check one pass; returns the pieces put off for want of descriptors, and how many files were open."""
    deferred: list[int] = []
    with storage.reading(plan.files) as (fds, no_descriptor):
        if len(fds) < len(plan.files):  # some files cannot be opened: their pieces fail, check the rest
            closed = set(plan.files) - set(fds)
            rest = []
            for p in plan.pieces:
                touched = {seg.file_index for seg in storage.layout.segments(p) if not seg.padding}
                if touched & no_descriptor and not touched & (closed - no_descriptor):
                    deferred.append(p)  # the file exists: the process is short of descriptors (ulimit -n)
                elif not touched & closed:
                    rest.append(p)
            plan = _plan(meta, rest)[0] if rest else _Pass([], [], *_tables(), b"")
        check = SpanCheck([fds[i] for i in plan.files], plan.starts, plan.which, plan.offsets, plan.lengths,
                          plan.expected)
        results = _run_pass(check, report, handled, threads, ahead, cancel, worker)
    if cancel is not None and cancel.is_set():
        raise CheckCancelled("piece check cancelled")
    for p, good in zip(plan.pieces, results, strict=True):
        if good:
            have.set(p)
    return deferred, len(fds)


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
    # A pass holds a descriptor per file it reads; under a low `ulimit -n` the files a pass could not open
    # are checked again in passes of as many files as it did open, never failed for want of descriptors.
    max_files = min(MAX_PASS_FILES, storage.max_open_files)
    todo = readable
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="torrentpy-check") as worker:
        while todo:
            later: list[int] = []
            opened = max_files
            for plan in _plan(meta, todo, max_files):
                if cancel is not None and cancel.is_set():
                    raise CheckCancelled("piece check cancelled")
                deferred, got = _check_pass(storage, meta, plan, have, report, handled, threads, ahead, cancel,
                                            worker)
                if deferred:
                    opened = min(opened, got)
                    later += deferred
                handled += len(plan.pieces) - len(deferred)
                report(handled)
            if len(later) == len(todo):  # no headway: smaller passes, until a single file is too many
                if max_files == 1 or opened == 0:
                    handled += len(later)  # not readable now, like a missing file's pieces
                    later = []
                opened = min(opened, max_files // 2)
            todo, max_files = later, max(1, opened)
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
