"""Leechers that misbehave lose their own connection and nothing else.

A scripted leecher (plain sockets, its own message encoder, so it does not share torrentpy's wire code)
handshakes correctly and then floods, over-asks, asks out of range or asks for a piece the seeder does
not have. Each time the seeder must report a `peer_error` naming that connection and a reason, close it,
and keep serving an honest libtorrent leecher to completion.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from pathlib import Path
from typing import Any

import pytest

from tests.interop.peers.base import LOOPBACK, wait_for
from tests.interop.peers.payload import MiB, info_hash_libtorrent
from tests.interop.peers.torrentpy_peer import torrentpy_factory

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]

PIECE = 64 * 1024
BLOCK = 16 * 1024
CHOKE, UNCHOKE, INTERESTED, HAVE, BITFIELD, REQUEST, PIECE_MSG, CANCEL = 0, 1, 2, 4, 5, 6, 7, 8


class ScriptedLeecher:
    """One BitTorrent connection driven step by step from the test."""

    def __init__(self, port: int, info_hash: bytes) -> None:
        self.sock = socket.create_connection((LOOPBACK, port), timeout=5)
        self.buf = b""
        # Each connection its own peer id: one id on two connections is one client twice, and the
        # seeder keeps only the first.
        peer_id = b"-XX0001-" + os.urandom(12)
        self.sock.sendall(b"\x13BitTorrent protocol" + bytes(8) + info_hash + peer_id)
        reply = self._read_exact(68)
        assert reply[28:48] == info_hash, "seeder answered for another torrent"
        self.local_port = self.sock.getsockname()[1]
        self.unchoked = False
        self.bitfield: bytes | None = None

    def _read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def message(self) -> tuple[int, bytes] | None:
        """Next message as (id, payload); None for a keep-alive."""
        (length,) = struct.unpack(">I", self._read_exact(4))
        if length == 0:
            return None
        body = self._read_exact(length)
        return body[0], body[1:]

    def send(self, msg_id: int, payload: bytes = b"") -> None:
        self.sock.sendall(struct.pack(">IB", 1 + len(payload), msg_id) + payload)

    def request(self, index: int, begin: int, length: int) -> bytes:
        return struct.pack(">IBIII", 13, REQUEST, index, begin, length)

    def until_unchoked(self, timeout_s: float = 10.0) -> None:
        self.send(INTERESTED)
        deadline = time.monotonic() + timeout_s
        while not self.unchoked and time.monotonic() < deadline:
            msg = self.message()
            if msg is None:
                continue
            if msg[0] == UNCHOKE:
                self.unchoked = True
            elif msg[0] == BITFIELD:
                self.bitfield = msg[1]
        assert self.unchoked, "seeder never unchoked the scripted leecher"

    def closed_by_peer(self, timeout_s: float = 10.0) -> bool:
        """Drain until the seeder closes the connection (True) or the time is up (False)."""
        self.sock.settimeout(timeout_s)
        try:
            while self.sock.recv(65536):
                pass
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        self.sock.close()


def _peer_error_for(seeder: Any, port: int, timeout_s: float = 10.0) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        hits = [e for e in seeder.events("peer_error") if e["peer"] == f"{LOOPBACK}:{port}"]
        return hits[-1] if hits else None

    return wait_for(find, timeout_s, 0.05, f"a peer_error for port {port}")


def _seeder(peer_registry: Any, torrent: Path, save_dir: Path, *extra: str) -> Any:
    seeder = torrentpy_factory(peer_registry)(torrent, save_dir, True, extra_args=list(extra))
    seeder.wait_event("resumed", 20)
    return seeder


def test_hostile_requests_close_only_that_connection(payload_factory, torrent_factory, libtorrent_peer,
                                                     peer_registry, tmp_path: Path) -> None:
    payload = payload_factory(4 * MiB + 1000, name="one.bin")  # the last piece is 1000 bytes
    torrent = torrent_factory(payload, piece_length=PIECE)
    info_hash = info_hash_libtorrent(torrent)
    num_pieces = -(-payload.total_size // PIECE)
    # Slow enough that the honest leecher is still downloading while the hostile ones come and go.
    seeder = _seeder(peer_registry, torrent, payload.save_dir, "--max-upload-rate", "1M")
    honest = libtorrent_peer(torrent, tmp_path / "honest", seed=False, peers=[seeder.address])
    honest.wait_status(lambda s: s["total_payload_download"] > 0, 15, "to start downloading")

    cases = {
        "flood": [(i % (num_pieces - 1), (i // (num_pieces - 1) % 4) * BLOCK, BLOCK) for i in range(600)],
        "oversized": [(0, 0, 2 * BLOCK)],
        "index out of range": [(num_pieces, 0, BLOCK)],
        "past the piece end": [(3, PIECE - BLOCK + 1, BLOCK)],
        "past the short last piece": [(num_pieces - 1, 0, BLOCK)],
    }
    reasons = {}
    hostile_from = time.time()
    for name, requests in cases.items():
        bad = ScriptedLeecher(seeder.port, info_hash)
        try:
            bad.until_unchoked()
            # One write: the seeder sees the whole flood in one read before it can serve any of it.
            bad.sock.sendall(b"".join(bad.request(*r) for r in requests))
            event = _peer_error_for(seeder, bad.local_port)
            assert bad.closed_by_peer(), f"{name}: connection left open"
        finally:
            bad.close()
        reasons[name] = event["reason"]
    print(reasons)
    assert "flood" in reasons["flood"] and "500" in reasons["flood"], reasons
    assert "exceeds the block limit" in reasons["oversized"], reasons
    assert f"piece {num_pieces}" in reasons["index out of range"], reasons
    assert "beyond piece 3" in reasons["past the piece end"], reasons
    assert f"beyond piece {num_pieces - 1}" in reasons["past the short last piece"], reasons

    honest.wait_finished(45)
    assert payload.differences(tmp_path / "honest") == []
    # The honest leecher was not dropped while the hostile ones were (once finished, libtorrent itself hangs
    # up: both sides are seeds).
    events = honest.status()["events"]
    finished_at = min(e["t"] for e in events if e["type"] == "torrent_finished")
    disconnects = [e for e in events if e["type"] == "peer_disconnected" and e.get("port") == seeder.port
                   and hostile_from <= e["t"] < finished_at]
    assert not disconnects, disconnects
    assert seeder.events("peer_banned") == []


def test_request_for_a_missing_piece_closes_that_connection(payload_factory, torrent_factory, peer_registry,
                                                             tmp_path: Path) -> None:
    # Two files, each a whole number of pieces; the seeder's copy lacks the second one.
    payload = payload_factory({"a.bin": 8 * PIECE, "b.bin": 8 * PIECE}, name="two")
    torrent = torrent_factory(payload, piece_length=PIECE)
    info_hash = info_hash_libtorrent(torrent)
    (payload.root / "b.bin").unlink()
    seeder = _seeder(peer_registry, torrent, payload.save_dir)
    assert seeder.event("resumed")["pieces"] == 8

    good = ScriptedLeecher(seeder.port, info_hash)
    bad = ScriptedLeecher(seeder.port, info_hash)
    try:
        good.until_unchoked()
        bad.until_unchoked()
        # The seeder advertised exactly the first file's pieces.
        assert good.bitfield == b"\xff\x00", good.bitfield
        bad.send(REQUEST, struct.pack(">III", 12, 0, BLOCK))
        event = _peer_error_for(seeder, bad.local_port)
        assert "12" in event["reason"] and "do not have" in event["reason"], event
        assert bad.closed_by_peer()
        # The other connection is untouched and still served.
        good.send(REQUEST, struct.pack(">III", 2, BLOCK, BLOCK))
        while (msg := good.message()) is None or msg[0] != PIECE_MSG:
            pass
        index, begin = struct.unpack(">II", msg[1][:8])
        assert (index, begin, len(msg[1]) - 8) == (2, BLOCK, BLOCK)
        assert msg[1][8:] == (payload.root / "a.bin").read_bytes()[2 * PIECE + BLOCK : 2 * PIECE + 2 * BLOCK]
    finally:
        good.close()
        bad.close()


def test_cancel_is_honoured(payload_factory, torrent_factory, peer_registry, tmp_path: Path) -> None:
    payload = payload_factory(2 * MiB, name="one.bin")
    torrent = torrent_factory(payload, piece_length=PIECE)
    # 64 KiB/s with a one-block burst: a block every 0.25 s. When the second block arrives the third has
    # been taken for sending and waits for upload tokens; the cancels get there long before that wait ends.
    seeder = _seeder(peer_registry, torrent, payload.save_dir, "--max-upload-rate", "64K")
    leech = ScriptedLeecher(seeder.port, info_hash_libtorrent(torrent))
    try:
        leech.until_unchoked()
        wanted = [(i // 4, (i % 4) * BLOCK) for i in range(16)]
        leech.sock.sendall(b"".join(leech.request(i, b, BLOCK) for i, b in wanted))
        got = []

        def read_blocks(until: int) -> None:
            while len(got) < until:
                msg = leech.message()
                if msg is not None and msg[0] == PIECE_MSG:
                    got.append(struct.unpack(">II", msg[1][:8]))

        read_blocks(2)
        cancelled = wanted[2:]
        leech.sock.sendall(b"".join(struct.pack(">IBIII", 13, CANCEL, i, b, BLOCK) for i, b in cancelled))
        leech.sock.settimeout(3.0)
        try:
            read_blocks(len(wanted))
        except TimeoutError:
            pass
    finally:
        leech.close()
    # Nothing cancelled is sent, not even the block already waiting for tokens, nor counted as uploaded.
    assert got == wanted[:2], f"cancelled blocks were sent: {got}"
    stats = wait_for(lambda: (s := seeder.stats()) and s["time"] > time.time() - 0.5 and s, 5, 0.05, "fresh stats")
    assert stats["torrents"][0]["uploaded"] == 2 * BLOCK, stats
