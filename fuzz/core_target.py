"""Fuzz target for the Cython core (torrentpy/_core): `Bitfield` from arbitrary bytes and lengths, its
set operations against a plain-Python model, and `SpanCheck` (what the checker runs) over pieces made of
spans of a file and of padding, with spans past the end of the file, descriptors that do not exist and
digests of mismatched sizes, against hashlib. Coverage guidance comes from this file's Python only (the C is not
instrumented), so the harness branches on the shapes that matter itself.

Byte 0 picks the case (even: bitfields, odd: hashing); byte 1..2 a bit count; the rest is data.

    .venv/bin/python fuzz/run.py core [-max_total_time=60]
"""

from __future__ import annotations

import array
import hashlib
import itertools
import os

from torrentpy._core import Bitfield, SpanCheck

# One in-memory file for every input: SpanCheck reads from descriptors.
_FD = os.memfd_create("fuzz-core")


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


def _piece_bytes(content: bytes, spans: list[tuple[int, int, int]]) -> bytes | None:
    """What hashlib sees of a piece, or None when a span reaches past the end of the file."""
    out = b""
    for which, offset, length in spans:
        if which < 0:
            out += bytes(length)
        elif length and offset + length > len(content):
            return None
        else:
            out += content[offset : offset + length]
    return out


def _hashing(data: bytes) -> None:
    # Byte 1: how many spans (3 bytes each: file -1/0/1, offset, length); byte 0's high bits: where pieces
    # start; the rest is the file. File 1 does not exist, so a span naming it must be refused.
    nspans = data[1] % 9 if len(data) > 1 else 0
    head, content = data[2 : 2 + 3 * nspans], data[2 + 3 * nspans :]
    os.ftruncate(_FD, 0)
    os.pwrite(_FD, content, 0)
    spans = [(head[k] % 3 - 1, head[k + 1] % 64, head[k + 2] % 64) for k in range(0, len(head) - 2, 3)]
    starts = [0, *(i for i in range(1, len(spans)) if data[0] >> 3 & 1 << i % 5), len(spans)]
    pieces = [spans[a:b] for a, b in itertools.pairwise(starts)]
    model = [_piece_bytes(content, p) for p in pieces]
    digests = b"".join(hashlib.sha1(m or b"").digest() for m in model)
    if data[0] & 2 and digests:
        digests = digests[:-1] + bytes([digests[-1] ^ 1])  # the last piece must then fail
    if data[0] & 4:
        digests = digests[: len(content) % (len(digests) + 1)]  # mismatched sizes
    invalid = len(digests) != 20 * len(pieces) or any(which > 0 for which, _, _ in spans)
    try:
        check = SpanCheck([_FD], array.array("q", starts), array.array("i", [w for w, _, _ in spans]),
                          array.array("q", [o for _, o, _ in spans]), array.array("q", [n for _, _, n in spans]),
                          digests)
    except ValueError:
        assert invalid, "a well-formed check was refused"
        return
    assert not invalid, "a malformed check was accepted"
    got = check.run(1, 1)
    assert got == [m is not None and hashlib.sha1(m).digest() == digests[20 * i : 20 * i + 20]
                   for i, m in enumerate(model)]
    assert check.done == len(pieces)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    if data[0] & 1:
        _hashing(data)
    else:
        _bitfields(data)
