"""Selective and sequential download by `torrentpy add` from a real libtorrent 2.1 seeder.

--only: the chosen files arrive byte-identical; the others are absent, or hold only the bytes of pieces
they share with a chosen file (zeros elsewhere, sparse). --sequential: sampled on disk while a rate
limit keeps the download slow, the verified pieces never run further ahead of the first missing one
than the read-ahead window, as a player reading the file front to back needs.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.interop.peers.payload import MiB
from tests.interop.peers.torrentpy_peer import torrentpy_factory
from torrentpy.engine.priority import sequential_window
from torrentpy.metainfo import load
from torrentpy.storage.layout import Layout
from torrentpy.tui.filetree import payload_files

pytestmark = [pytest.mark.interop, pytest.mark.timeout(90)]

PIECE = 64 * 1024


def test_only_downloads_the_chosen_files(payload_factory, torrent_factory, libtorrent_peer, peer_registry,
                                         tmp_path: Path) -> None:
    spec = {"a.bin": 3 * PIECE + 100, "b.bin": 4 * PIECE, "c.bin": 2 * PIECE + 5, "d.bin": 3 * PIECE,
            "e.bin": 5000}
    payload = payload_factory(spec, name="sel")
    torrent = torrent_factory(payload, piece_length=PIECE)
    meta = load(str(torrent))
    names = [f.path[-1] for f in payload_files(meta)]
    chosen = {"a.bin", "c.bin"}
    numbers = ",".join(str(names.index(n) + 1) for n in sorted(chosen))
    seeder = libtorrent_peer(torrent, payload.save_dir, True)
    tp = torrentpy_factory(peer_registry)(torrent, tmp_path / "dl", False, peers=[seeder.address],
                                          extra_args=["--only", numbers])
    assert tp.wait_exit(60) == 0, tp.log_tail()
    got = tmp_path / "dl"
    for rel in payload.files:
        if Path(rel).name in chosen:
            assert (got / rel).read_bytes() == (payload.save_dir / rel).read_bytes(), rel
    layout = Layout(meta)
    wanted_pieces = {p for i, f in enumerate(meta.files) if f.path[-1] in chosen
                     for p in layout.piece_range_of_file(i)}
    for i, f in enumerate(meta.files):
        rel = "/".join(f.path)
        if f.path[-1] in chosen or not (got / rel).exists():
            continue
        # An unwanted file holds what the shared pieces put there and nothing else.
        data, original = (got / rel).read_bytes(), (payload.save_dir / rel).read_bytes()
        shared = 0
        for p in layout.piece_range_of_file(i):
            lo = max(0, p * PIECE - f.offset)
            hi = min(f.length, (p + 1) * PIECE - f.offset)
            expected = original[lo:hi] if p in wanted_pieces else bytes(hi - lo)
            assert data[lo:hi] == expected, (rel, p)
            shared += hi - lo if p in wanted_pieces else 0
        assert (got / rel).stat().st_blocks * 512 <= shared + 2 * 65536, f"{rel} is not sparse"
    # A file that shares no piece with a chosen one is never created (here e.bin, at least).
    untouched = [("/".join(f.path)) for i, f in enumerate(meta.files)
                 if not set(layout.piece_range_of_file(i)) & wanted_pieces]
    assert "sel/e.bin" in untouched
    assert not [rel for rel in untouched if (got / rel).exists()]
    done = tp.events("completed")
    assert len(done) == 1
    stats = [r for r in tp.read() if r.get("type") == "stats"]
    assert stats and stats[-1]["torrents"][0]["progress"] == 1.0


def _verified_pieces(path: Path, original: bytes, num_pieces: int) -> set[int]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return set()
    return {p for p in range(num_pieces)
            if data[p * PIECE : (p + 1) * PIECE] == original[p * PIECE : (p + 1) * PIECE]}


def test_sequential_keeps_within_the_read_ahead_window(payload_factory, torrent_factory, libtorrent_peer,
                                                       peer_registry, tmp_path: Path) -> None:
    size = 12 * MiB
    payload = payload_factory(size, name="movie.bin")
    torrent = torrent_factory(payload, piece_length=PIECE)
    original = (payload.save_dir / "movie.bin").read_bytes()
    num_pieces = -(-size // PIECE)
    window = sequential_window(PIECE)
    assert window * 2 < num_pieces  # else in-order could not be told from any order
    seeder = libtorrent_peer(torrent, payload.save_dir, True)
    tp = torrentpy_factory(peer_registry)(torrent, tmp_path / "dl", False, peers=[seeder.address],
                                          extra_args=["--sequential", "--max-download-rate", "3M"])
    target = tmp_path / "dl" / "movie.bin"
    samples = 0
    while tp.process is not None and tp.process.poll() is None:
        have = _verified_pieces(target, original, num_pieces)
        if have and len(have) < num_pieces:
            first_missing = min(set(range(num_pieces)) - have)
            ahead = max(have)
            assert ahead < first_missing + window, \
                f"piece {ahead} is verified while piece {first_missing} is missing (window {window})"
            samples += 1
        time.sleep(0.2)
    assert tp.wait_exit(5) == 0, tp.log_tail()
    assert samples >= 5, "the download was too quick to watch"
    assert target.read_bytes() == original
