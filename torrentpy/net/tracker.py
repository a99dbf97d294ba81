"""Talking to trackers: HTTP(S) over aiohttp, UDP over a datagram endpoint, and BEP 12 tiers.

Only the tracker URLs of the torrent are ever contacted (redirects are not followed, proxies from the
environment are not used).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

import aiohttp
import yarl

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

__all__ = [
    "AnnounceRequest",
    "AnnounceResponse",
    "HttpTracker",
    "TrackerError",
    "TrackerFailure",
    "TrackerState",
    "TrackerTiers",
    "UdpTracker",
    "tracker_for_url",
]

USER_AGENT = "torrentpy/0.1"
# Datagrams that pile up while nobody waits (late duplicates) are dropped beyond this many.
MAX_QUEUED_DATAGRAMS = 64
SUPPORTED_SCHEMES = ("http", "https", "udp")

SessionGetter = Callable[[], Awaitable[aiohttp.ClientSession]]


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


class HttpTracker:
    def __init__(self, url: str, get_session: SessionGetter, timeout_s: float = 30.0) -> None:
        self.url = url
        self._get_session = get_session
        self.timeout_s = timeout_s

    async def _get(self, url: str) -> bytes:
        session = await self._get_session()
        try:
            async with session.get(
                # encoded=True: our percent-escapes of binary info-hashes must go out byte for byte.
                yarl.URL(url, encoded=True),
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                allow_redirects=False,
                headers={"User-Agent": USER_AGENT},
            ) as resp:
                if resp.content_length is not None and resp.content_length > MAX_RESPONSE_BYTES:
                    raise BadTrackerResponse(f"tracker response is larger than {MAX_RESPONSE_BYTES} bytes")
                body = bytearray()
                async for chunk in resp.content.iter_chunked(64 * 1024):
                    body += chunk
                    if len(body) > MAX_RESPONSE_BYTES:
                        raise BadTrackerResponse(
                            f"tracker response is larger than {MAX_RESPONSE_BYTES} bytes"
                        )
                if resp.status != 200:
                    # Some trackers send their failure reason with an error status; show it if so.
                    with contextlib.suppress(BadTrackerResponse):
                        parse_announce_response(bytes(body))
                    raise TrackerError(f"HTTP {resp.status} {resp.reason or ''}".strip())
                return bytes(body)
        except TrackerError:
            raise
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            raise TrackerError(_describe(exc)) from None

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
        if parts.scheme != "udp" or not parts.hostname or not parts.port:
            raise TrackerError(f"not a UDP tracker URL with host and port: {url!r}")
        self.url = url
        self._addr = (parts.hostname, parts.port)
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
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        return HttpTracker(url, get_session, http_timeout_s)
    if scheme == "udp":
        return UdpTracker(url, retry_scale=udp_retry_scale, max_retries=udp_max_retries)
    raise TrackerError(f"unsupported tracker scheme {scheme!r}" if scheme else f"bad tracker URL {url!r}")


@dataclass(slots=True)
class TrackerState:
    """What the dashboard shows for one tracker. Times are monotonic seconds."""

    url: str
    tier: int
    status: str = "not contacted"
    last_error: str | None = None
    peers_returned: int = 0
    seeders: int | None = None
    leechers: int | None = None
    next_announce_at: float | None = None
    message: str | None = None
    interval_s: float | None = None
    min_interval_s: float | None = None
    last_announce_at: float | None = None
    tracker_id: bytes | None = None
    announced: bool = False  # got a non-stopped announce through, so it needs a `stopped` at the end


@dataclass(slots=True)
class _Tier:
    """One BEP 12 tier and its own announce schedule: every tier is announced to (announce_to_all_tiers),
    so one dead tracker cannot hide the peers another tier knows."""

    trackers: list[TrackerState]
    next_at: float | None = None  # None: announce as soon as possible
    earliest_at: float = 0.0  # the tracker's min interval: no extra announce before this
    failures: int = 0
    port: int = 0  # the listen port the tier last heard from us; 0: none yet


class TrackerTiers:
    """BEP 12 announce-list handling for one torrent.

    Every tier is announced to, concurrently, each on its own schedule (like libtorrent's
    ``announce_to_all_tiers``); inside a tier the (once shuffled) trackers are tried in order and the
    one that answers moves to the front. Peers from all tiers that answered are merged.

    ``port`` is the listen port to announce, or a callable asked at each announce (the engine's
    session learns its port only when it starts listening). No announce goes out while it is 0, and a
    change of port makes every tier due at once.

    HTTP goes through one aiohttp session: ``get_session`` (sync or async callable, e.g. the engine
    Session's shared one) or ``http_session``; with neither, one is created lazily and closed by
    ``close()``/``stop()``.
    """

    def __init__(
        self,
        tiers: Sequence[Sequence[str]],
        info_hash: bytes,
        peer_id: bytes,
        port: int | Callable[[], int],
        *,
        http_session: aiohttp.ClientSession | None = None,
        get_session: Callable[[], aiohttp.ClientSession | Awaitable[aiohttp.ClientSession]] | None = None,
        key: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        http_timeout_s: float = 30.0,
        udp_retry_scale: float = 1.0,
        udp_max_retries: int = 2,
        min_announce_interval_s: float = 30.0,
        retry_base_s: float = 15.0,
        max_retry_s: float = 1800.0,
    ) -> None:
        self.info_hash = info_hash
        self.peer_id = peer_id
        self._port: Callable[[], int] = port if callable(port) else (lambda: port)
        self.key = secrets.randbits(32) if key is None else key
        self._clock = clock
        self._http_session = http_session
        self._get_session = get_session
        self._owns_session = False
        self.min_announce_interval_s = min_announce_interval_s
        self.retry_base_s = retry_base_s
        self.max_retry_s = max_retry_s
        rng = rng or random.Random()

        self._tiers: list[_Tier] = []
        self._clients: dict[int, HttpTracker | UdpTracker] = {}
        seen: set[str] = set()
        for tier_no, urls in enumerate(tiers):
            tier = []
            for url in urls:
                if url in seen:
                    continue
                seen.add(url)
                state = TrackerState(url=url, tier=tier_no)
                try:
                    self._clients[id(state)] = tracker_for_url(
                        url, self._session, http_timeout_s=http_timeout_s,
                        udp_retry_scale=udp_retry_scale, udp_max_retries=udp_max_retries,
                    )
                except TrackerError as exc:
                    state.status = f"error: {exc}"
                    state.last_error = str(exc)
                tier.append(state)
            rng.shuffle(tier)
            if tier:
                self._tiers.append(_Tier(tier))

    @property
    def port(self) -> int:
        """The listen port the next announce will carry (0: not listening yet)."""
        return self._port()

    @property
    def trackers(self) -> list[TrackerState]:
        """Every tracker in current try order (for display)."""
        return [s for tier in self._tiers for s in tier.trackers]

    async def _session(self) -> aiohttp.ClientSession:
        if self._get_session is not None:
            session = self._get_session()
            return await session if inspect.isawaitable(session) else session
        if self._http_session is None or self._http_session.closed:
            self._http_session = aiohttp.ClientSession(trust_env=False)
            self._owns_session = True
        return self._http_session

    def _request(
        self, event: str, uploaded: int, downloaded: int, left: int, numwant: int
    ) -> AnnounceRequest:
        port = self._port()
        if not 0 < port <= 0xFFFF:
            # Port 0 would tell the swarm nobody can reach us; trackers reject it ("port out of range").
            raise TrackerError(f"no listen port to announce (port {port})")
        return AnnounceRequest(self.info_hash, self.peer_id, port, uploaded, downloaded, left,
                               event, numwant, self.key)

    async def _announce_one(self, state: TrackerState, req: AnnounceRequest) -> AnnounceResponse:
        client = self._clients[id(state)]
        try:
            return await client.announce(req, state.tracker_id)
        except TrackerError:
            raise
        except (OSError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise TrackerError(_describe(exc)) from None

    def _due(self, tier: _Tier, event: str, now: float) -> bool:
        # A regular or early announce respects the tier's min interval; an event or a new port does not.
        return event != "" or bool(tier.port and tier.port != self._port()) or now >= tier.earliest_at

    async def announce(
        self, event: str = "", uploaded: int = 0, downloaded: int = 0, left: int = 0, numwant: int = 50,
        on_response: Callable[[AnnounceResponse], None] | None = None,
    ) -> AnnounceResponse:
        """Announce to every tier that is due, all at once; returns the answers merged (peers deduplicated
        by address). ``on_response`` gets each tier's answer as soon as it arrives, so a slow or dead
        tier does not hold back the peers of the others. Raises TrackerError when no tier answered."""
        now = self._clock()
        request = self._request(event, uploaded, downloaded, left, numwant)  # raises while port is 0
        # A caller that announces before any tier is due (its own schedule) gets all of them.
        due = [t for t in self._tiers if self._due(t, event, now)] or self._tiers
        errors: list[str] = []

        async def one(tier: _Tier) -> AnnounceResponse | None:
            resp = await self._announce_tier(tier, event, request, errors)
            if resp is not None and on_response is not None:
                on_response(resp)
            return resp

        answers = [r for r in await asyncio.gather(*(one(t) for t in due)) if r is not None]
        if not answers:
            raise TrackerError("no tracker answered" + (f" ({'; '.join(errors)})" if errors else ""))
        return _merge(answers)

    async def _announce_tier(
        self, tier: _Tier, event: str, request: AnnounceRequest, errors: list[str]
    ) -> AnnounceResponse | None:
        """BEP 12 inside one tier: the first tracker that answers wins and moves to the front."""
        for state in list(tier.trackers):
            if id(state) not in self._clients:
                continue
            # A tracker that never saw our `started` (we failed over to it) gets one now.
            ev = "started" if event == "" and not state.announced else event
            state.status = "updating"
            try:
                resp = await self._announce_one(state, dataclasses.replace(request, event=ev))
            except TrackerError as exc:
                state.status = f"error: {exc}"
                state.last_error = str(exc)
                state.next_announce_at = None
                errors.append(f"{state.url}: {exc}")
                continue
            tier.trackers.remove(state)
            tier.trackers.insert(0, state)
            tier.port = request.port
            self._record_success(tier, state, resp, ev)
            return resp
        tier.failures += 1
        delay = min(self.retry_base_s * 2 ** (tier.failures - 1), self.max_retry_s)
        tier.next_at = tier.earliest_at = self._clock() + delay
        for state in tier.trackers:
            if id(state) in self._clients:
                state.next_announce_at = tier.next_at
        return None

    def _record_success(self, tier: _Tier, state: TrackerState, resp: AnnounceResponse, event: str) -> None:
        now = self._clock()
        tier.failures = 0
        interval = max(float(resp.interval_s), self.min_announce_interval_s)
        min_interval = resp.min_interval_s if resp.min_interval_s is not None else min(interval, 60.0)
        min_interval = max(float(min_interval), self.min_announce_interval_s)
        state.status = "working" if event != "stopped" else "stopped"
        state.last_error = None
        state.peers_returned = len(resp.peers)
        state.seeders, state.leechers = resp.complete, resp.incomplete
        state.message = resp.warning
        state.interval_s, state.min_interval_s = interval, min_interval
        state.last_announce_at = now
        state.announced = event != "stopped"
        if resp.tracker_id:
            state.tracker_id = resp.tracker_id
        if event == "stopped":
            state.next_announce_at = None
            return
        tier.next_at = now + interval
        tier.earliest_at = now + min_interval
        state.next_announce_at = tier.next_at

    def next_announce_in(self, now: float) -> float:
        """Seconds until the next regular announce to some tier (0 when one is due)."""
        port = self._port()
        waits = [0.0 if t.next_at is None or (port and t.port and t.port != port) else max(0.0, t.next_at - now)
                 for t in self._tiers]
        return min(waits, default=0.0)

    def wants_early_announce(self, now: float) -> bool:
        """True when an extra announce (the engine is short of peers) would respect some tier's min interval."""
        return any(t.next_at is not None and now >= t.earliest_at for t in self._tiers)

    def announce_early(self, now: float) -> float:
        """Ask for peers sooner (the engine is short of them); honours each tracker's min interval.

        Returns the new ``next_announce_in(now)``.
        """
        for tier in self._tiers:
            if tier.next_at is not None:
                tier.next_at = min(tier.next_at, max(now, tier.earliest_at))
                for state in tier.trackers:
                    if state.next_announce_at is not None:
                        state.next_announce_at = tier.next_at
        return self.next_announce_in(now)

    async def stop(
        self, uploaded: int = 0, downloaded: int = 0, left: int = 0, timeout_s: float = 3.0
    ) -> None:
        """Send `stopped` to every tracker we announced to (best effort, bounded), then close sockets."""
        targets = [(tier, s) for tier in self._tiers for s in tier.trackers if s.announced]

        async def one(tier: _Tier, state: TrackerState) -> None:
            try:
                resp = await self._announce_one(state, dataclasses.replace(req, port=tier.port))
            except TrackerError as exc:
                state.status, state.last_error = f"error: {exc}", str(exc)
            else:
                self._record_success(tier, state, resp, "stopped")
            state.announced = False

        if targets:
            # `stopped` withdraws the address the tracker holds, so it carries the port that tier last heard.
            req = AnnounceRequest(self.info_hash, self.peer_id, targets[0][0].port, uploaded, downloaded,
                                  left, "stopped", 0, self.key)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(one(t, s) for t, s in targets)), timeout_s)
        await self.close()

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        if self._owns_session and self._http_session is not None:
            await self._http_session.close()
            self._http_session = None
            self._owns_session = False


def _merge(answers: list[AnnounceResponse]) -> AnnounceResponse:
    """One response from several tiers' answers: every peer once (by address), the busiest swarm counts."""
    peers = list(dict.fromkeys(p for r in answers for p in r.peers))
    counts = [r.complete for r in answers if r.complete is not None]
    incomplete = [r.incomplete for r in answers if r.incomplete is not None]
    warnings = [r.warning for r in answers if r.warning]
    return AnnounceResponse(
        interval_s=min(r.interval_s for r in answers),
        min_interval_s=min((r.min_interval_s for r in answers if r.min_interval_s is not None), default=None),
        peers=peers,
        complete=max(counts, default=None),
        incomplete=max(incomplete, default=None),
        warning="; ".join(dict.fromkeys(warnings)) or None,
        tracker_id=answers[0].tracker_id,
    )
