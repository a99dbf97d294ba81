"""Per-torrent speed limits, honorsSessionLimits and the idle seeding limit, set over RPC: by Debian's
`transmission-remote` 3.00 (`-t ID -d/-u`, `-D/-U`, `-HL/-hl`; it has no idle-limit option, added in
Transmission 4) and by the `transmission-rpc` library (every field, the idle limit included). Checked in
torrent-get, in a download rate measured against a libtorrent seeder, and after a restart."""

from __future__ import annotations

import time

import pytest
from transmission_rpc import Client

from tests.interop.peers.base import LOOPBACK
from tests.interop.peers.payload import MiB
from tests.rpc.test_transmission_remote import remote

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

LIMIT_FIELDS = ("downloadLimit", "downloadLimited", "uploadLimit", "uploadLimited", "honorsSessionLimits",
                "seedIdleLimit", "seedIdleMode")


def test_remote_sets_speed_limits_and_the_download_rate_follows(daemon_factory, payload_factory,
                                                                torrent_factory, libtorrent_peer) -> None:
    payload = payload_factory(6 * MiB, name="limited.bin")
    torrent = torrent_factory(payload, piece_length=32 * 1024)
    seeder = libtorrent_peer(torrent, payload.save_dir, True)
    seeder.wait_seeding(20)
    daemon = daemon_factory()
    assert "success" in remote(daemon, "-a", str(torrent))
    remote(daemon, "-t", "1", "-d", "400", "-u", "50", "-HL")
    (row,) = daemon.torrents(*LIMIT_FIELDS, ids=[1])
    assert (row["downloadLimit"], row["downloadLimited"], row["uploadLimit"], row["uploadLimited"]) == \
        (400, True, 50, True)
    assert row["honorsSessionLimits"] is False and row["seedIdleMode"] == 0

    seeder.add_peer(LOOPBACK, daemon.peer_port)
    first = daemon.wait_torrent(1, lambda r: r["haveValid"] > 256 * 1024, what="downloading")
    t0, have0 = time.monotonic(), first["haveValid"]
    time.sleep(4.0)
    (later,) = daemon.torrents("haveValid", ids=[1])
    rate = (later["haveValid"] - have0) / (time.monotonic() - t0)
    # 400 kB/s counted on the wire; a verified piece is 32 KiB, so the count is coarse by a few of them.
    assert 400_000 * 0.6 < rate < 400_000 * 1.2, rate
    assert later["haveValid"] < payload.total_size

    remote(daemon, "-t", "1", "-D", "-hl")
    (row,) = daemon.torrents(*LIMIT_FIELDS, ids=[1])
    assert row["downloadLimited"] is False and row["honorsSessionLimits"] is True
    done = daemon.wait_torrent(1, lambda r: r["leftUntilDone"] == 0, timeout_s=30, what="complete, unlimited")
    assert done["percentDone"] == 1.0 and payload.differences(daemon.download_dir) == []

    assert daemon.stop() == 0
    again = daemon_factory()
    (row,) = again.torrents(*LIMIT_FIELDS, ids=[1])
    assert (row["downloadLimited"], row["uploadLimit"], row["uploadLimited"], row["honorsSessionLimits"]) == \
        (False, 50, True, True)
    remote(again, "-t", "1", "-U")
    (row,) = again.torrents("uploadLimited", ids=[1])
    assert row["uploadLimited"] is False


def test_the_library_sets_limits_and_an_idle_limit_ends_seeding(daemon_factory, payload_factory,
                                                                torrent_factory) -> None:
    payload = payload_factory(1 * MiB, name="idle.bin")
    torrent = torrent_factory(payload, piece_length=32 * 1024)
    daemon = daemon_factory()
    client = Client(host=LOOPBACK, port=daemon.rpc_port, timeout=30)
    client.set_session(idle_seeding_limit=7, idle_seeding_limit_enabled=True)
    session = client.get_session()
    assert session.idle_seeding_limit == 7 and session.idle_seeding_limit_enabled is True
    (daemon.download_dir).mkdir(parents=True, exist_ok=True)
    (daemon.download_dir / "idle.bin").write_bytes((payload.root).read_bytes())
    added = client.add_torrent(torrent.read_bytes(), paused=True)

    client.change_torrent(added.id, download_limit=123, download_limited=True, upload_limit=45,
                          upload_limited=True, honors_session_limits=False, seed_idle_limit=3, seed_idle_mode=1)
    got = client.get_torrent(added.id)
    assert (got.download_limit, got.download_limited, got.upload_limit, got.upload_limited) == (123, True, 45, True)
    assert got.honors_session_limits is False
    assert (got.seed_idle_limit, got.seed_idle_mode.value) == (3, 1)

    # An idle limit of 0 minutes is met as soon as the torrent seeds, as in Transmission: it finishes.
    client.change_torrent(added.id, seed_idle_limit=0)
    client.start_torrent(added.id)
    deadline = time.monotonic() + 30
    while not (t := client.get_torrent(added.id)).is_finished:
        assert time.monotonic() < deadline, (t.status, t.progress)
        time.sleep(0.2)
    assert t.progress == 100.0 and t.status == "stopped"

    # Bad values are refused, as Transmission refuses them.
    with pytest.raises(Exception, match="seedIdleMode"):
        client.change_torrent(added.id, seed_idle_mode=5)

    assert daemon.stop() == 0
    again = daemon_factory()
    client = Client(host=LOOPBACK, port=again.rpc_port, timeout=30)
    got = client.get_torrent(added.id)
    assert (got.download_limit, got.upload_limit, got.seed_idle_mode.value) == (123, 45, 1)
    assert client.get_session().idle_seeding_limit == 7
