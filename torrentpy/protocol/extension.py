"""BEP 10 extension protocol payloads: the extended handshake, BEP 9 ut_metadata and BEP 11 ut_pex.

Stateless encoders and bounded parsers. Parsers raise `ExtensionError`; `PeerConnection` turns that
into a `ProtocolError` event. Payloads here exclude the 4-byte length, the id 20 and the extended id."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from torrentpy import bencoding
from torrentpy.errors import BencodeError
from torrentpy.protocol.events import MetadataData, MetadataReject, MetadataRequest, PexPeers

__all__ = [
    "DEFAULT_EXTENSIONS",
    "MAX_BENCODE_DEPTH",
    "MAX_BENCODE_TOKENS",
    "MAX_METADATA_SIZE",
    "MAX_PEX_PEERS",
    "MAX_PEX_SEND",
    "METADATA_PIECE_SIZE",
    "PEX_CONNECTABLE",
    "PEX_ENCRYPTION",
    "PEX_HOLEPUNCH",
    "PEX_SEED",
    "PEX_UTP",
    "UT_METADATA",
    "UT_PEX",
    "ExtendedHandshakeInfo",
    "ExtensionError",
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
# What we send: BEP 11's limit of 50 added and 50 dropped entries per message (IPv4 and IPv6 together);
# libtorrent counts the same way and a longer list only delays the rest to the next message.
MAX_PEX_SEND = 50
# BEP 11 flags, one byte per "added" entry.
PEX_ENCRYPTION = 0x01  # prefers encryption
PEX_SEED = 0x02  # a seed, or upload only
PEX_UTP = 0x04  # supports uTP
PEX_HOLEPUNCH = 0x08  # offered ut_holepunch in its extended handshake
PEX_CONNECTABLE = 0x10  # we reached it with an outgoing connection: others can too
# Client names ("v") are short; a longer one is truncated, not rejected.
MAX_CLIENT_NAME_CHARS = 100
# "reqq": the peer's request queue depth. libtorrent advertises 500-2000; a larger value is ignored.
MAX_REQUEST_QUEUE = 65536


class ExtensionError(ValueError):
    """A malformed extension payload."""


def decode_bounded(data: bytes, start: int = 0) -> tuple[Any, int]:
    """Decode one bounded bencoded value at `start`; return it and the offset just past it."""
    try:
        value, end = bencoding.decode_prefix(
            memoryview(data)[start:], max_tokens=MAX_BENCODE_TOKENS, max_depth=MAX_BENCODE_DEPTH
        )
    except BencodeError as exc:
        raise ExtensionError(str(exc)) from None
    return value, start + end


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
    return bencoding.encode(message)


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
    return bencoding.encode({"msg_type": _METADATA_REQUEST, "piece": piece})


def encode_metadata_data(piece: int, total_size: int, data: bytes | bytearray | memoryview) -> bytes:
    if not 0 < total_size <= MAX_METADATA_SIZE:
        raise ValueError(f"metadata size {total_size} out of range")
    if not 0 <= piece < metadata_piece_count(total_size):
        raise ValueError(f"metadata piece {piece} out of range for {total_size} bytes")
    if len(data) != metadata_piece_length(piece, total_size):
        raise ValueError(f"metadata piece {piece} must be {metadata_piece_length(piece, total_size)} bytes")
    header = bencoding.encode({"msg_type": _METADATA_DATA, "piece": piece, "total_size": total_size})
    return header + bytes(data)


def encode_metadata_reject(piece: int) -> bytes:
    return bencoding.encode({"msg_type": _METADATA_REJECT, "piece": piece})


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


def _compact(peers: Iterable[tuple[str, int]], flags: Iterable[int] | None = None) -> tuple[bytes, bytes, bytes, bytes]:
    """Compact IPv4 and IPv6 lists and their flag bytes (zero where `flags` gives none)."""
    v4, v6, f4, f6 = bytearray(), bytearray(), bytearray(), bytearray()
    flag_iter = iter(flags if flags is not None else ())
    for host, port in peers:
        packed = _packed_ip(host)
        flag = next(flag_iter, 0) & 0xFF
        if len(packed) == 4:
            v4 += packed
            v4 += port.to_bytes(2, "big")
            f4.append(flag)
        else:
            v6 += packed
            v6 += port.to_bytes(2, "big")
            f6.append(flag)
    return bytes(v4), bytes(v6), bytes(f4), bytes(f6)


def _packed_ip(host: str) -> bytes:
    """`host`'s address bytes. inet_pton first: a PEX message to each of fifty peers lists the other
    forty-nine, and ipaddress parsed every one of them in Python (a sixth of a millisecond each)."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            return socket.inet_pton(family, host)
        except OSError:
            pass
    return ipaddress.ip_address(host).packed  # what inet_pton does not take (a scoped IPv6 address); or ValueError


def encode_pex(
    added: Iterable[tuple[str, int]],
    dropped: Iterable[tuple[str, int]],
    flags: Iterable[int] | None = None,
) -> bytes:
    """A ut_pex message; `flags` (PEX_* bits) follow `added` entry by entry. The caller keeps to
    MAX_PEX_SEND entries per list: this encodes what it is given, so tests can build oversized messages."""
    added4, added6, flags4, flags6 = _compact(added, flags)
    dropped4, dropped6, _, _ = _compact(dropped)
    return bencoding.encode(
        {
            "added": added4,
            "added.f": flags4,
            "added6": added6,
            "added6.f": flags6,
            "dropped": dropped4,
            "dropped6": dropped6,
        }
    )
