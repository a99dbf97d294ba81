"""Swarm bookkeeping for the built-in tracker. Pure: the clock is passed in, no I/O."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from torrentpy.protocol.tracker_http import ScrapeStats, encode_compact_peers

__all__ = [
    "MAX_NUMWANT",
    "MAX_PEERS_PER_SWARM",
    "MAX_SWARMS",
    "AnnounceResult",
    "PeerEntry",
    "RegistryFull",
    "SwarmRegistry",
    "encode_compact_peers",
]

# Bounds keep a hostile announcer from growing the tracker's memory without limit: 10k swarms × 5k peers
# is the worst case (~50M entries would be too much; real use here is a few swarms on loopback).
MAX_SWARMS = 10_000
MAX_PEERS_PER_SWARM = 5_000
# A compact answer of 200 peers is 1.2 KB (fits one UDP datagram); nobody needs more per announce.
MAX_NUMWANT = 200
DEFAULT_NUMWANT = 50


class RegistryFull(Exception):
    """No room for a new swarm or peer; reported to the announcer as a failure reason."""


@dataclass(slots=True)
class PeerEntry:
    peer_id: bytes
    left: int
    last_seen: float


@dataclass(slots=True)
class Swarm:
    peers: dict[tuple[str, int], PeerEntry] = field(default_factory=dict)
    downloaded: int = 0

    def counts(self) -> tuple[int, int]:
        seeders = sum(1 for p in self.peers.values() if p.left == 0)
        return seeders, len(self.peers) - seeders


@dataclass(frozen=True, slots=True)
class AnnounceResult:
    peers: list[tuple[str, int, bytes]]  # (ip, port, peer_id)
    complete: int
    incomplete: int
    interval_s: int


class SwarmRegistry:
    def __init__(
        self,
        interval_s: int = 1800,
        *,
        max_swarms: int = MAX_SWARMS,
        max_peers_per_swarm: int = MAX_PEERS_PER_SWARM,
        rng: random.Random | None = None,
    ) -> None:
        self.interval_s = interval_s
        self.max_swarms = max_swarms
        self.max_peers_per_swarm = max_peers_per_swarm
        self._rng = rng or random.Random()
        self._swarms: dict[bytes, Swarm] = {}

    @property
    def expiry_s(self) -> float:
        # A peer that missed two announces in a row is gone.
        return 2.0 * self.interval_s

    def announce(
        self,
        info_hash: bytes,
        ip: str,
        port: int,
        peer_id: bytes,
        left: int,
        event: str,
        numwant: int,
        now: float,
    ) -> AnnounceResult:
        swarm = self._swarms.get(info_hash)
        if swarm is None:
            if event == "stopped":
                return AnnounceResult([], 0, 0, self.interval_s)
            if len(self._swarms) >= self.max_swarms:
                self.expire(now)
                if len(self._swarms) >= self.max_swarms:
                    raise RegistryFull("tracker is tracking too many torrents")
            swarm = self._swarms[info_hash] = Swarm()
        self._expire_swarm(swarm, now)
        key = (ip, port)
        if event == "stopped":
            swarm.peers.pop(key, None)
        else:
            entry = swarm.peers.get(key)
            if entry is None:
                if len(swarm.peers) >= self.max_peers_per_swarm:
                    raise RegistryFull("swarm is full")
                swarm.peers[key] = PeerEntry(peer_id, max(0, left), now)
                swarm.downloaded += event == "completed"
            else:
                swarm.downloaded += entry.left > 0 and left <= 0
                entry.peer_id, entry.left, entry.last_seen = peer_id, max(0, left), now
        if not swarm.peers:
            del self._swarms[info_hash]
            return AnnounceResult([], 0, 0, self.interval_s)

        want = DEFAULT_NUMWANT if numwant < 0 else min(numwant, MAX_NUMWANT)
        others = [k for k in swarm.peers if k != key]
        if event == "stopped":
            want = 0
        chosen = self._rng.sample(others, min(want, len(others)))
        seeders, leechers = swarm.counts()
        return AnnounceResult(
            peers=[(ip_, port_, swarm.peers[(ip_, port_)].peer_id) for ip_, port_ in chosen],
            complete=seeders,
            incomplete=leechers,
            interval_s=self.interval_s,
        )

    def scrape(self, info_hash: bytes, now: float) -> ScrapeStats:
        swarm = self._swarms.get(info_hash)
        if swarm is None:
            return ScrapeStats(0, 0, 0)
        self._expire_swarm(swarm, now)
        seeders, leechers = swarm.counts()
        return ScrapeStats(complete=seeders, downloaded=swarm.downloaded, incomplete=leechers)

    def peers(self, info_hash: bytes) -> dict[tuple[str, int], PeerEntry]:
        """A copy of one swarm's peers (for tests and display)."""
        swarm = self._swarms.get(info_hash)
        return dict(swarm.peers) if swarm else {}

    def info_hashes(self) -> list[bytes]:
        return list(self._swarms)

    def expire(self, now: float) -> int:
        """Drop peers not seen for two intervals and empty swarms; returns the number of peers dropped."""
        dropped = 0
        for info_hash, swarm in list(self._swarms.items()):
            dropped += self._expire_swarm(swarm, now)
            if not swarm.peers:
                del self._swarms[info_hash]
        return dropped

    def _expire_swarm(self, swarm: Swarm, now: float) -> int:
        cutoff = now - self.expiry_s
        stale = [k for k, p in swarm.peers.items() if p.last_seen < cutoff]
        for k in stale:
            del swarm.peers[k]
        return len(stale)
