"""Real wire captures: what a libtorrent and an aria2 seeder send torrentpy's PeerConnection on loopback
while it downloads a small torrent (handshake, extended handshake, bitfield, unchoke, every block).

The capture must parse without a ProtocolError and hold the peer fuzz target's invariants (same events
however the bytes are split). With TORRENTPY_RECORD_CORPUS=1 the captures are also written as seeds for
the fuzz targets: `fuzz/corpus/peer/<client>.bin` (the target's 16-byte header, then the bytes) and the
extension payloads under `fuzz/corpus/extension/`.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from pathlib import Path

import pytest

from fuzz import peer_target
from fuzz.run import corpus_dir
from tests.interop.peers.aria2 import Aria2Peer
from tests.interop.peers.libtorrent_peer import LibtorrentPeer
from tests.interop.peers.payload import info_hash_libtorrent, make_payload, make_torrent_libtorrent
from torrentpy.protocol import (
    BitfieldReceived,
    Event,
    ExtendedHandshake,
    PeerConnection,
    Piece,
    ProtocolError,
    Unchoke,
    make_peer_id,
)

PIECE_LENGTH = 16384
PAYLOAD_BYTES = PIECE_LENGTH + 3000  # two pieces, the last one short: keeps the committed seeds small
RECORD = os.environ.get("TORRENTPY_RECORD_CORPUS") == "1"

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]


class Recorder:
    """A PeerConnection over a socket that keeps every byte the remote side sent."""

    def __init__(self, sock: socket.socket, conn: PeerConnection) -> None:
        self.sock, self.conn = sock, conn
        self.received = bytearray()
        self.events: list[Event] = []
        self.extended: list[bytes] = []  # raw extension payloads (extended id byte first)

    def pump(self, done: object, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():  # type: ignore[operator]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"got only {[type(e).__name__ for e in self.events]}")
            self.sock.settimeout(remaining)
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError(f"the peer closed the connection after {self.events}")
            self.received += data
            self.conn.receive_data(data)
            while (event := self.conn.next_event()) is not None:
                assert not isinstance(event, ProtocolError), event.reason
                if isinstance(event, Piece):
                    event = Piece(event.index, event.begin, bytes(event.data))
                self.events.append(event)

    def has(self, kind: type) -> bool:
        return any(isinstance(e, kind) for e in self.events)


def _seeder(client: str, tmp_path: Path, torrent: Path, save_dir: Path) -> LibtorrentPeer | Aria2Peer:
    if client == "libtorrent":
        peer: LibtorrentPeer | Aria2Peer = LibtorrentPeer(tmp_path / "lt", torrent, save_dir, seed=True)
    else:
        peer = Aria2Peer(tmp_path / "aria2", torrent, save_dir, seed=True)
    peer.start()
    peer.wait_seeding(30)
    return peer


def _extension_payloads(stream: bytes) -> list[bytes]:
    """Each BEP 10 message's payload after id 20 (extended id first), found by framing the capture."""
    out, pos = [], 68
    while pos + 5 <= len(stream):
        length = struct.unpack_from(">I", stream, pos)[0]
        if length and stream[pos + 4] == 20:
            out.append(stream[pos + 5 : pos + 4 + length])
        pos += 4 + length
    return out


@pytest.mark.parametrize("client", ["libtorrent", "aria2"])
def test_capture_of_a_real_seeder_parses_and_holds_the_fuzz_invariants(client: str, tmp_path: Path) -> None:
    payload = make_payload(tmp_path / "seed", PAYLOAD_BYTES)
    torrent = make_torrent_libtorrent(payload.root, PIECE_LENGTH, [], tmp_path / "t.torrent")
    info_hash = info_hash_libtorrent(torrent)
    num_pieces = -(-PAYLOAD_BYTES // PIECE_LENGTH)
    seeder = _seeder(client, tmp_path, torrent, payload.save_dir)
    try:
        conn = PeerConnection(info_hash=info_hash, peer_id=make_peer_id(), num_pieces=num_pieces,
                              piece_length=PIECE_LENGTH, total_length=PAYLOAD_BYTES, initiator=True)
        with socket.create_connection(seeder.address, timeout=10) as sock:
            rec = Recorder(sock, conn)
            sock.sendall(conn.initiate())
            rec.pump(lambda: conn.peer_id is not None)
            sock.sendall(conn.send_extended_handshake({"v": "torrentpy capture"}))
            rec.pump(lambda: rec.has(ExtendedHandshake) and rec.has(BitfieldReceived))
            sock.sendall(conn.send_interested())
            rec.pump(lambda: not conn.peer_choking or rec.has(Unchoke))
            for index in range(num_pieces):
                sock.sendall(conn.send_request(index, 0, conn.piece_size(index)))
            rec.pump(lambda: sum(isinstance(e, Piece) for e in rec.events) == num_pieces)
    finally:
        seeder.stop()

    blocks = {e.index: bytes(e.data) for e in rec.events if isinstance(e, Piece)}
    assert b"".join(blocks[i] for i in range(num_pieces)) == payload.root.read_bytes()
    flags = 2  # we dialled: our info-hash is the one in the peer's handshake
    short = num_pieces * PIECE_LENGTH - PAYLOAD_BYTES
    header = struct.pack(">BIBHQ", flags, num_pieces, 0, short, 0)
    seed = header + bytes(rec.received)
    for split_seed in range(20):
        peer_target.test_one_input(header[:8] + struct.pack(">Q", split_seed) + bytes(rec.received))
    extended = _extension_payloads(bytes(rec.received))
    assert extended, "the seeder sent no extended handshake"
    if RECORD:
        (corpus_dir("peer") / f"{client}-seeder.bin").write_bytes(seed)
        for i, ext in enumerate(extended):
            # The extension target's byte 0 picks the parser: 0 = the extended handshake.
            if ext[:1] == b"\x00":
                (corpus_dir("extension") / f"{client}-handshake-{i}.bin").write_bytes(b"\x00" + ext[1:])
