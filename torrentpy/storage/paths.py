"""Safe paths below a download folder, and the one-line errors the storage layer raises.

Every path is opened by walking from the download folder one component at a time with
`O_NOFOLLOW` (`openat`-style, via `dir_fd`), so a symbolic link planted anywhere below the folder —
even one pointing back inside it — is refused rather than followed. That is stricter than a realpath
check and has no check-then-open race. The folder checks (storage/folder.py) and the file I/O
(storage/files.py) both build on this module, which imports neither.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence

from torrentpy.errors import StorageError

__all__ = ["DISK_FULL_ERRNOS", "describe_os_error", "open_file", "stat_file", "walk_to_parent"]

# Errors that mean "no room", whichever limit was hit (the filesystem's or the user's quota).
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC
# O_NONBLOCK: a FIFO planted where a file should be would block open() forever; on regular files
# it has no effect. Non-regular files are refused right after the open.
_FILE_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC


def describe_os_error(op: str, relpath: str, exc: OSError) -> StorageError:
    """One line a user can act on, e.g. "cannot write t/a.bin: No space left on device"."""
    if exc.errno == errno.ELOOP:
        reason = "a symbolic link in its path is not followed"
    elif exc.errno == errno.ENOTDIR:
        reason = "a part of its path is not a folder (or is a symbolic link, which is not followed)"
    else:
        reason = exc.strerror or os.strerror(exc.errno or 0) or str(exc)
    return StorageError(f"cannot {op} {relpath}: {reason}")


def walk_to_parent(root: str, parts: Sequence[str], *, create: bool) -> int:
    """An fd of the folder that holds `parts[-1]`, reached without following any symlink."""
    dir_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
    try:
        for comp in parts[:-1]:
            if create:
                try:
                    os.mkdir(comp, 0o777, dir_fd=dir_fd)
                except FileExistsError:
                    pass
            next_fd = os.open(comp, _DIR_FLAGS, dir_fd=dir_fd)
            os.close(dir_fd)
            dir_fd = next_fd
    except BaseException:
        os.close(dir_fd)
        raise
    return dir_fd


def open_file(root: str, parts: Sequence[str], *, write: bool) -> int:
    """Open a file below `root` safely; with `write` create it (and its folders) if missing."""
    dir_fd = walk_to_parent(root, parts, create=write)
    try:
        flags = _FILE_FLAGS | (os.O_RDWR | os.O_CREAT if write else os.O_RDONLY)
        fd = os.open(parts[-1], flags, 0o666, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EISDIR, "not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd


def stat_file(root: str, parts: Sequence[str]) -> os.stat_result | None:
    """The file's stat, or None if it is missing, not a regular file or reached through a symlink."""
    try:
        dir_fd = walk_to_parent(root, parts, create=False)
    except OSError:
        return None
    try:
        st = os.stat(parts[-1], dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return None
    finally:
        os.close(dir_fd)
    return st if stat.S_ISREG(st.st_mode) else None
