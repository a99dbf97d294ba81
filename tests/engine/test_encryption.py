"""Encrypted connections end to end, in-process: the real PeerLink running the MSE handshake and the RC4
stream under real torrents, the hosts' routing choosing by encryption mode (engine/encryption.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine.harness import FakeHost, ManualClock, ScriptedPeer, make_payload, until
from tests.engine.memnet import Network
from tests.protocol.mse_wire import handshake_bytes
from torrentpy.engine.encryption import POLICIES, Encryption
from torrentpy.engine.torrent import Torrent
from torrentpy.metainfo import Metainfo
from torrentpy.net.peer import PeerLink
from torrentpy.protocol import mse
from torrentpy.protocol.peer import PeerConnection

pytestmark = pytest.mark.timeout(30)

PIECE_LENGTH = 4 * 16384
SIZE = 10 * PIECE_LENGTH + 777


@pytest.fixture
def payload(tmp_path: Path) -> tuple[Metainfo, bytes]:
    return make_payload(tmp_path / "seed", SIZE, piece_length=PIECE_LENGTH)


async def _started(host: FakeHost, meta: Metainfo, folder: Path) -> Torrent:
    torrent = host.add(meta, folder, seed_ratio=None)
    await torrent.start()
    return torrent


def _links(torrent: Torrent) -> list[PeerLink]:
    return [p.link for p in torrent.peers.values()]


@pytest.mark.parametrize(("seeder_mode", "leecher_mode", "expected"), [
    ("tolerated", "tolerated", ""),  # plain dial, plain handshake: no MSE at all
    ("tolerated", "preferred", "rc4"),
    ("tolerated", "required", "rc4"),
    ("required", "required", "rc4"),
    ("preferred", "preferred", "rc4"),
])
async def test_download_in_each_pair_of_modes(tmp_path: Path, net: Network, clock: ManualClock,
                                              payload: tuple[Metainfo, bytes], seeder_mode: str,
                                              leecher_mode: str, expected: str) -> None:
    meta, data = payload
    seed_host = FakeHost(net, "10.0.0.1", clock=clock, encryption=seeder_mode)
    seeder = await _started(seed_host, meta, tmp_path / "seed")
    host = FakeHost(net, "10.0.1.1", clock=clock, encryption=leecher_mode)
    leecher = await _started(host, meta, tmp_path / "dl")
    leecher.add_candidates([seed_host.addr])
    leecher.tick(clock.now)
    await until(lambda: bool(leecher.peers) and bool(seeder.peers), what="connected")
    assert [link.encryption for link in _links(leecher)] == [expected]
    assert [link.encryption for link in _links(seeder)] == [expected]
    await until(lambda: leecher.complete, what="download complete")
    assert (tmp_path / "dl" / meta.name).read_bytes() == data
    assert host.redials == []


async def test_rc4_seeding_to_two_leechers_leaves_the_shared_blocks_alone(
        tmp_path: Path, net: Network, clock: ManualClock, payload: tuple[Metainfo, bytes]) -> None:
    """Each RC4 link encrypts the read cache's block views into buffers of its own: were one encrypted in
    place, the second leecher would get ciphertext of ciphertext and fail the hash check."""
    meta, data = payload
    seed_host = FakeHost(net, "10.0.0.1", clock=clock, encryption="required")
    await _started(seed_host, meta, tmp_path / "seed")
    leechers = []
    for i in (1, 2):
        host = FakeHost(net, f"10.0.1.{i}", clock=clock, encryption="required")
        leecher = await _started(host, meta, tmp_path / f"dl{i}")
        leecher.add_candidates([seed_host.addr])
        leecher.tick(clock.now)
        leechers.append(leecher)
    await until(lambda: all(t.complete for t in leechers), what="both downloads complete")
    for i in (1, 2):
        assert (tmp_path / f"dl{i}" / meta.name).read_bytes() == data
    assert (tmp_path / "seed" / meta.name).read_bytes() == data
    assert not any(e.kind == "hash_failed" for t in leechers for e in t.host.events)  # type: ignore[attr-defined]


async def test_required_refuses_a_plain_dial(tmp_path: Path, net: Network, clock: ManualClock,
                                             payload: tuple[Metainfo, bytes]) -> None:
    meta, _ = payload
    seed_host = FakeHost(net, "10.0.0.1", clock=clock, encryption="required")
    seeder = await _started(seed_host, meta, tmp_path / "seed")
    plain = ScriptedPeer(net, "10.0.1.1", meta, have=(), listen=False)
    link = await plain.dial(seed_host.addr)
    await until(lambda: plain.closed_reason is not None, what="the seeder to close")
    assert not seeder.peers and link.closed
    assert not plain.events  # not even its handshake came back


async def test_preferred_falls_back_to_plaintext_for_a_peer_without_mse(
        tmp_path: Path, net: Network, clock: ManualClock, payload: tuple[Metainfo, bytes]) -> None:
    """A bare PeerConnection takes Ya for a bad handshake and closes: the dial is made again in plaintext
    at once, and to the torrent it was one dial that worked."""
    meta, data = payload
    seed = ScriptedPeer(net, "10.0.0.1", meta, payload=data)
    host = FakeHost(net, "10.0.1.1", clock=clock, encryption="preferred")
    leecher = await _started(host, meta, tmp_path / "dl")
    leecher.add_candidates([seed.addr])
    leecher.tick(clock.now)
    await until(lambda: leecher.complete, what="download complete")
    assert host.redials == [seed.addr]
    assert host.dialled == [seed.addr, seed.addr]
    assert (tmp_path / "dl" / meta.name).read_bytes() == data


async def test_required_does_not_fall_back(tmp_path: Path, net: Network, clock: ManualClock,
                                           payload: tuple[Metainfo, bytes]) -> None:
    meta, data = payload
    seed = ScriptedPeer(net, "10.0.0.1", meta, payload=data)
    host = FakeHost(net, "10.0.1.1", clock=clock, encryption="required")
    leecher = await _started(host, meta, tmp_path / "dl")
    leecher.add_candidates([seed.addr])
    leecher.tick(clock.now)
    await until(lambda: not leecher.swarm.connecting, what="the dial to fail")
    assert host.redials == [] and host.dialled == [seed.addr] and not leecher.peers


async def test_a_handshake_naming_another_torrent_than_the_encrypted_one_is_closed(
        tmp_path: Path, net: Network, clock: ManualClock, payload: tuple[Metainfo, bytes],
        monkeypatch: pytest.MonkeyPatch) -> None:
    meta, _ = payload
    # Read on the seeder's side: our side may see the close before the reply the seeder wrote ahead of it.
    reasons: list[tuple[str, str]] = []
    close = PeerLink.close

    def recording_close(self: PeerLink, reason: str) -> None:
        if self.incoming:
            reasons.append((self.encryption, reason))
        close(self, reason)

    monkeypatch.setattr(PeerLink, "close", recording_close)
    other, _ = make_payload(tmp_path / "other", 3 * PIECE_LENGTH, piece_length=PIECE_LENGTH, seed=2)
    seed_host = FakeHost(net, "10.0.0.1", clock=clock)
    seeder = await _started(seed_host, meta, tmp_path / "seed")
    await _started(seed_host, other, tmp_path / "other-dl")
    # SKEY names `meta`; the BitTorrent handshake inside names `other`.
    conn = PeerConnection(info_hash=other.info_hash, peer_id=b"-XX0000-mismatch....", initiator=True)
    hand = mse.MseInitiator(meta.info_hash, handshake_bytes(other.info_hash))
    scripted = ScriptedPeer(net, "10.0.1.1", None, listen=False)
    link = PeerLink(conn, scripted, seed_host.addr, incoming=False, mse=hand)
    scripted.link = link
    await net.open(scripted.ip, seed_host.addr, link)
    await until(lambda: link.closed, what="the seeder to close")
    # The encrypted handshake itself went through; the BitTorrent handshake inside it was refused.
    assert ("plaintext", "the handshake names another torrent than the encrypted handshake did") in reasons
    assert not seeder.peers


def test_mode_changes_apply_to_new_connections() -> None:
    enc = Encryption("tolerated")
    assert enc.responder().select == POLICIES["tolerated"].select
    conn = PeerConnection(info_hash=bytes(20), peer_id=bytes(20), initiator=True)
    assert enc.initiator(conn) is None
    enc.set_mode("required")
    responder = enc.responder()
    assert responder.select == (mse.CRYPTO_RC4,) and not responder.accept_plain
    initiator = enc.initiator(conn)
    assert initiator is not None and initiator.provide == mse.CRYPTO_RC4
    with pytest.raises(ValueError, match="tolerated, preferred, required"):
        enc.set_mode("forced")


def test_the_skey_index_follows_the_torrents() -> None:
    enc = Encryption()
    a, b = bytes(range(20)), bytes(range(1, 21))
    enc.add_torrent(a)
    enc.add_torrent(b)
    assert enc.lookup(mse.skey_hash(a)) == a and enc.lookup(mse.skey_hash(b)) == b
    enc.remove_torrent(a)
    assert enc.lookup(mse.skey_hash(a)) is None and enc.lookup(mse.skey_hash(b)) == b
