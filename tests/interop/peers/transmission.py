"""TransmissionPeer: transmission-daemon 3.00 on 127.0.0.1, driven over its loopback JSON-RPC.

Transmission 3.00 never dials a peer on 127.0.0.0/8 that it learned from a tracker, and its RPC has no
"connect to this peer" method, so the other side must dial ``.address``; it accepts incoming peers.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .base import (
    LOOPBACK,
    ManagedProcess,
    PeerError,
    PeerProcess,
    client_env,
    free_port,
    http_request,
    listens_on,
    wait_for,
)

# torrent-get "status" values (libtransmission tr_torrent_activity).
STATUS_NAMES = {
    0: "stopped",
    1: "check_wait",
    2: "check",
    3: "download_wait",
    4: "download",
    5: "seed_wait",
    6: "seed",
}
_FIELDS = [
    "id",
    "hashString",
    "name",
    "status",
    "percentDone",
    "leftUntilDone",
    "sizeWhenDone",
    "haveValid",
    "uploadedEver",
    "downloadedEver",
    "corruptEver",
    "peersConnected",
    "peers",
    "error",
    "errorString",
    "isFinished",
    "recheckProgress",
]


class TransmissionPeer(PeerProcess):
    """transmission-daemon with one torrent; ``seed=True`` verifies the data in ``save_dir`` first."""

    name = "transmission"

    def __init__(
        self,
        work_dir: Path,
        torrent: Path,
        save_dir: Path,
        seed: bool,
        port: int | None = None,
        upload_limit_bps: int = 0,
        download_limit_bps: int = 0,
        encryption: int = 1,
        name: str = "transmission",
    ) -> None:
        self.work_dir = Path(work_dir)
        self.torrent = Path(torrent)
        self.save_dir = Path(save_dir)
        self.seed = seed
        self.requested_port = port
        self.upload_limit_bps = upload_limit_bps
        self.download_limit_bps = download_limit_bps
        # 0 = prefer clear text, 1 = prefer encrypted (Transmission's default), 2 = require encryption.
        self.encryption = encryption
        self.name = name
        self.config_dir = self.work_dir / f"{name}.config"
        self.rpc_port = 0
        self._port = None
        self.process = None
        self._session_id = ""
        self.torrent_id: int | None = None

    def _settings(self, port: int, rpc_port: int) -> dict[str, Any]:
        return {
            "dht-enabled": False,
            "lpd-enabled": False,
            "pex-enabled": False,
            "port-forwarding-enabled": False,
            "utp-enabled": False,
            "bind-address-ipv4": LOOPBACK,
            "bind-address-ipv6": "::1",
            "peer-port": port,
            "peer-port-random-on-start": False,
            "peer-limit-global": 200,
            "peer-limit-per-torrent": 50,
            "encryption": self.encryption,
            "rpc-enabled": True,
            "rpc-bind-address": LOOPBACK,
            "rpc-port": rpc_port,
            "rpc-authentication-required": False,
            "rpc-whitelist-enabled": True,
            "rpc-whitelist": LOOPBACK,
            "rpc-host-whitelist-enabled": False,
            "download-dir": str(self.save_dir),
            "incomplete-dir-enabled": False,
            "rename-partial-files": False,
            "start-added-torrents": True,
            "ratio-limit-enabled": False,
            "idle-seeding-limit-enabled": False,
            "download-queue-enabled": False,
            "seed-queue-enabled": False,
            "queue-stalled-enabled": False,
            "speed-limit-up-enabled": bool(self.upload_limit_bps),
            "speed-limit-up": max(1, self.upload_limit_bps // 1000),  # in kB/s (1000 bytes)
            "speed-limit-down-enabled": bool(self.download_limit_bps),
            "speed-limit-down": max(1, self.download_limit_bps // 1000),
            "alt-speed-enabled": False,
            "blocklist-enabled": False,
            "watch-dir-enabled": False,
            "script-torrent-done-enabled": False,
            "trash-original-torrent-files": False,
            "message-level": 2,
            "cache-size-mb": 4,
            "preallocation": 1,
            "umask": 18,
        }

    def start(self, timeout_s: float = 15.0) -> TransmissionPeer:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.save_dir.mkdir(parents=True, exist_ok=True)
        self.config_dir.mkdir(parents=True, exist_ok=True)

        def launch(port: int, attempt: int) -> ManagedProcess:
            self.rpc_port = free_port()
            (self.config_dir / "settings.json").write_text(json.dumps(self._settings(port, self.rpc_port)))
            return ManagedProcess(["transmission-daemon", "-f", "-g", str(self.config_dir)],
                                  self.work_dir / f"{self.name}.{attempt}.log",
                                  env=client_env(self.work_dir / f"{self.name}.home"))

        self._launch_until_listening(launch, self._ready, timeout_s)
        try:
            self._add_torrent()
        except BaseException:
            self.stop()
            raise
        return self

    def _ready(self, port: int) -> bool:
        return self._alive() and listens_on(self.pid, port) and self._rpc_ready()

    def _rpc_ready(self) -> bool:
        try:
            self.rpc("session-get", {"fields": ["version"]})
        except (OSError, PeerError):
            return False
        return True

    def rpc(self, method: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        """One RPC call; handles the 409 X-Transmission-Session-Id handshake (CSRF protection)."""
        body = json.dumps({"method": method, "arguments": arguments or {}}).encode()
        url = f"http://{LOOPBACK}:{self.rpc_port}/transmission/rpc"
        for _ in range(2):
            status, headers, reply = http_request(
                url, body, {"Content-Type": "application/json", "X-Transmission-Session-Id": self._session_id}
            )
            if status == 409:
                self._session_id = headers.get("x-transmission-session-id", "")
                continue
            if status != 200:
                raise PeerError(f"transmission {method}: HTTP {status} {reply[:300]!r}")
            decoded = json.loads(reply)
            if decoded.get("result") != "success":
                raise PeerError(f"transmission {method}: {decoded.get('result')}")
            return dict(decoded.get("arguments", {}))
        raise PeerError(f"transmission {method}: no session id after 409")

    def _add_torrent(self) -> None:
        reply = self.rpc(
            "torrent-add",
            {
                "metainfo": base64.b64encode(self.torrent.read_bytes()).decode(),
                "download-dir": str(self.save_dir),
                "paused": False,
            },
        )
        added = reply.get("torrent-added") or reply.get("torrent-duplicate")
        if not added:
            raise PeerError(f"transmission torrent-add: {reply}")
        self.torrent_id = int(added["id"])
        if self.seed:
            # Transmission 3.00 trusts files already present only after a verify; ask for one explicitly.
            self.rpc("torrent-verify", {"ids": [self.torrent_id]})

    def status(self) -> dict[str, Any]:
        if self.process is None or self.torrent_id is None:
            raise PeerError(f"{self.name} not started")
        self.process.check_alive(self.name)
        torrents = self.rpc("torrent-get", {"ids": [self.torrent_id], "fields": _FIELDS})["torrents"]
        if not torrents:
            raise PeerError(f"{self.name}: torrent {self.torrent_id} vanished")
        st = dict(torrents[0])
        st["state"] = STATUS_NAMES.get(st["status"], str(st["status"]))
        st["uploaded_bytes"] = st["uploadedEver"]
        st["downloaded_bytes"] = st["downloadedEver"]
        st["num_peers"] = st["peersConnected"]
        return st

    def wait_status(
        self, predicate: Callable[[dict[str, Any]], bool], timeout_s: float, message: str
    ) -> dict[str, Any]:
        last: dict[str, Any] = {}

        def check() -> dict[str, Any] | None:
            nonlocal last
            last = self.status()
            if last.get("error"):
                raise PeerError(f"{self.name} torrent error {last['error']}: {last['errorString']}")
            return last if predicate(last) else None

        try:
            return wait_for(check, timeout_s, 0.2, f"{self.name} {message}")
        except TimeoutError as err:
            short = {k: last.get(k) for k in ("state", "percentDone", "peersConnected", "uploadedEver")}
            raise PeerError(f"{err}; last status {json.dumps(short)}\n{self.log_tail()}") from None

    def wait_finished(self, timeout_s: float) -> dict[str, Any]:
        return self.wait_status(
            lambda s: s["leftUntilDone"] == 0 and s["percentDone"] == 1 and s["status"] in (5, 6),
            timeout_s,
            "to finish",
        )

    def wait_seeding(self, timeout_s: float) -> dict[str, Any]:
        return self.wait_status(
            lambda s: s["status"] == 6 and s["percentDone"] == 1, timeout_s, "to verify and seed"
        )
