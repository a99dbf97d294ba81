"""What a DHT node keeps for others: announce tokens, the peers announced to it, and how often each
address may query it. Pure structures; the clock and the randomness are passed in."""

from __future__ import annotations

import hashlib
import random
from collections import OrderedDict

Addr = tuple[str, int]

# BEP 5: "tokens up to ten minutes old are accepted" — a secret that changes every five minutes, with
# the previous one still accepted.
TOKEN_ROTATION_S = 5 * 60.0
TOKEN_BYTES = 8

# An announced peer is forgotten after this unless re-announced (libtorrent: 30 min; announcers
# re-announce every 15-30 min).
PEER_TTL_S = 30 * 60.0
# Bounds for what strangers can make us store: peers per info-hash and info-hashes in all.
MAX_PEERS_PER_HASH = 200
MAX_HASHES = 2000
# Peers returned in one get_peers answer: 50 compact IPv4 peers keep the datagram under ~1,000 bytes.
MAX_VALUES_SENT = 50

# Incoming queries per source address: a burst, then a steady rate. libtorrent itself blocks an
# address over ~5 queries/s; ours is more lenient, since several nodes can share a NAT address.
QUERY_BURST = 50
QUERY_RATE_PER_S = 10.0
# Addresses whose rate we track at once; the oldest are forgotten first (bounds memory under a flood
# from many spoofed addresses).
MAX_TRACKED_ADDRESSES = 10_000


class Tokens:
    def __init__(self, rng: random.Random, now: float) -> None:
        self._rng = rng
        self._secret = rng.randbytes(16)
        self._previous = self._secret
        self._rotated_at = now

    def _rotate(self, now: float) -> None:
        if now - self._rotated_at >= TOKEN_ROTATION_S:
            # More than two periods idle: the previous secret is as stale as the current one.
            self._previous = self._secret if now - self._rotated_at < 2 * TOKEN_ROTATION_S else self._rng.randbytes(16)
            self._secret = self._rng.randbytes(16)
            self._rotated_at = now

    @staticmethod
    def _token(secret: bytes, host: str) -> bytes:
        return hashlib.sha1(secret + host.encode()).digest()[:TOKEN_BYTES]

    def make(self, host: str, now: float) -> bytes:
        """The token for a get_peers answer to `host`: only that address can announce with it."""
        self._rotate(now)
        return self._token(self._secret, host)

    def check(self, token: bytes, host: str, now: float) -> bool:
        self._rotate(now)
        return token in (self._token(self._secret, host), self._token(self._previous, host))


class PeerStore:
    def __init__(self, *, ttl_s: float = PEER_TTL_S, max_peers: int = MAX_PEERS_PER_HASH,
                 max_hashes: int = MAX_HASHES) -> None:
        self.ttl_s = ttl_s
        self.max_peers = max_peers
        self.max_hashes = max_hashes
        # info-hash → peer → expiry; both ordered oldest first, so eviction pops from the front.
        self._peers: OrderedDict[bytes, OrderedDict[Addr, float]] = OrderedDict()

    def __len__(self) -> int:
        return sum(len(p) for p in self._peers.values())

    def add(self, info_hash: bytes, peer: Addr, now: float) -> None:
        peers = self._peers.get(info_hash)
        if peers is None:
            if len(self._peers) >= self.max_hashes:
                self._peers.popitem(last=False)
            peers = self._peers[info_hash] = OrderedDict()
        else:
            self._peers.move_to_end(info_hash)
        peers.pop(peer, None)
        peers[peer] = now + self.ttl_s
        while len(peers) > self.max_peers:
            peers.popitem(last=False)

    def get(self, info_hash: bytes, now: float, rng: random.Random, count: int = MAX_VALUES_SENT) -> list[Addr]:
        peers = self._peers.get(info_hash)
        if not peers:
            return []
        self._expire(info_hash, peers, now)
        alive = list(peers)
        return alive if len(alive) <= count else rng.sample(alive, count)

    def _expire(self, info_hash: bytes, peers: OrderedDict[Addr, float], now: float) -> None:
        while peers and next(iter(peers.values())) <= now:
            peers.popitem(last=False)
        if not peers:
            self._peers.pop(info_hash, None)

    def expire(self, now: float) -> None:
        for info_hash, peers in list(self._peers.items()):
            self._expire(info_hash, peers, now)


class QueryLimiter:
    """A token bucket per source address for incoming queries; `enabled=False` lets every query in
    (tests whose nodes all share 127.0.0.1)."""

    def __init__(self, *, enabled: bool = True, burst: float = QUERY_BURST, rate_per_s: float = QUERY_RATE_PER_S,
                 max_addresses: int = MAX_TRACKED_ADDRESSES) -> None:
        self.enabled = enabled
        self.burst = burst
        self.rate_per_s = rate_per_s
        self.max_addresses = max_addresses
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # host → (tokens, at)

    def allow(self, host: str, now: float) -> bool:
        if not self.enabled:
            return True
        tokens, at = self._buckets.pop(host, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate_per_s)
        allowed = tokens >= 1
        self._buckets[host] = (tokens - 1 if allowed else tokens, now)
        if len(self._buckets) > self.max_addresses:
            self._buckets.popitem(last=False)
        return allowed
