"""QbittorrentPeer: qbittorrent-nox 4.5 on 127.0.0.1, driven through its Web API v2.

qBittorrent can be told to dial a peer: ``add_peer(ip, port)`` (POST /api/v2/torrents/addPeers).
"""

from __future__ import annotations

import json
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
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
from .payload import info_hash_libtorrent

_SEEDING_STATES = {"uploading", "stalledUP", "forcedUP", "queuedUP"}
_ERROR_STATES = {"error", "missingFiles"}


class QbittorrentPeer(PeerProcess):
    """qbittorrent-nox with one torrent; ``seed=True`` checks the data in ``save_dir`` then seeds."""

    name = "qbittorrent"

    def __init__(
        self,
        work_dir: Path,
        torrent: Path,
        save_dir: Path,
        seed: bool,
        port: int | None = None,
        upload_limit_bps: int = 0,
        download_limit_bps: int = 0,
        name: str = "qbittorrent",
    ) -> None:
        self.work_dir = Path(work_dir)
        self.torrent = Path(torrent)
        self.save_dir = Path(save_dir)
        self.seed = seed
        self.requested_port = port
        self.upload_limit_bps = upload_limit_bps
        self.download_limit_bps = download_limit_bps
        self.name = name
        self.profile_dir = self.work_dir / f"{name}.profile"
        self.webui_port = 0
        self._port = None
        self.process = None
        self.info_hash_hex = info_hash_libtorrent(self.torrent).hex()

    def _config(self, port: int, webui_port: int) -> str:
        # Qt INI: "\" separates sub-keys inside a section. Old and new key names are both written where
        # qBittorrent renamed them, so a migration on first start cannot turn a feature back on.
        return "\n".join(
            [
                "[LegalNotice]",
                "Accepted=true",
                "",
                "[BitTorrent]",
                "Session\\DHTEnabled=false",
                "Session\\LSDEnabled=false",
                "Session\\PeXEnabled=false",
                "Session\\AnonymousModeEnabled=false",
                "Session\\BTProtocol=TCP",
                "Session\\Interface=lo",
                "Session\\InterfaceName=lo",
                f"Session\\InterfaceAddress={LOOPBACK}",
                "Session\\MultiConnectionsPerIp=true",
                f"Session\\Port={port}",
                "Session\\UseRandomPort=false",
                "Session\\QueueingSystemEnabled=false",
                "Session\\GlobalMaxRatio=-1",
                "Session\\GlobalMaxSeedingMinutes=-1",
                f"Session\\DefaultSavePath={self.save_dir}",
                "Session\\TempPathEnabled=false",
                "Session\\AddExtensionToIncompleteFiles=false",
                "Session\\AddTorrentPaused=false",
                "Session\\TorrentContentLayout=Original",
                "Session\\Encryption=0",
                "Session\\IgnoreLimitsOnLAN=false",
                f"Session\\GlobalUPSpeedLimit={self.upload_limit_bps // 1024}",
                f"Session\\GlobalDLSpeedLimit={self.download_limit_bps // 1024}",
                "Session\\TrackerEnabled=false",
                "",
                "[Network]",
                "PortForwardingEnabled=false",
                "Proxy\\OnlyForTorrents=false",
                "",
                "[Preferences]",
                "Connection\\UPnP=false",
                "Connection\\ResolvePeerCountries=false",
                "General\\Locale=en",
                f"WebUI\\Address={LOOPBACK}",
                f"WebUI\\Port={webui_port}",
                "WebUI\\LocalHostAuth=false",
                "WebUI\\UPnP=false",
                "WebUI\\CSRFProtection=false",
                "WebUI\\HostHeaderValidation=false",
                "WebUI\\ServerDomains=*",
                "Advanced\\trackerEnabled=false",
                "",
                "[RSS]",
                "AutoDownloader\\EnableProcessing=false",
                "Session\\EnableProcessing=false",
                "",
            ]
        )

    def start(self, timeout_s: float = 20.0) -> QbittorrentPeer:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.save_dir.mkdir(parents=True, exist_ok=True)
        conf = self.profile_dir / "qBittorrent" / "config" / "qBittorrent.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)

        def launch(port: int, attempt: int) -> ManagedProcess:
            self.webui_port = free_port()
            conf.write_text(self._config(port, self.webui_port))
            return ManagedProcess(
                ["qbittorrent-nox", f"--profile={self.profile_dir}", f"--webui-port={self.webui_port}"],
                self.work_dir / f"{self.name}.{attempt}.log",
                env=client_env(self.work_dir / f"{self.name}.home"),
            )

        self._launch_until_listening(launch, self._ready, timeout_s)
        try:
            self._add_torrent()
        except BaseException:
            self.stop()
            raise
        return self

    def _ready(self, port: int) -> bool:
        return self._alive() and self._api_ready() and listens_on(self.pid, port)

    def _api_ready(self) -> bool:
        try:
            self.api("app/version")
        except (OSError, PeerError):
            return False
        return True

    def api(
        self,
        endpoint: str,
        form: Mapping[str, str] | None = None,
        files: Mapping[str, tuple[str, bytes]] | None = None,
        query: Mapping[str, str] | None = None,
    ) -> Any:
        """GET (no form/files) or POST to /api/v2/<endpoint>; JSON replies decoded, others as text."""
        url = f"http://{LOOPBACK}:{self.webui_port}/api/v2/{endpoint}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        headers: dict[str, str] = {"Referer": f"http://{LOOPBACK}:{self.webui_port}"}
        body: bytes | None = None
        if files:
            boundary = uuid.uuid4().hex
            parts: list[bytes] = []
            for key, value in (form or {}).items():
                disposition = f'Content-Disposition: form-data; name="{key}"'
                parts.append(f"--{boundary}\r\n{disposition}\r\n\r\n{value}\r\n".encode())
            for key, (filename, data) in files.items():
                parts.append(
                    (
                        f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"; '
                        f'filename="{filename}"\r\nContent-Type: application/x-bittorrent\r\n\r\n'
                    ).encode()
                    + data
                    + b"\r\n"
                )
            parts.append(f"--{boundary}--\r\n".encode())
            body = b"".join(parts)
            headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
        elif form is not None:
            body = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        status, resp_headers, reply = http_request(url, body, headers)
        if status != 200:
            raise PeerError(f"qbittorrent {endpoint}: HTTP {status} {reply[:300]!r}")
        if resp_headers.get("content-type", "").startswith("application/json"):
            return json.loads(reply)
        return reply.decode(errors="replace")

    def _add_torrent(self) -> None:
        reply = self.api(
            "torrents/add",
            form={
                "savepath": str(self.save_dir),
                "paused": "false",
                "skip_checking": "false",
                "autoTMM": "false",
                "contentLayout": "Original",
                "upLimit": str(self.upload_limit_bps or -1),
                "dlLimit": str(self.download_limit_bps or -1),
            },
            files={"torrents": (self.torrent.name, self.torrent.read_bytes())},
        )
        if str(reply).strip() != "Ok.":
            raise PeerError(f"qbittorrent torrents/add: {reply!r}")
        wait_for(lambda: self._info(), 10.0, 0.1, f"{self.name} to list the added torrent")

    def _info(self) -> dict[str, Any] | None:
        torrents = self.api("torrents/info", query={"hashes": self.info_hash_hex})
        return dict(torrents[0]) if torrents else None

    def add_peer(self, ip: str, port: int) -> None:
        """Make qBittorrent dial (ip, port) for this torrent."""
        self.api("torrents/addPeers", form={"hashes": self.info_hash_hex, "peers": f"{ip}:{port}"})

    def peers(self) -> dict[str, Any]:
        reply = self.api("sync/torrentPeers", query={"hash": self.info_hash_hex, "rid": "0"})
        return dict(reply.get("peers", {}))

    def status(self) -> dict[str, Any]:
        if self.process is None:
            raise PeerError(f"{self.name} not started")
        self.process.check_alive(self.name)
        st = self._info()
        if st is None:
            raise PeerError(f"{self.name}: torrent {self.info_hash_hex} not listed")
        st["uploaded_bytes"] = st["uploaded"]
        st["downloaded_bytes"] = st["downloaded"]
        st["num_peers"] = st["num_seeds"] + st["num_leechs"]
        return st

    def wait_status(
        self, predicate: Callable[[dict[str, Any]], bool], timeout_s: float, message: str
    ) -> dict[str, Any]:
        last: dict[str, Any] = {}

        def check() -> dict[str, Any] | None:
            nonlocal last
            last = self.status()
            if last["state"] in _ERROR_STATES:
                raise PeerError(f"{self.name} torrent state {last['state']}\n{self.log_tail()}")
            return last if predicate(last) else None

        try:
            return wait_for(check, timeout_s, 0.2, f"{self.name} {message}")
        except TimeoutError as err:
            short = {k: last.get(k) for k in ("state", "progress", "num_peers", "uploaded", "amount_left")}
            raise PeerError(f"{err}; last status {json.dumps(short)}\n{self.log_tail()}") from None

    def wait_finished(self, timeout_s: float) -> dict[str, Any]:
        return self.wait_status(
            lambda s: s["amount_left"] == 0 and s["progress"] == 1 and s["state"] in _SEEDING_STATES,
            timeout_s,
            "to finish",
        )

    def wait_seeding(self, timeout_s: float) -> dict[str, Any]:
        return self.wait_status(
            lambda s: s["progress"] == 1 and s["state"] in _SEEDING_STATES, timeout_s, "to check and seed"
        )
