"""The upload side of one torrent: requests accepted, paced and served from a read cache, the choker's
decisions applied, super-seeding (BEP 16) offers sent, and the drain before leaving once the seeding
goal is met.

The torrent owns the peers, the picker, the storage and the payload totals; the Uploader reads them
through `UploadOwner` and never imports engine.torrent, so there is no import circle."""

from __future__ import annotations

import asyncio
import random
from collections import OrderedDict
from collections.abc import Coroutine, Hashable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, cast

from torrentpy.engine.accounting import RateMeter
from torrentpy.engine.choker import Choker, PeerView
from torrentpy.engine.limits import TorrentLimits
from torrentpy.engine.peer import Peer
from torrentpy.engine.superseed import SuperSeeder
from torrentpy.errors import StorageError
from torrentpy.protocol import events as ev

if TYPE_CHECKING:
    from torrentpy._core import Bitfield
    from torrentpy.engine.host import Host
    from torrentpy.engine.picker import PiecePicker
    from torrentpy.metainfo import Metainfo
    from torrentpy.storage.files import Storage

__all__ = ["LEAVE_TIMEOUT_S", "MAX_QUEUED_REQUESTS", "READ_CACHE_BYTES", "SEND_BATCH_BYTES", "ReadCache",
           "UploadOwner", "Uploader"]

Addr = tuple[str, int]

BLOCK_SIZE = 16 * 1024
# Requests a leecher may have queued with us; more is a flood (libtorrent allows 500).
MAX_QUEUED_REQUESTS = 500
READ_CACHE_BYTES = 64 * 1024 * 1024
# Bytes of blocks handed to the socket in one write when uploading.
SEND_BATCH_BYTES = 256 * 1024
# Pieces read from disk at once for requests not yet being served: the read of the next piece overlaps
# sending this one, as libtorrent issues a disk job per accepted request.
MAX_PENDING_READS = 4
# Seeding goal met: how long we keep serving the requests already accepted before leaving anyway.
LEAVE_TIMEOUT_S = 30.0


class UploadOwner(Protocol):
    """What the Uploader needs from its torrent (engine.torrent.Torrent is one)."""

    up: RateMeter  # payload rate of the whole torrent
    uploaded: int  # payload bytes sent this session

    @property
    def peers(self) -> dict[Addr, Peer]: ...
    @property
    def picker(self) -> PiecePicker | None: ...
    @property
    def storage(self) -> Storage | None: ...
    @property
    def meta(self) -> Metainfo | None: ...
    @property
    def complete(self) -> bool: ...

    def fail(self, message: str) -> None: ...
    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]: ...
    def _protocol_error(self, peer: Peer, reason: str) -> bool: ...
    def _check_goal(self) -> None:
        """Decide whether the seeding goal is met (it calls leave() or check_left())."""

    def _on_left(self) -> None:
        """Every accepted request is served (or LEAVE_TIMEOUT_S passed) and every peer is gone."""


class ReadCache:
    """Whole pieces read once and served for every block request of that piece."""

    def __init__(self, capacity_bytes: int) -> None:
        self.capacity = capacity_bytes
        self.size = 0
        self.pieces: OrderedDict[int, bytes | bytearray] = OrderedDict()

    def get(self, index: int) -> bytes | bytearray | None:
        data = self.pieces.get(index)
        if data is not None:
            self.pieces.move_to_end(index)
        return data

    def put(self, index: int, data: bytes | bytearray) -> None:
        if index in self.pieces:
            return
        self.pieces[index] = data
        self.size += len(data)
        while self.size > self.capacity and len(self.pieces) > 1:
            _, old = self.pieces.popitem(last=False)
            self.size -= len(old)

    def shrink(self) -> bool:
        """Out of memory: forget every piece and keep half as many from now on. False: it held nothing
        to give back."""
        held = bool(self.pieces)
        self.pieces.clear()
        self.size = 0
        self.capacity //= 2
        return held


class Uploader:
    def __init__(self, owner: UploadOwner, host: Host, *, slots: int, rng: random.Random,
                 read_cache_bytes: int = READ_CACHE_BYTES, limits: TorrentLimits | None = None) -> None:
        self.owner = owner
        self.host = host
        # The torrent's own rate limits (and whether the session's apply), paced next to the session's.
        self.limits = limits if limits is not None else TorrentLimits(host, lambda: owner.peers.values())
        self.rng = rng
        self.choker = Choker(slots, rng=rng)
        self.read_cache = ReadCache(read_cache_bytes)
        self.pending_reads: dict[int, asyncio.Future[bytes | bytearray]] = {}
        # BEP 16 state for peers that got no bitfield from us (see super_seeding); None until first needed.
        self.superseed: SuperSeeder | None = None
        # When the goal was met; until the owner has left we only serve requests accepted before then.
        self.leaving_since: float | None = None

    # --- the 1 Hz tick ----------------------------------------------------------

    def tick(self, now: float) -> None:
        if now >= self.choker.next_decision_at(now):
            self.rechoke(now)
        if self.superseed is not None:
            self.announce_offers(self.superseed.tick(now))

    # --- choking ----------------------------------------------------------------

    def rechoke(self, now: float) -> None:
        peers = self.owner.peers
        views = [
            PeerView(key=p.addr, interested=p.conn.peer_interested, down_rate_bps=p.down.rate(now),
                     up_rate_bps=p.up.rate(now), snubbed=p.snubbed, connected_at=p.connected_at,
                     am_choking=p.conn.am_choking, is_seed=p.is_seed)
            for p in peers.values()
        ]
        unchoke = self.choker.decide(views, now=now, seeding=self.owner.complete)
        for peer in peers.values():
            if peer.addr in unchoke and peer.conn.am_choking:
                peer.link.write(peer.conn.send_unchoke())
            elif peer.addr not in unchoke and not peer.conn.am_choking:
                peer.link.write(peer.conn.send_choke())
                if peer.conn.supports_fast:
                    for key in peer.upload_queue:
                        peer.link.write(peer.conn.send_reject(*key))
                peer.upload_queue.clear()

    def on_interested(self, peer: Peer, now: float) -> None:
        if self.superseed is not None:
            self.superseed.peer_interested(peer.addr)
        self.maybe_unchoke_now(peer, now)

    def maybe_unchoke_now(self, peer: Peer, now: float) -> None:
        """Fill a free unchoke slot at once instead of waiting for the next rechoke."""
        unchoked = sum(1 for p in self.owner.peers.values() if not p.conn.am_choking)
        if peer.conn.am_choking and unchoked < self.choker.slots and self.owner.picker is not None:
            peer.link.write(peer.conn.send_unchoke())

    # --- super-seeding (BEP 16) ---------------------------------------------------

    def super_seeding(self) -> bool:
        """Super-seed a new connection (BEP 16, engine/superseed.py) when we are a complete seed under an
        upload limit: our upload is then the scarce resource, and a piece sent twice is one the swarm could
        have passed on itself. Automatic, no flag: with a single leecher the policy serves it at full speed,
        and without a limit there is no scarcity to manage. Decided per connection at the handshake, since a
        bitfield once sent cannot be taken back; peers that got one are seeded normally."""
        meta = self.owner.meta
        picker = self.owner.picker
        # Complete with files deselected is not a seed: offers could name pieces we lack.
        if not self.owner.complete or meta is None or not self.limits.upload_buckets() or \
                picker is None or not picker.have.all():
            return False
        if self.superseed is None:
            self.superseed = SuperSeeder(meta.num_pieces, rng=self.rng)
        return True

    def greet(self, peer: Peer, out: list[bytes], now: float) -> None:
        """Right after the handshake: tell the peer what we have (`out` holds what goes first)."""
        conn = peer.conn
        picker = self.owner.picker
        super_seed = self.super_seeding()
        if super_seed:
            if conn.supports_fast:
                out.append(conn.send_have_none())
        elif picker is not None and (picker.have.any() or conn.supports_fast):
            out.append(conn.send_bitfield(picker.have))
        peer.link.writelines(out)
        if super_seed and self.superseed is not None:
            self.announce_offers({peer.addr: self.superseed.add_peer(peer.addr, now)})

    def peer_has(self, peer: Peer, index: int, now: float) -> None:
        """A peer announced a piece new to it: a super-seeder may offer it its next one."""
        if self.superseed is not None and peer.addr in self.superseed:
            self.announce_offers(self.superseed.peer_have(peer.addr, index, now))

    def peer_bitfield(self, peer: Peer, bitfield: Bitfield, now: float) -> None:
        if self.superseed is not None and peer.addr in self.superseed:
            self.announce_offers(self.superseed.peer_bitfield(peer.addr, bitfield, now))

    def forget(self, peer: Peer) -> None:
        if self.superseed is not None:
            self.superseed.remove_peer(peer.addr)

    def announce_offers(self, offers: Mapping[Hashable, list[int]]) -> None:
        peers = self.owner.peers
        for addr, pieces in offers.items():
            peer = peers.get(cast(Addr, addr))
            if peer is not None and pieces:
                peer.link.writelines([peer.conn.send_have(i) for i in pieces])

    # --- requests -----------------------------------------------------------------

    def on_request(self, peer: Peer, event: ev.Request) -> bool:
        picker = self.owner.picker
        conn = peer.conn
        if picker is None:
            return self.owner._protocol_error(peer, "requested a block before we have the metadata")
        if not picker.have[event.index]:
            return self.owner._protocol_error(peer, f"requested piece {event.index}, which we do not have")
        key = (event.index, event.begin, event.length)
        if conn.am_choking or self.leaving_since is not None:
            if conn.supports_fast:
                peer.link.write(conn.send_reject(*key))
            return True
        if len(peer.upload_queue) >= MAX_QUEUED_REQUESTS:
            return self.owner._protocol_error(peer, f"request flood (more than {MAX_QUEUED_REQUESTS} queued)")
        peer.upload_queue.append(key)
        if not peer.serving:
            self.start_serving(peer)
        elif event.index not in self.read_cache.pieces:
            self._start_read(event.index)
        return True

    @staticmethod
    def on_cancel(peer: Peer, event: ev.Cancel) -> None:
        key = (event.index, event.begin, event.length)
        try:
            peer.upload_queue.remove(key)
        except ValueError:
            peer.pacing.discard(key)  # taken for a batch that waits on the upload limit

    def on_writable(self, peer: Peer) -> None:
        if peer.upload_queue and not peer.serving:
            self.start_serving(peer)

    # --- serving ------------------------------------------------------------------

    def start_serving(self, peer: Peer) -> None:
        peer.serving = True
        self.owner._spawn(self._serve(peer))

    def _start_read(self, index: int) -> asyncio.Future[bytes | bytearray] | None:
        """Read piece `index` into the cache in the executor unless it is there, on its way, or
        MAX_PENDING_READS reads already are; the future of its read, or None."""
        pending = self.pending_reads
        future = pending.get(index)
        if future is not None or len(pending) >= MAX_PENDING_READS or index in self.read_cache.pieces:
            return future
        storage = self.owner.storage
        if storage is None:
            return None
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self.host.executor, storage.read_piece_sync, index)
        pending[index] = future

        def done(f: asyncio.Future[bytes | bytearray]) -> None:
            del pending[index]
            # Retrieved here so that a read nobody awaits any more (its requests cancelled) is not
            # reported as an exception never retrieved; _serve sees it through the future it awaits.
            if not f.cancelled() and f.exception() is None:
                self.read_cache.put(index, f.result())

        future.add_done_callback(done)
        return future

    async def _read(self, index: int) -> bytes | bytearray:
        data = self.read_cache.get(index)
        if data is not None:
            return data
        future = self._start_read(index)
        if future is None:  # the pending reads are all for other pieces: read this one alongside
            storage = self.owner.storage
            assert storage is not None
            return await asyncio.get_running_loop().run_in_executor(
                self.host.executor, storage.read_piece_sync, index)
        # Kept as the bytearray it was read into: never mutated after this, so block views handed to
        # the transport stay valid.
        return await asyncio.shield(future)

    async def _serve(self, peer: Peer) -> None:
        """Send queued blocks, paced by the upload limit and the socket's flow control."""
        owner = self.owner
        try:
            while peer.upload_queue and not peer.link.closed and not peer.conn.am_choking:
                if peer.link.write_paused:
                    return  # resumed by on_writable
                rate_bps = min((b.rate_bps for b in self.limits.upload_buckets()), default=0.0)
                # Several blocks per write: one syscall per 16 KiB block was most of the seeding
                # CPU. Under a rate limit keep batches small (about 50 ms of traffic) so the
                # pacing stays smooth.
                batch_limit = SEND_BATCH_BYTES if rate_bps <= 0 else \
                    max(BLOCK_SIZE, min(SEND_BATCH_BYTES, int(rate_bps * 0.05)))
                batch: list[tuple[int, int, int, bytes | bytearray]] = []
                total = 0
                while peer.upload_queue and total < batch_limit:
                    index, begin, length = peer.upload_queue[0]
                    data = self.read_cache.get(index)
                    if data is None:
                        if batch:
                            self._start_read(index)
                            break  # send what is ready while the disk reads the rest
                        try:
                            data = await self._read(index)
                        except StorageError as exc:
                            owner.fail(str(exc))
                            return
                        except MemoryError:
                            if not self.read_cache.shrink():
                                raise  # nothing left to give back: the torrent stops (memory.failure_message)
                            continue  # read again into the room the cache gave back
                        self.read_cache.put(index, data)
                        if not peer.upload_queue or peer.upload_queue[0] != (index, begin, length):
                            break  # cancelled or choked while we read
                    peer.upload_queue.popleft()
                    batch.append((index, begin, length, data))
                    total += length
                if not batch:
                    continue
                wait_s = self.limits.consume_upload(total, self.host.now())
                if wait_s > 0:
                    peer.pacing.update((i, b, n) for i, b, n, _ in batch)
                    await asyncio.sleep(wait_s)
                    # A block cancelled meanwhile is not sent, nor counted as uploaded.
                    batch = [item for item in batch if item[:3] in peer.pacing]
                    peer.pacing.clear()
                    total = sum(length for _, _, length, _ in batch)
                if peer.link.closed or peer.conn.am_choking:
                    return
                chunks: list[bytes | bytearray | memoryview] = []
                for index, begin, length, data in batch:
                    chunks.append(peer.conn.send_piece_header(index, begin, length))
                    chunks.append(memoryview(data)[begin : begin + length])
                peer.link.writelines(chunks)
                now = self.host.now()
                peer.up.add(total, now)
                peer.uploaded += total
                owner.up.add(total, now)
                owner.uploaded += total
                self.limits.uploaded(now)
                if owner.complete:
                    owner._check_goal()
        finally:
            peer.serving = False
            if self.leaving_since is not None and not peer.upload_queue:
                self._part(peer)  # its accepted requests are all written

    # --- leaving once the seeding goal is met ---------------------------------------

    def leave(self) -> None:
        """The goal is met: accept no new request, serve those already accepted, then part with each
        peer by a graceful close, as libtorrent's graceful pause does. Leaving at once stranded
        a leecher whose last requested blocks were still queued here or in our socket buffers."""
        self.leaving_since = self.host.now()
        for peer in list(self.owner.peers.values()):
            if not peer.upload_queue and not peer.serving:
                self._part(peer)
        self.check_left()

    @staticmethod
    def _part(peer: Peer) -> None:
        if peer.link.closed:
            return
        if not peer.conn.am_choking:
            peer.link.write(peer.conn.send_choke())  # no more requests, please
        peer.link.close_gracefully("seeding goal reached")

    def check_left(self) -> None:
        """Left once every peer is gone, or after LEAVE_TIMEOUT_S whatever is still queued."""
        assert self.leaving_since is not None
        peers = self.owner.peers
        if peers and self.host.now() - self.leaving_since < LEAVE_TIMEOUT_S:
            return
        for peer in list(peers.values()):
            peer.link.close("seeding goal reached")
        self.owner._on_left()
