"""Bounded bencoding over the `bencode.py` package.

bencode.py does the parsing; this layer adds the limits a network-facing client
needs, turns every failure into one BencodeError, and finds the exact byte span of
a top-level key (the info-hash is SHA-1 over the `info` value as it appears in the
file, canonical or not)."""

import re
from collections.abc import Callable
from typing import Any

import bencodepy
from bencodepy.decoder import BencodeDecoder

from torrentpy.errors import BencodeError

# Deeper nesting than this appears in no real torrent or message; recursion depth
# is also what bounds the Python stack the decoder uses.
MAX_DEPTH = 64
# A torrent with 100,000 pieces and 10,000 files has well under 100k tokens;
# 3M (libtorrent's own default) bounds memory for hostile inputs at a few hundred MiB.
MAX_TOKENS = 3_000_000
# Larger than any sane .torrent (libtorrent refuses above 10 MB by default); caps memory.
MAX_INPUT_BYTES = 64 * 1024 * 1024

Span = tuple[int, int]

# Python's int() also takes spaces, '+' and '_' ("i 1_0e"), which bencode.py lets through;
# BEP 3 allows only canonical decimal digits.
_INT = re.compile(rb"i(0|-?[1-9][0-9]*)e")
_LENGTH = re.compile(rb"(0|[1-9][0-9]*):")


class _BoundedDecoder(BencodeDecoder):
    """bencode.py's decoder with a token budget: it bounds depth but not breadth."""

    def __init__(self, max_tokens: int, max_depth: int) -> None:
        super().__init__(max_depth=max_depth)
        self.max_tokens = max_tokens
        self.tokens_left = max_tokens
        for key, func in list(self.decode_func.items()):
            self.decode_func[key] = self._counted(func)

    def _counted(self, func: Callable[..., tuple[Any, int]]) -> Callable[..., tuple[Any, int]]:
        def decode(x: bytes, f: int, **kwargs: Any) -> tuple[Any, int]:
            self.tokens_left -= 1
            if self.tokens_left < 0:
                raise BencodeError(f"bencoded data has too many elements (more than {self.max_tokens} tokens)")
            return func(x, f, **kwargs)

        return decode

    def decode_int(self, x: bytes, f: int, **kwargs: Any) -> tuple[int, int]:
        match = _INT.match(x, f)
        if match is None:
            raise BencodeError(f"invalid bencoding: bad integer at offset {f}")
        return int(match.group(1)), match.end()

    def decode_string(self, x: bytes, f: int, kind: str = "value", **kwargs: Any) -> tuple[bytes, int]:
        match = _LENGTH.match(x, f)
        if match is None:
            if kind == "key":
                raise BencodeError(f"invalid bencoding: dict key at offset {f} is not a string")
            raise BencodeError(f"invalid bencoding: bad string length at offset {f}")
        end = match.end() + int(match.group(1))
        if end > len(x):
            raise BencodeError(f"invalid bencoding: string at offset {f} runs past the end of the data")
        return x[match.end() : end], end


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
    decoder = _BoundedDecoder(max_tokens, max_depth)
    try:
        return decoder.decode(raw)
    except BencodeError:
        raise
    except (bencodepy.BencodeDecodeError, RecursionError, ValueError, TypeError, IndexError, KeyError) as exc:
        raise BencodeError(_describe(exc)) from None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, RecursionError) or "maximum depth" in str(exc):
        return "invalid bencoding: nested deeper than the depth limit"
    if isinstance(exc, bencodepy.BencodeDecodeError):
        return f"invalid bencoding: {exc}"
    return "invalid bencoding: truncated or malformed data"


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
    decoder = _BoundedDecoder(max_tokens, max_depth)
    try:
        value, end = decoder.decode_func[raw[0:1]](raw, 0)
    except BencodeError:
        raise
    except (bencodepy.BencodeDecodeError, RecursionError, ValueError, TypeError, IndexError, KeyError) as exc:
        raise BencodeError(_describe(exc)) from None
    if end > len(raw):
        raise BencodeError("invalid bencoding: truncated value")
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
    decoder = _BoundedDecoder(max_tokens, max_depth)
    result: dict[bytes, Any] = {}
    spans: dict[bytes, Span] = {}
    pos = 1
    try:
        while raw[pos : pos + 1] != b"e":
            if pos >= len(raw):
                raise BencodeError("invalid bencoding: unterminated dictionary")
            key, pos = decoder.decode_string(raw, pos, kind="key")
            start = pos
            value, pos = decoder.decode_func[raw[pos : pos + 1]](raw, pos, depth=1)
            if pos > len(raw):
                raise BencodeError("invalid bencoding: truncated value")
            result[key] = value
            spans[key] = (start, pos)
    except BencodeError:
        raise
    except (bencodepy.BencodeDecodeError, RecursionError, ValueError, TypeError, IndexError, KeyError) as exc:
        raise BencodeError(_describe(exc)) from None
    if pos + 1 != len(raw):
        raise BencodeError("invalid bencoding: data after the end of the dictionary")
    return result, spans


def encode(value: Any) -> bytes:
    """Bencode a value; dictionary keys are sorted as BEP 3 requires."""
    try:
        return bencodepy.encode(value)
    # bencode.py signals an unsupported type with a KeyError from its type dispatch table.
    except (KeyError, TypeError, ValueError) as exc:
        raise BencodeError(f"cannot bencode value: {exc}") from None
