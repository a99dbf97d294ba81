"""Talking to a tracker: HTTP over net/http.py, HTTPS over aiohttp, UDP over a datagram endpoint
(tiers: net/tiers.py). aiohttp (and the TLS contexts its import builds) is loaded at the first `https://`
announce only.

Only the tracker URLs of the torrent are ever contacted (redirects are not followed, proxies from the
environment are not used).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, cast
from urllib.parse import urlsplit

from torrentpy.net.http import HttpAnswer, http_get
from torrentpy.protocol.http1 import BadHttpResponse, ResponseTooLarge
from torrentpy.protocol.tracker_http import (
    MAX_RESPONSE_BYTES,
    AnnounceRequest,
    AnnounceResponse,
    BadTrackerResponse,
    ScrapeStats,
    TrackerError,
    TrackerFailure,
    build_announce_url,
    build_scrape_url,
    parse_announce_response,
    parse_scrape_response,
    scrape_url_for,
)
from torrentpy.protocol.tracker_udp import MAX_DATAGRAM_BYTES, UdpTrackerClient, retry_timeout_s

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "AnnounceRequest",
    "AnnounceResponse",
    "HttpTracker",
    "TrackerError",
    "TrackerFailure",
    "UdpTracker",
    "tracker_for_url",
]

USER_AGENT = "torrentpy/0.1"
# Datagrams that pile up while nobody waits (late duplicates) are dropped beyond this many.
MAX_QUEUED_DATAGRAMS = 64
SUPPORTED_SCHEMES = ("http", "https", "udp")

SessionGetter = Callable[[], Awaitable["aiohttp.ClientSession"]]


class Tracker(Protocol):
    url: str

    async def announce(self, req: AnnounceRequest, tracker_id: bytes | None) -> AnnounceResponse: ...

    async def scrape(self, info_hashes: list[bytes]) -> dict[bytes, ScrapeStats]: ...

    async def close(self) -> None: ...


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timed out"
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def is_transport_error(exc: BaseException) -> bool:
    """An error of the network or of a malformed answer (reported on the tracker), not a bug of ours."""
    if isinstance(exc, OSError | TimeoutError | ValueError):
        return True
    # aiohttp is imported only once an https:// tracker was contacted; before that none of its errors exist.
    aiohttp = sys.modules.get("aiohttp")
    return aiohttp is not None and isinstance(exc, aiohttp.ClientError)


class HttpTracker:
    def __init__(self, url: str, get_session: SessionGetter, timeout_s: float = 30.0) -> None:
        self.url = url
        self._get_session = get_session
        self.timeout_s = timeout_s

    async def _get(self, url: str) -> bytes:
        try:
            if urlsplit(url).scheme.lower() == "http":
                answer = await http_get(url, headers={"User-Agent": USER_AGENT}, timeout_s=self.timeout_s,
                                        max_body_bytes=MAX_RESPONSE_BYTES)
            else:
                answer = await self._get_tls(url)
        except TrackerError:
            raise
        except ResponseTooLarge:
            raise BadTrackerResponse(f"tracker response is larger than {MAX_RESPONSE_BYTES} bytes") from None
        except BadHttpResponse as exc:
            raise BadTrackerResponse(f"bad HTTP answer: {exc}") from None
        except Exception as exc:
            if not is_transport_error(exc):
                raise
            raise TrackerError(_describe(exc)) from None
        if answer.status != 200:
            # Some trackers send their failure reason with an error status; show it if so.
            with contextlib.suppress(BadTrackerResponse):
                parse_announce_response(answer.body)
            raise TrackerError(f"HTTP {answer.status} {answer.reason or ''}".strip())
        return answer.body

    async def _get_tls(self, url: str) -> HttpAnswer:
        import aiohttp
        import yarl

        session = await self._get_session()
        async with session.get(
            # encoded=True: our percent-escapes of binary info-hashes must go out byte for byte.
            yarl.URL(url, encoded=True),
            timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            allow_redirects=False,
            headers={"User-Agent": USER_AGENT},
        ) as resp:
            if resp.content_length is not None and resp.content_length > MAX_RESPONSE_BYTES:
                raise ResponseTooLarge
            body = bytearray()
            async for chunk in resp.content.iter_chunked(64 * 1024):
                body += chunk
                if len(body) > MAX_RESPONSE_BYTES:
                    raise ResponseTooLarge
            return HttpAnswer(resp.status, resp.reason or "", bytes(body))

    async def announce(self, req: AnnounceRequest, tracker_id: bytes | None = None) -> AnnounceResponse:
        return parse_announce_response(await self._get(build_announce_url(self.url, req, tracker_id)))

    async def scrape(self, info_hashes: list[bytes]) -> dict[bytes, ScrapeStats]:
        base = scrape_url_for(self.url)
        if base is None:
            raise TrackerError("tracker does not support scrape")
        return parse_scrape_response(await self._get(build_scrape_url(base, info_hashes)))

    async def close(self) -> None:
        pass  # the aiohttp session is shared and closed by its owner


class _DatagramQueue(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | Exception] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's selector datagram transport does not subclass DatagramTransport; it only quacks.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self.queue.qsize() < MAX_QUEUED_DATAGRAMS and len(data) <= MAX_DATAGRAM_BYTES:
            self.queue.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        self.queue.put_nowait(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.queue.put_nowait(exc or ConnectionError("UDP socket closed"))


class UdpTracker:
    """A BEP 15 tracker. One connected UDP socket per tracker, kept open between announces."""

    def __init__(
        self,
        url: str,
        *,
        retry_scale: float = 1.0,
        max_retries: int = 2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        parts = urlsplit(url)
        try:
            port = parts.port  # a port that is not a number (or over 65535) is a ValueError here
        except ValueError:
            port = None
        if parts.scheme != "udp" or not parts.hostname or not port:
            raise TrackerError(f"not a UDP tracker URL with host and port: {url!r}")
        self.url = url
        self._addr = (parts.hostname, port)
        self.retry_scale = retry_scale
        self.max_retries = max_retries
        self._clock = clock
        self._client: UdpTrackerClient | None = None
        self._endpoint: _DatagramQueue | None = None
        self._lock = asyncio.Lock()

    async def _ensure_endpoint(self) -> _DatagramQueue:
        ep = self._endpoint
        if ep is not None and ep.transport is not None and not ep.transport.is_closing():
            return ep
        loop = asyncio.get_running_loop()
        try:
            transport, ep = await loop.create_datagram_endpoint(_DatagramQueue, remote_addr=self._addr)
        except OSError as exc:
            raise TrackerError(_describe(exc)) from None
        self._endpoint = ep
        peer = transport.get_extra_info("peername")
        ipv6 = peer is not None and len(peer) == 4
        if self._client is None or self._client.ipv6 != ipv6:
            self._client = UdpTrackerClient(ipv6=ipv6)
        return ep

    async def _exchange(self, begin: Callable[[UdpTrackerClient], None]) -> Any:
        async with self._lock:
            ep = await self._ensure_endpoint()
            client = self._client
            assert client is not None and ep.transport is not None
            while not ep.queue.empty():
                ep.queue.get_nowait()
            begin(client)
            n = 0
            while True:
                ep.transport.sendto(client.next_datagram(self._clock()))
                loop = asyncio.get_running_loop()
                deadline = loop.time() + retry_timeout_s(n, self.retry_scale)
                resend = False
                while not resend:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(ep.queue.get(), remaining)
                    except TimeoutError:
                        break
                    if isinstance(item, Exception):
                        if isinstance(item, ConnectionError) and ep.transport.is_closing():
                            self._endpoint = None
                        raise TrackerError(_describe(item))
                    result = client.receive_datagram(item, self._clock())
                    if result is UdpTrackerClient.CONNECTED:
                        resend = True
                    elif result is not None:
                        return result
                if not resend:
                    n += 1
                    if n > self.max_retries:
                        raise TrackerError(f"no answer after {n} tries")

    async def announce(self, req: AnnounceRequest, tracker_id: bytes | None = None) -> AnnounceResponse:
        result = await self._exchange(lambda c: c.begin_announce(req))
        assert isinstance(result, AnnounceResponse)
        return result

    async def scrape(self, info_hashes: list[bytes]) -> dict[bytes, ScrapeStats]:
        result = await self._exchange(lambda c: c.begin_scrape(info_hashes))
        assert isinstance(result, dict)
        return result

    async def close(self) -> None:
        if self._endpoint is not None and self._endpoint.transport is not None:
            self._endpoint.transport.close()
        self._endpoint = None


def tracker_for_url(
    url: str,
    get_session: SessionGetter,
    *,
    http_timeout_s: float = 30.0,
    udp_retry_scale: float = 1.0,
    udp_max_retries: int = 2,
) -> HttpTracker | UdpTracker:
    """The client for ``url``; raises TrackerError for unsupported schemes or malformed URLs."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsed here so a bad one ("host:tp", "[::1") is this URL's error, not a crash
    except ValueError as exc:
        raise TrackerError(f"bad tracker URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        return HttpTracker(url, get_session, http_timeout_s)
    if scheme == "udp":
        return UdpTracker(url, retry_scale=udp_retry_scale, max_retries=udp_max_retries)
    raise TrackerError(f"unsupported tracker scheme {scheme!r}" if scheme else f"bad tracker URL {url!r}")
