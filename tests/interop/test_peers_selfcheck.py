"""The peer fixtures really move data, stay on loopback and stop cleanly.

Each test starts real clients and checks the bytes that arrived, so it fails if a fixture only pretends.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import libtorrent as lt
import pytest

from tests.interop.opentracker import opentracker  # noqa: F401  (fixture)
from tests.interop.peers.base import LOOPBACK, ManagedProcess, PeerProcess, free_port, listening_sockets
from tests.interop.peers.libtorrent_peer import remote_endpoints
from tests.interop.peers.payload import MiB, info_hash_libtorrent, multi_file_spec

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]

PIECE = 64 * 1024
# Peer-id prefixes of the installed clients (aria2 1.36, Transmission 3.00, qBittorrent 4.5.2).
ARIA2_PEER_ID = "A2-1-36-"
TRANSMISSION_PEER_ID = "-TR3000-"
QBITTORRENT_PEER_ID = "-qB4520-"


def assert_loopback_only(*peers: PeerProcess) -> None:
    for peer in peers:
        sockets = peer.listening_sockets()
        assert sockets, f"{peer.name} has no listening socket"
        outside = [s for s in sockets if not s.is_loopback()]
        assert not outside, f"{peer.name} listens outside loopback: {outside}"
        assert any(s.proto == "tcp" and s.port == peer.port for s in sockets), (peer.name, sockets)
        # Connections too: nothing may be connected (or connecting) to an address off loopback.
        remote = [s for s in peer.open_sockets() if not s.remote_is_loopback_or_unset()]
        assert not remote, f"{peer.name} talks to non-loopback addresses: {remote}"


def wait_uploaded(peer: Any, at_least: int, key: str, timeout_s: float = 10.0) -> dict[str, Any]:
    # Clients refresh their counters on their own tick (libtorrent 0.5 s here, qBittorrent ~1.5 s).
    return peer.wait_status(lambda s: s.get(key, 0) >= at_least, timeout_s, f"{key} >= {at_least}")


def test_libtorrent_to_libtorrent(payload_factory, torrent_factory, libtorrent_peer, tmp_path: Path) -> None:
    payload = payload_factory(6 * MiB, name="single.bin")
    torrent = torrent_factory(payload, PIECE)
    seeder = libtorrent_peer(torrent, payload.save_dir, seed=True)
    seeder.wait_seeding(15)
    leecher = libtorrent_peer(torrent, tmp_path / "got", seed=False, peers=[seeder.address])
    st = leecher.wait_finished(30)
    assert payload.differences(tmp_path / "got") == []
    assert st["total_payload_download"] >= payload.total_size
    up = wait_uploaded(seeder, payload.total_size, "total_payload_upload")
    assert up["settings"]["enable_dht"] is False and up["settings"]["enable_lsd"] is False
    assert up["settings"]["listen_interfaces"].startswith(f"{LOOPBACK}:")
    assert_loopback_only(seeder, leecher)


def test_libtorrent_seeds_aria2(
    payload_factory, torrent_factory, libtorrent_peer, aria2_peer, tmp_path
) -> None:
    payload = payload_factory(5 * MiB, name="single.bin", seed=2)
    torrent = torrent_factory(payload, PIECE)
    leecher = aria2_peer(torrent, tmp_path / "got", seed=False, keep_seeding=True)
    assert_loopback_only(leecher)
    seeder = libtorrent_peer(torrent, payload.save_dir, seed=True, peers=[leecher.address])
    leecher.wait_finished(30)
    assert payload.differences(tmp_path / "got") == []
    assert seeder.status()["settings"]["enable_dht"] is False
    options = leecher.rpc("aria2.getGlobalOption")
    assert (options["enable-dht"], options["bt-enable-lpd"], options["enable-peer-exchange"]) == (
        "false",
        "false",
        "false",
    )
    st = wait_uploaded(seeder, payload.total_size, "total_payload_upload")
    assert remote_endpoints(st, ARIA2_PEER_ID) == {leecher.address}, "only the seeder should have dialled"


def test_aria2_dials_peer_from_tracker(
    payload_factory,
    torrent_factory,
    libtorrent_peer,
    aria2_peer,
    opentracker,  # noqa: F811  (the fixture imported above)
    tmp_path,
) -> None:
    """aria2 has no way to be handed a peer, but it does dial loopback peers a tracker returns."""
    payload = payload_factory(3 * MiB, name="single.bin", seed=3)
    torrent = torrent_factory(payload, PIECE, trackers=[opentracker.http_url])
    opentracker.allow(info_hash_libtorrent(torrent))
    seeder = libtorrent_peer(torrent, payload.save_dir, seed=True)
    seeder.wait_status(
        lambda s: any(e["type"] == "tracker_reply" for e in s["events"]), 15, "to announce to opentracker"
    )
    leecher = aria2_peer(torrent, tmp_path / "got", seed=False)
    leecher.wait_finished(30)
    assert payload.differences(tmp_path / "got") == []
    st = wait_uploaded(seeder, payload.total_size, "total_payload_upload")
    # aria2 dialled the seeder it got from the tracker: a connection from an ephemeral port (libtorrent
    # may also dial back to the listen port it learns from the extension handshake).
    aria2 = remote_endpoints(st, ARIA2_PEER_ID)
    assert any(endpoint != leecher.address for endpoint in aria2), aria2


def test_aria2_seeds_libtorrent(
    payload_factory, torrent_factory, libtorrent_peer, aria2_peer, tmp_path
) -> None:
    payload = payload_factory(5 * MiB, name="single.bin", seed=4)
    torrent = torrent_factory(payload, PIECE)
    seeder = aria2_peer(torrent, payload.save_dir, seed=True)
    seeder.wait_seeding(15)
    leecher = libtorrent_peer(torrent, tmp_path / "got", seed=False, peers=[seeder.address])
    leecher.wait_finished(30)
    assert payload.differences(tmp_path / "got") == []
    assert seeder.wait_status(lambda s: s["uploaded_bytes"] >= payload.total_size, 10, "upload count")
    assert_loopback_only(seeder, leecher)


def test_libtorrent_seeds_transmission(
    payload_factory, torrent_factory, libtorrent_peer, transmission_peer, tmp_path
) -> None:
    payload = payload_factory(4 * MiB, name="single.bin", seed=5)
    torrent = torrent_factory(payload, PIECE)
    leecher = transmission_peer(torrent, tmp_path / "got", seed=False)
    session = leecher.rpc("session-get")
    off = ("dht-enabled", "lpd-enabled", "pex-enabled", "port-forwarding-enabled", "utp-enabled")
    assert {k: session[k] for k in off} == dict.fromkeys(off, False)
    # Transmission never dials a loopback peer, so libtorrent connects to it.
    seeder = libtorrent_peer(torrent, payload.save_dir, seed=True, peers=[leecher.address])
    assert_loopback_only(leecher, seeder)
    leecher.wait_finished(40)
    assert payload.differences(tmp_path / "got") == []
    st = wait_uploaded(seeder, payload.total_size, "total_payload_upload")
    assert remote_endpoints(st, TRANSMISSION_PEER_ID) == {leecher.address}


def test_transmission_seeds_libtorrent(
    payload_factory, torrent_factory, libtorrent_peer, transmission_peer, tmp_path
) -> None:
    payload = payload_factory(4 * MiB, name="single.bin", seed=6)
    torrent = torrent_factory(payload, PIECE)
    seeder = transmission_peer(torrent, payload.save_dir, seed=True)
    seeder.wait_seeding(15)
    leecher = libtorrent_peer(torrent, tmp_path / "got", seed=False, peers=[seeder.address])
    leecher.wait_finished(40)
    assert payload.differences(tmp_path / "got") == []
    seeder.wait_status(lambda s: s["uploaded_bytes"] >= payload.total_size, 10, "upload count")
    assert_loopback_only(seeder)


def test_libtorrent_seeds_qbittorrent(
    payload_factory, torrent_factory, libtorrent_peer, qbittorrent_peer, tmp_path
) -> None:
    payload = payload_factory(6 * MiB, name="single.bin", seed=7)
    torrent = torrent_factory(payload, PIECE)
    seeder = libtorrent_peer(torrent, payload.save_dir, seed=True)
    seeder.wait_seeding(15)
    leecher = qbittorrent_peer(torrent, tmp_path / "got", seed=False)
    prefs = leecher.api("app/preferences")
    assert (prefs["dht"], prefs["lsd"], prefs["pex"], prefs["upnp"]) == (False, False, False, False)
    assert prefs["current_interface_address"] == LOOPBACK
    # qBittorrent is the one client here that can be told to dial: POST torrents/addPeers.
    leecher.add_peer(*seeder.address)
    leecher.wait_finished(30)
    assert payload.differences(tmp_path / "got") == []
    st = wait_uploaded(seeder, payload.total_size, "total_payload_upload")
    # addPeers made qBittorrent open a connection: one from an ephemeral port, not its listen port.
    # (libtorrent may also dial back to the listen port it learns from the extension handshake.)
    qbittorrent = remote_endpoints(st, QBITTORRENT_PEER_ID)
    assert any(endpoint != leecher.address for endpoint in qbittorrent), qbittorrent
    assert_loopback_only(seeder, leecher)


def test_qbittorrent_seeds_libtorrent(
    payload_factory, torrent_factory, libtorrent_peer, qbittorrent_peer, tmp_path
) -> None:
    payload = payload_factory(3 * MiB, name="single.bin", seed=8)
    torrent = torrent_factory(payload, PIECE)
    seeder = qbittorrent_peer(torrent, payload.save_dir, seed=True)
    seeder.wait_seeding(15)
    leecher = libtorrent_peer(torrent, tmp_path / "got", seed=False, peers=[seeder.address])
    leecher.wait_finished(30)
    assert payload.differences(tmp_path / "got") == []
    wait_uploaded(seeder, payload.total_size, "uploaded_bytes")


def test_mktorrent_multi_file(
    payload_factory, torrent_factory, libtorrent_peer, aria2_peer, tmp_path
) -> None:
    piece = 32 * 1024
    payload = payload_factory(multi_file_spec(piece), name="multi", seed=9)
    torrent = torrent_factory(payload, piece, creator="mktorrent")
    ti = lt.torrent_info(str(torrent))
    # The layout really has a piece spanning three files and an empty file, as the spec promises.
    assert max(len(ti.map_block(i, 0, ti.piece_size(i))) for i in range(ti.num_pieces())) >= 3
    assert 0 in [ti.layout().file_size(i) for i in range(ti.num_files())]
    # Two independent creators agree on the info-hash.
    assert info_hash_libtorrent(torrent) == info_hash_libtorrent(torrent_factory(payload, piece))
    seeder = libtorrent_peer(torrent, payload.save_dir, seed=True)
    seeder.wait_seeding(15)
    lt_leecher = libtorrent_peer(torrent, tmp_path / "lt", seed=False, peers=[seeder.address])
    aria2_leecher = aria2_peer(torrent, tmp_path / "aria2", seed=False)
    seeder.add_peer(*aria2_leecher.address)
    lt_leecher.wait_finished(30)
    aria2_leecher.wait_finished(30)
    assert payload.differences(tmp_path / "lt") == []
    assert payload.differences(tmp_path / "aria2") == []
    assert (tmp_path / "lt" / "multi" / "b" / "d" / "empty.txt").stat().st_size == 0


def test_torrent_upload_limit_applies_to_loopback_peers(
    payload_factory, torrent_factory, libtorrent_peer, tmp_path
) -> None:
    payload = payload_factory(3 * MiB, name="single.bin", seed=10)
    torrent = torrent_factory(payload, PIECE)
    seeder = libtorrent_peer(torrent, payload.save_dir, seed=True, upload_limit_bps=1 * MiB)
    seeder.wait_seeding(15)
    assert seeder.status()["upload_limit_bps"] == 1 * MiB
    started = time.monotonic()
    leecher = libtorrent_peer(torrent, tmp_path / "got", seed=False, peers=[seeder.address])
    leecher.wait_finished(30)
    elapsed_s = time.monotonic() - started
    assert payload.differences(tmp_path / "got") == []
    # 3 MiB at 1 MiB/s: unlimited on loopback this takes well under a second. A lower bound only: load
    # can make the transfer slower, never faster.
    assert elapsed_s >= 2.0, f"3 MiB arrived in {elapsed_s:.2f} s despite a 1 MiB/s limit"


def test_alerts_report_hash_failures_and_disconnects(
    payload_factory, torrent_factory, libtorrent_peer, tmp_path
) -> None:
    payload = payload_factory(2 * MiB, name="single.bin", seed=11)
    torrent = torrent_factory(payload, PIECE)
    seeder = libtorrent_peer(torrent, payload.save_dir, seed=True)
    seeder.wait_seeding(15)
    # Corrupt the seeder's copy after its check: it now serves pieces that fail their hash.
    with open(payload.root, "r+b") as f:
        f.write(bytes(PIECE * 4))
    leecher = libtorrent_peer(torrent, tmp_path / "got", seed=False, peers=[seeder.address])
    st = leecher.wait_status(
        lambda s: any(e["type"] == "hash_failed" for e in s["events"]), 20, "to report a hash failure"
    )
    assert {e["piece"] for e in st["events"] if e["type"] == "hash_failed"} <= {0, 1, 2, 3}
    seeder.stop()
    st = leecher.wait_status(
        lambda s: any(e["type"] == "peer_disconnected" and e.get("error") for e in s["events"]),
        10,
        "to report the seeder's disconnect",
    )
    assert not st["is_finished"]


def test_listeners_stay_on_loopback_for_every_client(
    payload_factory,
    torrent_factory,
    libtorrent_peer,
    aria2_peer,
    transmission_peer,
    qbittorrent_peer,
    tmp_path,
) -> None:
    payload = payload_factory(1 * MiB, name="single.bin", seed=12)
    torrent = torrent_factory(payload, PIECE)
    peers = [
        libtorrent_peer(torrent, tmp_path / "lt", seed=False),
        aria2_peer(torrent, tmp_path / "aria2", seed=False),
        transmission_peer(torrent, tmp_path / "tr", seed=False),
        qbittorrent_peer(torrent, tmp_path / "qb", seed=False),
    ]
    assert_loopback_only(*peers)
    assert len({p.port for p in peers}) == len(peers)


def test_stop_escalates_to_sigkill_for_the_started_pid(tmp_path: Path) -> None:
    ignore_term = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('handler' + ' installed', flush=True); time.sleep(60)"
    )
    proc = ManagedProcess([sys.executable, "-c", ignore_term], tmp_path / "stubborn.log").start()
    pid = proc.pid
    try:
        for _ in range(100):
            if "handler installed" in proc.log_tail():
                break
            time.sleep(0.05)
        started = time.monotonic()
        assert proc.stop(timeout_s=0.5) == -signal.SIGKILL
        # 0.5 s of grace, then SIGKILL: 5 s is a timeout for a hung stop(), not a speed claim.
        assert time.monotonic() - started < 5
        assert not os.path.exists(f"/proc/{pid}") or "zombie" in Path(f"/proc/{pid}/status").read_text()
    finally:
        proc.kill9()


def test_free_port_is_unique_and_bindable() -> None:
    ports = [free_port() for _ in range(20)]
    assert len(set(ports)) == len(ports)
    for port in ports[:5]:
        with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            tcp.bind((LOOPBACK, port))
            udp.bind((LOOPBACK, port))
            tcp.listen()
            assert any(s.port == port and s.proto == "tcp" for s in listening_sockets(os.getpid()))
