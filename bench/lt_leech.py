"""A libtorrent leecher that times itself: `python bench/lt_leech.py TORRENT SAVE_DIR IP:PORT`.

Prints one JSON line {"elapsed_s", "bytes"} measured from the first connection attempt to
`is_finished`, polling every 10 ms (the fixtures' 0.5 s status file is too coarse to time a
few-second download)."""

from __future__ import annotations

import json
import sys
import time

import libtorrent as lt


def main() -> int:
    torrent, save_dir, peer = sys.argv[1], sys.argv[2], sys.argv[3]
    host, port = peer.rsplit(":", 1)
    session = lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "dht_bootstrap_nodes": "", "enable_ip_notifier": False,
        "allow_multiple_connections_per_ip": True,
        "enable_incoming_utp": False, "enable_outgoing_utp": False,
    })
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(torrent)
    params.save_path = save_dir
    handle = session.add_torrent(params)
    while handle.status().state in (lt.torrent_status.checking_files, lt.torrent_status.checking_resume_data):
        time.sleep(0.01)
    start = time.monotonic()
    handle.connect_peer((host, int(port)))
    last_dial = start
    deadline = start + 600
    while time.monotonic() < deadline:
        status = handle.status()
        if status.is_finished:
            print(json.dumps({"elapsed_s": time.monotonic() - start, "bytes": status.total_wanted}))
            return 0
        if status.num_peers == 0 and time.monotonic() - last_dial > 1.0:
            handle.connect_peer((host, int(port)))
            last_dial = time.monotonic()
        time.sleep(0.01)
    print(json.dumps({"error": "timed out"}))
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
