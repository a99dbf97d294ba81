"""Smart ban: which peer sent the bad block of a piece that failed its hash check.

A piece built from one peer's blocks that fails its hash convicts that peer at once. A piece built from
several peers' blocks can't tell whose block was bad: each contributor gets a strike, and each block's
digest is kept. When the piece later passes (fetched again, from others or the same peers), the peer
whose block differs from the good copy was lying. A peer with MAX_STRIKES strikes is banned anyway,
so a liar that never lets a piece pass is still caught.

A pure structure: no asyncio, no links. Its methods take facts (who sent which block, the piece's
bytes) and return decisions (addresses to ban, with a reason); the downloader applies them."""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass

from torrentpy._core import sha1

Addr = tuple[str, int]

# Failed pieces a peer may be part of before it is banned, when we can't tell whose block was bad.
MAX_STRIKES = 3
BLOCK_SIZE = 16 * 1024


@dataclass(frozen=True, slots=True)
class Ban:
    addr: Addr
    reason: str
    # Its own data was shown to be bad: banned even if it has left. A peer banned on strikes alone is
    # only suspected: it is banned if still connected; gone, it gets a further strike if it comes back.
    proven: bool


class BanList:
    def __init__(self, *, block_size: int = BLOCK_SIZE, max_strikes: int = MAX_STRIKES) -> None:
        self.block_size = block_size
        self.max_strikes = max_strikes
        self.banned: set[Addr] = set()
        self.banned_ids: set[bytes] = set()
        self.strikes: dict[Addr, int] = {}
        # For a piece that failed its hash: which peer sent the block at each offset, and its digest.
        self.suspects: dict[int, dict[int, tuple[Addr, bytes]]] = {}

    def __contains__(self, addr: object) -> bool:
        return addr in self.banned

    def add(self, addr: Addr) -> bool:
        """Ban an address; whether it was not banned before."""
        if addr in self.banned:
            return False
        self.banned.add(addr)
        return True

    def ban(self, addr: Addr, peer_id: bytes | None = None, listen_addr: Addr | None = None) -> None:
        """Ban a connected peer by every name it goes by: its address, its peer id, and the listen
        address an incoming connection announced (so we never dial it back)."""
        self.banned.add(addr)
        if peer_id:
            self.banned_ids.add(peer_id)
        if listen_addr is not None:
            self.banned.add(listen_addr)

    def is_banned_identity(self, peer_id: bytes | None, listen_addr: Addr | None) -> bool:
        """A banned client on a new connection: the same peer id, or an incoming connection whose announced
        listen address is banned (it comes from a fresh source port)."""
        if peer_id and peer_id in self.banned_ids:
            return True
        return listen_addr is not None and listen_addr in self.banned

    def piece_failed(self, index: int, data: bytes | bytearray, sources: Mapping[int, Addr],
                     contributors: Set[Addr]) -> list[Ban]:
        """Piece `index` failed its hash. `sources` maps each block offset to the peer that sent it,
        `contributors` is every peer whose data went into the piece; `data` is the piece as received."""
        if len(contributors) == 1:
            (addr,) = contributors
            return [Ban(addr, f"sent corrupt data for piece {index}", proven=True)]
        view = memoryview(data)
        size = self.block_size
        self.suspects[index] = {begin: (addr, sha1(view[begin : begin + size])) for begin, addr in sources.items()}
        bans = []
        for addr in contributors:
            strikes = self.strikes[addr] = self.strikes.get(addr, 0) + 1
            if strikes >= self.max_strikes:
                bans.append(Ban(addr, f"involved in {strikes} failed pieces", proven=False))
        return bans

    def piece_passed(self, index: int, data: bytes | bytearray) -> list[Ban]:
        """Piece `index` passed: every peer whose block of an earlier failed copy differs from `data` lied."""
        suspects = self.suspects.pop(index, None)
        if not suspects:
            return []
        view = memoryview(data)
        size = self.block_size
        return [Ban(addr, f"sent a corrupt block of piece {index}", proven=True)
                for begin, (addr, digest) in suspects.items() if sha1(view[begin : begin + size]) != digest]
