"""Debian's `transmission-remote` (3.00) drives `torrentpy daemon`; every result is checked on disk and
through torrent-get, and a restart of the daemon keeps every torrent and its progress."""

from __future__ import annotations

import shutil
import subprocess
import urllib.parse

import pytest

from tests.interop.peers.base import LOOPBACK
from tests.interop.peers.payload import MiB
from tests.rpc.daemon_process import DaemonProcess

pytestmark = [pytest.mark.interop, pytest.mark.timeout(180)]

REMOTE = shutil.which("transmission-remote")
if REMOTE is None:
    pytest.fail("transmission-remote is missing: `make test` installs Debian's transmission-cli", pytrace=False)

STOPPED, CHECKING, DOWNLOADING, SEEDING = 0, 2, 4, 6


def remote(daemon: DaemonProcess, *args: str) -> str:
    proc = subprocess.run([str(REMOTE), daemon.address, *args], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, (args, proc.stdout, proc.stderr, daemon.log_tail())
    return proc.stdout


def listed(daemon: DaemonProcess) -> dict[int, list[str]]:
    """transmission-remote -l as {id: columns}: ID, Done, Have …, Name last."""
    rows = {}
    for line in remote(daemon, "-l").splitlines()[1:]:
        cols = line.split()
        if cols and cols[0].rstrip("*").isdigit():
            rows[int(cols[0].rstrip("*"))] = cols
    return rows


def test_remote_adds_lists_stops_starts_verifies_and_removes(daemon_factory, payload_factory, torrent_factory,
                                                             libtorrent_peer) -> None:
    payload = payload_factory(3 * MiB, name="file.bin")
    torrent = torrent_factory(payload, piece_length=64 * 1024)
    seeder = libtorrent_peer(torrent, payload.save_dir, True)
    seeder.wait_seeding(20)
    magnet_payload = payload_factory({"a.bin": 700_000, "sub/b.bin": 300_000}, name="folder", seed=2)
    magnet_torrent = torrent_factory(magnet_payload, piece_length=32 * 1024)
    magnet_seeder = libtorrent_peer(magnet_torrent, magnet_payload.save_dir, True)
    magnet_seeder.wait_seeding(20)
    from tests.interop.peers.payload import info_hash_libtorrent

    magnet_hash = info_hash_libtorrent(magnet_torrent).hex()
    magnet = "magnet:?" + urllib.parse.urlencode(
        [("xt", f"urn:btih:{magnet_hash}"), ("dn", "folder"), ("x.pe", f"{LOOPBACK}:{magnet_seeder.port}")])

    daemon = daemon_factory()
    assert "success" in remote(daemon, "-a", str(torrent))
    assert "success" in remote(daemon, "-a", magnet)
    rows = listed(daemon)
    assert sorted(rows) == [1, 2] and rows[1][-1] == "file.bin", rows

    seeder.add_peer(LOOPBACK, daemon.peer_port)  # the .torrent has no tracker: the seeder dials the daemon
    done = daemon.wait_torrent(1, lambda r: r["percentDone"] == 1.0, what="complete")
    assert done["status"] == SEEDING and done["leftUntilDone"] == 0
    assert payload.differences(daemon.download_dir) == []
    daemon.wait_torrent(2, lambda r: r["percentDone"] == 1.0 and r["name"] == "folder", what="complete")
    assert magnet_payload.differences(daemon.download_dir) == []
    assert listed(daemon)[1][1] == "100%"

    remote(daemon, "-t", "1", "-S")
    assert daemon.wait_torrent(1, lambda r: r["status"] == STOPPED)["percentDone"] == 1.0
    assert "Stopped" in listed(daemon)[1]
    # A stopped torrent checked again stays stopped: the damaged piece is found, not downloaded again.
    data = daemon.download_dir / "file.bin"
    with open(data, "r+b") as fh:
        fh.seek(5 * 64 * 1024 + 10)
        fh.write(b"\xff" * 16)
    remote(daemon, "-t", "1", "-v")
    row = daemon.wait_torrent(1, lambda r: r["status"] == STOPPED and r["leftUntilDone"] > 0, what="re-checked")
    assert row["leftUntilDone"] == 64 * 1024 and row["haveValid"] == payload.total_size - 64 * 1024

    remote(daemon, "-t", "1", "-s")
    seeder.add_peer(LOOPBACK, daemon.peer_port)
    daemon.wait_torrent(1, lambda r: r["percentDone"] == 1.0 and r["status"] == SEEDING, what="repaired")
    assert payload.differences(daemon.download_dir) == []

    remote(daemon, "-t", "2", "--remove-and-delete")
    assert sorted(listed(daemon)) == [1]
    assert not (daemon.download_dir / "folder").exists()
    assert data.exists()
    remote(daemon, "-t", "1", "-r")  # without data
    assert listed(daemon) == {}
    assert payload.differences(daemon.download_dir) == []
    assert daemon.stop() == 0


def test_a_restart_keeps_every_torrent_its_id_state_and_progress(daemon_factory, payload_factory,
                                                                 torrent_factory) -> None:
    first = payload_factory(2 * MiB, name="one.bin")
    second = payload_factory(1 * MiB, name="two.bin", seed=3)
    t1, t2 = torrent_factory(first), torrent_factory(second)
    daemon = daemon_factory()
    daemon.download_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(first.root, daemon.download_dir / "one.bin")  # data already there: checked, then seeding
    remote(daemon, "-a", str(t1))
    remote(daemon, "-a", str(t2))
    remote(daemon, "-a", "magnet:?xt=urn:btih:" + "ab" * 20 + "&dn=nobody-has-it")
    daemon.wait_torrent(1, lambda r: r["percentDone"] == 1.0)
    remote(daemon, "-t", "2", "-S")
    daemon.wait_torrent(2, lambda r: r["status"] == STOPPED)
    before = {r["id"]: r for r in daemon.torrents("name", "status", "percentDone", "downloadDir")}
    assert daemon.stop() == 0

    again = daemon_factory()
    after = {r["id"]: r for r in again.torrents("name", "status", "percentDone", "downloadDir")}
    assert {i: (r["hashString"], r["name"]) for i, r in after.items()} == \
        {i: (r["hashString"], r["name"]) for i, r in before.items()}
    # Right after the restart a torrent may still be reading its resume file (status "checking").
    again.wait_torrent(1, lambda r: r["percentDone"] == 1.0, what="complete again")
    again.wait_torrent(2, lambda r: r["status"] == STOPPED, what="stopped again")
    again.wait_torrent(1, lambda r: r["status"] == SEEDING, what="seeding again")
    assert [cols[-1] for _, cols in sorted(listed(again).items())] == ["one.bin", "two.bin", "nobody-has-it"]


def test_sigint_and_sigterm_stop_it_cleanly(daemon_factory, payload_factory, torrent_factory) -> None:
    import signal

    daemon = daemon_factory()
    remote(daemon, "-a", str(torrent_factory(payload_factory(256 * 1024))))
    assert daemon.stop(signal.SIGINT) == 130
    assert daemon_factory().stop(signal.SIGTERM) == 0
    assert "Traceback" not in daemon.log_tail()
