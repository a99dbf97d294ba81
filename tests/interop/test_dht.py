"""Trackerless magnets over a real Mainline DHT: five libtorrent 2.x nodes on their own loopback addresses
(127.0.0.2 … 127.0.0.6). Both ways: the last node seeds a torrent with no tracker and announces it on the
DHT, and torrentpy, given only the magnet and one DHT node to bootstrap from, finds the seeder, fetches
the metadata and the data; then a torrentpy seeder announces on that DHT and a libtorrent leecher on its
own address (127.0.0.7), bootstrapped from the same node, finds it from the magnet alone. aria2 accepts
loopback DHT nodes too: bootstrapped from a lone torrentpy DHT node, it finds a torrentpy seeder there."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.interop.peers.base import free_port, wait_for
from tests.interop.peers.payload import MiB, make_payload, make_torrent_libtorrent

pytestmark = [pytest.mark.interop, pytest.mark.timeout(180)]

NODES = 5
DHT_READY_TIMEOUT_S = 40.0
COMPLETE_TIMEOUT_S = 90.0


def _status(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _start_lt(status_file: Path, log_path: Path, *args: str) -> subprocess.Popen[bytes]:
    with open(log_path, "wb") as log:
        return subprocess.Popen([sys.executable, "-m", "tests.interop.peers.lt_dht", "--status-file", str(status_file),
                                 *args], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_dht(proc: subprocess.Popen[bytes], status_file: Path, log_path: Path) -> None:
    deadline = time.monotonic() + DHT_READY_TIMEOUT_S
    while True:
        status = _status(status_file)
        if max(status.get("nodes", [0])) >= 2:
            return
        assert proc.poll() is None, log_path.read_text()
        assert time.monotonic() < deadline, f"the libtorrent DHT never formed: {status}"
        time.sleep(0.5)


def test_trackerless_magnet_from_a_libtorrent_dht(tmp_path: Path) -> None:
    payload = make_payload(tmp_path / "seed", 3 * MiB + 12345)
    torrent = make_torrent_libtorrent(payload.root, 64 * 1024, [], tmp_path / "t.torrent")
    import libtorrent as lt

    info_hash = bytes(lt.torrent_info(str(torrent)).info_hashes().v1.to_bytes()).hex()
    port = free_port()
    status_file = tmp_path / "dht.json"
    with open(tmp_path / "lt.log", "wb") as log:
        dht = subprocess.Popen([sys.executable, "-m", "tests.interop.peers.lt_dht", "--nodes", str(NODES),
                                "--base-port", str(port), "--status-file", str(status_file),
                                "--seed", str(torrent), "--save", str(payload.save_dir)],
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    leecher: subprocess.Popen[bytes] | None = None
    try:
        deadline = time.monotonic() + DHT_READY_TIMEOUT_S
        while True:
            status = _status(status_file)
            if status.get("seeding") and max(status.get("nodes", [0])) >= 2:
                break
            assert dht.poll() is None, (tmp_path / "lt.log").read_text()
            assert time.monotonic() < deadline, f"the libtorrent DHT never formed: {status}"
            time.sleep(0.5)
        time.sleep(3.0)  # the seeder's first announce goes out once it knows a few nodes
        out = tmp_path / "down"
        out.mkdir()
        magnet = f"magnet:?xt=urn:btih:{info_hash}"
        with open(tmp_path / "torrentpy.log", "wb") as log:
            leecher = subprocess.Popen(
                [sys.executable, "-m", "torrentpy", "add", magnet, "-o", str(out), "--no-tui", "--seed-ratio", "0",
                 "--bind", "127.0.0.1", "--listen-port", str(free_port()),
                 "--dht-bootstrap", f"127.0.0.2:{port}", "--log-file", str(tmp_path / "debug.log")],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = leecher.wait(timeout=COMPLETE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            rc = None
        text = (tmp_path / "torrentpy.log").read_text(errors="replace")
        assert rc == 0, f"torrentpy did not complete (rc={rc}):\n{text[-3000:]}\nDHT: {_status(status_file)}"
        assert payload.differences(out) == []
    finally:
        if leecher is not None:
            _stop(leecher, signal.SIGINT)
        _stop(dht)


def test_libtorrent_finds_a_torrentpy_seeder_on_the_dht(tmp_path: Path, torrentpy_peer: Any) -> None:
    payload = make_payload(tmp_path / "seed", 2 * MiB + 4321)
    torrent = make_torrent_libtorrent(payload.root, 64 * 1024, [], tmp_path / "t.torrent")
    import libtorrent as lt

    info_hash = bytes(lt.torrent_info(str(torrent)).info_hashes().v1.to_bytes()).hex()
    port = free_port()
    nodes_status, nodes_log = tmp_path / "dht.json", tmp_path / "lt-dht.log"
    dht = _start_lt(nodes_status, nodes_log, "--nodes", str(NODES), "--base-port", str(port))
    leecher: subprocess.Popen[bytes] | None = None
    try:
        _wait_dht(dht, nodes_status, nodes_log)
        # Default options but the bootstrap node: the DHT is on, and the torrent has no tracker at all.
        seeder = torrentpy_peer(torrent, payload.save_dir, True,
                                extra_args=["--dht-bootstrap", f"127.0.0.2:{port}"])
        # The seeder's DHT starts once its torrent has started (a moment after it listens): libtorrent is to
        # find it there, so it looks only once the seeder is on the DHT (else the seeder finds libtorrent).
        wait_for(lambda: (seeder.stats() or {}).get("dht_nodes") or 0, COMPLETE_TIMEOUT_S,
                 message="the torrentpy seeder to join the DHT")
        leech_status, leech_log = tmp_path / "leech.json", tmp_path / "lt-leech.log"
        out = tmp_path / "down"
        out.mkdir()
        leech_host = "127.0.0.7"
        leecher = _start_lt(leech_status, leech_log, "--nodes", "1", "--first-host", "7",
                            "--base-port", str(free_port(leech_host)), "--bootstrap", f"127.0.0.2:{port}",
                            "--leech", f"magnet:?xt=urn:btih:{info_hash}", "--save", str(out))
        deadline = time.monotonic() + COMPLETE_TIMEOUT_S
        while not _status(leech_status).get("seeding"):
            assert leecher.poll() is None, leech_log.read_text()
            assert time.monotonic() < deadline, \
                f"libtorrent never completed from the torrentpy seeder: {_status(leech_status)}\n" \
                f"DHT: {_status(nodes_status)}\ntorrentpy:\n{seeder.log_tail()}"
            time.sleep(0.5)
        assert f"127.0.0.1:{seeder.port}" in _status(leech_status)["peers_seen"]
        assert payload.differences(out) == []
        stats = seeder.stats()
        assert stats is not None and stats["uploaded"] >= payload.total_size, stats
        assert stats["dht_nodes"] >= 1, stats  # --json shows the routing table's size
    finally:
        if leecher is not None:
            _stop(leecher)
        _stop(dht)


def test_aria2_finds_a_torrentpy_seeder_on_the_dht(tmp_path: Path, torrentpy_peer: Any) -> None:
    """aria2 accepts DHT nodes on loopback: bootstrapped from a torrentpy DHT node alone, it completes a
    trackerless magnet from the torrentpy seeder that announced there."""
    payload = make_payload(tmp_path / "seed", 2 * MiB + 777)
    torrent = make_torrent_libtorrent(payload.root, 64 * 1024, [], tmp_path / "t.torrent")
    import libtorrent as lt

    from tests.interop.peers.base import client_env

    info_hash = bytes(lt.torrent_info(str(torrent)).info_hashes().v1.to_bytes()).hex()
    port_file = tmp_path / "router.port"
    with open(tmp_path / "router.log", "wb") as log:
        router = subprocess.Popen([sys.executable, "-m", "tests.interop.peers.tp_dht_router", "--port-file",
                                   str(port_file)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    aria2: subprocess.Popen[bytes] | None = None
    try:
        deadline = time.monotonic() + DHT_READY_TIMEOUT_S
        while not port_file.exists():
            assert router.poll() is None, (tmp_path / "router.log").read_text()
            assert time.monotonic() < deadline, "the torrentpy DHT router never started"
            time.sleep(0.1)
        entry = f"127.0.0.1:{port_file.read_text()}"
        seeder = torrentpy_peer(torrent, payload.save_dir, True, extra_args=["--dht-bootstrap", entry])
        out = tmp_path / "down"
        out.mkdir()
        aria2_log = tmp_path / "aria2.log"
        argv = ["aria2c", "--no-conf", "--enable-dht=true", "--enable-dht6=false", "--disable-ipv6=true",
                f"--dht-entry-point={entry}", f"--dht-listen-port={free_port()}",
                f"--dht-file-path={tmp_path / 'aria2-dht.dat'}", f"--listen-port={free_port()}",
                "--bt-enable-lpd=false", "--enable-peer-exchange=false", "--async-dns=false",
                "--interface=127.0.0.1", "--seed-time=0", "--bt-save-metadata=false", "--summary-interval=0",
                f"--stop-with-process={os.getpid()}", f"--dir={out}", f"--log={aria2_log}", "--log-level=info",
                f"magnet:?xt=urn:btih:{info_hash}"]
        with open(tmp_path / "aria2.out", "wb") as log:
            aria2 = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                     env=client_env(tmp_path / "aria2.home"))
        try:
            rc = aria2.wait(timeout=COMPLETE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            rc = None
        text = aria2_log.read_text(errors="replace") if aria2_log.exists() else ""
        assert rc == 0, f"aria2 did not complete (rc={rc}):\n{text[-3000:]}\ntorrentpy:\n{seeder.log_tail()}"
        # No tracker, PEX and LPD off: the DHT is the only way aria2 can have learnt the seeder's address.
        assert f"Connecting to 127.0.0.1:{seeder.port}" in text, text[-3000:]
        assert payload.differences(out) == []
        stats = seeder.stats()
        assert stats is not None and stats["uploaded"] >= payload.total_size, stats
    finally:
        if aria2 is not None:
            _stop(aria2)
        _stop(router)
