"""The download folder as a whole: can we write there, and is there room for the torrent.

Both questions are asked before any peer or tracker hears from us, so a read-only disk or a mistyped
`-o` is one line at start rather than a failure after the first piece. Room is only a warning: files
are sparse, and a partial download into a small disk is a legitimate thing to want.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass

from torrentpy.errors import DiskFullError, StorageError
from torrentpy.metainfo import Metainfo
from torrentpy.storage.paths import DISK_FULL_ERRNOS, stat_file
from torrentpy.units import format_size

_REASONS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on the disk",
    errno.EDQUOT: "disk quota exceeded",
    errno.ENOTDIR: "a part of its path is a file, not a folder",
}


def _reason(exc: OSError) -> str:
    if exc.errno in _REASONS:
        return _REASONS[exc.errno]
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]


def prepare_folder(folder: str) -> None:
    """Create `folder` if missing and prove it takes new files by creating and removing one.

    Permission bits alone cannot answer this (root ignores them; a read-only mount or an ACL does
    not show in them), so the probe really writes. Messages name the folder's absolute path: the
    default "." says nothing in an error.
    """
    folder = os.path.abspath(folder)
    try:
        st = os.stat(folder)
    except (FileNotFoundError, NotADirectoryError):
        st = None  # makedirs below says which
    except OSError as exc:
        raise StorageError(f"cannot use {folder}: {_reason(exc)}") from None
    if st is not None and not stat.S_ISDIR(st.st_mode):
        raise StorageError(f"{folder} is a file, not a folder" if stat.S_ISREG(st.st_mode)
                           else f"{folder} is not a folder")
    if st is None:
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create {folder}: {_reason(exc)}") from None
    probe = os.path.join(folder, f".torrentpy-probe-{os.getpid()}")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        # A full disk takes writes in principle: a complete download on it can still be seeded,
        # and the size check warns about room.
        if exc.errno not in DISK_FULL_ERRNOS:
            raise StorageError(f"cannot write to {folder}: {_reason(exc)}") from None


@dataclass(frozen=True)
class Space:
    """Bytes a torrent's files take when complete, how many of them are already allocated, and what is free."""

    needed: int
    on_disk: int
    free: int

    @property
    def missing(self) -> int:
        """What must still be freed for the whole torrent to fit (0 if it fits)."""
        return max(0, self.needed - self.on_disk - self.free)


def free_bytes(folder: str) -> int:
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize  # f_bavail: what an unprivileged writer may use


def allocated_bytes(meta: Metainfo, root: str) -> int:
    """Bytes of the torrent's files already backed by disk blocks: sparse holes do not count."""
    total = 0
    for f in meta.files:
        if f.padding or f.length == 0:
            continue
        st = stat_file(root, f.path)
        if st is not None:
            total += min(f.length, st.st_blocks * 512)  # st_blocks is in 512-byte units on Linux
    return total


def space_for(metas: Iterable[Metainfo], folder: str) -> Space:
    """The room the torrents need in `folder`, counting what they already have there."""
    needed = on_disk = 0
    for meta in metas:
        needed += meta.payload_length
        on_disk += allocated_bytes(meta, folder)
    return Space(needed=needed, on_disk=on_disk, free=free_bytes(folder))


def short_space_warning(space: Space, folder: str) -> str | None:
    """One line if the torrent cannot fit in `folder`, else None."""
    if not space.missing:
        return None
    return (f"{os.path.abspath(folder)} has {format_size(space.free)} free, the download needs "
            f"{format_size(space.needed - space.on_disk)} more ({format_size(space.needed)} in all): "
            "it will stop when the disk is full")


def disk_full_error(meta: Metainfo, root: str) -> DiskFullError:
    """What to say when a write found the disk full: the numbers a user needs to make room."""
    try:
        space = space_for([meta], root)
    except OSError:
        return DiskFullError(f"disk full writing to {root}: the torrent needs {format_size(meta.payload_length)}")
    # The filesystem can say "full" with room to spare (a quota, reserved blocks): then there is no
    # number to give, only the advice.
    advice = (f"free {format_size(space.missing)} more and run again" if space.missing
              else "run again when there is room")
    return DiskFullError(
        f"disk full writing to {root}: the torrent needs {format_size(space.needed)}, "
        f"{format_size(space.free)} free ({format_size(space.on_disk)} of it already written; "
        f"{advice}: verified pieces are kept)"
    )
