"""One torrent inside a session: peers, pieces, trackers, choking, seeding goals.

Policy is delegated to the pure objects (PiecePicker, Choker, TokenBucket); this
class wires their decisions to connections (net), disk (storage) and trackers."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any, cast

from torrentpy._core import Bitfield
from torrentpy.clients import client_name
from torrentpy.engine import alerts
from torrentpy.engine.accounting import RateMeter
from torrentpy.engine.banlist import BanList
from torrentpy.engine.download import Downloader
from torrentpy.engine.metadata import MetadataExchange
from torrentpy.engine.peer import Peer
from torrentpy.engine.picker import Block, PiecePicker
from torrentpy.engine.selection import FileSelection, SelectionControls
from torrentpy.engine.snapshot import TorrentSnapshot, torrent_snapshot
from torrentpy.engine.superseed import SuperSeeder
from torrentpy.engine.swarm import Swarm, totals_key
from torrentpy.engine.upload import MAX_QUEUED_REQUESTS, Uploader
from torrentpy.errors import StorageError, TorrentError
from torrentpy.metainfo import Magnet, Metainfo
from torrentpy.net.peer import PeerLink
from torrentpy.protocol import events as ev
from torrentpy.storage.checker import check_pieces_async
from torrentpy.storage.files import Storage
from torrentpy.storage.layout import Layout
from torrentpy.storage.resume import release_resume_reserve, reserve_resume_space, resume_state, save_resume

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
    ) -> None:
        self.host = host
        self.save_dir = save_dir
        self.seed_ratio = seed_ratio
        self.seed_time_s = seed_time_s
        self.info_hash = source.info_hash
        self.magnet = source if isinstance(source, Magnet) else None
        self.meta: Metainfo | None = source if isinstance(source, Metainfo) else None
        self.name = source.name
        self.state = "metadata" if self.meta is None else "checking"
        self.error: str | None = None
        self.paused = False
        self.finished = False  # seeding goal met (or download done with no seeding)
        self.rng = random.Random()
        self.banlist = BanList(block_size=BLOCK_SIZE)
        self.swarm = Swarm(host, self, max_peers=max_peers, spawn=self._spawn, wants_peers=self.wants_peers,
                           is_banned=lambda addr: addr in self.banned, on_departed=self._on_departed)
        self.down = RateMeter()
        self.up = RateMeter()
        self.downloaded = 0  # payload this session
        self.uploaded = 0
        self.pieces_at_start = 0  # verified pieces found on disk at start
        self.seeding_since: float | None = None
        self.storage: Storage | None = None
        self.layout: Layout | None = None
        self.picker: PiecePicker | None = None
        self.tiers: Any = None
        self.resume_dirty = False
        self.last_resume_save = 0.0
        self.announcing = 0  # announces in flight
        self._tasks: set[asyncio.Task[Any]] = set()
        self.metadata = MetadataExchange(self.info_hash, fetch=self.magnet is not None,
                                         on_verified=self._on_metadata_verified)
        self.downloader = Downloader(self, self.banlist)
        self.selection = FileSelection(info_only=self.magnet.select_only if self.magnet is not None else None)
        if self.magnet is not None:
            for addr in self.magnet.peers:
                self.swarm.candidates[addr] = 0.0
        self._make_tiers(source.trackers)
        self.uploader = Uploader(self, host, slots=unchoke_slots, rng=self.rng)

    # --- helpers --------------------------------------------------------------

    def _make_tiers(self, trackers: tuple[tuple[str, ...], ...]) -> None:
        if not trackers:
            self.tiers = None
            return
        # Imported on demand: aiohttp costs a quarter second at start-up.
        from torrentpy.net.tiers import TrackerTiers

        self.tiers = TrackerTiers(
            [list(t) for t in trackers],
            info_hash=self.info_hash,
            peer_id=self.host.peer_id,
            # Asked at each announce: the session knows its port only once it listens, after add().
            port=lambda: self.host.listen_port,
            get_session=self.host.http_session,
        )

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if isinstance(exc, TorrentError):
                self.fail(str(exc))
            else:
                log.error("internal error in %s", self.name, exc_info=exc)
                self.fail(f"internal error: {exc!r}")

    def emit(self, alert: alerts.TorrentAlert) -> None:
        self.host.emit(alert.about(self.name, self.info_hash.hex()))

    def fail(self, message: str) -> None:
        """Stop this torrent with a clear error, keeping what was verified."""
        if self.state == "error":
            return
        self.error = message
        self.state = "error"
        self.host.wake_event.set()
        self.emit(alerts.Failed(message))
        for peer in list(self.peers.values()):
            peer.link.close("torrent stopped after an error")
        if self.storage is not None:
            # No write may start after this: on a full disk the resume save below takes the
            # space its reserve frees, and a piece write racing it must not take it first.
            self.storage.close()
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

    # --- lifecycle --------------------------------------------------------------

    started = False  # storage checked and the first announce sent: the 1 Hz tick may act
    storage_ready = False  # the check (or resume file) has told the picker what is on disk

    async def start(self) -> None:
        if self.meta is not None:
            await self._prepare_storage()
        if self.state == "error":
            return
        self.started = True
        if self.tiers is not None:
            self._spawn(self._announce("started"))

    async def _prepare_storage(self) -> None:
        meta = self.meta
        assert meta is not None
        self.layout = Layout(meta)
        self.picker = PiecePicker(meta.num_pieces, meta.piece_length, meta.total_length,
                                  block_size=BLOCK_SIZE, rng=self.rng)
        self.storage = Storage(meta, self.save_dir)
        loop = asyncio.get_running_loop()
        self.state = "checking"
        try:
            self.selection.bind(meta, final=False)  # the files not to create; the saved choice comes next
            await loop.run_in_executor(self.host.executor, self.storage.open_files, self.selection.unwanted_files())
            saved = await loop.run_in_executor(self.host.executor, resume_state, meta, self.save_dir)
            self.selection.bind(meta, *((saved.selection, saved.sequential) if saved else ()))
            self._selection_changed()
            if saved is None:
                self.emit(alerts.Checking())
                have = await check_pieces_async(self.storage, meta, progress=self._on_check_progress)
            else:
                have = saved.have
                if saved.recheck:
                    self.emit(alerts.Checking(len(saved.recheck)))
                    rechecked = await check_pieces_async(self.storage, meta, pieces=saved.recheck,
                                                         progress=self._on_check_progress)
                    have = have | rechecked
        except StorageError as exc:
            self.fail(str(exc))
            return
        for index in have:
            self.picker.piece_passed(index)
        self.pieces_at_start = have.count()
        self.storage_ready = True
        self.check_progress = meta.num_pieces
        self.emit(alerts.Resumed(self.pieces_at_start, meta.num_pieces))
        # Saved now, before any data can fill the disk, and with room set aside for the saves to come.
        self._save_resume()
        if self.picker.done():
            self._on_download_complete(announce=False)
        else:
            await loop.run_in_executor(self.host.executor, reserve_resume_space, meta, self.save_dir)
            self.state = "downloading"

    check_progress = 0

    def _on_check_progress(self, pieces_done: int) -> None:
        self.check_progress = pieces_done

    async def stop(self) -> None:
        for peer in list(self.peers.values()):
            peer.link.close_gracefully("shutting down")  # flush what we wrote; the session waits for it
        for task in list(self._tasks):
            task.cancel()
        self._save_resume()
        if self.tiers is not None:
            try:
                await asyncio.wait_for(
                    self.tiers.stop(uploaded=self.uploaded, downloaded=self.downloaded, left=self.left_bytes()),
                    timeout=5.0,
                )
            except (TimeoutError, TorrentError, OSError):
                pass
        if self.storage is not None:
            self.storage.close()

    def pause(self) -> None:
        if self.paused or self.state == "error":
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
        self._connect_more(self.now)

    def _save_resume(self) -> None:
        """A piece is claimed only after its write returned, so a killed process (kill -9) loses
        nothing it claimed: the data is in the page cache. We do not fdatasync before saving:
        forcing writeback of every dirty page cost more than the whole transfer on a fast link,
        and files written after the save have a newer mtime, so their pieces are re-hashed on the
        next start anyway (storage.resume.resume_state)."""
        if self.meta is None or self.picker is None or self.storage is None or not self.storage_ready:
            return  # stopped mid-check: an empty bitfield would overwrite what the old file knew
        have = self.picker.have.copy()
        try:
            save_resume(self.meta, self.save_dir, have, selection=self.selection.record(),
                        sequential=self.selection.sequential)
        except (StorageError, OSError) as exc:
            log.warning("could not save resume data for %s: %s", self.name, exc)
        self.resume_dirty = False
        self.last_resume_save = self.now

    saving = False

    async def _save_resume_async(self) -> None:
        # The resume file's fsync can take a while with many dirty pages: keep it off the event loop.
        self.saving = True
        try:
            await asyncio.get_running_loop().run_in_executor(self.host.executor, self._save_resume)
        finally:
            self.saving = False

    # --- trackers -------------------------------------------------------------

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
        self.add_candidates(resp.peers)
        self._connect_more(self.now)  # now, not on the next 1 s tick

    def add_candidates(self, addrs: list[tuple[str, int]]) -> None:
        self.swarm.add_candidates(addrs)

    # --- connections ------------------------------------------------------------

    @property
    def peers(self) -> dict[tuple[str, int], Peer]:
        return self.swarm.peers

    @property
    def candidates(self) -> dict[tuple[str, int], float]:
        return self.swarm.candidates

    _totals_key = staticmethod(totals_key)

    def peer_totals(self) -> dict[tuple[str, int], tuple[str, int, int]]:
        return self.swarm.peer_totals()

    def wants_peers(self) -> bool:
        return not self.paused and self.state not in ("error", "checking") and not self.finished \
            and self.leaving_since is None

    def _connect_more(self, now: float) -> None:
        self.swarm.connect_more(now)

    def connect_failed(self, addr: tuple[str, int], reason: str) -> None:
        self.swarm.connect_failed(addr, reason)

    def attach(self, link: PeerLink) -> None:
        self.swarm.attach(link)

    def on_connected(self, link: PeerLink) -> None:  # handled by the session
        pass

    def on_writable(self, link: PeerLink) -> None:
        peer = self.peers.get(link.addr)
        if peer is not None and peer.upload_queue and not peer.serving:
            self._start_serving(peer)

    def on_closed(self, link: PeerLink, reason: str) -> None:
        self.swarm.on_closed(link, reason)

    def _on_departed(self, peer: Peer) -> None:
        """The swarm has dropped a peer that closed: forget what it had and was doing."""
        if self.picker is not None:
            self.picker.remove_peer(peer.addr)
        if self.superseed is not None:
            self.superseed.remove_peer(peer.addr)
        if self.leaving_since is not None and not self.finished:
            self._check_left()

    @property
    def banned(self) -> set[tuple[str, int]]:
        """Banned addresses (the ban list's): never dialled, never accepted."""
        return self.banlist.banned

    @staticmethod
    def _listen_addr(peer: Peer) -> tuple[str, int] | None:
        port = peer.conn.peer_listen_port
        return (peer.addr[0], port) if peer.link.incoming and port else None

    def ban(self, peer: Peer, reason: str) -> None:
        listen_addr = self._listen_addr(peer)
        self.banlist.ban(peer.addr, peer.conn.peer_id, listen_addr)  # the listen address: never dial it back
        self.candidates.pop(peer.addr, None)
        if listen_addr is not None:
            self.candidates.pop(listen_addr, None)
        self.emit(alerts.PeerBanned(f"{peer.addr[0]}:{peer.addr[1]}", reason))
        peer.link.close(f"banned: {reason}")
        # The same client may also hold a second connection (it dialled back in after we dialled
        # it): the same peer id, or an incoming link whose announced listen port is a banned address.
        for other in list(self.peers.values()):
            if other is not peer and self._is_banned_identity(other):
                self.banlist.add(other.addr)
                other.link.close(f"banned: {reason}")

    def _is_banned_identity(self, peer: Peer) -> bool:
        return self.banlist.is_banned_identity(peer.conn.peer_id, self._listen_addr(peer))

    def _protocol_error(self, peer: Peer, reason: str) -> bool:
        self.emit(alerts.PeerError(f"{peer.addr[0]}:{peer.addr[1]}", reason))
        peer.link.close(reason)
        return False

    # --- wire events ------------------------------------------------------------

    def start_peer(self, peer: Peer) -> None:
        """Right after the handshake: tell the peer what we have."""
        conn = peer.conn
        out = self.swarm.extended_handshake(conn, self.meta, reqq=MAX_QUEUED_REQUESTS)
        super_seed = self._super_seeding()
        if super_seed:
            if conn.supports_fast:
                out.append(conn.send_have_none())
        elif self.picker is not None and self.picker.have.any():
            out.append(conn.send_bitfield(self.picker.have))
        elif self.picker is not None and conn.supports_fast:
            out.append(conn.send_bitfield(self.picker.have))
        peer.link.writelines(out)
        peer.client = client_name(conn.peer_id or b"")
        if super_seed and self.superseed is not None:
            self._announce_offers({peer.addr: self.superseed.add_peer(peer.addr, self.now)})

    def _super_seeding(self) -> bool:
        return self.uploader.super_seeding()

    def _announce_offers(self, offers: Mapping[Hashable, list[int]]) -> None:
        self.uploader.announce_offers(offers)

    def on_event(self, link: PeerLink, event: ev.Event) -> bool:
        peer = self.peers.get(link.addr)
        if peer is None or peer.link is not link:
            return False
        now = self.now
        peer.last_recv_at = now
        # Exact-type dispatch, most frequent first: this runs once per message.
        kind = type(event)
        if kind is ev.Piece:
            return self.downloader.on_piece(peer, cast(ev.Piece, event), now)
        if kind is ev.Have:
            return self._on_have(peer, cast(ev.Have, event).index)
        if kind is ev.Request:
            return self.uploader.on_request(peer, cast(ev.Request, event))
        if kind is ev.BitfieldReceived:
            return self._on_bitfield(peer, cast(ev.BitfieldReceived, event).bitfield)
        if kind is ev.Unchoke:
            # A fresh unchoke is a fresh chance: a snubbing peer that chokes and unchokes us again
            # may have spare upload now.
            peer.snubbed = False
            peer.unchoked_us_at = now
            self._fill_requests(peer, now)
            return True
        if kind is ev.Choke:
            self._on_choked(peer)
            return True
        if kind is ev.Interested:
            self.uploader.on_interested(peer, now)
            return True
        if kind is ev.NotInterested:
            return True
        if kind is ev.Cancel:
            self.uploader.on_cancel(peer, cast(ev.Cancel, event))
            return True
        if kind is ev.Reject:
            reject = cast(ev.Reject, event)
            self.downloader.on_reject(peer, Block(reject.index, reject.begin, reject.length))
            return True
        if kind is ev.AllowedFast:
            return True  # BEP 6 allowed-fast pieces are not requested while choked (yet)
        if kind is ev.ProtocolError:
            return self._protocol_error(peer, cast(ev.ProtocolError, event).reason)
        if kind is ev.HandshakeComplete:
            return True
        if kind is ev.ExtendedHandshake:
            return self._on_ext_handshake(peer)
        if kind is ev.PexPeers:
            if self.meta is None or not self.meta.private:
                self.add_candidates(cast(ev.PexPeers, event).added)
            return True
        if kind in (ev.MetadataRequest, ev.MetadataData, ev.MetadataReject):
            return self._on_metadata(peer, event)
        return True

    def _on_ext_handshake(self, peer: Peer) -> bool:
        conn = peer.conn
        if conn.peer_client:
            peer.client = client_name(conn.peer_id or b"")
        if self._is_banned_identity(peer):
            # A banned peer dialling back in comes from a fresh source port; the listen port it
            # announces still gives it away.
            peer.link.close("banned peer")
            return False
        if self.metadata.fetching and conn.peer_metadata_size:
            self.metadata.request(peer)
        return True

    def _on_bitfield(self, peer: Peer, bitfield: Bitfield) -> bool:
        if self.picker is None:
            peer.bitfield = bitfield
            return True
        if peer.bitfield is not None:
            self.picker.remove_peer(peer.addr)
        peer.bitfield = bitfield
        self.picker.add_peer(peer.addr, bitfield)
        if self.complete and bitfield.all():
            peer.link.close("both sides are seeds")
            return False
        if self.superseed is not None and peer.addr in self.superseed:
            self._announce_offers(self.superseed.peer_bitfield(peer.addr, bitfield, self.now))
        self._update_interest(peer)
        return True

    def _on_have(self, peer: Peer, index: int) -> bool:
        if self.picker is None:
            return True
        if peer.bitfield is None:
            peer.bitfield = Bitfield(self.picker.have.__len__())
            self.picker.add_peer(peer.addr, peer.bitfield)
        if not peer.bitfield[index]:
            peer.bitfield.set(index)
            self.picker.peer_have(peer.addr, index)
            if self.superseed is not None and peer.addr in self.superseed:
                self._announce_offers(self.superseed.peer_have(peer.addr, index, self.now))
        if not peer.conn.am_interested and not self.picker.have[index]:
            self._update_interest(peer)
        elif peer.conn.am_interested and not peer.conn.peer_choking:
            self._fill_requests(peer, self.now)
        if self.complete and peer.bitfield.all():
            peer.link.close("both sides are seeds")
            return False
        return True

    def _update_interest(self, peer: Peer) -> None:
        if self.picker is None or peer.bitfield is None:
            return
        want = self.picker.is_interesting(peer.bitfield)
        conn = peer.conn
        if want and not conn.am_interested:
            peer.link.write(conn.send_interested())
            if not conn.peer_choking:
                self._fill_requests(peer, self.now)
        elif not want and conn.am_interested:
            peer.link.write(conn.send_not_interested())

    def _on_choked(self, peer: Peer) -> None:
        self.downloader.on_choked(peer)

    # --- downloading ------------------------------------------------------------

    def _fill_requests(self, peer: Peer, now: float) -> None:
        self.downloader.fill_requests(peer, now)

    def download_sources(self) -> list[dict[str, Any]]:
        return self.downloader.download_sources()

    def _on_download_complete(self, *, announce: bool) -> None:
        self.state = "seeding"
        self.seeding_since = self.now
        self._save_resume()
        if self.meta is not None:
            release_resume_reserve(self.meta, self.save_dir)  # a seed writes no more data
        self.downloader.piece_buffers.clear()
        self.emit(alerts.Completed(self.downloader.pieces_downloaded, tuple(self.download_sources())))
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
        if self.leaving_since is not None:
            self._check_left()
            return
        wanted = self.picker.wanted_bytes() if self.picker is not None else self.meta.total_length
        if self.seed_ratio is not None and self.uploaded >= self.seed_ratio * wanted:
            self._leave()
        elif self.seed_time_s is not None and self.seeding_since is not None and \
                self.now - self.seeding_since >= self.seed_time_s:
            self._leave()

    def _leave(self) -> None:
        self.uploader.leave()

    def _check_left(self) -> None:
        self.uploader.check_left()

    def _on_left(self) -> None:
        self.finished = True
        self.state = "finished"
        self.emit(alerts.Finished())
        self.host.wake_event.set()

    # Read-only views of the Uploader's state, for the swarm and download code that asks about them.
    @property
    def leaving_since(self) -> float | None:
        """When the seeding goal was met; until `finished` we only serve requests accepted before then."""
        return self.uploader.leaving_since

    @property
    def superseed(self) -> SuperSeeder | None:
        return self.uploader.superseed

    # --- uploading --------------------------------------------------------------

    def _start_serving(self, peer: Peer) -> None:
        self.uploader.start_serving(peer)

    # --- metadata (magnet links, BEP 9) ----------------------------------------

    def _on_metadata(self, peer: Peer, event: ev.Event) -> bool:
        error = self.metadata.on_event(peer, event, self.meta.info_bytes if self.meta is not None else None)
        return True if error is None else self._protocol_error(peer, error)

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
        if self.state == "error" or self.picker is None:
            return
        for peer in list(self.peers.values()):
            conn = peer.conn
            if peer.link.closed:
                continue
            if not conn.num_pieces:
                conn.set_torrent_size(meta.num_pieces, meta.piece_length, meta.total_length)
            # Until now we sent only extension messages, so our bitfield may still go first (BEP 3).
            if self.picker.have.any() or conn.supports_fast:
                peer.link.write(conn.send_bitfield(self.picker.have))
            # The peer's bitfield and haves, held back while the size was unknown, come out as
            # queued events now: handle them as if they had just arrived.
            self._process_queued_events(peer)
            if not peer.link.closed:
                self._update_interest(peer)

    def _process_queued_events(self, peer: Peer) -> None:
        link = peer.link
        while not link.closed:
            event = link.conn.next_event()
            if event is None or not self.on_event(link, event):
                break

    # --- the 1 Hz tick ----------------------------------------------------------

    def tick(self, now: float) -> None:
        if self.state == "error" or self.paused or not self.started:
            return
        if self.leaving_since is not None:
            self._check_goal()  # no rechoke, no new requests or peers: just serve and go
            return
        self._check_peers(now)
        self.metadata.tick(self.peers.values())
        self.uploader.tick(now)  # re-choke when the choker is due, super-seeding offers
        self._connect_more(now)
        if self.tiers is not None and not self.announcing and not self.finished:
            if self.tiers.next_announce_in(now) <= 0:
                self._spawn(self._announce(""))
            elif len(self.peers) < 5 and not self.candidates and hasattr(self.tiers, "wants_early_announce"):
                if self.tiers.wants_early_announce(now):
                    self._spawn(self._announce(""))
        if self.resume_dirty and not self.saving and now - self.last_resume_save >= RESUME_SAVE_INTERVAL_S:
            self._spawn(self._save_resume_async())
        if self.complete:
            self._check_goal()

    def _check_peers(self, now: float) -> None:
        self.swarm.check_health(now)
        self.downloader.check_requests(now)  # snubbing peers, unanswered requests, queue top-ups

    # --- snapshots --------------------------------------------------------------

    def snapshot(self, now: float) -> TorrentSnapshot:
        return torrent_snapshot(self, now)
