"""Parsing large .torrent files: 100,000 pieces (a 2 MB `pieces` string), 10,000 and 100,000 files; libtorrent's
C++ parser is the yardstick."""

from __future__ import annotations

import hashlib
import warnings
from typing import Any

import libtorrent as lt
import pytest

from torrentpy.bencoding import encode
from torrentpy.metainfo import parse_torrent

PIECE = 16 * 1024


def _pieces(count: int) -> bytes:
    return b"".join(hashlib.sha1(i.to_bytes(4, "big")).digest() for i in range(count))


@pytest.fixture(scope="module")
def many_pieces() -> bytes:
    count = 100_000
    info = {b"name": b"big.iso", b"piece length": PIECE, b"length": count * PIECE - 123,
            b"pieces": _pieces(count)}
    return encode({b"announce": b"http://127.0.0.1:1/announce", b"info": info})


_FILE_COUNTS = {"10k": 10_000, "100k": 100_000}


@pytest.fixture(scope="module", params=list(_FILE_COUNTS))
def many_files(request: pytest.FixtureRequest) -> tuple[str, int, bytes]:
    """A torrent of 10,000 files of 1000 bytes or 100,000 files of one byte, 100 files a folder."""
    count = _FILE_COUNTS[request.param]
    size = 1000 if count <= 10_000 else 1
    files = [{b"length": size, b"path": [f"dir{i // 100:04d}".encode(), f"file{i:06d}.bin".encode()]}
             for i in range(count)]
    info = {b"name": b"collection", b"piece length": PIECE, b"files": files,
            b"pieces": _pieces(-(-count * size // PIECE))}
    return request.param, count, encode({b"announce": b"http://127.0.0.1:1/announce", b"info": info})


def _lt_parse(data: bytes) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lt.torrent_info(data)


def test_parse_100k_pieces(benchmark: Any, compare: Any, many_pieces: bytes) -> None:
    compare(benchmark, "metainfo 100k pieces", "ours", baseline="libtorrent")
    meta = benchmark(parse_torrent, many_pieces)
    assert meta.num_pieces == 100_000


def test_libtorrent_100k_pieces(benchmark: Any, compare: Any, many_pieces: bytes) -> None:
    compare(benchmark, "metainfo 100k pieces", "baseline", baseline="libtorrent")
    assert benchmark(_lt_parse, many_pieces).num_pieces() == 100_000


def test_parse_many_files(benchmark: Any, compare: Any, many_files: tuple[str, int, bytes]) -> None:
    label, count, data = many_files
    compare(benchmark, f"metainfo {label} files", "ours", baseline="libtorrent")
    meta = benchmark(parse_torrent, data)
    assert len(meta.files) == count
    assert meta.files[-1].path == ("collection", f"dir{(count - 1) // 100:04d}", f"file{count - 1:06d}.bin")


def test_libtorrent_many_files(benchmark: Any, compare: Any, many_files: tuple[str, int, bytes]) -> None:
    label, count, data = many_files
    compare(benchmark, f"metainfo {label} files", "baseline", baseline="libtorrent")
    assert benchmark(_lt_parse, data).num_files() == count
