"""The download side of a torrent: request queues, received blocks, piece buffers, hash then write.

Per-block work lives here (Downloader.on_piece), so it is kept lean: no allocation beyond the
picker's result, and the torrent's state is read through one reference. Policy is delegated to
the picker (which blocks), engine.requests (how many, snubbing) and the ban list (whom to ban)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping
from typing import Any, Protocol, cast

from torrentpy._core import Bitfield, verify_piece
from torrentpy.engine import alerts
from torrentpy.engine.accounting import RateMeter
from torrentpy.engine.banlist import Ban, BanList
from torrentpy.engine.host import Host
from torrentpy.engine.peer import Peer
from torrentpy.engine.picker import Block, PiecePicker
from torrentpy.engine.requests import BLOCK_SIZE, is_snubbing, plan_requests
from torrentpy.engine.swarm import totals_key
from torrentpy.errors import StorageError, out_of_memory_message
from torrentpy.metainfo import Metainfo
from torrentpy.protocol import events as ev
from torrentpy.storage.files import Storage
from torrentpy.units import format_size

Addr = tuple[str, int]

_new_block = tuple.__new__

# A request not answered in this time is re-requested elsewhere.
REQUEST_TIMEOUT_S = 30.0
# Verified-or-not pieces waiting for the thread pool (hash + write) before we stop requesting more. At 32 MiB
# a 1 GiB leech peaked at 72 MiB RSS whenever page-cache writes lagged; at 16 MiB, 55-56 MiB, with no rate
# lost beyond this machine's noise (libtorrent queues 1 MiB by default).
MAX_PENDING_WRITE_BYTES = 16 * 1024 * 1024
# Spare piece buffers kept for reuse, in bytes. Spares are buffers that were all in use at once, so the pool
# never raises the peak; it only spares fresh ones their page faults when the number in flight climbs back.
# Fifty seeders swing it by a hundred pieces: 32 spares then dropped two buffers in three, refaulted later.
BUFFER_POOL_BYTES = 64 * 1024 * 1024


class DownloadOwner(Protocol):
    """What the downloader reads and calls on its torrent (engine.torrent.Torrent)."""

    downloaded: int
    resume_dirty: bool

    # Read-only here (properties), so the torrent may compute them.
    @property
    def host(self) -> Host: ...
    @property
    def meta(self) -> Metainfo | None: ...
    @property
    def picker(self) -> PiecePicker | None: ...
    @property
    def storage(self) -> Storage | None: ...
    @property
    def start_save(self) -> asyncio.Task[Any] | None: ...
    @property
    def peers(self) -> dict[Addr, Peer]: ...
    @property
    def paused(self) -> bool: ...
    @property
    def state(self) -> str: ...
    @property
    def down(self) -> RateMeter: ...
    @property
    def now(self) -> float: ...
    def emit(self, alert: alerts.TorrentAlert) -> None: ...
    def fail(self, message: str) -> None: ...
    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]: ...
    def ban(self, peer: Peer, reason: str) -> None: ...
    def _protocol_error(self, peer: Peer, reason: str) -> bool: ...
    def _on_download_complete(self, *, announce: bool) -> None: ...
    def peer_totals(self) -> dict[Addr, tuple[str, int, int]]: ...


def _hash_then_write(storage: Storage, index: int, buf: bytearray, expected: bytes) -> bool:
    """One thread-pool job per piece: a second round trip through the pool (and the event loop) per
    piece for the write cost more CPU than the write itself. False: the hash failed, nothing written."""
    if not verify_piece(buf, expected):
        return False
    storage.write_piece_sync(index, buf)
    return True


class Downloader:
    def __init__(self, torrent: DownloadOwner, banlist: BanList) -> None:
        self.torrent = torrent
        self.banlist = banlist
        self.piece_buffers: dict[int, bytearray] = {}
        self._buffer_pool: list[bytearray] = []
        self._throttled = False
        # Peers that got fewer requests than they wanted because the picker's partial pieces were at their
        # memory bound, longest waiting first: they are topped up when a piece leaves it.
        self._starved: dict[Addr, None] = {}
        self.hashing: set[int] = set()
        # Who sent each block received so far of the pieces being assembled: piece → offset → peer.
        self.block_sources: dict[int, dict[int, Addr]] = {}
        self.pieces_downloaded = 0  # verified pieces fetched from peers this session
        self.failed_pieces = 0

    # --- requests ---------------------------------------------------------------

    def fill_requests(self, peer: Peer, now: float) -> None:
        t = self.torrent
        picker = t.picker
        conn = peer.conn
        if picker is None or t.paused or t.state != "downloading" or not conn.am_interested:
            return
        if conn.peer_choking:
            return
        if len(self.hashing) * picker.piece_length > MAX_PENDING_WRITE_BYTES:
            # Disk or hashing is behind the network: stop asking until it catches up, so
            # piece buffers waiting for the thread pool can't grow without bound.
            self._throttled = True
            return
        outstanding = picker.outstanding_count(peer.addr)
        if peer.snubbed:
            return  # no block for SNUB_TIMEOUT_S: no new requests until it unchokes us afresh
        if outstanding > peer.refill_below and now < peer.depth_until:
            return  # the common case, once per received block: nothing to do yet
        rate, total = peer.down.rate(now), t.down.rate(now)
        want, peer.refill_below, peer.depth_until = plan_requests(
            outstanding, rate, now, endgame=picker.in_endgame(), block_size=BLOCK_SIZE,
            share=(rate / total if total > 0 else 1 / len(t.peers)) if len(t.peers) > 1 else 1.0)
        if want <= 0:
            return
        blocks = picker.pick(peer.addr, want, now=now)
        if len(blocks) < want and picker.at_capacity() and not picker.in_endgame():
            # No room for another piece: the peer waits for one to leave (_wake_peers) or for its next
            # re-measure, instead of asking the picker again for every block it delivers (fifty seeders
            # made 25,000 such empty picks per GiB).
            self._starved[peer.addr] = None
            peer.refill_below = -1
        if not blocks:
            if peer.bitfield is None or not picker.is_interesting(peer.bitfield):
                self.update_interest(peer)
            return
        peer.link.writelines([conn.send_request(b.index, b.begin, b.length) for b in blocks])

    def check_requests(self, now: float) -> None:
        """The 1 Hz tick: snubbing peers and unanswered requests give their blocks back to the
        picker, and every queue is topped up."""
        t = self.torrent
        picker = t.picker
        if picker is None:
            return
        for peer in list(t.peers.values()):
            if peer.link.closed or peer.snubbed:
                continue  # closed for idleness this tick, or already known
            if is_snubbing(now, outstanding=picker.outstanding_count(peer.addr), last_block_at=peer.last_block_at,
                           unchoked_us_at=peer.unchoked_us_at, connected_at=peer.connected_at):
                peer.snubbed = True
                for block in picker.outstanding(peer.addr):
                    peer.released.add(block)
                    picker.on_timeout(peer.addr, block)
        for key, block in picker.timed_out(now, REQUEST_TIMEOUT_S):
            late = t.peers.get(cast(Addr, key))
            picker.on_timeout(key, block)
            if late is not None:
                late.released.add(block)
                late.link.write(late.conn.send_cancel(block.index, block.begin, block.length))
        for peer in list(t.peers.values()):
            if peer.pending_haves:
                peer.link.write(peer.conn.send_haves(peer.pending_haves))
                peer.pending_haves.clear()
            if peer.conn.am_interested and not peer.conn.peer_choking:
                self.fill_requests(peer, now)

    # --- what peers have -----------------------------------------------------------

    def on_bitfield(self, peer: Peer, bitfield: Bitfield) -> bool:
        picker = self.torrent.picker
        if picker is None:
            peer.bitfield = bitfield  # counted once the metadata arrives
            return True
        if peer.bitfield is not None:
            picker.remove_peer(peer.addr)
        peer.bitfield = bitfield
        picker.add_peer(peer.addr, bitfield)
        if picker.done() and bitfield.all():
            peer.link.close("both sides are seeds")
            return False
        self.update_interest(peer)
        return True

    def on_have(self, peer: Peer, index: int, now: float) -> bool:
        picker = self.torrent.picker
        if picker is None:
            return True
        if peer.bitfield is None:
            peer.bitfield = Bitfield(len(picker.have))
            picker.add_peer(peer.addr, peer.bitfield)
        if not peer.bitfield[index]:
            peer.bitfield.set(index)
            picker.peer_have(peer.addr, index)
        if not peer.conn.am_interested and not picker.have[index]:
            self.update_interest(peer)
        elif peer.conn.am_interested and not peer.conn.peer_choking:
            self.fill_requests(peer, now)
        if picker.done() and peer.bitfield.all():
            peer.link.close("both sides are seeds")
            return False
        return True

    def update_interest(self, peer: Peer) -> None:
        picker = self.torrent.picker
        if picker is None or peer.bitfield is None:
            return
        want = picker.is_interesting(peer.bitfield)
        conn = peer.conn
        if want and not conn.am_interested:
            peer.link.write(conn.send_interested())
            if not conn.peer_choking:
                self.fill_requests(peer, self.torrent.now)
        elif not want and conn.am_interested:
            peer.link.write(conn.send_not_interested())

    def on_choked(self, peer: Peer) -> None:
        picker = self.torrent.picker
        if picker is None:
            return
        if peer.conn.supports_fast:
            return  # BEP 6: the peer rejects what it drops; outstanding requests stay valid
        for block in picker.outstanding(peer.addr):
            peer.released.add(block)
            picker.on_reject(peer.addr, block)

    def on_reject(self, peer: Peer, block: Block) -> None:
        picker = self.torrent.picker
        if picker is None:
            return
        peer.released.add(block)
        picker.on_reject(peer.addr, block)

    # --- blocks -----------------------------------------------------------------

    def on_piece(self, peer: Peer, event: ev.Piece, now: float) -> bool:
        t = self.torrent
        picker = t.picker
        if picker is None:
            return t._protocol_error(peer, "sent a block before we have the metadata")
        data = event.data
        length = len(data)
        # tuple.__new__ skips the NamedTuple's Python-level __new__: this runs once per block.
        block = _new_block(Block, (event.index, event.begin, length))
        addr = peer.addr
        try:
            result = picker.on_block(addr, block)
        except ValueError as exc:
            return t._protocol_error(peer, f"sent a malformed block: {exc}")
        if result.unrequested:
            if block in peer.released:
                peer.released.discard(block)
            elif not result.duplicate:
                # The picker already counted the block as received, but its bytes are never
                # stored: start the piece over, or it would fail its hash (or, if this block
                # completed it, never be verified at all).
                picker.piece_failed(event.index)
                self.block_sources.pop(event.index, None)
                return t._protocol_error(peer, f"sent a block we did not request (piece {event.index})")
        peer.released.discard(block)
        peer.last_block_at = now
        peer.snubbed = False
        peer.down.add(length, now)
        peer.downloaded += length
        t.down.add(length, now)
        t.downloaded += length
        if result.cancel:
            for other_key, other_block in result.cancel:
                other = t.peers.get(cast(Addr, other_key))
                if other is not None:
                    other.released.add(other_block)
                    other.link.write(other.conn.send_cancel(other_block.index, other_block.begin,
                                                           other_block.length))
        if not result.duplicate:
            buf = self.piece_buffers.get(event.index)
            if buf is None:
                try:
                    buf = self._new_piece_buffer(event.index)
                except MemoryError:
                    return self._no_buffer(peer, event.index)
                self.piece_buffers[event.index] = buf
            if event.begin + length > len(buf):
                return t._protocol_error(peer, "sent a block past the end of the piece")
            buf[event.begin : event.begin + length] = data
            self.block_sources.setdefault(event.index, {})[event.begin] = addr
            if result.piece_complete:
                self._hash_and_write(event.index)
        self.fill_requests(peer, now)
        return True

    def _new_piece_buffer(self, index: int) -> bytearray:
        meta = self.torrent.meta
        assert meta is not None
        size = meta.piece_size(index)
        if size == meta.piece_length and self._buffer_pool:
            return self._buffer_pool.pop()
        try:
            return bytearray(size)
        except MemoryError:
            if not self._buffer_pool:
                raise
        self._buffer_pool.clear()  # spares of the full size, and this is the short last piece: try once more
        return bytearray(size)

    def _no_buffer(self, peer: Peer, index: int) -> bool:
        """No memory for the buffer of a piece `peer` began. The picker counted the block, which was not
        kept: the piece starts over. While other pieces hold buffers they will give back, the download
        goes on with fewer pieces in flight, without this peer; with none, it cannot go on at all."""
        t = self.torrent
        assert t.picker is not None and t.meta is not None
        t.picker.piece_failed(index)
        self.block_sources.pop(index, None)
        what = f"no memory for a {format_size(t.meta.piece_size(index))} piece buffer"
        if self.piece_buffers or self.hashing:
            t.emit(alerts.PeerError(f"{peer.addr[0]}:{peer.addr[1]}", what))
            peer.link.close(what)
        else:
            t.fail(out_of_memory_message(what))
        return False

    def drop_buffers(self) -> None:
        """Give back every piece buffer, spares included (a seed, or a torrent stopped for want of memory);
        the pieces being assembled start over if it downloads again."""
        self.piece_buffers.clear()
        self._buffer_pool.clear()

    def _recycle(self, buf: bytearray) -> None:
        # Fresh piece buffers cost a page fault per 4 KiB on first touch (glibc mmaps large
        # allocations and unmaps them on free): reusing them halved the download's system time.
        meta = self.torrent.meta
        if meta is not None and len(buf) == meta.piece_length and \
                (len(self._buffer_pool) + 1) * len(buf) <= BUFFER_POOL_BYTES:
            self._buffer_pool.append(buf)

    # --- hash, then write ---------------------------------------------------------

    def _hash_and_write(self, index: int) -> None:
        """Hand a complete piece to the thread pool now, from the callback that completed it. A task
        that submitted it would first run after the loop's I/O phase, and with fifty seeders one phase
        drains every socket (libuv reads each up to 32 times): pieces completed all through it reached
        the pool together at its end, the pool idled meanwhile, and their buffers piled up."""
        t = self.torrent
        buf = self.piece_buffers.pop(index)
        self.hashing.add(index)
        if t.start_save is not None and not t.start_save.done():
            # The resume file and its reserve come before any data (engine/disk.py): only a start's first
            # pieces can get here, and they wait in a task.
            t._spawn(self._after_start_save(index, buf))
            return
        t._spawn(self.finish_piece(index, buf, self._submit(index, buf)))

    def _submit(self, index: int, buf: bytearray) -> asyncio.Future[bool]:
        t = self.torrent
        meta, storage = t.meta, t.storage
        assert meta is not None and storage is not None
        loop = asyncio.get_running_loop()
        try:
            return loop.run_in_executor(t.host.executor, _hash_then_write, storage, index, buf, meta.piece_hash(index))
        except Exception as exc:  # the pool is shut down or cannot start a thread: fail as the job would
            job: asyncio.Future[bool] = loop.create_future()
            job.set_exception(exc)
            return job

    async def _after_start_save(self, index: int, buf: bytearray) -> None:
        start_save = self.torrent.start_save
        assert start_save is not None
        # asyncio.wait neither raises the save's error (the torrent's task handler reports it) nor cancels
        # the save with this task.
        await asyncio.wait([start_save])
        await self.finish_piece(index, buf, self._submit(index, buf))

    async def finish_piece(self, index: int, buf: bytearray, job: asyncio.Future[bool]) -> None:
        t = self.torrent
        picker = t.picker
        assert picker is not None
        try:
            ok = await job
        except StorageError as exc:
            self.hashing.discard(index)
            t.fail(str(exc))
            return
        finally:
            self.hashing.discard(index)
        sources = self.block_sources.pop(index, {})
        if not ok:
            self._on_hash_failed(index, buf, sources)
            self._recycle(buf)
            self._wake_peers()
            return
        picker.piece_passed(index)
        self.pieces_downloaded += 1
        self._wake_peers()
        t.resume_dirty = True
        self._apply_bans(self.banlist.piece_passed(index, buf))
        self._recycle(buf)
        for peer in list(t.peers.values()):
            # HAVE goes to every peer, those that have the piece too: a super-seeder (BEP 16) offers its
            # next piece only once it sees this one arrived (it never shows itself as a seed), and seeders
            # count their swarm's progress by it. A seed needs no piece from us, so its HAVEs wait for the
            # tick and go in one write: one small write per piece to each of fifty seeders cost a sixth
            # of the leech's CPU.
            if peer.is_seed:
                peer.pending_haves.append(index)
            else:
                peer.link.write(peer.conn.send_have(index))
            if peer.conn.am_interested and peer.bitfield is not None and not picker.is_interesting(peer.bitfield):
                peer.link.write(peer.conn.send_not_interested())
        if picker.done():
            t._on_download_complete(announce=True)
        elif picker.sequential:  # the read-ahead window moved on: peers idle at its edge may start more
            for peer in list(t.peers.values()):
                self.fill_requests(peer, t.now)

    def _wake_peers(self) -> None:
        """A piece left the pool and the picker: top up the peers whose requests stopped for either."""
        t = self.torrent
        picker = t.picker
        assert picker is not None
        now = t.now
        if self._throttled and len(self.hashing) * picker.piece_length <= MAX_PENDING_WRITE_BYTES // 2:
            self._throttled = False
            starved, self._starved = self._starved, {}
            for peer in list(t.peers.values()):
                if peer.addr in starved:
                    peer.depth_until = 0.0
                self.fill_requests(peer, now)
        elif self._starved:
            # One piece's room feeds a peer or two: once one gets nothing with the bound reached again, so
            # would the rest (fifty seeders spent a quarter of the leech's CPU asking them all every piece).
            starved = self._starved
            for addr in list(starved):
                del starved[addr]
                waiting = t.peers.get(addr)
                if waiting is not None:
                    before = picker.outstanding_count(addr)
                    waiting.depth_until = 0.0  # plan afresh: its last plan found no room
                    self.fill_requests(waiting, now)
                    if picker.outstanding_count(addr) == before and picker.at_capacity():
                        break

    def _on_hash_failed(self, index: int, buf: bytearray, sources: Mapping[int, Addr]) -> None:
        t = self.torrent
        assert t.picker is not None
        self.failed_pieces += 1
        # The picker keys peers by address; it types them as any Hashable.
        contributors = {cast(Addr, k) for k in t.picker.piece_failed(index)} | set(sources.values())
        t.emit(alerts.HashFailed(index, tuple(f"{a[0]}:{a[1]}" for a in contributors)))
        self._apply_bans(self.banlist.piece_failed(index, buf, sources, contributors))

    def _apply_bans(self, bans: list[Ban]) -> None:
        t = self.torrent
        for ban in bans:
            peer = t.peers.get(ban.addr)
            if peer is not None:
                t.ban(peer, ban.reason)
            elif ban.proven and self.banlist.add(ban.addr):
                t.emit(alerts.PeerBanned(f"{ban.addr[0]}:{ban.addr[1]}", ban.reason))

    def download_sources(self) -> list[dict[str, Any]]:
        """Payload bytes received per peer this session (including duplicates), largest first:
        every connected peer, and those gone that sent something."""
        t = self.torrent
        connected = {totals_key(p) for p in t.peers.values()}
        rows = [(addr, client, down) for addr, (client, down, _) in t.peer_totals().items()
                if down or addr in connected]
        rows.sort(key=lambda row: -row[2])
        return [{"peer": f"{addr[0]}:{addr[1]}", "client": client, "downloaded": down} for addr, client, down in rows]
