"""torrent-get's fields, each computed from a torrent and its daemon record, building only what it needs.

A front end polls every few seconds, and with 10,000 torrents a whole snapshot of each (piece map,
availability, files, peers, trackers) per poll was most of the daemon's CPU: each field reads the
engine's state directly, and the peer and tracker rows are built only for the fields that show them.

Names and meanings follow Transmission's rpc-spec (RPC version 16, Transmission 3.00). A field torrentpy
cannot answer truthfully is left out of the reply, which is what Transmission does with a field name it
does not know; front ends fall back on their own default.
"""

from __future__ import annotations

import base64
import time
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from torrentpy.engine.snapshot import PeerSnapshot, peer_snapshots, tracker_snapshots

if TYPE_CHECKING:
    from torrentpy.daemon import Daemon
    from torrentpy.engine.statedir import TorrentRecord
    from torrentpy.engine.torrent import Torrent

__all__ = ["FIELDS", "STATUS_CHECK", "STATUS_DOWNLOAD", "STATUS_DOWNLOAD_WAIT", "STATUS_SEED", "STATUS_SEED_WAIT",
           "STATUS_STOPPED", "known_fields", "torrent_fields"]

# tr_torrent_activity
STATUS_STOPPED = 0
STATUS_CHECK_WAIT = 1
STATUS_CHECK = 2
STATUS_DOWNLOAD_WAIT = 3
STATUS_DOWNLOAD = 4
STATUS_SEED_WAIT = 5
STATUS_SEED = 6
# tr_stat_errtype
ERROR_NONE = 0
ERROR_LOCAL = 3
ETA_NOT_AVAILABLE = -1


def _host(url: str) -> str:
    # A tracker URL comes from a torrent or a magnet: one urlsplit refuses ("[::1") is shown as it is.
    try:
        return urllib.parse.urlsplit(url).netloc
    except ValueError:
        return url


class View:
    """One torrent as torrent-get sees it; peer and tracker rows are built only if a field needs them."""

    def __init__(self, daemon: Daemon, torrent: Torrent, record: TorrentRecord, now: float) -> None:
        self.daemon = daemon
        self.t = torrent
        self.r = record
        self.now = now  # the session's clock, read once per request
        self._peers: tuple[PeerSnapshot, ...] | None = None

    @property
    def peer_list(self) -> tuple[PeerSnapshot, ...]:
        if self._peers is None:
            self._peers = peer_snapshots(self.t, self.now) if self.t.peers else ()
        return self._peers

    def rate_down(self) -> float:
        return self.t.down.rate(self.now)

    def rate_up(self) -> float:
        return self.t.up.rate(self.now)

    def total_size(self) -> int:
        return self.t.meta.total_length if self.t.meta is not None else 0

    def eta(self) -> int:
        picker, rate = self.t.picker, self.rate_down()
        left = int(picker.left_bytes()) if picker is not None else 0
        return int(left / rate) if rate > 0 and left > 0 else ETA_NOT_AVAILABLE

    def recheck_progress(self) -> float:
        meta = self.t.meta
        if self.t.state != "checking" or meta is None:
            return 0.0
        return self.t.disk.check_progress / max(1, meta.num_pieces)

    def status(self) -> int:
        t = self.t
        if t.state == "checking":  # a stopped torrent is checked too (torrent-verify), as Transmission does
            return STATUS_CHECK
        if t.info_hash in self.daemon.queue.waiting:
            return STATUS_SEED_WAIT if t.complete else STATUS_DOWNLOAD_WAIT
        if t.paused or t.state in ("error", "finished"):
            return STATUS_STOPPED
        if t.state == "seeding":
            return STATUS_SEED
        return STATUS_DOWNLOAD

    def file_rows(self) -> list[tuple[int, Any, int]]:
        """(file number as front ends count them, entry, verified bytes) of each real file: padding
        files are not shown, nor counted."""
        meta = self.t.meta
        if meta is None:
            return []
        storage, picker = self.t.storage, self.t.picker
        done = storage.layout.file_done_bytes(picker.have) \
            if storage is not None and picker is not None else [0] * len(meta.files)
        real = [(f, d) for f, d in zip(meta.files, done, strict=False) if not f.padding]
        return [(k, f, d) for k, (f, d) in enumerate(real)]

    # The engine's selection counts files the same way. Until it is bound (metadata and resume file read,
    # e.g. just after a restart) the choice the daemon recorded stands, else every file at normal.
    def wanted(self, index: int) -> bool:
        selection = self.t.selection
        if selection.bound and index < len(selection.wanted):
            return selection.wanted[index]
        return bool(self._recorded("wanted", index, 1))

    def priority(self, index: int) -> int:
        selection = self.t.selection
        if selection.bound and index < len(selection.priority):
            return selection.priority[index]
        return int(self._recorded("priorities", index, 0))

    def _recorded(self, key: str, index: int, default: int) -> Any:
        values = self.r.settings.get(key)
        return values[index] if isinstance(values, list) and index < len(values) else default

    # Transmission counts these in pieces (tr_cpSizeWhenDone): every wanted piece, had or not, plus
    # what is had of the others; a file's unwanted neighbour in a shared piece is downloaded with it.
    def left_until_done(self) -> int:
        picker = self.t.picker
        if picker is None:  # not checked yet: the wanted files, none of it verified
            return sum(f.length for i, f, _ in self.file_rows() if self.wanted(i))
        return int(picker.left_bytes())

    def have_valid(self) -> int:
        picker = self.t.picker
        return int(picker.have_bytes()) if picker is not None else 0

    def size_when_done(self) -> int:
        return self.have_valid() + self.left_until_done()

    def percent_done(self) -> float:
        size = self.size_when_done()
        return (size - self.left_until_done()) / size if size else 0.0

    def pieces(self) -> str:
        # The wire bitfield is Transmission's: piece 0 in the high bit of the first byte.
        picker = self.t.picker
        return base64.b64encode(picker.have.to_bytes()).decode() if picker is not None else ""

    def magnet(self) -> str:
        params = [("xt", f"urn:btih:{self.t.info_hash.hex()}"), ("dn", self.t.name)]
        params += [("tr", url) for tier in self.r.trackers for url in tier]
        return "magnet:?" + urllib.parse.urlencode(params, safe=":/")

    def peers(self) -> list[dict[str, Any]]:
        return [{
            "address": p.ip, "port": p.port, "clientName": p.client, "clientIsChoked": p.am_choking,
            "clientIsInterested": p.am_interested, "peerIsChoked": p.peer_choking,
            "peerIsInterested": p.peer_interested, "isIncoming": p.incoming, "isEncrypted": False,
            "isUTP": False, "isDownloadingFrom": p.down_rate_bps > 0, "isUploadingTo": p.up_rate_bps > 0,
            "progress": p.progress, "rateToClient": int(p.down_rate_bps), "rateToPeer": int(p.up_rate_bps),
            "flagStr": ("D" if p.down_rate_bps > 0 else "") + ("U" if p.up_rate_bps > 0 else "")
            + ("I" if p.incoming else ""),
        } for p in self.peer_list]

    def trackers(self) -> list[dict[str, Any]]:
        return [{"id": i, "announce": url, "scrape": "", "tier": tier}
                for i, (tier, url) in enumerate((n, u) for n, urls in enumerate(self.r.trackers) for u in urls)]

    def tracker_stats(self) -> list[dict[str, Any]]:
        now = time.time()
        return [{
            "id": i, "announce": tr.url, "host": _host(tr.url), "tier": tr.tier,
            "lastAnnounceResult": tr.message or tr.status, "lastAnnounceSucceeded": tr.status == "working",
            "hasAnnounced": tr.status in ("working", "error"), "lastAnnouncePeerCount": tr.peers_returned,
            "seederCount": -1 if tr.seeders is None else tr.seeders,
            "leecherCount": -1 if tr.leechers is None else tr.leechers,
            "nextAnnounceTime": int(now + tr.next_announce_s) if tr.next_announce_s is not None else 0,
            "isBackup": False, "announceState": 1 if tr.next_announce_s is not None else 0,
            "scrapeState": 0, "hasScraped": False, "downloadCount": -1,
        } for i, tr in enumerate(tracker_snapshots(self.t, self.now))]

    def uploaded_ever(self) -> int:
        return int(self.r.settings.get("uploadedEver", 0)) + self.t.uploaded

    def downloaded_ever(self) -> int:
        return int(self.r.settings.get("downloadedEver", 0)) + self.t.downloaded

    def ratio(self) -> float:
        picker = self.t.picker
        done = int(picker.wanted_bytes() - picker.left_bytes()) if picker is not None else 0
        down = self.downloaded_ever() or done
        return self.uploaded_ever() / down if down else (-1.0 if not self.uploaded_ever() else -2.0)


def _meta(attr: str, default: Any) -> Callable[[View], Any]:
    def get(v: View) -> Any:
        value = getattr(v.t.meta, attr, None) if v.t.meta is not None else None
        return default if value is None else value
    return get


FIELDS: dict[str, Callable[[View], Any]] = {
    "id": lambda v: v.r.id,
    "name": lambda v: v.t.name,
    "hashString": lambda v: v.t.info_hash.hex(),
    "status": View.status,
    "error": lambda v: ERROR_LOCAL if v.t.error else ERROR_NONE,
    "errorString": lambda v: v.t.error or "",
    "totalSize": View.total_size,
    "sizeWhenDone": View.size_when_done,
    "leftUntilDone": View.left_until_done,
    "desiredAvailable": View.left_until_done,
    "percentDone": View.percent_done,
    "haveValid": View.have_valid,
    "haveUnchecked": lambda v: 0,
    "recheckProgress": View.recheck_progress,
    "metadataPercentComplete": lambda v: 1.0 if v.t.meta is not None else 0.0,
    "rateDownload": lambda v: int(v.rate_down()),
    "rateUpload": lambda v: int(v.rate_up()),
    "eta": View.eta,
    "etaIdle": lambda v: ETA_NOT_AVAILABLE,
    "uploadRatio": View.ratio,
    "uploadedEver": View.uploaded_ever,
    "downloadedEver": View.downloaded_ever,
    "corruptEver": lambda v: 0,
    "isFinished": lambda v: v.t.finished,
    "isStalled": lambda v: False,
    "isPrivate": lambda v: bool(v.t.meta is not None and v.t.meta.private),
    "peersConnected": lambda v: len(v.t.peers),
    "peersGettingFromUs": lambda v: sum(1 for p in v.peer_list if not p.am_choking and p.peer_interested),
    "peersSendingToUs": lambda v: sum(1 for p in v.peer_list if not p.peer_choking and p.am_interested),
    "webseedsSendingToUs": lambda v: 0,
    "peersFrom": lambda v: {"fromIncoming": sum(1 for p in v.peer_list if p.incoming),
                            "fromTracker": sum(1 for p in v.peer_list if not p.incoming),
                            "fromCache": 0, "fromDht": 0, "fromLpd": 0, "fromLtep": 0, "fromPex": 0},
    "peer-limit": lambda v: v.t.swarm.max_peers,
    "maxConnectedPeers": lambda v: v.t.swarm.max_peers,
    "downloadDir": lambda v: v.t.save_dir,
    "addedDate": lambda v: v.r.added_at,
    "activityDate": lambda v: int(time.time()) if v.rate_down() or v.rate_up() else v.r.added_at,
    "startDate": lambda v: int(v.daemon.started_at) if not v.t.paused else 0,
    "doneDate": lambda v: 0,
    "editDate": lambda v: 0,
    "dateCreated": _meta("creation_date", 0),
    "comment": _meta("comment", ""),
    "creator": _meta("created_by", ""),
    "pieceCount": _meta("num_pieces", 0),
    "pieceSize": _meta("piece_length", 0),
    "pieces": View.pieces,
    "magnetLink": View.magnet,
    "queuePosition": lambda v: v.daemon.queue.position(v.t.info_hash),
    "bandwidthPriority": lambda v: 0,
    "honorsSessionLimits": lambda v: bool(v.r.settings.get("honorsSessionLimits", True)),
    # Until set, a torrent's own limits show the session's values, as Transmission seeds them from it.
    "downloadLimit": lambda v: int(v.r.settings.get("downloadLimit", v.daemon.settings.speed_limit_down_kbps)),
    "downloadLimited": lambda v: bool(v.r.settings.get("downloadLimited", False)),
    "uploadLimit": lambda v: int(v.r.settings.get("uploadLimit", v.daemon.settings.speed_limit_up_kbps)),
    "uploadLimited": lambda v: bool(v.r.settings.get("uploadLimited", False)),
    "seedRatioMode": lambda v: int(v.r.settings.get("seedRatioMode", 0)),
    "seedRatioLimit": lambda v: float(v.r.settings.get("seedRatioLimit", v.daemon.settings.seed_ratio_limit)),
    "seedIdleMode": lambda v: int(v.r.settings.get("seedIdleMode", 0)),
    "seedIdleLimit": lambda v: int(v.r.settings.get("seedIdleLimit", v.daemon.settings.idle_seeding_limit)),
    "secondsSeeding": lambda v: int(v.now - v.t.seeding_since) if v.t.seeding_since is not None else 0,
    "labels": lambda v: list(v.r.settings.get("labels", [])),
    "manualAnnounceTime": lambda v: -1,
    "files": lambda v: [{"name": "/".join(f.path), "length": f.length, "bytesCompleted": d}
                        for _, f, d in v.file_rows()],
    "fileStats": lambda v: [{"bytesCompleted": d, "wanted": v.wanted(i), "priority": v.priority(i)}
                            for i, _, d in v.file_rows()],
    "wanted": lambda v: [int(v.wanted(i)) for i, _, _ in v.file_rows()],
    "priorities": lambda v: [v.priority(i) for i, _, _ in v.file_rows()],
    "peers": View.peers,
    "trackers": View.trackers,
    "trackerStats": View.tracker_stats,
    "webseeds": lambda v: list(v.t.meta.web_seeds) if v.t.meta is not None else [],
}


def torrent_fields(daemon: Daemon, torrent: Torrent, record: TorrentRecord, names: list[str],
                   now: float | None = None) -> dict[str, Any]:
    """`names` should hold only known fields (see `known_fields`); an unknown one is skipped."""
    view = View(daemon, torrent, record, torrent.now if now is None else now)
    return {name: FIELDS[name](view) for name in names if name in FIELDS}


def known_fields(names: list[Any]) -> list[str]:
    """The requested fields torrentpy answers, each once, in the order asked."""
    return [n for n in dict.fromkeys(n for n in names if isinstance(n, str)) if n in FIELDS]
