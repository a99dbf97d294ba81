"""Random and mutated inputs for running the fuzz targets without atheris (a smoke test, not a fuzzer)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence

_TOKENS = [b"e", b"i", b"l", b"d", b"0", b"9", b":", b"-", b"i-0e", b"le", b"de"]


def mutate(seed: bytes, rng: random.Random) -> bytes:
    """One to four byte-level edits of `seed`: flips, inserts, deletes, splices of bencode tokens."""
    data = bytearray(seed)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        pos = rng.randrange(len(data) + 1)
        if op == 0 and data:
            data[min(pos, len(data) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1:
            data[pos:pos] = rng.choice(_TOKENS)
        elif op == 2 and data:
            del data[pos : pos + rng.randint(1, 8)]
        elif op == 3:
            data[pos:pos] = rng.randbytes(rng.randint(1, 8))
        elif op == 4 and data:
            start = rng.randrange(len(data))
            data[pos:pos] = data[start : start + rng.randint(1, 32)]
    return bytes(data)


def inputs(seeds: Sequence[bytes], iterations: int, rng_seed: int = 0) -> Iterator[bytes]:
    """`iterations` inputs: a third pure random bytes, the rest mutations of `seeds`."""
    rng = random.Random(rng_seed)
    for i in range(iterations):
        if i % 3 == 0 or not seeds:
            yield rng.randbytes(rng.randint(0, 64))
        else:
            yield mutate(rng.choice(seeds), rng)


def run(target: Callable[[bytes], None], seeds: Sequence[bytes], iterations: int, rng_seed: int = 0) -> int:
    """Feed `target` the seeds and `iterations` generated inputs; returns how many ran."""
    count = 0
    for data in [*seeds, *inputs(seeds, iterations, rng_seed)]:
        target(data)
        count += 1
    return count
