"""One torrent inside a session: its lifecycle, the dispatch of peer events, announces, resume saves
and the seeding goal.

The state lives in parts, each with its own module: the peer set (Swarm), what we fetch
(Downloader), what we serve (Uploader), the smart ban (BanList), the files (TorrentDisk) and a
magnet's metadata (MetadataExchange). This class wires them to each other and to its Host."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import TYPE_CHECKING, Any

from torrentpy.clients import client_name
from torrentpy.engine import alerts
from torrentpy.engine.accounting import RateMeter
from torrentpy.engine.banlist import BanList
from torrentpy.engine.disk import TorrentDisk
from torrentpy.engine.dispatch import EVENT_HANDLERS, listen_addr
from torrentpy.engine.download import Downloader
from torrentpy.engine.limits import TorrentLimits
from torrentpy.engine.memory import failure_message
from torrentpy.engine.metadata import MetadataExchange
from torrentpy.engine.peer import Peer
from torrentpy.engine.pex import PEX_INTERVAL_S
from torrentpy.engine.picker import PiecePicker
from torrentpy.engine.selection import FileSelection, SelectionControls
from torrentpy.engine.snapshot import TorrentSnapshot, torrent_snapshot
from torrentpy.engine.sources import SOURCE_MAGNET, SOURCE_MANUAL, SOURCE_TRACKER
from torrentpy.engine.state import TorrentState
from torrentpy.engine.swarm import Swarm
from torrentpy.engine.upload import MAX_QUEUED_REQUESTS, Uploader
from torrentpy.errors import StorageError, TorrentError
from torrentpy.metainfo import Magnet, Metainfo
from torrentpy.net.peer import PeerLink
from torrentpy.protocol import events as ev
from torrentpy.storage.files import Storage

if TYPE_CHECKING:
    from torrentpy.engine.host import Host
    from torrentpy.protocol.tracker_http import AnnounceResponse

log = logging.getLogger("torrentpy")

Addr = tuple[str, int]

BLOCK_SIZE = 16 * 1024
RESUME_SAVE_INTERVAL_S = 10.0
# Unchoke slots per torrent (BEP 3 suggests 4).
UNCHOKE_SLOTS = 4


class Torrent(SelectionControls):
    def __init__(
        self,
        host: Host,
        source: Metainfo | Magnet,
        save_dir: str,
        *,
        max_peers: int = 50,
        seed_ratio: float | None = 1.0,
        seed_time_s: float | None = None,
        unchoke_slots: int = UNCHOKE_SLOTS,
        pex_interval_s: float = PEX_INTERVAL_S,
    ) -> None:
        self.host = host
        self.save_dir = save_dir
        self.seed_ratio = seed_ratio
        self.seed_time_s = seed_time_s
        self.info_hash = source.info_hash
        self.magnet = source if isinstance(source, Magnet) else None
        self.meta: Metainfo | None = source if isinstance(source, Metainfo) else None
        self.name = source.name
        self.state = TorrentState.METADATA if self.meta is None else TorrentState.CHECKING
        self.error: str | None = None
        self.paused = False
        self.finished = False  # seeding goal met (or download done with no seeding)
        self.started = False  # storage checked and the first announce sent: the 1 Hz tick may act
        self.rng = random.Random(random.getrandbits(64))  # a urandom seed each cost ~20 µs (10,000 torrents)
        self.down = RateMeter()
        self.up = RateMeter()
        self.downloaded = 0  # payload this session
        self.uploaded = 0
        self.pieces_at_start = 0  # verified pieces found on disk at start
        self.seeding_since: float | None = None
        self.picker: PiecePicker | None = None
        self.resume_dirty = False
        self.announcing = 0  # announces in flight
        self.start_save: asyncio.Task[Any] | None = None  # the first resume save and reserve, under way
        self._tasks: set[asyncio.Task[Any]] = set()
        self.disk = TorrentDisk(host, save_dir)
        self.banlist = BanList(block_size=BLOCK_SIZE)
        self.limits = TorrentLimits(host, lambda: self.peers.values())
        self.swarm = Swarm(host, self, max_peers=max_peers, spawn=self._spawn, wants_peers=self.wants_peers,
                           is_banned=lambda addr: addr in self.banlist.banned, on_departed=self._on_departed,
                           shares_peers=lambda: self.meta is not None and not self.meta.private,
                           pex_interval_s=pex_interval_s, count_download=self.limits.count_download)
        self.metadata = MetadataExchange(self.info_hash, fetch=self.magnet is not None,
                                         on_verified=self._on_metadata_verified)
        self.downloader = Downloader(self, self.banlist)
        self.selection = FileSelection(info_only=self.magnet.select_only if self.magnet is not None else None)
        self.uploader = Uploader(self, host, slots=unchoke_slots, rng=self.rng, limits=self.limits)
        if self.magnet is not None:
            for addr in self.magnet.peers:
                self.swarm.candidates[addr] = 0.0
                self.swarm.sources.record(addr, SOURCE_MAGNET)
        self.tiers: Any = None
        if source.trackers:
            # Imported on demand: only a torrent with trackers needs the tracker clients.
            from torrentpy.net.tiers import TrackerTiers

            self.tiers = TrackerTiers(
                [list(t) for t in source.trackers], info_hash=self.info_hash, peer_id=host.peer_id,
                # Asked at each announce: the session knows its port only once it listens, after add().
                port=lambda: self.host.listen_port, get_session=host.http_session,
            )

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            self.fail(failure_message(exc, self.name))

    def emit(self, alert: alerts.TorrentAlert) -> None:
        self.host.emit(alert.about(self.name, self.info_hash.hex()))

    def fail(self, message: str) -> None:
        """Stop this torrent with a clear error, keeping what was verified."""
        if self.state == TorrentState.ERROR:
            return
        self.error = message
        self.state = TorrentState.ERROR
        self.host.wake_event.set()
        self.emit(alerts.Failed(message))
        for peer in list(self.peers.values()):
            peer.link.close("torrent stopped after an error")
        # No write may start after this: on a full disk the resume save below takes the
        # space its reserve frees, and a piece write racing it must not take it first.
        self.disk.close()
        self.downloader.drop_buffers()  # out of memory, the save below may need what they hold
        self._save_resume()

    @property
    def now(self) -> float:
        return self.host.now()

    @property
    def complete(self) -> bool:
        return self.picker is not None and self.picker.done()

    def left_bytes(self) -> int:
        if self.picker is None or self.meta is None:
            return 0 if self.meta is None else self.meta.total_length
        return int(self.picker.left_bytes())

    @property
    def storage(self) -> Storage | None:
        return self.disk.storage

    @property
    def peers(self) -> dict[Addr, Peer]:
        return self.swarm.peers

    @property
    def candidates(self) -> dict[Addr, float]:
        return self.swarm.candidates

    # Lifecycle: metadata → checking → downloading → seeding → finished, or error from any of them.

    async def start(self) -> None:
        if self.meta is not None:
            await self._prepare_storage()
        if self.state == TorrentState.ERROR:
            return
        self.started = True
        if self.tiers is not None:
            self._spawn(self._announce("started"))

    async def _prepare_storage(self) -> None:
        meta = self.meta
        assert meta is not None
        self.picker = PiecePicker(meta.num_pieces, meta.piece_length, meta.total_length,
                                  block_size=BLOCK_SIZE, rng=self.rng)
        self.state = TorrentState.CHECKING
        try:
            self.selection.bind(meta, final=False)  # the files not to create; the saved choice comes next
            have = await self.disk.open(meta, self.emit, skip=self.selection.unwanted_files(),
                                        on_resume=self._bind_selection)
        except StorageError as exc:
            self.fail(str(exc))
            return
        for index in have:
            self.picker.piece_passed(index)
        self.pieces_at_start = have.count()
        self.emit(alerts.Resumed(self.pieces_at_start, meta.num_pieces))
        # Saved now, before any data can fill the disk, with room set aside for the saves to come; off the
        # loop, as thousands of torrents may start at once (a change made meanwhile marks it dirty again).
        self.resume_dirty = False
        if self.picker.done():  # a seed serves at once: a peer dialling during the save was refused as checking
            self.state, self.seeding_since = TorrentState.SEEDING, self.now
            await self.disk.save_async(self.picker.have.copy(), self.name, self.selection)
            self._on_download_complete(announce=False)
        else:
            # In the thread pool while the torrent announces and dials: the first request need not wait
            # for two fsyncs. Piece writes wait for it (Downloader.finish_piece), so it still comes first.
            self.state = TorrentState.DOWNLOADING
            self.start_save = self._spawn(self.disk.first_save(self.picker.have.copy(), self.name, self.selection))

    async def stop(self) -> None:
        for peer in list(self.peers.values()):
            peer.link.close_gracefully("shutting down")  # flush what we wrote; the session waits for it
        for task in list(self._tasks):
            task.cancel()
        self._save_resume()
        if self.tiers is not None:
            with contextlib.suppress(TimeoutError, TorrentError, OSError):
                await asyncio.wait_for(self.tiers.stop(uploaded=self.uploaded, downloaded=self.downloaded,
                                                       left=self.left_bytes()), timeout=5.0)
        self.disk.close()

    def pause(self) -> None:
        if self.paused or self.state == TorrentState.ERROR:
            return
        self.paused = True
        for peer in list(self.peers.values()):
            peer.link.close("torrent paused")
        self._save_resume()

    def resume(self) -> None:
        if not self.paused:
            return
        self.paused = False
        # Pausing closed every connection and pushed each address's retry 30 s out: dial again now.
        for addr in self.candidates:
            self.candidates[addr] = 0.0
        self.swarm.connect_more(self.now)

    def _save_resume(self) -> None:
        if self.picker is not None and self.disk.save(self.picker.have.copy(), self.name, self.selection):
            self.resume_dirty = False

    def _on_download_complete(self, *, announce: bool) -> None:
        self.state = TorrentState.SEEDING
        self.seeding_since = self.now
        self._save_resume()
        self.disk.release()
        self.downloader.drop_buffers()
        self.emit(alerts.Completed(self.downloader.pieces_downloaded, tuple(self.downloader.download_sources())))
        if announce and self.tiers is not None:
            self._spawn(self._announce("completed"))
        for peer in list(self.peers.values()):
            if peer.is_seed:
                peer.link.close("both sides are seeds")
            elif peer.conn.am_interested:
                peer.link.write(peer.conn.send_not_interested())
        self._check_goal()

    def _check_goal(self) -> None:
        if self.finished or not self.complete or self.meta is None:
            return
        if self.uploader.leaving_since is not None:
            self.uploader.check_left()
            return
        wanted = self.picker.wanted_bytes() if self.picker is not None else self.meta.total_length
        if self.seed_ratio is not None and self.uploaded >= self.seed_ratio * wanted:
            self.uploader.leave()
        elif self.limits.goal_met(self.now, self.seeding_since, self.seed_time_s):  # seed time, idle limit
            self.uploader.leave()

    def _on_left(self) -> None:
        self.finished = True
        self.state = TorrentState.FINISHED
        self.emit(alerts.Finished())
        self.host.wake_event.set()

    def _on_metadata_verified(self, info_bytes: bytes) -> None:
        self._spawn(self._on_metadata_complete(info_bytes))

    async def _on_metadata_complete(self, info_bytes: bytes) -> None:
        from torrentpy.metainfo import parse_info_dict

        assert self.magnet is not None
        try:
            meta = parse_info_dict(info_bytes, trackers=self.magnet.trackers)
        except TorrentError as exc:
            self.fail(f"metadata from peers is invalid: {exc}")
            return
        self.metadata.finish()
        self.meta = meta
        self.name = meta.name
        self.emit(alerts.MetadataReceived(meta.name))
        await self._prepare_storage()
        if self.state == TorrentState.ERROR or self.picker is None:
            return
        for peer in list(self.peers.values()):
            link, conn = peer.link, peer.conn
            if link.closed:
                continue
            if not conn.num_pieces:
                conn.set_torrent_size(meta.num_pieces, meta.piece_length, meta.total_length)
            # Until now we sent only extension messages, so our bitfield may still go first (BEP 3).
            if self.picker.have.any() or conn.supports_fast:
                link.write(conn.send_bitfield(self.picker.have))
            # The peer's bitfield and haves, held back while the size was unknown, come out as
            # queued events now: handle them as if they had just arrived.
            while not link.closed:
                event = conn.next_event()
                if event is None or not self.on_event(link, event):
                    break
            if not link.closed:
                self.downloader.update_interest(peer)

    # Trackers.

    async def _announce(self, event: str) -> None:
        # An event is never skipped: the tiers queue it behind an announce in flight, per tier.
        if self.tiers is None or (self.announcing and not event):
            return
        self.announcing += 1
        try:
            # Each tier's answer is used as it arrives: a dead tracker in one tier must not delay the rest.
            await self.tiers.announce(
                event, uploaded=self.uploaded, downloaded=self.downloaded, left=self.left_bytes(),
                numwant=200, on_response=self._on_tracker_response,
            )
        except TorrentError as exc:
            self.emit(alerts.TrackerError(str(exc)))
        finally:
            self.announcing -= 1

    def _on_tracker_response(self, resp: AnnounceResponse) -> None:
        if resp.warning:
            self.emit(alerts.TrackerWarning(resp.warning))
        self.add_candidates(resp.peers, source=SOURCE_TRACKER)
        self.swarm.connect_more(self.now)  # now, not on the next 1 s tick

    # Connections: the session hands links over (PeerHandler) and asks for these.

    def add_candidates(self, addrs: list[Addr], source: str = SOURCE_MANUAL) -> None:
        self.swarm.add_candidates(addrs, source)

    def peer_totals(self) -> dict[Addr, tuple[str, int, int]]:
        return self.swarm.peer_totals()

    def wants_peers(self) -> bool:
        return not self.paused and self.state not in (TorrentState.ERROR, TorrentState.CHECKING) \
            and not self.finished and self.uploader.leaving_since is None

    def connect_failed(self, addr: Addr, reason: str) -> None:
        self.swarm.connect_failed(addr, reason)

    def attach(self, link: PeerLink) -> None:
        self.swarm.attach(link)

    def on_connected(self, link: PeerLink) -> None:  # handled by the session
        pass

    def on_writable(self, link: PeerLink) -> None:
        peer = self.peers.get(link.addr)
        if peer is not None and peer.upload_queue and not peer.serving:
            self.uploader.start_serving(peer)

    def on_closed(self, link: PeerLink, reason: str) -> None:
        self.swarm.on_closed(link, reason)

    def _on_departed(self, peer: Peer) -> None:
        """The swarm has dropped a peer that closed: forget what it had and was doing."""
        if self.picker is not None:
            self.picker.remove_peer(peer.addr)
        self.uploader.forget(peer)
        if self.uploader.leaving_since is not None and not self.finished:
            self.uploader.check_left()

    def start_peer(self, peer: Peer) -> None:
        """Right after the handshake: tell the peer who we are and what we have."""
        out = self.swarm.extended_handshake(peer.conn, self.meta, reqq=MAX_QUEUED_REQUESTS)
        self.uploader.greet(peer, out, self.now)
        peer.client = client_name(peer.conn.peer_id or b"")

    def ban(self, peer: Peer, reason: str) -> None:
        if peer.link.closed and peer.addr in self.banlist.banned:
            return  # banned already, and several of its pieces failed before the close took effect
        listening = listen_addr(peer)
        self.banlist.ban(peer.addr, peer.conn.peer_id, listening)  # the listen address: never dial it back
        self.candidates.pop(peer.addr, None)
        if listening is not None:
            self.candidates.pop(listening, None)
        self.emit(alerts.PeerBanned(f"{peer.addr[0]}:{peer.addr[1]}", reason))
        peer.link.close(f"banned: {reason}")
        # The same client may also hold a second connection (it dialled back in after we dialled
        # it): the same peer id, or an incoming link whose announced listen port is a banned address.
        for other in list(self.peers.values()):
            if other is not peer and self.banlist.is_banned_identity(other.conn.peer_id, listen_addr(other)):
                self.banlist.add(other.addr)
                other.link.close(f"banned: {reason}")

    def _protocol_error(self, peer: Peer, reason: str) -> bool:
        self.emit(alerts.PeerError(f"{peer.addr[0]}:{peer.addr[1]}", reason))
        peer.link.close(reason)
        return False

    # Peer events: one handler per event type (engine/dispatch.py).

    def on_event(self, link: PeerLink, event: ev.Event) -> bool:
        peer = self.peers.get(link.addr)
        if peer is None or peer.link is not link:
            return False
        now = self.now
        peer.last_recv_at = now
        return EVENT_HANDLERS[type(event)](self, peer, event, now)

    # The 1 Hz tick.

    def tick(self, now: float) -> None:
        if self.state == TorrentState.ERROR or self.paused or not self.started:
            return
        if self.uploader.leaving_since is not None:
            self._check_goal()  # no rechoke, no new requests or peers: just serve and go
            return
        self.swarm.check_health(now)
        self.swarm.send_pex(now)
        self.downloader.check_requests(now)  # snubbing peers, unanswered requests, queue top-ups
        self.metadata.tick(self.peers.values())
        self.uploader.tick(now)  # re-choke when the choker is due, super-seeding offers
        self.swarm.connect_more(now)
        if self.tiers is not None and not self.announcing and not self.finished:
            if self.tiers.next_announce_in(now) <= 0:
                self._spawn(self._announce(""))
            elif len(self.peers) < 5 and not self.candidates and hasattr(self.tiers, "wants_early_announce"):
                if self.tiers.wants_early_announce(now):
                    self._spawn(self._announce(""))
        disk = self.disk
        if self.resume_dirty and not disk.saving and now - disk.last_save >= RESUME_SAVE_INTERVAL_S \
                and self.picker is not None:
            self.resume_dirty = False
            self._spawn(disk.save_async(self.picker.have.copy(), self.name, self.selection))
        if self.complete:
            self._check_goal()

    def snapshot(self, now: float) -> TorrentSnapshot:
        return torrent_snapshot(self, now)
