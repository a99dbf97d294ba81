"""`torrentpy dashboard`: the rich dashboard attached to a running daemon over Transmission's RPC.

Only the RPC is used (the session-id handshake, basic auth, torrent-get/-start/-stop/-remove/-set,
session-stats/-get), so the same dashboard drives a real Transmission daemon. A poller refreshes a
SessionSnapshot once a second; the dashboard reads it without waiting, and its keys become RPC calls
sent in the background (their failures shown in the footer).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import aiohttp

from torrentpy.engine.snapshot import (
    PIECE_HAVE,
    PIECE_MISSING,
    FileSnapshot,
    PeerSnapshot,
    SessionSnapshot,
    TorrentSnapshot,
    TrackerSnapshot,
)
from torrentpy.errors import TorrentError

__all__ = ["RemoteController", "RpcClient", "RpcFailure", "run_remote_dashboard", "torrent_from_rpc"]

DEFAULT_URL = "http://127.0.0.1:9091/transmission/rpc"
LIST_FIELDS = ["id", "hashString", "name", "totalSize", "status", "error", "errorString", "percentDone",
               "haveValid", "rateDownload", "rateUpload", "downloadedEver", "uploadedEver", "uploadRatio", "eta",
               "peersConnected", "isFinished", "sizeWhenDone", "leftUntilDone", "metadataPercentComplete",
               "recheckProgress"]
# Asked only while there are few torrents: enough for the detail panel without a heavy poll.
DETAIL_FIELDS = ["files", "fileStats", "peers", "trackerStats", "pieces", "pieceCount"]
DETAIL_MAX_TORRENTS = 20
# tr_torrent_activity → the dashboard's state words.
_STATES = {0: "paused", 1: "checking", 2: "checking", 3: "queued", 4: "downloading", 5: "queued", 6: "seeding"}


class RpcFailure(TorrentError):
    """The daemon could not be reached, refused us, or answered a call with an error."""


class RpcClient:
    def __init__(self, url: str, username: str | None = None, password: str | None = None) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RpcFailure(f"not an http(s) URL: {url}")
        if parts.username and username is None:  # http://user:pass@host:port/transmission/rpc
            username, password = urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password or "")
        netloc = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
        if ":" in parts.hostname:
            netloc = f"[{parts.hostname}]" + (f":{parts.port}" if parts.port else "")
        self.url = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path or "/transmission/rpc", "", ""))
        self.auth = aiohttp.BasicAuth(username, password or "") if username else None
        self.session_id = ""
        self._http: aiohttp.ClientSession | None = None

    async def call(self, method: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        body = {"method": method, "arguments": arguments or {}}
        try:
            for _ in range(2):  # a 409 hands us the session id: ask again with it
                headers = {"X-Transmission-Session-Id": self.session_id} if self.session_id else {}
                async with self._http.post(self.url, json=body, headers=headers, auth=self.auth) as resp:
                    if resp.status == 409:
                        self.session_id = resp.headers.get("X-Transmission-Session-Id", "")
                        continue
                    if resp.status == 401:
                        raise RpcFailure(f"{self.url}: the username or password is wrong (401)")
                    if resp.status != 200:
                        raise RpcFailure(f"{self.url}: HTTP {resp.status} {resp.reason}")
                    answer = await resp.json(content_type=None)
                    break
            else:
                raise RpcFailure(f"{self.url}: the session-id handshake did not settle")
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise RpcFailure(f"{self.url}: {exc or type(exc).__name__}") from None
        if not isinstance(answer, dict) or answer.get("result") != "success":
            result = answer.get("result") if isinstance(answer, dict) else answer
            raise RpcFailure(f"{method}: {result}")
        arguments_out: dict[str, Any] = answer.get("arguments") or {}
        return arguments_out

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()


def _pieces(row: dict[str, Any]) -> bytes:
    count = int(row.get("pieceCount") or 0)
    try:
        packed = base64.b64decode(row.get("pieces") or "")
    except ValueError:
        return b""
    return bytes(PIECE_HAVE if i >> 3 < len(packed) and packed[i >> 3] & (0x80 >> (i & 7)) else PIECE_MISSING
                 for i in range(count))


def torrent_from_rpc(row: dict[str, Any]) -> TorrentSnapshot:
    """One torrent-get row as the dashboard's snapshot (fields a daemon left out get neutral values)."""
    status = int(row.get("status", 0))
    error = str(row.get("errorString") or "") if row.get("error") else None
    state = "error" if error else _STATES.get(status, "paused")
    if state == "paused" and row.get("isFinished"):
        state = "finished"
    if state == "downloading" and float(row.get("metadataPercentComplete", 1.0)) < 1.0:
        state = "metadata"
    size_when_done = int(row.get("sizeWhenDone") or 0)
    left = int(row.get("leftUntilDone") or 0)
    progress = float(row.get("recheckProgress") or 0.0) if state == "checking" else float(row.get("percentDone") or 0)
    eta = int(row.get("eta", -1))
    files = tuple(
        FileSnapshot(path=str(f.get("name", "")), size=int(f.get("length", 0)), done=int(s.get("bytesCompleted", 0)),
                     wanted=bool(s.get("wanted", True)), priority=int(s.get("priority", 0)))
        for f, s in zip(row.get("files") or [], row.get("fileStats") or [], strict=False))
    peers = tuple(
        PeerSnapshot(ip=str(p.get("address", "")), port=int(p.get("port", 0)), peer_id=b"",
                     client=str(p.get("clientName", "")), incoming=bool(p.get("isIncoming")),
                     am_choking=bool(p.get("peerIsChoked", True)), am_interested=bool(p.get("clientIsInterested")),
                     peer_choking=bool(p.get("clientIsChoked", True)), peer_interested=bool(p.get("peerIsInterested")),
                     snubbed=False, down_rate_bps=float(p.get("rateToClient", 0)),
                     up_rate_bps=float(p.get("rateToPeer", 0)), downloaded=0, uploaded=0,
                     progress=float(p.get("progress", 0.0)))
        for p in row.get("peers") or [])
    trackers = tuple(
        TrackerSnapshot(url=str(t.get("announce", "")), tier=int(t.get("tier", 0)),
                        status="working" if t.get("lastAnnounceSucceeded") else "error" if t.get("hasAnnounced")
                        else "not contacted", peers_returned=int(t.get("lastAnnouncePeerCount", 0)),
                        seeders=None if int(t.get("seederCount", -1)) < 0 else int(t["seederCount"]),
                        leechers=None if int(t.get("leecherCount", -1)) < 0 else int(t["leecherCount"]),
                        next_announce_s=None, message=str(t.get("lastAnnounceResult", "")))
        for t in row.get("trackerStats") or [])
    return TorrentSnapshot(
        info_hash_hex=str(row.get("hashString", "")), name=str(row.get("name", "")),
        total_size=int(row.get("totalSize") or 0), state=state, error=error, progress=progress,
        done=size_when_done - left, down_rate_bps=float(row.get("rateDownload") or 0),
        up_rate_bps=float(row.get("rateUpload") or 0), downloaded=int(row.get("downloadedEver") or 0),
        uploaded=int(row.get("uploadedEver") or 0), ratio=max(0.0, float(row.get("uploadRatio") or 0)),
        eta_s=float(eta) if eta >= 0 else None, peers=int(row.get("peersConnected") or 0),
        seeds=sum(1 for p in peers if p.progress >= 1.0), swarm_seeds=None, swarm_leechers=None,
        piece_states=_pieces(row), availability=b"", peer_list=peers, trackers=trackers, files=files,
        size_when_done=size_when_done,
    )


@dataclass
class _Latest:
    snapshot: SessionSnapshot
    ids: dict[str, int]  # info hash (hex) → the daemon's id


class RemoteController:
    """The dashboard's Controller over the RPC; `q` leaves the dashboard, the daemon runs on."""

    def __init__(self, client: RpcClient) -> None:
        self.client = client
        self.stop_event = asyncio.Event()
        self.problem = ""  # the last failure, shown by the caller; cleared by the next good poll
        self.started = time.monotonic()
        self._latest = _Latest(SessionSnapshot((), 0.0, 0.0, 0, 0, 0, 0, 0.0), {})
        self._tasks: set[asyncio.Task[None]] = set()

    async def poll(self) -> None:
        listing = await self.client.call("torrent-get", {"fields": LIST_FIELDS})
        rows = listing.get("torrents") or []
        if 0 < len(rows) <= DETAIL_MAX_TORRENTS:
            details = await self.client.call("torrent-get", {"fields": ["id", *DETAIL_FIELDS]})
            by_id = {d.get("id"): d for d in details.get("torrents") or []}
            rows = [{**r, **by_id.get(r.get("id"), {})} for r in rows]
        stats = await self.client.call("session-stats")
        port = (await self.client.call("session-get", {"fields": ["peer-port"]})).get("peer-port", 0)
        torrents = tuple(torrent_from_rpc(r) for r in rows)
        current = stats.get("current-stats") or {}
        self._latest = _Latest(
            SessionSnapshot(
                torrents=torrents, down_rate_bps=float(stats.get("downloadSpeed") or 0),
                up_rate_bps=float(stats.get("uploadSpeed") or 0),
                downloaded=int(current.get("downloadedBytes") or 0), uploaded=int(current.get("uploadedBytes") or 0),
                peers=sum(t.peers for t in torrents), listen_port=int(port or 0),
                uptime_s=float(current.get("secondsActive") or time.monotonic() - self.started)),
            {str(r.get("hashString", "")): int(r["id"]) for r in rows if "id" in r})
        self.problem = ""

    async def keep_polling(self, interval_s: float = 1.0) -> None:
        while not self.stop_event.is_set():
            try:
                await self.poll()
            except RpcFailure as exc:
                self.problem = str(exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), interval_s)

    # --- Controller ------------------------------------------------------------------------------

    def snapshot(self) -> SessionSnapshot:
        return self._latest.snapshot

    def pause(self, info_hash_hex: str) -> None:
        self._send("torrent-stop", info_hash_hex)

    def resume(self, info_hash_hex: str) -> None:
        self._send("torrent-start", info_hash_hex)

    def remove(self, info_hash_hex: str) -> None:
        """Remove the torrent from the daemon; its data stays (transmission-remote -r)."""
        self._send("torrent-remove", info_hash_hex, {"delete-local-data": False})

    def set_file_wanted(self, info_hash_hex: str, index: int, wanted: bool) -> None:
        """``index`` counts the files the snapshot lists, as the RPC's file numbers do (no padding)."""
        self._send("torrent-set", info_hash_hex, {"files-wanted" if wanted else "files-unwanted": [index]})

    def request_stop(self) -> None:
        self.stop_event.set()

    def _send(self, method: str, info_hash_hex: str, extra: dict[str, Any] | None = None) -> None:
        torrent_id = self._latest.ids.get(info_hash_hex)
        ids: list[Any] = [torrent_id if torrent_id is not None else info_hash_hex]

        async def send() -> None:
            try:
                await self.client.call(method, {"ids": ids, **(extra or {})})
                await self.poll()
            except RpcFailure as exc:
                self.problem = str(exc)

        task = asyncio.ensure_future(send())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def run_remote_dashboard(url: str, username: str | None = None, password: str | None = None) -> int:
    """Attach until `q` (or a signal); fails at once, with the reason, when the daemon cannot be reached."""
    import signal

    from torrentpy.tui.live import run_dashboard

    client = RpcClient(url, username, password)
    controller = RemoteController(client)
    try:
        await controller.poll()  # a wrong URL or password is said here, not drawn as an empty dashboard
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, controller.request_stop)
        poller = asyncio.ensure_future(controller.keep_polling())
        try:
            await run_dashboard(controller, stop_event=controller.stop_event, problem=lambda: controller.problem)
        finally:
            controller.stop_event.set()
            await poller
    finally:
        await client.close()
    return 0
