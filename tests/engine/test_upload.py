"""The Uploader alone, in-process: a fake torrent (its owner), a fake host with a frozen clock, and fake
links whose bytes are parsed by the remote PeerConnection, so the tests check what a leecher receives."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.protocol.link import NUM_PIECES, PIECE_LENGTH, TOTAL_LENGTH, Link, handshaken
from torrentpy.engine.accounting import RateMeter
from torrentpy.engine.peer import Peer
from torrentpy.engine.picker import PiecePicker
from torrentpy.engine.ratelimit import TokenBucket
from torrentpy.engine.upload import LEAVE_TIMEOUT_S, MAX_PENDING_READS, MAX_QUEUED_REQUESTS, ReadCache, Uploader
from torrentpy.protocol import events as ev

BLOCK = 16384


def piece_bytes(index: int) -> bytes:
    size = min(PIECE_LENGTH, TOTAL_LENGTH - index * PIECE_LENGTH)
    return bytes((index * 7 + i) % 251 for i in range(size))


class FakeStorage:
    def __init__(self) -> None:
        self.reads: list[int] = []

    def read_piece_sync(self, index: int) -> bytearray:
        self.reads.append(index)
        return bytearray(piece_bytes(index))


class FakeHost:
    def __init__(self, executor: ThreadPoolExecutor, rate_bps: float = 0.0) -> None:
        self.clock = 1000.0
        self.executor = executor
        self.upload_bucket = TokenBucket(rate_bps, burst_bytes=BLOCK) if rate_bps else TokenBucket(0)

    def now(self) -> float:
        return self.clock


class FakeLink:
    """Our side of a handshaken pair of PeerConnections; what we write is parsed by the remote one."""

    def __init__(self, owner: FakeOwner, port: int) -> None:
        self.owner = owner
        self.pair: Link = handshaken()
        self.conn = self.pair.a
        self.addr = ("127.0.0.1", port)
        self.closed = False
        self.graceful = False
        self.write_paused = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed
        self.pair.to_b(bytes(data))

    def writelines(self, chunks: list[bytes | bytearray | memoryview]) -> None:
        self.write(b"".join(bytes(c) for c in chunks))

    def close(self, reason: str) -> None:
        self.closed = True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.owner.on_closed(self)
            return
        loop.call_soon(self.owner.on_closed, self)  # as a transport's connection_lost comes: later

    def close_gracefully(self, reason: str) -> None:
        self.graceful = True
        self.close(reason)

    def received(self, kind: type) -> list[Any]:
        return [e for e in self.pair.b_events if isinstance(e, kind)]


class FakeOwner:
    """The torrent, as far as the Uploader sees it: a complete seed of the link.py torrent."""

    def __init__(self, host: FakeHost, *, have_all: bool = True, metadata: bool = True) -> None:
        self.peers: dict[tuple[str, int], Peer] = {}
        self.up = RateMeter()
        self.uploaded = 0
        self.picker: PiecePicker | None = None
        if metadata:
            self.picker = PiecePicker(NUM_PIECES, PIECE_LENGTH, TOTAL_LENGTH, block_size=BLOCK,
                                      rng=random.Random(0))
            for i in range(NUM_PIECES if have_all else NUM_PIECES // 2):
                self.picker.piece_passed(i)
        self.storage = FakeStorage()
        self.meta = None
        self.errors: list[str] = []
        self.tasks: list[asyncio.Task[Any]] = []
        self.left = 0
        self.uploader = Uploader(self, host, slots=2, rng=random.Random(1))  # type: ignore[arg-type]

    @property
    def complete(self) -> bool:
        return self.picker is not None and self.picker.done()

    def fail(self, message: str) -> None:
        self.errors.append(message)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.append(task)
        return task

    def _protocol_error(self, peer: Peer, reason: str) -> bool:
        self.errors.append(reason)
        peer.link.close(reason)
        return False

    def _check_goal(self) -> None:
        pass  # the goal decision is the torrent's; tests call leave() themselves

    def _on_left(self) -> None:
        self.left += 1

    def on_closed(self, link: FakeLink) -> None:
        # What Torrent.on_closed does for the upload side.
        self.peers.pop(link.addr, None)
        if self.uploader.leaving_since is not None and not self.left:
            self.uploader.check_left()

    def connect(self, port: int, *, unchoked: bool = True) -> Peer:
        link = FakeLink(self, port)
        peer = Peer(link=link, connected_at=0.0)  # type: ignore[arg-type]
        self.peers[link.addr] = peer
        if unchoked:
            link.write(link.conn.send_unchoke())
        return peer

    async def settle(self) -> None:
        while any(not t.done() for t in self.tasks):
            await asyncio.gather(*self.tasks)
        for t in self.tasks:
            t.result()  # re-raise what a serve task raised


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(1)
    yield pool
    pool.shutdown()


def served(peer: Peer) -> list[tuple[int, int, bytes]]:
    return [(e.index, e.begin, bytes(e.data)) for e in peer.link.received(ev.Piece)]  # type: ignore[attr-defined]


def test_requests_are_validated(executor: ThreadPoolExecutor) -> None:
    owner = FakeOwner(FakeHost(executor), metadata=False)
    peer = owner.connect(1)
    assert owner.uploader.on_request(peer, ev.Request(0, 0, BLOCK)) is False
    assert owner.errors == ["requested a block before we have the metadata"] and peer.link.closed

    owner = FakeOwner(FakeHost(executor), have_all=False)
    peer = owner.connect(1)
    assert owner.uploader.on_request(peer, ev.Request(NUM_PIECES - 1, 0, 5000)) is False
    assert owner.errors == [f"requested piece {NUM_PIECES - 1}, which we do not have"]

    # Choked: not an error, but rejected (both sides speak the fast extension) and never queued.
    owner = FakeOwner(FakeHost(executor))
    peer = owner.connect(1, unchoked=False)
    assert owner.uploader.on_request(peer, ev.Request(0, BLOCK, BLOCK)) is True
    assert not peer.upload_queue and not owner.tasks and not peer.link.closed
    assert peer.link.received(ev.Reject) == [ev.Reject(0, BLOCK, BLOCK)]  # type: ignore[attr-defined]


async def test_more_than_the_queue_limit_is_a_flood(executor: ThreadPoolExecutor) -> None:
    owner = FakeOwner(FakeHost(executor))
    peer = owner.connect(1)
    peer.serving = True  # a serve task is busy: everything queues
    for i in range(MAX_QUEUED_REQUESTS):
        assert owner.uploader.on_request(peer, ev.Request(i % NUM_PIECES, 0, BLOCK))
    assert len(peer.upload_queue) == MAX_QUEUED_REQUESTS and not owner.errors
    assert owner.uploader.on_request(peer, ev.Request(0, BLOCK, BLOCK)) is False
    assert owner.errors == [f"request flood (more than {MAX_QUEUED_REQUESTS} queued)"]
    assert peer.link.closed


async def test_cancel_removes_a_queued_block(executor: ThreadPoolExecutor) -> None:
    owner = FakeOwner(FakeHost(executor))
    peer = owner.connect(1)
    peer.serving = True
    for begin in (0, BLOCK):
        owner.uploader.on_request(peer, ev.Request(3, begin, BLOCK))
    owner.uploader.on_cancel(peer, ev.Cancel(3, 0, BLOCK))
    assert list(peer.upload_queue) == [(3, BLOCK, BLOCK)]
    owner.uploader.on_cancel(peer, ev.Cancel(7, 0, BLOCK))  # never requested: ignored
    assert list(peer.upload_queue) == [(3, BLOCK, BLOCK)]


async def test_serves_queued_blocks_from_one_read_per_piece(executor: ThreadPoolExecutor) -> None:
    host = FakeHost(executor)
    owner = FakeOwner(host)
    peer = owner.connect(1)
    wanted = [(2, 0), (2, BLOCK), (NUM_PIECES - 1, 0)]
    for index, begin in wanted:
        length = min(BLOCK, len(piece_bytes(index)) - begin)
        owner.uploader.on_request(peer, ev.Request(index, begin, length))
    await owner.settle()
    expected = [(i, b, piece_bytes(i)[b : b + BLOCK]) for i, b in wanted]
    assert served(peer) == expected
    assert owner.storage.reads == [2, NUM_PIECES - 1]
    total = 2 * BLOCK + 5000
    assert owner.uploaded == peer.uploaded == total
    assert not peer.serving and not peer.upload_queue


async def test_pieces_requested_while_serving_are_read_ahead(executor: ThreadPoolExecutor) -> None:
    owner = FakeOwner(FakeHost(executor))
    peer = owner.connect(1)
    peer.serving = True  # a serve task is busy sending: what arrives now is read from disk meanwhile
    for index in range(MAX_PENDING_READS + 2):
        for begin in (0, BLOCK):
            owner.uploader.on_request(peer, ev.Request(index, begin, BLOCK))
    # One read per piece, and no more at once than the bound.
    assert sorted(owner.uploader.pending_reads) == list(range(MAX_PENDING_READS))
    for _ in range(500):
        if not owner.uploader.pending_reads:
            break
        await asyncio.sleep(0.005)
    assert sorted(owner.storage.reads) == list(range(MAX_PENDING_READS))
    assert sorted(owner.uploader.read_cache.pieces) == list(range(MAX_PENDING_READS))
    # The serve task then sends every block, reading only the pieces that were not read ahead.
    peer.serving = False
    owner.uploader.start_serving(peer)
    await owner.settle()
    assert [(i, b) for i, b, _ in served(peer)] == [(i, b) for i in range(MAX_PENDING_READS + 2) for b in (0, BLOCK)]
    assert sorted(owner.storage.reads) == list(range(MAX_PENDING_READS + 2))
    assert served(peer)[-1][2] == piece_bytes(MAX_PENDING_READS + 1)[BLOCK : 2 * BLOCK]


async def test_a_block_cancelled_while_paced_is_neither_sent_nor_counted(executor: ThreadPoolExecutor) -> None:
    host = FakeHost(executor, rate_bps=4 * BLOCK)  # the clock is frozen: the second block waits 0.25 s
    owner = FakeOwner(host)
    peer = owner.connect(1)
    owner.uploader.on_request(peer, ev.Request(1, 0, BLOCK))
    owner.uploader.on_request(peer, ev.Request(1, BLOCK, BLOCK))
    for _ in range(500):
        if peer.pacing:
            break
        await asyncio.sleep(0.005)
    assert peer.pacing == {(1, BLOCK, BLOCK)}
    owner.uploader.on_cancel(peer, ev.Cancel(1, BLOCK, BLOCK))
    await owner.settle()
    assert [(i, b) for i, b, _ in served(peer)] == [(1, 0)]
    assert owner.uploaded == peer.uploaded == BLOCK


def test_read_cache_evicts_the_least_recently_used_piece() -> None:
    cache = ReadCache(2 * PIECE_LENGTH)
    for i in range(2):
        cache.put(i, bytes(PIECE_LENGTH))
    assert cache.get(0) is not None  # 0 is now the most recent
    cache.put(2, bytes(PIECE_LENGTH))
    assert list(cache.pieces) == [0, 2] and cache.size == 2 * PIECE_LENGTH
    assert cache.get(1) is None
    # A piece larger than the whole cache is still kept, alone, so its blocks are served from memory.
    cache.put(3, bytes(3 * PIECE_LENGTH))
    assert list(cache.pieces) == [3] and cache.size == 3 * PIECE_LENGTH


async def test_a_read_out_of_memory_shrinks_the_cache_and_tries_again(executor: ThreadPoolExecutor) -> None:
    owner = FakeOwner(FakeHost(executor))
    peer = owner.connect(1)
    for index in (1, 2):
        owner.uploader.on_request(peer, ev.Request(index, 0, BLOCK))
    await owner.settle()
    cache = owner.uploader.read_cache
    assert list(cache.pieces) == [1, 2]
    read, failures = owner.storage.read_piece_sync, [1]

    def short_of_memory(index: int) -> bytearray:
        if failures[0]:
            failures[0] -= 1
            raise MemoryError
        return read(index)

    owner.storage.read_piece_sync = short_of_memory  # type: ignore[method-assign]
    capacity = cache.capacity
    owner.uploader.on_request(peer, ev.Request(3, 0, BLOCK))
    await owner.settle()
    assert served(peer)[-1] == (3, 0, piece_bytes(3)[:BLOCK])
    assert list(cache.pieces) == [3] and cache.capacity == capacity // 2
    # With nothing cached there is nothing to give back: the error goes up and the torrent stops.
    cache.shrink()
    failures[0] = 1
    owner.uploader.on_request(peer, ev.Request(4, 0, BLOCK))
    with pytest.raises(MemoryError):
        await owner.settle()


def test_the_read_cache_shrinks_when_memory_runs_out() -> None:
    cache = ReadCache(4 * PIECE_LENGTH)
    for i in range(3):
        cache.put(i, bytearray(PIECE_LENGTH))
    assert cache.shrink() and cache.size == 0 and not cache.pieces and cache.capacity == 2 * PIECE_LENGTH
    assert not cache.shrink()  # nothing left to give back


async def test_leaving_finishes_accepted_requests_then_parts(executor: ThreadPoolExecutor) -> None:
    owner = FakeOwner(FakeHost(executor))
    busy, idle = owner.connect(1), owner.connect(2)
    for begin in (0, BLOCK):
        owner.uploader.on_request(busy, ev.Request(4, begin, BLOCK))
    owner.uploader.leave()
    # The idle peer is parted at once: choked, then closed gracefully.
    assert idle.link.closed and idle.link.graceful and idle.link.received(ev.Choke)  # type: ignore[attr-defined]
    assert not busy.link.closed and not owner.left
    # No new request is accepted while leaving.
    owner.uploader.on_request(busy, ev.Request(5, 0, BLOCK))
    assert busy.link.received(ev.Reject) == [ev.Reject(5, 0, BLOCK)]  # type: ignore[attr-defined]
    await owner.settle()
    await asyncio.sleep(0)  # the closes are seen
    assert [(i, b) for i, b, _ in served(busy)] == [(4, 0), (4, BLOCK)]
    assert busy.link.closed and busy.link.graceful
    assert owner.left == 1 and not owner.peers


async def test_leaving_gives_up_on_a_stuck_peer_after_the_timeout(executor: ThreadPoolExecutor) -> None:
    host = FakeHost(executor)
    owner = FakeOwner(host)
    stuck = owner.connect(1)
    stuck.link.write_paused = True  # its socket never drains
    owner.uploader.on_request(stuck, ev.Request(0, 0, BLOCK))
    await owner.settle()
    owner.uploader.leave()
    assert not owner.left and not stuck.link.closed
    host.clock += LEAVE_TIMEOUT_S - 1
    owner.uploader.check_left()
    assert not owner.left
    host.clock += 1
    owner.uploader.check_left()
    assert owner.left == 1 and stuck.link.closed and not stuck.link.graceful
    await asyncio.sleep(0)
    assert owner.left == 1 and not owner.peers


def test_rechoke_follows_the_chokers_schedule(executor: ThreadPoolExecutor) -> None:
    host = FakeHost(executor)
    owner = FakeOwner(host)
    uploader = uploader_with_interval(owner, 3.0)
    peers = [owner.connect(p, unchoked=False) for p in (1, 2, 3)]
    uploader.tick(0.0)  # nobody is interested yet
    for peer in peers:
        peer.link.pair.to_a(peer.link.pair.b.send_interested())
    uploader.tick(1.0)
    assert all(p.conn.am_choking for p in peers)  # the choker's next decision is due at 3.0
    uploader.tick(3.0)
    # Seeding: slots + 1 turns.
    assert sum(not p.conn.am_choking for p in peers) == 3


def uploader_with_interval(owner: FakeOwner, interval_s: float) -> Uploader:
    owner.uploader.choker.rechoke_interval_s = interval_s
    return owner.uploader


def test_an_interested_peer_takes_a_free_slot_at_once(executor: ThreadPoolExecutor) -> None:
    owner = FakeOwner(FakeHost(executor))
    peers = [owner.connect(p, unchoked=False) for p in (1, 2, 3)]
    for peer in peers:
        owner.uploader.on_interested(peer, 5.0)
    # Two slots: the third waits for the choker.
    assert [p.conn.am_choking for p in peers] == [False, False, True]
    assert peers[0].link.received(ev.Unchoke)  # type: ignore[attr-defined]
