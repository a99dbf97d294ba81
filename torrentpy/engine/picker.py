"""Which blocks to request from which peer: rarest first, partial pieces first, endgame at the end.

A plain data structure in the style of libtorrent's piece_picker. It does no I/O and never reads the
clock: every call that records a time takes ``now`` (monotonic seconds) from the caller, and every
random choice goes through the injected ``random.Random`` so a test can replay a run exactly.

Peers are opaque hashable keys (the engine uses ``(ip, port)``). A piece moves through three states:
missing → partial (some blocks requested or received; it lives in ``_partial``) → have (hash passed).
A partial piece whose blocks are all received waits for ``piece_passed`` / ``piece_failed``.
"""

from __future__ import annotations

import random

from torrentpy._core import Availability, Bitfield
from torrentpy.engine.blocks import (
    ACCEPTED,
    DEFAULT_BLOCK_SIZE,
    DUPLICATE,
    FREE,
    RECEIVED,
    REQUESTED,
    Block,
    BlockResult,
    PartialPiece,
    PeerKey,
    PieceProgress,
    most_complete_first,
)
from torrentpy.engine.priority import PiecePriorities, sequential_candidates, sequential_window
from torrentpy.engine.rarity import RarityIndex, random_startable

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "STALE_REQUEST_S",
    "Block",
    "BlockResult",
    "PiecePicker",
    "PieceProgress",
]

# A peer can keep sending blocks we cancelled or gave up on; we remember that many per peer so a late
# arrival is not mistaken for unrequested data, without letting a hostile peer grow our memory.
LATE_REQUESTS_LIMIT = 1024

# Ranking pieces by rarity costs a scan of the whole torrent; rank this many at a time per peer and reuse
# the ranking for this long.
RAREST_BATCH = 8
RAREST_REUSE_S = 1.0
# Bytes of partial pieces (each holds a piece buffer) at which peers share pieces rather than each starting
# its own, and past which no piece is started until one finishes (max_partial). Fifty seeders sharing 32 MiB
# of requests used to start a piece whenever every open block was asked for: 77 buffers at once, 120 MiB RSS
# for a 1 GiB leech that needs 56 MiB with one seeder.
PARTIAL_BUFFER_BYTES = 32 * 1024 * 1024
# At that bound a peer with nothing to share may race a block another peer has held this long: a slow peer
# with one block in each of the pieces under way would otherwise hold the download to its pace.
STALE_REQUEST_S = 2.0

class PiecePicker:
    def __init__(self, num_pieces: int, piece_length: int, total_length: int, *,
                 block_size: int = DEFAULT_BLOCK_SIZE, rng: random.Random | None = None,
                 random_first: int = 4, have: Bitfield | None = None, endgame_copies: int = 2,
                 max_partial: int | None = None) -> None:
        if num_pieces < 0 or piece_length <= 0 or block_size <= 0:
            raise ValueError("piece count, piece length and block size must be positive")
        if num_pieces and not (piece_length * (num_pieces - 1) < total_length <= piece_length * num_pieces):
            raise ValueError(
                f"total length {total_length} does not fit {num_pieces} pieces of {piece_length} bytes")
        if not num_pieces and total_length:
            raise ValueError("a torrent without pieces has no bytes")
        if endgame_copies < 1:
            raise ValueError("endgame_copies must be at least 1")
        self.num_pieces = num_pieces
        self.piece_length = piece_length
        self.total_length = total_length
        self.block_size = block_size
        self.random_first = random_first
        self.endgame_copies = endgame_copies
        # At this many partial pieces peers share pieces, and start no new one (see at_capacity).
        self.max_partial = max_partial or max(8, PARTIAL_BUFFER_BYTES // piece_length)
        # No request can have been held STALE_REQUEST_S before this (see _pick_stale).
        self._stale_from = 0.0
        # Bumped when a block may have become an endgame candidate: a peer whose scan found none waits for it.
        self._endgame_gen = 0
        self._endgame_empty: dict[PeerKey, int] = {}
        self._rng = rng if rng is not None else random.Random()
        self._blocks_per_piece = -(-piece_length // block_size)
        self._last_piece_length = total_length - piece_length * (num_pieces - 1) if num_pieces else 0
        self._last_piece_blocks = -(-self._last_piece_length // block_size)

        if have is not None and len(have) != num_pieces:
            raise ValueError("have bitfield size does not match the torrent")
        self.have: Bitfield = have.copy() if have is not None else Bitfield(num_pieces)
        self.availability = Availability(num_pieces)
        self._have_bytes = sum(self.piece_size(i) for i in self.have)
        # Pieces that are not candidates for a fresh start: have | partial.
        self._busy = self.have.copy()
        self._peers: dict[PeerKey, Bitfield] = {}
        self._partial: dict[int, PartialPiece] = {}
        # Partial pieces with at least one free block; insertion order = age, so old pieces finish first.
        self._open: dict[int, PartialPiece] = {}
        # Open pieces nobody is downloading right now (abandoned by a peer that left or timed out).
        self._orphans: dict[int, PartialPiece] = {}
        self._out: dict[PeerKey, dict[tuple[int, int], float]] = {}  # peer -> (piece, block) -> asked at
        self._peer_pieces: dict[PeerKey, dict[int, None]] = {}  # peer -> pieces it has requests in
        self._late: dict[PeerKey, dict[tuple[int, int], None]] = {}
        self._rarest_cache: dict[PeerKey, tuple[float, list[int]]] = {}
        self._rarity = RarityIndex(num_pieces)  # startable pieces by availability, O(1) a change
        # File selection: which pieces to fetch at all, in which order (engine/priority.py).
        self.priorities = PiecePriorities(num_pieces, self.have)
        self._left = total_length - self._have_bytes
        self._wanted_total = total_length
        self.sequential = False
        self.sequential_window = sequential_window(piece_length)

    # ---- geometry ----------------------------------------------------------------------------------

    def piece_size(self, index: int) -> int:
        return self._last_piece_length if index == self.num_pieces - 1 else self.piece_length

    def blocks_in_piece(self, index: int) -> int:
        return self._last_piece_blocks if index == self.num_pieces - 1 else self._blocks_per_piece

    def _block(self, index: int, b: int) -> Block:
        begin = b * self.block_size
        size = self._last_piece_length if index == self.num_pieces - 1 else self.piece_length
        return Block(index, begin, min(self.block_size, size - begin))

    def _locate(self, block: Block) -> int:
        """The block number of ``block``; ValueError when it does not match the torrent's geometry."""
        index, begin, length = block
        if length == self.block_size and 0 <= index < self.num_pieces - 1 and \
                0 <= begin <= self.piece_length - length and not begin % length:
            return begin // length  # a full block of a full piece: the checks below, once per block
        if not 0 <= index < self.num_pieces:
            raise ValueError(f"block piece index {index} out of range")
        b, rem = divmod(begin, self.block_size)
        if rem or not 0 <= b < self.blocks_in_piece(index):
            raise ValueError(f"block offset {begin} is not a block boundary of piece {index}")
        if length != min(self.block_size, self.piece_size(index) - begin):
            raise ValueError(f"block length {length} is wrong for piece {index} offset {begin}")
        return b

    # ---- peers -------------------------------------------------------------------------------------

    def add_peer(self, key: PeerKey, bitfield: Bitfield | None = None) -> None:
        """Register a peer (or replace its bitfield, e.g. a BITFIELD after HAVE_NONE). The picker keeps its
        own copy so availability can be undone exactly when the peer leaves."""
        bf = bitfield.copy() if bitfield is not None else Bitfield(self.num_pieces)
        if len(bf) != self.num_pieces:
            raise ValueError("peer bitfield size does not match the torrent")
        old = self._peers.get(key)
        if old is not None:
            self.availability.remove_peer(old)
        self.availability.add_peer(bf)
        self._rarity.invalidate()
        self._peers[key] = bf
        self._endgame_gen += 1
        self._rarest_cache.pop(key, None)
        self._out.setdefault(key, {})
        self._peer_pieces.setdefault(key, {})

    def peer_have(self, key: PeerKey, index: int) -> bool:
        """A HAVE from ``key``. Returns True when it is a piece we lack (the peer may now be interesting)."""
        bf = self._peers[key]
        if not bf.get(index):
            bf.set(index)
            self.availability.increment(index)
            self._rarity.recount(index, self.availability[index])
            self._rarest_cache.pop(key, None)
            self._endgame_gen += 1
        return not self.priorities.needless.get(index)

    def peer_bitfield(self, key: PeerKey) -> Bitfield:
        return self._peers[key]

    def peers(self) -> list[PeerKey]:
        return list(self._peers)

    def remove_peer(self, key: PeerKey) -> list[Block]:
        """Forget a peer; its outstanding blocks become requestable again (returned)."""
        bf = self._peers.pop(key, None)
        if bf is not None:
            self.availability.remove_peer(bf)
            self._rarity.invalidate()
        released = [self._block(i, b) for (i, b) in self._out.get(key, ())]
        for i, b in list(self._out.get(key, ())):
            self._release(key, i, b)
        self._out.pop(key, None)
        self._peer_pieces.pop(key, None)
        self._late.pop(key, None)
        self._rarest_cache.pop(key, None)
        self._endgame_empty.pop(key, None)
        return released

    def is_interesting(self, peer_bitfield: Bitfield) -> bool:
        return peer_bitfield.has_any_missing_from(self.priorities.needless)

    def set_piece_levels(self, levels: bytes | None) -> None:
        """Which pieces to download and in which order: one level per piece (0 skip, 1 low, 2 normal,
        3 high), or None for all normal. Pieces under way keep going; skipped ones are never started."""
        pr = self.priorities
        pr.set_levels(levels, self.have)
        self._busy = self.have | pr.skip
        for i in self._partial:
            self._busy.set(i)
        self._left = sum(self.piece_size(i) for i in pr.needless.missing())
        self._wanted_total = sum(self.piece_size(i) for i in pr.skip.missing())
        self._rarest_cache.clear()
        self._rarity.invalidate()

    # ---- request bookkeeping -----------------------------------------------------------------------

    def _start(self, index: int) -> PartialPiece:
        p = PartialPiece(index, self.blocks_in_piece(index))
        self._partial[index] = p
        self._busy.set(index)
        self._rarity.discard(index)
        return p

    def _sync(self, p: PartialPiece) -> None:
        """Re-file ``p`` in the open / orphan indexes after its blocks changed."""
        index = p.index
        if self._partial.get(index) is not p:
            return
        if p.received == 0 and not p.requesters:
            # Nothing of it is here or on its way: back to the pool, so rarest-first can choose it afresh.
            del self._partial[index]
            self._open.pop(index, None)
            self._orphans.pop(index, None)
            if not self.priorities.needless.get(index):
                self._busy.clear(index)
                self._rarity.add(index, self.availability[index])
            return
        if p.free:
            if index not in self._open:
                self._open[index] = p
            if p.downloaders:
                self._orphans.pop(index, None)
            elif index not in self._orphans:
                self._orphans[index] = p
        else:
            self._open.pop(index, None)
            self._orphans.pop(index, None)

    def _add_request(self, p: PartialPiece, b: int, key: PeerKey, mine: dict[tuple[int, int], float],
                     now: float) -> Block:
        reqs = p.requesters.get(b)
        if reqs is None:
            p.requesters[b] = [key]
            p.state[b] = REQUESTED
            p.free -= 1
        else:
            reqs.append(key)
        n = p.downloaders.get(key, 0)
        p.downloaders[key] = n + 1
        if not n:
            self._peer_pieces[key][p.index] = None
        mine[(p.index, b)] = now
        late = self._late.get(key)
        if late:
            late.pop((p.index, b), None)
        return self._block(p.index, b)

    def _drop_request(self, p: PartialPiece, b: int, key: PeerKey) -> None:
        """Remove ``key`` from block ``b``'s requesters (not from ``_out``: the caller does that)."""
        reqs = p.requesters.get(b)
        if not reqs or key not in reqs:
            return
        reqs.remove(key)
        if not reqs:
            del p.requesters[b]
            if p.state[b] == REQUESTED:
                p.state[b] = FREE
                p.free += 1
        n = p.downloaders[key] - 1
        if n:
            p.downloaders[key] = n
        else:
            del p.downloaders[key]
            pieces = self._peer_pieces.get(key)
            if pieces is not None:
                pieces.pop(p.index, None)

    def _remember_late(self, key: PeerKey, k: tuple[int, int]) -> None:
        late = self._late.setdefault(key, {})
        late[k] = None
        if len(late) > LATE_REQUESTS_LIMIT:
            del late[next(iter(late))]

    def _release(self, key: PeerKey, index: int, b: int) -> bool:
        mine = self._out.get(key)
        if mine is None or mine.pop((index, b), None) is None:
            return False
        self._endgame_gen += 1
        p = self._partial.get(index)
        if p is not None:
            self._drop_request(p, b, key)
            self._sync(p)
        return True

    def _take_free(self, p: PartialPiece, key: PeerKey, mine: dict[tuple[int, int], float], n: int,
                   now: float, out: list[Block]) -> None:
        state = p.state
        pos = 0
        while n > 0 and p.free:
            b = state.find(FREE, pos)
            if b < 0:
                break
            out.append(self._add_request(p, b, key, mine, now))
            n -= 1
            pos = b + 1
        self._sync(p)

    # ---- picking -----------------------------------------------------------------------------------

    def pick(self, key: PeerKey, count: int, *, now: float) -> list[Block]:
        """Up to ``count`` new requests for ``key``. Order of preference: partial pieces this peer is
        downloading or nobody is (most complete first), new pieces (random for the first
        ``random_first`` pieces, then rarest first), blocks of pieces other peers are downloading, and in
        endgame blocks already requested from others."""
        bf = self._peers[key]
        mine = self._out[key]
        out: list[Block] = []
        if count <= 0:
            return out

        # 1. Finish what this peer (or nobody) is working on, to keep few pieces partial.
        if self._open:
            own = [self._open[i] for i in self._peer_pieces[key] if i in self._open and bf.get(i)]
            own.extend(p for p in self._orphans.values() if bf.get(p.index))
            if own:
                if len(own) > 1:
                    own.sort(key=most_complete_first)
                for p in own:
                    self._take_free(p, key, mine, count - len(out), now, out)
                    if len(out) >= count:
                        return out

        crowded = len(self._partial) >= self.max_partial  # then 3 (share) comes before 2 (start new)
        if crowded and self._share(key, bf, mine, count, now, out):
            return out

        # 2. Start new pieces: in order in sequential mode, else by priority, then rarest first.
        if not self._busy.all() and not (crowded and self.at_capacity()):
            # With one priority, draw or walk the rarity index instead of listing the torrent; None means
            # that gave up and the pools below list it.
            found, wanted = None, -(-(count - len(out)) // self._blocks_per_piece)
            if not (self.sequential or self.priorities.masks):
                found = random_startable(bf, self._busy, wanted, self._rng) \
                    if self.have.count() < self.random_first else \
                    self._rarity.rarest(bf, wanted, self._rng, self.availability, self._busy)
            for i in found or ():
                if self.at_capacity():
                    break
                self._take_free(self._start(i), key, mine, count - len(out), now, out)
                if len(out) >= count:
                    return out
            pools = self.priorities.classes(bf - self._busy, sequential=self.sequential) if found is None else ()
            for pool in pools:
                if self.at_capacity():
                    break
                need = count - len(out)
                wanted = -(-need // self._blocks_per_piece)
                if self.sequential:
                    indexes = sequential_candidates(self.priorities, bf, pool, wanted, self.num_pieces,
                                                    self.sequential_window)
                elif self.have.count() < self.random_first:
                    # Early on any complete piece is worth more than a rare one: it lets us trade.
                    pool_list = list(pool)
                    indexes = self._rng.sample(pool_list, min(wanted, len(pool_list)))
                else:
                    indexes = self._rarest(key, pool, wanted, now)
                for i in indexes:
                    if self.at_capacity():
                        break
                    self._take_free(self._start(i), key, mine, count - len(out), now, out)
                    if len(out) >= count:
                        return out

        # 3. Share pieces other peers are downloading, block by block.
        if not crowded and self._share(key, bf, mine, count, now, out):
            return out

        # 4. Endgame: everything missing is requested; race other peers for the slow blocks.
        if self.in_endgame():
            self._pick_endgame(key, bf, mine, count - len(out), now, out)
        elif crowded and len(out) < count and self.at_capacity():
            self._pick_stale(key, bf, mine, count - len(out), now, out)
        return out

    def _share(self, key: PeerKey, bf: Bitfield, mine: dict[tuple[int, int], float], count: int, now: float,
               out: list[Block]) -> bool:
        """Free blocks of open pieces `key` has, most complete first; True once `out` holds `count`."""
        shared = [p for p in self._open.values() if bf.get(p.index)]
        shared.sort(key=most_complete_first)
        for p in shared:
            self._take_free(p, key, mine, count - len(out), now, out)
            if len(out) >= count:
                return True
        return False

    def _rarest(self, key: PeerKey, fresh: Bitfield, wanted: int, now: float) -> list[int]:
        """The ``wanted`` rarest pieces in ``fresh``. Ranking scans every piece, so a batch is ranked at
        once and reused for up to RAREST_REUSE_S; stale entries (started since, or no longer the peer's)
        are skipped, and rarity a second old is still a fine guide."""
        cached = self._rarest_cache.get(key)
        indexes: list[int] = []
        if cached is not None and now - cached[0] < RAREST_REUSE_S:
            order = cached[1]
            while order and len(indexes) < wanted:
                i = order.pop()
                if fresh.get(i):
                    indexes.append(i)
            if len(indexes) == wanted:
                return indexes
        ranked = self.availability.rarest(fresh, max(wanted, RAREST_BATCH), self._rng)
        ranked = [i for i in ranked if i not in indexes]
        take = wanted - len(indexes)
        indexes.extend(ranked[:take])
        rest = ranked[take:]
        rest.reverse()  # popped from the end
        self._rarest_cache[key] = (now, rest)
        return indexes

    def _pick_endgame(self, key: PeerKey, bf: Bitfield, mine: dict[tuple[int, int], float], n: int,
                      now: float, out: list[Block]) -> None:
        if self._endgame_empty.get(key) == self._endgame_gen:
            return  # nothing has moved since this peer's last scan found no block to race for
        if not self._race(key, bf, mine, n, now, out, copies=self.endgame_copies, asked_by=now):
            self._endgame_empty[key] = self._endgame_gen

    def _pick_stale(self, key: PeerKey, bf: Bitfield, mine: dict[tuple[int, int], float], n: int,
                    now: float, out: list[Block]) -> None:
        """At the partial-piece bound with nothing to share: a second request for blocks one other peer has
        held for STALE_REQUEST_S, so pieces waiting on a slow peer finish and make room."""
        if now < self._stale_from:
            return
        cutoff = now - STALE_REQUEST_S
        # A peer's requests are kept in the order they were made: its first is its oldest.
        oldest = min((next(iter(asked.values())) for asked in self._out.values() if asked), default=now)
        if oldest > cutoff:
            # Requests made from now on are younger: none can be stale before the oldest one is.
            self._stale_from = oldest + STALE_REQUEST_S
            return
        self._race(key, bf, mine, n, now, out, copies=2, asked_by=cutoff)

    def _race(self, key: PeerKey, bf: Bitfield, mine: dict[tuple[int, int], float], n: int, now: float,
              out: list[Block], *, copies: int, asked_by: float) -> bool:
        """Up to `n` more requests for blocks other peers have outstanding, with fewer than `copies`
        requests out and first asked no later than `asked_by`: fewest copies first, then the request that
        has waited longest (most likely stuck). False when no block qualified."""
        choices: list[tuple[int, float, int, int]] = []
        for p in self._partial.values():  # oldest first: enough candidates there, stop looking
            if len(choices) >= 4 * n + 16:
                break
            if p.received == p.num_blocks or not bf.get(p.index):
                continue
            for b, reqs in p.requesters.items():
                if len(reqs) < copies and key not in reqs:
                    asked = min(self._out[r].get((p.index, b), now) for r in reqs)
                    if asked <= asked_by:
                        choices.append((len(reqs), asked, p.index, b))
        choices.sort()
        for _copies, _asked, index, b in choices[:n]:
            out.append(self._add_request(self._partial[index], b, key, mine, now))
        return bool(choices)

    # ---- events ------------------------------------------------------------------------------------

    def on_block(self, key: PeerKey, block: Block) -> BlockResult:
        """``key`` sent us ``block``. Raises ValueError if the block does not fit the torrent."""
        b = self._locate(block)
        index = block[0]
        k = (index, b)
        mine = self._out.get(key)
        unrequested = mine is None or mine.pop(k, None) is None
        if unrequested:
            late = self._late.get(key)
            if late and k in late:
                del late[k]
                unrequested = False
        if self.have.get(index):
            return DUPLICATE[unrequested]
        p = self._partial.get(index)
        if p is None:
            p = self._start(index)
        state = p.state
        if state[b] == RECEIVED:
            return DUPLICATE[unrequested]
        cancel: list[tuple[PeerKey, Block]] = []
        reqs = p.requesters.get(b)
        if reqs:
            if len(reqs) == 1 and reqs[0] == key:
                # The usual case, inlined: only this peer had asked for the block.
                del p.requesters[b]
                n = p.downloaders[key] - 1
                if n:
                    p.downloaders[key] = n
                else:
                    del p.downloaders[key]
                    self._peer_pieces[key].pop(index, None)
            else:
                blk = self._block(index, b)
                for other in list(reqs):
                    self._drop_request(p, b, other)
                    if other != key:
                        self._out[other].pop(k, None)
                        self._remember_late(other, k)
                        cancel.append((other, blk))
        if state[b] == FREE:
            p.free -= 1
        state[b] = RECEIVED
        p.received += 1
        p.contributors.add(key)
        self._sync(p)
        complete = p.received == p.num_blocks
        if cancel:
            return BlockResult(piece_complete=complete, cancel=tuple(cancel), unrequested=unrequested)
        return ACCEPTED[complete][unrequested]

    def on_reject(self, key: PeerKey, block: Block) -> bool:
        """The peer rejected (or choked away) a request; the block is requestable again. Returns False
        when the block was not outstanding with that peer."""
        return self._release(key, block[0], self._locate(block))

    def on_timeout(self, key: PeerKey, block: Block) -> bool:
        """Give up waiting on ``key`` for ``block``: others may request it now. If the data still arrives
        from ``key`` it is accepted and not counted as unrequested."""
        b = self._locate(block)
        if self._release(key, block[0], b):
            self._remember_late(key, (block[0], b))
            return True
        return False

    def piece_passed(self, index: int) -> list[tuple[PeerKey, Block]]:
        """The piece hashed fine (or was found on disk). Returns requests still outstanding for it, to
        cancel (normally none)."""
        cancel = self._forget_piece(index)
        if not self.have.get(index):
            self.have.set(index)
            self._have_bytes += self.piece_size(index)
            if self.priorities.passed(index):
                self._left -= self.piece_size(index)
        self._busy.set(index)
        self._rarity.discard(index)
        return cancel

    def piece_failed(self, index: int) -> set[PeerKey]:
        """The piece failed its hash: download it again. Returns the peers whose data was in it."""
        p = self._partial.get(index)
        contributors = set(p.contributors) if p is not None else set()
        self._forget_piece(index)
        if not self.priorities.needless.get(index):
            self._busy.clear(index)
            self._rarity.add(index, self.availability[index])
        return contributors

    def _forget_piece(self, index: int) -> list[tuple[PeerKey, Block]]:
        p = self._partial.pop(index, None)
        self._open.pop(index, None)
        self._orphans.pop(index, None)
        cancel: list[tuple[PeerKey, Block]] = []
        if p is None:
            return cancel
        for b, reqs in p.requesters.items():
            for other in reqs:
                self._out[other].pop((index, b), None)
                self._remember_late(other, (index, b))
                pieces = self._peer_pieces.get(other)
                if pieces is not None:
                    pieces.pop(index, None)
                cancel.append((other, self._block(index, b)))
        return cancel

    # ---- queries -----------------------------------------------------------------------------------

    def outstanding(self, key: PeerKey) -> list[Block]:
        return [self._block(i, b) for (i, b) in self._out.get(key, ())]

    def outstanding_count(self, key: PeerKey) -> int:
        """How many requests are out to ``key``; O(1), called on every received block."""
        return len(self._out.get(key, ()))

    def timed_out(self, now: float, timeout_s: float) -> list[tuple[PeerKey, Block]]:
        """Requests older than ``timeout_s``, oldest first. The engine decides what to do (usually
        ``on_timeout`` plus CANCEL, and marking the peer snubbed)."""
        old = [(t, n, key, k) for n, (key, reqs) in enumerate(self._out.items())
               for k, t in reqs.items() if now - t >= timeout_s]
        old.sort(key=lambda item: (item[0], item[1]))
        return [(key, self._block(*k)) for _t, _n, key, k in old]

    def requested_at(self, key: PeerKey, block: Block) -> float | None:
        return self._out.get(key, {}).get((block[0], self._locate(block)))

    def done(self) -> bool:
        """Every wanted piece is in (all of them unless a file selection skips some)."""
        return self._left == 0

    def in_endgame(self) -> bool:
        """True when every missing wanted block is requested or received."""
        return self._busy.all() and not self._open and self._left > 0

    def at_capacity(self) -> bool:
        """Whether the partial pieces fill the memory bound, so ``pick`` starts none: a peer with nothing to
        share waits until a piece passes or fails. Orphans do not count: if no connected peer has one,
        it would otherwise hold its slot, and with enough of them the download, forever."""
        return len(self._partial) - len(self._orphans) >= self.max_partial

    def partial_pieces(self) -> list[PieceProgress]:
        return [PieceProgress(p.index, p.num_blocks, p.received, len(p.requesters))
                for p in self._partial.values()]

    def downloading_pieces(self) -> set[int]:
        return set(self._partial)

    def left_bytes(self) -> int:
        """Bytes of wanted pieces still missing."""
        return self._left

    def wanted_bytes(self) -> int:
        """Bytes of the wanted pieces, had or not (Transmission's sizeWhenDone)."""
        return self._wanted_total

    def have_bytes(self) -> int:
        return self._have_bytes

    def block_map(self, index: int) -> str:
        """One character per block: '.' free, 'r' requested (a digit when requested from several peers in
        endgame), 'x' received. For detailed piece views and test pictures."""
        n = self.blocks_in_piece(index)
        if self.have.get(index):
            return "x" * n
        p = self._partial.get(index)
        if p is None:
            return "." * n
        copies = {b: len(reqs) for b, reqs in p.requesters.items()}
        return "".join("x" if st == RECEIVED else "." if st == FREE else
                       "r" if copies[b] == 1 else str(min(copies[b], 9)) for b, st in enumerate(p.state))

    def pieces_awaiting_hash(self) -> list[int]:
        return [i for i, p in self._partial.items() if p.received == p.num_blocks]

    def check_invariants(self) -> None:
        """Raise AssertionError when internal indexes disagree (tests call this after every step)."""
        for index, p in self._partial.items():
            assert not self.have.get(index), f"piece {index} both had and partial"
            assert self._busy.get(index)
            assert p.received == p.state.count(RECEIVED)
            assert p.free == p.state.count(FREE)
            assert set(p.requesters) == {b for b, s in enumerate(p.state) if s == REQUESTED}
            for b, reqs in p.requesters.items():
                assert p.state[b] == REQUESTED and reqs and len(set(reqs)) == len(reqs)
                for r in reqs:
                    assert (index, b) in self._out[r]
            assert (index in self._open) == (p.free > 0)
            assert (index in self._orphans) == (p.free > 0 and not p.downloaders)
        for key, asked in self._out.items():
            for index, b in asked:
                assert key in self._partial[index].requesters[b]
            assert set(self._peer_pieces.get(key, {})) == {i for i, _b in asked}
        busy = self.have | self.priorities.skip
        for i in self._partial:
            busy.set(i)
        assert self._busy.to_bytes() == busy.to_bytes()
        assert self._left == sum(self.piece_size(i) for i in self.priorities.needless.missing())
        self._rarity.check(self.availability, self._busy)

