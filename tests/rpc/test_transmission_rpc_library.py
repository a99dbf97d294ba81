"""The `transmission-rpc` library from PyPI drives the daemon through its typed API."""

from __future__ import annotations

import shutil
import time

import pytest
from transmission_rpc import Client

from tests.interop.peers.base import LOOPBACK
from tests.interop.peers.payload import MiB

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]


def wait(predicate, timeout_s: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_the_library_adds_stops_starts_verifies_moves_and_removes(daemon_factory, payload_factory,
                                                                 torrent_factory, tmp_path) -> None:
    payload = payload_factory({"x.bin": 1 * MiB, "y/z.bin": 300_000}, name="pack")
    torrent = torrent_factory(payload, piece_length=32 * 1024)
    daemon = daemon_factory()
    client = Client(host=LOOPBACK, port=daemon.rpc_port, timeout=30)
    assert client.get_session().rpc_version == 16
    shutil.copytree(payload.root, daemon.download_dir / "pack")

    added = client.add_torrent(torrent.read_bytes())
    assert added.name == "pack"
    assert client.add_torrent(torrent.read_bytes()).id == added.id  # torrent-duplicate
    got = wait(lambda: (t := client.get_torrent(added.id)).progress == 100.0 and t)
    assert got.status == "seeding" and got.total_size == payload.total_size
    assert [f.name for f in got.get_files()] == ["pack/x.bin", "pack/y/z.bin"]

    client.stop_torrent(added.id)
    assert wait(lambda: client.get_torrent(added.id).status == "stopped")
    client.start_torrent(added.id)
    assert wait(lambda: client.get_torrent(added.id).status == "seeding")
    client.verify_torrent(added.id)
    assert wait(lambda: (t := client.get_torrent(added.id)).status == "seeding" and t.progress == 100.0)

    elsewhere = tmp_path / "moved"
    client.move_torrent_data(added.id, str(elsewhere), move=True)
    moved = wait(lambda: (t := client.get_torrent(added.id)).status == "seeding" and t)
    assert moved.download_dir == str(elsewhere)
    assert payload.differences(elsewhere) == [] and not (daemon.download_dir / "pack").exists()

    magnet = client.add_torrent("magnet:?xt=urn:btih:" + "cd" * 20 + "&dn=later")
    assert {t.hash_string for t in client.get_torrents()} == {"cd" * 20, got.hash_string}
    stats = client.session_stats()
    assert stats.torrent_count == 2
    client.remove_torrent([added.id, magnet.id], delete_data=True)
    assert client.get_torrents() == []
    assert not (elsewhere / "pack").exists()
