"""The receiving half of `PeerConnection`: one handler per message id turns a checked payload into an
event and records what it says about the peer (choked, interested, its pieces, its extensions).
`peer.py` frames the bytes and applies the state table before a handler runs."""

from __future__ import annotations

import struct
from collections.abc import Mapping

from torrentpy._core import Bitfield
from torrentpy.protocol import extension, wire
from torrentpy.protocol.events import (
    AllowedFast,
    BitfieldReceived,
    Cancel,
    Choke,
    Event,
    ExtendedHandshake,
    Have,
    Interested,
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
from torrentpy.protocol.rules import MAX_EXTENDED_HANDSHAKE_LENGTH, Geometry, Needs, Spec

__all__ = ["MessageParser"]

_U32 = struct.Struct(">I")
# What handlers parse: the connection's own buffer, or the caller's while it lends it (receive_borrowed).
Buffer = bytearray | memoryview

_U16 = struct.Struct(">H")
_II = struct.Struct(">II")
_III = struct.Struct(">III")

_CHOKE = Choke()
_UNCHOKE = Unchoke()
_INTERESTED = Interested()
_NOT_INTERESTED = NotInterested()


class MessageParser(Geometry):
    """Message handlers, mixed into PeerConnection (which sets these attributes and `_fail`)."""

    metadata_size: int | None
    peer_choking: bool
    peer_interested: bool
    supports_fast: bool
    supports_extensions: bool
    peer_extensions: dict[str, int]
    peer_metadata_size: int | None
    peer_listen_port: int | None
    peer_client: str | None
    peer_request_queue: int | None
    peer_bitfield: Bitfield | None
    _ext_names: dict[int, str]
    _early_announce: bytes | str | None
    _early_haves: bytearray
    _max_length: Mapping[int, int]

    def _fail(self, reason: str) -> ProtocolError:
        """Close the connection for `reason` (PeerConnection does it; it owns the receive buffer)."""
        raise NotImplementedError

    def _check_message(self, spec: Spec, msg_id: int, length: int) -> str | None:
        if spec.needs is Needs.FAST and not self.supports_fast:
            return f"{spec.name} message from a peer that did not announce {spec.needs.value}"
        if spec.needs is Needs.EXTENSIONS and not self.supports_extensions:
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

    # Handlers get the payload as buf[start:end] (after the id byte) and return an event, or None
    # when the message was absorbed silently.

    def _on_choke(self, buf: Buffer, start: int, end: int) -> Event | None:
        self.peer_choking = True
        return _CHOKE

    def _on_unchoke(self, buf: Buffer, start: int, end: int) -> Event | None:
        self.peer_choking = False
        return _UNCHOKE

    def _on_interested(self, buf: Buffer, start: int, end: int) -> Event | None:
        self.peer_interested = True
        return _INTERESTED

    def _on_not_interested(self, buf: Buffer, start: int, end: int) -> Event | None:
        self.peer_interested = False
        return _NOT_INTERESTED

    def _on_have(self, buf: Buffer, start: int, end: int) -> Event | None:
        index = _U32.unpack_from(buf, start)[0]
        problem = self.check_index("have message", index)
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

    def _on_bitfield(self, buf: Buffer, start: int, end: int) -> Event | None:
        raw = bytes(buf[start:end])
        if not self.num_pieces:
            self._early_announce = raw
            return None
        try:
            return self._announced(Bitfield.from_bytes(raw, self.num_pieces))
        except ValueError as exc:
            return self._fail(f"bad bitfield: {exc}")

    def _on_have_all(self, buf: Buffer, start: int, end: int) -> Event | None:
        if not self.num_pieces:
            self._early_announce = "all"
            return None
        return self._announced(Bitfield.full(self.num_pieces))

    def _on_have_none(self, buf: Buffer, start: int, end: int) -> Event | None:
        if not self.num_pieces:
            self._early_announce = "none"
            return None
        return self._announced(Bitfield(self.num_pieces))

    def _on_request(self, buf: Buffer, start: int, end: int) -> Event | None:
        index, begin, length = _III.unpack_from(buf, start)
        problem = self.check_block("request", index, begin, length)
        return self._fail(problem) if problem is not None else Request(index, begin, length)

    def _on_cancel(self, buf: Buffer, start: int, end: int) -> Event | None:
        index, begin, length = _III.unpack_from(buf, start)
        problem = self.check_block("cancel", index, begin, length)
        return self._fail(problem) if problem is not None else Cancel(index, begin, length)

    def _on_reject(self, buf: Buffer, start: int, end: int) -> Event | None:
        index, begin, length = _III.unpack_from(buf, start)
        problem = self.check_block("reject", index, begin, length)
        return self._fail(problem) if problem is not None else Reject(index, begin, length)

    def _on_piece(self, buf: Buffer, start: int, end: int) -> Event | None:
        index, begin = _II.unpack_from(buf, start)
        problem = self.check_block("piece", index, begin, end - start - 8)
        if problem is not None:
            return self._fail(problem)
        return Piece(index, begin, memoryview(buf)[start + 8 : end])

    def _on_port(self, buf: Buffer, start: int, end: int) -> Event | None:
        return Port(_U16.unpack_from(buf, start)[0])

    def _on_suggest(self, buf: Buffer, start: int, end: int) -> Event | None:
        index = _U32.unpack_from(buf, start)[0]
        problem = self.check_index("suggest", index)
        return self._fail(problem) if problem is not None else Suggest(index)

    def _on_allowed_fast(self, buf: Buffer, start: int, end: int) -> Event | None:
        index = _U32.unpack_from(buf, start)[0]
        problem = self.check_index("allowed fast", index)
        return self._fail(problem) if problem is not None else AllowedFast(index)

    def _on_extended(self, buf: Buffer, start: int, end: int) -> Event | None:
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
