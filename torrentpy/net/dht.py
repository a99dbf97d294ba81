"""The DHT node on a UDP socket: the only DHT I/O (datagrams, bootstrap name lookups, the state file).

Bootstrap nodes come from `--dht-bootstrap` (the session config), else from the environment variable
TORRENTPY_DHT_BOOTSTRAP (comma-separated HOST:PORT; empty means none at all), else the well-known
routers below, which are resolved only when the DHT starts. The node id and a routing-table snapshot
are kept in a small state file so a restart need not bootstrap from zero."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
from pathlib import Path
from typing import Any

from torrentpy.dht.node import DhtNode, PeersCallback

log = logging.getLogger("torrentpy")

Addr = tuple[str, int]

BOOTSTRAP_ENV = "TORRENTPY_DHT_BOOTSTRAP"
STATE_ENV = "TORRENTPY_DHT_STATE"
# Routers libtorrent, Transmission and qBittorrent ship; some have died over the years (a dead one only
# costs a timed-out query). dht.libtorrent.org and dht.transmissionbt.com answered in 2024.
DEFAULT_ROUTERS = (
    "dht.libtorrent.org:25401",
    "dht.transmissionbt.com:6881",
    "router.bittorrent.com:6881",
    "router.utorrent.com:6881",
)
TICK_S = 0.5
# Name lookups of bootstrap routers: a slow resolver must not hold up the session.
RESOLVE_TIMEOUT_S = 5.0


def parse_host_port(text: str) -> tuple[str, int]:
    """HOST:PORT or [IPv6]:PORT; ValueError with a one-line reason otherwise."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT")
    return host.strip("[]"), int(port_text)


def bootstrap_list(configured: list[str] | None) -> list[str]:
    """The bootstrap HOST:PORT strings: the command line's, else the environment's, else the defaults."""
    if configured is not None:
        return list(configured)
    env = os.environ.get(BOOTSTRAP_ENV)
    if env is not None:
        return [item.strip() for item in env.split(",") if item.strip()]
    return list(DEFAULT_ROUTERS)


def default_state_path() -> Path:
    env = os.environ.get(STATE_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "torrentpy" / "dht.dat"


async def _resolve(items: list[str]) -> list[Addr]:
    loop = asyncio.get_running_loop()
    found: list[Addr] = []
    for item in items:
        try:
            host, port = parse_host_port(item)
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, port, family=socket.AF_INET, type=socket.SOCK_DGRAM), RESOLVE_TIMEOUT_S)
        except (ValueError, OSError, TimeoutError) as exc:
            log.info("DHT bootstrap node %s skipped: %s", item, exc)
            continue
        found.extend((str(info[4][0]), int(info[4][1])) for info in infos[:1])
    return found


class DhtService(asyncio.DatagramProtocol):
    def __init__(self, *, bind: str = "0.0.0.0", port: int = 0, bootstrap: list[str] | None = None,
                 state_path: Path | None = None, rate_limit: bool = True) -> None:
        self.bind = bind if bind not in ("", "::") else "0.0.0.0"
        self.wanted_port = port
        self.bootstrap_items = bootstrap_list(bootstrap)
        self.state_path = state_path if state_path is not None else default_state_path()
        self.rate_limit = rate_limit
        self.port = 0
        self.node: DhtNode | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self._ticker: asyncio.Task[None] | None = None

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def start(self) -> int:
        """Bind (the TCP listen port if free, so peers may use implied_port; else any), load the state
        file, bootstrap. Returns the UDP port."""
        loop = asyncio.get_running_loop()
        for port in dict.fromkeys((self.wanted_port, 0)):
            try:
                transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=(self.bind, port))
                break
            except OSError:
                continue
        else:
            raise OSError(f"cannot open a UDP socket on {self.bind}")
        self.transport = transport  # type: ignore[assignment]
        self.port = int(transport.get_extra_info("sockname")[1])
        now = self.now()
        saved = self._load_state()
        rng = random.Random()
        node_id = saved[0] if saved else rng.randbytes(20)
        self.node = DhtNode(node_id, now, rng, rate_limit=self.rate_limit)
        routers = await _resolve(self.bootstrap_items)
        # Saved nodes are pinged first; an answer puts each back in the table.
        for node in saved[1] if saved else []:
            self.node.ping(node.addr, now)
        self.node.bootstrap(routers, now)
        self._flush()
        self._ticker = asyncio.ensure_future(self._tick_forever())
        return self.port

    def _load_state(self) -> tuple[bytes, list] | None:  # type: ignore[type-arg]
        try:
            data = self.state_path.read_bytes()
        except OSError:
            return None
        return DhtNode.load_state(data)

    def save_state(self) -> None:
        if self.node is None:
            return
        try:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.state_path.with_suffix(".tmp")
            tmp.write_bytes(self.node.save_state())
            os.replace(tmp, self.state_path)
        except OSError as exc:
            log.warning("could not save the DHT state to %s: %s", self.state_path, exc)

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            if self.node is not None:
                self.node.tick(self.now())
                self._flush()

    def _flush(self) -> None:
        if self.node is None:
            return
        out, self.node.outbox = self.node.outbox, []
        if self.transport is None or self.transport.is_closing():
            return
        for data, addr in out:
            self.transport.sendto(data, addr)

    # --- asyncio.DatagramProtocol -----------------------------------------------

    def datagram_received(self, data: bytes, addr: tuple[str | Any, ...]) -> None:
        if self.node is None:
            return
        self.node.receive(data, (str(addr[0]), int(addr[1])), self.now())
        self._flush()

    def error_received(self, exc: Exception) -> None:
        pass  # an ICMP error for one datagram; the query simply times out

    # --- what the session asks ----------------------------------------------------

    def track(self, info_hash: bytes, tcp_port: int, on_peers: PeersCallback) -> None:
        if self.node is None:
            return
        # implied_port: our UDP and TCP ports are the same, so the datagram's port is the one to dial.
        self.node.track(info_hash, tcp_port, on_peers, self.now(), implied_port=tcp_port == self.port)
        self._flush()

    def untrack(self, info_hash: bytes) -> None:
        if self.node is not None:
            self.node.untrack(info_hash)

    def add_node(self, addr: Addr) -> None:
        """A peer told us its DHT port (BEP 5 PORT message): ping it; an answer adds it to the table."""
        if self.node is not None and self.node.table.good_count(self.now()) < 64:
            self.node.ping(addr, self.now())
            self._flush()

    @property
    def node_count(self) -> int:
        return len(self.node.table) if self.node is not None else 0

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        self.save_state()
        if self.transport is not None:
            self.transport.close()
