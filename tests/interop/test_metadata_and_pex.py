"""Magnet links and peer exchange against scripted and real peers.

* BEP 9 receiving: torrentpy assembles a magnet's info dict from a peer, and metadata that is wrong (bad
  hash, wrong size, absurd size, rejects) from a scripted peer neither stalls nor poisons the download: an
  honest libtorrent seeder connected at the same time still supplies it.
* BEP 9 serving: libtorrent given only a magnet with `x.pe` pointing at a torrentpy seeder gets the
  metadata and then the data from it.
* BEP 11 receiving: torrentpy learns the seeder's address only from a ut_pex message of another peer,
  dials it and downloads.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.conftest import PeerRegistry
from tests.interop.hostile import METADATA_BEHAVIOURS, HostilePeer, TorrentData
from tests.interop.peers.base import PeerError
from tests.interop.peers.payload import MiB, info_hash_libtorrent
from tests.interop.peers.torrentpy_peer import torrentpy_factory

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]

PIECE = 16 * 1024
# 1024 pieces: 20 KiB of hashes, so the info dict spans two 16 KiB metadata pieces.
SIZE = 16 * MiB


@pytest.fixture
def hostile_peers() -> Iterator[list[HostilePeer]]:
    started: list[HostilePeer] = []
    yield started
    for peer in started:
        peer.hold.set()
        peer.stop()


def _magnet(torrent: Path, *peers: tuple[str, int]) -> str:
    pe = "".join(f"&x.pe={ip}:{port}" for ip, port in peers)
    return f"magnet:?xt=urn:btih:{info_hash_libtorrent(torrent).hex()}{pe}"


def _lt_sees_torrentpy(status: dict) -> bool:
    # Where nothing is held back (the oversized case) torrentpy may finish, and libtorrent drop the
    # seed-to-seed connection, between two status polls: data already sent proves the connection too.
    connected = any(p["peer_id_prefix"].startswith("-TP") for p in status["peers"])
    return connected or status["total_payload_upload"] > 0


@pytest.mark.parametrize("behaviour", METADATA_BEHAVIOURS)
def test_bad_metadata_from_one_peer_does_not_stop_a_magnet_download(
    behaviour: str, payload_factory, torrent_factory, libtorrent_peer, peer_registry: PeerRegistry,
    hostile_peers: list[HostilePeer], tmp_path: Path,
) -> None:
    payload = payload_factory(SIZE, name="magnet.bin", seed=9)
    torrent = torrent_factory(payload, piece_length=PIECE)
    data = TorrentData.from_payload(torrent, payload)
    assert len(data.info) > 16 * 1024, "the info dict should span two metadata pieces"
    hostile = HostilePeer(data, behaviour)
    hostile.hold.clear()  # its bad answers wait until the honest seeder is connected too
    hostile.start()
    hostile_peers.append(hostile)

    # Only the scripted peer is in the magnet: it is the first to be asked for metadata.
    tp = torrentpy_factory(peer_registry)(_magnet(torrent, hostile.address), tmp_path / "dl", False)
    hostile.wait_for(lambda: hostile.seen("sent: extended handshake"), 20, "extended handshake")
    if behaviour != "metadata_oversized":  # nobody asks for 64 MiB of metadata
        hostile.wait_for(lambda: hostile.seen("received: metadata request"), 20, "a metadata request")
    # The honest seeder dials torrentpy while the scripted peer still holds its answer.
    seeder = libtorrent_peer(torrent, payload.save_dir, True, peers=[tp.address])
    seeder.wait_status(_lt_sees_torrentpy, 20, "torrentpy connected")
    hostile.hold.set()

    try:
        rc = tp.wait_exit(45)
    except PeerError as err:
        raise AssertionError(f"{err}\nscripted peer: {hostile.log}") from None
    assert rc == 0, tp.log_tail() + "\n" + "\n".join(hostile.log)
    assert payload.differences(tmp_path / "dl") == []
    received = tp.event("metadata_received")
    assert received is not None and received["name"] == "magnet.bin"
    if behaviour in ("metadata_wrong_hash", "metadata_wrong_size"):
        assert hostile.seen("sent: bad metadata piece"), hostile.log
    if behaviour == "metadata_reject":
        assert hostile.seen("sent: metadata reject"), hostile.log
    if behaviour == "metadata_oversized":
        assert not hostile.seen("received: metadata request"), hostile.log
    assert not tp.events("error")


def test_libtorrent_magnet_leecher_gets_metadata_and_data_from_a_torrentpy_seeder(
    payload_factory, torrent_factory, libtorrent_peer, peer_registry: PeerRegistry, tmp_path: Path,
) -> None:
    payload = payload_factory(4 * MiB, name="served.bin", seed=4)
    torrent = torrent_factory(payload, piece_length=PIECE)
    seeder = torrentpy_factory(peer_registry)(torrent, payload.save_dir, True)
    seeder.wait_event("resumed", 30)
    # No .torrent and no --peer: the magnet alone names the seeder.
    leecher = libtorrent_peer(_magnet(torrent, seeder.address), tmp_path / "lt", False)
    leecher.wait_finished(40)
    assert payload.differences(tmp_path / "lt") == []
    status = leecher.status()
    assert any(p["peer_id_prefix"].startswith("-TP") for p in status["peers_seen"]), status["peers_seen"]
    assert "metadata_received" in status["counters"], status["counters"]


def test_a_peer_learned_only_from_pex_is_dialled(
    payload_factory, torrent_factory, libtorrent_peer, peer_registry: PeerRegistry,
    hostile_peers: list[HostilePeer], tmp_path: Path,
) -> None:
    payload = payload_factory(2 * MiB, name="pex.bin", seed=6)
    torrent = torrent_factory(payload, piece_length=64 * 1024)
    # The seeder dials nobody and is named to torrentpy by nobody but the PEX message.
    seeder = libtorrent_peer(torrent, payload.save_dir, True)
    seeder.wait_seeding(20)
    source = HostilePeer(TorrentData.from_payload(torrent, payload), "pex_source")
    source.pex_added = [seeder.address]
    source.start()
    hostile_peers.append(source)

    tp = torrentpy_factory(peer_registry)(torrent, tmp_path / "dl", False, peers=[source.address])
    assert tp.wait_exit(40) == 0, tp.log_tail() + "\n" + "\n".join(source.log)
    assert source.seen("sent: pex added"), source.log
    assert payload.differences(tmp_path / "dl") == []
    # The seeder dials nobody and the PEX source sends no data: every byte came over a connection
    # torrentpy made to the address it learned from PEX.
    seeder.wait_status(lambda s: s["total_payload_upload"] >= payload.total_size, 5, "the seeder's upload")
