"""A load generator of BitTorrent peers on 127.0.0.1: hundreds of asyncio clients in one thread of the test.

    gen = LoadGenerator(data, ("127.0.0.1", port), clients=1000, mode="flood").start()
    ... gen.stats.refused_early, gen.stats.handshakes ...
    gen.stop()

Modes:
- "flood": each client connects, sends a valid handshake, an empty bitfield and "interested", then
  requests a block a second of any piece torrentpy has announced (while unchoked); when its connection
  is closed it connects again after a short pause, so the load stays on for the whole run.
- "trickle": the handshake one byte a second (slowloris).
- "stall": a whole handshake, then the first two bytes of a message's length, then nothing.

What each connection saw is counted: refused early (closed or reset before torrentpy sent a byte),
handshakes received, closed after a handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import resource
import struct
import threading
import time
from dataclasses import dataclass, field

from tests.interop.hostile import BLOCK, PROTOCOL, TorrentData

HAVE, BITFIELD, REQUEST, INTERESTED, UNCHOKE, CHOKE = 4, 5, 6, 2, 1, 0
MODES = ("flood", "trickle", "stall")


@dataclass
class LoadStats:
    attempts: int = 0
    connect_errors: int = 0
    refused_early: int = 0  # closed before torrentpy sent anything: refused on accept
    handshakes: int = 0  # torrentpy's handshake received
    closed_after_handshake: int = 0
    open_now: int = 0
    max_open: int = 0
    blocks_received: int = 0
    lifetimes_s: list[float] = field(default_factory=list)  # how long each connection lasted


def _bitfield_message(num_pieces: int) -> bytes:
    payload = bytes((num_pieces + 7) // 8)
    return struct.pack(">IB", 1 + len(payload), BITFIELD) + payload


class LoadGenerator:
    def __init__(self, data: TorrentData, target: tuple[str, int], *, clients: int, mode: str = "flood",
                 reconnect_after_s: float = 0.5, seed: int = 7) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        self.data = data
        self.target = target
        self.clients = clients
        self.mode = mode
        self.reconnect_after_s = reconnect_after_s
        self.rng = random.Random(seed)
        self.stats = LoadStats()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()

    def start(self) -> LoadGenerator:
        # A thousand client sockets: make sure this process may hold them.
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = 3 * self.clients + 256
        if hard != resource.RLIM_INFINITY:
            want = min(hard, want)
        if want > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        self._thread = threading.Thread(target=self._main, name=f"loadgen-{self.mode}", daemon=True)
        self._thread.start()
        self._ready.wait(5)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _main(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._run())
        finally:
            self._loop.close()

    async def _run(self) -> None:
        self._stop = asyncio.Event()
        self._ready.set()
        tasks = [asyncio.ensure_future(self._client(i)) for i in range(self.clients)]
        await self._stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _client(self, index: int) -> None:
        assert self._stop is not None
        # Spread the first connects over a second so the burst is a burst, not one giant SYN queue.
        await asyncio.sleep(self.rng.random() * 1.0)
        while not self._stop.is_set():
            await self._one_connection(index)
            if self.mode != "flood":
                return  # slow peers are slow once each: the test counts what freed their slots
            await asyncio.sleep(self.reconnect_after_s * (0.5 + self.rng.random()))

    def _handshake(self, index: int) -> bytes:
        peer_id = b"-LG0001-" + f"{index:06d}".encode() + os.urandom(6)
        return PROTOCOL + bytes(8) + self.data.info_hash + peer_id

    async def _one_connection(self, index: int) -> None:
        stats = self.stats
        stats.attempts += 1
        try:
            reader, writer = await asyncio.open_connection(*self.target)
        except OSError:
            stats.connect_errors += 1
            return
        opened = time.monotonic()
        stats.open_now += 1
        stats.max_open = max(stats.max_open, stats.open_now)
        received = 0
        try:
            if self.mode == "trickle":
                received = await self._trickle(reader, writer, index)
            else:
                writer.write(self._handshake(index))
                if self.mode == "stall":
                    writer.write(b"\0\0")  # a message length, half sent, and nothing more
                    received = len(await reader.read(1 << 16))
                    while received and not reader.at_eof():
                        chunk = await reader.read(1 << 16)
                        received += len(chunk)
                        if not chunk:
                            break
                else:
                    received = await self._flood(reader, writer)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            stats.open_now -= 1
            stats.lifetimes_s.append(time.monotonic() - opened)
            if received:
                stats.closed_after_handshake += 1
            else:
                stats.refused_early += 1
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _trickle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> int:
        handshake = self._handshake(index)
        reading = asyncio.ensure_future(reader.read(1 << 16))
        for i in range(len(handshake)):
            writer.write(handshake[i:i + 1])
            done, _ = await asyncio.wait([reading], timeout=1.0)
            if done:
                data = reading.result()
                return len(data)  # torrentpy answered (it cannot before the info-hash) or closed
        data = await reading
        return len(data)

    async def _flood(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> int:
        stats = self.stats
        writer.write(_bitfield_message(self.data.num_pieces) + struct.pack(">IB", 1, INTERESTED))
        await reader.readexactly(68)
        stats.handshakes += 1
        received = 68
        have: list[int] = []
        unchoked = False
        requester: asyncio.Task[None] | None = None

        async def request_now_and_then() -> None:
            while True:
                await asyncio.sleep(1.0)
                if unchoked and have:
                    piece = self.rng.choice(have)
                    begin = BLOCK * self.rng.randrange(max(1, self.data.piece_size(piece) // BLOCK))
                    length = min(BLOCK, self.data.piece_size(piece) - begin)
                    writer.write(struct.pack(">IBIII", 13, REQUEST, piece, begin, length))
                else:
                    writer.write(bytes(4))  # keep-alive: an honest, idle peer

        requester = asyncio.ensure_future(request_now_and_then())
        try:
            while True:
                length = struct.unpack(">I", await reader.readexactly(4))[0]
                received += 4
                if not length:
                    continue
                body = await reader.readexactly(length)
                received += length
                msg = body[0]
                if msg == HAVE:
                    have.append(struct.unpack(">I", body[1:5])[0])
                elif msg == BITFIELD:
                    have = [i for i in range(self.data.num_pieces) if body[1 + i // 8] & (0x80 >> (i % 8))]
                elif msg == UNCHOKE:
                    unchoked = True
                elif msg == CHOKE:
                    unchoked = False
                elif msg == 7:
                    stats.blocks_received += 1
        except (asyncio.IncompleteReadError, OSError):
            return received
        finally:
            requester.cancel()
