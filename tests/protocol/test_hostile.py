"""Every hostile input yields exactly one ProtocolError with a readable reason, then silence."""

from __future__ import annotations

import struct

import pytest

from torrentpy._core import Bitfield
from torrentpy.protocol import Interested, PeerConnection, ProtocolError, extension, wire
from torrentpy.protocol.peer import MAX_EXTENDED_HANDSHAKE_LENGTH, MAX_UNKNOWN_MESSAGES

from .link import INFO_HASH, NUM_PIECES, PIECE_LENGTH, TOTAL_LENGTH, connection, drain

LAST = NUM_PIECES - 1
LAST_SIZE = TOTAL_LENGTH - LAST * PIECE_LENGTH


def peer_handshake(reserved: bytes | None = None, info_hash: bytes = INFO_HASH) -> bytes:
    return wire.encode_handshake(info_hash, b"-XX0001-hostilepeer!", reserved)


PLAIN = bytes(8)  # a BEP 3 peer: neither fast nor extension bit


def msg(msg_id: int, payload: bytes = b"") -> bytes:
    return struct.pack(">IB", 1 + len(payload), msg_id) + payload


def ext(ext_id: int, payload: bytes) -> bytes:
    return wire.extended(ext_id, payload)


def metadata_data(piece: int, total: int, data: bytes) -> bytes:
    return ext(1, b"d8:msg_typei1e5:piecei%de10:total_sizei%dee" % (piece, total) + data)


CASES: list[tuple[str, bytes, str]] = [
    # handshake
    ("wrong protocol string", b"\x13BitTorrent protocoX" + bytes(48), "protocol string"),
    ("wrong protocol length", b"\x05hello", "length is 5"),
    ("http instead", b"GET /announce HTTP/1.1\r\n", "protocol string"),
    ("wrong info-hash", peer_handshake(info_hash=b"\xee" * 20), "is not ours"),
    # lengths
    ("huge message", peer_handshake() + b"\x7f\xff\xff\xff", "exceeds limit"),
    ("oversized piece", peer_handshake() + struct.pack(">IB", 9 + 16385, 7), "piece message of 16394"),
    ("short have", peer_handshake() + msg(4, b"\0\0\0"), "have message of 4 bytes, expected 5"),
    ("long choke", peer_handshake() + msg(0, b"x"), "choke message of 2 bytes, expected 1"),
    ("short request", peer_handshake() + msg(6, bytes(8)), "request message of 9 bytes"),
    ("empty piece", peer_handshake() + msg(7, bytes(8)), "shorter than 10"),
    ("empty extended", peer_handshake() + msg(20), "shorter than 2"),
    # bitfield
    (
        "bitfield too long",
        peer_handshake() + msg(5, b"\xff\xc0\x00"),
        "bitfield message of 4 bytes, expected 3",
    ),
    ("bitfield too short", peer_handshake() + msg(5, b"\xff"), "expected 3"),
    ("bitfield spare bits", peer_handshake() + msg(5, b"\xff\xe0"), "spare bits"),
    (
        "have_all after have",
        peer_handshake() + wire.have(1) + wire.have_all(),
        "have all message not allowed",
    ),
    # indexes and bounds
    ("have out of range", peer_handshake() + wire.have(NUM_PIECES), "have message for piece 10"),
    ("request out of range", peer_handshake() + wire.request(NUM_PIECES, 0, 16384), "request for piece 10"),
    ("request 0 bytes", peer_handshake() + wire.request(0, 0, 0), "request for 0 bytes"),
    ("request too big", peer_handshake() + wire.request(0, 0, 16385), "exceeds the block limit 16384"),
    ("request past piece", peer_handshake() + wire.request(0, 32768 - 100, 16384), "beyond piece 0"),
    ("request past last", peer_handshake() + wire.request(LAST, LAST_SIZE - 1, 2), f"beyond piece {LAST}"),
    ("request begin overflow", peer_handshake() + wire.request(0, 2**32 - 1, 16384), "beyond piece 0"),
    ("cancel out of range", peer_handshake() + wire.cancel(99, 0, 1), "cancel for piece 99"),
    ("piece out of range", peer_handshake() + wire.piece(NUM_PIECES, 0, b"x"), "piece for piece 10"),
    ("piece past end", peer_handshake() + wire.piece(LAST, LAST_SIZE - 1, b"xy"), "beyond piece"),
    ("reject out of range", peer_handshake() + wire.reject(NUM_PIECES, 0, 1), "reject for piece 10"),
    ("allowed fast out of range", peer_handshake() + wire.allowed_fast(NUM_PIECES), "allowed fast for piece"),
    ("suggest out of range", peer_handshake() + wire.suggest(2**32 - 1), "suggest for piece"),
    # capabilities
    ("have_all without fast bit", peer_handshake(PLAIN) + wire.have_all(), "did not announce the fast"),
    ("have_none without fast bit", peer_handshake(PLAIN) + wire.have_none(), "did not announce the fast"),
    ("reject without fast bit", peer_handshake(PLAIN) + wire.reject(0, 0, 1), "did not announce the fast"),
    ("suggest without fast bit", peer_handshake(PLAIN) + wire.suggest(0), "did not announce the fast"),
    ("allowed_fast without bit", peer_handshake(PLAIN) + wire.allowed_fast(0), "did not announce the fast"),
    ("extended without ext bit", peer_handshake(PLAIN) + ext(0, b"de"), "did not announce the extension"),
    # bencoded payloads
    ("ext handshake garbage", peer_handshake() + ext(0, b"not bencode"), "bad extended handshake"),
    ("ext handshake not a dict", peer_handshake() + ext(0, b"li1ee"), "not a bencoded dict"),
    ("ext handshake trailing", peer_handshake() + ext(0, b"de" + b"junk"), "bad extended handshake"),
    ("ext handshake deep", peer_handshake() + ext(0, b"l" * 5000 + b"e" * 5000), "nested deeper"),
    ("ext handshake deep dict", peer_handshake() + ext(0, b"d1:a" * 100 + b"i0e" + b"e" * 100), "nested"),
    ("ext handshake many tokens", peer_handshake() + ext(0, b"l" + b"i0e" * 20000 + b"e"), "tokens"),
    ("ext handshake leading zero", peer_handshake() + ext(0, b"d1:pi01ee"), "bad integer"),
    ("ext handshake int key", peer_handshake() + ext(0, b"di1ei2ee"), "not a string"),
    ("ext handshake short string", peer_handshake() + ext(0, b"d1:v99:xe"), "past the end"),
    (
        "ext handshake too big",
        peer_handshake() + ext(0, b"d1:v200000:" + bytes(200000) + b"e"),
        f"exceeds limit {MAX_EXTENDED_HANDSHAKE_LENGTH}",
    ),
    ("ut_metadata garbage", peer_handshake() + ext(1, b"d8:msg_type"), "bad ut_metadata message"),
    ("ut_metadata no piece", peer_handshake() + ext(1, b"d8:msg_typei0ee"), "valid msg_type and piece"),
    ("ut_metadata negative", peer_handshake() + ext(1, b"d8:msg_typei0e5:piecei-1ee"), "valid msg_type"),
    ("ut_metadata short data", peer_handshake() + metadata_data(0, 20000, b"x" * 100), "expected 16384"),
    ("ut_metadata piece range", peer_handshake() + metadata_data(2, 20000, b"x"), "piece 2 of 2"),
    ("ut_metadata huge total", peer_handshake() + metadata_data(0, 2**40, b""), "valid total_size"),
    ("ut_pex garbage", peer_handshake() + ext(2, b"d5:added"), "bad ut_pex message"),
    # unknown ids
    ("unknown id flood", peer_handshake() + msg(0x63) * (MAX_UNKNOWN_MESSAGES + 1), "unknown ids"),
]


def _run(stream: bytes, **kwargs: object) -> tuple[PeerConnection, list[object]]:
    conn = connection(**kwargs)
    conn.receive_data(stream)
    return conn, list(drain(conn))


@pytest.mark.parametrize(("stream", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_input_yields_exactly_one_protocol_error(stream: bytes, reason: str) -> None:
    conn, events = _run(stream)
    errors = [e for e in events if isinstance(e, ProtocolError)]
    assert len(errors) == 1, events
    assert events[-1] is errors[0]
    assert reason in errors[0].reason
    assert conn.closed_reason == errors[0].reason
    # the connection is dead: more input is ignored, no more events
    conn.receive_data(wire.interested() * 3)
    assert conn.next_event() is None


@pytest.mark.parametrize(("stream", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_input_fed_byte_by_byte(stream: bytes, reason: str) -> None:
    conn = connection()
    events = []
    for i in range(min(len(stream), 200)):
        conn.receive_data(stream[i : i + 1])
        events += drain(conn)
    conn.receive_data(stream[200:])
    events += drain(conn)
    errors = [e for e in events if isinstance(e, ProtocolError)]
    assert len(errors) == 1 and reason in errors[0].reason


def test_connected_to_ourselves() -> None:
    conn = connection()
    conn.receive_data(conn.initiate())
    (event,) = drain(conn)
    assert isinstance(event, ProtocolError) and "connected to ourselves" in event.reason


def test_oversized_message_is_rejected_before_it_is_buffered() -> None:
    conn = connection()
    conn.receive_data(peer_handshake() + struct.pack(">IB", 9 + 16384 + 1, wire.PIECE))
    events = drain(conn)
    assert isinstance(events[-1], ProtocolError)


def test_unknown_ids_below_the_limit_are_skipped() -> None:
    conn, events = _run(peer_handshake() + msg(0x63, b"abc") * MAX_UNKNOWN_MESSAGES + wire.interested())
    assert conn.closed_reason is None
    assert events[-1] == Interested()


def test_magnet_connection_bounds_what_it_records() -> None:
    too_many = extension.MAX_METADATA_SIZE // 20
    _conn, events = _run(peer_handshake() + wire.have(too_many), num_pieces=0, piece_length=0, total_length=0)
    assert isinstance(events[-1], ProtocolError) and "have message" in events[-1].reason
    huge = 2 + (too_many + 7) // 8
    _conn, events = _run(
        peer_handshake() + struct.pack(">IB", huge, wire.BITFIELD),
        num_pieces=0,
        piece_length=0,
        total_length=0,
    )
    assert isinstance(events[-1], ProtocolError) and "exceeds limit" in events[-1].reason


def test_metadata_request_beyond_our_metadata() -> None:
    _conn, events = _run(peer_handshake() + ext(1, b"d8:msg_typei0e5:piecei3ee"), metadata_size=40000)
    assert isinstance(events[-1], ProtocolError) and "piece 3 of 3" in events[-1].reason


def test_metadata_total_size_must_match_the_handshake() -> None:
    stream = peer_handshake() + ext(0, b"d13:metadata_sizei20000ee") + metadata_data(1, 30000, b"x" * 13616)
    _conn, events = _run(stream)
    assert isinstance(events[-1], ProtocolError) and "differs" in events[-1].reason


def test_bitfield_error_names_the_problem() -> None:
    _conn, events = _run(peer_handshake() + wire.bitfield(Bitfield.full(16)))
    assert isinstance(events[-1], ProtocolError)
    assert events[-1].reason == "bad bitfield: bitfield has spare bits set past the last piece"


def test_later_bitfield_replaces_the_first() -> None:
    # aria2 sends a whole BITFIELD mid-transfer instead of several HAVEs; that is not hostile.
    conn = connection()
    conn.receive_data(peer_handshake(PLAIN) + wire.bitfield(bytes(2)) + wire.have(1) + wire.bitfield(b"\xff\xc0"))
    events = drain(conn)
    assert not any(isinstance(e, ProtocolError) for e in events)
    assert conn.peer_bitfield is not None and conn.peer_bitfield.all()
