"""The sending half of `PeerConnection`: each `send_*` checks that the message is allowed now and
that the peer supports it, updates our side of the state, and returns the encoded bytes. Our own
misuse raises `LocalProtocolError`; nothing here reads what the peer sent beyond its capabilities."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from torrentpy._core import Bitfield
from torrentpy.protocol import extension, wire
from torrentpy.protocol.rules import TRANSITIONS, Geometry, Kind, LocalProtocolError, Phase

__all__ = ["MessageBuilder"]


class MessageBuilder(Geometry):
    """Message builders, mixed into PeerConnection (which sets these attributes)."""

    am_choking: bool
    am_interested: bool
    supports_fast: bool
    supports_extensions: bool
    extensions: dict[str, int]
    metadata_size: int | None
    peer_extensions: dict[str, int]
    _ext_names: dict[int, str]
    _send: Phase

    def _sending(self, kind: Kind, name: str) -> None:
        if self._send is Phase.MESSAGES and kind is Kind.ORDINARY:
            return  # once per REQUEST: skip the table lookup (its key hashes two enums in Python)
        next_phase = TRANSITIONS.get((self._send, kind))
        if next_phase is None:
            raise LocalProtocolError(f"cannot send {name} {self._send.value}")
        self._send = next_phase

    def _require(self, supported: bool, what: str) -> None:
        if not supported:
            raise LocalProtocolError(f"the peer does not support {what}")

    def _check_outgoing_block(self, name: str, index: int, begin: int, length: int) -> None:
        problem = self.check_block(name, index, begin, length)
        if problem is not None:
            raise LocalProtocolError(problem)

    def _check_outgoing_index(self, name: str, index: int) -> None:
        problem = self.check_index(name, index)
        if problem is not None:
            raise LocalProtocolError(problem)

    def send_keepalive(self) -> bytes:
        self._sending(Kind.NEUTRAL, "keep-alive")
        return wire.keepalive()

    def send_choke(self) -> bytes:
        self._sending(Kind.ORDINARY, "choke")
        self.am_choking = True
        return wire.choke()

    def send_unchoke(self) -> bytes:
        self._sending(Kind.ORDINARY, "unchoke")
        self.am_choking = False
        return wire.unchoke()

    def send_interested(self) -> bytes:
        self._sending(Kind.ORDINARY, "interested")
        self.am_interested = True
        return wire.interested()

    def send_not_interested(self) -> bytes:
        self._sending(Kind.ORDINARY, "not interested")
        self.am_interested = False
        return wire.not_interested()

    def send_have(self, index: int) -> bytes:
        self._check_outgoing_index("have", index)
        self._sending(Kind.ORDINARY, "have")
        return wire.have(index)

    def send_haves(self, indexes: Sequence[int]) -> bytes:
        """Several HAVEs in one buffer, for one write (a seed's HAVEs wait for the engine's tick)."""
        if not indexes:
            return b""
        self._check_outgoing_index("have", min(indexes))
        self._check_outgoing_index("have", max(indexes))
        self._sending(Kind.ORDINARY, "have")
        return b"".join([wire.have(i) for i in indexes])

    def send_bitfield(self, bf: Bitfield) -> bytes:
        """Our bitfield, or HAVE_ALL / HAVE_NONE when both sides support the fast extension."""
        if len(bf) != self.num_pieces:
            raise LocalProtocolError(f"bitfield of {len(bf)} pieces for a torrent of {self.num_pieces}")
        self._sending(Kind.ANNOUNCE, "bitfield")
        if self.supports_fast and bf.all():
            return wire.have_all()
        if self.supports_fast and not bf.any():
            return wire.have_none()
        return wire.bitfield(bf)

    def send_have_none(self) -> bytes:
        """HAVE_NONE: what a magnet download without metadata (no piece count yet) announces."""
        self._require(self.supports_fast, "the fast extension")
        self._sending(Kind.ANNOUNCE, "have none")
        return wire.have_none()

    def send_request(self, index: int, begin: int, length: int) -> bytes:
        self._check_outgoing_block("request", index, begin, length)
        self._sending(Kind.ORDINARY, "request")
        return wire.request(index, begin, length)

    def send_cancel(self, index: int, begin: int, length: int) -> bytes:
        self._check_outgoing_block("cancel", index, begin, length)
        self._sending(Kind.ORDINARY, "cancel")
        return wire.cancel(index, begin, length)

    def send_piece_header(self, index: int, begin: int, length: int) -> bytes:
        """The 13-byte header of a PIECE message; the caller writes the `length` block bytes next."""
        self._check_outgoing_block("piece", index, begin, length)
        self._sending(Kind.ORDINARY, "piece")
        return wire.piece_header(index, begin, length)

    def send_reject(self, index: int, begin: int, length: int) -> bytes:
        self._require(self.supports_fast, "the fast extension")
        self._check_outgoing_block("reject", index, begin, length)
        self._sending(Kind.ORDINARY, "reject")
        return wire.reject(index, begin, length)

    def send_suggest(self, index: int) -> bytes:
        self._require(self.supports_fast, "the fast extension")
        self._check_outgoing_index("suggest", index)
        self._sending(Kind.ORDINARY, "suggest")
        return wire.suggest(index)

    def send_allowed_fast(self, index: int) -> bytes:
        self._require(self.supports_fast, "the fast extension")
        self._check_outgoing_index("allowed fast", index)
        self._sending(Kind.ORDINARY, "allowed fast")
        return wire.allowed_fast(index)

    def send_port(self, listen_port: int) -> bytes:
        if not 0 < listen_port < 65536:
            raise ValueError(f"port {listen_port} out of range")
        self._sending(Kind.NEUTRAL, "port")
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
        self._sending(Kind.NEUTRAL, "extended handshake")
        return wire.extended(
            0, extension.encode_extended_handshake(self.extensions, self.metadata_size, extra)
        )

    def _send_extension(self, name: str, payload: bytes) -> bytes:
        ext_id = self.peer_extensions.get(name)
        self._require(ext_id is not None and self.supports_extensions, name)
        assert ext_id is not None
        self._sending(Kind.NEUTRAL, name)
        return wire.extended(ext_id, payload)

    def send_metadata_request(self, piece: int) -> bytes:
        return self._send_extension(extension.UT_METADATA, extension.encode_metadata_request(piece))

    def send_metadata_data(self, piece: int, total_size: int, data: bytes | bytearray | memoryview) -> bytes:
        return self._send_extension(
            extension.UT_METADATA, extension.encode_metadata_data(piece, total_size, data)
        )

    def send_metadata_reject(self, piece: int) -> bytes:
        return self._send_extension(extension.UT_METADATA, extension.encode_metadata_reject(piece))

    def send_pex(
        self,
        added: Iterable[tuple[str, int]],
        dropped: Iterable[tuple[str, int]],
        flags: Iterable[int] | None = None,
    ) -> bytes:
        return self._send_extension(extension.UT_PEX, extension.encode_pex(added, dropped, flags))
