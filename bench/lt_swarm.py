"""Many libtorrent seeders in one process: `python bench/lt_swarm.py TORRENT SAVE_DIR COUNT`.

Each seeder is a session of its own (its own peer id, listen port and announce), all seeding the same
files in seed mode, so a leecher sees COUNT distinct peers at the cost of one interpreter. Prints one JSON
line {"ports": [...]} once every session listens, then serves until stdin closes or SIGTERM."""

from __future__ import annotations

import json
import signal
import sys
import threading

import libtorrent as lt


def main() -> int:
    torrent, save_dir, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    info = lt.torrent_info(torrent)
    sessions = []
    for _ in range(count):
        # Loopback only and TCP only, as the bench's other libtorrent peers; otherwise libtorrent's defaults.
        session = lt.session({
            "listen_interfaces": "127.0.0.1:0",
            "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
            "dht_bootstrap_nodes": "", "enable_ip_notifier": False,
            "enable_incoming_utp": False, "enable_outgoing_utp": False,
            # Every peer here is 127.0.0.1: without this a session refuses a second connection from it.
            "allow_multiple_connections_per_ip": True,
            "alert_mask": int(lt.alert_category.error),
        })
        params = lt.add_torrent_params()
        params.ti = info
        params.save_path = save_dir
        params.flags |= lt.torrent_flags.seed_mode
        params.flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)
        session.add_torrent(params)
        sessions.append(session)
    print(json.dumps({"ports": [s.listen_port() for s in sessions]}), flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    done.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
