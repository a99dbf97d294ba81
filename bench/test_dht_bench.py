"""DHT lookup cost from the simulation: 1,000 DhtNodes in one process over an in-memory network with 2 %
loss and 10-50 ms latency (tests/dht/scale.py). 50 nodes announce an info-hash each; 500 others each
look one up. Every lookup must find its announcer; the report gives hops and queries per lookup, the
routing tables' sizes and the datagrams sent. libtorrent's own figures on the real DHT (millions of
nodes) are a handful of hops and tens of queries per lookup.

Run: .venv/bin/pytest bench/test_dht_bench.py -s   (or python -m tests.dht.scale 1000)"""

from __future__ import annotations

import math
import statistics

from tests.dht.scale import simulate

NODES = 1000


def test_dht_lookup_cost_at_1000_nodes() -> None:
    report = simulate(NODES, announcers=50, lookups=500, loss=0.02, seed=1)
    print()
    print(report.summary())
    assert report.found == report.lookups, report.missed[:20]
    # Kademlia's bound: about log2(n)/log2(2^b) hops; with k=8 buckets a lookup converges in a few.
    assert statistics.mean(report.hops) <= math.log2(NODES) / 2, report.summary()
    assert statistics.mean(report.queries) <= 60, report.summary()
    assert max(report.buckets) <= math.log2(NODES) + 6, report.summary()
