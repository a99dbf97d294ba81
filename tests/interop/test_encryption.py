"""Message Stream Encryption against real clients: libtorrent's default encrypted dial answered on the first
connection, libtorrent forced to RC4 in both directions, Transmission requiring encryption."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.interop.peers.base import LOOPBACK, wait_for
from tests.interop.peers.payload import MiB

pytestmark = [pytest.mark.interop, pytest.mark.timeout(90)]

PIECE = 64 * 1024
SIZE = 4 * MiB + 12345  # many messages and a short last piece through the RC4 streams
# libtorrent's side is slowed so the transfer spans several of lt_runner's peer samples (0.1 s apart):
# unthrottled, 4 MiB crosses loopback between two samples and the connection's flags are never seen.
LT_RATE_BPS = 3 * MiB


def _torrent(payload_factory: Any, torrent_factory: Any, name: str) -> tuple[Any, Path]:
    payload = payload_factory(SIZE, name=name)
    return payload, torrent_factory(payload, piece_length=PIECE)


def _seeder(torrentpy_peer: Any, torrent: Path, save_dir: Path, *extra: str, peers: tuple[str, ...] = ()) -> Any:
    seeder = torrentpy_peer(torrent, save_dir, True, extra_args=list(extra), peers=list(peers))
    resumed = seeder.wait_event("resumed", 20)
    assert resumed["pieces"] == resumed["total"], resumed
    return seeder


def _lt_rows(status: dict[str, Any], port: int) -> list[dict[str, Any]]:
    """libtorrent's rows (live and remembered) for the peer listening on `port` (it dialled that port)."""
    return [r for r in [*status.get("peers", []), *status.get("peers_seen", [])] if r["port"] == port]


def test_libtorrent_default_dial_is_answered_on_the_first_connection(payload_factory, torrent_factory,
                                                                      libtorrent_peer, torrentpy_peer,
                                                                      tmp_path: Path) -> None:
    """libtorrent dials encrypted first by default (offering RC4 and plaintext). A seeder that closed on the
    Diffie-Hellman key made it retry in plaintext a second later: here one connection does it all, with
    the encrypted handshake picking plaintext for the stream (the default mode's choice: no RC4 cost)."""
    payload, torrent = _torrent(payload_factory, torrent_factory, "default.bin")
    log = tmp_path / "seeder.log"
    seeder = _seeder(torrentpy_peer, torrent, payload.save_dir, "--log-file", str(log))
    leecher = libtorrent_peer(torrent, tmp_path / "lt", False, peers=[(LOOPBACK, seeder.port)],
                              download_limit_bps=LT_RATE_BPS)
    status = leecher.wait_finished(40)
    # The seeder's side: its first connection was this encrypted one (plaintext chosen for the stream).
    connected = [line for line in log.read_text().splitlines() if " connected (" in line]
    assert connected and connected[0].endswith("connected (incoming, encrypted handshake, plaintext stream)"), \
        connected
    assert payload.differences(tmp_path / "lt") == []
    assert status["settings"]["out_enc_policy"] == 1  # libtorrent's default: "enabled"
    # One dial, no plaintext retry. (Once finished, libtorrent drops the seed, seeds having nothing to
    # trade, and the runner dials it again each second: only what came before counts.)
    finished = min(e["t"] for e in status["events"] if e["type"] == "torrent_finished")
    before = [e for e in status["events"] if e["t"] < finished]
    assert [e["type"] for e in before if e["type"] in ("peer_connect", "peer_disconnected")] == ["peer_connect"], \
        before
    rows = _lt_rows(status, seeder.port)
    assert rows and {r["encryption"] for r in rows} == {"plaintext"}, rows


def test_libtorrent_forced_rc4_downloads_from_torrentpy(payload_factory, torrent_factory, libtorrent_peer,
                                                        torrentpy_peer, tmp_path: Path) -> None:
    payload, torrent = _torrent(payload_factory, torrent_factory, "rc4-up.bin")
    seeder = _seeder(torrentpy_peer, torrent, payload.save_dir)  # the default mode takes RC4 when it is all offered
    leecher = libtorrent_peer(torrent, tmp_path / "lt", False, peers=[(LOOPBACK, seeder.port)], encryption="forced",
                              download_limit_bps=LT_RATE_BPS)
    status = leecher.wait_finished(40)
    assert payload.differences(tmp_path / "lt") == []
    assert status["settings"]["allowed_enc_level"] == 2 and status["settings"]["in_enc_policy"] == 0
    rows = _lt_rows(status, seeder.port)
    assert rows and {r["encryption"] for r in rows} == {"rc4"}, rows
    stats = wait_for(lambda: (s := seeder.stats()) and s["uploaded"] >= payload.total_size and s, 10, 0.2,
                     "the seeder to count its upload")
    assert stats["uploaded"] >= payload.total_size


@pytest.mark.parametrize("mode", ["preferred", "required"])
def test_libtorrent_forced_rc4_seeds_to_torrentpy(payload_factory, torrent_factory, libtorrent_peer,
                                                  torrentpy_peer, tmp_path: Path, mode: str) -> None:
    payload, torrent = _torrent(payload_factory, torrent_factory, f"rc4-down-{mode}.bin")
    seeder = libtorrent_peer(torrent, payload.save_dir, True, encryption="forced", upload_limit_bps=LT_RATE_BPS)
    seeder.wait_seeding(20)
    leecher = torrentpy_peer(torrent, tmp_path / "tp", False, peers=[(LOOPBACK, seeder.port)],
                             extra_args=["--encryption", mode])
    leecher.wait_finished(40)
    assert leecher.wait_exit(20) == 0
    assert payload.differences(tmp_path / "tp") == []
    incoming = [r for r in seeder.status().get("peers_seen", []) if r["peer_id_prefix"].startswith("-TP")]
    assert incoming and {r["encryption"] for r in incoming} == {"rc4"}, incoming


def test_a_plain_dial_to_libtorrent_forced_fails_and_says_why(payload_factory, torrent_factory,
                                                              libtorrent_peer, torrentpy_peer,
                                                              tmp_path: Path) -> None:
    """The default mode dials in plaintext: a peer that insists on encryption closes on it."""
    payload, torrent = _torrent(payload_factory, torrent_factory, "refused.bin")
    seeder = libtorrent_peer(torrent, payload.save_dir, True, encryption="forced")
    seeder.wait_seeding(20)
    leecher = torrentpy_peer(torrent, tmp_path / "tp", False, peers=[(LOOPBACK, seeder.port)])
    wait_for(lambda: any(e["type"] == "peer_disconnected" for e in seeder.status().get("events", [])), 15, 0.2,
             "libtorrent to refuse the plain handshake")
    assert leecher.stats() is None or leecher.stats()["downloaded"] == 0


def _transmission_peers(peer: Any) -> list[dict[str, Any]]:
    torrents = peer.rpc("torrent-get", {"ids": [peer.torrent_id], "fields": ["peers"]})["torrents"]
    return list(torrents[0]["peers"]) if torrents else []


def test_transmission_requiring_encryption_seeds_to_torrentpy(payload_factory, torrent_factory,
                                                              transmission_peer, torrentpy_peer,
                                                              tmp_path: Path) -> None:
    payload, torrent = _torrent(payload_factory, torrent_factory, "tr-seed.bin")
    seeder = transmission_peer(torrent, payload.save_dir, True, encryption=2)
    seeder.wait_seeding(30)
    leecher = torrentpy_peer(torrent, tmp_path / "tp", False, peers=[seeder.address],
                             extra_args=["--encryption", "required"])
    encrypted: list[bool] = []

    def done() -> bool:
        encrypted.extend(p["isEncrypted"] for p in _transmission_peers(seeder))
        return leecher.event("completed") is not None

    wait_for(done, 60, 0.2, "torrentpy to download from transmission")
    assert leecher.wait_exit(20) == 0
    assert payload.differences(tmp_path / "tp") == []
    assert encrypted and all(encrypted), encrypted


def test_torrentpy_requiring_encryption_seeds_to_transmission(payload_factory, torrent_factory,
                                                              transmission_peer, torrentpy_peer,
                                                              tmp_path: Path) -> None:
    """Transmission takes loopback peers only when they dial it: the seeder dials, encrypted."""
    payload, torrent = _torrent(payload_factory, torrent_factory, "tr-leech.bin")
    leecher = transmission_peer(torrent, tmp_path / "tr", False, encryption=2)
    _seeder(torrentpy_peer, torrent, payload.save_dir, "--encryption", "required", peers=(leecher.address,))
    encrypted: list[bool] = []

    def done() -> bool:
        encrypted.extend(p["isEncrypted"] for p in _transmission_peers(leecher))
        st = leecher.status()
        return bool(st["leftUntilDone"] == 0 and st["percentDone"] == 1)

    wait_for(done, 60, 0.2, "transmission to finish")
    assert payload.differences(tmp_path / "tr") == []
    assert encrypted and all(encrypted), encrypted


def test_aria2_requiring_encryption_seeds_to_torrentpy(payload_factory, torrent_factory, aria2_peer,
                                                       torrentpy_peer, tmp_path: Path) -> None:
    """aria2 with --bt-require-crypto and RC4 as its lowest level: a third MSE implementation."""
    payload, torrent = _torrent(payload_factory, torrent_factory, "aria2-seed.bin")
    seeder = aria2_peer(torrent, payload.save_dir, True,
                        extra_args=["--bt-require-crypto=true", "--bt-min-crypto-level=arc4"])
    seeder.wait_seeding(30)
    plain = torrentpy_peer(torrent, tmp_path / "plain", False, peers=[seeder.address])
    leecher = torrentpy_peer(torrent, tmp_path / "tp", False, peers=[seeder.address],
                             extra_args=["--encryption", "required"])
    leecher.wait_finished(40)
    assert leecher.wait_exit(20) == 0
    assert payload.differences(tmp_path / "tp") == []
    assert plain.event("completed") is None  # its plain handshake was refused all along
