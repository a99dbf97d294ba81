"""PeerConnection against a real libtorrent 2.1 seeder on 127.0.0.1 (DHT/LSD/UPnP/NAT-PMP/PEX off):
handshake bits, extended handshake, HAVE_ALL, ut_metadata and a whole piece over a plain socket."""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Callable
from pathlib import Path

import libtorrent as lt
import pytest

from tests.interop.peers.libtorrent_peer import LibtorrentPeer
from tests.interop.peers.payload import info_hash_libtorrent, make_payload, make_torrent_libtorrent
from torrentpy.protocol import (
    BitfieldReceived,
    Event,
    ExtendedHandshake,
    HandshakeComplete,
    MetadataData,
    PeerConnection,
    Piece,
    ProtocolError,
    Unchoke,
    make_peer_id,
)

from .link import stable

PIECE_LENGTH = 64 * 1024
PAYLOAD_BYTES = 5 * PIECE_LENGTH + 777  # short last piece

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]


class SocketPeer:
    def __init__(self, sock: socket.socket, conn: PeerConnection) -> None:
        self.sock, self.conn = sock, conn
        self.events: list[Event] = []

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def wait(self, predicate: Callable[[Event], bool], timeout_s: float = 20.0) -> Event:
        deadline = time.monotonic() + timeout_s
        while True:
            while (event := self.conn.next_event()) is not None:
                self.events.append(stable(event))
                assert not isinstance(event, ProtocolError), event.reason
                if predicate(event):
                    return self.events[-1]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching event; got {[type(e).__name__ for e in self.events]}")
            self.sock.settimeout(remaining)
            data = self.sock.recv(256 * 1024)
            if not data:
                raise ConnectionError(f"libtorrent closed the connection after {self.events}")
            self.conn.receive_data(data)


def is_piece_of(index: int) -> Callable[[Event], bool]:
    return lambda e: isinstance(e, Piece) and e.index == index


def test_download_a_piece_and_metadata_from_libtorrent(tmp_path: Path) -> None:
    payload = make_payload(tmp_path / "seed", PAYLOAD_BYTES)
    torrent = make_torrent_libtorrent(payload.root, PIECE_LENGTH, [], tmp_path / "t.torrent")
    info = lt.torrent_info(str(torrent))
    info_hash = info_hash_libtorrent(torrent)
    metadata = bytes(info.info_section())
    num_pieces = info.num_pieces()

    seeder = LibtorrentPeer(tmp_path / "lt", torrent, payload.save_dir, seed=True)
    seeder.start()
    try:
        seeder.wait_seeding(30)
        conn = PeerConnection(
            info_hash=info_hash,
            peer_id=make_peer_id(),
            num_pieces=num_pieces,
            piece_length=PIECE_LENGTH,
            total_length=PAYLOAD_BYTES,
            initiator=True,
        )
        with socket.create_connection(("127.0.0.1", seeder.port), timeout=10) as sock:
            peer = SocketPeer(sock, conn)
            peer.send(conn.initiate())
            hs = peer.wait(lambda e: isinstance(e, HandshakeComplete))
            assert isinstance(hs, HandshakeComplete) and hs.peer_id.startswith(b"-LT2")
            assert conn.supports_fast and conn.supports_extensions

            peer.send(conn.send_extended_handshake({"v": "torrentpy protocol test"}))
            peer.wait(lambda e: isinstance(e, ExtendedHandshake))
            assert "ut_metadata" in conn.peer_extensions
            assert conn.peer_metadata_size == len(metadata)
            assert conn.peer_client and "libtorrent" in conn.peer_client.lower()

            if not any(isinstance(e, BitfieldReceived) for e in peer.events):
                peer.wait(lambda e: isinstance(e, BitfieldReceived))
            assert conn.peer_bitfield is not None and conn.peer_bitfield.all()

            peer.send(conn.send_metadata_request(0))
            got = peer.wait(lambda e: isinstance(e, MetadataData))
            assert isinstance(got, MetadataData)
            assert (got.piece, got.total_size, got.data) == (0, len(metadata), metadata[:16384])

            peer.send(conn.send_interested())
            if conn.peer_choking:
                peer.wait(lambda e: isinstance(e, Unchoke), timeout_s=60)
            for index in (0, num_pieces - 1):
                size = conn.piece_size(index)
                for begin in range(0, size, 16384):
                    peer.send(conn.send_request(index, begin, min(16384, size - begin)))
                blocks: dict[int, bytes] = {}
                while len(blocks) < -(-size // 16384):
                    event = peer.wait(is_piece_of(index))
                    assert isinstance(event, Piece)
                    blocks[event.begin] = bytes(event.data)
                data = b"".join(blocks[b] for b in sorted(blocks))
                assert hashlib.sha1(data).digest() == bytes(info.hash_for_piece(index))
        assert conn.closed_reason is None
    finally:
        seeder.stop()
