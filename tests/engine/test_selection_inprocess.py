"""Selective and sequential download by a real Torrent in-process (tests/engine/harness.py)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from tests.engine.harness import FakeHost, ManualClock, ScriptedPeer, until
from tests.engine.memnet import Network
from torrentpy.creation import create_torrent
from torrentpy.engine.selection import SelectionError
from torrentpy.metainfo import Metainfo, parse_torrent

pytestmark = pytest.mark.timeout(30)

PIECE_LENGTH = 65536
# a: pieces 0-1; b: 1-4 (shares 1 with a, 4 with c); c: 4-6; d: 6-9 (shares 6 with c).
SIZES = {"a.bin": 100_000, "b.bin": 200_000, "c.bin": 100_000, "d.bin": 200_000}
SKIPPED = {2, 3, 7, 8, 9}  # pieces holding bytes of b and d only


def make_multi(folder: Path) -> tuple[Metainfo, bytes]:
    rng = random.Random(7)
    root = folder / "multi"
    root.mkdir(parents=True)
    data = b""
    for name, size in SIZES.items():
        chunk = rng.randbytes(size)
        (root / name).write_bytes(chunk)
        data += chunk
    return parse_torrent(create_torrent(str(root), piece_length=PIECE_LENGTH, creation_date=0)), data


def requested_pieces(seeds: list[ScriptedPeer]) -> set[int]:
    return {r[0] for s in seeds for r in s.requests}


async def test_only_wanted_files_are_fetched_then_more_at_runtime(tmp_path: Path) -> None:
    net, clock = Network(), ManualClock()
    meta, data = make_multi(tmp_path / "seed")
    assert [f.path[-1] for f in meta.files] == list(SIZES)
    seeds = [ScriptedPeer(net, f"10.0.0.{i}", meta, payload=data) for i in (1, 2)]
    host = FakeHost(net, "10.0.1.1", clock=clock)
    dl = tmp_path / "dl"
    torrent = host.add(meta, dl, seed_ratio=None)
    torrent.set_files_wanted([1, 3], False)  # before start: kept until the metadata is bound
    await torrent.start()
    torrent.add_candidates([s.addr for s in seeds])
    torrent.tick(clock.now)
    await until(lambda: torrent.complete, what="wanted files complete")
    assert torrent.state == "seeding"
    assert not requested_pieces(seeds) & SKIPPED
    root = dl / "multi"
    assert (root / "a.bin").read_bytes() == data[:100_000]
    assert (root / "c.bin").read_bytes() == data[300_000:400_000]
    # b and d are written only where they share a piece with a wanted file: elsewhere never.
    b = (root / "b.bin").read_bytes()
    assert b[: 2 * PIECE_LENGTH - 100_000] == data[100_000 : 2 * PIECE_LENGTH]
    assert b[2 * PIECE_LENGTH - 100_000 : 4 * PIECE_LENGTH - 100_000] == bytes(2 * PIECE_LENGTH)
    if (root / "d.bin").exists():
        d = (root / "d.bin").read_bytes()
        assert d[7 * PIECE_LENGTH - 400_000 :].count(0) == len(d) - (7 * PIECE_LENGTH - 400_000)
    snap = torrent.snapshot(clock.now)
    assert snap.progress == 1.0
    wanted_pieces = meta.num_pieces - len(SKIPPED)
    assert snap.size_when_done == snap.done == wanted_pieces * PIECE_LENGTH
    assert [(f.wanted, f.priority) for f in snap.files] == [(True, 0), (False, 0), (True, 0), (False, 0)]
    assert snap.files[0].bytes_completed == 100_000
    assert torrent.left_bytes() == 0

    with pytest.raises(SelectionError):
        torrent.set_files_wanted([4], True)
    # Wanting the rest while seeding: download again, to the whole payload.
    torrent.set_files_wanted([1, 3], True)
    assert torrent.state == "downloading" and not torrent.complete
    await until(lambda: not torrent.peers, what="the seeds left when we were done")
    for addr in list(torrent.candidates):
        torrent.candidates[addr] = 0.0
    torrent.tick(clock.advance(1))
    await until(lambda: torrent.complete, what="everything complete")
    for name, start_end in (("b.bin", (100_000, 300_000)), ("d.bin", (400_000, 600_000))):
        assert (root / name).read_bytes() == data[start_end[0] : start_end[1]]
    assert torrent.snapshot(clock.now).size_when_done == meta.total_length


async def test_unwanted_files_are_not_created_and_the_choice_is_resumed(tmp_path: Path) -> None:
    net, clock = Network(), ManualClock()
    meta, _data = make_multi(tmp_path / "seed")
    host = FakeHost(net, "10.0.1.1", clock=clock)
    dl = tmp_path / "dl"
    torrent = host.add(meta, dl, seed_ratio=None)
    torrent.set_files_wanted([0, 1, 3], False)
    torrent.set_files_priority([2], 1)
    torrent.sequential = True
    await torrent.start()
    assert not (dl / "multi" / "a.bin").exists() and not (dl / "multi" / "d.bin").exists()
    await torrent.stop()

    again = FakeHost(net, "10.0.1.2", clock=clock).add(meta, dl, seed_ratio=None)
    await again.start()
    assert [(c.wanted, c.priority) for c in again.selection.choices()] == [
        (False, 0), (False, 0), (True, 1), (False, 0)]
    assert again.sequential
    assert again.left_bytes() == 3 * PIECE_LENGTH  # c's pieces 4-6
    await again.stop()


async def test_sequential_completes_pieces_in_order_within_the_window(tmp_path: Path) -> None:
    net, clock = Network(), ManualClock()
    meta, data = make_multi(tmp_path / "seed")
    seed = ScriptedPeer(net, "10.0.0.1", meta, payload=data)
    host = FakeHost(net, "10.0.1.1", clock=clock)
    torrent = host.add(meta, tmp_path / "dl", seed_ratio=None)
    torrent.sequential = True
    await torrent.start()
    assert torrent.picker is not None
    torrent.picker.sequential_window = 3
    order: list[int] = []
    passed = torrent.picker.piece_passed

    def record(index: int) -> Any:
        order.append(index)
        return passed(index)

    torrent.picker.piece_passed = record  # type: ignore[method-assign]
    torrent.add_candidates([seed.addr])
    torrent.tick(clock.now)
    await until(lambda: torrent.complete, what="download complete")
    assert sorted(order) == list(range(meta.num_pieces))
    first_missing = 0
    done: set[int] = set()
    for index in order:
        assert index < first_missing + 3, f"piece {index} completed outside the window at {first_missing}"
        done.add(index)
        while first_missing in done:
            first_missing += 1
    started = [r[0] for r in seed.requests]
    assert started == sorted(started)  # one peer, in order: requests never go back


async def test_magnet_so_selects_files_once_the_metadata_arrives(tmp_path: Path) -> None:
    from torrentpy.metainfo import parse_magnet

    net, clock = Network(), ManualClock()
    meta, data = make_multi(tmp_path / "seed")
    seed = ScriptedPeer(net, "10.0.0.1", meta, payload=data, info_bytes=meta.info_bytes)
    magnet = parse_magnet(f"magnet:?xt=urn:btih:{meta.info_hash_hex}&so=2")
    assert magnet.select_only == (2,)
    host = FakeHost(net, "10.0.1.1", clock=clock)
    torrent = host.add(magnet, tmp_path / "dl", seed_ratio=None)
    await torrent.start()
    torrent.add_candidates([seed.addr])
    torrent.tick(clock.now)
    await until(lambda: torrent.complete, what="c.bin complete")
    assert [c.wanted for c in torrent.selection.choices()] == [False, False, True, False]
    assert {r[0] for r in seed.requests} == {4, 5, 6}
    assert (tmp_path / "dl" / "multi" / "c.bin").read_bytes() == data[300_000:400_000]
    assert not (tmp_path / "dl" / "multi" / "a.bin").exists()
