"""DHT nodes joined by an in-memory datagram network with optional loss, for tests and the simulation."""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

from torrentpy.dht.node import DhtNode

Addr = tuple[str, int]


@dataclass
class DatagramNet:
    rng: random.Random = field(default_factory=lambda: random.Random(1))
    loss: float = 0.0
    latency_s: tuple[float, float] = (0.01, 0.05)
    now: float = 0.0
    nodes: dict[Addr, DhtNode] = field(default_factory=dict)
    sent: int = 0
    _queue: list[tuple[float, int, bytes, Addr, Addr]] = field(default_factory=list)
    _seq: int = 0

    def add(self, addr: Addr, node_id: bytes | None = None, *, rate_limit: bool = False) -> DhtNode:
        node = DhtNode(node_id or self.rng.randbytes(20), self.now, random.Random(self.rng.random()),
                       rate_limit=rate_limit)
        self.nodes[addr] = node
        return node

    def flush(self) -> None:
        for src, node in self.nodes.items():
            self._send(src, node)

    def _send(self, src: Addr, node: DhtNode) -> None:
        for data, dst in node.outbox:
            self.sent += 1
            if self.rng.random() < self.loss:
                continue
            self._seq += 1
            heapq.heappush(self._queue, (self.now + self.rng.uniform(*self.latency_s), self._seq, data, src, dst))
        node.outbox.clear()

    def run(self, seconds: float, tick_s: float = 0.5) -> None:
        end = self.now + seconds
        next_tick = self.now
        self.flush()  # what callers queued between runs (bootstrap, track)
        while self.now < end:
            if self._queue and self._queue[0][0] <= next_tick:
                at, _, data, src, dst = heapq.heappop(self._queue)
                self.now = max(self.now, at)
                node = self.nodes.get(dst)
                if node is not None:
                    node.receive(data, src, self.now)
                    self._send(dst, node)  # only the receiver can have queued anything
            else:
                self.now = next_tick
                for node in self.nodes.values():
                    node.tick(self.now)
                self.flush()
                next_tick += tick_s
