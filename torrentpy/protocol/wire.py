"""The BitTorrent peer wire codec (BEP 3, BEP 6 fast extension, BEP 10 extended message): message ids,
encoders that return `bytes`, and handshake encode/parse. Stateless; `peer.py` holds the state."""

from __future__ import annotations

import secrets
import string
import struct
from dataclasses import dataclass

from torrentpy._core import Bitfield

__all__ = [
    "ALLOWED_FAST",
    "BITFIELD",
    "CANCEL",
    "CHOKE",
    "EXTENDED",
    "HANDSHAKE_LENGTH",
    "HAVE",
    "HAVE_ALL",
    "HAVE_NONE",
    "INTERESTED",
    "NOT_INTERESTED",
    "PEER_ID_PREFIX",
    "PIECE",
    "PIECE_HEADER_LENGTH",
    "PORT",
    "PROTOCOL_STRING",
    "REJECT",
    "REQUEST",
    "SUGGEST",
    "UNCHOKE",
    "Handshake",
    "WireError",
    "allowed_fast",
    "bitfield",
    "cancel",
    "check_protocol_prefix",
    "choke",
    "encode_handshake",
    "extended",
    "have",
    "have_all",
    "have_none",
    "interested",
    "keepalive",
    "make_peer_id",
    "make_reserved",
    "not_interested",
    "parse_handshake",
    "piece",
    "piece_header",
    "port",
    "reject",
    "request",
    "reserved_supports_dht",
    "reserved_supports_extensions",
    "reserved_supports_fast",
    "suggest",
    "unchoke",
]

# Message ids (BEP 3, BEP 6, BEP 10).
CHOKE = 0
UNCHOKE = 1
INTERESTED = 2
NOT_INTERESTED = 3
HAVE = 4
BITFIELD = 5
REQUEST = 6
PIECE = 7
CANCEL = 8
PORT = 9
SUGGEST = 0x0D
HAVE_ALL = 0x0E
HAVE_NONE = 0x0F
REJECT = 0x10
ALLOWED_FAST = 0x11
EXTENDED = 20

PROTOCOL_STRING = b"BitTorrent protocol"
_PROTOCOL_PREFIX = bytes([len(PROTOCOL_STRING)]) + PROTOCOL_STRING
HANDSHAKE_LENGTH = 1 + len(PROTOCOL_STRING) + 8 + 20 + 20
# Length prefix + id + index + begin: what precedes the block bytes of a PIECE message.
PIECE_HEADER_LENGTH = 13

# Reserved-bit positions as (byte, mask).
_EXTENSION_BIT = (5, 0x10)  # BEP 10
_FAST_BIT = (7, 0x04)  # BEP 6
_DHT_BIT = (7, 0x01)  # BEP 5: set by the session while its DHT node runs

PEER_ID_PREFIX = b"-TP0100-"
_PEER_ID_ALPHABET = (string.ascii_letters + string.digits).encode()

_U32 = struct.Struct(">I")
_LEN_ID = struct.Struct(">IB")
_LEN_ID_U32 = struct.Struct(">IBI")
_LEN_ID_3U32 = struct.Struct(">IBIII")
_LEN_ID_2U32 = struct.Struct(">IBII")
_LEN_ID_U16 = struct.Struct(">IBH")
_LEN_ID_U8 = struct.Struct(">IBB")


class WireError(ValueError):
    """Malformed bytes handed to a stateless parser here."""


def make_peer_id() -> bytes:
    """Azureus-style peer id: `-TP0100-` and 12 random alphanumerics."""
    return PEER_ID_PREFIX + bytes(secrets.choice(_PEER_ID_ALPHABET) for _ in range(12))


def make_reserved(*, extensions: bool = True, fast: bool = True, dht: bool = False) -> bytes:
    reserved = bytearray(8)
    for enabled, (byte, mask) in ((extensions, _EXTENSION_BIT), (fast, _FAST_BIT), (dht, _DHT_BIT)):
        if enabled:
            reserved[byte] |= mask
    return bytes(reserved)


def reserved_supports_extensions(reserved: bytes) -> bool:
    return bool(reserved[_EXTENSION_BIT[0]] & _EXTENSION_BIT[1])


def reserved_supports_fast(reserved: bytes) -> bool:
    return bool(reserved[_FAST_BIT[0]] & _FAST_BIT[1])


def reserved_supports_dht(reserved: bytes) -> bool:
    return bool(reserved[_DHT_BIT[0]] & _DHT_BIT[1])


@dataclass(frozen=True, slots=True)
class Handshake:
    reserved: bytes
    info_hash: bytes
    peer_id: bytes


def encode_handshake(info_hash: bytes, peer_id: bytes, reserved: bytes | None = None) -> bytes:
    if len(info_hash) != 20 or len(peer_id) != 20:
        raise ValueError("info_hash and peer_id must be 20 bytes each")
    if reserved is None:
        reserved = make_reserved()
    if len(reserved) != 8:
        raise ValueError("reserved must be 8 bytes")
    return _PROTOCOL_PREFIX + bytes(reserved) + bytes(info_hash) + bytes(peer_id)


def check_protocol_prefix(data: bytes | bytearray | memoryview) -> str | None:
    """Why the first bytes of a handshake (any prefix of it) are not BitTorrent, or None if they
    may still be. Lets a caller reject a non-BitTorrent peer before all 68 bytes arrive."""
    n = min(len(data), len(_PROTOCOL_PREFIX))
    if bytes(data[:n]) == _PROTOCOL_PREFIX[:n]:
        return None
    if data[0] != len(PROTOCOL_STRING):
        return f"handshake protocol string length is {data[0]}, expected {len(PROTOCOL_STRING)}"
    return f"handshake protocol string is {bytes(data[1:n])!r}, expected {PROTOCOL_STRING[: n - 1]!r}"


def parse_handshake(data: bytes | bytearray | memoryview) -> Handshake:
    """Parse exactly one 68-byte handshake."""
    if len(data) != HANDSHAKE_LENGTH:
        raise WireError(f"handshake is {len(data)} bytes, expected {HANDSHAKE_LENGTH}")
    problem = check_protocol_prefix(data)
    if problem is not None:
        raise WireError(problem)
    raw = bytes(data)
    return Handshake(reserved=raw[20:28], info_hash=raw[28:48], peer_id=raw[48:68])


# --- message encoders -------------------------------------------------------------------------

_KEEPALIVE = b"\x00\x00\x00\x00"
_CHOKE = _LEN_ID.pack(1, CHOKE)
_UNCHOKE = _LEN_ID.pack(1, UNCHOKE)
_INTERESTED = _LEN_ID.pack(1, INTERESTED)
_NOT_INTERESTED = _LEN_ID.pack(1, NOT_INTERESTED)
_HAVE_ALL = _LEN_ID.pack(1, HAVE_ALL)
_HAVE_NONE = _LEN_ID.pack(1, HAVE_NONE)


def keepalive() -> bytes:
    return _KEEPALIVE


def choke() -> bytes:
    return _CHOKE


def unchoke() -> bytes:
    return _UNCHOKE


def interested() -> bytes:
    return _INTERESTED


def not_interested() -> bytes:
    return _NOT_INTERESTED


def have(index: int) -> bytes:
    return _LEN_ID_U32.pack(5, HAVE, index)


def bitfield(bf: Bitfield | bytes) -> bytes:
    raw = bf.to_bytes() if isinstance(bf, Bitfield) else bytes(bf)
    return _LEN_ID.pack(1 + len(raw), BITFIELD) + raw


def request(index: int, begin: int, length: int) -> bytes:
    return _LEN_ID_3U32.pack(13, REQUEST, index, begin, length)


def piece_header(index: int, begin: int, length: int) -> bytes:
    """The 13 bytes before a block of `length` bytes: write these, then the block itself, so a
    memoryview of the block never has to be concatenated."""
    return _LEN_ID_2U32.pack(9 + length, PIECE, index, begin)


def piece(index: int, begin: int, data: bytes | bytearray | memoryview) -> bytes:
    return piece_header(index, begin, len(data)) + bytes(data)


def cancel(index: int, begin: int, length: int) -> bytes:
    return _LEN_ID_3U32.pack(13, CANCEL, index, begin, length)


def port(listen_port: int) -> bytes:
    return _LEN_ID_U16.pack(3, PORT, listen_port)


def suggest(index: int) -> bytes:
    return _LEN_ID_U32.pack(5, SUGGEST, index)


def have_all() -> bytes:
    return _HAVE_ALL


def have_none() -> bytes:
    return _HAVE_NONE


def reject(index: int, begin: int, length: int) -> bytes:
    return _LEN_ID_3U32.pack(13, REJECT, index, begin, length)


def allowed_fast(index: int) -> bytes:
    return _LEN_ID_U32.pack(5, ALLOWED_FAST, index)


def extended(ext_id: int, payload: bytes | bytearray | memoryview) -> bytes:
    return _LEN_ID_U8.pack(2 + len(payload), EXTENDED, ext_id) + bytes(payload)
