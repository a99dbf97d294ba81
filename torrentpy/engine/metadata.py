"""Assembling a magnet link's info dictionary from peers (BEP 9, ut_metadata)."""

from __future__ import annotations

import hashlib
import time

METADATA_PIECE = 16 * 1024
# The largest info dictionary we accept from peers; real ones are well under 10 MiB
# (100,000 pieces = 2 MB of hashes). Bounds the buffer a peer can make us allocate.
MAX_METADATA_BYTES = 32 * 1024 * 1024
# A metadata request unanswered this long may be asked of another peer.
REQUEST_TIMEOUT_S = 10.0


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
