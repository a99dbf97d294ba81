"""The built-in tracker: an aiohttp app for HTTP announce/scrape and a BEP 15 UDP endpoint.

UDP connection ids are an HMAC of a per-process secret, the client's IP address and a one-minute time window,
so the server keeps no per-connection state (the same trick opentracker uses).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import secrets
import socket
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO, cast
from urllib.parse import unquote, unquote_to_bytes

from aiohttp import web

from torrentpy import bencoding
from torrentpy.protocol import tracker_udp as udp
from torrentpy.protocol.tracker_http import EVENTS, ScrapeStats, encode_compact_peers
from torrentpy.tracker.registry import DEFAULT_NUMWANT, RegistryFull, SwarmRegistry

__all__ = ["MAX_QUERY_PARAMS", "TrackerServer", "run_forever", "serve"]

# A scrape may name many torrents, an announce needs ~12 parameters; more is abuse, not a client.
MAX_QUERY_PARAMS = 100
# BEP 15 connection ids live for one or two windows of this length (client uses them for 60 s).
CONNECTION_WINDOW_S = 60


def _normalize_ip(ip: str) -> str:
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def _parse_query(raw: str) -> dict[str, list[bytes]]:
    params: dict[str, list[bytes]] = {}
    parts = raw.split("&") if raw else []
    if len(parts) > MAX_QUERY_PARAMS:
        raise ValueError("too many query parameters")
    for part in parts:
        key, _, value = part.partition("=")
        params.setdefault(unquote(key), []).append(unquote_to_bytes(value))
    return params


def _int_param(params: dict[str, list[bytes]], name: str, default: int | None = None) -> int:
    values = params.get(name)
    if not values:
        if default is None:
            raise ValueError(f"missing parameter {name!r}")
        return default
    try:
        return int(values[0].decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError(f"parameter {name!r} is not an integer") from None


def _bytes_param(params: dict[str, list[bytes]], name: str, length: int) -> bytes:
    values = params.get(name)
    if not values or len(values[0]) != length:
        raise ValueError(f"parameter {name!r} must be {length} bytes")
    return values[0]


def _bencode(value: dict[bytes, Any]) -> web.Response:
    return web.Response(body=bencoding.encode(value), content_type="text/plain")


def _failure(reason: str) -> web.Response:
    return _bencode({b"failure reason": reason.encode()})


class TrackerServer:
    """A running built-in tracker. Ports are the ones actually bound (useful when 0 was asked for)."""

    def __init__(
        self,
        registry: SwarmRegistry,
        bind: str,
        min_interval_s: int,
        clock: Callable[[], float],
    ) -> None:
        self.registry = registry
        self.bind = bind
        self.min_interval_s = min_interval_s
        self.http_port: int | None = None
        self.udp_port: int | None = None
        self._clock = clock
        self._secret = secrets.token_bytes(32)
        self._runner: web.AppRunner | None = None
        self._udp_transport: asyncio.DatagramTransport | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._host = f"[{bind}]" if ":" in bind else bind

    @property
    def http_url(self) -> str:
        return f"http://{self._host}:{self.http_port}/announce"

    @property
    def udp_url(self) -> str:
        return f"udp://{self._host}:{self.udp_port}/announce"

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        if self._udp_transport is not None:
            self._udp_transport.close()
            self._udp_transport = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- HTTP ---------------------------------------------------------------------------------------

    async def _handle_announce(self, request: web.Request) -> web.Response:
        try:
            params = _parse_query(request.rel_url.raw_query_string)
            info_hash = _bytes_param(params, "info_hash", 20)
            peer_id = _bytes_param(params, "peer_id", 20)
            port = _int_param(params, "port")
            left = _int_param(params, "left")
            numwant = _int_param(params, "numwant", DEFAULT_NUMWANT)
            compact = _int_param(params, "compact", 1) != 0
            no_peer_id = _int_param(params, "no_peer_id", 0) != 0
            event = params.get("event", [b""])[0].decode("ascii", "replace")
            if event == "empty":
                event = ""
            if event not in EVENTS:
                raise ValueError(f"unknown event {event!r}")
            if not 0 < port <= 0xFFFF:
                raise ValueError("port out of range")
            # The source address only: trusting an `ip` parameter would let anyone aim peers at a victim.
            ip = _normalize_ip(request.remote or "")
            result = self.registry.announce(info_hash, ip, port, peer_id, left, event, numwant, self._clock())
        except (ValueError, RegistryFull) as exc:
            return _failure(str(exc))
        body: dict[bytes, Any] = {
            b"interval": result.interval_s,
            b"min interval": self.min_interval_s,
            b"complete": result.complete,
            b"incomplete": result.incomplete,
        }
        if compact:
            v4, v6 = encode_compact_peers((p_ip, p_port) for p_ip, p_port, _ in result.peers)
            body[b"peers"] = v4
            if v6:
                body[b"peers6"] = v6
        else:
            peers = []
            for p_ip, p_port, p_id in result.peers:
                entry: dict[bytes, Any] = {b"ip": p_ip.encode(), b"port": p_port}
                if not no_peer_id:
                    entry[b"peer id"] = p_id
                peers.append(entry)
            body[b"peers"] = peers
        return _bencode(body)

    async def _handle_scrape(self, request: web.Request) -> web.Response:
        try:
            params = _parse_query(request.rel_url.raw_query_string)
        except ValueError as exc:
            return _failure(str(exc))
        now = self._clock()
        files: dict[bytes, Any] = {}
        for info_hash in params.get("info_hash", []):
            if len(info_hash) != 20:
                return _failure("info_hash must be 20 bytes")
            s = self.registry.scrape(info_hash, now)
            files[info_hash] = {b"complete": s.complete, b"downloaded": s.downloaded,
                                b"incomplete": s.incomplete}
        return _bencode({b"files": files})

    # --- UDP ----------------------------------------------------------------------------------------

    def connection_id(self, addr: tuple[Any, ...], window: int) -> int:
        # The IP alone: a client may reopen its socket (new source port) and keep its connection id.
        msg = f"{addr[0]}|{window}".encode()
        return int.from_bytes(hmac.digest(self._secret, msg, hashlib.sha256)[:8], "big", signed=True)

    def handle_datagram(self, data: bytes, addr: tuple[Any, ...], ipv6: bool) -> bytes | None:
        try:
            req = udp.parse_request(data)
        except udp.BadUdpRequest as exc:
            return None if exc.transaction_id is None else udp.encode_error(exc.transaction_id, str(exc))
        window = int(self._clock() // CONNECTION_WINDOW_S)
        if isinstance(req, udp.UdpConnectRequest):
            return udp.encode_connect_response(req.transaction_id, self.connection_id(addr, window))
        if req.connection_id not in (self.connection_id(addr, window), self.connection_id(addr, window - 1)):
            return udp.encode_error(req.transaction_id, "invalid connection id")
        now = self._clock()
        if isinstance(req, udp.UdpScrapeRequest):
            stats: list[ScrapeStats] = [self.registry.scrape(h, now) for h in req.info_hashes]
            return udp.encode_scrape_response(req.transaction_id, stats)
        if not 0 < req.port <= 0xFFFF:
            return udp.encode_error(req.transaction_id, "port out of range")
        try:
            result = self.registry.announce(
                req.info_hash, _normalize_ip(addr[0]), req.port, req.peer_id, req.left, req.event,
                req.numwant, now,
            )
        except RegistryFull as exc:
            return udp.encode_error(req.transaction_id, str(exc))
        v4, v6 = encode_compact_peers((p_ip, p_port) for p_ip, p_port, _ in result.peers)
        # BEP 15: the peer record size follows the address family of the socket the request came in on.
        return udp.encode_announce_response(
            req.transaction_id, result.interval_s, result.incomplete, result.complete, v6 if ipv6 else v4
        )


class _UdpTrackerProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: TrackerServer, ipv6: bool) -> None:
        self._server = server
        self._ipv6 = ipv6
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's selector datagram transport does not subclass DatagramTransport; it only quacks.
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        answer = self._server.handle_datagram(data, addr, self._ipv6)
        if answer is not None and self._transport is not None:
            self._transport.sendto(answer, addr)

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP errors from clients that went away; nothing to do for a stateless server


async def _sweep(registry: SwarmRegistry, clock: Callable[[], float], period_s: float) -> None:
    while True:
        await asyncio.sleep(period_s)
        registry.expire(clock())


async def serve(
    http_port: int | None = 0,
    udp_port: int | None = 0,
    bind: str = "127.0.0.1",
    interval_s: int = 1800,
    min_interval_s: int | None = None,
    *,
    registry: SwarmRegistry | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> TrackerServer:
    """Start the tracker. Port 0 picks a free port, None disables that protocol; returns the server."""
    registry = registry or SwarmRegistry(interval_s)
    registry.interval_s = interval_s
    server = TrackerServer(registry, bind, min_interval_s if min_interval_s is not None
                           else max(1, interval_s // 2), clock)
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    try:
        if http_port is not None:
            app = web.Application()
            app.router.add_get("/announce", server._handle_announce)
            app.router.add_get("/scrape", server._handle_scrape)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            server._runner = runner
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((bind, http_port))
            server.http_port = sock.getsockname()[1]
            await web.SockSite(runner, sock).start()
        if udp_port is not None:
            loop = asyncio.get_running_loop()
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _UdpTrackerProtocol(server, family == socket.AF_INET6),
                local_addr=(bind, udp_port),
                family=family,
            )
            server._udp_transport = transport
            server.udp_port = transport.get_extra_info("sockname")[1]
    except BaseException:
        await server.close()
        raise
    server._sweeper = asyncio.create_task(_sweep(registry, clock, max(1.0, min(interval_s, 60))))
    return server


async def run_forever(
    http_port: int | None = 6969,
    udp_port: int | None = 6969,
    bind: str = "127.0.0.1",
    interval_s: int = 1800,
    out: TextIO | None = None,
) -> None:
    """Serve until cancelled (Ctrl-C under asyncio.run), printing one line with the tracker URLs."""
    server = await serve(http_port, udp_port, bind, interval_s)
    urls = [u for u, port in ((server.http_url, server.http_port), (server.udp_url, server.udp_port)) if port]
    print(f"torrentpy tracker listening: {'  '.join(urls)}", file=out or sys.stdout, flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()
