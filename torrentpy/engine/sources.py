"""Where a torrent's peer addresses came from, and the dialling policy built on it.

Every address is recorded with the first source that named it (what the peers panel shows) and counted
once per source that named it (the "found" figures of the header and --json). Dialling prefers addresses
that completed a handshake with us before, then addresses from sources that are harder to forge, and no
single source of unverified third-party addresses may fill every connection slot. Pure: no clock, no I/O."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

Addr = tuple[str, int]

SOURCE_TRACKER = "tracker"
SOURCE_DHT = "dht"
SOURCE_PEX = "pex"
SOURCE_INCOMING = "incoming"  # a peer that dialled us: its address is not dialled back
SOURCE_MANUAL = "manual"  # --peer, or an API caller that did not say
SOURCE_MAGNET = "magnet"  # x.pe of a magnet link
SOURCE_RESUME = "resume"  # peers remembered from an earlier run
SOURCES = (SOURCE_TRACKER, SOURCE_DHT, SOURCE_PEX, SOURCE_INCOMING, SOURCE_MANUAL, SOURCE_MAGNET, SOURCE_RESUME)

# Dial order after "completed a handshake before": what the user named, what we saw ourselves, what a
# tracker vouches for, then what other peers or DHT nodes say (anyone can say anything there).
_RANK = {SOURCE_MANUAL: 0, SOURCE_MAGNET: 0, SOURCE_RESUME: 1, SOURCE_TRACKER: 2, SOURCE_DHT: 3, SOURCE_PEX: 4}
# A hostile peer (PEX) or DHT node can name hundreds of addresses of its own, or of a victim it wants
# flooded with dials. Connections from such a source are capped at this share of max_peers, so the
# other sources always keep some slots; a trackerless torrent still fills the rest from the other one.
SOURCE_SHARE: Mapping[str, float] = {SOURCE_PEX: 0.75, SOURCE_DHT: 0.75}
# Peers that dialled us, remembered by (ip, peer id) to count each once; beyond this they are not told apart.
MAX_INCOMING_REMEMBERED = 4096


def source_cap(source: str, max_peers: int) -> int:
    """How many of a torrent's connections (open or being dialled) may come from `source`."""
    share = SOURCE_SHARE.get(source)
    return max_peers if share is None else max(1, int(max_peers * share))


class PeerSources:
    def __init__(self) -> None:
        self.origin: dict[Addr, str] = {}  # the first source that named an address
        self._named: dict[Addr, set[str]] = {}
        self.found: Counter[str] = Counter()  # distinct addresses each source has named this session
        self.handshaken: set[Addr] = set()  # addresses we dialled that completed a handshake
        self._incoming: set[tuple[str, bytes]] = set()

    def record(self, addr: Addr, source: str) -> None:
        named = self._named.setdefault(addr, set())
        if source not in named:
            named.add(source)
            self.found[source] += 1
        self.origin.setdefault(addr, source)

    def record_incoming(self, ip: str, peer_id: bytes | None) -> None:
        key = (ip, peer_id or b"")
        if key in self._incoming:
            return
        if len(self._incoming) < MAX_INCOMING_REMEMBERED:
            self._incoming.add(key)
        self.found[SOURCE_INCOMING] += 1

    def source_of(self, addr: Addr) -> str:
        return self.origin.get(addr, SOURCE_MANUAL)

    def forget(self, addr: Addr) -> None:
        """The address is gone for good (banned, or a closed incoming connection): keep only its count."""
        self.origin.pop(addr, None)
        self._named.pop(addr, None)
        self.handshaken.discard(addr)

    def prune(self, keep: Iterable[Addr]) -> None:
        """Drop what is recorded of addresses no longer kept anywhere, so the records stay bounded."""
        kept = set(keep)
        for addr in [a for a in self._named if a not in kept]:
            self.forget(addr)

    def dial_order(self, addrs: Iterable[Addr]) -> list[Addr]:
        """Addresses that completed a handshake before first, then by source; otherwise as given."""
        return sorted(addrs, key=lambda a: (a not in self.handshaken, _RANK.get(self.source_of(a), 5)))

    def __len__(self) -> int:
        return len(self._named)
