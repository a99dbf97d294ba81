"""LibtorrentPeer: a libtorrent 2.1 session in a child process (lt_runner.py), stopped by its PID."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .base import LOOPBACK, ManagedProcess, PeerError, PeerProcess, client_env, wait_for

# Repository root, so `python -m tests.interop.peers.lt_runner` imports from any cwd.
_REPO_ROOT = Path(__file__).resolve().parents[3]


def remote_endpoints(status: dict[str, Any], peer_id_prefix: str) -> set[tuple[str, int]]:
    """(ip, port) of every connection the runner had with peers whose peer-id starts with the prefix.

    Covers live peers, peers sampled earlier, and closed connections (from peer_disconnected alerts).
    An outgoing connection's port is the remote's listen port; an incoming one's is ephemeral, so
    ``remote.address in remote_endpoints(...)`` tells that libtorrent dialled the remote.
    """
    rows = [*status.get("peers", []), *status.get("peers_seen", [])]
    rows += [e for e in status.get("events", []) if e["type"] == "peer_disconnected"]
    return {(r["ip"], r["port"]) for r in rows if r.get("peer_id_prefix", "").startswith(peer_id_prefix)}


class LibtorrentPeer(PeerProcess):
    """A libtorrent seeder or leecher on 127.0.0.1.

    ``port=None`` lets the kernel choose the listen port (no race); ``.port`` is known after start().
    ``peers`` are dialled every second until connected; ``add_peer`` adds more while running.
    """

    name = "libtorrent"

    def __init__(
        self,
        work_dir: Path,
        torrent: Path | str,
        save_dir: Path,
        seed: bool,
        port: int | None = None,
        peers: Iterable[tuple[str, int]] = (),
        upload_limit_bps: int = 0,
        download_limit_bps: int = 0,
        seed_mode: bool = False,
        name: str = "libtorrent",
        pex: bool = False,
        encryption: str | None = None,
    ) -> None:
        self.work_dir = Path(work_dir)
        # A magnet URI stays a string: libtorrent then fetches the metadata from the peers it names.
        self.torrent: Path | str = torrent if str(torrent).startswith("magnet:") else Path(torrent)
        self.save_dir = Path(save_dir)
        self.seed = seed
        self.requested_port = port
        self.peers = list(peers)
        self.upload_limit_bps = upload_limit_bps
        self.download_limit_bps = download_limit_bps
        self.seed_mode = seed_mode
        self.name = name
        self.pex = pex
        self.encryption = encryption  # None: libtorrent's defaults; "forced" or "disabled" (lt_runner.py)
        self.status_file = self.work_dir / f"{name}.status.json"
        self.peers_file = self.work_dir / f"{name}.peers"
        self._port = None
        self.process = None

    def start(self, timeout_s: float = 20.0) -> LibtorrentPeer:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.save_dir.mkdir(parents=True, exist_ok=True)
        self.status_file.unlink(missing_ok=True)
        self._write_peers_file()
        argv = [
            sys.executable,
            "-m",
            "tests.interop.peers.lt_runner",
            "--torrent",
            str(self.torrent),
            "--save",
            str(self.save_dir),
            "--status-file",
            str(self.status_file),
            "--peers-file",
            str(self.peers_file),
            "--port",
            str(self.requested_port or 0),
            "--upload-limit",
            str(self.upload_limit_bps),
            "--download-limit",
            str(self.download_limit_bps),
        ]
        if self.seed:
            argv.append("--seed")
        if self.seed_mode:
            argv.append("--seed-mode")
        if self.pex:
            argv.append("--pex")
        if self.encryption:
            argv += ["--encryption", self.encryption]
        env = client_env(self.work_dir / f"{self.name}.home")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_REPO_ROOT), env.get("PYTHONPATH", "")]))
        self.process = ManagedProcess(argv, self.work_dir / f"{self.name}.log", env=env, cwd=_REPO_ROOT)
        self.process.start()
        try:
            status = self.wait_status(self._listening, timeout_s, "a listen port")
        except BaseException:
            self.stop()
            raise
        self._port = int(status["port"])
        if self.requested_port and self._port != self.requested_port:
            self.stop()
            raise PeerError(f"{self.name}: asked for port {self.requested_port}, listening on {self._port}")
        return self

    def _listening(self, status: dict[str, Any]) -> bool:
        failed = [e for e in status.get("events", []) if e["type"] == "listen_failed"]
        if failed:
            raise PeerError(f"{self.name}: {failed[0]['message']}")
        return int(status.get("port", 0)) > 0

    def _write_peers_file(self) -> None:
        tmp = self.peers_file.with_name(self.peers_file.name + ".tmp")
        tmp.write_text("".join(f"{ip}:{port}\n" for ip, port in self.peers))
        os.replace(tmp, self.peers_file)

    def add_peer(self, ip: str, port: int) -> None:
        """Dial (ip, port) from now on, every second until connected."""
        if (ip, port) not in self.peers:
            self.peers.append((ip, port))
            self._write_peers_file()

    def status(self) -> dict[str, Any]:
        """The runner's last status (rewritten every 0.5 s); raises PeerError if the runner died."""
        if self.process is None:
            raise PeerError(f"{self.name} not started")
        try:
            return dict(json.loads(self.status_file.read_text()))
        except FileNotFoundError:
            self.process.check_alive(self.name)
            return {}

    def wait_status(
        self, predicate: Callable[[dict[str, Any]], bool], timeout_s: float, message: str = "status"
    ) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            assert self.process is not None
            self.process.check_alive(self.name)
            status = self.status()
            return status if status and predicate(status) else None

        try:
            return wait_for(check, timeout_s, 0.1, f"{self.name} {message}")
        except TimeoutError as err:
            raise PeerError(f"{err}; last status: {self._summary()}\nlog:\n{self.log_tail()}") from None

    def wait_finished(self, timeout_s: float) -> dict[str, Any]:
        """Wait until every wanted byte is on disk and verified."""
        return self.wait_status(
            lambda s: s["is_finished"] and s["total_wanted_done"] == s["total_wanted"], timeout_s, "to finish"
        )

    def wait_seeding(self, timeout_s: float) -> dict[str, Any]:
        """Wait until the data on disk is checked and the torrent is seeding."""
        return self.wait_status(lambda s: s["is_seeding"], timeout_s, "to seed")

    def _summary(self) -> str:
        try:
            s = self.status()
        except PeerError as err:
            return str(err)
        keep = ("state", "progress", "num_peers", "total_payload_download", "total_payload_upload", "error")
        short = {k: s.get(k) for k in keep}
        short["peers"] = s.get("peers", [])
        short["last_events"] = s.get("events", [])[-8:]
        return json.dumps(short)

    def __repr__(self) -> str:
        return f"LibtorrentPeer({self.name}, {LOOPBACK}:{self._port}, seed={self.seed})"
