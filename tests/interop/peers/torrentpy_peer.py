"""torrentpy itself as a peer process (`python -m torrentpy add … --json`), read through its JSON lines."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tests.interop.peers.base import LOOPBACK, ManagedProcess, PeerError, PeerProcess, free_port, wait_for
from torrentpy import selfexec


class TorrentpyPeer(PeerProcess):
    """A `torrentpy add` process on 127.0.0.1. `seed` only picks defaults: with data on disk it seeds
    (forever unless `seed_ratio`/`seed_time` say otherwise); without, it downloads then exits.
    `default_goal` passes no seeding option at all (the default --seed-ratio 1.0); `console_script` runs the
    installed `torrentpy` script from a folder of its own, as people run it."""

    name = "torrentpy"

    def __init__(
        self,
        work_dir: Path,
        torrent: Path | str | Sequence[Path | str],
        save_dir: Path,
        seed: bool,
        *,
        name: str = "torrentpy",
        port: int | None = None,
        peers: Sequence[tuple[str, int] | str] = (),
        seed_ratio: float | None = None,
        extra_args: Sequence[str] = (),
        interval_s: float = 0.5,
        default_goal: bool = False,
        console_script: bool = False,
    ) -> None:
        self.name = name
        self.work_dir = Path(work_dir) / name
        self.torrents = [torrent] if isinstance(torrent, (str, Path)) else list(torrent)
        self.save_dir = Path(save_dir)
        self.seed = seed
        self._port = port
        self.peers = [p if isinstance(p, str) else f"{p[0]}:{p[1]}" for p in peers]
        self.seed_ratio = seed_ratio
        self.extra_args = list(extra_args)
        self.interval_s = interval_s
        self.default_goal = default_goal
        self.console_script = console_script
        self.process: ManagedProcess | None = None
        self._offset = 0
        self._pending = b""
        self.records: list[dict[str, Any]] = []

    def argv(self) -> list[str]:
        command = [str(Path(sys.executable).with_name("torrentpy"))] if self.console_script else \
            selfexec.command()
        args = [
            *command,
            "add",
            *map(str, self.torrents),
            "-o",
            str(self.save_dir),
            "--bind",
            LOOPBACK,
            "--listen-port",
            str(self.port),
            "--json",
            "--interval",
            str(self.interval_s),
        ]
        if self.default_goal:
            pass
        elif self.seed_ratio is not None:
            args += ["--seed-ratio", str(self.seed_ratio)]
        elif self.seed:
            args += ["--seed-forever"]
        else:
            args += ["--seed-ratio", "0"]
        for peer in self.peers:
            args += ["--peer", peer]
        return args + self.extra_args

    def start(self, timeout_s: float = 20.0) -> TorrentpyPeer:
        if self._port is None:
            self._port = free_port()
        self.save_dir.mkdir(parents=True, exist_ok=True)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.stdout_path = self.work_dir / "stdout.jsonl"
        self.process = ManagedProcess(self.argv(), self.work_dir / "torrentpy.log")
        # JSON lines go to their own file so the log (stderr) can't interleave with them.
        import subprocess

        log = open(self.process.log_path, "ab")
        out = open(self.stdout_path, "wb")
        self.process._popen = subprocess.Popen(  # type: ignore[attr-defined]
            self.process.argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=log,
            start_new_session=True,
            env=selfexec.environment(),
            cwd=self.work_dir if self.console_script else None,
        )
        log.close()
        out.close()
        process = self.process
        wait_for(
            lambda: self.event("listening") is not None or process.poll() is not None,
            timeout_s,
            interval_s=0.05,
            message=f"{self.name} to listen",
        )
        if process.poll() not in (None, 0):
            raise PeerError(f"{self.name} exited with {process.poll()}:\n{self.log_tail()}")
        return self

    # --- reading its output -------------------------------------------------------

    def read(self) -> list[dict[str, Any]]:
        """All JSON records so far (parsed incrementally)."""
        try:
            with open(self.stdout_path, "rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
        except OSError:
            return self.records
        self._offset += len(chunk)
        data = self._pending + chunk
        lines = data.split(b"\n")
        self._pending = lines.pop()
        for line in lines:
            if line.strip():
                self.records.append(json.loads(line))
        return self.records

    def events(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.read() if r.get("type") == "event" and r.get("event") == name]

    def event(self, name: str) -> dict[str, Any] | None:
        found = self.events(name)
        return found[-1] if found else None

    def stats(self) -> dict[str, Any] | None:
        records = [r for r in self.read() if r.get("type") == "stats"]
        return records[-1] if records else None

    def status(self) -> dict[str, Any]:
        return self.stats() or {}

    def wait_event(self, name: str, timeout_s: float) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            if self.process is not None and self.process.poll() not in (None, 0) and self.event(name) is None:
                raise PeerError(
                    f"{self.name} exited ({self.process.poll()}) before '{name}':\n{self.log_tail()}"
                )
            return self.event(name)

        return wait_for(check, timeout_s, interval_s=0.1, message=f"{self.name}: no '{name}' event")

    def wait_exit(self, timeout_s: float) -> int:
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            rc = self.process.poll()
            if rc is not None:
                self.read()
                return rc
            time.sleep(0.1)
        raise PeerError(f"{self.name} still running after {timeout_s}s:\n{self.log_tail()}")

    def wait_finished(self, timeout_s: float) -> dict[str, Any]:
        return self.wait_event("completed", timeout_s)

    def log_tail(self) -> str:
        return self.process.log_tail() if self.process is not None else ""

    def stop(self, timeout_s: float = 10.0) -> int | None:
        rc = self.process.stop(timeout_s) if self.process is not None else None
        self.read()
        return rc

    def kill9(self) -> int | None:
        return self.process.kill9() if self.process is not None else None


def torrentpy_factory(registry: Any) -> Callable[..., TorrentpyPeer]:
    def make(torrent: Any, save_dir: Path, seed: bool, *, start: bool = True, **kwargs: Any) -> TorrentpyPeer:
        kwargs.setdefault("name", registry.next_name("torrentpy"))
        peer = TorrentpyPeer(registry.work_dir, torrent, save_dir, seed, **kwargs)
        registry.peers.append(peer)
        return peer.start() if start else peer

    return make
