"""BEP 12 tracker tiers for one torrent: every tier announced to, each on its own schedule."""

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
from typing import TYPE_CHECKING

from torrentpy.net.tracker import HttpTracker, UdpTracker, _describe, is_transport_error, tracker_for_url
from torrentpy.protocol.tracker_http import AnnounceRequest, AnnounceResponse, TrackerError

if TYPE_CHECKING:
    import aiohttp

__all__ = ["TrackerState", "TrackerTiers"]


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
    # One announce in flight per tier: a later one waits for it here, so an event (`completed`) is
    # delayed by a dead tracker in its own tier only, and never dropped.
    lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)


class TrackerTiers:
    """BEP 12 announce-list handling for one torrent.

    Every tier is announced to, concurrently, each on its own schedule (like libtorrent's
    ``announce_to_all_tiers``); inside a tier the (once shuffled) trackers are tried in order and the
    one that answers moves to the front. Peers from all tiers that answered are merged. Announces may
    overlap: each tier takes them one at a time, in the order they were made, so an event made while
    a dead tracker holds its tier for minutes still reaches every other tier at once.

    ``port`` is the listen port to announce, or a callable asked at each announce (the engine's
    session learns its port only when it starts listening). No announce goes out while it is 0, and a
    change of port makes every tier due at once.

    HTTPS goes through one aiohttp session: ``get_session`` (sync or async callable, e.g. the engine
    Session's shared one) or ``http_session``; with neither, one is created lazily and closed by
    ``close()``/``stop()``. Plain HTTP needs no session (net/http.py).
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
            import aiohttp

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
        except Exception as exc:
            if not is_transport_error(exc):
                raise
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
            async with tier.lock:
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

    def early_announce_at(self) -> float | None:
        """When wants_early_announce turns true (None: no tier has had an answer yet), so a session can
        sleep an idle torrent until then rather than ask every second."""
        return min((t.earliest_at for t in self._tiers if t.next_at is not None), default=None)

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
