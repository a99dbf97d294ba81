"""The daemon's torrents: a Session whose set of torrents changes while it runs, and survives restarts.

Every change a remote front end makes (add, remove, start, stop, verify, move, settings) goes through
here, is applied to the session and recorded in the state folder (engine/statedir.py) before the call
returns, so a crash at any moment after the answer loses nothing the front end was told.
Transmission-style numeric ids live here too: they are what `transmission-remote -t 3` means.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from torrentpy.engine import alerts
from torrentpy.engine.activity import RECENTLY_ACTIVE_S
from torrentpy.engine.encryption import DEFAULT_MODE, MODES
from torrentpy.engine.selection import SelectionError
from torrentpy.engine.session import Session
from torrentpy.engine.statedir import StateDir, TorrentRecord, write_atomically
from torrentpy.engine.torrent import Torrent
from torrentpy.errors import StorageError, UsageError
from torrentpy.metainfo import Magnet, Metainfo, parse_info_dict
from torrentpy.queueing import QueueItem, QueueLimits, TorrentQueue
from torrentpy.text import printable

log = logging.getLogger("torrentpy")

SESSION_FILE = "session.json"
# The session file names every torrent in queue order (~46 bytes each): 1 MiB, the bound it had, cut
# the file short at ~22,000 torrents and lost the settings with it. 64 MiB holds over a million.
MAX_SESSION_FILE_BYTES = 64 << 20
# torrent-get's `ids` for Transmission's recently active torrents: RPC 16's spelling, and 4.1's (RPC 18).
RECENTLY_ACTIVE_IDS = ("recently-active", "recently_active")


@dataclass
class SessionSettings:
    """The session-wide settings a front end may change (session-set); saved in the state folder."""

    download_dir: str
    speed_limit_down_kbps: int = 100  # Transmission's defaults, used only when *_enabled
    speed_limit_down_enabled: bool = False
    speed_limit_up_kbps: int = 100
    speed_limit_up_enabled: bool = False
    seed_ratio_limit: float = 2.0
    seed_ratio_limited: bool = False
    idle_seeding_limit: int = 30  # minutes; Transmission's default, used only when enabled
    idle_seeding_limit_enabled: bool = False
    peer_limit_per_torrent: int = 50
    start_added_torrents: bool = True
    download_queue_enabled: bool = False  # engine/queueing.py; sizes are Transmission's defaults
    download_queue_size: int = 5
    seed_queue_enabled: bool = False
    seed_queue_size: int = 10
    encryption: str = DEFAULT_MODE  # MSE/PE mode (engine/encryption.py), session-set's "encryption"
    queue_order: list[str] = field(default_factory=list)  # info hashes (hex), queue position 0 first
    # What torrent-get's "recently-active" covers, removed torrents' ids included: Transmission's 60 s.
    # Only in the session file (front ends have no setting for it); tests shorten it.
    recently_active_s: float = RECENTLY_ACTIVE_S
    # Totals over every run of the daemon (session-stats' cumulative-stats).
    cumulative: dict[str, int] = field(default_factory=lambda: {
        "uploadedBytes": 0, "downloadedBytes": 0, "filesAdded": 0, "sessionCount": 0, "secondsActive": 0})


class Daemon:
    def __init__(self, session: Session, state: StateDir, settings: SessionSettings) -> None:
        self.session = session
        self.state = state
        self.settings = settings
        self.records: dict[bytes, TorrentRecord] = {}
        self.by_id: dict[int, bytes] = {}
        self.removed: list[tuple[int, float]] = []  # (id, session.now() when removed), oldest first
        self.started_at = time.time()
        # The X-Transmission-Session-Id a client must echo (CSRF protection); new on every start.
        self.session_id = secrets.token_urlsafe(36)
        self.files_added = 0
        self._base_totals = (0, 0)  # payload of torrents already removed this run
        self.queue = TorrentQueue()
        session.listeners.append(self._on_alert)

    # --- loading and saving --------------------------------------------------------------

    @classmethod
    def open(cls, session: Session, state_dir: str, download_dir: str, *, encryption: str | None = None) -> Daemon:
        state = StateDir(os.path.abspath(state_dir))
        settings = SessionSettings(download_dir=download_dir)
        path = os.path.join(state_dir, SESSION_FILE)
        saved = _read_json(path) or _read_json(path + ".bak")
        if saved:
            for key, value in saved.items():
                if hasattr(settings, key) and key != "download_dir":
                    setattr(settings, key, value)
        if encryption is not None:  # the command line's --encryption wins over what was saved
            settings.encryption = encryption
        if settings.encryption not in MODES:
            log.warning("state: encryption %r is not one of %s: using %s", settings.encryption, ", ".join(MODES),
                        DEFAULT_MODE)
            settings.encryption = DEFAULT_MODE
        window = settings.recently_active_s
        if isinstance(window, bool) or not isinstance(window, int | float) or not 0 < window < 86400:
            settings.recently_active_s = RECENTLY_ACTIVE_S  # a hand-edited file: Transmission's minute
        settings.cumulative["sessionCount"] += 1
        daemon = cls(session, state, settings)
        daemon.apply_limits()
        daemon.restore()
        return daemon

    def restore(self) -> None:
        for record in self.state.load_all():
            source: Metainfo | Magnet
            try:
                source = parse_info_dict(record.info, trackers=record.trackers) if record.info is not None \
                    else Magnet(record.info_hash, record.name, record.trackers, record.peers)
            except Exception as exc:  # a record that passed its checksum but not the parser: report, go on
                self._not_restored(record, exc)
                continue
            try:
                torrent = self.session.add(source, record.save_dir)
                self._adopt(record, torrent)
            except Exception as exc:  # one torrent that cannot come back must not keep the others away
                self._not_restored(record, exc)
                added = self.session.torrents.pop(record.info_hash, None)
                if added is not None:
                    self.session.schedule.forget(added)
                if self.records.pop(record.info_hash, None) is not None:
                    self.by_id.pop(record.id, None)
                self.queue.remove(record.info_hash)
                continue
        saved = {h: n for n, h in enumerate(self.settings.queue_order)}
        self.queue.sort(key=lambda h: (saved.get(h.hex(), len(saved)), self.records[h].id))
        self.apply_queue()

    def _not_restored(self, record: TorrentRecord, exc: Exception) -> None:
        message = f"{record.info_hash.hex()} ({printable(record.name)}): not restored: {exc}"
        self.state.problems.append(message)
        log.warning("state: %s", message)

    def _adopt(self, record: TorrentRecord, torrent: Torrent) -> None:
        if self.by_id.get(record.id, record.info_hash) != record.info_hash or record.id <= 0:
            record.id = max(self.by_id, default=0) + 1
        self.records[record.info_hash] = record
        self.by_id[record.id] = record.info_hash
        if record.info_hash not in self.queue:
            self.queue.place(record.info_hash)
        torrent.swarm.max_peers = int(record.settings.get("peer-limit", torrent.swarm.max_peers))
        mode = record.settings.get("seedRatioMode", 0)
        torrent.seed_ratio = self._seed_ratio(mode, record.settings.get("seedRatioLimit"))
        _apply_torrent_limits(torrent, record.settings, self.settings)
        _replay_selection(torrent, record.settings)
        if record.paused:
            torrent.pause()

    def save(self, info_hash: bytes) -> None:
        record = self.records[info_hash]
        torrent = self.session.torrents.get(info_hash)
        if torrent is not None:
            # record.paused is the user's choice (start/stop); a torrent waiting in the queue is paused
            # by the queue and started again by it.
            record.name = torrent.name
            record.save_dir = torrent.save_dir
            if record.info is None and torrent.meta is not None:
                record.info = torrent.meta.info_bytes
        self.state.save(record)

    def save_session(self) -> None:
        snap_down, snap_up = self.totals()
        self.settings.queue_order = [h.hex() for h in self.queue.order]
        data = dict(vars(self.settings))
        cumulative = dict(self.settings.cumulative)
        cumulative["downloadedBytes"] += snap_down
        cumulative["uploadedBytes"] += snap_up
        cumulative["filesAdded"] += self.files_added
        cumulative["secondsActive"] += int(time.time() - self.started_at)
        data["cumulative"] = cumulative
        write_atomically(os.path.join(self.state.path, SESSION_FILE), json.dumps(data, indent=1).encode())

    def close(self) -> None:
        """After the session has stopped: every record and the session's totals saved one last time."""
        for info_hash, torrent in self.session.torrents.items():
            if info_hash in self.records:
                self._fold_counters(info_hash, torrent)
                try:
                    self.save(info_hash)
                except StorageError as exc:
                    log.warning("%s", exc)
        try:
            self.save_session()
        except OSError as exc:
            log.warning("cannot save the session settings in %s: %s", self.state.path, exc.strerror or exc)

    def _fold_counters(self, info_hash: bytes, torrent: Torrent) -> None:
        """A torrent object that is going away hands its byte counts to the record (uploadedEver …)."""
        settings = self.records[info_hash].settings
        # Nothing moved, nothing to add: the record stays byte for byte what is on disk (not rewritten).
        if torrent.uploaded:
            settings["uploadedEver"] = int(settings.get("uploadedEver", 0)) + torrent.uploaded
        if torrent.downloaded:
            settings["downloadedEver"] = int(settings.get("downloadedEver", 0)) + torrent.downloaded

    def _on_alert(self, alert: alerts.Alert) -> None:
        if isinstance(alert, alerts.MetadataReceived):
            info_hash = bytes.fromhex(alert.info_hash)
            if info_hash in self.records:
                try:
                    self.save(info_hash)  # from now on a restart needs no peers to know the torrent
                except StorageError as exc:
                    log.warning("%s", exc)

    # --- what front ends ask for -------------------------------------------------------------

    def totals(self) -> tuple[int, int]:
        """Payload downloaded and uploaded this run, removed torrents included."""
        down, up = self._base_totals
        for t in self.session.torrents.values():
            down += t.downloaded
            up += t.uploaded
        return down, up

    def id_of(self, info_hash: bytes) -> int:
        return self.records[info_hash].id

    def resolve(self, ids: Any) -> list[bytes]:
        """Transmission's `ids`: absent (all), one id, a list of ids and/or hash strings, or
        "recently-active". Unknown ids are left out, as Transmission does."""
        if ids is None:
            return [self.by_id[i] for i in sorted(self.by_id)]
        if ids in RECENTLY_ACTIVE_IDS:
            return self.recently_active()
        items = ids if isinstance(ids, list) else [ids]
        out: list[bytes] = []
        for item in items:
            info_hash: bytes | None = None
            if isinstance(item, int) and not isinstance(item, bool):
                info_hash = self.by_id.get(item)
            elif isinstance(item, str) and len(item) == 40:
                try:
                    info_hash = bytes.fromhex(item)
                except ValueError:
                    info_hash = None
            if info_hash is not None and info_hash in self.records and info_hash not in out:
                out.append(info_hash)
        return out

    def recently_active(self) -> list[bytes]:
        """Transmission's "recently-active": torrents that changed within the window (a front end's
        change, an engine alert, peers or an announce), in id order; costs O(answer)."""
        active = self.session.recently_active(self.settings.recently_active_s)
        return sorted((h for h in active if h in self.records), key=lambda h: self.records[h].id)

    def recently_removed(self) -> list[int]:
        cutoff = self.session.now() - self.settings.recently_active_s
        while self.removed and self.removed[0][1] < cutoff:
            self.removed.pop(0)
        return [i for i, _ in self.removed]

    def touch(self, info_hash: bytes) -> None:
        """A front end changed this torrent: "recently-active" reports it for the next minute."""
        self.session.activity.touch(info_hash, self.session.now())

    # --- changes -----------------------------------------------------------------------------

    def add(self, source: Metainfo | Magnet, *, save_dir: str | None = None,
            paused: bool | None = None) -> tuple[TorrentRecord, bool]:
        """Add a torrent; (its record, True) when it was already there (nothing changes then)."""
        if source.info_hash in self.records:
            return self.records[source.info_hash], True
        folder = os.path.abspath(save_dir or self.settings.download_dir)
        record = TorrentRecord(
            info_hash=source.info_hash, id=max(self.by_id, default=0) + 1, name=source.name, save_dir=folder,
            paused=not self.settings.start_added_torrents if paused is None else paused,
            added_at=int(time.time()),
            info=source.info_bytes if isinstance(source, Metainfo) else None, trackers=source.trackers,
            peers=source.peers if isinstance(source, Magnet) else (),
        )
        os.makedirs(folder, exist_ok=True)
        self.state.save(record)  # recorded first: once the front end hears "added", a crash keeps it
        torrent = self.session.add(source, folder)
        torrent.swarm.max_peers = self.settings.peer_limit_per_torrent
        torrent.seed_ratio = self._seed_ratio(0, None)
        self._adopt(record, torrent)
        self.files_added += 1
        self.touch(source.info_hash)
        # Last in the queue, which is where a restart puts a torrent the saved order does not name (its id
        # is the highest): the session file (every torrent's hash) need not be rewritten per add.
        self.apply_queue()
        return record, False

    async def remove(self, info_hash: bytes, *, delete_data: bool) -> None:
        torrent = await self.session.remove(info_hash)
        record = self.records.pop(info_hash)
        self.by_id.pop(record.id, None)
        self.removed.append((record.id, self.session.now()))
        self.state.remove(info_hash)
        self.queue.remove(info_hash)
        self.apply_queue()  # the others keep their order: a hash the saved order names in vain is skipped
        if torrent is not None:
            self._base_totals = (self._base_totals[0] + torrent.downloaded, self._base_totals[1] + torrent.uploaded)
            if delete_data and torrent.meta is not None:
                from torrentpy.storage.removal import delete_data as delete

                delete(torrent.meta, torrent.save_dir)

    def start(self, info_hash: bytes, *, now: bool = False) -> None:
        """torrent-start (when the queue allows) or torrent-start-now (at once, outside the queue)."""
        torrent = self.session.torrents[info_hash]
        if torrent.state == "finished":
            # Transmission starts a torrent that met its ratio again only once the limit is raised;
            # torrentpy's goal is met for good, so it stays as it is.
            return
        self.records[info_hash].paused = False
        if now:
            self.queue.forced.add(info_hash)
        if info_hash not in self.queue.waiting or now:
            torrent.resume()
        self.apply_queue()
        self._changed(info_hash)

    def stop(self, info_hash: bytes) -> None:
        self.records[info_hash].paused = True
        self.queue.forced.discard(info_hash)
        self.session.torrents[info_hash].pause()
        self.apply_queue()
        self._changed(info_hash)

    def move_in_queue(self, info_hashes: list[bytes], where: str) -> None:
        self.queue.move(info_hashes, where)
        self._queue_changed()

    def _queue_changed(self) -> None:
        self.apply_queue()
        try:
            self.save_session()  # the queue order lives in the session file
        except OSError as exc:
            log.warning("cannot save the queue order in %s: %s", self.state.path, exc.strerror or exc)

    def apply_queue(self) -> None:
        """Pause the torrents that must wait and resume those whose turn has come (every second, and
        after each change a front end makes)."""
        s = self.settings
        if not s.download_queue_enabled and not s.seed_queue_enabled and not self.queue.waiting:
            return  # no queue, and nobody left waiting from one: nothing to decide (not O(torrents) a second)
        limits = QueueLimits(s.download_queue_enabled, s.download_queue_size, s.seed_queue_enabled,
                             s.seed_queue_size)
        items = {}
        for info_hash, record in self.records.items():
            torrent = self.session.torrents.get(info_hash)
            if torrent is not None:
                items[info_hash] = QueueItem(not record.paused and torrent.state not in ("error", "finished"),
                                             torrent.complete)
        waiting = self.queue.plan(items, limits)
        for info_hash, item in items.items():
            torrent = self.session.torrents[info_hash]
            if not item.wants_to_run:
                continue
            if info_hash in waiting and not torrent.paused:
                torrent.pause()
            elif info_hash not in waiting and torrent.paused:
                torrent.resume()
                self.touch(info_hash)

    async def verify(self, info_hash: bytes) -> None:
        self._fold_counters(info_hash, self.torrent(info_hash))
        self._adopt(self.records[info_hash], await self.session.restart(info_hash, recheck=True))
        self.apply_queue()
        self._changed(info_hash)

    async def set_location(self, info_hash: bytes, location: str, *, move: bool) -> None:
        location = os.path.abspath(location)
        torrent = self.torrent(info_hash)
        self._fold_counters(info_hash, torrent)
        if not move or torrent.meta is None:
            self._adopt(self.records[info_hash], await self.session.restart(info_hash, save_dir=location))
            self.apply_queue()
            self._changed(info_hash)
            return
        from torrentpy.storage.removal import move_data

        meta, old, paused = torrent.meta, torrent.save_dir, self.records[info_hash].paused
        await self.session.remove(info_hash)  # no piece may be written to the old place meanwhile
        where = old
        try:
            move_data(meta, old, location)
            where = location
        finally:
            # Started again wherever the data is now (after a failed move: where it was).
            restarted = self.session.add(meta, where)
            self.records[info_hash].paused = paused
            self._adopt(self.records[info_hash], restarted)
            self.apply_queue()
            self._changed(info_hash)

    def set_torrent(self, info_hash: bytes, settings: dict[str, Any]) -> None:
        record = self.records[info_hash]
        torrent = self.session.torrents[info_hash]
        record.settings.update(settings)
        if "peer-limit" in settings:
            torrent.swarm.max_peers = int(settings["peer-limit"])
        if "seedRatioMode" in settings or "seedRatioLimit" in settings:
            torrent.seed_ratio = self._seed_ratio(record.settings.get("seedRatioMode", 0),
                                                  record.settings.get("seedRatioLimit"))
        _apply_torrent_limits(torrent, record.settings, self.settings)
        self._changed(info_hash)

    def _seed_ratio(self, mode: int, limit: float | None) -> float | None:
        """Transmission's seedRatioMode: 0 the session's limit, 1 this torrent's, 2 unlimited."""
        if mode == 1 and limit is not None:
            return float(limit)
        if mode == 0 and self.settings.seed_ratio_limited:
            return float(self.settings.seed_ratio_limit)
        return None

    def apply_limits(self) -> None:
        s = self.settings
        self.session.encryption.set_mode(s.encryption)
        self.session.download_bucket.set_rate(s.speed_limit_down_kbps * 1000 if s.speed_limit_down_enabled else 0)
        self.session.upload_bucket.set_rate(s.speed_limit_up_kbps * 1000 if s.speed_limit_up_enabled else 0)
        for info_hash, torrent in self.session.torrents.items():
            record = self.records.get(info_hash)
            if record is not None:
                torrent.seed_ratio = self._seed_ratio(record.settings.get("seedRatioMode", 0),
                                                      record.settings.get("seedRatioLimit"))
                _apply_torrent_limits(torrent, record.settings, s)

    def _changed(self, info_hash: bytes) -> None:
        self.touch(info_hash)
        self.save(info_hash)

    def record(self, info_hash: bytes) -> TorrentRecord:
        return self.records[info_hash]

    def torrent(self, info_hash: bytes) -> Torrent:
        torrent = self.session.torrents.get(info_hash)
        if torrent is None:
            raise UsageError(f"no torrent {info_hash.hex()}")
        return torrent


def _apply_torrent_limits(torrent: Torrent, settings: dict[str, Any], session: SessionSettings) -> None:
    """A torrent's own speed limits (kB/s of 1000 bytes, as session-get's units say), whether the session's
    apply, and its idle seeding limit (seedIdleMode: 0 the session's, 1 its own, 2 none)."""
    limits = torrent.limits
    down = int(settings.get("downloadLimit", 0)) * 1000 if settings.get("downloadLimited") else 0
    up = int(settings.get("uploadLimit", 0)) * 1000 if settings.get("uploadLimited") else 0
    limits.set_rates(download_bps=down, upload_bps=up)
    limits.honors_session = bool(settings.get("honorsSessionLimits", True))
    mode = settings.get("seedIdleMode", 0)
    minutes: int | None = None
    if mode == 1:
        minutes = int(settings.get("seedIdleLimit", session.idle_seeding_limit))
    elif mode == 0 and session.idle_seeding_limit_enabled:
        minutes = session.idle_seeding_limit
    limits.seed_idle_s = minutes * 60.0 if minutes is not None else None


def _replay_selection(torrent: Torrent, settings: dict[str, Any]) -> None:
    """The file choice a front end last made, applied over the resume file's once the torrent binds
    its selection (it wins, as every change made before binding does)."""
    wanted, priorities = settings.get("wanted"), settings.get("priorities")
    if not isinstance(wanted, list) or not isinstance(priorities, list) or len(wanted) != len(priorities):
        return
    try:
        for level in (-1, 0, 1):
            chosen = [i for i, p in enumerate(priorities) if p == level]
            if chosen:
                torrent.set_files_priority(chosen, level)
        for flag in (False, True):
            chosen = [i for i, w in enumerate(wanted) if bool(w) == flag]
            if chosen:
                torrent.set_files_wanted(chosen, flag)
    except SelectionError as exc:  # a record from another version of the torrent's files: ignore it
        log.warning("%s: saved file choice ignored: %s", torrent.name, exc)


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_SESSION_FILE_BYTES + 1)
        if len(data) > MAX_SESSION_FILE_BYTES:
            raise ValueError(f"larger than {MAX_SESSION_FILE_BYTES} bytes")
        value = json.loads(data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("state: %s: %s; using the previous copy", path, exc)
        return None
    return value if isinstance(value, dict) else None
