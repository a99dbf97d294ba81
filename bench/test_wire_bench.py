"""Parsing throughput of PeerConnection on PIECE messages: 64 MiB of 16 KiB blocks, fed the way a
socket delivers them (256 KiB reads) and consumed event by event.

Run: .venv/bin/pytest bench/test_wire_bench.py --benchmark-only"""

from __future__ import annotations

from torrentpy.protocol import PeerConnection, Piece, wire

BLOCK = 16384
TOTAL = 64 * 1024 * 1024
PIECE_LENGTH = 1024 * 1024
NUM_PIECES = TOTAL // PIECE_LENGTH
READ_SIZE = 256 * 1024
INFO_HASH = bytes(range(20))


def _stream() -> tuple[bytes, bytes]:
    block = bytes(range(256)) * (BLOCK // 256)
    handshake = wire.encode_handshake(INFO_HASH, b"-XX0001-benchpeer000")
    messages = b"".join(
        wire.piece(offset // PIECE_LENGTH, offset % PIECE_LENGTH, block) for offset in range(0, TOTAL, BLOCK)
    )
    return handshake, messages


def _parse(handshake: bytes, messages: bytes) -> int:
    conn = PeerConnection(
        info_hash=INFO_HASH,
        peer_id=wire.make_peer_id(),
        num_pieces=NUM_PIECES,
        piece_length=PIECE_LENGTH,
        total_length=TOTAL,
        initiator=True,
    )
    conn.receive_data(handshake)
    conn.next_event()
    received = 0
    view = memoryview(messages)
    for pos in range(0, len(messages), READ_SIZE):
        conn.receive_data(view[pos : pos + READ_SIZE])
        while (event := conn.next_event()) is not None:
            if isinstance(event, Piece):
                received += len(event.data)
    return received


def test_parse_64_mib_of_piece_messages(benchmark) -> None:  # type: ignore[no-untyped-def]
    handshake, messages = _stream()
    received = benchmark.pedantic(_parse, args=(handshake, messages), rounds=5, iterations=1)
    assert received == TOTAL
