"""Hash-check pieces on disk with the compiled core.

Pieces are checked in batches of about BATCH_BYTES, each in one call to the core, which releases the
GIL and hashes on all cores. A batch whose pieces lie one after another in one file is hashed straight
from a read-only map of that file (`verify_pieces`): no copy, and the kernel is asked to read the next
batch ahead (MADV_WILLNEED) while this one is hashed. Other batches (pieces across file boundaries,
padding) are read by a reader thread into reused buffers while the previous batch is hashed
(`verify_many`). Pieces whose files are missing or too short fail without being read.

A file truncated by another program while it is being checked through a map raises SIGBUS, as it
would in any mmap-based client (libtorrent 2 checks the same way); files are only checked before
this process writes to them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import mmap
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

from torrentpy._core import Bitfield, verify_many, verify_pieces
from torrentpy.metainfo import Metainfo
from torrentpy.storage.files import Storage

# Bytes read per verify_many call: enough pieces that one call keeps the cores busy and the per-call
# overhead vanishes. Two batches are alive at once (one being read, one hashed) and their buffers
# are fresh memory each check, whose first-touch page faults cost a fixed ~5-20 ms per 16 MiB on a
# VM; 16 MiB keeps that small without starving the threads.
BATCH_BYTES = 16 * 1024 * 1024
# With big pieces a batch still gets one piece per core, up to this many bytes (bounds memory at 2x).
MAX_BATCH_BYTES = 256 * 1024 * 1024


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


class _Run(NamedTuple):
    """Consecutive pieces lying in one file: hashed from the file's map."""

    file_index: int
    offset: int
    length: int


def _single_file_run(storage: Storage, batch: list[int]) -> _Run | None:
    if not batch or batch[-1] - batch[0] != len(batch) - 1:
        return None
    first = storage.layout.segments(batch[0])
    last = storage.layout.segments(batch[-1]) if len(batch) > 1 else first
    if len(first) != 1 or len(last) != 1 or first[0].padding or first[0].file_index != last[0].file_index:
        return None  # one file at both ends and consecutive pieces: every piece between is in it too
    return _Run(first[0].file_index, first[0].file_offset, last[0].file_offset + last[0].length - first[0].file_offset)


class _Maps:
    """Read-only maps of the files being checked, opened on first use and closed together."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.maps: dict[int, mmap.mmap | None] = {}

    def get(self, file_index: int) -> mmap.mmap | None:
        if file_index not in self.maps:
            mapped = self.storage.map_file(file_index)
            if mapped is not None:
                with contextlib.suppress(OSError, AttributeError):  # advice only
                    mapped.madvise(mmap.MADV_SEQUENTIAL)
            self.maps[file_index] = mapped
        return self.maps[file_index]

    def prefetch(self, run: _Run) -> None:
        mapped = self.get(run.file_index)
        if mapped is None:
            return
        start = run.offset - run.offset % mmap.PAGESIZE
        with contextlib.suppress(OSError, ValueError, AttributeError):
            mapped.madvise(mmap.MADV_WILLNEED, start, min(run.offset + run.length, len(mapped)) - start)

    def close(self) -> None:
        for mapped in self.maps.values():
            if mapped is not None:
                mapped.close()
        self.maps.clear()


def _verify_mapped(maps: _Maps, run: _Run, batch: list[int], meta: Metainfo, threads: int) -> list[bool] | None:
    """The batch's results hashed from the map, or None when the file cannot be mapped."""
    mapped = maps.get(run.file_index)
    if mapped is None or len(mapped) < run.offset + run.length:
        return None
    expected = b"".join(meta.piece_hash(p) for p in batch)
    with memoryview(mapped) as whole, whole[run.offset : run.offset + run.length] as view:
        return verify_pieces(view, meta.piece_length, expected, threads)


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

    `cancel`, when set by another thread, stops the check after the current batch
    (CheckCancelled): a stop request must not wait for a whole torrent to be hashed.

    `progress(n)` is called with the cumulative number of pieces handled so far (good or not),
    suitable for `rich.progress.Progress.update(task, completed=n)`. `threads=0` lets the core pick
    (all cores).
    """
    if storage.meta.info_hash != meta.info_hash:
        raise ValueError("storage belongs to another torrent")
    num = meta.num_pieces
    order = list(range(num)) if pieces is None else sorted(set(pieces))
    for p in order:
        if not 0 <= p < num:
            raise IndexError(f"piece {p} out of range (torrent has {num})")
    have = Bitfield(num)
    readable = set(present_pieces(storage, order))

    # Batches cover consecutive runs of `order`, so progress advances in piece order; pieces that
    # cannot be good count as handled without being read.
    cores = threads if threads > 0 else os.cpu_count() or 1
    pl = meta.piece_length
    per_batch = max(1, min(max(BATCH_BYTES // pl, cores), MAX_BATCH_BYTES // pl))
    batches: list[tuple[list[int], int]] = []  # (pieces to read, pieces handled once done)
    current: list[int] = []
    for position, p in enumerate(order, 1):
        if p in readable:
            current.append(p)
        if len(current) == per_batch:
            batches.append((current, position))
            current = []
    if current or not batches or batches[-1][1] != len(order):
        batches.append((current, len(order)))

    pools: tuple[list[bytearray], list[bytearray]] = ([], [])
    runs = [_single_file_run(storage, batch) for batch, _ in batches]
    maps = _Maps(storage)

    def start(k: int) -> concurrent.futures.Future[list[tuple[int, memoryview]]] | None:
        """Begin fetching batch k: kernel read-ahead for a mapped run, the reader thread otherwise."""
        run = runs[k]
        if run is not None and maps.get(run.file_index) is not None:
            maps.prefetch(run)
            return None
        return reader.submit(_read_batch, storage, batches[k][0], pools[k % 2])

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="torrentpy-check") as reader:
        try:
            pending = start(0)
            for k, (batch, handled) in enumerate(batches):
                fetching = pending
                read = fetching.result() if fetching is not None else []
                if cancel is not None and cancel.is_set():
                    raise CheckCancelled("piece check cancelled")
                if k + 1 < len(batches):
                    pending = start(k + 1)
                if fetching is None:
                    run = runs[k]
                    assert run is not None
                    results = _verify_mapped(maps, run, batch, meta, threads)
                    if results is None:  # the map went away under us: read the batch the ordinary way
                        read = _read_batch(storage, batch, pools[k % 2])
                    else:
                        for p, good in zip(batch, results, strict=True):
                            if good:
                                have.set(p)
                if read:
                    expected = b"".join(meta.piece_hash(p) for p, _ in read)
                    results = verify_many([view for _, view in read], expected, threads)
                    for (p, _), good in zip(read, results, strict=True):
                        if good:
                            have.set(p)
                if progress is not None:
                    progress(handled)
        finally:
            maps.close()
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
