"""Storage speed: hash-checking a download (compiled core, overlapped reads) against a plain hashlib
loop, piece writes, and the cost of the fdatasync that precedes each resume save."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from torrentpy.bencoding import encode
from torrentpy.metainfo import Metainfo, parse_torrent
from torrentpy.storage.checker import check_pieces
from torrentpy.storage.files import Storage

PIECE = 256 * 1024
SIZE = 256 * 1024 * 1024


class Built:
    """A torrent over random files (bench/ is not a package, so it cannot share tests' builder)."""

    def __init__(self, sizes: dict[str, int], piece_length: int) -> None:
        self.contents = {name: os.urandom(size) for name, size in sizes.items()}
        self.payload = b"".join(self.contents.values())
        hashes = b"".join(
            hashlib.sha1(self.payload[i : i + piece_length]).digest()
            for i in range(0, len(self.payload), piece_length)
        )
        files = [{b"length": size, b"path": [name.encode()]} for name, size in sizes.items()]
        info = {b"name": b"t", b"piece length": piece_length, b"pieces": hashes, b"files": files}
        self.meta: Metainfo = parse_torrent(encode({b"info": info}))

    def piece(self, index: int) -> bytes:
        start = index * self.meta.piece_length
        return self.payload[start : start + self.meta.piece_size(index)]

    def write_files(self, root: Path) -> None:
        (root / "t").mkdir(parents=True, exist_ok=True)
        for name, data in self.contents.items():
            (root / "t" / name).write_bytes(data)


def build(sizes: dict[str, int], piece_length: int) -> Built:
    return Built(sizes, piece_length)


@pytest.fixture(scope="module")
def download(tmp_path_factory: pytest.TempPathFactory) -> tuple[Built, Path]:
    root = tmp_path_factory.mktemp("bench-storage")
    b = build({"a.bin": SIZE // 2, "b.bin": SIZE // 4, "c.bin": SIZE // 4}, PIECE)
    b.write_files(root)
    return b, root


def test_check_pieces_core(benchmark, download: tuple[Built, Path]) -> None:  # type: ignore[no-untyped-def]
    b, root = download
    with Storage(b.meta, root) as st:
        have = benchmark.pedantic(check_pieces, args=(st, b.meta), rounds=3, iterations=1)
    assert have.all()
    benchmark.extra_info["MiB/s"] = SIZE / 2**20 / benchmark.stats.stats.mean


def test_check_pieces_hashlib_baseline(benchmark, download: tuple[Built, Path]) -> None:  # type: ignore[no-untyped-def]
    b, root = download

    def run() -> int:
        good = 0
        with Storage(b.meta, root) as st:
            for p in range(b.meta.num_pieces):
                good += hashlib.sha1(st.read_piece_sync(p)).digest() == b.meta.piece_hash(p)
        return good

    assert benchmark.pedantic(run, rounds=3, iterations=1) == b.meta.num_pieces
    benchmark.extra_info["MiB/s"] = SIZE / 2**20 / benchmark.stats.stats.mean


def test_write_pieces(benchmark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    b = build({"a.bin": 64 * 1024 * 1024}, PIECE)
    pieces = [b.piece(p) for p in range(b.meta.num_pieces)]
    counter = iter(range(1000))

    def run() -> None:
        with Storage(b.meta, tmp_path / f"w{next(counter)}") as st:
            for p, data in enumerate(pieces):
                st.write_piece_sync(p, data)

    benchmark.pedantic(run, rounds=3, iterations=1)


@pytest.mark.parametrize("touched_files", [1, 8])
def test_flush_after_a_few_pieces(benchmark, tmp_path: Path, touched_files: int) -> None:  # type: ignore[no-untyped-def]
    """What the engine pays per resume save: fdatasync of the files written since the last one."""
    b = build({f"f{i}": 4 * PIECE for i in range(8)}, PIECE)
    with Storage(b.meta, tmp_path) as st:
        rounds = iter(range(10_000))

        def setup() -> None:
            r = next(rounds)
            for f in range(touched_files):
                p = f * 4 + r % 4
                st.write_piece_sync(p, b.piece(p))

        benchmark.pedantic(st.flush_sync, setup=setup, rounds=20, iterations=1)
    assert os.path.exists(tmp_path / "t" / "f0")
