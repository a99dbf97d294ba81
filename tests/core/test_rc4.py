"""The compiled RC4 of MSE: known key streams, and the three entry points agreeing with each other."""

from __future__ import annotations

import random

import pytest

from torrentpy._core import RC4


def _reference(key: bytes, n: int, discard: int) -> bytes:
    """RC4 as the textbook writes it, to check the compiled one against."""
    s = list(range(256))
    j = 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) & 255
        s[i], s[j] = s[j], s[i]
    i = j = 0
    out = bytearray()
    for _ in range(discard + n):
        i = (i + 1) & 255
        j = (j + s[i]) & 255
        s[i], s[j] = s[j], s[i]
        out.append(s[(s[i] + s[j]) & 255])
    return bytes(out[discard:])


# RFC 6229, key 0x0102030405: the key stream at offsets 0 and 1024 (MSE drops the first 1024 bytes).
@pytest.mark.parametrize(("discard", "stream"), [(0, "b2396305f03dc027ccc3524a0a1118a8"),
                                                  (1024, "30abbcc7c20b01609f23ee2d5f6bb7df")])
def test_rfc6229_key_stream(discard: int, stream: str) -> None:
    assert RC4(bytes([1, 2, 3, 4, 5]), discard).apply(bytes(16)).hex() == stream


def test_matches_the_textbook_for_a_sha1_sized_key() -> None:
    key = bytes(range(7, 27))
    data = random.Random(1).randbytes(3000)
    expected = bytes(a ^ b for a, b in zip(data, _reference(key, len(data), 1024), strict=True))
    assert RC4(key).apply(data) == expected


def test_entry_points_continue_one_stream_and_leave_inputs_alone() -> None:
    key = b"k" * 20
    rng = random.Random(2)
    # Small and large pieces: the large ones take the path that releases the GIL.
    pieces = [rng.randbytes(n) for n in (0, 1, 13, 16384, 5, 100_000, 16383)]
    whole = RC4(key).apply(b"".join(pieces))

    cipher = RC4(key)
    out = bytearray()
    for i, piece in enumerate(pieces):
        if i % 3 == 0:
            out += cipher.apply(piece)
        elif i % 3 == 1:
            buf = bytearray(piece)
            cipher.apply_inplace(buf)
            out += buf
        else:
            out += cipher.apply_chunks([memoryview(piece)[:7], piece[7:]])
    assert bytes(out) == whole

    originals = [bytes(p) for p in pieces]
    views = [memoryview(p) for p in pieces]
    assert RC4(key).apply_chunks(views) == whole
    assert [bytes(v) for v in views] == originals  # encrypted into a new buffer, the shared ones untouched


def test_decrypting_is_applying_the_same_stream() -> None:
    data = random.Random(3).randbytes(70_000)
    assert RC4(b"secret").apply(RC4(b"secret").apply(data)) == data


@pytest.mark.parametrize("key", [b"", bytes(257)])
def test_key_length_is_checked(key: bytes) -> None:
    with pytest.raises(ValueError, match="1 to 256 bytes"):
        RC4(key)


def test_read_only_buffers_cannot_be_decrypted_in_place() -> None:
    with pytest.raises((TypeError, ValueError, BufferError)):
        RC4(b"k").apply_inplace(b"read-only")  # type: ignore[arg-type]
