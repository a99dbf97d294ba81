"""A Mainline DHT node (BEP 5) without I/O: datagrams in, datagrams out, the clock passed in.

`receive(data, addr, now)` and `tick(now)` queue what to send in `outbox` (datagram, address); the
caller (net/dht.py over UDP, or the in-memory simulation) sends it. Torrents are tracked with
`track(info_hash, port, on_peers)`: a get_peers lookup runs at once and every `ANNOUNCE_INTERVAL_S`,
each ending with announce_peer to the closest nodes that gave a token, and every peer found is
handed to `on_peers`."""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from torrentpy import bencoding
from torrentpy.dht.lookup import Lookup
from torrentpy.dht.routing import ID_BITS, RoutingTable
from torrentpy.dht.store import PeerStore, QueryLimiter, Tokens
from torrentpy.errors import BencodeError
from torrentpy.protocol import krpc
from torrentpy.protocol.krpc import Node

Addr = tuple[str, int]
PeersCallback = Callable[[bytes, list[Addr]], None]

# An unanswered query counts as failed after this (libtorrent: a few seconds).
QUERY_TIMEOUT_S = 4.0
# BEP 5 leaves the re-announce period open; libtorrent and Transmission re-announce every 15 minutes.
ANNOUNCE_INTERVAL_S = 15 * 60.0
# While a torrent has found no peer yet, look again sooner.
RETRY_INTERVAL_S = 60.0
# A lookup nobody answered (our nodes all went away, the network is down): try again soon.
NO_ANSWER_RETRY_S = 5.0
# Queries we may have in flight at once (all lookups and pings): bounds memory and our own traffic.
MAX_PENDING = 256
# Questionable nodes pinged per tick; a slow trickle keeps us far from anyone's rate limit.
PINGS_PER_TICK = 2
# Routing-table nodes saved in the state file (enough to bootstrap again without a router).
SAVED_NODES = 200


@dataclass
class _Pending:
    addr: Addr
    node_id: bytes | None
    sent_at: float
    lookup: Lookup | None = None


@dataclass
class _Tracked:
    port: int
    implied_port: bool
    on_peers: PeersCallback
    next_at: float = 0.0
    found: int = 0
    lookup: Lookup | None = None


@dataclass
class LookupStats:
    hops: int
    queries: int
    peers: int


@dataclass
class DhtNode:
    node_id: bytes
    now: float
    rng: random.Random = field(default_factory=random.Random)
    rate_limit: bool = True
    ipv6: bool = False  # which family this node's socket speaks (BEP 32 keeps one table per family)

    def __post_init__(self) -> None:
        self.table = RoutingTable(self.node_id, self.now)
        self.tokens = Tokens(self.rng, self.now)
        self.store = PeerStore()
        self.limiter = QueryLimiter(enabled=self.rate_limit)
        self.outbox: list[tuple[bytes, Addr]] = []
        self.pending: dict[bytes, _Pending] = {}
        self.lookups: list[Lookup] = []
        self.tracked: dict[bytes, _Tracked] = {}
        self.finished: list[LookupStats] = []  # of get_peers lookups, for the simulation's report
        self.bootstrap_addrs: list[Addr] = []
        self._joining: Lookup | None = None  # the bootstrap's lookup of our own id, until it ends
        # The other family's node in this process (BEP 32: one table per family). With one, our queries
        # ask for nodes of both families, answers fill both tables, and we answer "want" from both.
        self.sibling: DhtNode | None = None
        self._next_tid = self.rng.randrange(1 << 16)

    # --- sending -----------------------------------------------------------------

    def _family_ok(self, addr: Addr) -> bool:
        try:
            return (ipaddress.ip_address(addr[0]).version == 6) == self.ipv6
        except ValueError:
            return False

    def _tid(self) -> bytes:
        for _ in range(1 << 16):
            self._next_tid = (self._next_tid + 1) & 0xFFFF
            tid = self._next_tid.to_bytes(2, "big")
            if tid not in self.pending:
                return tid
        raise AssertionError("more pending queries than transaction ids")

    def _query(self, addr: Addr, node_id: bytes | None, encode: Callable[[bytes], bytes], now: float,
               lookup: Lookup | None = None) -> bool:
        if len(self.pending) >= MAX_PENDING or not self._family_ok(addr):
            return False
        tid = self._tid()
        self.pending[tid] = _Pending(addr, node_id, now, lookup)
        self.outbox.append((encode(tid), addr))
        return True

    def _want(self) -> tuple[bytes, ...]:
        return krpc.WANT_BOTH if self.sibling is not None else ()

    def _answer_nodes(self, target: bytes, want4: bool, want6: bool) -> list[Node]:
        """The closest nodes to answer find_node/get_peers with: BEP 32 says a query without "want"
        gets its own family's nodes, one with "want" gets each family it names that we know."""
        if not want4 and not want6:
            return self.table.closest(target)
        nodes: list[Node] = []
        for wanted, v6 in ((want4, False), (want6, True)):
            owner = self if v6 == self.ipv6 else self.sibling
            if wanted and owner is not None:
                nodes += owner.table.closest(target)
        return nodes

    def ping(self, addr: Addr, now: float) -> None:
        """Ping an address (a peer's PORT message, a saved node): an answer adds it to the table."""
        self._query(addr, None, lambda t: krpc.ping(t, self.node_id), now)

    # --- lookups -----------------------------------------------------------------

    def bootstrap(self, addrs: list[Addr], now: float) -> None:
        """Find our own neighbourhood, starting from known nodes and the given routers."""
        self.bootstrap_addrs = list(addrs)
        lookup = Lookup(self.node_id, self.table.closest(self.node_id), get_peers=False)
        self.lookups.append(lookup)
        self._joining = lookup
        target, want = self.node_id, self._want()
        for addr in addrs:
            if self._query(addr, None, lambda t: krpc.find_node(t, self.node_id, target, want=want), now, lookup):
                lookup.seed_asked()
        self._step(lookup, now)

    def find_node(self, target: bytes, now: float) -> Lookup:
        lookup = Lookup(target, self.table.closest(target), get_peers=False)
        self.lookups.append(lookup)
        self._step(lookup, now)
        return lookup

    def _get_peers(self, info_hash: bytes, now: float) -> Lookup:
        lookup = Lookup(info_hash, self.table.closest(info_hash), get_peers=True)
        self.lookups.append(lookup)
        self._step(lookup, now)
        return lookup

    def _step(self, lookup: Lookup, now: float) -> None:
        method = krpc.get_peers if lookup.get_peers else krpc.find_node
        target, want = lookup.target, self._want()

        def encode(tid: bytes) -> bytes:
            return method(tid, self.node_id, target, want=want)

        for node in lookup.next_queries():
            if not self._query(node.addr, node.id, encode, now, lookup):
                lookup.on_failure(node.id)
        if lookup.done and lookup in self.lookups:
            self.lookups.remove(lookup)
            self._lookup_done(lookup, now)

    def _refresh_far_buckets(self, now: float) -> None:
        """Kademlia's join: once we know our neighbourhood, look up a random id in every bucket that is
        not full. The lookup of our own id only fills the buckets near us; without this a node whose
        bootstrap routers sit in one half of the id space may know nobody in the other half for the 15
        minutes until its refresh, and lookups it answers for ids there dead-end (the simulation of
        tests/dht/scale.py saw it)."""
        for bucket in self.table.buckets:
            if len(bucket.entries) < self.table.k and not bucket.covers(int.from_bytes(self.node_id, "big")):
                bucket.last_changed = now
                target = (bucket.lo + self.rng.randrange(bucket.hi - bucket.lo)).to_bytes(ID_BITS // 8, "big")
                self.find_node(target, now)

    def _lookup_done(self, lookup: Lookup, now: float) -> None:
        if lookup is self._joining:
            self._joining = None
            if lookup.responses:
                self._refresh_far_buckets(now)
        if not lookup.get_peers:
            return
        self.finished.append(LookupStats(lookup.hops, lookup.queries, len(lookup.peers)))
        del self.finished[:-1000]
        tracked = self.tracked.get(lookup.target)
        if tracked is None or tracked.lookup is not lookup:
            return
        tracked.lookup = None
        if not lookup.responses:
            tracked.next_at = now + NO_ANSWER_RETRY_S
        else:
            tracked.next_at = now + (ANNOUNCE_INTERVAL_S if tracked.found or lookup.peers else RETRY_INTERVAL_S)
        if tracked.port <= 0 and not tracked.implied_port:
            return  # not announcing (a torrent that does not accept connections)
        port, implied = max(tracked.port, 1), tracked.implied_port
        for node, token in lookup.announce_targets():
            def encode(tid: bytes, token: bytes = token) -> bytes:
                return krpc.announce_peer(tid, self.node_id, lookup.target, port, token, implied_port=implied)

            self._query(node.addr, node.id, encode, now)

    def track(self, info_hash: bytes, port: int, on_peers: PeersCallback, now: float, *,
              implied_port: bool = False) -> None:
        """Find peers for a torrent and announce it (port 0: only find peers), now and on schedule."""
        self.tracked[info_hash] = _Tracked(port, implied_port, on_peers, next_at=now)
        self._announce_due(now)

    def untrack(self, info_hash: bytes) -> None:
        self.tracked.pop(info_hash, None)

    def _announce_due(self, now: float) -> None:
        if not len(self.table):
            return  # nobody to ask yet: wait for the bootstrap
        for info_hash, tracked in self.tracked.items():
            if tracked.lookup is None and now >= tracked.next_at:
                tracked.lookup = self._get_peers(info_hash, now)

    # --- receiving ---------------------------------------------------------------

    def receive(self, data: bytes, addr: Addr, now: float) -> None:
        msg = krpc.decode(data)
        if msg is None or not self._family_ok(addr):
            return  # malformed: dropped, never answered
        if isinstance(msg, krpc.Response | krpc.ErrorReply):
            self._on_reply(msg, addr, now)
        else:
            self._on_query(msg, addr, now)

    def _on_reply(self, msg: krpc.Response | krpc.ErrorReply, addr: Addr, now: float) -> None:
        pending = self.pending.get(msg.tid)
        if pending is None or pending.addr != addr:
            return  # not ours, late, or spoofed from another address
        del self.pending[msg.tid]
        lookup = pending.lookup
        if isinstance(msg, krpc.ErrorReply):
            if pending.node_id is not None:
                self.table.failed(pending.node_id, addr)
            if lookup is not None:
                if pending.node_id is not None:
                    lookup.on_failure(pending.node_id)
                else:
                    lookup.seed_failed()
                self._step(lookup, now)
            return
        self.table.add(msg.sender, addr, now, responded=True)
        nodes = tuple(n for n in msg.nodes if self._family_ok(n.addr))
        for node in nodes:
            self.table.add(node.id, node.addr, now)
        if self.sibling is not None:
            for node in msg.nodes:
                if self.sibling._family_ok(node.addr):
                    self.sibling.table.add(node.id, node.addr, now)  # unverified: it pings them in time
        if lookup is None:
            return
        if pending.node_id is None:
            lookup.add_seed_answer(nodes)
        else:
            if pending.node_id != msg.sender:
                lookup.on_failure(pending.node_id)  # a different node answers from that address now
            else:
                new = lookup.on_response(msg.sender, nodes, msg.values if lookup.get_peers else (), msg.token)
                tracked = self.tracked.get(lookup.target)
                if new and tracked is not None and tracked.lookup is lookup:
                    tracked.found += len(new)
                    tracked.on_peers(lookup.target, new)
        self._step(lookup, now)

    def _on_query(self, msg: krpc.Message, addr: Addr, now: float) -> None:
        if not self.limiter.allow(addr[0], now):
            return
        assert isinstance(msg, krpc.Query)
        if not msg.read_only:
            self.table.add(msg.sender, addr, now, queried=True)
        tid = msg.tid
        if isinstance(msg, krpc.Ping):
            reply = krpc.encode_response(tid, self.node_id, requester=addr)
        elif isinstance(msg, krpc.FindNode):
            nodes = self._answer_nodes(msg.target, msg.want4, msg.want6)
            reply = krpc.encode_response(tid, self.node_id, requester=addr, nodes=nodes)
        elif isinstance(msg, krpc.GetPeers):
            values = self.store.get(msg.info_hash, now, self.rng)
            nodes = self._answer_nodes(msg.info_hash, msg.want4, msg.want6)
            reply = krpc.encode_response(tid, self.node_id, requester=addr, nodes=nodes, values=values or None,
                                         token=self.tokens.make(addr[0], now))
        elif isinstance(msg, krpc.AnnouncePeer):
            if not self.tokens.check(msg.token, addr[0], now):
                reply = krpc.encode_error(tid, krpc.ERROR_PROTOCOL, "bad token")
            else:
                self.store.add(msg.info_hash, (addr[0], addr[1] if msg.implied_port else msg.port), now)
                reply = krpc.encode_response(tid, self.node_id, requester=addr)
        else:
            reply = krpc.encode_error(tid, krpc.ERROR_METHOD_UNKNOWN, "Method Unknown")
        self.outbox.append((reply, addr))

    # --- timers ------------------------------------------------------------------

    def tick(self, now: float) -> None:
        for tid, pending in list(self.pending.items()):
            if now - pending.sent_at >= QUERY_TIMEOUT_S:
                del self.pending[tid]
                if pending.node_id is not None:
                    self.table.failed(pending.node_id, pending.addr)
                    if pending.lookup is not None:
                        pending.lookup.on_failure(pending.node_id)
                elif pending.lookup is not None:
                    pending.lookup.seed_failed()
                if pending.lookup is not None:
                    self._step(pending.lookup, now)
        for lookup in list(self.lookups):
            self._step(lookup, now)  # a seed-only lookup (bootstrap) may have nothing left to wait for
        if not len(self.table) and self.bootstrap_addrs and not self.pending and not self.lookups:
            self.bootstrap(self.bootstrap_addrs, now)  # every router failed or we lost every node: again
        for entry in self.table.questionable(now)[:PINGS_PER_TICK]:
            if entry.last_response is not None and now - entry.last_response < QUERY_TIMEOUT_S:
                continue
            if not any(p.node_id == entry.id for p in self.pending.values()):
                self._query(entry.addr, entry.id, lambda t: krpc.ping(t, self.node_id), now)
        for bucket in self.table.stale_buckets(now):
            bucket.last_changed = now
            span = bucket.hi - bucket.lo
            target = (bucket.lo + self.rng.randrange(span)).to_bytes(ID_BITS // 8, "big")
            self.find_node(target, now)
        self.store.expire(now)
        self._announce_due(now)

    # --- state file --------------------------------------------------------------

    def save_state(self) -> bytes:
        """Our id and both families' tables (the sibling's too): "nodes" IPv4, "nodes6" IPv6 (BEP 32)."""
        state: dict[bytes, bytes] = {b"id": self.node_id, b"nodes": b""}
        for owner in (self, self.sibling):
            if owner is not None:
                nodes = owner.table.nodes()[:SAVED_NODES]
                state[b"nodes6" if owner.ipv6 else b"nodes"] = krpc.encode_compact_nodes(nodes)
        return bencoding.encode(state)

    @staticmethod
    def load_state(data: bytes) -> tuple[bytes, list[Node]] | None:
        """The node id and nodes of a state file, or None when it is not one (then start afresh)."""
        try:
            state = bencoding.decode(data, max_bytes=64 * 1024)
            node_id = state[b"id"]
            nodes = krpc.decode_compact_nodes(state[b"nodes"])
            if b"nodes6" in state:  # the IPv6 node's table, kept in the same file (BEP 32)
                nodes += krpc.decode_compact_nodes(state[b"nodes6"], v6=True)
        except (BencodeError, KeyError, TypeError, ValueError):
            return None
        if not isinstance(node_id, bytes) or len(node_id) != 20:
            return None
        return node_id, list(nodes)
