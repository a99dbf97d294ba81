"""A small Mainline DHT of libtorrent sessions in one process, each on its own loopback address.

    python -m tests.interop.peers.lt_dht --nodes N --base-port P --status-file F [--first-host H]
        [--bootstrap HOST:PORT] [--seed TORRENT --save DIR | --leech MAGNET --save DIR]

Node i listens (TCP and UDP) on 127.0.0.(i+H):P (H is 2 unless --first-host says otherwise); every node
bootstraps from node 0, or all from --bootstrap. Distinct addresses matter: libtorrent blocks an address
that sends it more than ~50 DHT messages in 10 s, and several nodes on 127.0.0.1 would share that budget.
With --seed, the last node seeds TORRENT from DIR and announces it on the DHT (the torrent has no
tracker); with --leech, the last node downloads a trackerless MAGNET into DIR, finding its peers only on
the DHT. Every 0.5 s the status file gets each node's DHT node count and the torrent's state; SIGTERM
ends the process.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import libtorrent as lt


def node_settings(addr: str, port: int, bootstrap: str) -> dict[str, Any]:
    return {
        "listen_interfaces": f"{addr}:{port}",
        "outgoing_interfaces": "",
        "enable_dht": True,
        "dht_bootstrap_nodes": bootstrap,
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "dht_enforce_node_id": False,
        "dht_prefer_verified_node_ids": False,
        "dht_ignore_dark_internet": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_ip_notifier": False,
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": int(lt.alert_category.error | lt.alert_category.dht | lt.alert_category.status),
        "active_downloads": -1,
        "active_seeds": -1,
        "active_limit": -1,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--base-port", type=int, required=True)
    parser.add_argument("--status-file", required=True)
    parser.add_argument("--first-host", type=int, default=2)
    parser.add_argument("--bootstrap")
    parser.add_argument("--seed")
    parser.add_argument("--leech")
    parser.add_argument("--save")
    args = parser.parse_args()
    stop = False

    def on_term(_signum: int, _frame: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    addrs = [f"127.0.0.{i + args.first_host}" for i in range(args.nodes)]
    bootstrap = args.bootstrap or f"{addrs[0]}:{args.base_port}"
    sessions = [lt.session(node_settings(a, args.base_port, bootstrap if i or args.bootstrap else ""))
                for i, a in enumerate(addrs)]
    handle = None
    if args.seed:
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(args.seed)
        params.save_path = args.save
        handle = sessions[-1].add_torrent(params)
    elif args.leech:
        params = lt.parse_magnet_uri(args.leech)
        params.save_path = args.save
        handle = sessions[-1].add_torrent(params)
    peers_seen: set[str] = set()  # every peer the torrent was connected to, for a failing test's message
    while not stop:
        status: dict[str, Any] = {"nodes": [], "addrs": addrs, "port": args.base_port,
                                  "listen_ports": [s.listen_port() for s in sessions]}
        for s in sessions:
            s.post_dht_stats()
            s.post_session_stats()
            nodes = 0
            for alert in s.pop_alerts():
                if isinstance(alert, lt.dht_stats_alert):
                    nodes = sum(b["num_nodes"] for b in alert.routing_table)
            status["nodes"].append(nodes)
        if handle is not None:
            st = handle.status()
            status["seeding"] = bool(st.is_seeding)
            status["seed_peers"] = int(st.num_peers)
            status["uploaded"] = int(st.total_payload_upload)
            status["progress"] = float(st.progress)
            status["has_metadata"] = bool(st.has_metadata)
            if len(peers_seen) < 50:
                peers_seen.update(f"{p.ip[0]}:{p.ip[1]}" for p in handle.get_peer_info())
            status["peers_seen"] = sorted(peers_seen)
            if st.is_seeding and time.monotonic() % 20 < 0.6:
                handle.force_dht_announce()
            elif args.leech and not st.is_seeding and not st.num_peers and time.monotonic() % 5 < 0.6:
                # libtorrent looks a torrent up again only every 15 minutes on its own; a test's seeder
                # may announce a moment after the first look. A few queries every 5 s stay far below
                # anyone's rate limit.
                handle.force_dht_announce()
        tmp = Path(args.status_file + ".tmp")
        tmp.write_text(json.dumps(status))
        os.replace(tmp, args.status_file)
        time.sleep(0.5)


if __name__ == "__main__":
    main()
