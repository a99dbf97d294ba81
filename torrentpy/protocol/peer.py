"""`PeerConnection`: one BitTorrent peer connection as a sans-I/O state machine (model: h11).

Bytes in with `receive_data()`, events out with `next_event()` (None means "feed me more bytes");
outgoing messages come back as `bytes` from the `send_*` methods, which also update our side of the
state. Nothing here touches a socket or a clock.

A peer's misbehaviour becomes exactly one `ProtocolError` event, after which the connection is dead
(`closed_reason` says why, further input is ignored). Our own misuse (sending a request before the
handshake, a reject without the fast extension, …) raises `LocalProtocolError` instead.

The connection validates bounds, order and capabilities only; whether a Piece was requested, or a
Request should be served, is the engine's business."""

from __future__ import annotations

import enum
import struct
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from torrentpy._core import Bitfield
from torrentpy.protocol import extension, wire
from torrentpy.protocol.events import (
    AllowedFast,
    BitfieldReceived,
    Cancel,
    Choke,
    Event,
    ExtendedHandshake,
    HandshakeComplete,
    HandshakeInfoHash,
    Have,
    Interested,
    KeepAlive,
    NotInterested,
    Piece,
    Port,
    ProtocolError,
    Reject,
    Request,
    Suggest,
    Unchoke,
    UnknownExtended,
)

__all__ = [
    "DEFAULT_MAX_BLOCK_LENGTH",
    "MAX_EXTENDED_HANDSHAKE_LENGTH",
    "MAX_EXTENDED_MESSAGE_LENGTH",
    "MAX_UNKNOWN_MESSAGES",
    "MAX_UNKNOWN_MESSAGE_LENGTH",
    "MAX_UNKNOWN_NUM_PIECES",
    "LocalProtocolError",
    "PeerConnection",
]

# --- limits (each bounds what a peer can make us buffer or do) ---------------------------------

# Every client requests 16 KiB blocks (BEP 3 "de facto"); libtorrent drops requests above that too.
DEFAULT_MAX_BLOCK_LENGTH = 16384
# id + extended id + payload: ut_metadata pieces are 16 KiB and PEX a few KiB, 1 MiB leaves room for
# extensions we do not know while bounding the buffer.
MAX_EXTENDED_MESSAGE_LENGTH = 2 + 1024 * 1024
# Extended handshakes are a few hundred bytes in practice; 100 KiB is far beyond any honest one.
MAX_EXTENDED_HANDSHAKE_LENGTH = 2 + 100 * 1024
# Unknown ids are skipped for forward compatibility (e.g. BEP 52 hash messages), but must be bounded.
MAX_UNKNOWN_MESSAGE_LENGTH = 1024 * 1024
# A peer that sends mostly messages we cannot parse is broken or probing; stop skipping after this many.
MAX_UNKNOWN_MESSAGES = 1000
# Before the metadata is known the piece count is bounded by the info dict: 20 bytes of hash per piece.
MAX_UNKNOWN_NUM_PIECES = extension.MAX_METADATA_SIZE // 20
# Moving the unread tail is only worth it once the consumed prefix is large and at least half the
# buffer; that keeps total copying linear in the bytes received.
_COMPACT_MIN_BYTES = 64 * 1024

_PROTOCOL_HEADER_LENGTH = 48  # pstrlen, pstr, reserved, info-hash: everything but the peer id
_OUR_RESERVED = wire.make_reserved(extensions=True, fast=True, dht=False)

_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")
_II = struct.Struct(">II")
_III = struct.Struct(">III")


class LocalProtocolError(Exception):
    """We (the caller) tried to do something the protocol does not allow in this state."""


# --- state transitions as data ----------------------------------------------------------------


class _Kind(enum.Enum):
    ANNOUNCE = "announce"  # have_all, have_none: what the sender has, once, up front
    BITFIELD = "bitfield"  # up front as BEP 3 says, but aria2 also sends one later instead of many HAVEs
    NEUTRAL = "neutral"  # keep-alive, extended, port: may precede the announcement
    ORDINARY = "ordinary"  # everything else


class _Phase(enum.Enum):
    HANDSHAKE = "before the handshake"
    INFO_HASH_PENDING = "while the info-hash awaits accept_info_hash()"
    PEER_ID = "before the handshake's peer id"
    AWAITING_ANNOUNCE = "right after the handshake"
    MESSAGES = "after other messages"
    CLOSED = "after the connection closed"


# Both directions use one table. BEP 3/6 put the bitfield (or have_all/have_none) first; Transmission
# sends its extended handshake before its bitfield, so NEUTRAL messages leave the window open.
# A (phase, kind) pair missing from the table is a protocol error.
_TRANSITIONS: Mapping[tuple[_Phase, _Kind], _Phase] = {
    (_Phase.AWAITING_ANNOUNCE, _Kind.ANNOUNCE): _Phase.MESSAGES,
    (_Phase.AWAITING_ANNOUNCE, _Kind.BITFIELD): _Phase.MESSAGES,
    (_Phase.MESSAGES, _Kind.BITFIELD): _Phase.MESSAGES,
    (_Phase.AWAITING_ANNOUNCE, _Kind.NEUTRAL): _Phase.AWAITING_ANNOUNCE,
    (_Phase.AWAITING_ANNOUNCE, _Kind.ORDINARY): _Phase.MESSAGES,
    (_Phase.MESSAGES, _Kind.NEUTRAL): _Phase.MESSAGES,
    (_Phase.MESSAGES, _Kind.ORDINARY): _Phase.MESSAGES,
}


class _Needs(enum.Enum):
    NOTHING = ""
    FAST = "the fast extension"
    EXTENSIONS = "the extension protocol"


@dataclass(frozen=True, slots=True)
class _Spec:
    name: str
    kind: _Kind
    needs: _Needs
    length: int | None  # exact length (id + payload), or None when it varies


_SPECS: Mapping[int, _Spec] = {
    wire.CHOKE: _Spec("choke", _Kind.ORDINARY, _Needs.NOTHING, 1),
    wire.UNCHOKE: _Spec("unchoke", _Kind.ORDINARY, _Needs.NOTHING, 1),
    wire.INTERESTED: _Spec("interested", _Kind.ORDINARY, _Needs.NOTHING, 1),
    wire.NOT_INTERESTED: _Spec("not interested", _Kind.ORDINARY, _Needs.NOTHING, 1),
    wire.HAVE: _Spec("have", _Kind.ORDINARY, _Needs.NOTHING, 5),
    wire.BITFIELD: _Spec("bitfield", _Kind.BITFIELD, _Needs.NOTHING, None),
    wire.REQUEST: _Spec("request", _Kind.ORDINARY, _Needs.NOTHING, 13),
    wire.PIECE: _Spec("piece", _Kind.ORDINARY, _Needs.NOTHING, None),
    wire.CANCEL: _Spec("cancel", _Kind.ORDINARY, _Needs.NOTHING, 13),
    wire.PORT: _Spec("port", _Kind.NEUTRAL, _Needs.NOTHING, 3),
    wire.SUGGEST: _Spec("suggest", _Kind.ORDINARY, _Needs.FAST, 5),
    wire.HAVE_ALL: _Spec("have all", _Kind.ANNOUNCE, _Needs.FAST, 1),
    wire.HAVE_NONE: _Spec("have none", _Kind.ANNOUNCE, _Needs.FAST, 1),
    wire.REJECT: _Spec("reject", _Kind.ORDINARY, _Needs.FAST, 13),
    wire.ALLOWED_FAST: _Spec("allowed fast", _Kind.ORDINARY, _Needs.FAST, 5),
    wire.EXTENDED: _Spec("extended", _Kind.NEUTRAL, _Needs.EXTENSIONS, None),
}

_KEEPALIVE = KeepAlive()
_CHOKE = Choke()
_UNCHOKE = Unchoke()
_INTERESTED = Interested()
_NOT_INTERESTED = NotInterested()

_Handler = Callable[[bytearray, int, int], "Event | None"]


class PeerConnection:
    """One peer connection. See the module docstring for the model.

    `num_pieces == 0` means the torrent's size is not known yet (a magnet link before its metadata):
    the peer's bitfield/have/have_all/have_none are then recorded, bounded, and turned into a single
    `BitfieldReceived` once `set_torrent_size()` is called.

    Attributes about the remote side are named `peer_*`; `peer_id` is the *remote* peer id (None
    until the handshake), while the constructor's `peer_id` is ours and is kept as `our_peer_id`.
    """

    def __init__(
        self,
        *,
        info_hash: bytes | None,
        peer_id: bytes,
        num_pieces: int = 0,
        piece_length: int = 0,
        total_length: int = 0,
        initiator: bool,
        extensions: Mapping[str, int] | None = None,
        metadata_size: int | None = None,
        max_block_length: int = DEFAULT_MAX_BLOCK_LENGTH,
    ) -> None:
        if info_hash is not None and len(info_hash) != 20:
            raise ValueError("info_hash must be 20 bytes")
        if len(peer_id) != 20:
            raise ValueError("peer_id must be 20 bytes")
        if max_block_length < 1:
            raise ValueError("max_block_length must be positive")
        exts = dict(extension.DEFAULT_EXTENSIONS if extensions is None else extensions)
        if any(not 1 <= i <= 255 for i in exts.values()) or len(set(exts.values())) != len(exts):
            raise ValueError("extension ids must be distinct and in 1..255")

        self.info_hash = None if info_hash is None else bytes(info_hash)
        self.our_peer_id = bytes(peer_id)
        self.our_reserved = _OUR_RESERVED
        self.initiator = initiator
        self.extensions: dict[str, int] = exts
        self.metadata_size = metadata_size
        self.max_block_length = max_block_length
        self.num_pieces = 0
        self.piece_length = 0
        self.total_length = 0

        self.am_choking = True
        self.am_interested = False
        self.peer_choking = True
        self.peer_interested = False

        self.peer_id: bytes | None = None
        self.peer_reserved: bytes | None = None
        self.supports_fast = False  # both sides: we always offer it, so this is the peer's bit
        self.supports_extensions = False
        self.peer_extensions: dict[str, int] = {}
        self.peer_metadata_size: int | None = None
        self.peer_listen_port: int | None = None
        self.peer_client: str | None = None
        self.peer_request_queue: int | None = None
        self.peer_bitfield: Bitfield | None = None
        self.closed_reason: str | None = None

        self._recv = _Phase.HANDSHAKE
        self._send = _Phase.HANDSHAKE
        self._buf = bytearray()
        self._pos = 0
        self._bytes_copied = 0  # bytes moved into or within the receive buffer; tests check it stays linear
        self._queue: deque[Event] = deque()
        self._unknown_messages = 0
        self._peer_info_hash: bytes | None = None
        self._ext_names = {ext_id: name for name, ext_id in exts.items()}
        # What the peer announced before we knew the torrent's size (see set_torrent_size).
        self._early_announce: bytes | str | None = None  # raw bitfield, "all" or "none"
        self._early_haves = bytearray()
        self._handlers: dict[int, _Handler] = {
            wire.CHOKE: self._on_choke,
            wire.UNCHOKE: self._on_unchoke,
            wire.INTERESTED: self._on_interested,
            wire.NOT_INTERESTED: self._on_not_interested,
            wire.HAVE: self._on_have,
            wire.BITFIELD: self._on_bitfield,
            wire.REQUEST: self._on_request,
            wire.PIECE: self._on_piece,
            wire.CANCEL: self._on_cancel,
            wire.PORT: self._on_port,
            wire.SUGGEST: self._on_suggest,
            wire.HAVE_ALL: self._on_have_all,
            wire.HAVE_NONE: self._on_have_none,
            wire.REJECT: self._on_reject,
            wire.ALLOWED_FAST: self._on_allowed_fast,
            wire.EXTENDED: self._on_extended,
        }
        self._max_length: dict[int, int] = {}
        self._set_size(num_pieces, piece_length, total_length)

    # --- torrent size ------------------------------------------------------------------------

    def _set_size(self, num_pieces: int, piece_length: int, total_length: int) -> None:
        if num_pieces < 0 or (
            num_pieces > 0
            and (
                piece_length <= 0
                or not (num_pieces - 1) * piece_length < total_length <= num_pieces * piece_length
            )
        ):
            raise ValueError(
                f"inconsistent torrent size: {num_pieces} pieces of {piece_length} B, {total_length} B total"
            )
        self.num_pieces, self.piece_length, self.total_length = num_pieces, piece_length, total_length
        pieces_bound = num_pieces or MAX_UNKNOWN_NUM_PIECES
        self._max_length = {
            wire.BITFIELD: 1 + (pieces_bound + 7) // 8,
            wire.PIECE: 9 + self.max_block_length,
            wire.EXTENDED: MAX_EXTENDED_MESSAGE_LENGTH,
        }
        # The largest message any id may carry: checked as soon as the 4-byte length arrives.
        self._max_message_length = max(*self._max_length.values(), MAX_UNKNOWN_MESSAGE_LENGTH)

    def set_torrent_size(self, num_pieces: int, piece_length: int, total_length: int) -> None:
        """Tell a connection started without metadata how big the torrent is. What the peer announced
        so far is checked against it and delivered as one BitfieldReceived (or a ProtocolError) from
        `next_event()`."""
        if self.num_pieces:
            raise LocalProtocolError("the torrent size is already known")
        if num_pieces <= 0:
            raise ValueError("num_pieces must be positive")
        self._set_size(num_pieces, piece_length, total_length)
        if self._recv is _Phase.CLOSED:
            return
        announce, self._early_announce = self._early_announce, None
        haves, self._early_haves = self._early_haves, bytearray()
        if announce is None and not any(haves):
            return
        nbytes = (num_pieces + 7) // 8
        try:
            if isinstance(announce, bytes):
                bf = Bitfield.from_bytes(announce, num_pieces)
            elif announce == "all":
                bf = Bitfield.full(num_pieces)
            else:
                bf = Bitfield(num_pieces)
            if any(haves[nbytes:]):
                raise ValueError("a have message named a piece past the last one")
            extra = bytes(haves[:nbytes]).ljust(nbytes, b"\0")
            try:
                bf = bf | Bitfield.from_bytes(extra, num_pieces)
            except ValueError:
                raise ValueError("a have message named a piece past the last one") from None
        except ValueError as exc:
            self._queue.append(self._fail(f"bad bitfield: {exc}"))
            return
        self.peer_bitfield = bf
        self._queue.append(BitfieldReceived(bf.copy()))

    def piece_size(self, index: int) -> int:
        if index == self.num_pieces - 1:
            return self.total_length - index * self.piece_length
        return self.piece_length

    # --- handshake ---------------------------------------------------------------------------

    def initiate(self) -> bytes:
        """Our handshake. Outgoing connections send it at once; incoming ones once the info-hash is
        known (given to the constructor, or after `accept_info_hash`)."""
        if self._send is not _Phase.HANDSHAKE:
            raise LocalProtocolError("handshake already sent")
        if self.info_hash is None:
            raise LocalProtocolError("the info-hash is not known yet: call accept_info_hash() first")
        self._send = _Phase.AWAITING_ANNOUNCE
        return wire.encode_handshake(self.info_hash, self.our_peer_id, self.our_reserved)

    def accept_info_hash(
        self, info_hash: bytes, num_pieces: int, piece_length: int, total_length: int
    ) -> None:
        """Accept the torrent an incoming peer asked for (after a HandshakeInfoHash event)."""
        if self._recv is not _Phase.INFO_HASH_PENDING:
            raise LocalProtocolError("no info-hash is waiting to be accepted")
        if bytes(info_hash) != self._peer_info_hash:
            raise ValueError("accepted info-hash differs from the one the peer sent")
        self._set_size(num_pieces, piece_length, total_length)
        self.info_hash = bytes(info_hash)
        self._recv = _Phase.PEER_ID

    # --- receiving ---------------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes read from the socket. Invalidates the `data` of earlier Piece events."""
        if self._recv is _Phase.CLOSED or not data:
            return
        buf = self._buf
        try:
            pos = self._pos
            if pos and (pos == len(buf) or (pos >= _COMPACT_MIN_BYTES and 2 * pos >= len(buf))):
                self._bytes_copied += len(buf) - pos
                del buf[:pos]
                self._pos = 0
            buf += data
            self._bytes_copied += len(data)
        except BufferError:
            # The caller still holds a Piece view into `buf`: leave that buffer alone (the view stays
            # valid) and continue in a fresh one holding just the unread tail.
            with memoryview(buf) as view:
                fresh = bytearray(view[self._pos :])
            fresh += data
            self._bytes_copied += len(fresh)
            self._buf = fresh
            self._pos = 0

    @property
    def buffered_bytes(self) -> int:
        """Bytes received but not yet parsed."""
        return len(self._buf) - self._pos

    def next_event(self) -> Event | None:
        """The next event, or None when more bytes are needed (or the connection is dead)."""
        if self._queue:
            return self._queue.popleft()
        phase = self._recv
        if phase is _Phase.MESSAGES or phase is _Phase.AWAITING_ANNOUNCE:
            return self._next_message()
        if phase is _Phase.HANDSHAKE:
            return self._read_handshake_header()
        if phase is _Phase.PEER_ID:
            return self._read_peer_id()
        return None

    def _fail(self, reason: str) -> ProtocolError:
        self.closed_reason = reason
        self._recv = _Phase.CLOSED
        self._queue.clear()
        self._buf = bytearray()
        self._pos = 0
        return ProtocolError(reason)

    def _read_handshake_header(self) -> Event | None:
        buf, pos = self._buf, self._pos
        avail = len(buf) - pos
        if avail == 0:
            return None
        problem = wire.check_protocol_prefix(buf[pos : pos + min(avail, 20)])
        if problem is not None:
            return self._fail(problem)
        if avail < _PROTOCOL_HEADER_LENGTH:
            return None
        reserved = bytes(buf[pos + 20 : pos + 28])
        info_hash = bytes(buf[pos + 28 : pos + 48])
        self._pos = pos + _PROTOCOL_HEADER_LENGTH
        self.peer_reserved = reserved
        self.supports_fast = wire.reserved_supports_fast(reserved)
        self.supports_extensions = wire.reserved_supports_extensions(reserved)
        if self.info_hash is None:
            self._peer_info_hash = info_hash
            self._recv = _Phase.INFO_HASH_PENDING
            return HandshakeInfoHash(info_hash)
        if info_hash != self.info_hash:
            return self._fail(f"handshake info-hash {info_hash.hex()} is not ours ({self.info_hash.hex()})")
        self._recv = _Phase.PEER_ID
        return self._read_peer_id()

    def _read_peer_id(self) -> Event | None:
        buf, pos = self._buf, self._pos
        if len(buf) - pos < 20:
            return None
        peer_id = bytes(buf[pos : pos + 20])
        self._pos = pos + 20
        if peer_id == self.our_peer_id:
            return self._fail("connected to ourselves (the peer id is our own)")
        self.peer_id = peer_id
        self._recv = _Phase.AWAITING_ANNOUNCE
        assert self.peer_reserved is not None
        return HandshakeComplete(peer_id, self.peer_reserved)

    def _next_message(self) -> Event | None:
        buf = self._buf
        while True:
            pos = self._pos
            avail = len(buf) - pos
            if avail < 4:
                return None
            length = _U32.unpack_from(buf, pos)[0]
            if length == 0:
                self._pos = pos + 4
                return _KEEPALIVE
            if length > self._max_message_length:
                return self._fail(f"message of {length} bytes exceeds limit {self._max_message_length}")
            if avail < 5:
                return None
            msg_id = buf[pos + 4]
            spec = _SPECS.get(msg_id)
            if spec is None:
                if avail < 4 + length:
                    return None
                self._pos = pos + 4 + length
                self._unknown_messages += 1
                if self._unknown_messages > MAX_UNKNOWN_MESSAGES:
                    return self._fail(f"more than {MAX_UNKNOWN_MESSAGES} messages with unknown ids")
                continue
            problem = self._check_message(spec, msg_id, length)
            if problem is not None:
                return self._fail(problem)
            next_phase = _TRANSITIONS.get((self._recv, spec.kind))
            if next_phase is None:
                return self._fail(f"{spec.name} message not allowed {self._recv.value}")
            end = pos + 4 + length
            if len(buf) < end:
                return None
            self._pos = end
            self._recv = next_phase
            event = self._handlers[msg_id](buf, pos + 5, end)
            if event is not None:
                return event

    def _check_message(self, spec: _Spec, msg_id: int, length: int) -> str | None:
        if spec.needs is _Needs.FAST and not self.supports_fast:
            return f"{spec.name} message from a peer that did not announce {spec.needs.value}"
        if spec.needs is _Needs.EXTENSIONS and not self.supports_extensions:
            return f"{spec.name} message from a peer that did not announce {spec.needs.value}"
        if spec.length is not None:
            if length != spec.length:
                return f"{spec.name} message of {length} bytes, expected {spec.length}"
            return None
        limit = self._max_length[msg_id]
        if msg_id == wire.BITFIELD and self.num_pieces and length != limit:
            return f"bitfield message of {length} bytes, expected {limit} for {self.num_pieces} pieces"
        if length > limit:
            return f"{spec.name} message of {length} bytes exceeds limit {limit}"
        minimum = {wire.PIECE: 10, wire.EXTENDED: 2, wire.BITFIELD: 1}[msg_id]
        if length < minimum:
            return f"{spec.name} message of {length} bytes is shorter than {minimum}"
        return None

    def _check_index(self, name: str, index: int) -> str | None:
        bound = self.num_pieces or MAX_UNKNOWN_NUM_PIECES
        if not 0 <= index < bound:
            return f"{name} for piece {index}, the torrent has {bound} pieces"
        return None

    def _check_block(self, name: str, index: int, begin: int, length: int) -> str | None:
        if length <= 0 or begin < 0:
            return f"{name} for {length} bytes at offset {begin}"
        if length > self.max_block_length:
            return f"{name} of {length} bytes exceeds the block limit {self.max_block_length}"
        problem = self._check_index(name, index)
        if problem is not None or not self.num_pieces:
            return problem
        size = self.piece_size(index)
        if begin + length > size:
            return f"{name} for bytes {begin}..{begin + length} beyond piece {index} of {size} bytes"
        return None

    # Handlers get the payload as buf[start:end] (after the id byte) and return an event, or None
    # when the message was absorbed silently.

    def _on_choke(self, buf: bytearray, start: int, end: int) -> Event | None:
        self.peer_choking = True
        return _CHOKE

    def _on_unchoke(self, buf: bytearray, start: int, end: int) -> Event | None:
        self.peer_choking = False
        return _UNCHOKE

    def _on_interested(self, buf: bytearray, start: int, end: int) -> Event | None:
        self.peer_interested = True
        return _INTERESTED

    def _on_not_interested(self, buf: bytearray, start: int, end: int) -> Event | None:
        self.peer_interested = False
        return _NOT_INTERESTED

    def _on_have(self, buf: bytearray, start: int, end: int) -> Event | None:
        index = _U32.unpack_from(buf, start)[0]
        problem = self._check_index("have message", index)
        if problem is not None:
            return self._fail(problem)
        if not self.num_pieces:
            byte = index >> 3
            if byte >= len(self._early_haves):
                self._early_haves.extend(bytes(byte + 1 - len(self._early_haves)))
            self._early_haves[byte] |= 0x80 >> (index & 7)
            return None
        if self.peer_bitfield is None:
            self.peer_bitfield = Bitfield(self.num_pieces)
        self.peer_bitfield.set(index)
        return Have(index)

    def _announced(self, bf: Bitfield) -> Event:
        self.peer_bitfield = bf
        return BitfieldReceived(bf.copy())

    def _on_bitfield(self, buf: bytearray, start: int, end: int) -> Event | None:
        raw = bytes(buf[start:end])
        if not self.num_pieces:
            self._early_announce = raw
            return None
        try:
            return self._announced(Bitfield.from_bytes(raw, self.num_pieces))
        except ValueError as exc:
            return self._fail(f"bad bitfield: {exc}")

    def _on_have_all(self, buf: bytearray, start: int, end: int) -> Event | None:
        if not self.num_pieces:
            self._early_announce = "all"
            return None
        return self._announced(Bitfield.full(self.num_pieces))

    def _on_have_none(self, buf: bytearray, start: int, end: int) -> Event | None:
        if not self.num_pieces:
            self._early_announce = "none"
            return None
        return self._announced(Bitfield(self.num_pieces))

    def _on_request(self, buf: bytearray, start: int, end: int) -> Event | None:
        index, begin, length = _III.unpack_from(buf, start)
        problem = self._check_block("request", index, begin, length)
        return self._fail(problem) if problem is not None else Request(index, begin, length)

    def _on_cancel(self, buf: bytearray, start: int, end: int) -> Event | None:
        index, begin, length = _III.unpack_from(buf, start)
        problem = self._check_block("cancel", index, begin, length)
        return self._fail(problem) if problem is not None else Cancel(index, begin, length)

    def _on_reject(self, buf: bytearray, start: int, end: int) -> Event | None:
        index, begin, length = _III.unpack_from(buf, start)
        problem = self._check_block("reject", index, begin, length)
        return self._fail(problem) if problem is not None else Reject(index, begin, length)

    def _on_piece(self, buf: bytearray, start: int, end: int) -> Event | None:
        index, begin = _II.unpack_from(buf, start)
        problem = self._check_block("piece", index, begin, end - start - 8)
        if problem is not None:
            return self._fail(problem)
        return Piece(index, begin, memoryview(buf)[start + 8 : end])

    def _on_port(self, buf: bytearray, start: int, end: int) -> Event | None:
        return Port(_U16.unpack_from(buf, start)[0])

    def _on_suggest(self, buf: bytearray, start: int, end: int) -> Event | None:
        index = _U32.unpack_from(buf, start)[0]
        problem = self._check_index("suggest", index)
        return self._fail(problem) if problem is not None else Suggest(index)

    def _on_allowed_fast(self, buf: bytearray, start: int, end: int) -> Event | None:
        index = _U32.unpack_from(buf, start)[0]
        problem = self._check_index("allowed fast", index)
        return self._fail(problem) if problem is not None else AllowedFast(index)

    def _on_extended(self, buf: bytearray, start: int, end: int) -> Event | None:
        ext_id = buf[start]
        payload = bytes(buf[start + 1 : end])
        try:
            if ext_id == 0:
                return self._on_extended_handshake(payload, end - start)
            name = self._ext_names.get(ext_id)
            if name == extension.UT_METADATA:
                event: Event | None = extension.parse_metadata_message(
                    payload, our_metadata_size=self.metadata_size, peer_metadata_size=self.peer_metadata_size
                )
            elif name == extension.UT_PEX:
                event = extension.parse_pex(payload)
            else:
                event = None
        except extension.ExtensionError as exc:
            return self._fail(f"bad {self._ext_names.get(ext_id, 'extended')} message: {exc}")
        return UnknownExtended(ext_id, payload) if event is None else event

    def _on_extended_handshake(self, payload: bytes, length: int) -> Event:
        if length > MAX_EXTENDED_HANDSHAKE_LENGTH:
            return self._fail(
                f"extended handshake of {length} bytes exceeds limit {MAX_EXTENDED_HANDSHAKE_LENGTH}"
            )
        try:
            raw, info = extension.parse_extended_handshake(payload)
        except extension.ExtensionError as exc:
            return self._fail(f"bad extended handshake: {exc}")
        # BEP 10: a later handshake updates the earlier one; id 0 switches an extension off.
        merged = {**self.peer_extensions, **info.extensions}
        self.peer_extensions = {name: ext_id for name, ext_id in merged.items() if ext_id}
        if info.metadata_size is not None:
            self.peer_metadata_size = info.metadata_size
        if info.listen_port is not None:
            self.peer_listen_port = info.listen_port
        if info.client is not None:
            self.peer_client = info.client
        if info.request_queue is not None:
            self.peer_request_queue = info.request_queue
        return ExtendedHandshake(raw)

    # --- sending -----------------------------------------------------------------------------

    def _sending(self, kind: _Kind, name: str) -> None:
        next_phase = _TRANSITIONS.get((self._send, kind))
        if next_phase is None:
            raise LocalProtocolError(f"cannot send {name} {self._send.value}")
        self._send = next_phase

    def _require(self, supported: bool, what: str) -> None:
        if not supported:
            raise LocalProtocolError(f"the peer does not support {what}")

    def _check_outgoing_block(self, name: str, index: int, begin: int, length: int) -> None:
        problem = self._check_block(name, index, begin, length)
        if problem is not None:
            raise LocalProtocolError(problem)

    def _check_outgoing_index(self, name: str, index: int) -> None:
        problem = self._check_index(name, index)
        if problem is not None:
            raise LocalProtocolError(problem)

    def send_keepalive(self) -> bytes:
        self._sending(_Kind.NEUTRAL, "keep-alive")
        return wire.keepalive()

    def send_choke(self) -> bytes:
        self._sending(_Kind.ORDINARY, "choke")
        self.am_choking = True
        return wire.choke()

    def send_unchoke(self) -> bytes:
        self._sending(_Kind.ORDINARY, "unchoke")
        self.am_choking = False
        return wire.unchoke()

    def send_interested(self) -> bytes:
        self._sending(_Kind.ORDINARY, "interested")
        self.am_interested = True
        return wire.interested()

    def send_not_interested(self) -> bytes:
        self._sending(_Kind.ORDINARY, "not interested")
        self.am_interested = False
        return wire.not_interested()

    def send_have(self, index: int) -> bytes:
        self._check_outgoing_index("have", index)
        self._sending(_Kind.ORDINARY, "have")
        return wire.have(index)

    def send_bitfield(self, bf: Bitfield) -> bytes:
        """Our bitfield, or HAVE_ALL / HAVE_NONE when both sides support the fast extension."""
        if len(bf) != self.num_pieces:
            raise LocalProtocolError(f"bitfield of {len(bf)} pieces for a torrent of {self.num_pieces}")
        self._sending(_Kind.ANNOUNCE, "bitfield")
        if self.supports_fast and bf.all():
            return wire.have_all()
        if self.supports_fast and not bf.any():
            return wire.have_none()
        return wire.bitfield(bf)

    def send_have_none(self) -> bytes:
        """HAVE_NONE: what a magnet download without metadata (no piece count yet) announces."""
        self._require(self.supports_fast, "the fast extension")
        self._sending(_Kind.ANNOUNCE, "have none")
        return wire.have_none()

    def send_request(self, index: int, begin: int, length: int) -> bytes:
        self._check_outgoing_block("request", index, begin, length)
        self._sending(_Kind.ORDINARY, "request")
        return wire.request(index, begin, length)

    def send_cancel(self, index: int, begin: int, length: int) -> bytes:
        self._check_outgoing_block("cancel", index, begin, length)
        self._sending(_Kind.ORDINARY, "cancel")
        return wire.cancel(index, begin, length)

    def send_piece_header(self, index: int, begin: int, length: int) -> bytes:
        """The 13-byte header of a PIECE message; the caller writes the `length` block bytes next."""
        self._check_outgoing_block("piece", index, begin, length)
        self._sending(_Kind.ORDINARY, "piece")
        return wire.piece_header(index, begin, length)

    def send_reject(self, index: int, begin: int, length: int) -> bytes:
        self._require(self.supports_fast, "the fast extension")
        self._check_outgoing_block("reject", index, begin, length)
        self._sending(_Kind.ORDINARY, "reject")
        return wire.reject(index, begin, length)

    def send_suggest(self, index: int) -> bytes:
        self._require(self.supports_fast, "the fast extension")
        self._check_outgoing_index("suggest", index)
        self._sending(_Kind.ORDINARY, "suggest")
        return wire.suggest(index)

    def send_allowed_fast(self, index: int) -> bytes:
        self._require(self.supports_fast, "the fast extension")
        self._check_outgoing_index("allowed fast", index)
        self._sending(_Kind.ORDINARY, "allowed fast")
        return wire.allowed_fast(index)

    def send_port(self, listen_port: int) -> bytes:
        if not 0 < listen_port < 65536:
            raise ValueError(f"port {listen_port} out of range")
        self._sending(_Kind.NEUTRAL, "port")
        return wire.port(listen_port)

    def drop_extension(self, name: str) -> None:
        """Stop offering extension `name`: it leaves the "m" of our extended handshake, and what the peer
        sends under its old id is no longer parsed as it. Call before `send_extended_handshake`."""
        ext_id = self.extensions.pop(name, None)
        if ext_id is not None:
            self._ext_names.pop(ext_id, None)

    def send_extended_handshake(self, extra: Mapping[str, Any] | None = None) -> bytes:
        """Our BEP 10 handshake: our `extensions` as "m", `metadata_size` if known, plus `extra`
        (e.g. {"v": "torrentpy 0.1", "p": 6881, "reqq": 500})."""
        self._require(self.supports_extensions, "the extension protocol")
        self._sending(_Kind.NEUTRAL, "extended handshake")
        return wire.extended(
            0, extension.encode_extended_handshake(self.extensions, self.metadata_size, extra)
        )

    def _send_extension(self, name: str, payload: bytes) -> bytes:
        ext_id = self.peer_extensions.get(name)
        self._require(ext_id is not None and self.supports_extensions, name)
        assert ext_id is not None
        self._sending(_Kind.NEUTRAL, name)
        return wire.extended(ext_id, payload)

    def send_metadata_request(self, piece: int) -> bytes:
        return self._send_extension(extension.UT_METADATA, extension.encode_metadata_request(piece))

    def send_metadata_data(self, piece: int, total_size: int, data: bytes | bytearray | memoryview) -> bytes:
        return self._send_extension(
            extension.UT_METADATA, extension.encode_metadata_data(piece, total_size, data)
        )

    def send_metadata_reject(self, piece: int) -> bytes:
        return self._send_extension(extension.UT_METADATA, extension.encode_metadata_reject(piece))

    def send_pex(self, added: Iterable[tuple[str, int]], dropped: Iterable[tuple[str, int]]) -> bytes:
        return self._send_extension(extension.UT_PEX, extension.encode_pex(added, dropped))
