"""Many libtorrent seeders in one process: `python bench/lt_swarm.py TORRENT SAVE_DIR COUNT`.

Each seeder is a session of its own (its own peer id, listen port and announce), all seeding the same
files, so a leecher sees COUNT distinct peers at the cost of one interpreter. Each session is told it has
every piece (resume data), as a seeder that checked its files long ago: in seed mode each of the COUNT
sessions would hash a piece the first time it serves it (0.6-0.8 s more CPU per GiB leeched, measured),
while the one-seeder swarm stops paying for that after its first round. Prints one JSON
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
            # As the one-seeder fixture (tests/interop/peers/lt_runner.py), so that the count of seeders
            # is the only difference between the two swarms: never queue a torrent, tick every 100 ms.
            "active_downloads": -1, "active_seeds": -1, "active_limit": -1, "tick_interval": 100,
            "alert_mask": int(lt.alert_category.error),
        })
        params = lt.add_torrent_params()
        params.ti = info
        params.save_path = save_dir
        params.have_pieces = [True] * info.num_pieces()
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
