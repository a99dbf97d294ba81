"""Parsing large .torrent files: 100,000 pieces (a 2 MB `pieces` string) and 10,000 files; libtorrent's
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


@pytest.fixture(scope="module")
def many_files() -> bytes:
    count, size = 10_000, 1000
    files = [{b"length": size, b"path": [f"dir{i // 100:03d}".encode(), f"file{i:05d}.bin".encode()]}
             for i in range(count)]
    info = {b"name": b"collection", b"piece length": PIECE, b"files": files,
            b"pieces": _pieces(-(-count * size // PIECE))}
    return encode({b"announce": b"http://127.0.0.1:1/announce", b"info": info})


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


def test_parse_10k_files(benchmark: Any, compare: Any, many_files: bytes) -> None:
    compare(benchmark, "metainfo 10k files", "ours", baseline="libtorrent")
    meta = benchmark(parse_torrent, many_files)
    assert len(meta.files) == 10_000


def test_libtorrent_10k_files(benchmark: Any, compare: Any, many_files: bytes) -> None:
    compare(benchmark, "metainfo 10k files", "baseline", baseline="libtorrent")
    assert benchmark(_lt_parse, many_files).num_files() == 10_000
