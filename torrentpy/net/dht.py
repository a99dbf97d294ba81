"""The DHT node on a UDP socket: the only DHT I/O (datagrams, bootstrap name lookups, the state file).

Bootstrap nodes come from `--dht-bootstrap` (the session config), else from the environment variable
TORRENTPY_DHT_BOOTSTRAP (comma-separated HOST:PORT; empty means none at all), else the well-known
routers below, which are resolved only when the DHT starts. The node id and a routing-table snapshot
are kept in a small state file so a restart need not bootstrap from zero.

BEP 32: where the machine has IPv6, a second node with its own routing table listens on the bind
address's IPv6 counterpart; the two are siblings (dht/node.py), so each answers "want" from both tables
and fills the other's from answers. Without IPv6 the second node is silently left out."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
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
    """The addresses of HOST:PORT items: the first of each family per item (routers have both)."""
    loop = asyncio.get_running_loop()
    found: list[Addr] = []
    for item in items:
        try:
            host, port = parse_host_port(item)
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, port, family=socket.AF_UNSPEC, type=socket.SOCK_DGRAM), RESOLVE_TIMEOUT_S)
        except (ValueError, OSError, TimeoutError) as exc:
            log.info("DHT bootstrap node %s skipped: %s", item, exc)
            continue
        firsts = {info[0]: (str(info[4][0]), int(info[4][1])) for info in reversed(infos)}
        found.extend(firsts[f] for f in (socket.AF_INET, socket.AF_INET6) if f in firsts)
    return found


def ipv6_bind(bind: str) -> str | None:
    """Where the IPv6 node listens for a --bind address: the wildcard for the wildcard, ::1 for an IPv4
    loopback address, an IPv6 address itself; None for a specific IPv4 address (it has no counterpart)."""
    if bind in ("", "0.0.0.0", "::"):
        return "::"
    try:
        ip = ipaddress.ip_address(bind)
    except ValueError:
        return None
    if ip.version == 6:
        return bind
    return "::1" if ip.is_loopback else None


def _is_v6(addr: Addr) -> bool:
    return ":" in addr[0]


class _Socket(asyncio.DatagramProtocol):
    """One node's UDP socket: datagrams in to the node, its outbox out."""

    def __init__(self, service: DhtService, node: DhtNode) -> None:
        self.service = service
        self.node = node
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def flush(self) -> None:
        out, self.node.outbox = self.node.outbox, []
        if self.transport is None or self.transport.is_closing():
            return
        for data, addr in out:
            self.transport.sendto(data, addr)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, ...]) -> None:
        self.node.receive(data, (str(addr[0]), int(addr[1])), self.service.now())
        self.flush()

    def error_received(self, exc: Exception) -> None:
        pass  # an ICMP error for one datagram; the query simply times out


class DhtService:
    def __init__(self, *, bind: str = "0.0.0.0", port: int = 0, bootstrap: list[str] | None = None,
                 state_path: Path | None = None, rate_limit: bool = True, tcp6: bool = False) -> None:
        self.bind = bind if bind not in ("", "::") else "0.0.0.0"
        self.bind6 = ipv6_bind(bind)
        self.wanted_port = port
        self.bootstrap_items = bootstrap_list(bootstrap)
        self.state_path = state_path if state_path is not None else default_state_path()
        self.rate_limit = rate_limit
        self.tcp6 = tcp6  # the TCP listener takes IPv6 connections: announce over IPv6 too, not just look
        self.port = 0
        self.port6 = 0  # 0 while there is no IPv6 node
        self.node: DhtNode | None = None
        self.node6: DhtNode | None = None
        self._sockets: list[_Socket] = []
        self._ticker: asyncio.Task[None] | None = None

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def start(self) -> int:
        """Bind (the TCP listen port if free, so peers may use implied_port; else any), load the state
        file, bootstrap. Returns the UDP port."""
        loop = asyncio.get_running_loop()
        now = self.now()
        saved = self._load_state()
        rng = random.Random()
        node_id = saved[0] if saved else rng.randbytes(20)
        self.node = DhtNode(node_id, now, rng, rate_limit=self.rate_limit)
        sock4 = _Socket(self, self.node)
        for port in dict.fromkeys((self.wanted_port, 0)):
            try:
                transport, _ = await loop.create_datagram_endpoint(lambda: sock4, local_addr=(self.bind, port))
                break
            except OSError:
                continue
        else:
            raise OSError(f"cannot open a UDP socket on {self.bind}")
        self.port = int(transport.get_extra_info("sockname")[1])
        self._sockets.append(sock4)
        await self._start_ipv6(node_id, rng, now)
        routers = await _resolve(self.bootstrap_items)
        # Saved nodes are pinged first; an answer puts each back in the table.
        for node in saved[1] if saved else []:
            owner = self.node6 if _is_v6(node.addr) else self.node
            if owner is not None:
                owner.ping(node.addr, now)
        self.node.bootstrap([a for a in routers if not _is_v6(a)], now)
        if self.node6 is not None:
            self.node6.bootstrap([a for a in routers if _is_v6(a)], now)
        self._flush()
        self._ticker = asyncio.ensure_future(self._tick_forever())
        return self.port

    async def _start_ipv6(self, node_id: bytes, rng: random.Random, now: float) -> None:
        """The IPv6 node (BEP 32: same id, own table), on the IPv4 node's port if free; skipped silently
        (logged) where the machine or the bind address has no IPv6."""
        if self.bind6 is None or not socket.has_ipv6:
            return
        node6 = DhtNode(node_id, now, rng, rate_limit=self.rate_limit, ipv6=True)
        sock6 = _Socket(self, node6)
        reason: OSError | None = None
        for port in dict.fromkeys((self.port, 0)):
            sock = None
            try:
                sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
                # IPv6 only: the IPv4 node owns IPv4 (a dual-stack "::" would also clash with its port).
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind((self.bind6, port))
                sock.setblocking(False)
                transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(lambda: sock6, sock=sock)
                break
            except OSError as exc:
                if sock is not None:
                    sock.close()
                reason = exc
        else:
            log.info("no IPv6 DHT node on [%s]: %s", self.bind6, reason)
            return
        self.port6 = int(transport.get_extra_info("sockname")[1])
        self.node6 = node6
        node6.sibling, self.node.sibling = self.node, node6  # type: ignore[union-attr]
        self._sockets.append(sock6)

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
            tmp.write_bytes(self.node.save_state())  # the IPv6 sibling's table included
            os.replace(tmp, self.state_path)
        except OSError as exc:
            log.warning("could not save the DHT state to %s: %s", self.state_path, exc)

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            now = self.now()
            for sock in self._sockets:
                sock.node.tick(now)
            self._flush()

    def _flush(self) -> None:
        for sock in self._sockets:
            sock.flush()

    # --- what the session asks ----------------------------------------------------

    def track(self, info_hash: bytes, tcp_port: int, on_peers: PeersCallback) -> None:
        if self.node is None:
            return
        # implied_port: our UDP and TCP ports are the same, so the datagram's port is the one to dial.
        self.node.track(info_hash, tcp_port, on_peers, self.now(), implied_port=tcp_port == self.port)
        if self.node6 is not None:
            # Peers found over IPv6 are dialled either way; we announce there only if they can dial us.
            port6 = tcp_port if self.tcp6 else 0
            self.node6.track(info_hash, port6, on_peers, self.now(), implied_port=self.tcp6 and port6 == self.port6)
        self._flush()

    def untrack(self, info_hash: bytes) -> None:
        for sock in self._sockets:
            sock.node.untrack(info_hash)

    def add_node(self, addr: Addr) -> None:
        """A peer told us its DHT port (BEP 5 PORT message): ping it; an answer adds it to the table."""
        node = self.node6 if _is_v6(addr) else self.node
        if node is not None and node.table.good_count(self.now()) < 64:
            node.ping(addr, self.now())
            self._flush()

    @property
    def node_count(self) -> int:
        """Nodes in both routing tables (IPv4 and IPv6)."""
        return sum(len(sock.node.table) for sock in self._sockets)

    def abort(self) -> None:
        """A start cut short (the session stopped meanwhile): close what it opened, save nothing."""
        if self._ticker is not None:
            self._ticker.cancel()
        for sock in self._sockets:
            if sock.transport is not None:
                sock.transport.close()

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        self.save_state()
        for sock in self._sockets:
            if sock.transport is not None:
                sock.transport.close()
