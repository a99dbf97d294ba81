"""BEP 10 extension protocol payloads: the extended handshake, BEP 9 ut_metadata and BEP 11 ut_pex.

Stateless encoders and bounded parsers. Parsers raise `ExtensionError`; `PeerConnection` turns that
into a `ProtocolError` event. Payloads here exclude the 4-byte length, the id 20 and the extended id."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import bencodepy

from torrentpy.protocol.events import MetadataData, MetadataReject, MetadataRequest, PexPeers

__all__ = [
    "DEFAULT_EXTENSIONS",
    "MAX_BENCODE_DEPTH",
    "MAX_BENCODE_TOKENS",
    "MAX_METADATA_SIZE",
    "MAX_PEX_PEERS",
    "METADATA_PIECE_SIZE",
    "UT_METADATA",
    "UT_PEX",
    "ExtendedHandshakeInfo",
    "ExtensionError",
    "bencode_span",
    "decode_bounded",
    "encode_extended_handshake",
    "encode_metadata_data",
    "encode_metadata_reject",
    "encode_metadata_request",
    "encode_pex",
    "metadata_piece_count",
    "metadata_piece_length",
    "parse_extended_handshake",
    "parse_metadata_message",
    "parse_pex",
]

UT_METADATA = "ut_metadata"
UT_PEX = "ut_pex"
DEFAULT_EXTENSIONS: Mapping[str, int] = {UT_METADATA: 1, UT_PEX: 2}

METADATA_PIECE_SIZE = 16384  # BEP 9: every metadata piece but the last is exactly 16 KiB

# Largest info dict we accept or serve: libtorrent's default cap is ~30 MiB and no real torrent comes near.
MAX_METADATA_SIZE = 32 * 1024 * 1024
# Extension dicts are flat or one level deep (the "m" dict); 32 levels is generous and keeps the
# recursive decoder far from Python's recursion limit.
MAX_BENCODE_DEPTH = 32
# Handshake, metadata and PEX dicts hold a few dozen items; a token cap stops a 1 MiB message of tiny
# tokens from building millions of Python objects.
MAX_BENCODE_TOKENS = 10_000
# BEP 11 says at most 50 added and 50 dropped per message; we accept slack and drop the excess.
MAX_PEX_PEERS = 200
# Client names ("v") are short; a longer one is truncated, not rejected.
MAX_CLIENT_NAME_CHARS = 100
# "reqq": the peer's request queue depth. libtorrent advertises 500-2000; a larger value is ignored.
MAX_REQUEST_QUEUE = 65536
# Digits in a bencoded integer/string length: 20 covers any 64-bit value.
_MAX_INT_DIGITS = 20
_MAX_LEN_DIGITS = 10

_INT_RE = re.compile(rb"0|-?[1-9][0-9]*")

_LIST, _DICT_KEY, _DICT_VALUE = 0, 1, 2
_I, _E, _L, _D, _COLON = b"i"[0], b"e"[0], b"l"[0], b"d"[0], b":"[0]
_DIGITS = frozenset(b"0123456789")


class ExtensionError(ValueError):
    """A malformed extension payload."""


def bencode_span(
    data: bytes, start: int = 0, *, max_depth: int = MAX_BENCODE_DEPTH, max_tokens: int = MAX_BENCODE_TOKENS
) -> int:
    """Validate one bencoded value starting at `start` and return the offset just past it.

    Iterative and strict (no leading zeros, dict keys must be strings), so hostile input cannot recurse
    or allocate before it has been bounded. Raises ExtensionError."""
    n = len(data)
    i = start
    stack: list[int] = []
    tokens = 0
    while True:
        if i >= n:
            raise ExtensionError("truncated bencoded value")
        tokens += 1
        if tokens > max_tokens:
            raise ExtensionError(f"bencoded value has more than {max_tokens} tokens")
        c = data[i]
        if c == _E:
            if not stack or stack[-1] == _DICT_VALUE:
                raise ExtensionError(f"unexpected 'e' at offset {i}")
            stack.pop()
            i += 1
        elif stack and stack[-1] == _DICT_KEY and c not in _DIGITS:
            raise ExtensionError(f"dict key at offset {i} is not a string")
        elif c == _L or c == _D:
            stack.append(_LIST if c == _L else _DICT_KEY)
            if len(stack) > max_depth:
                raise ExtensionError(f"bencoded value nested deeper than {max_depth}")
            i += 1
            continue
        elif c == _I:
            end = data.find(b"e", i + 1, i + 2 + _MAX_INT_DIGITS)
            if end < 0 or _INT_RE.fullmatch(data, i + 1, end) is None:
                raise ExtensionError(f"bad integer at offset {i}")
            i = end + 1
        elif c in _DIGITS:
            colon = data.find(b":", i, i + 1 + _MAX_LEN_DIGITS)
            if colon < 0 or _INT_RE.fullmatch(data, i, colon) is None:
                raise ExtensionError(f"bad string length at offset {i}")
            i = colon + 1 + int(data[i:colon])
            if i > n:
                raise ExtensionError("bencoded string runs past the end of the message")
        else:
            raise ExtensionError(f"unexpected byte {c:#04x} at offset {i}")
        # A value (or a whole container) just ended: advance the enclosing dict's key/value state.
        if not stack:
            return i
        if stack[-1] == _DICT_KEY:
            stack[-1] = _DICT_VALUE
        elif stack[-1] == _DICT_VALUE:
            stack[-1] = _DICT_KEY


def decode_bounded(data: bytes, start: int = 0) -> tuple[Any, int]:
    """Decode one bounded bencoded value at `start`; return it and the offset just past it."""
    end = bencode_span(data, start)
    try:
        value = bencodepy.decode(data[start:end])
    except Exception as exc:  # any decoder failure (RecursionError included) is the peer's garbage
        raise ExtensionError(f"undecodable bencoding: {exc}") from exc
    return value, end


def _decode_dict(data: bytes, what: str, *, trailing: bool = False) -> tuple[dict[bytes, Any], int]:
    """Decode a dict at the start of `data`; only ut_metadata carries bytes after it."""
    value, end = decode_bounded(data)
    if not isinstance(value, dict):
        raise ExtensionError(f"{what} is not a bencoded dict")
    if not trailing and end != len(data):
        raise ExtensionError(f"{what} has {len(data) - end} bytes after its dict")
    return value, end


# --- BEP 10 handshake ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExtendedHandshakeInfo:
    """The fields of an extended handshake we act on; absent or malformed fields are None."""

    extensions: dict[str, int]  # the peer's "m" dict, 0 meaning "disabled" kept as sent
    metadata_size: int | None
    listen_port: int | None
    client: str | None
    request_queue: int | None


def encode_extended_handshake(
    extensions: Mapping[str, int], metadata_size: int | None = None, extra: Mapping[str, Any] | None = None
) -> bytes:
    message: dict[str, Any] = dict(extra or {})
    message["m"] = dict(extensions)
    if metadata_size is not None:
        message["metadata_size"] = metadata_size
    return bencodepy.encode(message)


def _int_in(value: Any, low: int, high: int) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
        return value
    return None


def parse_extended_handshake(payload: bytes) -> tuple[dict[bytes, Any], ExtendedHandshakeInfo]:
    root, _ = _decode_dict(payload, "extended handshake")
    extensions: dict[str, int] = {}
    m = root.get(b"m")
    if isinstance(m, dict):
        for key, value in m.items():
            ext_id = _int_in(value, 0, 255)
            if isinstance(key, bytes) and ext_id is not None:
                extensions[key.decode("utf-8", "replace")] = ext_id
    client = root.get(b"v")
    info = ExtendedHandshakeInfo(
        extensions=extensions,
        metadata_size=_int_in(root.get(b"metadata_size"), 1, MAX_METADATA_SIZE),
        listen_port=_int_in(root.get(b"p"), 1, 65535),
        client=client.decode("utf-8", "replace")[:MAX_CLIENT_NAME_CHARS]
        if isinstance(client, bytes)
        else None,
        request_queue=_int_in(root.get(b"reqq"), 1, MAX_REQUEST_QUEUE),
    )
    return root, info


# --- BEP 9 ut_metadata -----------------------------------------------------------------------

_METADATA_REQUEST, _METADATA_DATA, _METADATA_REJECT = 0, 1, 2


def metadata_piece_count(total_size: int) -> int:
    return -(-total_size // METADATA_PIECE_SIZE)


def metadata_piece_length(piece: int, total_size: int) -> int:
    return min(METADATA_PIECE_SIZE, total_size - piece * METADATA_PIECE_SIZE)


def encode_metadata_request(piece: int) -> bytes:
    return bencodepy.encode({"msg_type": _METADATA_REQUEST, "piece": piece})


def encode_metadata_data(piece: int, total_size: int, data: bytes | bytearray | memoryview) -> bytes:
    if not 0 < total_size <= MAX_METADATA_SIZE:
        raise ValueError(f"metadata size {total_size} out of range")
    if not 0 <= piece < metadata_piece_count(total_size):
        raise ValueError(f"metadata piece {piece} out of range for {total_size} bytes")
    if len(data) != metadata_piece_length(piece, total_size):
        raise ValueError(f"metadata piece {piece} must be {metadata_piece_length(piece, total_size)} bytes")
    header = bencodepy.encode({"msg_type": _METADATA_DATA, "piece": piece, "total_size": total_size})
    return header + bytes(data)


def encode_metadata_reject(piece: int) -> bytes:
    return bencodepy.encode({"msg_type": _METADATA_REJECT, "piece": piece})


def parse_metadata_message(
    payload: bytes, *, our_metadata_size: int | None = None, peer_metadata_size: int | None = None
) -> MetadataRequest | MetadataData | MetadataReject | None:
    """Parse a ut_metadata message. None for a msg_type BEP 9 says to ignore."""
    root, end = _decode_dict(payload, "ut_metadata message", trailing=True)
    msg_type = _int_in(root.get(b"msg_type"), 0, 2**31)
    piece = _int_in(root.get(b"piece"), 0, 2**31)
    if msg_type is None or piece is None:
        raise ExtensionError("ut_metadata message without a valid msg_type and piece")
    if msg_type == _METADATA_REQUEST:
        if our_metadata_size is not None and piece >= metadata_piece_count(our_metadata_size):
            raise ExtensionError(
                f"ut_metadata request for piece {piece} of {metadata_piece_count(our_metadata_size)}"
            )
        return MetadataRequest(piece)
    if msg_type == _METADATA_REJECT:
        return MetadataReject(piece)
    if msg_type != _METADATA_DATA:
        return None
    total_size = _int_in(root.get(b"total_size"), 1, MAX_METADATA_SIZE)
    if total_size is None:
        raise ExtensionError("ut_metadata data without a valid total_size")
    if peer_metadata_size is not None and total_size != peer_metadata_size:
        raise ExtensionError(
            f"ut_metadata total_size {total_size} differs from the handshake's {peer_metadata_size}"
        )
    if piece >= metadata_piece_count(total_size):
        raise ExtensionError(f"ut_metadata data for piece {piece} of {metadata_piece_count(total_size)}")
    expected = metadata_piece_length(piece, total_size)
    if len(payload) - end != expected:
        raise ExtensionError(f"ut_metadata piece {piece} has {len(payload) - end} bytes, expected {expected}")
    return MetadataData(piece, total_size, payload[end:])


# --- BEP 11 ut_pex ---------------------------------------------------------------------------


def _compact_peers(value: Any, family: int) -> list[tuple[str, int]]:
    if not isinstance(value, bytes):
        return []
    addr_len = 4 if family == 4 else 16
    entry = addr_len + 2
    peers: list[tuple[str, int]] = []
    # A trailing partial entry is ignored, as libtorrent does.
    for off in range(0, min(len(value) // entry, MAX_PEX_PEERS) * entry, entry):
        port = int.from_bytes(value[off + addr_len : off + entry], "big")
        if port == 0:
            continue
        raw = value[off : off + addr_len]
        ip = ipaddress.IPv4Address(raw) if family == 4 else ipaddress.IPv6Address(raw)
        peers.append((str(ip), port))
    return peers


def parse_pex(payload: bytes) -> PexPeers:
    root, _ = _decode_dict(payload, "ut_pex message")
    added = _compact_peers(root.get(b"added"), 4) + _compact_peers(root.get(b"added6"), 6)
    dropped = _compact_peers(root.get(b"dropped"), 4) + _compact_peers(root.get(b"dropped6"), 6)
    return PexPeers(added=added[:MAX_PEX_PEERS], dropped=dropped[:MAX_PEX_PEERS])


def _compact(peers: Iterable[tuple[str, int]]) -> tuple[bytes, bytes]:
    v4, v6 = bytearray(), bytearray()
    for host, port in peers:
        ip = ipaddress.ip_address(host)
        (v4 if ip.version == 4 else v6).extend(ip.packed + port.to_bytes(2, "big"))
    return bytes(v4), bytes(v6)


def encode_pex(added: Iterable[tuple[str, int]], dropped: Iterable[tuple[str, int]]) -> bytes:
    added4, added6 = _compact(added)
    dropped4, dropped6 = _compact(dropped)
    return bencodepy.encode(
        {
            "added": added4,
            "added.f": bytes(len(added4) // 6),
            "added6": added6,
            "added6.f": bytes(len(added6) // 18),
            "dropped": dropped4,
            "dropped6": dropped6,
        }
    )
