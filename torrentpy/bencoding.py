"""Bounded bencoding: `bencode.py` encodes, the compiled core decodes.

Decoding adds the limits a network-facing client needs, turns every failure into one
BencodeError, and finds the exact byte span of a top-level key (the info-hash is SHA-1 over
the `info` value as it appears in the file, canonical or not). BEP 3 allows only canonical
decimal digits in integers and lengths ("i 1_0e", "i+3e", "03:abc" are errors)."""

import hashlib
from typing import Any

import bencodepy

from torrentpy._core.bdecode import Decoder, Malformed
from torrentpy.errors import BencodeError

# Deeper nesting than this appears in no real torrent or message.
MAX_DEPTH = 64
# A torrent with 100,000 pieces and 10,000 files has well under 100k tokens;
# 3M (libtorrent's own default) bounds memory for hostile inputs at a few hundred MiB.
MAX_TOKENS = 3_000_000
# Larger than any sane .torrent (libtorrent refuses above 10 MB by default); caps memory.
MAX_INPUT_BYTES = 64 * 1024 * 1024

Span = tuple[int, int]

# Data that ends early or holds a byte no value starts with, worded as bencode.py's decoder did.
_NOT_BENCODED = "invalid bencoding: not a valid bencoded string"
_MALFORMED = "invalid bencoding: truncated or malformed data"


def _check_size(data: object, max_bytes: int) -> bytes:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise BencodeError("bencoded data must be bytes")
    if len(data) > max_bytes:
        raise BencodeError(f"bencoded data is {len(data)} bytes, more than the {max_bytes}-byte limit")
    if not data:
        raise BencodeError("bencoded data is empty")
    return bytes(data)


def decode(
    data: bytes | bytearray | memoryview,
    *,
    max_bytes: int = MAX_INPUT_BYTES,
    max_tokens: int = MAX_TOKENS,
    max_depth: int = MAX_DEPTH,
) -> Any:
    """Decode one complete bencoded value; trailing bytes are an error."""
    raw = _check_size(data, max_bytes)
    try:
        value, end = Decoder(raw, max_tokens, max_depth).value(0)
    except Malformed:
        raise BencodeError(_NOT_BENCODED) from None
    if end != len(raw):
        raise BencodeError("invalid bencoding: invalid bencoded value (data after valid prefix)")
    return value


def decode_prefix(
    data: bytes | bytearray | memoryview,
    *,
    max_bytes: int = MAX_INPUT_BYTES,
    max_tokens: int = MAX_TOKENS,
    max_depth: int = MAX_DEPTH,
) -> tuple[Any, int]:
    """Decode the one bencoded value that starts `data`; return it and the offset just past it.
    For messages that carry raw bytes after a dictionary (BEP 9 metadata pieces)."""
    raw = _check_size(data, max_bytes)
    try:
        value, end = Decoder(raw, max_tokens, max_depth).value(0)
    except Malformed:
        raise BencodeError(_MALFORMED) from None
    return value, end


def decode_dict_with_spans(
    data: bytes | bytearray | memoryview,
    *,
    max_bytes: int = MAX_INPUT_BYTES,
    max_tokens: int = MAX_TOKENS,
    max_depth: int = MAX_DEPTH,
) -> tuple[dict[bytes, Any], dict[bytes, Span]]:
    """Decode a top-level dictionary and return, with it, the (start, end) byte span
    of each top-level value in `data`."""
    raw = _check_size(data, max_bytes)
    if raw[:1] != b"d":
        raise BencodeError("expected a bencoded dictionary")
    decoder = Decoder(raw, max_tokens, max_depth)
    result: dict[bytes, Any] = {}
    spans: dict[bytes, Span] = {}
    pos = 1
    try:
        while raw[pos : pos + 1] != b"e":
            if pos >= len(raw):
                raise BencodeError("invalid bencoding: unterminated dictionary")
            key, pos = decoder.key(pos)
            start = pos
            value, pos = decoder.value(pos, depth=1)
            result[key] = value
            spans[key] = (start, pos)
    except Malformed:
        raise BencodeError(_MALFORMED) from None
    if pos + 1 != len(raw):
        raise BencodeError("invalid bencoding: data after the end of the dictionary")
    return result, spans


def decode_checked_dict(
    data: bytes | bytearray | memoryview,
    key: bytes = b"sha1",
    *,
    max_bytes: int = MAX_INPUT_BYTES,
    max_tokens: int = MAX_TOKENS,
    max_depth: int = MAX_DEPTH,
) -> tuple[dict[bytes, Any], bool]:
    """Decode a top-level dictionary whose `key` holds the SHA-1 of the bencoding of its other keys (the
    state and resume files); return it without `key`, and whether the digest matches.

    A file written by `encode` is canonical, so the bencoding of the other keys is the file with the
    `key` entry cut out: hashing that costs a few microseconds, where encoding the dictionary again in
    pure Python took ~100 µs a file (seconds for 10,000 torrents at start-up). A file that is not
    canonical is still checked against its canonical encoding."""
    value, spans = decode_dict_with_spans(data, max_bytes=max_bytes, max_tokens=max_tokens, max_depth=max_depth)
    digest = value.pop(key, None)
    if not isinstance(digest, bytes):
        return value, False
    start, end = spans[key]
    key_start = start - len(b"%d:%s" % (len(key), key))
    raw = bytes(data)
    if hashlib.sha1(raw[:key_start] + raw[end:]).digest() == digest:
        return value, True
    return value, hashlib.sha1(encode(value)).digest() == digest


def encode(value: Any) -> bytes:
    """Bencode a value; dictionary keys are sorted as BEP 3 requires."""
    try:
        return bencodepy.encode(value)
    # bencode.py signals an unsupported type with a KeyError from its type dispatch table.
    except (KeyError, TypeError, ValueError) as exc:
        raise BencodeError(f"cannot bencode value: {exc}") from None
