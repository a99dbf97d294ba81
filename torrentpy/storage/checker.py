"""Hash-check pieces on disk with the compiled core.

Pieces are hashed straight from read-only maps of their files (no copy), in one parallel pass per group
of files (`SpanCheck`): every core pulls the next piece from a shared counter, so a thread that loses
its core for a moment does not hold the others up at the end of a batch; the kernel is asked to read
ahead of the pass, and pages already hashed are unmapped again, so resident memory stays small however
big the files are. A piece may span files and padding: it is hashed span by span. The calling thread
meanwhile reports progress and passes on cancellation. Pieces of files that cannot be mapped are read
into reused buffers by a reader thread while the previous batch is hashed (`verify_many`). Pieces whose
files are missing or too short fail without being read.

A file truncated by another program while it is being checked through a map raises SIGBUS, as it
would in any mmap-based client (libtorrent 2 checks the same way); files are only checked before
this process writes to them.
"""

from __future__ import annotations

import array
import asyncio
import concurrent.futures
import mmap
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

from torrentpy._core import Bitfield, SpanCheck, verify_many
from torrentpy.metainfo import Metainfo
from torrentpy.storage.files import Storage

# Pieces of files that cannot be mapped: bytes read per verify_many call. Enough pieces that one call
# keeps the cores busy; two batches are alive at once (one being read, one hashed).
BATCH_BYTES = 16 * 1024 * 1024
# With big pieces a batch still gets one piece per core, up to this many bytes (bounds memory at 2x).
MAX_BATCH_BYTES = 256 * 1024 * 1024
# A parallel pass holds a map (and its descriptor) of each file it touches: at most this many, so a
# torrent of many small files does not run out of descriptors. Also bounds a pass's tables.
MAX_PASS_FILES = 64
MAX_PASS_PIECES = 1 << 16
# Bytes the kernel is asked to read ahead of the pieces being hashed (matters when not cached).
READ_AHEAD_BYTES = 32 * 1024 * 1024
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


def _read_batch(storage: Storage, batch: list[int], pool: list[bytearray]) -> list[tuple[int, memoryview]]:
    """Read `batch` into the pool's buffers; returns the pieces that were read completely."""
    meta = storage.meta
    out = []
    for slot, piece in enumerate(batch):
        if slot == len(pool):
            pool.append(bytearray(meta.piece_length))
        view = memoryview(pool[slot])[: meta.piece_size(piece)]
        if storage.read_piece_into(piece, view):
            out.append((piece, view))
    return out


def _passes(storage: Storage, pieces: list[int]) -> list[list[int]]:
    """`pieces` cut into runs that touch at most MAX_PASS_FILES files and MAX_PASS_PIECES pieces."""
    out: list[list[int]] = []
    current: list[int] = []
    files: set[int] = set()
    for p in pieces:
        touched = {seg.file_index for seg in storage.layout.segments(p) if not seg.padding}
        if current and (len(files | touched) > MAX_PASS_FILES or len(current) == MAX_PASS_PIECES):
            out.append(current)
            current, files = [], set()
        current.append(p)
        files |= touched
    if current:
        out.append(current)
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


def _mapped_pass(storage: Storage, meta: Metainfo, pieces: list[int], have: Bitfield, report: _Progress,
                 handled: int, threads: int, cancel: threading.Event | None,
                 worker: concurrent.futures.ThreadPoolExecutor) -> list[int]:
    """Hash `pieces` from maps of their files; returns those that could not be mapped (to be read)."""
    maps: dict[int, mmap.mmap | None] = {}
    unmapped: list[int] = []
    try:
        slots: dict[int, int] = {}
        buffers: list[mmap.mmap] = []
        starts = array.array("q", [0])
        bufs = array.array("i")
        offsets = array.array("q")
        lengths = array.array("q")
        expected = bytearray()
        hashed: list[int] = []
        for p in pieces:
            segments = storage.layout.segments(p)
            spans: list[tuple[int, int, int]] = []
            for seg in segments:
                if seg.padding:
                    spans.append((-1, 0, seg.length))
                    continue
                if seg.file_index not in maps:
                    maps[seg.file_index] = storage.map_file(seg.file_index)
                mapped = maps[seg.file_index]
                if mapped is None or len(mapped) < seg.file_offset + seg.length:
                    break  # cannot be mapped (or shrank since it was measured): read it instead
                if seg.file_index not in slots:
                    slots[seg.file_index] = len(buffers)
                    buffers.append(mapped)
                spans.append((slots[seg.file_index], seg.file_offset, seg.length))
            else:
                for b, off, length in spans:
                    bufs.append(b)
                    offsets.append(off)
                    lengths.append(length)
                starts.append(len(bufs))
                expected += meta.piece_hash(p)
                hashed.append(p)
                continue
            unmapped.append(p)
        if not hashed:
            return unmapped
        check = SpanCheck(buffers, starts, bufs, offsets, lengths, expected, advise=True)
        ahead = max(2 * (threads or os.cpu_count() or 1), READ_AHEAD_BYTES // meta.piece_length)
        job = worker.submit(check.run, threads, ahead)
        try:
            while True:
                try:
                    results = job.result(timeout=POLL_SECONDS)
                    break
                except concurrent.futures.TimeoutError:
                    if cancel is not None and cancel.is_set():
                        check.cancel()
                    report(handled + check.done)
        finally:
            if not job.done():  # an exception here (a progress callback's, an interrupt): stop the pass
                check.cancel()
                concurrent.futures.wait([job])
            check.release()
        if cancel is not None and cancel.is_set():
            raise CheckCancelled("piece check cancelled")
        for p, good in zip(hashed, results, strict=True):
            if good:
                have.set(p)
        report(handled + len(hashed))
        return unmapped
    finally:
        for mapped in maps.values():
            if mapped is not None:
                mapped.close()


def _read_pieces(storage: Storage, meta: Metainfo, pieces: list[int], have: Bitfield, report: _Progress,
                 handled: int, threads: int, cancel: threading.Event | None,
                 reader: concurrent.futures.ThreadPoolExecutor) -> None:
    """Hash `pieces` by reading them, the next batch read while this one is hashed."""
    cores = threads if threads > 0 else os.cpu_count() or 1
    pl = meta.piece_length
    per_batch = max(1, min(max(BATCH_BYTES // pl, cores), MAX_BATCH_BYTES // pl))
    batches = [pieces[i : i + per_batch] for i in range(0, len(pieces), per_batch)]
    pools: tuple[list[bytearray], list[bytearray]] = ([], [])
    pending = reader.submit(_read_batch, storage, batches[0], pools[0]) if batches else None
    for k in range(len(batches)):
        assert pending is not None
        read = pending.result()
        if cancel is not None and cancel.is_set():
            raise CheckCancelled("piece check cancelled")
        if k + 1 < len(batches):
            pending = reader.submit(_read_batch, storage, batches[k + 1], pools[(k + 1) % 2])
        if read:
            expected = b"".join(meta.piece_hash(p) for p, _ in read)
            results = verify_many([view for _, view in read], expected, threads)
            for (p, _), good in zip(read, results, strict=True):
                if good:
                    have.set(p)
        handled += len(batches[k])
        report(handled)


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

    `cancel`, when set by another thread, stops the check within about POLL_SECONDS or after the
    current batch (CheckCancelled): a stop request must not wait for a whole torrent to be hashed.

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
    to_read: list[int] = []
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="torrentpy-check") as worker:
        for group in _passes(storage, readable):
            if cancel is not None and cancel.is_set():
                raise CheckCancelled("piece check cancelled")
            unmapped = _mapped_pass(storage, meta, group, have, report, handled, threads, cancel, worker)
            handled += len(group) - len(unmapped)
            to_read += unmapped
        _read_pieces(storage, meta, to_read, have, report, handled, threads, cancel, worker)
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
