"""The receive buffer: piece data is borrowed, not copied, and total copying stays linear."""

from __future__ import annotations

import random

from torrentpy.protocol import PeerConnection, Piece, wire

from .link import connection

BLOCK = 16384
COUNT = 1000
NUM_PIECES = COUNT // 2  # two blocks per piece
PIECE_LENGTH = 2 * BLOCK


def big_stream() -> tuple[bytes, bytes, list[bytes]]:
    """Our peer's handshake, then 1000 PIECE messages of 16 KiB with distinct contents."""
    rng = random.Random(1)
    blocks = [rng.randbytes(16) * (BLOCK // 16) for _ in range(COUNT)]
    handshake = wire.encode_handshake(bytes(range(20)), b"-XX0001-bufferpeer00")
    messages = b"".join(wire.piece(i // 2, (i % 2) * BLOCK, block) for i, block in enumerate(blocks))
    return handshake, messages, blocks


def receiver() -> PeerConnection:
    return connection(
        num_pieces=NUM_PIECES, piece_length=PIECE_LENGTH, total_length=NUM_PIECES * PIECE_LENGTH
    )


def test_pieces_from_one_big_buffer_are_views_without_copies() -> None:
    handshake, messages, blocks = big_stream()
    conn = receiver()
    conn.receive_data(handshake)
    conn.next_event()
    conn.receive_data(messages)
    copied_before = conn._bytes_copied
    owners = set()
    for i in range(COUNT):
        event = conn.next_event()
        assert isinstance(event, Piece)
        assert (event.index, event.begin) == (i // 2, (i % 2) * BLOCK)
        assert isinstance(event.data, memoryview)
        assert event.data == blocks[i]
        owners.add(id(event.data.obj))
    assert conn.next_event() is None
    # every block is a window on the one receive buffer, and parsing moved no bytes at all
    assert len(owners) == 1
    assert conn._bytes_copied == copied_before
    assert conn.buffered_bytes == 0


def test_chunked_feed_copies_linearly_even_when_views_are_kept() -> None:
    handshake, messages, blocks = big_stream()
    stream = handshake + messages
    conn = receiver()
    kept: list[Piece] = []  # the caller misbehaves and keeps every view: we must not corrupt them
    pos = 0
    rng = random.Random(2)
    while pos < len(stream):
        size = rng.choice((1, 13, 1500, 16397, 65536, 262144))
        conn.receive_data(stream[pos : pos + size])
        pos += size
        while (event := conn.next_event()) is not None:
            if isinstance(event, Piece):
                kept.append(event)
    assert [bytes(p.data) for p in kept] == blocks
    assert conn._bytes_copied <= 2 * len(stream)


def test_chunked_feed_copies_linearly_when_views_are_dropped() -> None:
    handshake, messages, blocks = big_stream()
    stream = handshake + messages
    conn = receiver()
    got = []
    for pos in range(0, len(stream), 65536):
        conn.receive_data(memoryview(stream)[pos : pos + 65536])
        while (event := conn.next_event()) is not None:
            if isinstance(event, Piece):
                got.append(bytes(event.data))
                del event
    assert got == blocks
    assert conn._bytes_copied <= 2 * len(stream)


def test_a_kept_view_survives_the_next_receive_data() -> None:
    handshake, messages, blocks = big_stream()
    conn = receiver()
    conn.receive_data(handshake + messages[: BLOCK + 13 + 5])
    conn.next_event()
    first = conn.next_event()
    assert isinstance(first, Piece)
    conn.receive_data(messages[BLOCK + 13 + 5 :])  # must neither raise BufferError nor overwrite `first`
    second = conn.next_event()
    assert isinstance(second, Piece)
    assert first.data == blocks[0] and second.data == blocks[1]
