"""Where peers came from: recorded per address, counted per source, and the dialling policy on top."""

from __future__ import annotations

import pytest

from tests.engine.test_swarm import Harness, addr
from torrentpy.engine.sources import PeerSources, source_cap


def test_found_counts_each_address_once_per_source() -> None:
    s = PeerSources()
    s.record(addr(1), "tracker")
    s.record(addr(1), "tracker")  # every announce repeats it
    s.record(addr(1), "pex")
    s.record(addr(2), "dht")
    assert s.found == {"tracker": 1, "pex": 1, "dht": 1}
    assert s.source_of(addr(1)) == "tracker" and s.source_of(addr(2)) == "dht"
    assert s.source_of(addr(9)) == "manual"
    s.record_incoming("10.0.0.5", b"x" * 20)
    s.record_incoming("10.0.0.5", b"x" * 20)  # the same peer dialling in again
    s.record_incoming("10.0.0.5", b"y" * 20)
    assert s.found["incoming"] == 2
    s.prune([addr(2)])
    assert len(s) == 1 and s.found["tracker"] == 1  # counts survive, records don't


def test_dial_order_prefers_handshaken_then_source_rank() -> None:
    s = PeerSources()
    for n, source in enumerate(("pex", "dht", "tracker", "manual", "pex")):
        s.record(addr(n), source)
    s.handshaken.add(addr(4))
    assert s.dial_order([addr(n) for n in range(5)]) == [addr(4), addr(3), addr(2), addr(1), addr(0)]


def test_source_caps() -> None:
    assert source_cap("pex", 50) == 37 and source_cap("dht", 50) == 37
    assert source_cap("tracker", 50) == 50 and source_cap("pex", 1) == 1


def test_swarm_records_sources_and_caps_dials_per_source() -> None:
    h = Harness(max_peers=4)  # PEX may fill 3 of the 4 slots
    h.swarm.add_candidates([addr(n) for n in range(6)], source="pex")
    h.swarm.connect_more(h.host.clock)
    assert h.host.dialled == [addr(0), addr(1), addr(2)]
    h.swarm.add_candidates([addr(10)], source="tracker")
    h.swarm.connect_more(h.host.clock)
    assert h.host.dialled[-1] == addr(10)
    assert h.swarm.connections_by_source() == {"pex": 3, "tracker": 1}
    assert h.swarm.sources.found == {"pex": 6, "tracker": 1}
    with pytest.raises(ValueError):
        h.swarm.add_candidates([addr(20)], source="carrier pigeon")


def test_swarm_peer_source_and_handshake_memory() -> None:
    h = Harness(max_peers=10)
    h.swarm.add_candidates([addr(1)], source="dht")
    h.swarm.connect_more(h.host.clock)
    link = h.link(addr(1), peer_id=b"A" * 20)
    h.swarm.attach(link)  # type: ignore[arg-type]
    inc = h.link(("10.0.0.9", 40000), incoming=True, peer_id=b"B" * 20)
    h.swarm.attach(inc)  # type: ignore[arg-type]
    assert h.swarm.peers[addr(1)].source == "dht" and h.swarm.peers[("10.0.0.9", 40000)].source == "incoming"
    assert addr(1) in h.swarm.sources.handshaken
    link.close("gone")
    h.swarm.add_candidates([addr(2)], source="manual")
    h.host.clock += 1000
    h.swarm.connect_more(h.host.clock)
    assert h.host.dialled[-2:] == [addr(1), addr(2)]  # handshaken before, though named by the DHT


def test_swarm_does_not_dial_a_peer_connected_to_us_under_its_listen_address() -> None:
    h = Harness(max_peers=10)
    inc = h.link(("10.0.0.1", 40000), incoming=True, peer_id=b"C" * 20, listen_port=addr(1)[1])
    h.swarm.attach(inc)  # type: ignore[arg-type]
    h.swarm.add_candidates([addr(1), addr(2)], source="pex")
    h.swarm.connect_more(h.host.clock)
    assert h.host.dialled == [addr(2)]
