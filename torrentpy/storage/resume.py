"""Resume state: which pieces are known good, so a restart need not re-hash the whole download.

One small bencoded file per torrent, `<root>/.torrentpy/<infohash-hex>.resume`:

    {version: 1, info_hash: 20 bytes, num_pieces: int, bitfield: bytes,
     files: [[size, mtime_ns], ...] (one per file, [-1, 0] if absent), saved_at: unix seconds,
     selection: bytes, sequential: 0/1 (both optional: engine/selection.py's file choices),
     sha1: SHA-1 of the bencoding of all the other keys}

The checksum catches what parsing cannot: a flipped bit inside the bitfield would otherwise still
decode to a plausible, wrong set of pieces.

Crash-safety contract (the engine's side of it):

1. A piece's data is written (`Storage.write_piece_sync` has returned) *before* the piece is set in
   the bitfield passed to `save_resume`, so a kill -9 loses nothing claimed: the data is in the OS.
2. The engine does not fdatasync the data files before saving: forcing writeback cost more than the
   whole transfer on a fast link. So after a power cut the resume file (which is fsynced) can claim
   pieces whose data never reached the disk; files written after the save have a newer mtime and are
   re-hashed on load (below), the rest is what `torrentpy verify` is for. A caller that wants the
   stronger promise calls `Storage.flush_sync()` before saving.
3. `save_resume` writes a temporary file, fsyncs it, renames it over the old one and fsyncs the
   folder, so at any instant the file on disk is either the old state or the new one.

A full disk, most often full of this torrent's own data, must not stop the save that records what
was verified. The first save happens before any data is written, and a downloading torrent keeps a
few blocks aside (`<infohash-hex>.reserve`, `reserve_resume_space`) that a save on a full disk gives
back and writes into; after that, the resume file is rewritten in place (its size barely changes).

On load, the recorded size and mtime of every file holding a claimed piece must match the disk;
a file changed behind our back (or written after the last save, then crashed) makes the whole
resume state untrusted and the caller re-checks `resume_candidates`. `resume_state` is the finer
answer the engine should prefer: it keeps the pieces of unchanged files and names the few pieces
of changed files to re-hash.
"""

from __future__ import annotations

import errno
import hashlib
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from torrentpy import bencoding
from torrentpy._core import Bitfield
from torrentpy.errors import BencodeError, StorageError
from torrentpy.metainfo import Metainfo
from torrentpy.storage.checker import present_pieces
from torrentpy.storage.files import Storage
from torrentpy.storage.layout import Layout
from torrentpy.storage.paths import DISK_FULL_ERRNOS, describe_os_error, stat_file

RESUME_VERSION = 1
RESUME_DIR = ".torrentpy"
# A resume file holds a bitfield and two integers per file; anything much larger is not ours.
# Per file: a list of two ints (<= ~45 bytes); 4 KiB covers the header fields.
_RESUME_BYTES_PER_FILE = 50  # and one byte of the file selection
_RESUME_HEADER_BYTES = 4096


def resume_path(meta: Metainfo, root: str | os.PathLike[str]) -> str:
    return os.path.join(os.fspath(root), RESUME_DIR, f"{meta.info_hash_hex}.resume")


def _file_stats(meta: Metainfo, root: str) -> list[list[int]]:
    out = []
    for f in meta.files:
        st = None if f.padding else stat_file(root, f.path)
        out.append([st.st_size, st.st_mtime_ns] if st is not None else [-1, 0])
    return out


def _record_limit(meta: Metainfo) -> int:
    return _RESUME_HEADER_BYTES + meta.num_pieces // 8 + 1 + _RESUME_BYTES_PER_FILE * len(meta.files)


def reserve_path(meta: Metainfo, root: str | os.PathLike[str]) -> str:
    return os.path.join(os.fspath(root), RESUME_DIR, f"{meta.info_hash_hex}.reserve")


def reserve_resume_space(meta: Metainfo, root: str | os.PathLike[str]) -> bool:
    """Set disk blocks aside so the resume file can still be saved after the data has filled the disk.

    When a piece write finds the disk full, `save_resume` gives these blocks back and writes the
    resume file into them; without them, the save that records the verified pieces would fail for
    the same reason. Twice the largest resume file: the atomic save briefly holds the old file and
    the new one. False if there was no room even for this.
    """
    size = -(-2 * _record_limit(meta) // 4096) * 4096  # whole 4 KiB blocks
    path = reserve_path(meta, root)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if os.path.islink(os.path.dirname(path)):
            return False  # never write through a link (as save_resume)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError:
        return False
    try:
        # posix_fallocate really allocates (glibc writes zeros where the filesystem cannot);
        # a sparse ftruncate would reserve nothing.
        os.posix_fallocate(fd, 0, size)
        return True
    except OSError:
        release_resume_reserve(meta, root)
        return False
    finally:
        os.close(fd)


def release_resume_reserve(meta: Metainfo, root: str | os.PathLike[str]) -> bool:
    """Give the reserved blocks back; True if there were any."""
    try:
        os.unlink(reserve_path(meta, root))
    except OSError:
        return False
    return True


def _write_atomically(folder: str, final: str, data: bytes) -> None:
    # One temporary name per thread: a save in the thread pool and one on the loop (at exit) may overlap,
    # and two writers of one temporary file could rename a mix of both into place.
    tmp = f"{final}.{os.getpid()}-{threading.get_ident()}.tmp"
    try:
        os.makedirs(folder, exist_ok=True)
        if os.path.islink(folder):
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP))  # ELOOP: never write through a link
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)  # makes the rename itself durable
        finally:
            os.close(dir_fd)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _rewrite_in_place(final: str, data: bytes) -> None:
    """Overwrite the resume file's own blocks: a record is nearly the same size every time, so this
    needs no new space. Not atomic: a crash midway leaves a file whose checksum fails, which costs
    a re-check on the next start, never data."""
    fd = os.open(final, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.ftruncate(fd, len(data))
        os.fsync(fd)
    finally:
        os.close(fd)


def _save_on_full_disk(meta: Metainfo, root: str, final: str, data: bytes, full: OSError) -> None:
    """The disk is full, most likely of this torrent's own data: use the reserve's room for an
    atomic save; once that is gone (piece writes still in flight may take it first), rewrite the
    resume file in place. Raises `full` if neither works."""
    if release_resume_reserve(meta, root):
        try:
            _write_atomically(os.path.dirname(final), final, data)
            return
        except OSError as exc:
            if exc.errno not in DISK_FULL_ERRNOS:
                raise
    try:
        _rewrite_in_place(final, data)
    except OSError:
        raise full from None


def save_resume(meta: Metainfo, root: str | os.PathLike[str], have: Bitfield, *,
                selection: bytes | None = None, sequential: bool = False) -> None:
    """Record `have` atomically. See the module docstring for the ordering the caller must keep.

    A full disk does not stop it: see `_save_on_full_disk`."""
    if len(have) != meta.num_pieces:
        raise ValueError(f"bitfield has {len(have)} bits, torrent has {meta.num_pieces} pieces")
    root_s = os.fspath(root)
    record = {
        b"version": RESUME_VERSION,
        b"info_hash": meta.info_hash,
        b"num_pieces": meta.num_pieces,
        b"bitfield": have.to_bytes(),
        b"files": _file_stats(meta, root_s),
        b"saved_at": int(time.time()),
    }
    if selection is not None:
        record[b"selection"] = selection
        record[b"sequential"] = int(sequential)
    record[b"sha1"] = hashlib.sha1(bencoding.encode(record)).digest()
    data = bencoding.encode(record)
    folder = os.path.join(root_s, RESUME_DIR)
    final = resume_path(meta, root_s)
    try:
        try:
            _write_atomically(folder, final, data)
        except OSError as exc:
            if exc.errno not in DISK_FULL_ERRNOS:
                raise
            _save_on_full_disk(meta, root_s, final, data, exc)
    except OSError as exc:
        raise describe_os_error("save resume state", os.path.join(RESUME_DIR, os.path.basename(final)),
                                exc) from None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _read_record(meta: Metainfo, root: str) -> tuple[Bitfield, list[list[int]], dict[bytes, Any]] | None:
    """The saved bitfield and per-file [size, mtime_ns], if the file is intact and for this torrent."""
    limit = _record_limit(meta)
    try:
        fd = os.open(resume_path(meta, root), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError:
        return None
    if len(data) > limit:
        return None
    try:
        record, intact = bencoding.decode_checked_dict(data, max_bytes=limit, max_tokens=4 * len(meta.files) + 64,
                                                       max_depth=4)
    except BencodeError:
        return None
    if not intact:
        return None
    if (
        _int(record.get(b"version")) != RESUME_VERSION
        or record.get(b"info_hash") != meta.info_hash
        or _int(record.get(b"num_pieces")) != meta.num_pieces
    ):
        return None
    bits = record.get(b"bitfield")
    files = record.get(b"files")
    if not isinstance(bits, bytes) or len(bits) != (meta.num_pieces + 7) // 8:
        return None
    if not isinstance(files, list) or len(files) != len(meta.files):
        return None
    if not all(
        isinstance(e, list) and len(e) == 2 and _int(e[0]) is not None and _int(e[1]) is not None
        for e in files
    ):
        return None
    try:
        have = Bitfield.from_bytes(bits, meta.num_pieces)
    except (ValueError, TypeError):
        return None  # e.g. spare bits set past the last piece
    return have, files, record


@dataclass(frozen=True)
class ResumeState:
    """What a resume file still vouches for, file by file."""

    have: Bitfield  # saved pieces all of whose files are unchanged: trusted without hashing
    recheck: list[int]  # pieces touching a changed file that have data on disk: hash these
    changed_files: list[int]  # indices of files whose size or mtime differ from the record
    saved_have: Bitfield  # the bitfield as saved
    selection: bytes | None = None  # the file selection as saved (engine/selection.py), if any
    sequential: bool | None = None


def resume_state(meta: Metainfo, root: str | os.PathLike[str]) -> ResumeState | None:
    """Partial trust: None only if the resume file is absent, damaged or for another torrent.

    After a crash the files written since the last save have a new mtime; only their pieces need
    re-hashing, not the whole download. This stats every file of the torrent.
    """
    root_s = os.fspath(root)
    parsed = _read_record(meta, root_s)
    if parsed is None:
        return None
    saved, recorded, record = parsed
    layout = Layout(meta)
    changed = []
    suspect: set[int] = set()
    for index, f in enumerate(meta.files):
        if f.padding:
            continue
        st = stat_file(root_s, f.path)
        now = [st.st_size, st.st_mtime_ns] if st is not None else [-1, 0]
        if now != recorded[index]:
            changed.append(index)
            suspect.update(layout.piece_range_of_file(index))
    trusted = saved.copy()
    for p in suspect:
        if trusted[p]:
            trusted.clear(p)
    with Storage(meta, root_s) as storage:
        recheck = present_pieces(storage, sorted(suspect))
    selection = record.get(b"selection")
    sequential = _int(record.get(b"sequential"))
    return ResumeState(have=trusted, recheck=recheck, changed_files=changed, saved_have=saved,
                       selection=selection if isinstance(selection, bytes) else None,
                       sequential=bool(sequential) if sequential is not None else None)


def load_resume(meta: Metainfo, root: str | os.PathLike[str]) -> Bitfield | None:
    """The saved bitfield if every file holding a saved piece is unchanged on disk, else None
    (then re-check `resume_candidates`). See `resume_state` for the cheaper partial answer."""
    root_s = os.fspath(root)
    parsed = _read_record(meta, root_s)
    if parsed is None:
        return None
    have, recorded, _record = parsed
    layout = Layout(meta)
    claimed = {f for p in have for f in layout.files_of_piece(p)}
    for index in claimed:
        st = stat_file(root_s, meta.files[index].path)
        if st is None or [st.st_size, st.st_mtime_ns] != recorded[index]:
            return None
    return have


def resume_candidates(meta: Metainfo, root: str | os.PathLike[str]) -> list[int]:
    """Pieces worth hash-checking when there is no usable resume state: those whose files exist."""
    with Storage(meta, root) as storage:
        return present_pieces(storage)


def remove_resume(meta: Metainfo, root: str | os.PathLike[str]) -> None:
    try:
        os.unlink(resume_path(meta, root))
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise StorageError(f"cannot remove resume state: {exc.strerror}") from None
