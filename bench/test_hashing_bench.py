"""SHA-1 of 64 MiB in 256 KiB pieces: the compiled core against hashlib, on one thread and on all cores.

hashlib already releases the GIL for large buffers, so the all-cores baseline is a fair fight:
hashlib in a ThreadPoolExecutor with one worker per core."""

from __future__ import annotations

import array
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from torrentpy._core import SpanCheck, hash_pieces

TOTAL = 64 * 1024 * 1024
PIECE = 256 * 1024
CORES = os.cpu_count() or 1
ROUNDS = 5


@pytest.fixture(scope="module")
def payload() -> bytes:
    return os.urandom(TOTAL)


@pytest.fixture(scope="module")
def expected(payload: bytes) -> bytes:
    view = memoryview(payload)
    return b"".join(hashlib.sha1(view[i : i + PIECE]).digest() for i in range(0, TOTAL, PIECE))


def _hashlib_serial(view: memoryview) -> bytes:
    return b"".join(hashlib.sha1(view[i : i + PIECE]).digest() for i in range(0, len(view), PIECE))


def _run(benchmark: Any, fn: Any, *args: Any) -> Any:
    return benchmark.pedantic(fn, args=args, rounds=ROUNDS, iterations=1, warmup_rounds=1)


def test_ours_one_thread(benchmark: Any, compare: Any, payload: bytes, expected: bytes) -> None:
    compare(benchmark, "hashing 1 thread", "ours", nbytes=TOTAL)
    assert _run(benchmark, hash_pieces, payload, PIECE, 1) == expected


def test_hashlib_one_thread(benchmark: Any, compare: Any, payload: bytes, expected: bytes) -> None:
    compare(benchmark, "hashing 1 thread", "baseline", baseline="hashlib", nbytes=TOTAL)
    assert _run(benchmark, _hashlib_serial, memoryview(payload)) == expected


def test_ours_all_cores(benchmark: Any, compare: Any, payload: bytes, expected: bytes) -> None:
    compare(benchmark, f"hashing {CORES} cores", "ours", nbytes=TOTAL)
    assert _run(benchmark, hash_pieces, payload, PIECE, 0) == expected


def test_hashlib_all_cores(benchmark: Any, compare: Any, payload: bytes, expected: bytes) -> None:
    compare(benchmark, f"hashing {CORES} cores", "baseline", baseline="hashlib in a thread pool",
            nbytes=TOTAL)
    view = memoryview(payload)
    offsets = range(0, TOTAL, PIECE)
    with ThreadPoolExecutor(CORES) as pool:
        def pooled() -> bytes:
            return b"".join(pool.map(lambda i: hashlib.sha1(view[i : i + PIECE]).digest(), offsets))

        assert _run(benchmark, pooled) == expected


@pytest.fixture(scope="module")
def payload_file(payload: bytes, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("span") / "payload.bin"
    path.write_bytes(payload)  # in the page cache from here on, like a file just downloaded
    return path


def test_span_check_all_cores(benchmark: Any, compare: Any, payload_file: Path, expected: bytes) -> None:
    """What the checker does: pread from the file and hash on every core."""
    compare(benchmark, f"file check {CORES} cores", "ours", nbytes=TOTAL)
    count = TOTAL // PIECE
    fd = os.open(payload_file, os.O_RDONLY)
    try:
        def run() -> list[bool]:
            check = SpanCheck([fd], array.array("q", range(count + 1)), array.array("i", [0] * count),
                              array.array("q", range(0, TOTAL, PIECE)), array.array("q", [PIECE] * count), expected)
            return check.run(0, 0)

        assert _run(benchmark, run) == [True] * count
    finally:
        os.close(fd)


def test_hashlib_file_check_all_cores(benchmark: Any, compare: Any, payload_file: Path, expected: bytes) -> None:
    compare(benchmark, f"file check {CORES} cores", "baseline", baseline="hashlib + pread in a thread pool",
            nbytes=TOTAL)
    digests = [expected[i : i + 20] for i in range(0, len(expected), 20)]
    fd = os.open(payload_file, os.O_RDONLY)
    try:
        with ThreadPoolExecutor(CORES) as pool:
            def one(i: int) -> bool:
                return hashlib.sha1(os.pread(fd, PIECE, i * PIECE)).digest() == digests[i]

            def pooled() -> list[bool]:
                return list(pool.map(one, range(len(digests))))

            assert _run(benchmark, pooled) == [True] * len(digests)
    finally:
        os.close(fd)
