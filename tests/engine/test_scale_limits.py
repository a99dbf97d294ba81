"""Limits that keep a crowd of useless peers from starving useful ones: a full peer set gives way to a
new peer (an incoming connection or an address to dial) by closing one that has exchanged nothing."""

from __future__ import annotations

from tests.engine.test_swarm import Harness, addr
from torrentpy.engine.swarm import EVICT_AFTER_S, INCOMING_SLACK


def _fill(h: Harness, count: int) -> list[object]:
    links = [h.link(("10.0.9.9", 40000 + i), incoming=True) for i in range(count)]
    for link in links:
        h.swarm.attach(link)  # type: ignore[arg-type]
    return links


def test_full_set_refuses_while_every_peer_is_young() -> None:
    h = Harness(max_peers=2)
    _fill(h, 2 + INCOMING_SLACK)
    h.host.clock += EVICT_AFTER_S - 1
    late = h.link(addr(50), incoming=True)
    h.swarm.attach(late)  # type: ignore[arg-type]
    assert late.closed == "too many peers"


def test_incoming_peer_replaces_the_oldest_silent_one() -> None:
    h = Harness(max_peers=2)
    links = _fill(h, 2 + INCOMING_SLACK)
    h.host.clock += 1
    h.swarm.peers[links[0].addr].downloaded = 1  # type: ignore[attr-defined]  # earns its slot
    h.host.clock += EVICT_AFTER_S
    honest = h.link(addr(50), incoming=True)
    h.swarm.attach(honest)  # type: ignore[arg-type]
    assert honest.closed is None and addr(50) in h.swarm.peers
    assert links[0].closed is None  # type: ignore[attr-defined]
    assert links[1].closed == "making room for another peer"  # type: ignore[attr-defined]
    assert len(h.swarm.peers) == 2 + INCOMING_SLACK
    assert [p.addr for p in h.departed] == [links[1].addr]  # type: ignore[attr-defined]


def test_dial_makes_room_one_peer_a_tick() -> None:
    h = Harness(max_peers=3)
    links = _fill(h, 3)
    h.swarm.add_candidates([addr(1), addr(2)])
    h.swarm.connect_more(h.host.clock)
    assert h.host.dialled == []  # full of peers too young to judge
    h.host.clock += EVICT_AFTER_S
    h.swarm.connect_more(h.host.clock)
    assert h.host.dialled == [addr(1)]
    assert [link.closed for link in links] == ["making room for another peer", None, None]  # type: ignore[attr-defined]
    # While that dial is under way nothing more is closed for it.
    h.swarm.connect_more(h.host.clock + 1)
    assert h.host.dialled == [addr(1)] and sum(link.closed is not None for link in links) == 1  # type: ignore[attr-defined]


def test_peers_exchanging_payload_are_never_evicted() -> None:
    h = Harness(max_peers=2)
    links = _fill(h, 2)
    for i, link in enumerate(links):
        peer = h.swarm.peers[link.addr]  # type: ignore[attr-defined]
        if i:
            peer.uploaded = 16384
        else:
            peer.downloaded = 16384
    h.swarm.add_candidates([addr(1)])
    h.host.clock += 10 * EVICT_AFTER_S
    h.swarm.connect_more(h.host.clock)
    assert h.host.dialled == [] and all(link.closed is None for link in links)  # type: ignore[attr-defined]
