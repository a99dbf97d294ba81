"""A torrent's files: opened and checked at start, and the resume state that records what passed.

Every call that touches the disk runs in the host's executor, never on the event loop."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Collection

from torrentpy._core import Bitfield
from torrentpy.engine import alerts
from torrentpy.engine.host import Host
from torrentpy.engine.selection import FileSelection
from torrentpy.errors import StorageError
from torrentpy.metainfo import Metainfo
from torrentpy.storage.checker import check_pieces_async
from torrentpy.storage.files import Storage
from torrentpy.storage.resume import (
    ResumeState,
    release_resume_reserve,
    reserve_path,
    reserve_resume_space,
    resume_state,
    save_resume,
)

log = logging.getLogger("torrentpy")


def _open_files(storage: Storage, skip: set[int], save_dir: str) -> tuple[ResumeState | None, bool]:
    """One trip to the thread pool for everything a start needs from the disk (thousands of torrents
    start at once): the files created, the resume file read, whether a reserve file is there."""
    storage.open_files(skip)
    meta = storage.meta
    return resume_state(meta, save_dir), os.path.exists(reserve_path(meta, save_dir))


class TorrentDisk:
    def __init__(self, host: Host, save_dir: str) -> None:
        self.host = host
        self.save_dir = save_dir
        self.meta: Metainfo | None = None
        self.storage: Storage | None = None
        self.ready = False  # the check (or resume file) has told us what is on disk
        self.check_progress = 0  # pieces checked so far, for the snapshot while checking
        self.saving = False
        self.last_save = 0.0
        # What the resume file on disk records, and the storage's write count when it was taken (or read
        # at start and found true, file stats included): the same record again would cost two fsyncs and
        # say nothing new, which at 10,000 torrents restored at once took minutes.
        self._saved: tuple[bytes, bytes | None, bool] | None = None
        self._saved_writes = 0
        self._reserved = False  # a reserve file may be there (.reserve): a seed gives it back

    async def open(self, meta: Metainfo, emit: Callable[[alerts.TorrentAlert], None], *,
                   skip: Collection[int] = (), on_resume: Callable[[ResumeState | None], None] | None = None,
                   ) -> Bitfield:
        """Open (or create) the files but those in `skip`, and find the verified pieces: from the resume
        file where it is still true (`on_resume` sees what it holds first), by hashing otherwise.
        Raises StorageError."""
        self.meta = meta
        self.storage = storage = Storage(meta, self.save_dir)
        saved, self._reserved = await asyncio.get_running_loop().run_in_executor(
            self.host.executor, _open_files, storage, set(skip), self.save_dir)
        if on_resume is not None:
            on_resume(saved)
        if saved is not None and not saved.changed_files and not saved.recheck:
            self._saved = (saved.saved_have.to_bytes(), saved.selection, bool(saved.sequential))
            self._saved_writes = storage.writes
        if saved is None:
            emit(alerts.Checking())
            have = await check_pieces_async(storage, meta, progress=self._on_progress)
        else:
            have = saved.have
            if saved.recheck:
                emit(alerts.Checking(len(saved.recheck)))
                rechecked = await check_pieces_async(storage, meta, pieces=saved.recheck, progress=self._on_progress)
                have = have | rechecked
        self.ready = True
        self.check_progress = meta.num_pieces
        return have

    def _on_progress(self, pieces_done: int) -> None:
        self.check_progress = pieces_done

    async def first_save(self, have: Bitfield, name: str, selection: FileSelection) -> None:
        """A downloading torrent's save at start and its reserve (`reserve`), in one trip to the pool."""
        assert self.meta is not None
        meta = self.meta
        self._reserved = True
        self.saving = True

        def work() -> None:
            self.save(have, name, selection)
            if self._reserved:  # else the torrent completed meanwhile and gave the reserve back (release)
                reserve_resume_space(meta, self.save_dir)

        try:
            await asyncio.get_running_loop().run_in_executor(self.host.executor, work)
        finally:
            self.saving = False

    def release(self) -> None:
        """A seed writes no more data: give the reserve back. In the thread pool: most seeds have none
        (known at start), and the unlink waits on the folder's lock while other torrents save there."""
        if self.meta is not None and self._reserved:
            self._reserved = False
            try:
                self.host.executor.submit(release_resume_reserve, self.meta, self.save_dir)
            except RuntimeError:  # the pool has shut down: the session is closing
                release_resume_reserve(self.meta, self.save_dir)

    def save(self, have: Bitfield, name: str, selection: FileSelection) -> bool:
        """A piece is claimed only after its write returned, so a killed process (kill -9) loses
        nothing it claimed: the data is in the page cache. We do not fdatasync before saving:
        forcing writeback of every dirty page cost more than the whole transfer on a fast link,
        and files written after the save have a newer mtime, so their pieces are re-hashed on the
        next start anyway (storage.resume.resume_state)."""
        if self.meta is None or self.storage is None or not self.ready:
            return False  # stopped mid-check: an empty bitfield would overwrite what the old file knew
        key = (have.to_bytes(), selection.record(), selection.sequential)
        writes = self.storage.writes  # before the files' stats are read: a write racing the save counts
        if not self._unchanged(key, writes):
            try:
                save_resume(self.meta, self.save_dir, have, selection=key[1], sequential=key[2])
                self._saved, self._saved_writes = key, writes
            except (StorageError, OSError) as exc:
                log.warning("could not save resume data for %s: %s", name, exc)
        self.last_save = self.host.now()
        return True

    def _unchanged(self, key: tuple[bytes, bytes | None, bool], writes: int) -> bool:
        """The record would be the same, with nothing written since (a seed writes nothing): the file
        on disk says it all."""
        return key == self._saved and writes == self._saved_writes

    async def save_async(self, have: Bitfield, name: str, selection: FileSelection) -> bool:
        # The resume file's fsync can take a while with many dirty pages, and thousands of torrents
        # start at once: keep it off the event loop. Nothing to write costs no trip to the pool.
        if self.ready and self.storage is not None \
                and self._unchanged((have.to_bytes(), selection.record(), selection.sequential), self.storage.writes):
            self.last_save = self.host.now()
            return True
        self.saving = True
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self.host.executor, self.save, have, name, selection)
        finally:
            self.saving = False

    def close(self) -> None:
        if self.storage is not None:
            self.storage.close()
