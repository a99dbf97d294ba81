"""Hostile wire input: torrentpy drops exactly the misbehaving connection, says why, and still completes.

Each test runs torrentpy against two peers at once: a scripted hostile peer (tests/interop/hostile.py)
that handshakes correctly and then misbehaves in one way, and an honest libtorrent seeder whose upload
is rate-limited so the download is still going on while the hostile peer acts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.interop.conftest import PeerRegistry
from tests.interop.hostile import BEHAVIOURS, EXPECTED_REASON, HostilePeer, TorrentData
from tests.interop.peers.libtorrent_peer import LibtorrentPeer
from tests.interop.peers.payload import MiB, Payload, make_payload, make_torrent_libtorrent
from tests.interop.peers.torrentpy_peer import TorrentpyPeer, torrentpy_factory

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]

PIECE = 64 * 1024
# 17 pieces: not a multiple of 8, so a bitfield has spare bits to set.
SIZE = 1 * MiB + 5000
# Slow enough that the download is still running when the hostile peer acts (~1 s for the payload).
HONEST_UPLOAD_BPS = 1 * MiB


class Swarm:
    def __init__(self, payload: Payload, torrent: Path, seeder: LibtorrentPeer) -> None:
        self.payload = payload
        self.torrent = torrent
        self.seeder = seeder
        self.data = TorrentData.from_payload(torrent, payload)


@pytest.fixture(scope="module")
def swarm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Swarm]:
    """One payload and one rate-limited libtorrent seeder shared by every test in this module."""
    base = tmp_path_factory.mktemp("hostile")
    payload = make_payload(base / "payload", SIZE, name="hostile.bin", seed=21)
    torrent = make_torrent_libtorrent(payload.root, PIECE, [], base / "hostile.torrent")
    assert TorrentData.from_payload(torrent, payload).num_pieces % 8
    seeder = LibtorrentPeer(base / "peers", torrent, payload.save_dir, True,
                            upload_limit_bps=HONEST_UPLOAD_BPS, name="lt-honest")
    try:
        seeder.start()
        seeder.wait_seeding(20)
        yield Swarm(payload, torrent, seeder)
    finally:
        seeder.stop()


@pytest.fixture
def hostile_peers() -> Iterator[list[HostilePeer]]:
    started: list[HostilePeer] = []
    yield started
    for peer in started:
        peer.stop()


def _run(swarm: Swarm, peer_registry: PeerRegistry, hostile: HostilePeer, tmp_path: Path) -> TorrentpyPeer:
    # The hostile peer first: torrentpy dials in --peer order.
    tp = torrentpy_factory(peer_registry)(swarm.torrent, tmp_path / "dl", False,
                                          peers=[hostile.address, swarm.seeder.address])
    assert tp.wait_exit(45) == 0, tp.log_tail()
    assert swarm.payload.differences(tmp_path / "dl") == []
    return tp


def _events_for(tp: TorrentpyPeer, name: str, address: str) -> list[dict[str, Any]]:
    return [e for e in tp.events(name) if e.get("peer") == address]


@pytest.mark.parametrize("behaviour", [b for b in BEHAVIOURS if EXPECTED_REASON[b] is not None])
def test_protocol_violation_closes_only_that_connection(
    behaviour: str, swarm: Swarm, peer_registry: PeerRegistry, hostile_peers: list[HostilePeer],
    tmp_path: Path,
) -> None:
    hostile = HostilePeer(swarm.data, behaviour).start()
    hostile_peers.append(hostile)
    tp = _run(swarm, peer_registry, hostile, tmp_path)

    errors = _events_for(tp, "peer_error", hostile.address_text)
    assert errors, f"no peer_error for {hostile.address_text}; hostile: {hostile.log}; {tp.read()[-20:]}"
    expected = EXPECTED_REASON[behaviour]
    assert expected is not None
    assert any(expected in e["reason"] for e in errors), (errors, hostile.log)
    hostile.wait_closed_by_remote(5)
    # Only the hostile connection was dropped: the honest seeder was never blamed.
    honest = f"{swarm.seeder.address[0]}:{swarm.seeder.address[1]}"
    assert not _events_for(tp, "peer_error", honest)
    assert not tp.events("peer_banned")
    # Nothing the hostile peer sent was taken as data: no piece failed its hash.
    assert not tp.events("hash_failed")
    assert tp.event("completed")["downloaded_pieces"] == swarm.data.num_pieces


def test_peer_serving_wrong_bytes_is_banned(
    swarm: Swarm, peer_registry: PeerRegistry, hostile_peers: list[HostilePeer], tmp_path: Path
) -> None:
    hostile = HostilePeer(swarm.data, "wrong_data").start()
    hostile_peers.append(hostile)
    tp = _run(swarm, peer_registry, hostile, tmp_path)

    assert hostile.seen("sent: first wrong block"), hostile.log
    failed = tp.events("hash_failed")
    assert failed and all(hostile.address_text in e["peers"] for e in failed), failed
    bans = tp.events("peer_banned")
    assert [b["peer"] for b in bans] == [hostile.address_text], bans
    hostile.wait_closed_by_remote(5)


# Every fourth piece of the corrupt seeder's copy has one byte flipped.
CORRUPT_EVERY = 4


def test_corrupt_libtorrent_seeder_is_banned_and_honest_seeders_complete(
    payload_factory, torrent_factory, libtorrent_peer, aria2_peer, peer_registry, tmp_path: Path
) -> None:
    payload = payload_factory(2 * MiB, name="corrupt.bin", seed=5)
    torrent = torrent_factory(payload, piece_length=PIECE)
    num_pieces = -(-payload.total_size // PIECE)
    bad_copy = tmp_path / "bad"
    bad_copy.mkdir()
    (bad_copy / payload.name).write_bytes(payload.root.read_bytes())
    corrupt = libtorrent_peer(torrent, bad_copy, True)
    corrupt.wait_seeding(20)
    # Flipped after libtorrent's own check: it now trusts the pieces and serves them as they are.
    corrupted = set(range(1, num_pieces, CORRUPT_EVERY))
    with open(bad_copy / payload.name, "r+b") as f:
        for index in corrupted:
            f.seek(index * PIECE + 1000)
            byte = f.read(1)
            f.seek(index * PIECE + 1000)
            f.write(bytes([byte[0] ^ 0xFF]))
    # The honest seeders are slower than the corrupt one, so it gets plenty of requests first.
    honest_lt = libtorrent_peer(torrent, payload.save_dir, True, upload_limit_bps=1 * MiB)
    honest_aria2 = aria2_peer(torrent, payload.save_dir, True, upload_limit_bps=1 * MiB)
    honest_lt.wait_seeding(20)
    honest_aria2.wait_seeding(20)

    tp = torrentpy_factory(peer_registry)(torrent, tmp_path / "dl", False,
                                          peers=[corrupt.address, honest_lt.address, honest_aria2.address])
    assert tp.wait_exit(60) == 0, tp.log_tail()
    assert payload.differences(tmp_path / "dl") == []

    bad = f"{corrupt.address[0]}:{corrupt.address[1]}"
    failed = tp.events("hash_failed")
    assert failed, "the corrupt seeder never delivered a corrupted piece"
    assert {e["piece"] for e in failed} <= corrupted, failed
    assert all(bad in e["peers"] for e in failed), [(e["piece"], e["peers"]) for e in failed] + [bad]
    bans = tp.events("peer_banned")
    assert {b["peer"] for b in bans} == {bad}, bans
