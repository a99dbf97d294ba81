"""A libtorrent leecher that times itself: `python bench/lt_leech.py TORRENT SAVE_DIR [IP:PORT]`.

Without IP:PORT it finds its peers through the torrent's trackers, as a user's client would; with it,
it also dials that peer. Prints one JSON line {"elapsed_s", "bytes"} measured from add_torrent to
`torrent_finished_alert`, waiting on alerts rather than polling (a 10 ms status poll in Python costs
CPU the seeder on the same two cores then lacks, which the earlier bench did)."""

from __future__ import annotations

import json
import sys
import time

import libtorrent as lt


def main() -> int:
    torrent, save_dir = sys.argv[1], sys.argv[2]
    peer = sys.argv[3] if len(sys.argv) > 3 else None
    # Loopback only and TCP only; nothing else changed from libtorrent's defaults.
    session = lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "dht_bootstrap_nodes": "", "enable_ip_notifier": False,
        # TCP only, as every other peer here: libtorrent otherwise tries uTP first and waits 3 s for a seeder
        # that does not speak it (the bench's libtorrent seeder has uTP off, torrentpy has none).
        "enable_outgoing_utp": False, "enable_incoming_utp": False,
        # Every peer here is 127.0.0.1. Without this libtorrent keys its peer list by IP alone: of fifty
        # seeders it kept one entry, its port the last one the tracker listed, and when that was a leecher
        # of an earlier round, long gone, it sat with no peer until the next announce (the bench hung).
        "allow_multiple_connections_per_ip": True,
        "alert_mask": int(lt.alert_category.status | lt.alert_category.error),
    })
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(torrent)
    params.save_path = save_dir
    start = time.monotonic()
    handle = session.add_torrent(params)
    dialed = peer is None
    deadline = start + 600
    while time.monotonic() < deadline:
        if not dialed and handle.status().state not in (lt.torrent_status.checking_files,
                                                         lt.torrent_status.checking_resume_data):
            host, port = peer.rsplit(":", 1)  # type: ignore[union-attr]
            handle.connect_peer((host, int(port)))
            dialed = True
        session.wait_for_alert(10 if not dialed else 500)
        for alert in session.pop_alerts():
            if isinstance(alert, lt.torrent_finished_alert):
                status = handle.status()
                print(json.dumps({"elapsed_s": time.monotonic() - start, "bytes": status.total_wanted}))
                return 0
    print(json.dumps({"error": "timed out"}))
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
