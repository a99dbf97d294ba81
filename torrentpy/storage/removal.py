"""Deleting and moving a torrent's data, touching nothing but the torrent's own files.

Both walk the torrent's paths with the same no-symlink rule as every other file operation
(storage/paths.py): a link planted in the download folder can make a removal skip a file, never
delete or move something outside the folder.
"""

from __future__ import annotations

import contextlib
import os

from torrentpy.errors import StorageError
from torrentpy.metainfo import Metainfo
from torrentpy.storage.paths import describe_os_error, stat_file, walk_to_parent
from torrentpy.storage.resume import reserve_path, resume_path

__all__ = ["delete_data", "move_data"]


def _remove_empty_folders(meta: Metainfo, root: str) -> None:
    folders = {f.path[:i] for f in meta.files for i in range(1, len(f.path))}
    for parts in sorted(folders, key=len, reverse=True):  # deepest first
        try:
            dir_fd = walk_to_parent(root, parts, create=False)
        except OSError:
            continue
        try:
            os.rmdir(parts[-1], dir_fd=dir_fd)
        except OSError:
            pass  # not empty (a file of the user's own), or already gone
        finally:
            os.close(dir_fd)


def delete_data(meta: Metainfo, root: str) -> int:
    """Delete the torrent's files below `root`, its resume files, then the folders left empty.
    Returns how many files were deleted; a file that is missing is not an error."""
    deleted = 0
    for f in meta.files:
        if stat_file(root, f.path) is None:
            continue  # missing, or reached through a symlink: not ours to delete
        dir_fd = walk_to_parent(root, f.path, create=False)
        try:
            os.unlink(f.path[-1], dir_fd=dir_fd)
            deleted += 1
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise describe_os_error("delete", f.relpath, exc) from None
        finally:
            os.close(dir_fd)
    for path in (resume_path(meta, root), reserve_path(meta, root)):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    _remove_empty_folders(meta, root)
    return deleted


def move_data(meta: Metainfo, old_root: str, new_root: str) -> None:
    """Move the torrent's files (and resume file) from one download folder to another: a rename
    where both are on one file system, else a copy and delete."""
    import shutil

    os.makedirs(new_root, exist_ok=True)
    if os.path.realpath(old_root) == os.path.realpath(new_root):
        return
    for f in meta.files:
        if stat_file(old_root, f.path) is None:
            continue
        if stat_file(new_root, f.path) is not None:
            raise StorageError(f"cannot move {f.relpath}: {new_root} already holds a file of that name")
        source = os.path.join(old_root, *f.path)
        target = os.path.join(new_root, *f.path)
        try:
            os.close(walk_to_parent(new_root, f.path, create=True))  # the folders, made without symlinks
            shutil.move(source, target)
        except OSError as exc:
            raise describe_os_error("move", f.relpath, exc) from None
    old_resume, new_resume = resume_path(meta, old_root), resume_path(meta, new_root)
    if os.path.exists(old_resume):
        os.makedirs(os.path.dirname(new_resume), exist_ok=True)
        shutil.move(old_resume, new_resume)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(reserve_path(meta, old_root))
    _remove_empty_folders(meta, old_root)
