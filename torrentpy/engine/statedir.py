"""The daemon's state folder: one file per torrent (what it is, where it goes, its settings).

Progress is not here: each torrent's resume file beside its data records the verified pieces. This
folder records which torrents the daemon has, so a restart brings every one of them back.

    <state-dir>/<infohash-hex>.state       the current record
    <state-dir>/<infohash-hex>.state.bak   the one before it

A record is bencoded: {version, info_hash, id, name, save_dir, paused, added_at, info (raw `info`
bytes, absent for a magnet still fetching metadata), trackers, peers, settings, sha1}. `sha1` covers
the rest, so a torn or bit-flipped file is caught rather than half believed.

Each write goes to a temporary name, is fsynced, the current file becomes the backup, the new one
takes its name and the folder is fsynced. At every instant the current file or the backup holds a
whole, good record; a power cut or a full disk leaves the old state, never a zero-byte file (the
complaint most often made of qBittorrent's fastresume and Transmission's settings files).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from torrentpy import bencoding
from torrentpy.errors import BencodeError, StorageError

log = logging.getLogger("torrentpy")

STATE_VERSION = 1
SUFFIX = ".state"
BACKUP_SUFFIX = ".state.bak"
# A record holds the raw info dictionary, which bencoding already bounds; this is that bound.
MAX_RECORD_BYTES = bencoding.MAX_INPUT_BYTES


@dataclass
class TorrentRecord:
    info_hash: bytes
    id: int
    name: str
    save_dir: str
    paused: bool = False
    added_at: int = 0  # unix seconds
    info: bytes | None = None  # raw `info` dictionary; None while a magnet fetches it
    trackers: tuple[tuple[str, ...], ...] = ()
    peers: tuple[tuple[str, int], ...] = ()  # a magnet's x.pe peers
    # Per-torrent settings set over RPC (speed limits, seed limits, files wanted …), kept as given.
    settings: dict[str, Any] = field(default_factory=dict)

    def encode(self) -> bytes:
        body: dict[str, Any] = {
            "version": STATE_VERSION, "info_hash": self.info_hash, "id": self.id, "name": self.name,
            "save_dir": self.save_dir, "paused": int(self.paused), "added_at": self.added_at,
            "trackers": [list(t) for t in self.trackers],
            "peers": [[h, p] for h, p in self.peers],
            "settings": bencoding.encode(_to_bencodable(self.settings)),
        }
        if self.info is not None:
            body["info"] = self.info
        body["sha1"] = hashlib.sha1(bencoding.encode(body)).digest()
        return bencoding.encode(body)

    @classmethod
    def decode(cls, data: bytes) -> TorrentRecord:
        if not data:
            raise StorageError("the file is empty")
        try:
            raw, intact = bencoding.decode_checked_dict(data, max_bytes=MAX_RECORD_BYTES)
        except BencodeError as exc:
            raise StorageError(f"not a state record ({exc})") from None
        if raw.get(b"version") != STATE_VERSION:
            raise StorageError("not a state record of this version")
        if not intact:
            raise StorageError("its checksum does not match (a torn or damaged write)")
        try:
            settings = bencoding.decode(raw.get(b"settings", b"de"))
            return cls(
                info_hash=raw[b"info_hash"], id=int(raw[b"id"]), name=raw[b"name"].decode(),
                save_dir=raw[b"save_dir"].decode(), paused=bool(raw[b"paused"]),
                added_at=int(raw[b"added_at"]), info=raw.get(b"info"),
                trackers=tuple(tuple(u.decode() for u in tier) for tier in raw.get(b"trackers", [])),
                peers=tuple((h.decode(), int(p)) for h, p in raw.get(b"peers", [])),
                settings=_from_bencoded(settings),
            )
        except (KeyError, TypeError, ValueError, AttributeError, BencodeError) as exc:
            raise StorageError(f"a field is missing or of the wrong type ({exc!r})") from None


def _to_bencodable(value: Any) -> Any:
    # Settings come from JSON: floats and booleans have no bencoding, so they travel as tagged text.
    if isinstance(value, bool):
        return f"b:{int(value)}"
    if isinstance(value, float):
        return f"f:{value!r}"
    if isinstance(value, str):
        return f"s:{value}"
    if isinstance(value, dict):
        return {str(k): _to_bencodable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_bencodable(v) for v in value]
    return value


def _from_bencoded(value: Any) -> Any:
    if isinstance(value, bytes):
        tag, text = value[:2], value[2:].decode()
        return {b"b:": lambda: text == "1", b"f:": lambda: float(text)}.get(tag, lambda: text)()
    if isinstance(value, dict):
        return {k.decode(): _from_bencoded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_bencoded(v) for v in value]
    return value


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: str, data: bytes) -> None:
    """Temporary name, fsync, the current file kept as `<path>.bak`, rename, fsync of the folder.
    Raises OSError (a full disk: ENOSPC) with the current file and its backup untouched."""
    folder = os.path.dirname(path) or "."
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        if os.path.exists(path):
            # The backup is only ever replaced by a file that was itself once the good current one.
            os.replace(path, path + ".bak")
        os.replace(tmp, path)
        _fsync_dir(folder)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class StateDir:
    def __init__(self, path: str) -> None:
        self.path = path
        os.makedirs(path, exist_ok=True)
        self.problems: list[str] = []  # what the last load_all had to say about damaged files
        # SHA-1 of what each current file holds, as written or read: saving the same bytes again would
        # cost three fsyncs for nothing, and the daemon saves every record on exit (10,000 of them).
        self._on_disk: dict[bytes, bytes] = {}

    def _name(self, info_hash: bytes, suffix: str) -> str:
        return os.path.join(self.path, info_hash.hex() + suffix)

    def save(self, record: TorrentRecord) -> None:
        """Write one record so that a crash at any point leaves a whole record behind (unless the
        current file already holds exactly this record)."""
        data = record.encode()
        digest = hashlib.sha1(data).digest()
        if self._on_disk.get(record.info_hash) == digest:
            return
        try:
            write_atomically(self._name(record.info_hash, SUFFIX), data)
            self._on_disk[record.info_hash] = digest
        except OSError as exc:
            self._on_disk.pop(record.info_hash, None)
            raise StorageError(f"cannot save the state of {record.name} in {self.path}: "
                               f"{exc.strerror or exc}") from None

    def remove(self, info_hash: bytes) -> None:
        self._on_disk.pop(info_hash, None)
        for suffix in (SUFFIX, BACKUP_SUFFIX):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._name(info_hash, suffix))
        with contextlib.suppress(OSError):
            _fsync_dir(self.path)

    def _read(self, path: str) -> tuple[TorrentRecord, bytes]:
        try:
            with open(path, "rb") as fh:
                data = fh.read(MAX_RECORD_BYTES + 1)
        except OSError as exc:
            raise StorageError(exc.strerror or str(exc)) from None
        if len(data) > MAX_RECORD_BYTES:
            raise StorageError("the file is too large to be a state record")
        return TorrentRecord.decode(data), data

    def load_all(self) -> list[TorrentRecord]:
        """Every torrent the folder knows, each from its current file or, when that is damaged, its
        backup. A damaged file is one line in `problems` (and the log) naming the torrent and why; one
        torrent that cannot come back never keeps the others away."""
        self.problems = []
        names = set(os.listdir(self.path))
        hashes = sorted({name.split(".", 1)[0] for name in names
                         if name.endswith((SUFFIX, BACKUP_SUFFIX)) and len(name.split(".", 1)[0]) == 40})
        records = []
        for hex_hash in hashes:
            record = None
            damage: list[str] = []
            for suffix in (SUFFIX, BACKUP_SUFFIX):
                if hex_hash + suffix not in names:
                    continue
                path = os.path.join(self.path, hex_hash + suffix)
                try:
                    record, data = self._read(path)
                except StorageError as exc:
                    damage.append(f"{path}: {exc}")
                    continue
                if record.info_hash.hex() != hex_hash:
                    damage.append(f"{path}: holds another torrent's record")
                    record = None
                    continue
                if suffix == SUFFIX:  # a backup in use is rewritten over the damaged current file
                    self._on_disk[record.info_hash] = hashlib.sha1(data).digest()
                break
            if record is not None:
                records.append(record)
                if damage:
                    self._problem(f"{'; '.join(damage)}; using the previous copy")
            else:
                self._problem(f"{hex_hash}: not restored, no readable state record ({'; '.join(damage)})")
        return records

    def _problem(self, message: str) -> None:
        self.problems.append(message)
        log.warning("state: %s", message)
