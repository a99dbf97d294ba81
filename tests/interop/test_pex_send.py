"""Peer exchange, the sending side (BEP 11), against real peers on 127.0.0.1.

Three torrentpy peers and a libtorrent 2.1 peer, none seeding: the first torrentpy peer knows nobody,
every other peer knows only the first. The first one's PEX messages are all anyone hears of the rest,
so every connection beyond the first three is made to an address learned through PEX, and libtorrent
dialling a torrentpy peer it was told of shows it accepts our messages. A short PEX interval stands in
for the spec's minute; libtorrent sends its own PEX once a minute, so what it learns within the
deadline comes from us.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.interop.conftest import PeerRegistry
from tests.interop.peers.base import wait_for
from tests.interop.peers.payload import MiB
from tests.interop.peers.torrentpy_peer import TorrentpyPeer, torrentpy_factory

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

PEX_INTERVAL_S = 4.0
# Everyone must know everyone within two PEX intervals of the last peer joining; dials, handshakes and
# the 0.5 s status files of the peer processes get a few seconds more on a loaded machine.
DEADLINE_S = 2 * PEX_INTERVAL_S + 6.0


def _torrent_stats(peer: TorrentpyPeer) -> dict[str, Any]:
    stats = peer.stats()
    return stats["torrents"][0] if stats and stats.get("torrents") else {}


def _lt_handshaken(status: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in status.get("peers", []) if p["peer_id_prefix"].startswith("-TP")]


def test_everyone_learns_everyone_through_pex(
    payload_factory, torrent_factory, libtorrent_peer, peer_registry: PeerRegistry, tmp_path: Path,
) -> None:
    payload = payload_factory(1 * MiB, name="pex-send.bin", seed=12)
    torrent = torrent_factory(payload, piece_length=64 * 1024)
    make = torrentpy_factory(peer_registry)
    # No DHT: the peers would otherwise meet over it too (they learn each other's DHT nodes from PORT
    # messages), and this test is about what PEX alone tells them.
    args = ["--pex-interval", str(PEX_INTERVAL_S), "--no-dht"]
    first = make(torrent, tmp_path / "a", False, extra_args=args)
    others = [make(torrent, tmp_path / name, False, peers=[first.address], extra_args=args) for name in "bc"]
    wait_for(lambda: _torrent_stats(first).get("peers") == 2, 20, interval_s=0.2,
             message="the first torrentpy peer to see the other two")

    lt = libtorrent_peer(torrent, tmp_path / "lt", False, peers=[first.address], pex=True)
    joined = time.monotonic()
    torrentpys = [first, *others]

    def everyone_connected() -> bool:
        # Connected to all three others, and (for the two that knew only the first) told of the other
        # two by PEX: one of them may have dialled in before the first peer's next message named it.
        return all(_torrent_stats(p).get("peers") == 3 for p in torrentpys) and \
            len(_lt_handshaken(lt.status())) == 3 and \
            all(_torrent_stats(p).get("peers_found", {}).get("pex", 0) >= 2 for p in others)

    try:
        wait_for(everyone_connected, DEADLINE_S, interval_s=0.2, message="a full mesh of four peers")
    except Exception:
        report = {p.name: _torrent_stats(p) for p in torrentpys}
        raise AssertionError(f"after {time.monotonic() - joined:.1f}s: {report}\nlibtorrent: {lt.status()}") \
            from None

    # libtorrent dialled at least one torrentpy peer it had heard of only through PEX.
    listen = {p.address for p in others}
    dialled = {(p["ip"], p["port"]) for p in _lt_handshaken(lt.status()) if p["outgoing"]}
    assert dialled & listen, lt.status()["peers"]
    # The first peer knew nobody: all three dialled it. The others heard of the rest through PEX.
    assert _torrent_stats(first)["peers_found"].get("incoming") == 3, _torrent_stats(first)
    for peer in others:
        found = _torrent_stats(peer)["peers_found"]
        assert found.get("manual") == 1 and found.get("pex", 0) >= 2, (peer.name, found)
        assert set(_torrent_stats(peer)["peers_by_source"]) <= {"manual", "pex", "incoming"}
