"""Aria2Peer: aria2c 1.36 on 127.0.0.1, status over its loopback JSON-RPC.

aria2 cannot be told to dial a given peer: it has no "add peer" RPC and ignores magnet ``x.pe``. With
DHT/LPD/PEX off it learns peers only from trackers, so either the other side dials aria2's listen port
(``.address``), or give aria2 a loopback tracker (``trackers=[url]`` replaces the torrent's own).
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .base import (
    LOOPBACK,
    ManagedProcess,
    PeerError,
    PeerProcess,
    client_env,
    free_port,
    http_json,
    listens_on,
    wait_for,
)

# Tries with fresh ports when aria2 fails to bind (another process took the port after free_port()).


class Aria2Peer(PeerProcess):
    """aria2c seeding (``seed=True``: verifies ``save_dir`` first) or leeching into ``save_dir``.

    A leecher exits when done unless ``keep_seeding=True``; its last RPC status stays readable.
    """

    name = "aria2"

    def __init__(
        self,
        work_dir: Path,
        torrent: Path,
        save_dir: Path,
        seed: bool,
        port: int | None = None,
        trackers: Sequence[str] | None = None,
        upload_limit_bps: int = 0,
        download_limit_bps: int = 0,
        keep_seeding: bool = False,
        extra_args: Sequence[str] = (),
        log_level: str = "notice",
        name: str = "aria2",
    ) -> None:
        self.work_dir = Path(work_dir)
        self.torrent = Path(torrent)
        self.save_dir = Path(save_dir)
        self.seed = seed
        self.requested_port = port
        self.trackers = list(trackers) if trackers is not None else None
        self.upload_limit_bps = upload_limit_bps
        self.download_limit_bps = download_limit_bps
        self.keep_seeding = keep_seeding
        self.extra_args = list(extra_args)
        # "info" shows every peer connection and piece but also every RPC request (the status polls).
        self.log_level = log_level
        self.name = name
        self.rpc_port = 0
        self._port = None
        self.process = None
        self._last_status: dict[str, Any] = {}
        self._ids = itertools.count(1)

    def _argv(self, port: int, rpc_port: int) -> list[str]:
        argv = [
            "aria2c",
            "--no-conf",
            "--enable-dht=false",
            "--enable-dht6=false",
            "--bt-enable-lpd=false",
            "--enable-peer-exchange=false",
            "--disable-ipv6=true",
            "--async-dns=false",
            "--file-allocation=falloc",
            f"--listen-port={port}",
            # Binds the BT listener and outgoing sockets to loopback (without it aria2 listens on 0.0.0.0).
            f"--interface={LOOPBACK}",
            # What aria2 announces to trackers; opentracker would otherwise take the source address.
            f"--bt-external-ip={LOOPBACK}",
            "--enable-rpc=true",
            "--rpc-listen-all=false",
            f"--rpc-listen-port={rpc_port}",
            f"--stop-with-process={os.getpid()}",
            f"--dir={self.save_dir}",
            "--bt-max-peers=0",
            "--summary-interval=0",
            "--console-log-level=notice",
            f"--log={self.work_dir / (self.name + '.aria2.log')}",
            f"--log-level={self.log_level}",
            "--allow-overwrite=true",
            "--auto-save-interval=0",
            "--bt-save-metadata=false",
        ]
        if self.seed:
            argv += ["--check-integrity=true", "--bt-seed-unverified=false", "--seed-ratio=0.0"]
        elif self.keep_seeding:
            argv += ["--seed-ratio=0.0"]
        else:
            argv += ["--seed-time=0"]
        if self.trackers is not None:
            argv += ["--bt-exclude-tracker=*"]
            if self.trackers:
                argv += [f"--bt-tracker={','.join(self.trackers)}"]
        if self.upload_limit_bps:
            argv += [f"--max-upload-limit={self.upload_limit_bps}"]
        if self.download_limit_bps:
            argv += [f"--max-download-limit={self.download_limit_bps}"]
        return [*argv, *self.extra_args, str(self.torrent)]

    def start(self, timeout_s: float = 15.0) -> Aria2Peer:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.save_dir.mkdir(parents=True, exist_ok=True)

        def launch(port: int, attempt: int) -> ManagedProcess:
            self.rpc_port = free_port()
            return ManagedProcess(self._argv(port, self.rpc_port), self.work_dir / f"{self.name}.{attempt}.out",
                                  env=client_env(self.work_dir / f"{self.name}.home"))

        self._launch_until_listening(launch, self._ready, timeout_s)
        return self

    def _ready(self, port: int) -> bool:
        return self._alive() and listens_on(self.pid, port) and self._rpc_ready()

    def _rpc_ready(self) -> bool:
        try:
            self.rpc("aria2.getVersion")
        except (OSError, PeerError):
            return False
        return True

    def rpc(self, method: str, *params: Any) -> Any:
        reply = http_json(
            f"http://{LOOPBACK}:{self.rpc_port}/jsonrpc",
            {"jsonrpc": "2.0", "id": str(next(self._ids)), "method": method, "params": list(params)},
        )
        if "error" in reply:
            raise PeerError(f"aria2 {method}: {reply['error']}")
        return reply["result"]

    def status(self) -> dict[str, Any]:
        """tellStatus of the torrent plus its peers; after aria2 exited, the last status seen."""
        if self.process is None or not self.process.is_running():
            return {**self._last_status, "exited": True, "returncode": self.returncode}
        try:
            downloads = self.rpc("aria2.tellActive") + self.rpc("aria2.tellStopped", 0, 10)
        except (OSError, PeerError):
            return {**self._last_status, "exited": not self.process.is_running()}
        if not downloads:
            return dict(self._last_status)
        st = downloads[0]
        try:
            peers = self.rpc("aria2.getPeers", st["gid"]) if st["status"] == "active" else []
        except (OSError, PeerError):
            peers = []
        st = {
            **st,
            "completed_bytes": int(st["completedLength"]),
            "total_bytes": int(st["totalLength"]),
            "uploaded_bytes": int(st["uploadLength"]),
            "num_peers": int(st.get("connections", 0)),
            "peers": peers,
            "exited": False,
        }
        self._last_status = st
        return st

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def wait_status(self, predicate: Any, timeout_s: float, message: str) -> dict[str, Any]:
        try:
            return wait_for(lambda: (s := self.status()) and predicate(s) and s, timeout_s, 0.2, message)
        except TimeoutError as err:
            short = {k: self._last_status.get(k) for k in ("status", "completed_bytes", "num_peers")}
            raise PeerError(
                f"{self.name}: {err}; last status {json.dumps(short)}\n{self.log_tail()}"
            ) from None

    def wait_finished(self, timeout_s: float) -> dict[str, Any]:
        """Wait until every byte is downloaded and verified (or aria2 --seed-time=0 exited with 0)."""

        def done(s: dict[str, Any]) -> bool:
            if s.get("exited"):
                if self.returncode != 0:
                    raise PeerError(f"{self.name} exited with {self.returncode}\n{self.log_tail()}")
                return True
            if s.get("status") == "error":
                raise PeerError(f"{self.name} download error {s.get('errorCode')}: {s.get('errorMessage')}")
            return s.get("total_bytes", 0) > 0 and s["completed_bytes"] == s["total_bytes"]

        return self.wait_status(done, timeout_s, "download to finish")

    def wait_seeding(self, timeout_s: float) -> dict[str, Any]:
        """Wait until aria2 verified ``save_dir`` and seeds (the check runs before it listens for BT)."""
        return self.wait_status(
            lambda s: s.get("status") == "active" and s.get("seeder") == "true", timeout_s, "to seed"
        )

    def log_tail(self) -> str:
        aria2_log = self.work_dir / f"{self.name}.aria2.log"
        tail = aria2_log.read_bytes()[-3000:].decode(errors="replace") if aria2_log.exists() else ""
        return super().log_tail() + "\n--- aria2 log ---\n" + tail

    def stop(self, timeout_s: float = 10.0) -> int | None:
        if self.process is not None and self.process.is_running():
            self.status()  # keep the final counters readable after aria2 is gone
        return super().stop(timeout_s)
