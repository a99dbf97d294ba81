"""The routing table of BEP 5: k-buckets over the 160-bit id space, split only around our own id.

A node is *good* if it answered one of our queries in the last 15 minutes, or answered once and has
queried us in the last 15 minutes; after 15 minutes without either it is *questionable*; after
`MAX_FAILURES` unanswered queries in a row it is *bad*. A full bucket takes a new node only in place
of a bad one; its questionable nodes are pinged first (the node does that: `questionable()` lists
them) and one that fails enough times makes room for a node from the bucket's replacement cache.
Pure data: the clock is passed in."""

from __future__ import annotations

from dataclasses import dataclass, field

from torrentpy.protocol.krpc import Node

Addr = tuple[str, int]

K = 8
ID_BITS = 160
GOOD_FOR_S = 15 * 60.0
# Unanswered queries in a row that make a node bad (libtorrent and Transmission: a few).
MAX_FAILURES = 3
# Buckets not changed for this long are refreshed with a lookup of a random id inside them.
REFRESH_AFTER_S = 15 * 60.0
# Candidates kept per bucket to take the place of nodes that go bad.
REPLACEMENTS = 8


def distance(a: bytes, b: bytes) -> int:
    return int.from_bytes(a, "big") ^ int.from_bytes(b, "big")


@dataclass
class Entry:
    id: bytes
    addr: Addr
    last_response: float | None = None
    last_query: float | None = None  # when it last queried us
    failures: int = 0

    def good(self, now: float) -> bool:
        if self.last_response is None:
            return False
        if now - self.last_response < GOOD_FOR_S:
            return True
        return self.last_query is not None and now - self.last_query < GOOD_FOR_S

    def bad(self) -> bool:
        return self.failures >= MAX_FAILURES

    def node(self) -> Node:
        return Node(self.id, self.addr)


@dataclass
class Bucket:
    lo: int  # the bucket covers ids in [lo, hi)
    hi: int
    last_changed: float
    entries: list[Entry] = field(default_factory=list)
    replacements: list[Entry] = field(default_factory=list)

    def covers(self, ident: int) -> bool:
        return self.lo <= ident < self.hi


class RoutingTable:
    def __init__(self, own_id: bytes, now: float, *, k: int = K) -> None:
        self.own_id = own_id
        self.k = k
        self.buckets = [Bucket(0, 1 << ID_BITS, now)]

    def __len__(self) -> int:
        return sum(len(b.entries) for b in self.buckets)

    def _bucket(self, node_id: bytes) -> Bucket:
        ident = int.from_bytes(node_id, "big")
        for bucket in self.buckets:
            if bucket.covers(ident):
                return bucket
        raise AssertionError("the buckets cover the whole id space")

    def find(self, node_id: bytes) -> Entry | None:
        for entry in self._bucket(node_id).entries:
            if entry.id == node_id:
                return entry
        return None

    def add(self, node_id: bytes, addr: Addr, now: float, *, responded: bool = False, queried: bool = False) -> bool:
        """Record a node we heard from; True if it is (now) in the table. A node heard of only through
        another node's answer is added with neither flag, and becomes good once it answers us."""
        if node_id == self.own_id or len(node_id) != 20:
            return False
        bucket = self._bucket(node_id)
        for entry in bucket.entries:
            if entry.id == node_id:
                if entry.addr != addr:
                    # A second address claiming a known id: keep the one that has proved itself.
                    if entry.good(now):
                        return True
                    entry.addr = addr
                self._touch(entry, now, responded, queried)
                if responded:
                    bucket.last_changed = now
                return True
        entry = Entry(node_id, addr)
        self._touch(entry, now, responded, queried)
        if len(bucket.entries) < self.k:
            bucket.entries.append(entry)
            bucket.last_changed = now
            return True
        if bucket.covers(int.from_bytes(self.own_id, "big")) and bucket.hi - bucket.lo > 1:
            self._split(bucket)
            return self.add(node_id, addr, now, responded=responded, queried=queried)
        for i, old in enumerate(bucket.entries):
            if old.bad():
                bucket.entries[i] = entry
                bucket.last_changed = now
                return True
        # Full of good or questionable nodes: keep it aside in case one of them goes bad.
        bucket.replacements = [r for r in bucket.replacements if r.id != node_id and r.addr != addr]
        bucket.replacements.append(entry)
        del bucket.replacements[:-REPLACEMENTS]
        return False

    @staticmethod
    def _touch(entry: Entry, now: float, responded: bool, queried: bool) -> None:
        if responded:
            entry.last_response = now
            entry.failures = 0
        if queried:
            entry.last_query = now

    def _split(self, bucket: Bucket) -> None:
        mid = (bucket.lo + bucket.hi) // 2
        low = Bucket(bucket.lo, mid, bucket.last_changed)
        high = Bucket(mid, bucket.hi, bucket.last_changed)
        for entry in bucket.entries:
            (low if int.from_bytes(entry.id, "big") < mid else high).entries.append(entry)
        for entry in bucket.replacements:
            (low if int.from_bytes(entry.id, "big") < mid else high).replacements.append(entry)
        i = self.buckets.index(bucket)
        self.buckets[i : i + 1] = [low, high]

    def failed(self, node_id: bytes, addr: Addr) -> None:
        """A query to the node went unanswered; a bad node gives its place to a replacement."""
        bucket = self._bucket(node_id)
        for i, entry in enumerate(bucket.entries):
            if entry.id == node_id and entry.addr == addr:
                entry.failures += 1
                if entry.bad() and bucket.replacements:
                    bucket.entries[i] = bucket.replacements.pop()
                return

    def remove(self, node_id: bytes) -> None:
        bucket = self._bucket(node_id)
        bucket.entries = [e for e in bucket.entries if e.id != node_id]

    def closest(self, target: bytes, count: int | None = None, *, now: float | None = None) -> list[Node]:
        """The `count` (default k) known nodes nearest `target`, bad ones left out."""
        count = self.k if count is None else count
        entries = [e for b in self.buckets for e in b.entries if not e.bad()]
        entries.sort(key=lambda e: distance(e.id, target))
        return [e.node() for e in entries[:count]]

    def questionable(self, now: float) -> list[Entry]:
        """Nodes to ping: not good, not yet bad (BEP 5 pings them before giving up their place)."""
        return [e for b in self.buckets for e in b.entries if not e.good(now) and not e.bad()]

    def stale_buckets(self, now: float) -> list[Bucket]:
        return [b for b in self.buckets if now - b.last_changed >= REFRESH_AFTER_S]

    def touch_bucket(self, target: bytes, now: float) -> None:
        """A lookup of `target` is refreshing its bucket."""
        self._bucket(target).last_changed = now

    def nodes(self) -> list[Node]:
        return [e.node() for b in self.buckets for e in b.entries]

    def good_count(self, now: float) -> int:
        return sum(1 for b in self.buckets for e in b.entries if e.good(now))
