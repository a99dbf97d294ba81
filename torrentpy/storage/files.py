"""Disk I/O for one torrent: positional reads and writes through a bounded cache of file descriptors.

Every path is opened through storage/paths.py, which refuses symbolic links anywhere below the
download folder.

The methods block: they are thread-safe, and the engine runs them in its executor so the event loop
never waits on the disk.

Every OSError leaves here as a one-line StorageError naming the file relative to the download
folder ("cannot write t/a.bin: Read-only file system"), except a full disk: that is a DiskFullError
naming the folder and the room the torrent needs. Nothing already written is deleted.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from collections import OrderedDict
from collections.abc import Collection, Iterable, Iterator
from types import TracebackType

from torrentpy.errors import StorageError
from torrentpy.metainfo import Metainfo
from torrentpy.storage.folder import disk_full_error
from torrentpy.storage.layout import Layout, Segment
from torrentpy.storage.paths import DISK_FULL_ERRNOS, describe_os_error, open_file, stat_file, walk_to_parent

# What write methods accept; collections.abc.Buffer only exists from Python 3.12.
BufferLike = bytes | bytearray | memoryview
# What open() fails with when the process (or the system) has no descriptor left.
OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE)
# Write locks, shared by files whose indexes agree modulo this (see Storage._write_locks).
WRITE_LOCK_STRIPES = 16


def _pwrite_all(fd: int, view: memoryview, offset: int) -> None:
    while view:
        written = os.pwrite(fd, view, offset)
        if written <= 0:
            raise OSError(errno.EIO, "write made no progress")
        view = view[written:]
        offset += written


def _pread_into(fd: int, view: memoryview, offset: int) -> int:
    """Fill `view` from `offset`; returns the bytes read (less than asked only at end of file)."""
    got = 0
    while got < len(view):
        n = os.preadv(fd, [view[got:]], offset + got)
        if n == 0:
            break
        got += n
    return got


class _Handle:
    __slots__ = ("evicted", "fd", "users", "writable")

    def __init__(self, fd: int, writable: bool) -> None:
        self.fd = fd
        self.writable = writable
        self.users = 0
        self.evicted = False


class Storage:
    """Reads and writes the files of one torrent under `root`."""

    def __init__(
        self,
        meta: Metainfo,
        root: str | os.PathLike[str],
        *,
        max_open_files: int = 64,
    ) -> None:
        if max_open_files < 1:
            raise ValueError("max_open_files must be at least 1")
        self.meta = meta
        self.layout = Layout(meta)
        self.root = os.path.abspath(os.fspath(root))
        self.max_open_files = max_open_files
        self._lock = threading.Lock()
        # Writers of one file take turns here: ext4 serialises buffered writes to a file on its inode lock
        # anyway, and a writer waiting there spins while the holder copies (a tenth of a 1 GiB leech's
        # CPU with four pool threads). Waiting on this lock sleeps instead. Striped: bounded for any
        # number of files.
        self._write_locks = tuple(threading.Lock() for _ in range(WRITE_LOCK_STRIPES))
        self._handles: OrderedDict[int, _Handle] = OrderedDict()
        self._sized: set[int] = set()  # files already extended to their full length
        self._dirty: set[int] = set()  # files written since the last flush
        # Writes so far: a resume save with nothing written since the last one need not record new stats.
        self.writes = 0
        self._closed = False

    # --- lifecycle ----------------------------------------------------------

    def __enter__(self) -> Storage:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close every cached descriptor; operations still in flight close theirs when they finish."""
        with self._lock:
            self._closed = True
            for index in list(self._handles):
                self._retire(index, self._handles[index])

    @property
    def open_fd_count(self) -> int:
        with self._lock:
            return len(self._handles)

    def relpath(self, file_index: int) -> str:
        return "/".join(self.meta.files[file_index].path)

    def open_files(self, skip: Collection[int] = ()) -> None:
        """Create the folder tree and the zero-length files. Data files are created on first write.
        Files in `skip` (unwanted ones, by index in meta.files) get neither file nor folder."""
        try:
            os.makedirs(self.root, exist_ok=True)
        except OSError as exc:
            raise describe_os_error("create folder", self.root, exc) from None
        for i, f in enumerate(self.meta.files):
            if f.padding or i in skip:
                continue
            try:
                if f.length == 0:
                    os.close(open_file(self.root, f.path, write=True))
                else:
                    os.close(walk_to_parent(self.root, f.path, create=True))
            except OSError as exc:
                raise describe_os_error("create", self.relpath(i), exc) from None

    # --- descriptor cache -----------------------------------------------------

    def _retire(self, index: int, handle: _Handle) -> None:
        del self._handles[index]
        handle.evicted = True
        if handle.users == 0:
            os.close(handle.fd)

    def _acquire(self, index: int, *, write: bool) -> _Handle:
        with self._lock:
            if self._closed:
                raise StorageError("storage is closed")
            handle = self._handles.get(index)
            if handle is not None and (handle.writable or not write):
                self._handles.move_to_end(index)
                handle.users += 1
                return handle
            if handle is not None:  # read-only descriptor, now needed for writing
                self._retire(index, handle)
            if write:
                os.makedirs(self.root, exist_ok=True)
            fd = self._open_making_room(index, write)
            if write and index not in self._sized:
                try:
                    # Sparse: the size is set now, blocks are allocated as pieces arrive.
                    if os.fstat(fd).st_size < self.meta.files[index].length:
                        os.ftruncate(fd, self.meta.files[index].length)
                except BaseException:
                    os.close(fd)
                    raise
                self._sized.add(index)
            handle = _Handle(fd, write)
            handle.users = 1
            self._handles[index] = handle
            while len(self._handles) > self.max_open_files:
                oldest = next(iter(self._handles))
                self._retire(oldest, self._handles[oldest])
            return handle

    def _open_making_room(self, index: int, write: bool) -> int:
        """Open a file; when the process is out of descriptors (a low `ulimit -n`, many peers), close the
        cached ones nobody is using and try again, rather than fail the torrent."""
        while True:
            try:
                return open_file(self.root, self.meta.files[index].path, write=write)
            except OSError as exc:
                if exc.errno not in OUT_OF_DESCRIPTORS:
                    raise
                idle = next((i for i, h in self._handles.items() if h.users == 0), None)
                if idle is None:
                    raise
                self._retire(idle, self._handles[idle])

    def _release(self, handle: _Handle) -> None:
        with self._lock:
            handle.users -= 1
            if handle.evicted and handle.users == 0:
                os.close(handle.fd)

    # --- writing ----------------------------------------------------------------

    def write_block_sync(self, index: int, begin: int, data: BufferLike) -> None:
        """Write `data` at `begin` inside piece `index`. Padding ranges are skipped."""
        view = memoryview(data).cast("B")
        segments = self.layout.segments(index, begin, len(view))
        for seg in segments:
            if seg.padding:
                continue
            part = view[seg.piece_offset - begin : seg.piece_offset - begin + seg.length]
            try:
                handle = self._acquire(seg.file_index, write=True)
                try:
                    with self._write_locks[seg.file_index % WRITE_LOCK_STRIPES]:
                        _pwrite_all(handle.fd, part, seg.file_offset)
                finally:
                    self._release(handle)
            except OSError as exc:
                if exc.errno in DISK_FULL_ERRNOS:
                    raise disk_full_error(self.meta, self.root) from None
                raise describe_os_error("write", self.relpath(seg.file_index), exc) from None
            with self._lock:
                self._dirty.add(seg.file_index)
                self.writes += 1

    def write_piece_sync(self, index: int, data: BufferLike) -> None:
        size = memoryview(data).nbytes
        if size != self.meta.piece_size(index):
            raise ValueError(f"piece {index} is {self.meta.piece_size(index)} bytes, got {size}")
        self.write_block_sync(index, 0, data)

    def flush_sync(self) -> None:
        """fdatasync every file written since the last flush, so its data survives a power cut.

        For a caller that wants the data on disk before it records pieces in the resume file (the
        engine does not: see storage.resume). Only touched files are synced, so a flush after a few
        pieces costs a few fdatasync calls, not one per file.
        """
        with self._lock:
            dirty, self._dirty = self._dirty, set()
        pending = sorted(dirty)
        try:
            while pending:
                index = pending[0]
                try:
                    handle = self._acquire(index, write=False)
                    try:
                        os.fdatasync(handle.fd)
                    finally:
                        self._release(handle)
                except OSError as exc:
                    raise describe_os_error("sync", self.relpath(index), exc) from None
                pending.pop(0)
        finally:
            if pending:  # keep what was not synced for the next attempt
                with self._lock:
                    self._dirty.update(pending)

    # --- reading ----------------------------------------------------------------

    def _read_segments(
        self, segments: list[Segment], view: memoryview, begin: int, *, strict: bool, fail_fast: bool = False
    ) -> bool:
        """Fill `view`; True if every byte came from disk. Padding reads as zeros.

        strict: a missing/short/unreadable file raises StorageError. Otherwise the gap is left as
        zeros and False is returned — after the first gap at once if `fail_fast`.
        """
        complete = True
        for seg in segments:
            part = view[seg.piece_offset - begin : seg.piece_offset - begin + seg.length]
            if seg.padding:
                part[:] = bytes(seg.length)
                continue
            relpath = self.relpath(seg.file_index)
            got = 0
            try:
                handle = self._acquire(seg.file_index, write=False)
                try:
                    got = _pread_into(handle.fd, part, seg.file_offset)
                finally:
                    self._release(handle)
            except FileNotFoundError:
                if strict:
                    raise StorageError(f"cannot read {relpath}: the file is missing") from None
            except OSError as exc:
                if strict:
                    raise describe_os_error("read", relpath, exc) from None
            if got < seg.length:
                if strict:
                    raise StorageError(f"cannot read {relpath}: the file is shorter than the torrent says")
                part[got:] = bytes(seg.length - got)
                complete = False
                if fail_fast:
                    return False
        return complete

    def read_block_sync(self, index: int, begin: int, length: int) -> bytes:
        """Bytes of piece `index` at `begin`; raises StorageError if a file is missing or short."""
        buf = bytearray(length)
        self._read_segments(self.layout.segments(index, begin, length), memoryview(buf), begin, strict=True)
        return bytes(buf)

    def read_piece_sync(self, index: int, *, strict: bool = True) -> bytearray:
        """The whole piece. Not strict: missing or short parts read as zeros (the hash will fail)."""
        buf = bytearray(self.meta.piece_size(index))
        self._read_segments(self.layout.segments(index), memoryview(buf), 0, strict=strict)
        return buf

    def read_piece_into(self, index: int, out: memoryview) -> bool:
        """Read piece `index` into `out`; False (not an exception) as soon as a file is missing or short.

        This is what the checker calls: for checking, an absent file means the piece fails.
        """
        return self._read_segments(self.layout.segments(index), out, 0, strict=False, fail_fast=True)

    @contextlib.contextmanager
    def reading(self, file_indices: Iterable[int]) -> Iterator[tuple[dict[int, int], set[int]]]:
        """Descriptors (from the cache) for reading the given files, kept open until the block ends, and
        the files left unopened because the process is out of descriptors.

        For the checker, whose compiled core reads them with the GIL released. Files that cannot be
        opened (missing, no permission, padding, no descriptor left) are left out of the first.
        """
        handles: dict[int, _Handle] = {}
        no_descriptor: set[int] = set()
        try:
            for index in file_indices:
                if index in handles or self.meta.files[index].padding:
                    continue
                try:
                    handles[index] = self._acquire(index, write=False)
                except OSError as exc:
                    if exc.errno in OUT_OF_DESCRIPTORS:
                        no_descriptor.add(index)
            yield {index: handle.fd for index, handle in handles.items()}, no_descriptor
        finally:
            for handle in handles.values():
                self._release(handle)

    def stat_file(self, file_index: int) -> os.stat_result | None:
        """The file's stat on disk, or None if missing (padding files are never on disk)."""
        f = self.meta.files[file_index]
        if f.padding:
            return None
        return stat_file(self.root, f.path)
