"""Assembling a magnet link's info dictionary from peers (BEP 9, ut_metadata)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from torrentpy.protocol import events as ev

if TYPE_CHECKING:
    from torrentpy.engine.peer import Peer

METADATA_PIECE = 16 * 1024
# The largest info dictionary we accept from peers; real ones are well under 10 MiB
# (100,000 pieces = 2 MB of hashes). Bounds the buffer a peer can make us allocate.
MAX_METADATA_BYTES = 32 * 1024 * 1024
# A metadata request unanswered this long may be asked of another peer.
REQUEST_TIMEOUT_S = 10.0
# ut_metadata requests one connection may make: a 10 MiB info dict is 640 pieces, asked for twice at most.
MAX_METADATA_REQUESTS = 2000


class MetadataAssembler:
    def __init__(self, info_hash: bytes) -> None:
        self.info_hash = info_hash
        self.size: int | None = None
        self.pieces: dict[int, bytes] = {}
        self.requested: dict[int, float] = {}
        self.untrusted: set[tuple[str, int]] = set()
        self.sources: dict[int, tuple[str, int]] = {}
        # Pieces each peer rejected: asking it again at once would starve the peers that have them.
        self.declined: dict[tuple[str, int], set[int]] = {}

    @property
    def num_pieces(self) -> int:
        return 0 if self.size is None else (self.size + METADATA_PIECE - 1) // METADATA_PIECE

    def set_size(self, size: int | None) -> bool:
        if not size or size <= 0 or size > MAX_METADATA_BYTES:
            return False
        if self.size is None:
            self.size = size
        return self.size == size

    def next_requests(self, addr: tuple[str, int], limit: int = 4) -> list[int]:
        if self.size is None or addr in self.untrusted:
            return []
        now = time.monotonic()
        out = []
        declined = self.declined.get(addr, ())
        for piece in range(self.num_pieces):
            if piece in self.pieces or piece in declined:
                continue
            if now - self.requested.get(piece, -1e9) < REQUEST_TIMEOUT_S:
                continue
            self.requested[piece] = now
            out.append(piece)
            if len(out) >= limit:
                break
        return out

    def rejected(self, addr: tuple[str, int], piece: int) -> None:
        self.requested.pop(piece, None)
        self.declined.setdefault(addr, set()).add(piece)

    def received(self, addr: tuple[str, int], piece: int, total_size: int, data: bytes) -> bytes | bool | None:
        """None: need more; False: the assembled data failed the info-hash check;
        bytes: the complete, verified info dictionary."""
        if self.size is None or total_size != self.size or addr in self.untrusted:
            return None
        if not 0 <= piece < self.num_pieces or piece in self.pieces:
            return None
        expected = min(METADATA_PIECE, self.size - piece * METADATA_PIECE)
        if len(data) != expected:
            return None
        self.pieces[piece] = data
        self.sources[piece] = addr
        self.requested.pop(piece, None)
        if len(self.pieces) < self.num_pieces:
            return None
        info = b"".join(self.pieces[i] for i in range(self.num_pieces))
        if hashlib.sha1(info).digest() == self.info_hash:
            return info
        self.untrusted.update(self.sources.values())
        # The size may have come from a lying peer too: let the next peer's announcement set it.
        self.size = None
        self.pieces.clear()
        self.sources.clear()
        self.requested.clear()
        return False


class MetadataExchange:
    """BEP 9 both ways for one torrent: serve our info dictionary to peers that ask, and, for a magnet
    link, fetch it from the peers that announce a metadata size.

    `on_verified` receives the assembled dictionary once its SHA-1 matches the info-hash; becoming a
    real torrent from it (parsing, storage, picker) is the torrent's business. The torrent then calls
    `finish()`."""

    def __init__(self, info_hash: bytes, *, fetch: bool, on_verified: Callable[[bytes], None]) -> None:
        self.assembler = MetadataAssembler(info_hash) if fetch else None
        self._on_verified = on_verified

    @property
    def fetching(self) -> bool:
        return self.assembler is not None

    def finish(self) -> None:
        """The info dictionary is ours: stop asking for it."""
        self.assembler = None

    def request(self, peer: Peer) -> None:
        """Ask the peer for the pieces of the dictionary nobody is fetching, if it announced a size."""
        if self.assembler is None:
            return
        size = peer.conn.peer_metadata_size
        if peer.addr in self.assembler.untrusted:
            return  # it sent bad metadata: its size must not win over an honest peer's either
        if not self.assembler.set_size(size):
            return
        for piece in self.assembler.next_requests(peer.addr):
            peer.link.write(peer.conn.send_metadata_request(piece))

    def tick(self, peers: Iterable[Peer]) -> None:
        if self.assembler is None:
            return
        # A piece rejected, left unanswered or assembled into bad metadata is asked of the others
        # here: nothing else would ask a peer that connected while the piece was out elsewhere.
        for peer in list(peers):
            if peer.conn.peer_metadata_size and not peer.link.closed:
                self.request(peer)

    def on_event(self, peer: Peer, event: ev.Event, info: bytes | None) -> str | None:
        """Handle a ut_metadata message; `info` is our info dictionary if we have it.
        Returns why the peer must be dropped, or None."""
        if isinstance(event, ev.MetadataRequest):
            peer.metadata_requests += 1
            if peer.metadata_requests > MAX_METADATA_REQUESTS:
                # Each request costs one byte-sized message and returns 16 KiB: cap the amplification.
                return "metadata request flood"
            start = event.piece * METADATA_PIECE
            if info is None or start >= len(info):
                peer.link.write(peer.conn.send_metadata_reject(event.piece))
                return None
            peer.link.write(peer.conn.send_metadata_data(event.piece, len(info), info[start : start + METADATA_PIECE]))
            return None
        if self.assembler is None:
            return None
        if isinstance(event, ev.MetadataReject):
            self.assembler.rejected(peer.addr, event.piece)
            return None
        assert isinstance(event, ev.MetadataData)
        outcome = self.assembler.received(peer.addr, event.piece, event.total_size, bytes(event.data))
        if outcome is None:
            self.request(peer)
        elif isinstance(outcome, bytes):  # False: bad metadata; the assembler restarts, distrusting its senders
            self._on_verified(outcome)
        return None
