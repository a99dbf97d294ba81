"""Make v1 .torrent files from a file or a folder, hashing with the compiled core."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from torrentpy import __version__, bencoding
from torrentpy._core import hash_pieces
from torrentpy.errors import MetainfoError, UsageError

MIN_PIECE_LENGTH = 16 * 1024
MAX_AUTO_PIECE_LENGTH = 16 * 1024 * 1024
# Aim for roughly this many pieces: small enough .torrent files, fine-grained
# enough that peers have pieces to trade early (what mktorrent/libtorrent aim for).
TARGET_PIECES = 1500
# Bytes read and hashed per batch: many pieces per call keeps every core busy.
BATCH_BYTES = 64 * 1024 * 1024


def auto_piece_length(total_length: int) -> int:
    """A power of two near total/TARGET_PIECES, within 16 KiB … 16 MiB."""
    length = MIN_PIECE_LENGTH
    while length < MAX_AUTO_PIECE_LENGTH and total_length // length > TARGET_PIECES:
        length *= 2
    return length


@dataclass(frozen=True)
class SourceFile:
    abspath: str
    parts: tuple[str, ...]  # path inside the torrent, below its name
    length: int


def collect_files(path: str) -> tuple[str, list[SourceFile], bool]:
    """(name, files, multi_file) for a file or a folder; hidden files are included,
    symlinks followed only if they point at regular files inside the folder."""
    path = os.path.abspath(path)
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such file or folder")
    name = os.path.basename(path.rstrip(os.sep)) or "torrent"
    if os.path.isfile(path):
        return name, [SourceFile(path, (), os.path.getsize(path))], False
    files: list[SourceFile] = []
    root_real = os.path.realpath(path)
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for fname in sorted(filenames):
            full = os.path.join(dirpath, fname)
            real = os.path.realpath(full)
            if not os.path.isfile(real) or os.path.commonpath([root_real, real]) != root_real:
                continue
            rel = os.path.relpath(full, path).split(os.sep)
            files.append(SourceFile(full, tuple(rel), os.path.getsize(real)))
    files.sort(key=lambda f: f.parts)
    if not files:
        raise UsageError(f"{path}: folder holds no files")
    return name, files, True


def _read_stream(files: Sequence[SourceFile], chunk: int) -> Iterator[bytearray]:
    """Yield the concatenated payload in chunks of exactly `chunk` bytes (the last shorter)."""
    buf = bytearray(chunk)
    view = memoryview(buf)
    filled = 0
    for f in files:
        with open(f.abspath, "rb", buffering=0) as fh:
            remaining = f.length
            while remaining > 0:
                n = fh.readinto(view[filled : filled + min(chunk - filled, remaining)])
                if not n:
                    raise UsageError(f"{f.abspath}: file shrank while hashing")
                filled += n
                remaining -= n
                if filled == chunk:
                    yield buf
                    buf = bytearray(chunk)
                    view = memoryview(buf)
                    filled = 0
    if filled:
        yield buf[:filled]


def hash_files(
    files: Sequence[SourceFile],
    piece_length: int,
    progress: Callable[[int], None] | None = None,
) -> bytes:
    """Concatenated piece digests; reading the next batch overlaps hashing this one."""
    batch = max(piece_length, (BATCH_BYTES // piece_length) * piece_length)
    digests: list[bytes] = []
    total = sum(f.length for f in files)
    if total <= batch:
        # One batch: nothing to overlap, and a reader thread plus a batch-sized buffer cost ~60 ms
        # (10 minutes for the 10,000 tiny torrents of bench/test_many_torrents_bench.py).
        for whole in _read_stream(files, max(1, total)):
            digests.append(hash_pieces(whole, piece_length))
            if progress:
                progress(len(whole))
        return b"".join(digests)
    with ThreadPoolExecutor(max_workers=1) as reader:
        stream = _read_stream(files, batch)
        pending = reader.submit(next, stream, None)
        while True:
            block = pending.result()
            if block is None:
                break
            pending = reader.submit(next, stream, None)
            digests.append(hash_pieces(block, piece_length))
            if progress:
                progress(len(block))
    return b"".join(digests)


def create_torrent(
    path: str,
    *,
    trackers: Sequence[Sequence[str]] = (),
    web_seeds: Sequence[str] = (),
    piece_length: int | None = None,
    private: bool = False,
    comment: str | None = None,
    source: str | None = None,
    creation_date: int | None = None,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> bytes:
    """Return the bytes of a v1 .torrent for `path`. `trackers` are BEP 12 tiers."""
    name, files, multi = collect_files(path)
    total = sum(f.length for f in files)
    if total == 0:
        raise UsageError(f"{path}: nothing to share (all files are empty)")
    if piece_length is None:
        piece_length = auto_piece_length(total)
    if piece_length < MIN_PIECE_LENGTH or piece_length & (piece_length - 1):
        raise UsageError("piece size must be a power of two of at least 16 KiB")
    if on_total:
        on_total(total)
    info: dict[bytes, Any] = {
        b"name": name.encode(),
        b"piece length": piece_length,
        b"pieces": hash_files(files, piece_length, progress),
    }
    if multi:
        info[b"files"] = [
            {b"length": f.length, b"path": [p.encode() for p in f.parts]} for f in files
        ]
    else:
        info[b"length"] = total
    if private:
        info[b"private"] = 1
    if source:
        info[b"source"] = source.encode()
    meta: dict[bytes, Any] = {
        b"info": info,
        b"created by": f"torrentpy/{__version__}".encode(),
        b"creation date": int(time.time()) if creation_date is None else creation_date,
    }
    tiers = [[u for u in tier if u] for tier in trackers]
    tiers = [t for t in tiers if t]
    if tiers:
        meta[b"announce"] = tiers[0][0].encode()
        if len(tiers) > 1 or len(tiers[0]) > 1:
            meta[b"announce-list"] = [[u.encode() for u in t] for t in tiers]
    if web_seeds:
        meta[b"url-list"] = [u.encode() for u in web_seeds]
    if comment:
        meta[b"comment"] = comment.encode()
    try:
        return bencoding.encode(meta)
    except Exception as exc:  # pragma: no cover - all values above are encodable
        raise MetainfoError(f"could not encode torrent: {exc}") from None
