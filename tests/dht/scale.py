"""A whole DHT in one process: n DhtNodes on the in-memory datagram network (memnet.py) with loss and
latency, joining a few at a time from three bootstrap nodes as a real network grows. Some nodes announce
an info-hash each; then many others look one up, all at once. Every lookup must find its announcer; the
report gives the hops and queries each lookup took, and what each node holds.

    python -m tests.dht.scale 1000      # the full measurement (bench/test_dht_bench.py runs it too)
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from dataclasses import dataclass, field

from tests.dht.memnet import Addr, DatagramNet

# Nodes that join per virtual second: a network that grows, not n nodes all bootstrapping at once
# from the same three routers.
JOIN_PER_S = 100
SETTLE_S = 60.0
ANNOUNCE_S = 30.0
LOOKUP_S = 40.0
PORT = 6881


@dataclass
class ScaleReport:
    nodes: int
    announcers: int
    lookups: int
    found: int = 0
    missed: list[str] = field(default_factory=list)
    hops: list[int] = field(default_factory=list)
    queries: list[int] = field(default_factory=list)
    table_sizes: list[int] = field(default_factory=list)
    buckets: list[int] = field(default_factory=list)
    stored_peers: int = 0
    datagrams: int = 0
    wall_s: float = 0.0

    def summary(self) -> str:
        def spread(values: list[int]) -> str:
            if not values:
                return "-"
            ordered = sorted(values)
            p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
            return f"mean {statistics.mean(values):.1f}, median {statistics.median(values):g}, " \
                   f"p90 {p90}, max {max(values)}"

        return "\n".join([
            f"{self.nodes} nodes, {self.announcers} announced info-hashes, {self.lookups} lookups: "
            f"{self.found} found their announcer",
            f"  hops per lookup:    {spread(self.hops)}",
            f"  queries per lookup: {spread(self.queries)}",
            f"  routing table:      {spread(self.table_sizes)} nodes; buckets {spread(self.buckets)}",
            f"  stored peers (all nodes): {self.stored_peers}; datagrams sent: {self.datagrams:,} "
            f"({self.datagrams / max(1, self.nodes):.0f} per node); {self.wall_s:.1f} s of real time",
        ])


def simulate(n: int, *, announcers: int = 20, lookups: int = 200, loss: float = 0.02, seed: int = 1) -> ScaleReport:
    rng = random.Random(seed)
    net = DatagramNet(rng=random.Random(seed + 1), loss=loss)
    start = time.perf_counter()
    addrs: list[Addr] = [(f"10.{i // 62500}.{i // 250 % 250}.{i % 250 + 1}", PORT) for i in range(n)]
    routers = addrs[:3]
    for i, addr in enumerate(addrs):
        node = net.add(addr, rng.randbytes(20))
        node.bootstrap([r for r in routers if r != addr], net.now)
        if i % JOIN_PER_S == JOIN_PER_S - 1:
            net.run(1.0)
    net.run(SETTLE_S)

    hashes = [rng.randbytes(20) for _ in range(announcers)]
    chosen = rng.sample(addrs, announcers + lookups)
    seeders, askers = chosen[:announcers], chosen[announcers:]
    for info_hash, addr in zip(hashes, seeders, strict=True):
        net.nodes[addr].track(info_hash, PORT + 1, lambda ih, peers: None, net.now)
    net.run(ANNOUNCE_S)

    report = ScaleReport(n, announcers, lookups)
    found: dict[Addr, set[Addr]] = {addr: set() for addr in askers}
    wanted: dict[Addr, Addr] = {}
    for i, addr in enumerate(askers):
        seeder = seeders[i % announcers]
        wanted[addr] = (seeder[0], PORT + 1)
        net.nodes[addr].track(hashes[i % announcers], 0,
                              lambda ih, peers, got=found[addr]: got.update(peers), net.now)
    net.run(LOOKUP_S)

    for addr in askers:
        node = net.nodes[addr]
        if wanted[addr] in found[addr]:
            report.found += 1
        else:
            report.missed.append(f"{addr[0]}: {len(found[addr])} other peers")
        if node.finished:
            report.hops.append(node.finished[0].hops)
            report.queries.append(node.finished[0].queries)
    for node in net.nodes.values():
        report.table_sizes.append(len(node.table))
        report.buckets.append(len(node.table.buckets))
        report.stored_peers += len(node.store)
    report.datagrams = net.sent
    report.wall_s = time.perf_counter() - start
    return report


if __name__ == "__main__":
    print(simulate(int(sys.argv[1]) if len(sys.argv) > 1 else 1000).summary())
