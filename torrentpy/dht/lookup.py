"""An iterative lookup (BEP 5's find_node / get_peers walk) as a pure structure.

Start from the closest nodes we know; keep up to `alpha` queries outstanding, always to the closest
candidate not asked yet; every answer brings nodes closer to the target. The lookup ends when the
`k` closest candidates still in the running have all answered or failed (nothing closer is left to
ask), or after `max_queries`. Candidates are capped, so a node answering with floods of made-up
nodes cannot grow it without bound."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from torrentpy.dht.routing import K, distance
from torrentpy.protocol.krpc import Node

Addr = tuple[str, int]

ALPHA = 3
# Queries one lookup may send at most: a lookup in a million-node DHT converges in a handful of hops of
# ~3-8 queries each; this leaves room for dead nodes without letting one lookup run forever.
MAX_QUERIES = 96
# Candidates kept (closest first); farther ones are forgotten when the list overflows.
MAX_CANDIDATES = 128


class State(enum.Enum):
    NEW = "new"
    ASKED = "asked"
    ANSWERED = "answered"
    FAILED = "failed"


@dataclass
class Candidate:
    node: Node
    distance: int
    hop: int
    state: State = State.NEW
    token: bytes | None = None


class Lookup:
    def __init__(self, target: bytes, seeds: list[Node], *, get_peers: bool, alpha: int = ALPHA, k: int = K,
                 max_queries: int = MAX_QUERIES) -> None:
        self.target = target
        self.get_peers = get_peers
        self.alpha = alpha
        self.k = k
        self.max_queries = max_queries
        self.candidates: dict[bytes, Candidate] = {}
        self.peers: set[Addr] = set()
        self.queries = 0
        self.responses = 0
        self.outstanding = 0
        self.hops = 0  # the deepest hop that answered (seeds are hop 1)
        self.done = False
        for node in seeds:
            self._add(node, 1)

    def _add(self, node: Node, hop: int) -> None:
        if node.id in self.candidates:
            return
        self.candidates[node.id] = Candidate(node, distance(node.id, self.target), hop)
        if len(self.candidates) > MAX_CANDIDATES:
            # Forget the farthest candidate nobody is waiting on.
            far = max((c for c in self.candidates.values() if c.state is not State.ASKED),
                      key=lambda c: c.distance, default=None)
            if far is not None:
                del self.candidates[far.node.id]

    def _ranked(self) -> list[Candidate]:
        return sorted((c for c in self.candidates.values() if c.state is not State.FAILED), key=lambda c: c.distance)

    def next_queries(self) -> list[Node]:
        """Nodes to query now (marked asked); updates `done`."""
        if self.done:
            return []
        ranked = self._ranked()[: self.k]
        out: list[Node] = []
        for cand in ranked:
            if self.outstanding >= self.alpha or self.queries >= self.max_queries:
                break
            if cand.state is State.NEW:
                cand.state = State.ASKED
                self.outstanding += 1
                self.queries += 1
                out.append(cand.node)
        if not out and self.outstanding == 0 and \
                (self.queries >= self.max_queries or all(c.state is not State.NEW for c in ranked)):
            self.done = True
        return out

    def seed_asked(self) -> None:
        """A node we know only by address (a bootstrap router) was asked: the lookup waits for it, or
        it would end at once with no candidate at all."""
        self.outstanding += 1
        self.queries += 1

    def seed_failed(self) -> None:
        self.outstanding = max(0, self.outstanding - 1)

    def add_seed_answer(self, nodes: tuple[Node, ...]) -> None:
        """Nodes from a node we asked without knowing its id (a bootstrap router)."""
        self.outstanding = max(0, self.outstanding - 1)
        for node in nodes:
            self._add(node, 1)

    def on_response(self, node_id: bytes, nodes: tuple[Node, ...], values: tuple[Addr, ...],
                    token: bytes | None) -> list[Addr]:
        """Record an answer; return the peers it brought that we had not seen."""
        cand = self.candidates.get(node_id)
        hop = 1
        if cand is not None:
            if cand.state is State.ASKED:
                self.outstanding -= 1
            cand.state = State.ANSWERED
            cand.token = token
            hop = cand.hop
        self.responses += 1
        self.hops = max(self.hops, hop)
        for node in nodes:
            self._add(node, hop + 1)
        new = [p for p in values if p not in self.peers]
        self.peers.update(new)
        return new

    def on_failure(self, node_id: bytes) -> None:
        cand = self.candidates.get(node_id)
        if cand is not None and cand.state is State.ASKED:
            self.outstanding -= 1
            cand.state = State.FAILED

    def announce_targets(self) -> list[tuple[Node, bytes]]:
        """The k closest nodes that answered with a token: where BEP 5 says to announce."""
        answered = [c for c in self._ranked() if c.state is State.ANSWERED and c.token is not None]
        return [(c.node, c.token) for c in answered[: self.k] if c.token is not None]

    def closest_answered(self) -> list[Node]:
        return [c.node for c in self._ranked() if c.state is State.ANSWERED][: self.k]
