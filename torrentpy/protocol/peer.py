"""`PeerConnection`: one BitTorrent peer connection as a sans-I/O state machine (model: h11).

Bytes in with `receive_data()`, events out with `next_event()` (None means "feed me more bytes");
outgoing messages come back as `bytes` from the `send_*` methods, which also update our side of the
state. Nothing here touches a socket or a clock.

A peer's misbehaviour becomes exactly one `ProtocolError` event, after which the connection is dead
(`closed_reason` says why, further input is ignored). Our own misuse (sending a request before the
handshake, a reject without the fast extension, …) raises `LocalProtocolError` instead.

The connection validates bounds, order and capabilities only; whether a Piece was requested, or a
Request should be served, is the engine's business.

The class is assembled from three modules: `rules.py` (limits, the message table, the state table),
`inbound.py` (one handler per received message id) and `outbound.py` (the `send_*` methods); this one
keeps the connection's state, the handshake and the framing of received bytes."""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable, Mapping
from typing import cast

from torrentpy._core import Bitfield
from torrentpy.protocol import extension, wire
from torrentpy.protocol.events import (
    BitfieldReceived,
    Event,
    HandshakeComplete,
    HandshakeInfoHash,
    KeepAlive,
    Piece,
    ProtocolError,
)
from torrentpy.protocol.inbound import Buffer, MessageParser
from torrentpy.protocol.outbound import MessageBuilder
from torrentpy.protocol.rules import (
    DEFAULT_MAX_BLOCK_LENGTH,
    MAX_EXTENDED_HANDSHAKE_LENGTH,
    MAX_EXTENDED_MESSAGE_LENGTH,
    MAX_UNKNOWN_MESSAGE_LENGTH,
    MAX_UNKNOWN_MESSAGES,
    MAX_UNKNOWN_NUM_PIECES,
    SPECS,
    TRANSITIONS,
    LocalProtocolError,
    Phase,
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

# Moving the unread tail is only worth it once the consumed prefix is large and at least half the
# buffer; that keeps total copying linear in the bytes received.
_COMPACT_MIN_BYTES = 64 * 1024

_PROTOCOL_HEADER_LENGTH = 48  # pstrlen, pstr, reserved, info-hash: everything but the peer id
_OUR_RESERVED = wire.make_reserved(extensions=True, fast=True, dht=False)

_U32 = struct.Struct(">I")
_II = struct.Struct(">II")

_KEEPALIVE = KeepAlive()

_Handler = Callable[[Buffer, int, int], "Event | None"]


class PeerConnection(MessageParser, MessageBuilder):
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

        self._recv = Phase.HANDSHAKE
        self._send = Phase.HANDSHAKE
        self._buf: Buffer = bytearray()
        self._borrowed = False  # _buf is the caller's memory (receive_borrowed) until release_borrowed()
        self._lend_next: memoryview | None = None  # lent memory to parse once _buf is drained
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
        # For the fast path of _next_message: pieces before the last one (the last may be short).
        self._piece_max_length = self._max_length[wire.PIECE]
        self._plain_pieces = max(num_pieces - 1, 0)
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
        if self._recv is Phase.CLOSED:
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

    # --- handshake ---------------------------------------------------------------------------

    def initiate(self) -> bytes:
        """Our handshake. Outgoing connections send it at once; incoming ones once the info-hash is
        known (given to the constructor, or after `accept_info_hash`)."""
        if self._send is not Phase.HANDSHAKE:
            raise LocalProtocolError("handshake already sent")
        if self.info_hash is None:
            raise LocalProtocolError("the info-hash is not known yet: call accept_info_hash() first")
        self._send = Phase.AWAITING_ANNOUNCE
        return wire.encode_handshake(self.info_hash, self.our_peer_id, self.our_reserved)

    def accept_info_hash(
        self, info_hash: bytes, num_pieces: int, piece_length: int, total_length: int
    ) -> None:
        """Accept the torrent an incoming peer asked for (after a HandshakeInfoHash event)."""
        if self._recv is not Phase.INFO_HASH_PENDING:
            raise LocalProtocolError("no info-hash is waiting to be accepted")
        if bytes(info_hash) != self._peer_info_hash:
            raise ValueError("accepted info-hash differs from the one the peer sent")
        self._set_size(num_pieces, piece_length, total_length)
        self.info_hash = bytes(info_hash)
        self._recv = Phase.PEER_ID

    # --- receiving ---------------------------------------------------------------------------

    def receive_borrowed(self, data: memoryview) -> None:
        """Feed bytes read from the socket, parsing them where they lie (a download then copies each
        block once, into its piece, not twice). Only what completes a message left over from the
        last read is copied first. The caller lends `data` until it calls `release_borrowed()`,
        which it must do after draining `next_event()` and before it reuses that memory; Piece
        events' `data` may point into it until then."""
        if self._recv is Phase.CLOSED or not data:
            return
        if self._borrowed or self._lend_next is not None:
            self.receive_data(data)
            return
        if self._pos != len(self._buf):
            need = self._bytes_to_finish(data)
            if need is None or need >= len(data):
                self.receive_data(data)
                return
            self.receive_data(data[:need])
            self._lend_next = data[need:]  # parsed in place once the message in our buffer is out
            return
        self._buf = data
        self._pos = 0
        self._borrowed = True

    def _bytes_to_finish(self, data: memoryview) -> int | None:
        """How many bytes of `data` complete the message begun in our buffer, or None to copy it all."""
        if self._recv is not Phase.MESSAGES and self._recv is not Phase.AWAITING_ANNOUNCE:
            return None
        buf, pos = self._buf, self._pos
        pending = len(buf) - pos
        if pending >= 4:
            length = _U32.unpack_from(buf, pos)[0]
        elif pending + len(data) >= 4:
            length = _U32.unpack(bytes(buf[pos:]) + bytes(data[: 4 - pending]))[0]
        else:
            return None
        need = 4 + length - pending
        if length > self._max_message_length or need <= 0:
            return None  # the parser reports the first; the second is a message not drained yet
        return need

    def release_borrowed(self) -> None:
        """Stop using the memory lent by `receive_borrowed()`: what is not parsed yet (at most one
        message's worth, unless the caller stopped draining) is copied into the connection's own buffer."""
        if self._borrowed:
            self._borrowed = False
            tail = bytearray(self._buf[self._pos :])
            self._bytes_copied += len(tail)
            self._buf = tail
            self._pos = 0
        lend, self._lend_next = self._lend_next, None
        if lend is not None:
            # A fresh buffer: Piece views of the message parsed from the old one may still be alive.
            fresh = bytearray(self._buf[self._pos :])
            fresh += lend
            self._bytes_copied += len(fresh)
            self._buf = fresh
            self._pos = 0

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes read from the socket. Invalidates the `data` of earlier Piece events."""
        if self._recv is Phase.CLOSED or not data:
            return
        self.release_borrowed()
        buf = cast(bytearray, self._buf)  # owned once released
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
        event = self._next_event()
        if event is None and self._lend_next is not None and self._pos == len(self._buf):
            # Our buffer is drained: go on in the memory the caller lent (receive_borrowed).
            self._buf, self._lend_next = self._lend_next, None
            self._pos = 0
            self._borrowed = True
            event = self._next_event()
        return event

    def _next_event(self) -> Event | None:
        if self._queue:
            return self._queue.popleft()
        phase = self._recv
        if phase is Phase.MESSAGES or phase is Phase.AWAITING_ANNOUNCE:
            return self._next_message()
        if phase is Phase.HANDSHAKE:
            return self._read_handshake_header()
        if phase is Phase.PEER_ID:
            return self._read_peer_id()
        return None

    def _fail(self, reason: str) -> ProtocolError:
        self.closed_reason = reason
        self._recv = Phase.CLOSED
        self._queue.clear()
        self._buf = bytearray()
        self._borrowed = False
        self._lend_next = None
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
            self._recv = Phase.INFO_HASH_PENDING
            return HandshakeInfoHash(info_hash)
        if info_hash != self.info_hash:
            return self._fail(f"handshake info-hash {info_hash.hex()} is not ours ({self.info_hash.hex()})")
        self._recv = Phase.PEER_ID
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
        self._recv = Phase.AWAITING_ANNOUNCE
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
            if msg_id == wire.PIECE and self._recv is Phase.MESSAGES:
                # Nine in ten messages of a download: the checks of the general path below, for a
                # block that plainly fits, without its table lookups (enum hashing) and calls.
                end = pos + 4 + length
                if 10 <= length <= self._piece_max_length:
                    if len(buf) < end:
                        return None
                    index, begin = _II.unpack_from(buf, pos + 5)
                    if index < self._plain_pieces and begin + length - 9 <= self.piece_length:
                        self._pos = end
                        return Piece(index, begin, memoryview(buf)[pos + 13 : end])
            spec = SPECS.get(msg_id)
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
            next_phase = TRANSITIONS.get((self._recv, spec.kind))
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

