"""A session: one listen port, one peer id, shared limits, many torrents."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torrentpy import __version__
from torrentpy.engine import alerts
from torrentpy.engine.activity import RECENTLY_ACTIVE_S, RecentActivity
from torrentpy.engine.encryption import DEFAULT_MODE, Encryption
from torrentpy.engine.idle import IdleSchedule, idle_until
from torrentpy.engine.memory import IoExecutor, failure_message
from torrentpy.engine.pex import PEX_INTERVAL_S
from torrentpy.engine.ratelimit import TokenBucket
from torrentpy.engine.snapshot import SessionSnapshot, sum_found
from torrentpy.engine.sources import SOURCE_DHT
from torrentpy.engine.swarm import CONNECT_TIMEOUT_S, totals_key
from torrentpy.engine.torrent import Torrent
from torrentpy.errors import UsageError
from torrentpy.metainfo import Magnet, Metainfo
from torrentpy.net.peer import PeerLink, Refusal
from torrentpy.protocol import events as ev
from torrentpy.protocol.peer import PeerConnection
from torrentpy.protocol.wire import make_peer_id, make_reserved, reserved_supports_dht

log = logging.getLogger("torrentpy")

DEFAULT_LISTEN_PORT = 6881
# How many ports after the default to try before letting the OS pick one.
LISTEN_PORT_TRIES = 10
# Connections (open or being opened) across all torrents; keeps us under fd limits.
MAX_CONNECTIONS = 400
# Our dials whose handshake has not completed yet.
MAX_HALF_OPEN = 64
# Accepted connections whose handshake has not named a torrent yet: beyond this, new ones are refused
# on accept, so peers that trickle a byte a second (or flood us with connections) cannot hold every
# slot until the handshake time-out, and they never count against our own dials.
MAX_INCOMING_HALF_OPEN = 64
# Connections incoming ones may not take: a flood of them must not stop us reaching the peers we choose.
DIAL_RESERVE = 16
HANDSHAKE_TIMEOUT_S = 20.0
# File descriptors kept for everything but peer connections: stdio, the event loop, the listener, the
# DHT socket, tracker connections (up to 32), the files being written and resume saves.
FD_RESERVE = 48


def connection_cap(requested: int) -> int:
    """`requested`, lowered so peer connections cannot take the descriptors the files need: at the
    process's RLIMIT_NOFILE (`ulimit -n 256`) a swarm fills the slots and a piece write fails with
    EMFILE. Never below 8, so a tiny limit still downloads (slowly) rather than not at all."""
    import resource

    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return requested
    return max(8, min(requested, soft - max(FD_RESERVE, soft // 4)))
# On exit, how long we wait for connections to flush what we wrote and close (see PeerLink.close_gracefully).
CLOSE_WAIT_S = 3.0
# What can wait (the DHT: its imports, sockets, state file and bootstrap, ~20 ms of the loop; the
# after_start callbacks) runs once the torrents' starts are done and their first dials and requests have
# had STARTUP_AFTER_S to go out, and never later than STARTUP_LATEST_S after run(): a torrent checking a
# large download must not keep the DHT off for minutes.
STARTUP_AFTER_S = 0.1
STARTUP_LATEST_S = 1.0


@dataclass
class SessionConfig:
    save_dir: str = "."
    listen_port: int | None = None  # None: 6881 or the next free port
    bind: str = "0.0.0.0"
    max_peers: int = 50
    max_connections: int = MAX_CONNECTIONS
    max_download_rate_bps: float = 0
    max_upload_rate_bps: float = 0
    seed_ratio: float | None = 1.0
    seed_time_s: float | None = None
    unchoke_slots: int = 4
    dht: bool = True  # for public torrents only (BEP 27): private ones never use it
    dht_bootstrap: list[str] | None = None  # None: $TORRENTPY_DHT_BOOTSTRAP, else the well-known routers
    dht_state_path: str | None = None  # None: $XDG_STATE_HOME/torrentpy/dht.dat
    dht_rate_limit: bool = True  # per-address limit on incoming DHT queries (off for loopback tests)
    pex_interval_s: float = PEX_INTERVAL_S  # BEP 11's minute; shorter only in tests
    encryption: str = DEFAULT_MODE  # MSE/PE: tolerated, preferred or required (engine/encryption.py)
    # A daemon runs until told to stop, even when every torrent is done (and more may be added).
    keep_running: bool = False


class Session:
    version = __version__

    def __init__(self, config: SessionConfig) -> None:
        self.config = config
        config.max_connections = connection_cap(config.max_connections)  # what the RPC reports too
        self.peer_id = make_peer_id()
        self.listen_port = config.listen_port or 0  # the real one is known after listen()
        self.torrents: dict[bytes, Torrent] = {}
        self.encryption = Encryption(config.encryption)
        self._redials: set[asyncio.Task[None]] = set()  # encrypted dials made again in plaintext
        self.executor = IoExecutor(max_workers=max(2, min(8, (os.cpu_count() or 2) * 2)),
                                   thread_name_prefix="torrentpy-io")
        self.upload_bucket = TokenBucket(config.max_upload_rate_bps)
        self.download_bucket = TokenBucket(config.max_download_rate_bps)
        self.links: set[PeerLink] = set()
        self.pending: dict[PeerLink, Torrent | None] = {}
        self.listeners: list[Callable[[alerts.Alert], None]] = []
        self.started_at = time.monotonic()
        self.stop_event = asyncio.Event()
        self.wake_event = asyncio.Event()  # a torrent finished: re-check at once, not on the next tick
        self.stop_signal: int | None = None
        self._server: asyncio.base_events.Server | None = None
        self._http: Any = None
        self._reading_paused = False
        self.dht: Any = None  # net.dht.DhtService once started (public torrents, config.dht)
        # The DHT will start (it starts after the first requests): handshakes say so from the first dial.
        self._dht_planned = False
        self._after_start_task: asyncio.Task[None] | None = None
        # Called once the start-up is over (see STARTUP_AFTER_S): the CLI ends its pause of the collector.
        self.after_start: list[Callable[[], None]] = []
        self.running = False  # run() has started: a torrent added from now on is started at once
        self._starting: dict[bytes, asyncio.Task[None]] = {}
        # Accepted, not yet connected (a server makes its protocols before their connection_made):
        # counted against the limits so a burst of accepts cannot overshoot them. Weak, so a link
        # whose transport never came to be is not counted for ever.
        self._accepted: weakref.WeakSet[PeerLink] = weakref.WeakSet()
        self.refused = 0  # connections refused on accept, for the stats and the scale tests
        # Torrents with work are ticked every second; idle ones sleep until they are due (engine/idle.py).
        self.schedule = IdleSchedule()
        # When each torrent last changed in a way a front end shows (RPC "recently-active").
        self.activity: RecentActivity[bytes] = RecentActivity()

    # --- torrents ---------------------------------------------------------------

    def add(self, source: Metainfo | Magnet, save_dir: str | None = None) -> Torrent:
        if source.info_hash in self.torrents:
            raise UsageError(f"{source.name} was given twice")
        torrent = Torrent(
            self, source, save_dir or self.config.save_dir, max_peers=self.config.max_peers,
            seed_ratio=self.config.seed_ratio, seed_time_s=self.config.seed_time_s,
            unchoke_slots=self.config.unchoke_slots, pex_interval_s=self.config.pex_interval_s,
        )
        self.torrents[source.info_hash] = torrent
        self.encryption.add_torrent(source.info_hash)
        torrent.swarm.on_wake = lambda: self.wake_torrent(torrent)
        self.schedule.wake(torrent)
        if self.running:
            self._start_task(torrent)
        return torrent

    async def remove(self, info_hash: bytes) -> Torrent | None:
        """Stop a torrent (announcing "stopped", saving its resume state) and forget it."""
        torrent = self.torrents.pop(info_hash, None)
        if torrent is None:
            return None
        self.encryption.remove_torrent(info_hash)
        self.schedule.forget(torrent)
        self.activity.forget(info_hash)
        task = self._starting.pop(info_hash, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await torrent.stop()
        for link, owner in list(self.pending.items()):
            if owner is torrent:
                link.close("torrent removed")
        return torrent

    async def restart(self, info_hash: bytes, *, save_dir: str | None = None, recheck: bool = False) -> Torrent:
        """Stop a torrent and start it again from its metainfo: in another folder, or with every
        piece hashed again (its resume file set aside), keeping whether it was paused."""
        current = self.torrents.get(info_hash)
        if current is None:
            raise UsageError(f"no torrent {info_hash.hex()}")
        # The swarm it knew, peers that dialled us included (by their announced listen port), is still
        # the swarm: the new torrent object dials them rather than wait for the next announce.
        known = {*current.candidates, *(totals_key(p) for p in current.peers.values()),
                 *current.swarm.departed_totals}
        old = await self.remove(info_hash)
        assert old is current
        source: Metainfo | Magnet | None = old.meta if old.meta is not None else old.magnet
        assert source is not None  # a torrent has one or the other
        if recheck and old.meta is not None:
            from torrentpy.storage.resume import resume_path

            with contextlib.suppress(FileNotFoundError):
                os.unlink(resume_path(old.meta, old.save_dir))
        torrent = self.add(source, save_dir or old.save_dir)
        torrent.add_candidates([addr for addr in known if addr[1]])
        if old.paused:
            torrent.pause()
        return torrent

    def now(self) -> float:
        return time.monotonic()

    def wake_torrent(self, torrent: Torrent) -> None:
        """Tick this torrent every second again (it has peers, addresses to dial, or a new state)."""
        if self.torrents.get(torrent.info_hash) is torrent:
            self.schedule.wake(torrent)

    def emit(self, alert: alerts.Alert) -> None:
        if isinstance(alert, alerts.TorrentAlert) and alert.info_hash:
            self.activity.touch(bytes.fromhex(alert.info_hash), self.now())  # checked, completed, failed …
        if log.isEnabledFor(logging.INFO):
            log.info("%s", alert.as_dict())
        for listener in self.listeners:
            listener(alert)

    # --- the network ------------------------------------------------------------

    async def listen(self) -> int:
        loop = asyncio.get_running_loop()
        ports = [self.config.listen_port] if self.config.listen_port is not None else \
            [*range(DEFAULT_LISTEN_PORT, DEFAULT_LISTEN_PORT + LISTEN_PORT_TRIES), 0]
        last_error: OSError | None = None
        for port in ports:
            try:
                self._server = await loop.create_server(self._accept, self.config.bind, port, reuse_address=True)
                break
            except OSError as exc:
                last_error = exc
        if self._server is None:
            # uvloop's strerror is a sentence of its own ("error while attempting to bind on address
            # ('0.0.0.0', 6881): address already in use"): say the errno's meaning, once.
            code = last_error.errno if last_error is not None else None
            reason = os.strerror(code) if code else str(last_error or "unknown error")
            raise UsageError(f"cannot listen on {self.config.bind}:{ports[0]}: {reason[:1].lower()}{reason[1:]}")
        self.listen_port = self._server.sockets[0].getsockname()[1]
        return self.listen_port

    def is_self(self, addr: tuple[str, int]) -> bool:
        return addr[1] == self.listen_port and addr[0] in ("127.0.0.1", "::1", "0.0.0.0", "::", self.config.bind)

    def can_connect(self) -> bool:
        half_open = sum(1 for link in self.pending if not link.incoming)
        return len(self.links) < self.config.max_connections and half_open < MAX_HALF_OPEN

    def _room_for_incoming(self) -> bool:
        accepted = len(self._accepted)
        half_open = accepted + sum(1 for link in self.pending if link.incoming)
        return len(self.links) + accepted < self.config.max_connections - DIAL_RESERVE \
            and half_open < MAX_INCOMING_HALF_OPEN

    def _new_connection(self, info_hash: bytes | None, torrent: Torrent | None, initiator: bool) -> PeerConnection:
        meta = torrent.meta if torrent is not None else None
        conn = PeerConnection(
            info_hash=info_hash,
            peer_id=self.peer_id,
            num_pieces=meta.num_pieces if meta else 0,
            piece_length=meta.piece_length if meta else 0,
            total_length=meta.total_length if meta else 0,
            initiator=initiator,
            metadata_size=len(meta.info_bytes) if meta else None,
        )
        if self.dht is not None or self._dht_planned:
            conn.our_reserved = make_reserved(dht=True)  # BEP 5: we answer DHT queries
        return conn

    def _accept(self) -> PeerLink | Refusal:
        if not self._room_for_incoming():
            # Before any buffer or protocol state exists for it: a refused connection costs a socket
            # for one loop iteration and nothing else.
            self.refused += 1
            return Refusal()
        conn = self._new_connection(None, None, initiator=False)
        # The address is known only once the transport exists; fixed in on_connected. The responder tells
        # a plain handshake from an encrypted one.
        link = PeerLink(conn, self, ("", 0), incoming=True, mse=self.encryption.responder())
        self._accepted.add(link)
        return link

    async def connect(self, owner: Any, addr: tuple[str, int], *, encrypted: bool | None = None) -> None:
        """Dial `addr` for a torrent; `encrypted` overrides the encryption mode's choice for this dial."""
        loop = asyncio.get_running_loop()
        torrent: Torrent = owner
        conn = self._new_connection(torrent.info_hash, torrent, initiator=True)
        link = PeerLink(conn, self, addr, incoming=False, mse=self.encryption.initiator(conn, encrypted=encrypted))
        self.pending[link] = torrent
        try:
            await asyncio.wait_for(loop.create_connection(lambda: link, addr[0], addr[1]), CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            self.pending.pop(link, None)
            torrent.connect_failed(addr, str(exc) or type(exc).__name__)

    # PeerHandler, until the handshake hands the link to a torrent.

    def on_connected(self, link: PeerLink) -> None:
        self.links.add(link)
        if link.incoming:
            self._accepted.discard(link)
            peer = link.transport.get_extra_info("peername") if link.transport else None
            link.addr = (str(peer[0]), int(peer[1])) if peer else ("?", 0)
            self.pending[link] = None
            if len(self.links) > self.config.max_connections:
                link.close("too many connections")
                return
        elif link.mse is None:  # else the link sent the encrypted handshake, ours inside it
            link.write(link.conn.initiate())
        asyncio.get_running_loop().call_later(HANDSHAKE_TIMEOUT_S, self._handshake_deadline, link)

    def _handshake_deadline(self, link: PeerLink) -> None:
        if link in self.pending and not link.closed:
            link.close("no handshake in time")

    def on_event(self, link: PeerLink, event: ev.Event) -> bool:
        if isinstance(event, ev.HandshakeInfoHash):
            torrent = self.torrents.get(event.info_hash)
            if torrent is None or not torrent.wants_peers():
                link.close("handshake for a torrent we do not serve")
                return False
            if link.skey is not None and link.skey != event.info_hash:
                link.close("the handshake names another torrent than the encrypted handshake did")
                return False
            meta = torrent.meta
            link.conn.accept_info_hash(event.info_hash, meta.num_pieces if meta else 0,
                                       meta.piece_length if meta else 0, meta.total_length if meta else 0)
            self.pending[link] = torrent
            link.write(link.conn.initiate())
            return True
        if isinstance(event, ev.HandshakeComplete):
            torrent = self.pending.pop(link, None)
            if torrent is None:
                link.close("handshake without a torrent")
                return False
            if event.peer_id in torrent.banlist.banned_ids:
                link.close("banned peer")
                return False
            torrent.attach(link)
            if link.closed:
                return False
            peer = torrent.peers.get(link.addr)
            if peer is not None:
                torrent.start_peer(peer)
                if self.dht is not None and reserved_supports_dht(event.reserved) and self._uses_dht(torrent):
                    link.write(link.conn.send_port(self.dht.port))
            return True
        if isinstance(event, ev.ProtocolError):
            torrent = self.pending.pop(link, None)
            if torrent is not None:
                # A bad handshake (wrong info-hash, garbage) is a peer error like any later one.
                torrent.emit(alerts.PeerError(f"{link.addr[0]}:{link.addr[1]}", event.reason))
                if not link.incoming:
                    torrent.connect_failed(link.addr, event.reason)
            link.close(event.reason)
            return False
        return True

    def on_closed(self, link: PeerLink, reason: str) -> None:
        torrent = self.pending.pop(link, None)
        if torrent is not None and not link.incoming and not self._redial_plain(link, torrent, reason):
            torrent.connect_failed(link.addr, reason)
        self.links.discard(link)

    def _redial_plain(self, link: PeerLink, torrent: Torrent, reason: str) -> bool:
        """An encrypted dial that ended before its handshake did (the peer speaks no MSE, or not the
        method we offered) is made once more in plaintext when the mode allows; to the torrent it is
        still the same dial."""
        if link.mse is None or not self.encryption.policy.retry_plain or self.stop_event.is_set() \
                or self.torrents.get(torrent.info_hash) is not torrent:
            return False
        log.debug("encrypted dial to %s:%d failed (%s): again in plaintext", link.addr[0], link.addr[1], reason)
        task = asyncio.ensure_future(self.connect(torrent, link.addr, encrypted=False))
        self._redials.add(task)
        task.add_done_callback(self._redials.discard)
        return True

    def on_writable(self, link: PeerLink) -> None:
        pass

    def release_connection(self, link: PeerLink) -> None:
        self.links.discard(link)

    def dht_port_seen(self, addr: tuple[str, int]) -> None:
        if self.dht is not None:
            self.dht.add_node(addr)

    # --- the DHT ------------------------------------------------------------------

    @staticmethod
    def _uses_dht(torrent: Torrent) -> bool:
        return torrent.meta is None or not torrent.meta.private  # a magnet's privacy is checked on each find

    def _wants_dht(self) -> bool:
        return self.config.dht and any(self._uses_dht(t) for t in self.torrents.values())

    async def _after_start(self) -> None:
        """Once the torrents have started and dialled (see STARTUP_AFTER_S): the after_start callbacks,
        then the DHT, which tracks the torrents that started meanwhile and sends PORT to the peers that
        connected meanwhile."""
        starting = list(self._starting.values())
        if starting:
            await asyncio.wait(starting, timeout=STARTUP_LATEST_S)
        await asyncio.sleep(STARTUP_AFTER_S)
        for callback in self.after_start:
            callback()
        if not self._dht_planned:
            return
        await self._start_dht()
        self._dht_planned = False
        if self.dht is None:
            return
        for torrent in list(self.torrents.values()):
            if torrent.started:
                self._track_dht(torrent)
                if self._uses_dht(torrent):
                    for peer in list(torrent.peers.values()):
                        reserved = peer.conn.peer_reserved
                        if not peer.link.closed and reserved is not None and reserved_supports_dht(reserved):
                            peer.link.write(peer.conn.send_port(self.dht.port))

    async def _start_dht(self) -> None:
        if not self._wants_dht():
            return
        from pathlib import Path

        from torrentpy.net.dht import DhtService

        dht = DhtService(bind=self.config.bind, port=self.listen_port, bootstrap=self.config.dht_bootstrap,
                         state_path=Path(self.config.dht_state_path) if self.config.dht_state_path else None,
                         rate_limit=self.config.dht_rate_limit,
                         tcp6=self.config.bind == "" or ":" in self.config.bind)  # TCP listens on IPv6 too
        try:
            await dht.start()
        except asyncio.CancelledError:
            dht.abort()
            raise
        except OSError as exc:
            log.warning("DHT not started: %s", exc)
            return
        self.dht = dht

    def _track_dht(self, torrent: Torrent) -> None:
        if self.dht is None or not self._uses_dht(torrent):
            return

        def on_peers(info_hash: bytes, peers: list[tuple[str, int]]) -> None:
            if not self._uses_dht(torrent):  # metadata came and said private: leave the DHT alone
                self.dht.untrack(info_hash)
                return
            torrent.add_candidates(peers, SOURCE_DHT)
            self.wake_event.set()

        self.dht.track(torrent.info_hash, self.listen_port, on_peers)

    def http_session(self) -> Any:
        if self._http is None:
            import aiohttp

            self._http = aiohttp.ClientSession(
                headers={"User-Agent": f"torrentpy/{__version__}"},
                connector=aiohttp.TCPConnector(limit=32, force_close=True),
            )
        return self._http

    # --- rate limits ------------------------------------------------------------

    def count_download(self, nbytes: int) -> None:
        if self.download_bucket.rate_bps <= 0 or self._reading_paused:
            return
        now = time.monotonic()
        wait_s = self.download_bucket.consume(nbytes, now)
        if wait_s > 0:
            self._reading_paused = True
            for link in self.links:
                # A torrent exempt from the session's limits (honorsSessionLimits off) reads on.
                if not isinstance(link.handler, Torrent) or link.handler.limits.honors_session:
                    link.pause_reading()
            asyncio.get_running_loop().call_later(wait_s, self._resume_reading)

    def _resume_reading(self) -> None:
        self._reading_paused = False
        for link in list(self.links):
            link.resume_reading()

    # --- Controller (dashboard) -------------------------------------------------

    def snapshot(self) -> SessionSnapshot:
        now = time.monotonic()
        torrents = tuple(t.snapshot(now) for t in self.torrents.values())
        return SessionSnapshot(
            torrents=torrents,
            down_rate_bps=sum(t.down_rate_bps for t in torrents),
            up_rate_bps=sum(t.up_rate_bps for t in torrents),
            downloaded=sum(t.downloaded for t in torrents),
            uploaded=sum(t.uploaded for t in torrents),
            peers=sum(t.peers for t in torrents),
            listen_port=self.listen_port,
            uptime_s=now - self.started_at,
            peers_found=sum_found(t.peers_found for t in torrents),
            # 0 while the DHT is about to start (see _after_start): None means it is off.
            dht_nodes=self.dht.node_count if self.dht is not None else (0 if self._dht_planned else None),
        )

    def recently_active(self, window_s: float = RECENTLY_ACTIVE_S) -> set[bytes]:
        """Torrents that changed in the last `window_s` (peers, transfers, announces, alerts) or are
        being checked: O(answer), not O(torrents)."""
        active = set(self.activity.since(self.now() - window_s))
        active.update(self._starting)
        return active

    def _find(self, info_hash_hex: str) -> Torrent | None:
        try:
            return self.torrents.get(bytes.fromhex(info_hash_hex))
        except ValueError:
            return None

    def pause(self, info_hash_hex: str) -> None:
        torrent = self._find(info_hash_hex)
        if torrent is not None:
            torrent.pause()

    def resume(self, info_hash_hex: str) -> None:
        torrent = self._find(info_hash_hex)
        if torrent is not None:
            torrent.resume()

    def set_file_wanted(self, info_hash_hex: str, index: int, wanted: bool) -> None:
        """The dashboard's `w`: ``index`` over the snapshot's files; SelectionError when out of range."""
        torrent = self._find(info_hash_hex)
        if torrent is not None:
            torrent.set_files_wanted([index], wanted)

    def request_stop(self, signum: int | None = None) -> None:
        if self.stop_signal is None:
            self.stop_signal = signum
        self.stop_event.set()

    # --- running ----------------------------------------------------------------

    def all_done(self) -> bool:
        return all(t.finished or t.state == "error" for t in self.torrents.values())

    async def run(self) -> None:
        """Run until every torrent has met its goal or a stop is requested (signals are the front end's:
        see ``tui.run.stop_on_signals``)."""
        if self._server is None:
            await self.listen()
        self.emit(alerts.Listening(self.listen_port))
        # Started as tasks, not awaited: checking a large download takes a while, and a stop
        # request (Ctrl-C, q) must be heard meanwhile.
        self.running = True
        for torrent in self.torrents.values():
            self._start_task(torrent)
        # The torrents first: their first dials never wait for the DHT's start.
        self._dht_planned = self._wants_dht()
        self._after_start_task = asyncio.ensure_future(self._after_start())
        try:
            while not self.stop_event.is_set():
                self._tick(time.monotonic())
                if not self.config.keep_running and self.all_done():
                    break
                self.wake_event.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop_or_wake(), timeout=1.0)
        finally:
            starting = list(self._starting.values())
            for task in starting:
                task.cancel()
            if self._after_start_task is not None:
                starting.append(self._after_start_task)
                self._after_start_task.cancel()
            await asyncio.gather(*starting, return_exceptions=True)
            await self.close()

    def _tick(self, now: float) -> None:
        for torrent in self.schedule.due(now):
            try:
                torrent.tick(now)
            except Exception as exc:  # one torrent's bug (or its lack of memory) must not stop the others
                torrent.fail(failure_message(exc, torrent.name))
            if self.torrents.get(torrent.info_hash) is not torrent:
                continue  # removed while we ticked
            if torrent.peers or torrent.announcing:
                self.activity.touch(torrent.info_hash, now)  # peer counts, rates and tracker answers change
            due = idle_until(torrent, now)
            if due is not None:
                self.schedule.sleep(torrent, due)

    def _start_task(self, torrent: Torrent) -> None:
        task = asyncio.ensure_future(self._start(torrent))
        self._starting[torrent.info_hash] = task
        task.add_done_callback(lambda done: self._started(torrent.info_hash, done))

    def _started(self, info_hash: bytes, task: asyncio.Task[None]) -> None:
        # By key, not by a scan of every start under way: 10,000 torrents start at once.
        if self._starting.get(info_hash) is task:
            del self._starting[info_hash]

    async def _start(self, torrent: Torrent) -> None:
        try:
            await torrent.start()
            self.wake_torrent(torrent)  # checked: it may have work now
            self._track_dht(torrent)
            self.wake_event.set()  # tick now: dial peers without waiting for the next second
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # one torrent's bug (or its lack of memory) must not take the session down
            torrent.fail(failure_message(exc, torrent.name))

    async def _stop_or_wake(self) -> None:
        waits = [asyncio.ensure_future(self.stop_event.wait()), asyncio.ensure_future(self.wake_event.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        await asyncio.gather(*(t.stop() for t in self.torrents.values()), return_exceptions=True)
        for link in list(self.links):
            link.close_gracefully("shutting down")
        # Returning closes the event loop, and with it every transport: a block still in a write
        # buffer would be lost, and a socket closed with unread input is reset. Wait for the closes.
        deadline = time.monotonic() + CLOSE_WAIT_S
        while any(link.transport is not None and not link.lost for link in self.links) \
                and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for link in list(self.links):
            if link.transport is not None and not link.lost:
                link.transport.abort()
        if self.dht is not None:
            await self.dht.close()
        if self._http is not None:
            await self._http.close()
            self._http = None
        self.executor.shutdown(wait=True, cancel_futures=False)
        self.stop_event.set()
