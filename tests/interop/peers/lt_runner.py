"""A libtorrent peer in its own process, driven by LibtorrentPeer (libtorrent_peer.py).

    python -m tests.interop.peers.lt_runner --torrent T --save DIR --status-file F [--port P] [--seed]
        [--seed-mode] [--peer IP:PORT]... [--peers-file F] [--upload-limit BPS] [--download-limit BPS] [--pex]
        [--encryption forced|disabled]

It keeps the session on 127.0.0.1 (no DHT/LSD/UPnP/NAT-PMP, no PEX unless --pex, TCP only), dials the
given peers until connected, and every 0.5 s atomically rewrites a JSON status file. SIGTERM makes it write a final
status and exit 0.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

import libtorrent as lt

STATUS_INTERVAL_S = 0.5
REDIAL_INTERVAL_S = 1.0
# Alerts kept in the status file: enough to explain a failed test, bounded so the file stays small.
EVENT_LIMIT = 300
# Lines read from the peers file; a test names a handful of peers, never thousands.
PEERS_FILE_LIMIT = 256
# Distinct peer endpoints remembered in "peers_seen"; a test talks to a few, self-connections add one.
PEERS_SEEN_LIMIT = 200

_INTERESTING_ALERTS = (
    "peer_connect",  # each outgoing connection attempt
    "peer_ban",
    "peer_disconnected",
    "peer_error",
    "hash_failed",
    "torrent_error",
    "file_error",
    "listen_failed",
    "listen_succeeded",
    "torrent_finished",
    "tracker_error",
    "tracker_reply",
    "invalid_request",
    "peer_snubbed",
    "performance",
)


_REPORTED_SETTINGS = (
    "out_enc_policy",
    "in_enc_policy",
    "allowed_enc_level",
    "listen_interfaces",
    "enable_dht",
    "enable_lsd",
    "enable_upnp",
    "enable_natpmp",
    "enable_incoming_utp",
    "enable_outgoing_utp",
)


# --encryption: libtorrent's default (both policies "enabled", either method, plaintext preferred) unless
# told: forced = encrypted handshakes only, RC4 only; disabled = plain handshakes only.
_ENCRYPTION = {
    "forced": {"out_enc_policy": 0, "in_enc_policy": 0, "allowed_enc_level": 2},
    "disabled": {"out_enc_policy": 2, "in_enc_policy": 2},
}


def _settings(port: int) -> dict[str, Any]:
    return {
        "listen_interfaces": f"127.0.0.1:{port}",
        "outgoing_interfaces": "",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "dht_bootstrap_nodes": "",
        "enable_ip_notifier": False,
        "allow_multiple_connections_per_ip": True,
        # uTP on loopback is ~3x slower than TCP and the clients under test speak TCP.
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        "enable_incoming_tcp": True,
        "enable_outgoing_tcp": True,
        "alert_mask": int(
            lt.alert_category.error
            | lt.alert_category.peer
            | lt.alert_category.status
            | lt.alert_category.connect
            | lt.alert_category.storage
            | lt.alert_category.tracker
            | lt.alert_category.performance_warning
        ),
        "user_agent": "torrentpy-interop-libtorrent/" + lt.__version__,
        # Tests run one torrent per session: never queue it behind an auto-manager decision.
        "active_downloads": -1,
        "active_seeds": -1,
        "active_limit": -1,
        # Fast feedback on loopback: a dead peer should be forgotten in seconds, not minutes.
        "peer_connect_timeout": 3,
        "min_reconnect_time": 1,
        "tick_interval": 100,
    }


def _endpoint(ep: Any) -> tuple[str, int] | None:
    try:
        return (str(ep[0]), int(ep[1]))
    except (TypeError, IndexError, ValueError):
        return None


def _peer_id_prefix(pid: Any) -> str:
    # The first 8 bytes name the client by convention ("-qB4520-", "-TR3000-", "A2-1-36-", "-lt0D10-").
    try:
        return bytes(pid.to_bytes()[:8]).decode("latin-1")
    except (AttributeError, TypeError):
        return ""


def _alert_event(alert: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"t": round(time.time(), 3), "type": alert.what(), "message": alert.message()}
    ep = _endpoint(getattr(alert, "endpoint", None)) or _endpoint(getattr(alert, "ip", None))
    if ep is not None:
        event["ip"], event["port"] = ep
    if alert.what() == "peer_disconnected":
        event["peer_id_prefix"] = _peer_id_prefix(alert.pid)
        event["reason"] = int(alert.reason)
        event["error"] = alert.error.message()
        event["op"] = str(alert.op)
    if alert.what() == "hash_failed":
        event["piece"] = int(alert.piece_index)
    error = getattr(alert, "error", None)
    if error is not None and hasattr(error, "message") and "error" not in event:
        event["error"] = error.message()
    return event


def _read_peers_file(path: Path | None) -> list[tuple[str, int]]:
    if path is None or not path.exists():
        return []
    peers = []
    for line in path.read_text().splitlines()[:PEERS_FILE_LIMIT]:
        host, _, port = line.strip().rpartition(":")
        if host and port.isdigit():
            peers.append((host, int(port)))
    return peers


def _write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _peer_rows(handle: Any) -> list[dict[str, Any]]:
    rows = []
    for p in handle.get_peer_info():
        ep = _endpoint(p.ip) or ("", 0)
        client = p.client.decode(errors="replace") if isinstance(p.client, bytes) else str(p.client)
        rows.append(
            {
                "ip": ep[0],
                "port": ep[1],
                "client": client,
                "peer_id_prefix": _peer_id_prefix(p.pid),
                "up_bytes": int(p.total_upload),
                "down_bytes": int(p.total_download),
                "progress": float(p.progress),
                "seed": bool(p.flags & lt.peer_info.seed),
                "outgoing": bool(p.flags & lt.peer_info.outgoing_connection),
                # Set once an encrypted (MSE) handshake finished: the method it chose for the stream.
                "encryption": "rc4" if p.flags & lt.peer_info.rc4_encrypted else
                              "plaintext" if p.flags & lt.peer_info.plaintext_encrypted else "",
                "num_hashfails": int(p.num_hashfails),
            }
        )
    return rows


def _handshaken(row: dict[str, Any]) -> bool:
    return bool(row["client"] or row["peer_id_prefix"].strip("\0"))


def _remember(seen: dict[str, dict[str, Any]], rows: list[dict[str, Any]]) -> None:
    """Keep every peer ever connected (with its largest counters), so short-lived ones stay visible."""
    for row in rows:
        key = f"{row['ip']}:{row['port']}"
        if key not in seen and len(seen) >= PEERS_SEEN_LIMIT:
            continue
        old = seen.get(key, {})
        seen[key] = {
            **row,
            "client": row["client"] or old.get("client", ""),
            "up_bytes": max(row["up_bytes"], old.get("up_bytes", 0)),
            "down_bytes": max(row["down_bytes"], old.get("down_bytes", 0)),
        }


def _status(
    ses: Any,
    handle: Any,
    events: deque[dict[str, Any]],
    counters: dict[str, int],
    seen: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    st = handle.status()
    peers = _peer_rows(handle)
    _remember(seen, [r for r in peers if _handshaken(r)])
    return {
        "pid": os.getpid(),
        "time": time.time(),
        "port": ses.listen_port(),
        "progress": float(st.progress),
        "state": str(st.state),
        "is_seeding": bool(st.is_seeding),
        "is_finished": bool(st.is_finished),
        "paused": bool(st.flags & lt.torrent_flags.paused),
        "error": st.errc.message() if st.errc.value() else "",
        "total_wanted": int(st.total_wanted),
        "total_wanted_done": int(st.total_wanted_done),
        "total_payload_upload": int(st.total_payload_upload),
        "total_payload_download": int(st.total_payload_download),
        "all_time_upload": int(st.all_time_upload),
        "all_time_download": int(st.all_time_download),
        "upload_rate_bps": int(st.upload_payload_rate),
        "download_rate_bps": int(st.download_payload_rate),
        "upload_limit_bps": int(handle.upload_limit()),
        "download_limit_bps": int(handle.download_limit()),
        "num_peers": int(st.num_peers),
        "peers": peers,
        "peers_seen": list(seen.values()),
        "settings": {k: ses.get_settings()[k] for k in _REPORTED_SETTINGS},
        "counters": dict(counters),
        "events": list(events),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lt_runner")
    parser.add_argument("--torrent", required=True, help=".torrent file, or a magnet URI (metadata from peers)")
    parser.add_argument("--save", required=True, type=Path)
    parser.add_argument("--status-file", required=True, type=Path)
    parser.add_argument("--port", type=int, default=0, help="0: let the kernel pick; status reports it")
    parser.add_argument("--seed", action="store_true", help="data is on disk: check it, then seed")
    parser.add_argument("--seed-mode", action="store_true", help="trust the data on disk without checking")
    parser.add_argument("--peer", action="append", default=[], help="IP:PORT to dial until connected")
    parser.add_argument("--peers-file", type=Path, help="re-read every second for more IP:PORT lines")
    parser.add_argument("--upload-limit", type=int, default=0, help="bytes/s for this torrent, 0 = none")
    parser.add_argument("--download-limit", type=int, default=0, help="bytes/s for this torrent, 0 = none")
    parser.add_argument("--pex", action="store_true", help="keep ut_pex on for this torrent (off by default)")
    parser.add_argument("--encryption", choices=sorted(_ENCRYPTION), help="default: libtorrent's own")
    args = parser.parse_args(argv)

    stopping = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    # A plain dict is accepted at runtime (the stubs only list settings_pack / session_params); passing
    # it to the constructor means the session never binds libtorrent's default 0.0.0.0:6881.
    ses = lt.session({**_settings(args.port), **_ENCRYPTION.get(args.encryption or "", {})})  # type: ignore[call-overload]
    if args.torrent.startswith("magnet:"):
        atp = lt.parse_magnet_uri(args.torrent)  # peers in x.pe are dialled by libtorrent itself
    else:
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(args.torrent)
    atp.save_path = str(args.save)
    atp.flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)
    atp.flags |= lt.torrent_flags.disable_dht | lt.torrent_flags.disable_lsd
    if not args.pex:
        atp.flags |= lt.torrent_flags.disable_pex
    if args.seed_mode:
        atp.flags |= lt.torrent_flags.seed_mode
    # The torrent's own limits, not the session's: the session limits exempt local peers (loopback is
    # in libtorrent's "local" peer class), the torrent's apply to every peer of the torrent.
    atp.upload_limit = args.upload_limit or -1
    atp.download_limit = args.download_limit or -1
    handle = ses.add_torrent(atp)

    static_peers = []
    for spec in args.peer:
        host, _, port = spec.rpartition(":")
        static_peers.append((host, int(port)))

    events: deque[dict[str, Any]] = deque(maxlen=EVENT_LIMIT)
    counters: dict[str, int] = {}
    seen: dict[str, dict[str, Any]] = {}
    next_status = 0.0
    next_dial = 0.0
    while not stopping:
        for alert in ses.pop_alerts():
            name = alert.what()
            counters[name] = counters.get(name, 0) + 1
            if name in _INTERESTING_ALERTS or alert.category() & lt.alert_category.error:
                events.append(_alert_event(alert))
        now = time.monotonic()
        rows = _peer_rows(handle)
        # Sampled every loop (<= 0.1 s) so a peer that connects, transfers and leaves is still recorded.
        _remember(seen, [r for r in rows if _handshaken(r)])
        if now >= next_dial:
            next_dial = now + REDIAL_INTERVAL_S
            connected = {(p["ip"], p["port"]) for p in rows}
            for peer in static_peers + _read_peers_file(args.peers_file):
                if peer not in connected:
                    handle.connect_peer(peer)
        if now >= next_status:
            next_status = now + STATUS_INTERVAL_S
            _write_json_atomically(args.status_file, _status(ses, handle, events, counters, seen))
        ses.wait_for_alert(100)
    _write_json_atomically(
        args.status_file, {**_status(ses, handle, events, counters, seen), "stopped": True}
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
