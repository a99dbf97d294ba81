"""Fuzz target for the Cython core (torrentpy/_core): `Bitfield` from arbitrary bytes and lengths, its
set operations against a plain-Python model, and `verify_many` / `verify_pieces` with buffers and digests
of mismatched sizes against hashlib. Coverage guidance comes from this file's Python only (the C is not
instrumented), so the harness branches on the shapes that matter itself.

Byte 0 picks the case (even: bitfields, odd: hashing); byte 1..2 a bit count; the rest is data.

    .venv/bin/python fuzz/run.py core [-max_total_time=60]
"""

from __future__ import annotations

import hashlib

from torrentpy._core import Bitfield, verify_many, verify_pieces


def _model(raw: bytes, nbits: int) -> set[int]:
    return {i for i in range(nbits) if raw[i >> 3] & (0x80 >> (i & 7))}


def _check(bf: Bitfield, bits: set[int], nbits: int) -> None:
    assert len(bf) == nbits and bf.count() == len(bits) and set(bf) == bits
    assert bf.all() == (len(bits) == nbits) and bf.any() == bool(bits)
    missing = [i for i in range(nbits) if i not in bits]
    assert bf.missing() == missing
    assert bf.first_missing() == (missing[0] if missing else -1)
    assert bf.to_flags() == bytes(int(i in bits) for i in range(nbits))
    assert Bitfield.from_bytes(bf.to_bytes(), nbits) == bf


def _bitfields(data: bytes) -> None:
    nbits = int.from_bytes(data[1:3], "big") if len(data) >= 3 else 0
    raw = data[3:]
    try:
        bf = Bitfield.from_bytes(raw, nbits)
    except ValueError:
        spare = len(raw) == (nbits + 7) // 8 and nbits % 8 and raw[-1] & (0xFF >> (nbits % 8))
        assert len(raw) != (nbits + 7) // 8 or spare, "a well-formed bitfield was refused"
        # The same bytes under the length they fit must be accepted, spare bits cleared.
        nbits = len(raw) * 8
        bf = Bitfield.from_bytes(raw, nbits)
    bits = _model(raw, nbits)
    _check(bf, bits, nbits)
    reversed_raw = bytearray(reversed(raw))
    if nbits % 8:
        reversed_raw[-1] &= 0xFF & ~(0xFF >> (nbits % 8))  # spare bits past the last piece stay clear
    other_raw = bytes(reversed_raw)
    other = Bitfield.from_bytes(other_raw, nbits)
    theirs = _model(other_raw, nbits)
    _check(bf & other, bits & theirs, nbits)
    _check(bf | other, bits | theirs, nbits)
    _check(bf - other, bits - theirs, nbits)
    _check(~bf, set(range(nbits)) - bits, nbits)
    assert bf.has_any_missing_from(other) == bool(bits - theirs)
    for index in (-1, nbits, nbits + 8, *sorted(bits)[:3]):
        try:
            copy = bf.copy()
            copy.clear(index)
            copy.set(index)
        except IndexError:
            assert not 0 <= index < nbits
        else:
            assert copy == bf
    if nbits != len(raw) * 8 or not raw:
        try:
            bf & Bitfield(nbits + 1)
        except ValueError:
            pass
        else:
            raise AssertionError("bitfields of different sizes combined")


def _hashing(data: bytes) -> None:
    # Cut the data into buffers at the zero bytes; the digests follow, one per buffer or not.
    count = data[1] % 9 if len(data) > 1 else 0
    rest = data[2:]
    buffers = rest.split(b"\x00")[:count] if count else []
    digests = b"".join(hashlib.sha1(b).digest() for b in buffers)
    if data[0] & 2 and digests:
        digests = digests[:-1] + bytes([digests[-1] ^ 1])  # the last buffer must then fail
    if data[0] & 4:
        digests = digests[: len(rest) % (len(digests) + 1)]  # mismatched sizes
    try:
        got = verify_many([bytearray(b) if i % 2 else b for i, b in enumerate(buffers)], digests, threads=1)
    except ValueError:
        assert len(digests) != 20 * len(buffers)
    else:
        assert len(digests) == 20 * len(buffers)
        assert got == [hashlib.sha1(b).digest() == digests[20 * i : 20 * i + 20] for i, b in enumerate(buffers)]
    piece_length = (data[1] if len(data) > 1 else 0) % 64
    try:
        ok = verify_pieces(rest, piece_length, digests, threads=1)
    except ValueError:
        return
    assert piece_length > 0 and len(digests) % 20 == 0
    slices = [rest[i : i + piece_length] for i in range(0, len(rest), piece_length)]
    assert len(slices) == len(digests) // 20
    assert ok == [hashlib.sha1(s).digest() == digests[20 * i : 20 * i + 20] for i, s in enumerate(slices)]


def test_one_input(data: bytes) -> None:
    if not data:
        return
    if data[0] & 1:
        _hashing(data)
    else:
        _bitfields(data)
