"""KRPC, the Mainline DHT's message layer (BEP 5, with BEP 32's IPv6 nodes), as bytes in, messages out.

`decode(datagram)` returns one of the message classes below or None: a datagram that is not a
well-formed KRPC message (bad bencoding, a missing or mistyped field, an id that is not 20 bytes, a
port of 0) is dropped, never answered, because an answer to garbage only helps reflection attacks.
A well-formed query for a method we do not know decodes to `UnknownQuery`, which BEP 5 answers
with error 204. The `encode_*` functions build what we send. Nothing here keeps state or a clock.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import Any

from torrentpy import bencoding
from torrentpy.errors import BencodeError

__all__ = [
    "ERROR_GENERIC",
    "ERROR_METHOD_UNKNOWN",
    "ERROR_PROTOCOL",
    "ERROR_SERVER",
    "WANT_BOTH",
    "AnnouncePeer",
    "ErrorReply",
    "FindNode",
    "GetPeers",
    "Message",
    "Node",
    "Ping",
    "Query",
    "Response",
    "UnknownQuery",
    "decode",
    "decode_compact_nodes",
    "decode_compact_peer",
    "encode_compact_nodes",
    "encode_compact_peer",
    "encode_error",
    "encode_query",
    "encode_response",
]

Addr = tuple[str, int]

# A KRPC message fits one UDP datagram on an ordinary path (libtorrent sends at most ~1,500 bytes);
# anything longer is not from a well-behaved node, and the limit bounds the work one datagram costs.
MAX_MESSAGE_BYTES = 4096
# A full get_peers answer (8 nodes, 8 nodes6, ~100 values) is under 200 tokens; the cap makes a datagram
# that is one long list of tiny integers cheap to reject.
MAX_TOKENS = 512
# A KRPC message nests two levels ("a"/"r" dict, then "values" list); a little slack for extensions.
MAX_DEPTH = 6
# Transaction ids are short opaque strings (libtorrent: 2 bytes, others 4); longer ones are abuse.
MAX_TID_BYTES = 16
# Tokens are opaque too; ours are 8 bytes, libtorrent's 4, some clients' 20.
MAX_TOKEN_BYTES = 64
# Peers from one "values" list that we keep; a full datagram cannot carry many more IPv4 peers anyway.
MAX_VALUES = 200

ERROR_GENERIC = 201
ERROR_SERVER = 202
ERROR_PROTOCOL = 203
ERROR_METHOD_UNKNOWN = 204

_NODE4 = 26  # 20-byte id, 4-byte address, 2-byte port
_NODE6 = 38
_PORT = struct.Struct(">H")


@dataclass(frozen=True, slots=True)
class Node:
    id: bytes
    addr: Addr


@dataclass(frozen=True, slots=True)
class Query:
    tid: bytes
    sender: bytes
    read_only: bool  # BEP 43: the sender does not want to be added to routing tables


@dataclass(frozen=True, slots=True)
class Ping(Query):
    pass


@dataclass(frozen=True, slots=True)
class FindNode(Query):
    target: bytes
    want6: bool  # BEP 32 "want": ["n6"] asks for IPv6 nodes too
    want4: bool = False  # "want" names "n4"; with neither, the answer carries the query's own family


@dataclass(frozen=True, slots=True)
class GetPeers(Query):
    info_hash: bytes
    want6: bool
    want4: bool = False


@dataclass(frozen=True, slots=True)
class AnnouncePeer(Query):
    info_hash: bytes
    port: int
    token: bytes
    implied_port: bool  # use the datagram's source port, not `port` (behind a NAT, uTP on the same port)


@dataclass(frozen=True, slots=True)
class UnknownQuery(Query):
    method: bytes


@dataclass(frozen=True, slots=True)
class Response:
    tid: bytes
    sender: bytes
    nodes: tuple[Node, ...] = ()
    values: tuple[Addr, ...] = ()
    token: bytes | None = None


@dataclass(frozen=True, slots=True)
class ErrorReply:
    tid: bytes
    code: int
    message: str


Message = Ping | FindNode | GetPeers | AnnouncePeer | UnknownQuery | Response | ErrorReply


class _Malformed(ValueError):
    pass


# --- compact encodings ---------------------------------------------------------


def encode_compact_peer(addr: Addr) -> bytes:
    return ipaddress.ip_address(addr[0]).packed + _PORT.pack(addr[1])


def decode_compact_peer(raw: bytes) -> Addr | None:
    """A 6-byte (IPv4) or 18-byte (IPv6) peer; None for another length or port 0."""
    if len(raw) == 6:
        host = str(ipaddress.IPv4Address(raw[:4]))
    elif len(raw) == 18:
        host = str(ipaddress.IPv6Address(raw[:16]))
    else:
        return None
    port = _PORT.unpack_from(raw, len(raw) - 2)[0]
    return (host, port) if port else None


def encode_compact_nodes(nodes: list[Node] | tuple[Node, ...]) -> bytes:
    return b"".join(node.id + encode_compact_peer(node.addr) for node in nodes)


def decode_compact_nodes(raw: bytes, *, v6: bool = False) -> tuple[Node, ...]:
    """Nodes from "nodes" (26 bytes each) or "nodes6" (38); a length that is no multiple is malformed.
    Entries with port 0 are skipped, not fatal: some nodes pass such entries on unchecked."""
    size = _NODE6 if v6 else _NODE4
    if len(raw) % size:
        raise _Malformed("compact node info of the wrong length")
    nodes = []
    for pos in range(0, len(raw), size):
        addr = decode_compact_peer(raw[pos + 20 : pos + size])
        if addr is not None:
            nodes.append(Node(raw[pos : pos + 20], addr))
    return tuple(nodes)


# --- decoding ------------------------------------------------------------------


def _bytes(d: dict[bytes, Any], key: bytes, *, size: int | None = None, max_size: int | None = None) -> bytes:
    value = d.get(key)
    if not isinstance(value, bytes):
        raise _Malformed(f"{key!r} missing or not a string")
    if size is not None and len(value) != size:
        raise _Malformed(f"{key!r} is not {size} bytes")
    if max_size is not None and len(value) > max_size:
        raise _Malformed(f"{key!r} too long")
    return value


def _want(args: dict[bytes, Any]) -> tuple[bool, bool]:
    """BEP 32's "want" as (n6, n4); anything but a list of strings counts as absent."""
    want = args.get(b"want")
    if not isinstance(want, list):
        return False, False
    return b"n6" in want, b"n4" in want


def _decode_query(msg: dict[bytes, Any], tid: bytes) -> Message:
    method = _bytes(msg, b"q", max_size=64)
    args = msg.get(b"a")
    if not isinstance(args, dict):
        raise _Malformed("query without arguments")
    sender = _bytes(args, b"id", size=20)
    read_only = msg.get(b"ro") == 1
    if method == b"ping":
        return Ping(tid, sender, read_only)
    if method == b"find_node":
        return FindNode(tid, sender, read_only, _bytes(args, b"target", size=20), *_want(args))
    if method == b"get_peers":
        return GetPeers(tid, sender, read_only, _bytes(args, b"info_hash", size=20), *_want(args))
    if method == b"announce_peer":
        info_hash = _bytes(args, b"info_hash", size=20)
        token = _bytes(args, b"token", max_size=MAX_TOKEN_BYTES)
        implied = args.get(b"implied_port", 0)
        port = args.get(b"port", 0)
        if not isinstance(implied, int) or not isinstance(port, int):
            raise _Malformed("port or implied_port is not an integer")
        if not implied and not 0 < port < 65536:
            raise _Malformed("announce_peer port out of range")
        return AnnouncePeer(tid, sender, read_only, info_hash, port, token, bool(implied))
    return UnknownQuery(tid, sender, read_only, method)


def _decode_response(msg: dict[bytes, Any], tid: bytes) -> Response:
    r = msg.get(b"r")
    if not isinstance(r, dict):
        raise _Malformed("response without a body")
    sender = _bytes(r, b"id", size=20)
    nodes: tuple[Node, ...] = ()
    if b"nodes" in r:
        nodes = decode_compact_nodes(_bytes(r, b"nodes"))
    if b"nodes6" in r:
        nodes += decode_compact_nodes(_bytes(r, b"nodes6"), v6=True)
    values: list[Addr] = []
    raw_values = r.get(b"values", [])
    if not isinstance(raw_values, list):
        raise _Malformed("values is not a list")
    for item in raw_values[:MAX_VALUES]:
        if not isinstance(item, bytes):
            raise _Malformed("a value is not a string")
        addr = decode_compact_peer(item)
        if addr is not None:
            values.append(addr)
    token = r.get(b"token")
    if token is not None and (not isinstance(token, bytes) or len(token) > MAX_TOKEN_BYTES):
        raise _Malformed("token is not a short string")
    return Response(tid, sender, nodes, tuple(values), token)


def _decode_error(msg: dict[bytes, Any], tid: bytes) -> ErrorReply:
    e = msg.get(b"e")
    if not isinstance(e, list) or len(e) < 2 or not isinstance(e[0], int) or not isinstance(e[1], bytes):
        raise _Malformed("error is not [code, message]")
    return ErrorReply(tid, e[0], e[1][:200].decode("utf-8", "replace"))


def decode(datagram: bytes | bytearray | memoryview) -> Message | None:
    """One KRPC message, or None when the datagram is malformed (drop it, do not answer)."""
    if not datagram or len(datagram) > MAX_MESSAGE_BYTES:
        return None
    try:
        msg = bencoding.decode(datagram, max_bytes=MAX_MESSAGE_BYTES, max_tokens=MAX_TOKENS, max_depth=MAX_DEPTH)
        if not isinstance(msg, dict):
            return None
        tid = _bytes(msg, b"t", max_size=MAX_TID_BYTES)
        kind = msg.get(b"y")
        if kind == b"q":
            return _decode_query(msg, tid)
        if kind == b"r":
            return _decode_response(msg, tid)
        if kind == b"e":
            return _decode_error(msg, tid)
        return None
    except (BencodeError, ValueError):
        return None


# --- encoding ------------------------------------------------------------------

# Sent as "v" in every message: two letters for the client, two bytes of version (BEP 20 style).
CLIENT_VERSION = b"TY\x00\x01"


def encode_query(tid: bytes, method: str, args: dict[bytes, Any], *, read_only: bool = False) -> bytes:
    msg: dict[bytes, Any] = {b"t": tid, b"y": b"q", b"q": method.encode(), b"a": args, b"v": CLIENT_VERSION}
    if read_only:
        msg[b"ro"] = 1
    return bencoding.encode(msg)


def ping(tid: bytes, our_id: bytes) -> bytes:
    return encode_query(tid, "ping", {b"id": our_id})


# What a dual-stack node asks for (BEP 32): nodes of both families in every answer.
WANT_BOTH = (b"n4", b"n6")


def find_node(tid: bytes, our_id: bytes, target: bytes, *, want: tuple[bytes, ...] = ()) -> bytes:
    args: dict[bytes, Any] = {b"id": our_id, b"target": target}
    if want:
        args[b"want"] = list(want)
    return encode_query(tid, "find_node", args)


def get_peers(tid: bytes, our_id: bytes, info_hash: bytes, *, want: tuple[bytes, ...] = ()) -> bytes:
    args: dict[bytes, Any] = {b"id": our_id, b"info_hash": info_hash}
    if want:
        args[b"want"] = list(want)
    return encode_query(tid, "get_peers", args)


def announce_peer(tid: bytes, our_id: bytes, info_hash: bytes, port: int, token: bytes, *,
                  implied_port: bool = False) -> bytes:
    args: dict[bytes, Any] = {b"id": our_id, b"info_hash": info_hash, b"port": port, b"token": token}
    if implied_port:
        args[b"implied_port"] = 1
    return encode_query(tid, "announce_peer", args)


def encode_response(tid: bytes, our_id: bytes, *, requester: Addr | None = None,
                    nodes: list[Node] | tuple[Node, ...] = (), values: list[Addr] | tuple[Addr, ...] | None = None,
                    token: bytes | None = None) -> bytes:
    r: dict[bytes, Any] = {b"id": our_id}
    v4 = [n for n in nodes if ":" not in n.addr[0]]
    v6 = [n for n in nodes if ":" in n.addr[0]]
    if v4:
        r[b"nodes"] = encode_compact_nodes(v4)
    if v6:
        r[b"nodes6"] = encode_compact_nodes(v6)
    if values is not None:
        r[b"values"] = [encode_compact_peer(a) for a in values]
    if token is not None:
        r[b"token"] = token
    msg: dict[bytes, Any] = {b"t": tid, b"y": b"r", b"r": r, b"v": CLIENT_VERSION}
    if requester is not None:
        msg[b"ip"] = encode_compact_peer(requester)  # BEP 42: tell the requester its outside address
    return bencoding.encode(msg)


def encode_error(tid: bytes, code: int, message: str) -> bytes:
    return bencoding.encode({b"t": tid, b"y": b"e", b"e": [code, message.encode()], b"v": CLIENT_VERSION})
