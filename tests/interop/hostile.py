"""A scriptable hostile BitTorrent peer: honest handshake, then one scripted misbehaviour.

It listens on 127.0.0.1 in a thread of its own (tests are synchronous and torrentpy is a child
process); torrentpy dials it through ``--peer``. It knows the torrent (info-hash, piece length, the
payload's bytes), so everything up to the scripted step is a valid conversation.

    peer = HostilePeer(TorrentData.from_payload(torrent, payload), "bad_have_index").start()
    ... torrentpy --peer 127.0.0.1:{peer.port} ...
    peer.wait_closed_by_remote(10); peer.stop()

What happened on each connection is logged in ``peer.log`` (strings, in order), e.g.
``"connected"``, ``"handshake received"``, ``"sent: have 17"``, ``"closed by remote"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import libtorrent as lt

from tests.interop.peers.payload import Payload

__all__ = ["BEHAVIOURS", "EXPECTED_REASON", "HostilePeer", "TorrentData"]

LOOPBACK = "127.0.0.1"
BLOCK = 16 * 1024
PROTOCOL = b"\x13BitTorrent protocol"
# No extension bits: the conversation stays plain BEP 3, so every byte we get is one we can parse.
RESERVED = bytes(8)
# Incoming messages bigger than this are not something torrentpy sends us; we stop reading.
MAX_INCOMING_MESSAGE_BYTES = 64 * 1024
# Requests in a flood: well past torrentpy's 500-request queue, small enough to send in one write.
FLOOD_REQUESTS = 2000
# How long a behaviour waits for torrentpy to unchoke us or announce a piece.
WAIT_FOR_PEER_S = 20.0

CHOKE, UNCHOKE, INTERESTED, NOT_INTERESTED, HAVE, BITFIELD, REQUEST, PIECE, CANCEL = range(9)

# behaviour -> a substring of the `peer_error` reason torrentpy logs for it (None: a ban, not an error).
EXPECTED_REASON: dict[str, str | None] = {
    "oversized_length": "exceeds limit",
    "bad_have_index": "have message for piece",
    "bitfield_spare_bits": "bad bitfield",
    "bitfield_wrong_length": "bitfield message of",
    "unrequested_piece": "did not request",
    "garbage": "exceeds limit",
    "wrong_info_hash": "is not ours",
    "request_flood": "request flood",
    "oversized_request": "exceeds the block limit",
    "metadata_flood": "metadata request flood",
    "wrong_data": None,
    # BEP 9: answers ut_metadata requests for a magnet download with something that is not the info dict.
    "metadata_wrong_hash": None,  # the announced size, bytes that fail the info-hash check
    "metadata_wrong_size": None,  # announces (and serves) one byte more than the real info dict
    "metadata_oversized": None,  # announces a 64 MiB info dict and answers nothing
    "metadata_reject": None,  # rejects every request
    # BEP 11: sends one ut_pex message naming `HostilePeer.pex_added`, then nothing.
    "pex_source": None,
    # Full bitfield, unchokes, takes requests and never answers them (a snub).
    "snub": None,
}
BEHAVIOURS = tuple(EXPECTED_REASON)
METADATA_BEHAVIOURS = tuple(b for b in BEHAVIOURS if b.startswith("metadata_") and b != "metadata_flood")
# The extension ids we announce; torrentpy sends us ut_metadata messages with ours.
OUR_UT_METADATA = 3
OUR_UT_PEX = 4
EXTENDED = 20


@dataclass(frozen=True)
class TorrentData:
    """What the hostile peer needs to sound honest: the torrent's identity and its bytes."""

    info_hash: bytes
    piece_length: int
    data: bytes  # the whole payload, files concatenated in torrent order
    info: bytes = b""  # the bencoded info dict (BEP 9 metadata)

    @property
    def num_pieces(self) -> int:
        return -(-len(self.data) // self.piece_length)

    def piece_size(self, index: int) -> int:
        return min(self.piece_length, len(self.data) - index * self.piece_length)

    def block(self, index: int, begin: int, length: int) -> bytes:
        start = index * self.piece_length + begin
        return self.data[start : start + length]

    @classmethod
    def from_payload(cls, torrent: Path, payload: Payload) -> TorrentData:
        ti = lt.torrent_info(str(torrent))
        data = b"".join((payload.save_dir / rel).read_bytes() for rel in payload.files)
        return cls(bytes(ti.info_hashes().v1.to_bytes()), ti.piece_length(), data, bytes(ti.info_section()))


def _message(msg_id: int, payload: bytes = b"") -> bytes:
    return struct.pack(">IB", 1 + len(payload), msg_id) + payload


def _bitfield_bytes(num_pieces: int, full: bool) -> bytearray:
    raw = bytearray((num_pieces + 7) // 8)
    if full:
        for i in range(num_pieces):
            raw[i >> 3] |= 0x80 >> (i & 7)
    return raw


class _Connection:
    """One accepted connection: reads torrentpy's messages into state while a behaviour runs."""

    def __init__(
        self, owner: HostilePeer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.owner = owner
        self.torrent = owner.torrent
        self.reader = reader
        self.writer = writer
        self.remote_has: set[int] = set()
        self.unchoked = asyncio.Event()
        self.has_piece = asyncio.Event()
        self.requests: asyncio.Queue[tuple[int, int, int]] = asyncio.Queue()
        self.interested = asyncio.Event()
        self.closed = asyncio.Event()
        self.their_extensions: dict[bytes, int] = {}
        self.extended_handshake = asyncio.Event()
        self.metadata_requests: asyncio.Queue[int] = asyncio.Queue()

    def log(self, text: str) -> None:
        self.owner.record(text)

    def send(self, data: bytes, what: str) -> None:
        self.writer.write(data)
        self.log(f"sent: {what}")

    async def handshake(self) -> bool:
        theirs = await self.reader.readexactly(68)
        if theirs[:20] != PROTOCOL or theirs[28:48] != self.torrent.info_hash:
            self.log("bad handshake from remote")
            return False
        self.log("handshake received")
        info_hash = self.torrent.info_hash
        if self.owner.behaviour == "wrong_info_hash":
            info_hash = hashlib.sha1(b"some other torrent").digest()
        peer_id = b"-HO0001-" + random.Random(self.owner.port).randbytes(12)
        # The extension bit (BEP 10) only where the behaviour speaks ut_metadata.
        speaks_extensions = self.owner.behaviour.startswith(("metadata_", "pex_"))
        reserved = bytes(5) + b"\x10" + bytes(2) if speaks_extensions else RESERVED
        self.send(PROTOCOL + reserved + info_hash + peer_id, "handshake")
        return True

    async def read_loop(self) -> None:
        try:
            while True:
                (length,) = struct.unpack(">I", await self.reader.readexactly(4))
                if length == 0:
                    continue
                if length > MAX_INCOMING_MESSAGE_BYTES:
                    self.log(f"remote sent a {length}-byte message; stop reading")
                    return
                body = await self.reader.readexactly(length)
                self._on_message(body[0], body[1:])
        except (asyncio.IncompleteReadError, ConnectionError):
            self.log("closed by remote")
        finally:
            self.closed.set()

    def _on_message(self, msg_id: int, payload: bytes) -> None:
        if msg_id == UNCHOKE:
            self.log("received: unchoke")
            self.unchoked.set()
        elif msg_id == CHOKE:
            self.unchoked.clear()
        elif msg_id == INTERESTED:
            self.log("received: interested")
            self.interested.set()
        elif msg_id == HAVE:
            self.remote_has.add(struct.unpack(">I", payload)[0])
            self.has_piece.set()
        elif msg_id == BITFIELD:
            for i in range(self.torrent.num_pieces):
                if payload[i >> 3] & (0x80 >> (i & 7)):
                    self.remote_has.add(i)
            if self.remote_has:
                self.has_piece.set()
        elif msg_id == REQUEST:
            self.requests.put_nowait(struct.unpack(">III", payload))
            self.owner.requests_received += 1
            if not self.owner.seen("received: request"):
                self.log("received: request")
        elif msg_id == EXTENDED and payload:
            self._on_extended(payload[0], payload[1:])

    def _on_extended(self, ext_id: int, payload: bytes) -> None:
        if ext_id == 0:
            handshake = lt.bdecode(payload) or {}
            self.their_extensions = dict(handshake.get(b"m", {}))
            self.log("received: extended handshake")
            self.extended_handshake.set()
        elif ext_id == OUR_UT_METADATA:
            request = lt.bdecode(payload) or {}
            if request.get(b"msg_type") == 0:
                self.log(f"received: metadata request {request[b'piece']}")
                self.metadata_requests.put_nowait(int(request[b"piece"]))

    def send_extended(self, name: bytes, body: bytes, what: str) -> None:
        self.send(_message(EXTENDED, bytes([self.their_extensions[name]]) + body), what)

    async def _wait(self, event: asyncio.Event, what: str) -> bool:
        try:
            await asyncio.wait_for(event.wait(), WAIT_FOR_PEER_S)
        except TimeoutError:
            self.log(f"gave up waiting for {what}")
            return False
        return True

    async def misbehave(self) -> None:
        t = self.torrent
        n = t.num_pieces
        b = self.owner.behaviour
        if b == "oversized_length":
            self.send(struct.pack(">I", 0x7FFF_FFF0) + bytes([PIECE]) + bytes(64), "length prefix 0x7ffffff0")
        elif b == "bad_have_index":
            self.send(_message(HAVE, struct.pack(">I", n)), f"have {n}")
        elif b == "bitfield_spare_bits":
            assert n % 8, "spare bits need a piece count that is not a multiple of 8"
            self.send(_message(BITFIELD, b"\xff" * ((n + 7) // 8)), "bitfield with spare bits set")
        elif b == "bitfield_wrong_length":
            self.send(_message(BITFIELD, bytes(_bitfield_bytes(n, True)) + b"\xff"), "bitfield one byte long")
        elif b == "unrequested_piece":
            self.send(_message(BITFIELD, bytes(_bitfield_bytes(n, True))), "full bitfield")
            index = n // 2
            self.send(_message(PIECE, struct.pack(">II", index, 0) + t.block(index, 0, BLOCK)),
                      f"unrequested piece {index}")
        elif b == "garbage":
            self.send(random.Random(7).randbytes(4096), "4096 random bytes")
        elif b == "wrong_info_hash":
            pass  # the handshake already carried it
        elif b == "request_flood":
            await self._flood()
        elif b == "oversized_request":
            self.send(_message(BITFIELD, bytes(_bitfield_bytes(n, False))), "empty bitfield")
            self.send(_message(INTERESTED), "interested")
            too_long = _message(REQUEST, struct.pack(">III", 0, 0, BLOCK + 1))
            self.send(too_long, f"request of {BLOCK + 1} bytes")
        elif b == "metadata_flood":
            # Our m dict names ut_metadata 3; torrentpy's (its extended handshake) names it 1, and
            # requests are sent with the receiver's id.
            self.send(_message(20, b"\x00d1:md11:ut_metadatai3eee"), "extended handshake")
            request = _message(20, b"\x01d8:msg_typei0e5:piecei0ee")
            self.send(request * 3000, "3000 metadata requests")
        elif b == "wrong_data":
            await self._serve_wrong_data()
        elif b.startswith("metadata_"):
            await self._serve_bad_metadata()
        elif b == "pex_source":
            await self._send_pex()
        elif b == "snub":
            await self._snub()
        else:
            raise ValueError(f"unknown behaviour {b!r}")
        await self.writer.drain()

    async def _flood(self) -> None:
        t = self.torrent
        self.send(_message(BITFIELD, bytes(_bitfield_bytes(t.num_pieces, False))), "empty bitfield")
        self.send(_message(INTERESTED), "interested")
        if not await self._wait(self.unchoked, "an unchoke"):
            return
        if not await self._wait(self.has_piece, "a piece"):
            return
        pieces = sorted(self.remote_has)
        flood = []
        for i in range(FLOOD_REQUESTS):
            index = pieces[i % len(pieces)]
            begin = (i // len(pieces)) * BLOCK % t.piece_size(index)
            length = min(BLOCK, t.piece_size(index) - begin)
            flood.append(_message(REQUEST, struct.pack(">III", index, begin, length)))
        self.send(b"".join(flood), f"{FLOOD_REQUESTS} requests for pieces {pieces[:5]}...")

    async def _serve_wrong_data(self) -> None:
        t = self.torrent
        self.send(_message(BITFIELD, bytes(_bitfield_bytes(t.num_pieces, True))), "full bitfield")
        if not await self._wait(self.interested, "interest"):
            return
        self.send(_message(UNCHOKE), "unchoke")
        served = 0
        while not self.closed.is_set():
            get = asyncio.ensure_future(self.requests.get())
            closed = asyncio.ensure_future(self.closed.wait())
            done, pending = await asyncio.wait({get, closed}, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            if get not in done:
                return
            index, begin, length = get.result()
            # Honest framing, dishonest bytes: every byte flipped.
            wrong = bytes(x ^ 0xFF for x in t.block(index, begin, length))
            self.writer.write(_message(PIECE, struct.pack(">II", index, begin) + wrong))
            served += 1
            if served == 1:
                self.log("sent: first wrong block")
            await self.writer.drain()

    async def _extended_handshake(self, metadata_size: int | None) -> bool:
        ours: dict[bytes, object] = {b"m": {b"ut_metadata": OUR_UT_METADATA, b"ut_pex": OUR_UT_PEX}}
        if metadata_size is not None:
            ours[b"metadata_size"] = metadata_size
        self.send(_message(EXTENDED, b"\x00" + lt.bencode(ours)), f"extended handshake (metadata_size {metadata_size})")
        return await self._wait(self.extended_handshake, "an extended handshake")

    async def _serve_bad_metadata(self) -> None:
        b = self.owner.behaviour
        info = self.torrent.info
        size = {"metadata_wrong_size": len(info) + 1, "metadata_oversized": 64 * 1024 * 1024}.get(b, len(info))
        if not await self._extended_handshake(size):
            return
        while not self.closed.is_set():
            get = asyncio.ensure_future(self.metadata_requests.get())
            closed = asyncio.ensure_future(self.closed.wait())
            done, pending = await asyncio.wait({get, closed}, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            if get not in done:
                return
            piece = get.result()
            # The test lets the honest peer connect before the bad answer goes out (`hold`).
            await asyncio.get_running_loop().run_in_executor(None, self.owner.hold.wait, WAIT_FOR_PEER_S)
            if b == "metadata_reject":
                self.send_extended(b"ut_metadata", lt.bencode({b"msg_type": 2, b"piece": piece}),
                                   f"metadata reject {piece}")
            elif b != "metadata_oversized":
                start = piece * BLOCK
                chunk = bytearray(info[start : start + BLOCK])
                if b == "metadata_wrong_size" and start + BLOCK >= size:
                    chunk.append(0x65)  # the extra byte of the announced size
                chunk[0] ^= 0xFF  # wrong bytes, right framing: only the info-hash check can tell
                header = lt.bencode({b"msg_type": 1, b"piece": piece, b"total_size": size})
                self.send_extended(b"ut_metadata", header + bytes(chunk), f"bad metadata piece {piece}")
            await self.writer.drain()

    async def _send_pex(self) -> None:
        if not await self._extended_handshake(None):
            return
        if b"ut_pex" not in self.their_extensions:
            self.log("remote does not speak ut_pex")
            return
        added = b"".join(bytes(map(int, ip.split("."))) + struct.pack(">H", port)
                         for ip, port in self.owner.pex_added)
        body = lt.bencode({b"added": added, b"added.f": bytes(len(self.owner.pex_added)), b"dropped": b""})
        self.send_extended(b"ut_pex", body, f"pex added {self.owner.pex_added}")

    async def _snub(self) -> None:
        t = self.torrent
        self.send(_message(BITFIELD, bytes(_bitfield_bytes(t.num_pieces, True))), "full bitfield")
        if not await self._wait(self.interested, "interest"):
            return
        self.send(_message(UNCHOKE), "unchoke")
        # Requests pile up in self.requests, unanswered, until torrentpy gives up on us.

    async def run(self) -> None:
        self.log("connected")
        try:
            if not await self.handshake():
                return
            reading = asyncio.ensure_future(self.read_loop())
            await self.misbehave()
            # Keep the connection open until torrentpy closes it (or the peer is stopped).
            await reading
        except (asyncio.IncompleteReadError, ConnectionError) as err:
            self.log(f"closed by remote ({type(err).__name__})")
        finally:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()


class HostilePeer:
    """Listens on 127.0.0.1:``port`` (0: any) and misbehaves as ``behaviour`` (one of BEHAVIOURS)."""

    def __init__(self, torrent: TorrentData, behaviour: str, port: int = 0) -> None:
        if behaviour not in EXPECTED_REASON:
            raise ValueError(f"unknown behaviour {behaviour!r}; choose from {BEHAVIOURS}")
        self.torrent = torrent
        self.behaviour = behaviour
        self.port = port
        self.log: list[str] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        # Metadata behaviours wait for this before each bad answer; set by default.
        self.hold = threading.Event()
        self.hold.set()
        self.requests_received = 0  # block requests over all connections
        # Addresses a "pex_source" peer announces.
        self.pex_added: list[tuple[str, int]] = []

    @property
    def address(self) -> tuple[str, int]:
        return (LOOPBACK, self.port)

    @property
    def address_text(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def record(self, text: str) -> None:
        with self._lock:
            self.log.append(text)

    def seen(self, text: str) -> bool:
        with self._lock:
            return any(line.startswith(text) for line in self.log)

    def start(self, timeout_s: float = 5.0) -> HostilePeer:
        self._thread = threading.Thread(target=self._main, name=f"hostile-{self.behaviour}", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise RuntimeError("hostile peer did not start listening")
        if self._error is not None:
            raise RuntimeError(f"hostile peer failed to start: {self._error!r}")
        return self

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as err:  # surfaced by start() or stop()
            self._error = err
            self._ready.set()
        finally:
            loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        tasks: set[asyncio.Task[None]] = set()

        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            tasks.add(task)
            try:
                await _Connection(self, reader, writer).run()
            finally:
                tasks.discard(task)

        server = await asyncio.start_server(on_client, LOOPBACK, self.port)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"hostile peer ({self.behaviour}): no {what} in {timeout_s} s; {self.log}")
            time.sleep(0.05)

    def wait_closed_by_remote(self, timeout_s: float) -> None:
        self.wait_for(lambda: self.seen("closed by remote"), timeout_s, "close by the remote side")

    def stop(self) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._error is not None:
            raise RuntimeError(f"hostile peer failed: {self._error!r}")
