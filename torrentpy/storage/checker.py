"""Hash-check pieces on disk with the compiled core.

Pieces are read in batches of about BATCH_BYTES and each batch is verified in one call to
`torrentpy._core.verify_many`, which releases the GIL and hashes on all cores. A reader thread fills
the next batch while the current one is hashed, so disk reads and hashing overlap. Pieces whose files
are missing or too short fail without being read.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

from torrentpy._core import Bitfield, verify_many
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
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="torrentpy-check") as reader:
        pending = reader.submit(_read_batch, storage, batches[0][0], pools[0])
        for k, (_, handled) in enumerate(batches):
            read = pending.result()
            if cancel is not None and cancel.is_set():
                raise CheckCancelled("piece check cancelled")
            if k + 1 < len(batches):
                pending = reader.submit(_read_batch, storage, batches[k + 1][0], pools[(k + 1) % 2])
            if read:
                expected = b"".join(meta.piece_hash(p) for p, _ in read)
                results = verify_many([view for _, view in read], expected, threads)
                for (p, _), good in zip(read, results, strict=True):
                    if good:
                        have.set(p)
            if progress is not None:
                progress(handled)
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
