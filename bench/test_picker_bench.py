"""Picker cost per block: a 4096-piece torrent, 16 blocks per piece, 50 peers.

Run: .venv/bin/pytest bench/test_picker_bench.py
Each peer keeps a queue of requests; every step delivers one block and refills the queue, which is the
engine's steady-state call pattern (one pick + one on_block per block received)."""

from __future__ import annotations

import random
import time
from collections import deque

from torrentpy._core import Bitfield
from torrentpy.engine.picker import PiecePicker

NUM_PIECES = 4096
BLOCKS_PER_PIECE = 16
BLOCK = 16384
NUM_PEERS = 50
QUEUE = 8
# Generous ceiling so the test fails on an accidental full scan per pick, not on a slow machine.
MAX_US_PER_BLOCK = 60.0


def _swarm(seed: int) -> tuple[PiecePicker, list[str]]:
    rng = random.Random(seed)
    p = PiecePicker(NUM_PIECES, BLOCKS_PER_PIECE * BLOCK, NUM_PIECES * BLOCKS_PER_PIECE * BLOCK,
                    block_size=BLOCK, rng=random.Random(seed))
    keys = []
    for i in range(NUM_PEERS):
        key = f"peer{i}"
        if i % 5 == 0:
            bf = Bitfield.full(NUM_PIECES)
        else:
            bf = Bitfield.from_bytes(rng.randbytes(NUM_PIECES // 8), NUM_PIECES)
        p.add_peer(key, bf)
        keys.append(key)
    return p, keys


def _download(p: PiecePicker, keys: list[str], max_blocks: int) -> int:
    queues = {k: deque() for k in keys}
    now = 0.0
    for k in keys:
        queues[k].extend(p.pick(k, QUEUE, now=now))
    received = 0
    while received < max_blocks and not p.done():
        progressed = False
        for k in keys:
            q = queues[k]
            if q:
                blk = q.popleft()
                res = p.on_block(k, blk)
                for other, cancelled in res.cancel:
                    queues[other].remove(cancelled)
                if res.piece_complete:
                    p.piece_passed(blk.index)
                received += 1
                progressed = True
            q.extend(p.pick(k, QUEUE - len(q), now=now))
        now += 0.01
        if not progressed:
            break
    return received


def test_pick_and_on_block_per_block(benchmark) -> None:
    blocks = 20_000

    def setup():
        return _swarm(1), {}

    def run(p: PiecePicker, keys: list[str]) -> None:
        assert _download(p, keys, blocks) >= blocks

    benchmark.pedantic(run, setup=setup, rounds=3, iterations=1)
    per_block_us = benchmark.stats.stats.min / blocks * 1e6
    benchmark.extra_info["us_per_block"] = round(per_block_us, 2)
    assert per_block_us < MAX_US_PER_BLOCK


def test_whole_torrent_completes() -> None:
    p, keys = _swarm(2)
    t0 = time.perf_counter()
    received = _download(p, keys, 10**9)
    elapsed = time.perf_counter() - t0
    assert p.done()
    assert received >= NUM_PIECES * BLOCKS_PER_PIECE
    assert elapsed / received * 1e6 < MAX_US_PER_BLOCK
