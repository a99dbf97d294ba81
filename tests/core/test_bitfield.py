"""Bitfield and Availability: behaviour, wire format (BEP 3 bit order), and agreement with Python sets."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from torrentpy._core import Availability, Bitfield

SIZES = [0, 1, 7, 8, 9, 100003]


def _bf(size: int, bits: set[int]) -> Bitfield:
    bf = Bitfield(size)
    for i in bits:
        bf.set(i)
    return bf


def _wire(size: int, bits: set[int]) -> bytes:
    """The BEP 3 encoding, built independently: piece 0 is the high bit of byte 0."""
    out = bytearray((size + 7) // 8)
    for i in bits:
        out[i // 8] |= 0x80 >> (i % 8)
    return bytes(out)


@pytest.mark.parametrize("size", SIZES)
def test_new_bitfield_is_empty(size: int) -> None:
    bf = Bitfield(size)
    assert len(bf) == size
    assert bf.count() == 0
    assert list(bf) == []
    assert bf.missing() == list(range(size))
    assert bf.first_missing() == (0 if size else -1)
    assert bf.any() is False
    assert bf.all() is (size == 0)
    assert bf.to_bytes() == bytes((size + 7) // 8)


def test_negative_size_rejected() -> None:
    with pytest.raises(ValueError):
        Bitfield(-1)


@pytest.mark.parametrize("size", [s for s in SIZES if s])
def test_get_set_clear(size: int) -> None:
    bf = Bitfield(size)
    picks = sorted({0, size - 1, size // 2})
    for i in picks:
        bf.set(i)
        bf.set(i)  # idempotent: must not count twice
    assert bf.count() == len(picks)
    assert all(bf.get(i) and bf[i] for i in picks)
    assert [i for i in range(min(size, 64)) if bf[i]] == [i for i in picks if i < 64]
    assert list(bf) == picks
    bf.clear(picks[0])
    bf.clear(picks[0])
    assert bf.count() == len(picks) - 1
    assert bf.get(picks[0]) is False
    assert bf.first_missing() == 0


@pytest.mark.parametrize("size", SIZES)
def test_index_errors(size: int) -> None:
    bf = Bitfield(size)
    for bad in (size, size + 1, -1, -size - 1):
        with pytest.raises(IndexError):
            bf.get(bad)
        with pytest.raises(IndexError):
            bf[bad]
        with pytest.raises(IndexError):
            bf.set(bad)
        with pytest.raises(IndexError):
            bf.clear(bad)
    assert bf.count() == 0


@pytest.mark.parametrize("size", SIZES)
def test_full(size: int) -> None:
    bf = Bitfield.full(size)
    assert bf.count() == size
    assert bf.all()
    assert bf.first_missing() == -1
    assert bf.missing() == []
    assert list(bf) == list(range(size))
    assert bf.to_bytes() == _wire(size, set(range(size)))


def test_first_missing() -> None:
    bf = Bitfield.full(20)
    bf.clear(13)
    assert bf.first_missing() == 13
    bf.clear(3)
    assert bf.first_missing() == 3
    # Spare bits in the last byte are not pieces: 9 set bits of a 9-bit field leave nothing missing.
    assert Bitfield.full(9).first_missing() == -1


def test_from_string_and_repr() -> None:
    bf = Bitfield.from_string("1100101")
    assert list(bf) == [0, 1, 4, 6]
    assert repr(bf) == "Bitfield('1100101')"
    assert bf.to_bytes() == bytes([0b11001010])
    with pytest.raises(ValueError):
        Bitfield.from_string("10x")


def test_wire_bit_order() -> None:
    bf = Bitfield(10)
    bf.set(0)
    bf.set(9)
    assert bf.to_bytes() == bytes([0x80, 0x40])
    assert list(Bitfield.from_bytes(b"\x01\x80", 9)) == [7, 8]


@pytest.mark.parametrize("size", SIZES)
def test_from_bytes_round_trip(size: int) -> None:
    rng = random.Random(size)
    bits = {i for i in range(size) if rng.random() < 0.3}
    data = _wire(size, bits)
    bf = Bitfield.from_bytes(data, size)
    assert set(bf) == bits
    assert bf.count() == len(bits)
    assert bf.to_bytes() == data
    assert Bitfield.from_bytes(bytearray(data), size) == bf
    assert Bitfield.from_bytes(memoryview(data), size) == bf


@pytest.mark.parametrize("size", SIZES)
def test_from_bytes_wrong_length(size: int) -> None:
    nbytes = (size + 7) // 8
    with pytest.raises(ValueError):
        Bitfield.from_bytes(bytes(nbytes + 1), size)
    if nbytes:
        with pytest.raises(ValueError):
            Bitfield.from_bytes(bytes(nbytes - 1), size)


@pytest.mark.parametrize("size", [1, 7, 9, 100003])
def test_from_bytes_spare_bits_set(size: int) -> None:
    data = bytearray((size + 7) // 8)
    data[-1] |= 1  # the lowest bit of the last byte is spare for every size not a multiple of 8
    with pytest.raises(ValueError):
        Bitfield.from_bytes(bytes(data), size)


def test_from_bytes_multiple_of_eight_has_no_spare_bits() -> None:
    assert Bitfield.from_bytes(b"\xff", 8).all()


def test_set_operations_small() -> None:
    a = Bitfield.from_string("1100110011")
    b = Bitfield.from_string("1010101010")
    assert a & b == Bitfield.from_string("1000100010")
    assert a | b == Bitfield.from_string("1110111011")
    assert a - b == Bitfield.from_string("0100010001")
    assert ~a == Bitfield.from_string("0011001100")
    assert (a & b).count() == 3 and (a | b).count() == 8 and (a - b).count() == 3 and (~a).count() == 4


@pytest.mark.parametrize("size", SIZES)
def test_invert_keeps_spare_bits_zero(size: int) -> None:
    inv = ~Bitfield(size)
    assert inv.count() == size
    assert inv.to_bytes() == _wire(size, set(range(size)))
    # The bytes must still parse: a peer would reject a bitfield with spare bits set.
    assert Bitfield.from_bytes(inv.to_bytes(), size) == inv
    assert ~inv == Bitfield(size)


def test_operations_reject_size_mismatch() -> None:
    a, b = Bitfield(8), Bitfield(9)
    for op in (lambda: a & b, lambda: a | b, lambda: a - b, lambda: a.has_any_missing_from(b)):
        with pytest.raises(ValueError):
            op()


def test_has_any_missing_from() -> None:
    theirs = Bitfield.from_string("0011")
    assert theirs.has_any_missing_from(Bitfield.from_string("0000"))
    assert theirs.has_any_missing_from(Bitfield.from_string("0010"))
    assert not theirs.has_any_missing_from(Bitfield.from_string("0011"))
    assert not theirs.has_any_missing_from(Bitfield.from_string("1111"))
    assert not Bitfield(0).has_any_missing_from(Bitfield(0))
    big_theirs, big_mine = Bitfield(100003), Bitfield.full(100003)
    big_theirs.set(100002)
    assert not big_theirs.has_any_missing_from(big_mine)
    big_mine.clear(100002)
    assert big_theirs.has_any_missing_from(big_mine)


def test_copy_is_independent_and_equality() -> None:
    a = Bitfield.from_string("101")
    b = a.copy()
    assert a == b and hash(a) == hash(b)
    b.set(1)
    assert a != b
    assert a.count() == 2 and b.count() == 3
    assert Bitfield(3) != Bitfield(4)
    assert Bitfield(3) != "000"


sizes = st.integers(min_value=0, max_value=300)


@st.composite
def sized_sets(draw: st.DrawFn, count: int = 1) -> tuple[int, list[set[int]]]:
    size = draw(sizes)
    if size == 0:
        return size, [set() for _ in range(count)]
    return size, [draw(st.sets(st.integers(0, size - 1))) for _ in range(count)]


@settings(max_examples=300, deadline=None)
@given(sized_sets(1))
def test_wire_round_trip_property(case: tuple[int, list[set[int]]]) -> None:
    size, (bits,) = case
    bf = _bf(size, bits)
    data = bf.to_bytes()
    assert data == _wire(size, bits)
    back = Bitfield.from_bytes(data, size)
    assert back == bf
    assert set(back) == bits
    assert back.count() == len(bits)
    assert back.missing() == sorted(set(range(size)) - bits)
    assert back.first_missing() == min(set(range(size)) - bits, default=-1)


@settings(max_examples=300, deadline=None)
@given(sized_sets(2))
def test_set_operations_agree_with_python_sets(case: tuple[int, list[set[int]]]) -> None:
    size, (x, y) = case
    a, b = _bf(size, x), _bf(size, y)
    universe = set(range(size))
    for got, want in ((a & b, x & y), (a | b, x | y), (a - b, x - y), (~a, universe - x)):
        assert set(got) == want
        assert got.count() == len(want)
        assert got.to_bytes() == _wire(size, want)
    assert a.has_any_missing_from(b) == bool(x - y)
    # Operands are unchanged.
    assert set(a) == x and set(b) == y


# --- Availability -------------------------------------------------------------


def test_availability_add_remove_peer() -> None:
    av = Availability(5)
    assert len(av) == 5 and av.peers == 0 and av.counts() == [0] * 5
    p1, p2 = Bitfield.from_string("11000"), Bitfield.from_string("01110")
    av.add_peer(p1)
    av.add_peer(p2)
    assert av.peers == 2
    assert av.counts() == [1, 2, 1, 1, 0]
    assert [av[i] for i in range(5)] == [1, 2, 1, 1, 0]
    assert av.min_available() == 0
    av.remove_peer(p1)
    assert av.peers == 1
    assert av.counts() == [0, 1, 1, 1, 0]
    av.remove_peer(p2)
    assert av.peers == 0 and av.counts() == [0] * 5


def test_availability_remove_never_goes_negative() -> None:
    av = Availability(3)
    av.remove_peer(Bitfield.full(3))
    av.decrement(1)
    assert av.counts() == [0, 0, 0] and av.peers == 0


def test_availability_increment_decrement() -> None:
    av = Availability(4)
    av.increment(2)
    av.increment(2)
    av.increment(0)
    assert av.counts() == [1, 0, 2, 0]
    av.decrement(2)
    assert av[2] == 1
    for bad in (-1, 4):
        with pytest.raises(IndexError):
            av.increment(bad)
        with pytest.raises(IndexError):
            av.decrement(bad)
        with pytest.raises(IndexError):
            av[bad]


def test_availability_min_available() -> None:
    av = Availability(3)
    av.add_peer(Bitfield.full(3))
    av.add_peer(Bitfield.from_string("011"))
    assert av.min_available() == 1
    assert Availability(0).min_available() == 0


def test_availability_size_mismatch() -> None:
    av = Availability(4)
    with pytest.raises(ValueError):
        av.add_peer(Bitfield(5))
    with pytest.raises(ValueError):
        av.remove_peer(Bitfield(3))
    with pytest.raises(ValueError):
        av.rarest(Bitfield(5))
    with pytest.raises(ValueError):
        Availability(-1)


def _availability(counts: list[int]) -> Availability:
    av = Availability(len(counts))
    for i, c in enumerate(counts):
        for _ in range(c):
            av.increment(i)
    return av


def test_rarest_orders_by_count() -> None:
    counts = [3, 1, 2, 0, 5, 1]
    av = _availability(counts)
    order = av.rarest(Bitfield.full(6), rng=random.Random(1))
    assert sorted(order) == list(range(6))
    assert [counts[i] for i in order] == sorted(counts)
    assert order[0] == 3 and set(order[1:3]) == {1, 5} and order[3:] == [2, 0, 4]


def test_rarest_only_candidates() -> None:
    av = _availability([0, 1, 2, 3])
    assert av.rarest(Bitfield.from_string("0110"), rng=random.Random(0)) == [1, 2]
    assert av.rarest(Bitfield(4)) == []


def test_rarest_limit() -> None:
    counts = [4, 3, 2, 1, 0, 0, 0]
    av = _availability(counts)
    full = Bitfield.full(7)
    assert av.rarest(full, limit=0) == []
    top = av.rarest(full, limit=3, rng=random.Random(5))
    assert sorted(top) == [4, 5, 6]
    four = av.rarest(full, limit=4, rng=random.Random(5))
    assert four[:3] == top and four[3] == 3
    assert len(av.rarest(full, limit=100, rng=random.Random(5))) == 7


def test_rarest_tie_break_is_random_but_never_beats_rarer() -> None:
    # Pieces 0..9 have count 2 and 10..19 count 1; 20 (rarest) has count 0.
    counts = [2] * 10 + [1] * 10 + [0]
    av = _availability(counts)
    full = Bitfield.full(len(counts))
    orders = set()
    for seed in range(40):
        order = av.rarest(full, rng=random.Random(seed))
        assert order[0] == 20
        assert set(order[1:11]) == set(range(10, 20))
        assert set(order[11:]) == set(range(10))
        assert [counts[i] for i in order] == sorted(counts)
        orders.add(tuple(order))
        # The same seed gives the same order: tests can pin it.
        assert av.rarest(full, rng=random.Random(seed)) == order
    assert len(orders) > 5, "ties were not broken randomly"


def test_availability_zero_pieces() -> None:
    av = Availability(0)
    av.add_peer(Bitfield(0))
    assert av.peers == 1 and av.counts() == [] and av.rarest(Bitfield(0)) == []


def test_to_flags_is_one_byte_per_piece() -> None:
    bf = Bitfield.from_string("1010011")
    assert bf.to_flags() == bytes([1, 0, 1, 0, 0, 1, 1])
    assert Bitfield(0).to_flags() == b""


def test_clamped_bytes_caps_counts_at_255() -> None:
    avail = Availability(3)
    for _ in range(300):
        avail.increment(0)
    avail.increment(2)
    assert avail.clamped_bytes() == bytes([255, 0, 1])
