"""A real libtorrent session announces to the built-in tracker (HTTP and UDP) and gets our peers back."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import libtorrent as lt
import pytest

from torrentpy.net.tracker import UdpTracker
from torrentpy.protocol.tracker_http import AnnounceRequest
from torrentpy.tracker import serve

pytestmark = pytest.mark.interop


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_torrent(tmp_path: Path, tracker_url: str) -> tuple[Path, bytes]:
    data = tmp_path / "data"
    data.mkdir()
    (data / "hello.bin").write_bytes(bytes(range(256)) * 300)
    # v1 only: a hybrid torrent announces twice (v1 and truncated v2 hash), i.e. joins two swarms.
    ct = lt.create_torrent(lt.list_files(str(data / "hello.bin")), 16384, lt.create_torrent.v1_only)
    ct.add_tracker(tracker_url)
    lt.set_piece_hashes(ct, str(data))
    path = tmp_path / "hello.torrent"
    path.write_bytes(lt.bencode(ct.generate()))
    info = lt.torrent_info(str(path))
    return path, bytes.fromhex(str(info.info_hashes().v1))


@pytest.mark.parametrize("scheme", ["http", "udp"])
async def test_libtorrent_announces_to_builtin_tracker(tmp_path, scheme):
    server = await serve(0, 0, "127.0.0.1", interval_s=60, min_interval_s=5)
    url = server.http_url if scheme == "http" else server.udp_url
    torrent, info_hash = make_torrent(tmp_path, url)

    # A fake peer is already in the swarm, so libtorrent's parse of our answer is checked too.
    fake = UdpTracker(server.udp_url)
    await fake.announce(AnnounceRequest(info_hash, b"-TP0001-fakepeer0001", 6999, 0, 0, 10, "started"))
    await fake.close()

    port = free_tcp_port()
    session = lt.session({
        "listen_interfaces": f"127.0.0.1:{port}",
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "dht_bootstrap_nodes": "", "enable_ip_notifier": False,
        "enable_incoming_utp": False, "enable_outgoing_utp": False,
        "alert_mask": lt.alert.category_t.tracker_notification | lt.alert.category_t.error_notification,
    })
    try:
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(str(torrent))
        params.save_path = str(tmp_path / "data")
        handle = session.add_torrent(params)
        replies, errors = [], []
        for _ in range(200):
            for alert in session.pop_alerts():
                if isinstance(alert, lt.tracker_reply_alert):
                    replies.append(alert.num_peers)
                elif isinstance(alert, lt.tracker_error_alert):
                    errors.append(alert.message())
            if replies and any(p == port for _, p in server.registry.peers(info_hash)):
                break
            await asyncio.sleep(0.05)
        assert not errors, errors
        assert replies == [1], "libtorrent got no peers from our tracker"
        peers = server.registry.peers(info_hash)
        assert ("127.0.0.1", port) in peers
        assert peers[("127.0.0.1", port)].left == 0  # it found the data and seeds
        # Removing the torrent makes libtorrent send `stopped`, which must take it out of the swarm.
        session.remove_torrent(handle)
        for _ in range(100):
            if ("127.0.0.1", port) not in server.registry.peers(info_hash):
                break
            await asyncio.sleep(0.05)
        assert ("127.0.0.1", port) not in server.registry.peers(info_hash)
    finally:
        # The session's destructor blocks until trackers answer; let it block a worker thread, not the
        # loop our tracker runs on.
        holder = [session]
        del session
        await asyncio.to_thread(holder.clear)
        await server.close()
