"""A torrent's files: opened and checked at start, and the resume state that records what passed.

Every call that touches the disk runs in the host's executor, never on the event loop."""

from __future__ import annotations

import asyncio
import logging
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
    reserve_resume_space,
    resume_state,
    save_resume,
)

log = logging.getLogger("torrentpy")


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
        self._saved: tuple[bytes, bytes | None, bool] | None = None  # what the last save recorded

    async def open(self, meta: Metainfo, emit: Callable[[alerts.TorrentAlert], None], *,
                   skip: Collection[int] = (), on_resume: Callable[[ResumeState | None], None] | None = None,
                   ) -> Bitfield:
        """Open (or create) the files but those in `skip`, and find the verified pieces: from the resume
        file where it is still true (`on_resume` sees what it holds first), by hashing otherwise.
        Raises StorageError."""
        self.meta = meta
        self.storage = storage = Storage(meta, self.save_dir)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.host.executor, storage.open_files, set(skip))
        saved = await loop.run_in_executor(self.host.executor, resume_state, meta, self.save_dir)
        if on_resume is not None:
            on_resume(saved)
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

    async def reserve(self) -> None:
        """Set room aside for the resume saves to come, before any data can fill the disk."""
        assert self.meta is not None
        await asyncio.get_running_loop().run_in_executor(
            self.host.executor, reserve_resume_space, self.meta, self.save_dir)

    def release(self) -> None:
        if self.meta is not None:
            release_resume_reserve(self.meta, self.save_dir)  # a seed writes no more data

    def save(self, have: Bitfield, name: str, selection: FileSelection) -> bool:
        """A piece is claimed only after its write returned, so a killed process (kill -9) loses
        nothing it claimed: the data is in the page cache. We do not fdatasync before saving:
        forcing writeback of every dirty page cost more than the whole transfer on a fast link,
        and files written after the save have a newer mtime, so their pieces are re-hashed on the
        next start anyway (storage.resume.resume_state)."""
        if self.meta is None or self.storage is None or not self.ready:
            return False  # stopped mid-check: an empty bitfield would overwrite what the old file knew
        key = (have.to_bytes(), selection.record(), selection.sequential)
        # A complete torrent writes no data: the same record again would only cost two fsyncs on the
        # event loop, twice per torrent at start-up (checked, then complete), minutes for 10,000 seeds.
        if key != self._saved or have.count() != len(have):
            try:
                save_resume(self.meta, self.save_dir, have, selection=key[1], sequential=key[2])
                self._saved = key
            except (StorageError, OSError) as exc:
                log.warning("could not save resume data for %s: %s", name, exc)
        self.last_save = self.host.now()
        return True

    async def save_async(self, have: Bitfield, name: str, selection: FileSelection) -> None:
        # The resume file's fsync can take a while with many dirty pages: keep it off the event loop.
        self.saving = True
        try:
            await asyncio.get_running_loop().run_in_executor(self.host.executor, self.save, have, name, selection)
        finally:
            self.saving = False

    def close(self) -> None:
        if self.storage is not None:
            self.storage.close()
