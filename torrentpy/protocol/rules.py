"""What a peer connection allows: the limits on what a peer can make us buffer, the per-message
table (which id needs which extension, how long it is, where it may come in the exchange), and the
bounds checks on piece indexes and blocks that both directions share. Pure data and arithmetic."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from torrentpy.protocol import extension, wire

__all__ = [
    "DEFAULT_MAX_BLOCK_LENGTH",
    "MAX_EXTENDED_HANDSHAKE_LENGTH",
    "MAX_EXTENDED_MESSAGE_LENGTH",
    "MAX_UNKNOWN_MESSAGES",
    "MAX_UNKNOWN_MESSAGE_LENGTH",
    "MAX_UNKNOWN_NUM_PIECES",
    "SPECS",
    "TRANSITIONS",
    "Geometry",
    "Kind",
    "LocalProtocolError",
    "Needs",
    "Phase",
    "Spec",
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


class LocalProtocolError(Exception):
    """We (the caller) tried to do something the protocol does not allow in this state."""


# --- state transitions as data ----------------------------------------------------------------


class Kind(enum.Enum):
    ANNOUNCE = "announce"  # have_all, have_none: what the sender has, once, up front
    BITFIELD = "bitfield"  # up front as BEP 3 says, but aria2 also sends one later instead of many HAVEs
    NEUTRAL = "neutral"  # keep-alive, extended, port: may precede the announcement
    ORDINARY = "ordinary"  # everything else


class Phase(enum.Enum):
    HANDSHAKE = "before the handshake"
    INFO_HASH_PENDING = "while the info-hash awaits accept_info_hash()"
    PEER_ID = "before the handshake's peer id"
    AWAITING_ANNOUNCE = "right after the handshake"
    MESSAGES = "after other messages"
    CLOSED = "after the connection closed"


# Both directions use one table. BEP 3/6 put the bitfield (or have_all/have_none) first; Transmission
# sends its extended handshake before its bitfield, so NEUTRAL messages leave the window open.
# A (phase, kind) pair missing from the table is a protocol error.
TRANSITIONS: Mapping[tuple[Phase, Kind], Phase] = {
    (Phase.AWAITING_ANNOUNCE, Kind.ANNOUNCE): Phase.MESSAGES,
    (Phase.AWAITING_ANNOUNCE, Kind.BITFIELD): Phase.MESSAGES,
    (Phase.MESSAGES, Kind.BITFIELD): Phase.MESSAGES,
    (Phase.AWAITING_ANNOUNCE, Kind.NEUTRAL): Phase.AWAITING_ANNOUNCE,
    (Phase.AWAITING_ANNOUNCE, Kind.ORDINARY): Phase.MESSAGES,
    (Phase.MESSAGES, Kind.NEUTRAL): Phase.MESSAGES,
    (Phase.MESSAGES, Kind.ORDINARY): Phase.MESSAGES,
}


class Needs(enum.Enum):
    NOTHING = ""
    FAST = "the fast extension"
    EXTENSIONS = "the extension protocol"


@dataclass(frozen=True, slots=True)
class Spec:
    name: str
    kind: Kind
    needs: Needs
    length: int | None  # exact length (id + payload), or None when it varies


SPECS: Mapping[int, Spec] = {
    wire.CHOKE: Spec("choke", Kind.ORDINARY, Needs.NOTHING, 1),
    wire.UNCHOKE: Spec("unchoke", Kind.ORDINARY, Needs.NOTHING, 1),
    wire.INTERESTED: Spec("interested", Kind.ORDINARY, Needs.NOTHING, 1),
    wire.NOT_INTERESTED: Spec("not interested", Kind.ORDINARY, Needs.NOTHING, 1),
    wire.HAVE: Spec("have", Kind.ORDINARY, Needs.NOTHING, 5),
    wire.BITFIELD: Spec("bitfield", Kind.BITFIELD, Needs.NOTHING, None),
    wire.REQUEST: Spec("request", Kind.ORDINARY, Needs.NOTHING, 13),
    wire.PIECE: Spec("piece", Kind.ORDINARY, Needs.NOTHING, None),
    wire.CANCEL: Spec("cancel", Kind.ORDINARY, Needs.NOTHING, 13),
    wire.PORT: Spec("port", Kind.NEUTRAL, Needs.NOTHING, 3),
    wire.SUGGEST: Spec("suggest", Kind.ORDINARY, Needs.FAST, 5),
    wire.HAVE_ALL: Spec("have all", Kind.ANNOUNCE, Needs.FAST, 1),
    wire.HAVE_NONE: Spec("have none", Kind.ANNOUNCE, Needs.FAST, 1),
    wire.REJECT: Spec("reject", Kind.ORDINARY, Needs.FAST, 13),
    wire.ALLOWED_FAST: Spec("allowed fast", Kind.ORDINARY, Needs.FAST, 5),
    wire.EXTENDED: Spec("extended", Kind.NEUTRAL, Needs.EXTENSIONS, None),
}


class Geometry:
    """The torrent's size as a connection knows it (`num_pieces == 0`: not yet, a magnet link before
    its metadata), and the index and block checks both directions apply. Returns the problem as a
    string so the receiving side can turn it into a ProtocolError and the sending side into a
    LocalProtocolError."""

    num_pieces: int
    piece_length: int
    total_length: int
    max_block_length: int

    def piece_size(self, index: int) -> int:
        if index == self.num_pieces - 1:
            return self.total_length - index * self.piece_length
        return self.piece_length

    def check_index(self, name: str, index: int) -> str | None:
        bound = self.num_pieces or MAX_UNKNOWN_NUM_PIECES
        if not 0 <= index < bound:
            return f"{name} for piece {index}, the torrent has {bound} pieces"
        return None

    def check_block(self, name: str, index: int, begin: int, length: int) -> str | None:
        if length <= 0 or begin < 0:
            return f"{name} for {length} bytes at offset {begin}"
        if length > self.max_block_length:
            return f"{name} of {length} bytes exceeds the block limit {self.max_block_length}"
        problem = self.check_index(name, index)
        if problem is not None or not self.num_pieces:
            return problem
        size = self.piece_size(index)
        if begin + length > size:
            return f"{name} for bytes {begin}..{begin + length} beyond piece {index} of {size} bytes"
        return None
