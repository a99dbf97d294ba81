"""Events a `PeerConnection` emits from `next_event()`: one frozen dataclass per kind of thing the
peer told us. They carry data only; the connection has already applied any state change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torrentpy._core import Bitfield

__all__ = [
    "AllowedFast",
    "BitfieldReceived",
    "Cancel",
    "Choke",
    "Event",
    "ExtendedHandshake",
    "HandshakeComplete",
    "HandshakeInfoHash",
    "Have",
    "Interested",
    "KeepAlive",
    "MetadataData",
    "MetadataReject",
    "MetadataRequest",
    "NotInterested",
    "PexPeers",
    "Piece",
    "Port",
    "ProtocolError",
    "Reject",
    "Request",
    "Suggest",
    "Unchoke",
    "UnknownExtended",
]


class Event:
    """Base class of every event, so callers can annotate `Event | None`."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class HandshakeInfoHash(Event):
    """An incoming peer named this info-hash: call `accept_info_hash(...)` or close the connection."""

    info_hash: bytes


@dataclass(frozen=True, slots=True)
class HandshakeComplete(Event):
    peer_id: bytes
    reserved: bytes


@dataclass(frozen=True, slots=True)
class KeepAlive(Event):
    pass


@dataclass(frozen=True, slots=True)
class Choke(Event):
    pass


@dataclass(frozen=True, slots=True)
class Unchoke(Event):
    pass


@dataclass(frozen=True, slots=True)
class Interested(Event):
    pass


@dataclass(frozen=True, slots=True)
class NotInterested(Event):
    pass


@dataclass(frozen=True, slots=True)
class Have(Event):
    index: int


@dataclass(frozen=True, slots=True)
class BitfieldReceived(Event):
    """The peer's whole bitfield (also after HAVE_ALL / HAVE_NONE). A copy: the caller may keep it."""

    bitfield: Bitfield


@dataclass(frozen=True, slots=True)
class Request(Event):
    index: int
    begin: int
    length: int


@dataclass(frozen=True, slots=True)
class Piece(Event):
    """A block. `data` is a memoryview into the connection's receive buffer: it stays valid only until
    the next `receive_data()` call, so copy it (or write it out) before feeding more bytes."""

    index: int
    begin: int
    data: memoryview | bytes


@dataclass(frozen=True, slots=True)
class Cancel(Event):
    index: int
    begin: int
    length: int


@dataclass(frozen=True, slots=True)
class Port(Event):
    port: int


@dataclass(frozen=True, slots=True)
class Reject(Event):
    index: int
    begin: int
    length: int


@dataclass(frozen=True, slots=True)
class AllowedFast(Event):
    index: int


@dataclass(frozen=True, slots=True)
class Suggest(Event):
    index: int


@dataclass(frozen=True, slots=True)
class ExtendedHandshake(Event):
    """The peer's BEP 10 handshake dict as decoded (keys are `bytes`, as on the wire). The useful
    fields are already parsed onto the connection: `peer_extensions`, `peer_metadata_size`, …"""

    data: dict[bytes, Any]


@dataclass(frozen=True, slots=True)
class MetadataRequest(Event):
    piece: int


@dataclass(frozen=True, slots=True)
class MetadataData(Event):
    piece: int
    total_size: int
    data: bytes


@dataclass(frozen=True, slots=True)
class MetadataReject(Event):
    piece: int


@dataclass(frozen=True, slots=True)
class PexPeers(Event):
    added: list[tuple[str, int]]
    dropped: list[tuple[str, int]]


@dataclass(frozen=True, slots=True)
class UnknownExtended(Event):
    """An extended message we did not advertise (or a ut_metadata type BEP 9 says to ignore)."""

    id: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class ProtocolError(Event):
    """The peer broke the protocol; the connection is dead and should be closed."""

    reason: str
