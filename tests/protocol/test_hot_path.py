"""The leech hot path's shortcuts agree with the general code: the PIECE fast path in the framing and
the rate meter's same-bucket add."""

from __future__ import annotations

import pytest

from torrentpy._core import Bitfield
from torrentpy.engine.accounting import RateMeter
from torrentpy.protocol import wire
from torrentpy.protocol.events import Piece, ProtocolError

from .link import NUM_PIECES, PIECE_LENGTH, handshaken, stable


def _piece(index: int, begin: int, length: int) -> bytes:
    return wire.piece(index, begin, bytes(range(256)) * (length // 256) + bytes(length % 256))


@pytest.mark.parametrize("split", [1, 5, 13, 100])
def test_a_block_ending_at_the_piece_end_is_accepted_in_any_chunking(split: int) -> None:
    link = handshaken()
    link.to_a(link.b.send_bitfield(Bitfield.full(NUM_PIECES)))
    msg = _piece(NUM_PIECES - 2, PIECE_LENGTH - 16384, 16384)
    events = []
    for i in range(0, len(msg), split):
        events += link.to_a(msg[i : i + split])
    assert events == [Piece(NUM_PIECES - 2, PIECE_LENGTH - 16384, msg[13:])]


@pytest.mark.parametrize(
    ("index", "begin", "length", "reason"),
    [
        (0, PIECE_LENGTH - 100, 200, "beyond piece 0"),
        (NUM_PIECES, 0, 16384, f"piece {NUM_PIECES}"),
        (NUM_PIECES - 1, 4096, 4096, "beyond piece"),
        (0, 0, 16385, "exceeds limit"),
    ],
)
def test_a_block_that_does_not_fit_is_still_a_protocol_error(index: int, begin: int, length: int,
                                                              reason: str) -> None:
    link = handshaken()
    link.to_a(link.b.send_bitfield(Bitfield.full(NUM_PIECES)))
    events = link.to_a(_piece(index, begin, length))
    assert len(events) == 1 and isinstance(events[0], ProtocolError)
    assert reason in events[0].reason


def test_rate_meter_read_before_the_first_add_still_counts_from_that_add() -> None:
    m = RateMeter(5.0)
    assert m.rate(100.0) == 0.0
    m.add(1000, 100.1)
    assert m.rate(100.2) > 0.0
    assert m.total == 1000


def _stream() -> bytes:
    """A peer's side of a download: handshake, bitfield, unchoke, blocks (the last piece's short one too)."""
    link = handshaken()
    out = link.b.send_bitfield(Bitfield.full(NUM_PIECES)) + link.b.send_unchoke()
    for index in (0, 3, NUM_PIECES - 1):
        out += _piece(index, 0, 5000 if index == NUM_PIECES - 1 else 16384)
        out += link.b.send_have(index) + link.b.send_keepalive()
    return out


@pytest.mark.parametrize("chunk", [1, 7, 13, 4096, 16397, 65536])
def test_borrowed_input_parses_like_copied_input_while_the_lender_reuses_its_buffer(chunk: int) -> None:
    peer = handshaken()
    stream = _stream()
    expected = peer.to_a(stream)
    borrower = handshaken().a
    lent = bytearray(chunk)  # like PeerLink's receive buffer: refilled by every read
    events = []
    for i in range(0, len(stream), chunk):
        piece = stream[i : i + chunk]
        lent[: len(piece)] = piece
        borrower.receive_borrowed(memoryview(lent)[: len(piece)])
        while (event := borrower.next_event()) is not None:
            events.append(stable(event))
        borrower.release_borrowed()
        lent[:] = b"\xff" * chunk  # the next read overwrites it
    assert events == expected
    assert borrower.buffered_bytes == 0


def test_receive_data_after_borrowing_keeps_the_unparsed_tail() -> None:
    stream = _stream()
    conn = handshaken().a
    lent = bytearray(stream[:100])
    conn.receive_borrowed(memoryview(lent))
    first = stable(conn.next_event())  # type: ignore[arg-type]
    conn.receive_data(stream[100:])  # without release_borrowed(): the tail is copied first
    lent[:] = bytes(100)
    events = [first]
    while (event := conn.next_event()) is not None:
        events.append(stable(event))
    assert events == handshaken().to_a(stream)


def test_borrowed_input_copies_only_the_messages_that_straddle_reads() -> None:
    sender = handshaken().b
    stream = sender.send_bitfield(Bitfield.full(NUM_PIECES)) + sender.send_unchoke()
    stream += b"".join(_piece(i % (NUM_PIECES - 1), 0, 16384) for i in range(64))
    conn = handshaken().a
    handshake_copied = conn._bytes_copied
    chunk = 256 * 1024  # PeerLink's read size
    count = 0
    for i in range(0, len(stream), chunk):
        conn.receive_borrowed(memoryview(stream)[i : i + chunk])
        while (event := conn.next_event()) is not None:
            count += isinstance(event, Piece)
        conn.release_borrowed()
    assert count == 64
    # Each read boundary costs at most one message copied (its head at release, the rest on arrival).
    assert conn._bytes_copied - handshake_copied <= (len(stream) // chunk) * (16384 + 13)
