"""The DHT at scale, in seconds: 200 nodes in one process over a lossy in-memory network (scale.py);
every lookup of an announced info-hash finds its announcer in a handful of hops and a few tens of
queries. bench/test_dht_bench.py runs the same simulation at 1,000 nodes and reports the figures."""

from __future__ import annotations

import math

from tests.dht.scale import simulate


def test_every_lookup_finds_its_announcer_among_200_nodes() -> None:
    report = simulate(200, announcers=8, lookups=40, loss=0.02, seed=3)
    print(report.summary())
    assert report.found == report.lookups, report.missed
    assert len(report.hops) == report.lookups
    assert max(report.hops) <= 6 and sum(report.queries) / len(report.queries) <= 40, report.summary()
    # Buckets grow with log2(n), not n: the table stays small however big the network is.
    assert max(report.buckets) <= math.log2(200) + 6 and max(report.table_sizes) <= 8 * (math.log2(200) + 6)
