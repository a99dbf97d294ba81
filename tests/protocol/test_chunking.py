"""However a valid byte stream is split, the events are the same."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from torrentpy._core import Bitfield
from torrentpy.protocol import (
    AllowedFast,
    BitfieldReceived,
    Cancel,
    Choke,
    Event,
    ExtendedHandshake,
    HandshakeComplete,
    Have,
    Interested,
    KeepAlive,
    MetadataData,
    MetadataReject,
    MetadataRequest,
    NotInterested,
    PeerConnection,
    PexPeers,
    Piece,
    Port,
    Reject,
    Request,
    Suggest,
    Unchoke,
    UnknownExtended,
    wire,
)

from .link import NUM_PIECES, PIECE_LENGTH, TOTAL_LENGTH, connection, drain

METADATA = bytes(range(256)) * 100  # 25600 bytes: two metadata pieces


@cache
def sender_stream() -> bytes:
    """Every message kind, as a peer that supports everything would send it to the receiver."""
    sender = connection(initiator=False, metadata_size=len(METADATA))
    handshake = sender.initiate()
    first_receiver = receiver()
    first_receiver.receive_data(handshake)
    drain(first_receiver)
    sender.receive_data(first_receiver.initiate() + first_receiver.send_extended_handshake())
    assert [type(e) for e in drain(sender)] == [HandshakeComplete, ExtendedHandshake]
    last = NUM_PIECES - 1
    last_size = TOTAL_LENGTH - last * PIECE_LENGTH
    parts = [
        handshake,
        sender.send_extended_handshake({"v": "chunk test", "p": 6881}),
        sender.send_keepalive(),
        sender.send_port(6881),
        b"\0\0\0\x05\x15abcd",  # an unknown id, skipped
        sender.send_bitfield(Bitfield.from_string("1010101010")),
        sender.send_have(1),
        sender.send_unchoke(),
        sender.send_interested(),
        sender.send_request(0, 0, 16384),
        sender.send_cancel(0, 0, 16384),
        sender.send_piece_header(0, 0, 16384) + bytes(range(256)) * 64,
        sender.send_piece_header(last, 0, last_size) + b"\x5a" * last_size,
        sender.send_piece_header(3, 100, 1) + b"!",
        sender.send_reject(2, 0, 16384),
        sender.send_suggest(4),
        sender.send_allowed_fast(5),
        sender.send_metadata_request(1),
        sender.send_metadata_data(0, len(METADATA), METADATA[:16384]),
        sender.send_metadata_data(1, len(METADATA), METADATA[16384:]),
        sender.send_metadata_reject(0),
        sender.send_pex([("127.0.0.1", 6881), ("::1", 6882)], [("127.0.0.3", 1)]),
        wire.extended(99, b"opaque"),
        sender.send_not_interested(),
        sender.send_choke(),
        sender.send_keepalive(),
    ]
    return b"".join(parts)


def receiver() -> PeerConnection:
    return connection(metadata_size=len(METADATA))


@cache
def reference_events() -> tuple[Event, ...]:
    conn = receiver()
    conn.receive_data(sender_stream())
    return tuple(drain(conn))


def test_reference_stream_yields_every_event_kind() -> None:
    kinds = [type(e) for e in reference_events()]
    assert kinds == [
        HandshakeComplete,
        ExtendedHandshake,
        KeepAlive,
        Port,
        BitfieldReceived,
        Have,
        Unchoke,
        Interested,
        Request,
        Cancel,
        Piece,
        Piece,
        Piece,
        Reject,
        Suggest,
        AllowedFast,
        MetadataRequest,
        MetadataData,
        MetadataData,
        MetadataReject,
        PexPeers,
        UnknownExtended,
        NotInterested,
        Choke,
        KeepAlive,
    ]
    events = reference_events()
    assert events[10] == Piece(0, 0, bytes(range(256)) * 64)
    assert events[12] == Piece(3, 100, b"!")
    assert events[17] == MetadataData(0, len(METADATA), METADATA[:16384])


def feed(chunks: Sequence[bytes | bytearray | memoryview], drain_between: bool) -> list[Event]:
    conn = receiver()
    events: list[Event] = []
    for chunk in chunks:
        conn.receive_data(chunk)
        if drain_between:
            events += drain(conn)
    events += drain(conn)
    assert conn.closed_reason is None
    assert conn.buffered_bytes == 0
    return events


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(points)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cuts=st.lists(st.integers(0, 50_000), max_size=60), drain_between=st.booleans())
def test_random_chunking_yields_the_same_events(cuts: list[int], drain_between: bool) -> None:
    stream = sender_stream()
    chunks = split(stream, [c % (len(stream) + 1) for c in cuts])
    assert feed(chunks, drain_between) == list(reference_events())


@settings(max_examples=100, deadline=None)
@given(sizes=st.lists(st.integers(1, 7), min_size=1, max_size=40))
def test_tiny_chunks_yield_the_same_events(sizes: list[int]) -> None:
    stream = sender_stream()
    chunks, pos, i = [], 0, 0
    while pos < len(stream):
        size = sizes[i % len(sizes)] if pos < 2000 else 997  # tiny through the handshake and small messages
        chunks.append(stream[pos : pos + size])
        pos += size
        i += 1
    assert feed(chunks, drain_between=True) == list(reference_events())


def test_one_byte_at_a_time() -> None:
    stream = sender_stream()
    assert feed([stream[i : i + 1] for i in range(len(stream))], drain_between=True) == list(
        reference_events()
    )


def test_memoryview_and_bytearray_input() -> None:
    stream = sender_stream()
    half = len(stream) // 2
    chunks: list[bytes | bytearray | memoryview] = [bytearray(stream[:half]), memoryview(stream)[half:]]
    assert feed(chunks, drain_between=True) == list(reference_events())
