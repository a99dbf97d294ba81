"""The compiled SHA-1 core against hashlib, on every buffer type and edge size it will meet."""

from __future__ import annotations

import array
import hashlib
import mmap
import os
import random
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from torrentpy._core import SpanCheck, hash_pieces, sha1, verify_piece
from torrentpy._core.hashing import DIGEST_SIZE

PIECE = 16 * 1024


def _payload(size: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)


def _hashlib_pieces(data: bytes, piece_length: int) -> bytes:
    return b"".join(
        hashlib.sha1(data[i : i + piece_length]).digest() for i in range(0, len(data), piece_length)
    )


def _as_mmap(data: bytes) -> Any:
    # Anonymous maps cannot be empty; the caller only uses this for non-empty data.
    m = mmap.mmap(-1, len(data))
    m.write(data)
    m.seek(0)
    return m


BUFFER_KINDS: dict[str, Callable[[bytes], Any]] = {
    "bytes": bytes,
    "bytearray": bytearray,
    "memoryview": memoryview,
    "memoryview-slice": lambda d: memoryview(b"xx" + d + b"yy")[2:-2],
    "mmap": _as_mmap,
}

SIZES = [0, 1, PIECE - 1, PIECE, PIECE + 1, 3 * PIECE, 3 * PIECE + 5, 10 * PIECE - 1]


def test_digest_size() -> None:
    assert DIGEST_SIZE == 20


@pytest.mark.parametrize("size", [0, 1, 55, 56, 63, 64, 65, 1000, PIECE, 1 << 20])
def test_sha1_matches_hashlib(size: int) -> None:
    data = _payload(size)
    assert sha1(data) == hashlib.sha1(data).digest()


@pytest.mark.parametrize("kind", BUFFER_KINDS)
def test_sha1_accepts_buffer_kinds(kind: str) -> None:
    data = _payload(PIECE + 3)
    assert sha1(BUFFER_KINDS[kind](data)) == hashlib.sha1(data).digest()


def test_sha1_of_empty_buffers() -> None:
    want = hashlib.sha1(b"").digest()
    assert sha1(b"") == want
    assert sha1(bytearray()) == want
    assert sha1(memoryview(b"")) == want


def test_sha1_rejects_non_buffers() -> None:
    with pytest.raises(TypeError):
        sha1("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        sha1(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", BUFFER_KINDS)
def test_verify_piece(kind: str) -> None:
    data = _payload(PIECE)
    good = hashlib.sha1(data).digest()
    assert verify_piece(BUFFER_KINDS[kind](data), good) is True
    bad = bytes([good[0] ^ 1]) + good[1:]
    assert verify_piece(BUFFER_KINDS[kind](data), bad) is False
    flipped = bytearray(data)
    flipped[-1] ^= 0x80
    assert verify_piece(flipped, good) is False


def test_verify_piece_empty() -> None:
    assert verify_piece(b"", hashlib.sha1(b"").digest()) is True
    assert verify_piece(b"", hashlib.sha1(b"x").digest()) is False


@pytest.mark.parametrize("length", [0, 1, 19, 21, 40])
def test_verify_piece_wrong_digest_length(length: int) -> None:
    with pytest.raises(ValueError):
        verify_piece(b"abc", b"\0" * length)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("threads", [1, 2, 0])
def test_hash_pieces_matches_hashlib(size: int, threads: int) -> None:
    data = _payload(size, seed=size)
    digests = hash_pieces(data, PIECE, threads)
    assert digests == _hashlib_pieces(data, PIECE)
    assert len(digests) == 20 * -(-size // PIECE)


@pytest.mark.parametrize("kind", BUFFER_KINDS)
def test_hash_pieces_buffer_kinds(kind: str) -> None:
    data = _payload(5 * PIECE + 77)
    assert hash_pieces(BUFFER_KINDS[kind](data), PIECE) == _hashlib_pieces(data, PIECE)


def test_hash_pieces_empty_is_empty() -> None:
    assert hash_pieces(b"", PIECE) == b""


@pytest.mark.parametrize("piece_length", [0, -1, -PIECE])
def test_hash_pieces_rejects_bad_piece_length(piece_length: int) -> None:
    with pytest.raises(ValueError):
        hash_pieces(b"abc", piece_length)


def test_hash_pieces_piece_longer_than_data() -> None:
    data = _payload(100)
    assert hash_pieces(data, 1 << 20) == hashlib.sha1(data).digest()


def test_threads_one_and_zero_agree() -> None:
    data = _payload(64 * PIECE + 9)
    assert hash_pieces(data, PIECE, 1) == hash_pieces(data, PIECE, 0) == hash_pieces(data, PIECE, 4)


def test_mmap_of_a_file(tmp_path: Any) -> None:
    data = _payload(4 * PIECE + 11)
    path = tmp_path / "payload.bin"
    path.write_bytes(data)
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
        assert sha1(m) == hashlib.sha1(data).digest()
        assert hash_pieces(m, PIECE) == _hashlib_pieces(data, PIECE)


def _python_ran_during(call: Callable[[], object], attempts: int = 5) -> bool:
    """True if this thread ran Python code while `call` was in progress in another thread.

    The switch interval is raised so the interpreter never takes the GIL from a thread by itself: a C
    function that keeps the GIL then keeps this thread from running at all until its thread has
    finished, and the loop below sees `done` at once. One that drops the GIL lets this thread wake
    from its short waits meanwhile. No rate or duration is compared: on a loaded machine this thread
    may get little CPU, so it only has to run twice, in any of `attempts` calls of tens of ms each."""
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(30.0)
    try:
        for _ in range(attempts):
            entering = threading.Event()
            done = threading.Event()

            def work(entering: threading.Event = entering, done: threading.Event = done) -> None:
                entering.set()
                call()
                done.set()

            worker = threading.Thread(target=work)
            worker.start()
            entering.wait()
            woke = 0
            while not done.wait(0.0005):  # each wait lets the GIL go, so the worker can finish
                woke += 1
            worker.join()
            if woke >= 2:
                return True
        return False
    finally:
        sys.setswitchinterval(old_interval)


def test_span_check_releases_the_gil(tmp_path: Path) -> None:
    data = os.urandom(32 << 20)  # 32 MiB per call: tens of ms of C work
    (tmp_path / "data").write_bytes(data)
    pieces = [[(0, i, 8 << 20)] for i in range(0, len(data), 8 << 20)]
    expected = b"".join(hashlib.sha1(span_bytes([data], p)).digest() for p in pieces)
    results: list[list[bool]] = []
    fd = os.open(tmp_path / "data", os.O_RDONLY)
    try:
        assert _python_ran_during(lambda: results.append(SpanCheck([fd], *span_tables(pieces), expected).run(1)))
    finally:
        os.close(fd)
    assert results and all(r == [True] * 4 for r in results)


def test_gil_probe_detects_a_call_that_holds_the_gil() -> None:
    """The probe above can fail: bytes.count on a big buffer is C work that keeps the GIL."""
    big = bytes(64 << 20)
    assert not _python_ran_during(lambda: big.count(b"\x01"), attempts=2)


# --- SpanCheck: pieces made of spans of several buffers and zeros ----------------------------


def span_tables(pieces: list[list[tuple[int, int, int]]]) -> tuple[array.array, array.array, array.array, array.array]:
    starts, bufs, offsets, lengths = array.array("q", [0]), array.array("i"), array.array("q"), array.array("q")
    for spans in pieces:
        for b, off, length in spans:
            bufs.append(b)
            offsets.append(off)
            lengths.append(length)
        starts.append(len(bufs))
    return starts, bufs, offsets, lengths


def span_bytes(data: list[bytes], spans: list[tuple[int, int, int]]) -> bytes:
    return b"".join(data[f][off : off + n] if f >= 0 else bytes(n) for f, off, n in spans)


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_span_check_matches_hashlib_across_files_and_padding(tmp_path: Path, threads: int) -> None:
    rng = random.Random(threads)
    data = [rng.randbytes(700_000), rng.randbytes(70_001)]
    for i, content in enumerate(data):
        (tmp_path / str(i)).write_bytes(content)
    pieces = [[(0, 0, 65536)], [(0, 65536, 600_000), (-1, 0, 300_000), (1, 0, 5)], [(1, 5, 69_996)], [],
              [(1, 4097, 1)], [(0, 7, 0)], [(-1, 0, 10)], [(0, 699_990, 10), (-1, 0, 600_000)]]
    wrong = {2, 4}
    expected = b"".join(bytes(20) if i in wrong else hashlib.sha1(span_bytes(data, p)).digest()
                        for i, p in enumerate(pieces))
    fds = [os.open(tmp_path / str(i), os.O_RDONLY) for i in range(2)]
    try:
        check = SpanCheck(fds, *span_tables(pieces), expected)
        assert check.run(threads, 2) == [i not in wrong for i in range(len(pieces))]
        assert check.done == len(pieces)
    finally:
        for fd in fds:
            os.close(fd)


def test_span_check_fails_a_piece_beyond_the_end_of_its_file(tmp_path: Path) -> None:
    """A file truncated after it was measured: the piece fails, nothing crashes."""
    (tmp_path / "f").write_bytes(b"a" * 1000)
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    try:
        want = hashlib.sha1(b"a" * 500).digest()
        check = SpanCheck([fd], *span_tables([[(0, 0, 500)], [(0, 600, 500)], [(0, 5000, 500)]]), want * 3)
        assert check.run(2) == [True, False, False]
    finally:
        os.close(fd)


def test_span_check_refuses_bad_tables() -> None:
    with pytest.raises(ValueError):
        SpanCheck([0], *span_tables([[(1, 0, 1)]]), bytes(20))
    with pytest.raises(ValueError):
        SpanCheck([0], *span_tables([[(0, -1, 1)]]), bytes(20))
    with pytest.raises(ValueError):
        SpanCheck([0], *span_tables([[(0, 0, 1)]]), bytes(40))
    with pytest.raises(ValueError):
        SpanCheck([-1], *span_tables([[(0, 0, 1)]]), bytes(20))


def test_span_check_cancelled_reads_nothing(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x" * 1000)
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    try:
        check = SpanCheck([fd], *span_tables([[(0, 0, 500)], [(0, 500, 500)]]),
                          hashlib.sha1(b"x" * 500).digest() * 2)
        check.cancel()
        assert check.cancelled
        assert check.run() == [False, False]
        assert check.done == 0
    finally:
        os.close(fd)


# Lengths around the 64-byte block, the 55/56-byte tail boundary and the 256 KiB read chunk.
@pytest.mark.parametrize("length", [1, 55, 56, 64, 1000, 65536 + 56, 262_144, 262_145, 600_001])
def test_span_check_matches_hashlib(tmp_path: Path, length: int) -> None:
    """40 pieces of one length spanning two files and padding, some wrong, some past the end of their
    file: every answer as hashlib's, on one thread and on two."""
    rng = random.Random(length)
    count = 40
    total = count * length
    cut = rng.randrange(total)  # file 0 ends here, then padding, then file 1
    pad = rng.randrange(0, 3 * length)
    data = [rng.randbytes(cut), rng.randbytes(max(0, total - cut - pad))]
    short = total - cut - pad < 0
    (tmp_path / "0").write_bytes(data[0])
    (tmp_path / "1").write_bytes(data[1][: len(data[1]) - 100] if length > 200 else data[1])
    layout = [(0, 0, cut), (-1, 0, pad), (1, 0, max(0, total - cut - pad))]
    pieces: list[list[tuple[int, int, int]]] = []
    for p in range(count):
        lo, hi, pos, spans = p * length, (p + 1) * length, 0, []
        for f, _, n in layout:
            a, b = max(lo, pos), min(hi, pos + n)
            if a < b:
                spans.append((f, a - pos, b - a))
            pos += n
        if sum(n for _, _, n in spans) < length:
            spans.append((-1, 0, length - sum(n for _, _, n in spans)))  # past the padding when it is long
        pieces.append(spans)
    on_disk = [(tmp_path / str(i)).read_bytes() for i in range(2)]
    wrong = set(rng.sample(range(count), 5))
    expected = b"".join(bytes(20) if i in wrong else hashlib.sha1(span_bytes(data, p)).digest()
                        for i, p in enumerate(pieces))

    def readable(spans: list[tuple[int, int, int]]) -> bool:
        return all(f < 0 or off + n <= len(on_disk[f]) for f, off, n in spans)

    oracle = [i not in wrong and readable(p)
              and hashlib.sha1(span_bytes(on_disk, p)).digest() == expected[20 * i : 20 * i + 20]
              for i, p in enumerate(pieces)]
    assert any(oracle) or short
    fds = [os.open(tmp_path / str(i), os.O_RDONLY) for i in range(2)]
    try:
        for threads in (1, 2):
            check = SpanCheck(fds, *span_tables(pieces), expected)
            assert check.run(threads, 3) == oracle
            assert check.done == count
    finally:
        for fd in fds:
            os.close(fd)
