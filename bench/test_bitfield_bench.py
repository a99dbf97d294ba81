"""Bitfield operations the picker and peer code run on every HAVE/BITFIELD, against a pure-Python
baseline that is as fast as plain Python gets (an int for set algebra and popcount, bytes for wire
format and iteration)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from torrentpy._core import Availability, Bitfield

NUM_PIECES = 100_003  # a 25 GiB torrent at 256 KiB pieces; odd, so spare bits matter


class IntBitfield:
    """The baseline: bit i of the wire format is bit (nbits - 1 - i) of one Python int."""

    __slots__ = ("bits", "nbits")

    def __init__(self, nbits: int, bits: int = 0) -> None:
        self.nbits = nbits
        self.bits = bits

    @classmethod
    def from_bytes(cls, data: bytes, nbits: int) -> IntBitfield:
        nbytes = (nbits + 7) // 8
        if len(data) != nbytes:
            raise ValueError("wrong length")
        value = int.from_bytes(data, "big")
        spare = nbytes * 8 - nbits
        if value & ((1 << spare) - 1):
            raise ValueError("spare bits set")
        return cls(nbits, value >> spare)

    def count(self) -> int:
        return self.bits.bit_count()

    def __sub__(self, other: IntBitfield) -> IntBitfield:
        return IntBitfield(self.nbits, self.bits & ~other.bits)

    def __iter__(self) -> Iterator[int]:
        spare = (-self.nbits) % 8
        data = (self.bits << spare).to_bytes((self.nbits + 7) // 8, "big")
        for i, byte in enumerate(data):
            if byte:
                for b in range(8):
                    if byte & (0x80 >> b):
                        yield i * 8 + b


def _wire(density: float, seed: int) -> bytes:
    rng = random.Random(seed)
    bf = Bitfield(NUM_PIECES)
    for i in range(NUM_PIECES):
        if rng.random() < density:
            bf.set(i)
    return bf.to_bytes()


@pytest.fixture(scope="module")
def wires() -> tuple[bytes, bytes]:
    return _wire(0.6, 1), _wire(0.5, 2)  # theirs, mine


def _bench(benchmark: Any, compare: Any, label: str, side: str, fn: Any) -> Any:
    compare(benchmark, f"bitfield {label}", side, baseline="pure Python")
    return benchmark(fn)


@pytest.mark.parametrize("side", ["ours", "baseline"])
def test_from_bytes(benchmark: Any, compare: Any, wires: tuple[bytes, bytes], side: str) -> None:
    cls: Any = Bitfield if side == "ours" else IntBitfield
    result = _bench(benchmark, compare, "from_bytes", side, lambda: cls.from_bytes(wires[0], NUM_PIECES))
    assert result.count() == Bitfield.from_bytes(wires[0], NUM_PIECES).count()


@pytest.mark.parametrize("side", ["ours", "baseline"])
def test_count(benchmark: Any, compare: Any, wires: tuple[bytes, bytes], side: str) -> None:
    cls: Any = Bitfield if side == "ours" else IntBitfield
    bf = cls.from_bytes(wires[0], NUM_PIECES)
    # Ours keeps a running count; the int recounts. Both answer "how many pieces does the peer have".
    want = Bitfield.from_bytes(wires[0], NUM_PIECES).count()
    assert _bench(benchmark, compare, "count", side, bf.count) == want


@pytest.mark.parametrize("side", ["ours", "baseline"])
def test_theirs_minus_mine(benchmark: Any, compare: Any, wires: tuple[bytes, bytes], side: str) -> None:
    cls: Any = Bitfield if side == "ours" else IntBitfield
    theirs, mine = (cls.from_bytes(w, NUM_PIECES) for w in wires)
    want = (Bitfield.from_bytes(wires[0], NUM_PIECES) - Bitfield.from_bytes(wires[1], NUM_PIECES)).count()
    assert _bench(benchmark, compare, "theirs - mine", side, lambda: theirs - mine).count() == want


@pytest.mark.parametrize("side", ["ours", "baseline"])
def test_iteration(benchmark: Any, compare: Any, wires: tuple[bytes, bytes], side: str) -> None:
    cls: Any = Bitfield if side == "ours" else IntBitfield
    bf = cls.from_bytes(wires[0], NUM_PIECES)
    want = list(Bitfield.from_bytes(wires[0], NUM_PIECES))
    assert _bench(benchmark, compare, "iteration", side, lambda: list(bf)) == want


@pytest.mark.parametrize("side", ["ours", "baseline"])
def test_availability_add_peer(benchmark: Any, compare: Any, wires: tuple[bytes, bytes], side: str) -> None:
    """Counting a new peer's pieces: the per-BITFIELD work of rarest-first."""
    if side == "ours":
        bf = Bitfield.from_bytes(wires[0], NUM_PIECES)
        av = Availability(NUM_PIECES)
        _bench(benchmark, compare, "availability add_peer", side, lambda: av.add_peer(bf))
        assert av[next(iter(bf))] >= 1
    else:
        have = list(Bitfield.from_bytes(wires[0], NUM_PIECES))
        counts = [0] * NUM_PIECES

        def add() -> None:
            for i in have:
                counts[i] += 1

        _bench(benchmark, compare, "availability add_peer", side, add)
        assert counts[have[0]] >= 1
