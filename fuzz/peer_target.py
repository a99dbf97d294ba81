"""Fuzz target for the peer wire state machine (protocol/peer.py PeerConnection, with the extension
messages it parses): an arbitrary byte stream, fed once whole and once in arbitrary splits, must give
the same events; the receive buffer stays bounded and copying stays linear; after a ProtocolError
nothing more comes out; the connection's view of the peer matches the events it emitted.

Input layout (so real captures can be seeds: see tests/interop/test_wire_capture.py):

    byte 0        flags: 1 = incoming (info-hash unknown until the handshake), 2 = take our info-hash
                  from the stream (else a fixed one), 4 = magnet (size unknown; set after the stream)
    bytes 1..4    number of pieces (big-endian, reduced to at most 2**17, 0 means 1)
    byte 5        piece length = 16 KiB << (byte % 7)
    bytes 6..7    how much shorter the last piece is (modulo the piece length)
    bytes 8..15   seed of the split points
    bytes 16..    what the peer sends

    .venv/bin/python fuzz/run.py peer [-max_total_time=60]
"""

from __future__ import annotations

import random
import struct

from torrentpy.protocol.events import (
    BitfieldReceived,
    Choke,
    Event,
    HandshakeInfoHash,
    Have,
    Interested,
    NotInterested,
    Piece,
    ProtocolError,
    Unchoke,
)
from torrentpy.protocol.peer import (
    DEFAULT_MAX_BLOCK_LENGTH,
    MAX_EXTENDED_MESSAGE_LENGTH,
    MAX_UNKNOWN_MESSAGE_LENGTH,
    MAX_UNKNOWN_NUM_PIECES,
    PeerConnection,
)

HEADER = 16
OUR_PEER_ID = b"-TP0001-fuzzfuzzfuzz"
FIXED_INFO_HASH = bytes(range(20))
_HEAD = struct.Struct(">BIBHQ")
# The most a peer may make us buffer: the length prefix plus the largest message any id may carry
# (the named limits of protocol/rules.py), or the handshake.
MAX_BUFFERED = 4 + max(MAX_EXTENDED_MESSAGE_LENGTH, MAX_UNKNOWN_MESSAGE_LENGTH, 9 + DEFAULT_MAX_BLOCK_LENGTH,
                       1 + (MAX_UNKNOWN_NUM_PIECES + 7) // 8, 68)


class Setup:
    def __init__(self, header: bytes, stream: bytes) -> None:
        flags, pieces, shift, short, self.seed = _HEAD.unpack(header)
        self.incoming = bool(flags & 1)
        self.magnet = bool(flags & 4)
        self.num_pieces = (pieces % (1 << 17)) or 1
        self.piece_length = 16384 << (shift % 7)
        self.total_length = self.num_pieces * self.piece_length - short % self.piece_length
        self.info_hash = stream[28:48] if flags & 2 and len(stream) >= 48 else FIXED_INFO_HASH

    def connection(self) -> PeerConnection:
        size = (0, 0, 0) if self.magnet else (self.num_pieces, self.piece_length, self.total_length)
        return PeerConnection(
            info_hash=None if self.incoming else self.info_hash,
            peer_id=OUR_PEER_ID,
            num_pieces=size[0],
            piece_length=size[1],
            total_length=size[2],
            initiator=not self.incoming,
            metadata_size=None if self.magnet else 40_000,
        )


def _drain(conn: PeerConnection, setup: Setup, out: list[Event]) -> None:
    while (event := conn.next_event()) is not None:
        if isinstance(event, Piece):
            # The block is a view into the receive buffer, valid only until the next receive_data().
            event = Piece(event.index, event.begin, bytes(event.data))
        elif isinstance(event, HandshakeInfoHash):
            size = (0, 0, 0) if setup.magnet else (setup.num_pieces, setup.piece_length, setup.total_length)
            conn.accept_info_hash(event.info_hash, *size)
        out.append(event)
    if conn.closed_reason is None:
        # Whatever is left is less than one message (or handshake): a peer cannot make us hold more.
        assert conn.buffered_bytes < MAX_BUFFERED, f"{conn.buffered_bytes} bytes buffered"
    else:
        assert conn.buffered_bytes == 0


def _finish(conn: PeerConnection, setup: Setup, out: list[Event]) -> None:
    if setup.magnet and conn.closed_reason is None:
        conn.set_torrent_size(setup.num_pieces, setup.piece_length, setup.total_length)
        _drain(conn, setup, out)


def _comparable(events: list[Event]) -> list[object]:
    # A ProtocolError's text may say how much of a bad handshake had arrived; its kind may not vary.
    return ["ProtocolError" if isinstance(e, ProtocolError) else e for e in events]


def _check_state(conn: PeerConnection, events: list[Event], setup: Setup) -> None:
    errors = [i for i, e in enumerate(events) if isinstance(e, ProtocolError)]
    if errors:
        assert errors == [len(events) - 1], "events after a ProtocolError"
        assert conn.closed_reason == events[-1].reason  # type: ignore[attr-defined]
        return
    choking, interested = True, False
    have: set[int] = set()
    announced = None
    for e in events:
        if isinstance(e, Choke | Unchoke):
            choking = isinstance(e, Choke)
        elif isinstance(e, Interested | NotInterested):
            interested = isinstance(e, Interested)
        elif isinstance(e, BitfieldReceived):
            announced, have = e.bitfield, set()
            assert len(e.bitfield) == setup.num_pieces
        elif isinstance(e, Have):
            assert 0 <= e.index < setup.num_pieces
            have.add(e.index)
    assert conn.peer_choking is choking and conn.peer_interested is interested
    if announced is not None or have:
        bf = conn.peer_bitfield
        assert bf is not None and len(bf) == setup.num_pieces
        expected = set(announced or ()) | have
        assert set(bf) == expected and bf.count() == len(expected)


def test_one_input(data: bytes) -> None:
    if len(data) < HEADER:
        return
    setup = Setup(data[:HEADER], data[HEADER:])
    stream = data[HEADER:]

    whole = setup.connection()
    whole_events: list[Event] = []
    whole.receive_data(stream)
    _drain(whole, setup, whole_events)
    _finish(whole, setup, whole_events)
    _check_state(whole, whole_events, setup)

    split = setup.connection()
    split_events: list[Event] = []
    rng = random.Random(setup.seed)
    pos = 0
    while pos < len(stream):
        size = rng.choice((1, 1, 2, 3, 4, 5, 7, 13, 68, 100, 1000, 16397)) if rng.random() < 0.9 else \
            rng.randint(1, len(stream))
        split.receive_data(memoryview(stream)[pos : pos + size])
        pos += size
        _drain(split, setup, split_events)
    _finish(split, setup, split_events)
    assert _comparable(split_events) == _comparable(whole_events), "events depend on how the bytes were split"
    # Compaction copies each byte a bounded number of times, however small the reads.
    assert split._bytes_copied <= 2 * len(stream) + 68, (split._bytes_copied, len(stream))
