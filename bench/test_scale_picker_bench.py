"""Picker cost per block as the piece count grows: 1k, 10k and 100k pieces of 16 KiB (the last a 1.6 GiB
torrent), 50 peers, the engine's steady-state pattern (one pick + one on_block per block, a HAVE from a
peer now and then). The per-block cost must not grow with the piece count.

Run: .venv/bin/pytest bench/test_scale_picker_bench.py -s"""

from __future__ import annotations

import random
import time
from collections import deque

from torrentpy._core import Bitfield
from torrentpy.engine.picker import PiecePicker

BLOCK = 16384
NUM_PEERS = 50
QUEUE = 8
# Fewer than half the smallest torrent's pieces: every size is measured away from its endgame.
BLOCKS = 400
# A peer joining costs O(pieces) once (its availability, and rebuilding the picker's rarity index at the
# next pick), as do the random-first picks before the first pieces are in; the timer starts after those.
WARMUP = 50
SIZES = (1_000, 10_000, 100_000)
# O(log n) would allow a little growth over two decades; a scan per pick was ~45x.
MAX_GROWTH = 2.0


def _swarm(num_pieces: int, seed: int) -> tuple[PiecePicker, list[str]]:
    rng = random.Random(seed)
    p = PiecePicker(num_pieces, BLOCK, num_pieces * BLOCK, block_size=BLOCK, rng=random.Random(seed))
    keys = []
    for i in range(NUM_PEERS):
        if i % 5 == 0:
            bf = Bitfield.full(num_pieces)
        else:
            bf = Bitfield.from_bytes(rng.randbytes((num_pieces + 7) // 8), num_pieces)
            for spare in range(num_pieces, (num_pieces + 7) // 8 * 8):
                bf[spare] = False  # type: ignore[index]
        p.add_peer(f"peer{i}", bf)
        keys.append(f"peer{i}")
    return p, keys


def _us_per_block(num_pieces: int) -> float:
    p, keys = _swarm(num_pieces, 1)
    rng = random.Random(2)
    queues: dict[str, deque] = {k: deque(p.pick(k, QUEUE, now=0.0)) for k in keys}
    received = 0
    start = time.perf_counter()
    while received < WARMUP + BLOCKS and not p.done():
        if received == WARMUP:
            start = time.perf_counter()
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
            if received % 7 == 0:
                p.peer_have(keys[rng.randrange(NUM_PEERS)], rng.randrange(num_pieces))
            q.extend(p.pick(k, QUEUE - len(q), now=received * 1e-4))
    return (time.perf_counter() - start) / (received - WARMUP) * 1e6


# Measured before the rarity index: 47, 285 and 2,125 µs a block for 1k, 10k and 100k pieces (every pick
# ranked the whole torrent).
def test_per_block_cost_does_not_grow_with_piece_count() -> None:
    costs = {n: min(_us_per_block(n) for _ in range(2)) for n in SIZES}
    print("\npicker µs per block: " + ", ".join(f"{n:,} pieces {c:.1f}" for n, c in costs.items()))
    assert costs[SIZES[-1]] < MAX_GROWTH * costs[SIZES[0]], costs
