"""The download folder before a torrent starts, and the resume file's room on a full disk, on a real tmpfs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.storage.builders import build
from tests.tmpfs import Mount, remount
from torrentpy._core import Bitfield
from torrentpy.errors import StorageError
from torrentpy.storage.files import Storage
from torrentpy.storage.folder import prepare_folder, short_space_warning, space_for
from torrentpy.storage.resume import (
    load_resume,
    release_resume_reserve,
    reserve_path,
    reserve_resume_space,
    resume_path,
    save_resume,
)

KiB = 1024
MiB = 1024 * KiB


def test_missing_folders_are_created_and_the_probe_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b"
    prepare_folder(str(target))
    assert target.is_dir() and os.listdir(target) == []
    prepare_folder(str(target))  # and again, now that it exists


def test_a_file_where_the_folder_should_be(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(StorageError, match=rf"^{tmp_path}/f is a file, not a folder$"):
        prepare_folder(str(tmp_path / "f"))
    with pytest.raises(StorageError, match=rf"^cannot create {tmp_path}/f/sub: a part of its path is a file"):
        prepare_folder(str(tmp_path / "f" / "sub"))


def test_relative_folder_is_named_in_full(tmpfs: Mount, monkeypatch: pytest.MonkeyPatch) -> None:
    disk = tmpfs("ro", MiB, read_only=True)
    # Leave the mount before the test ends: an autouse fixture's monkeypatch is torn down after tmpfs
    # unmounts, and a working directory inside the mount makes it busy.
    with monkeypatch.context() as m:
        m.chdir(disk)
        with pytest.raises(StorageError, match=rf"^cannot write to {disk}: read-only file system$"):
            prepare_folder(".")


def test_read_only_mount_is_found_by_writing_not_by_mode_bits(tmpfs: Mount) -> None:
    # The mount point's mode says writable (and the tests run as root): only a real write can tell.
    disk = tmpfs("ro", MiB, read_only=True)
    assert os.stat(disk).st_mode & 0o200
    with pytest.raises(StorageError, match=r"^cannot write to .*/ro: read-only file system$"):
        prepare_folder(str(disk))
    with pytest.raises(StorageError, match=r"^cannot create .*/ro/new: read-only file system$"):
        prepare_folder(str(disk / "new"))


def test_space_counts_allocated_blocks_not_sparse_sizes(tmpfs: Mount) -> None:
    b = build([("a.bin", 512 * KiB), ("b.bin", 512 * KiB)], 64 * KiB)
    disk = tmpfs("disk", 768 * KiB)
    space = space_for([b.meta], str(disk))
    assert (space.needed, space.on_disk, space.free) == (MiB, 0, 768 * KiB)
    assert short_space_warning(space, str(disk)) == (
        f"{disk} has 768 KiB free, the download needs 1.00 MiB more (1.00 MiB in all): "
        "it will stop when the disk is full")
    with Storage(b.meta, disk) as st:
        st.write_piece_sync(0, b.piece(0))  # a.bin becomes a 512 KiB sparse file with 64 KiB in it
    space = space_for([b.meta], str(disk))
    assert (space.on_disk, space.free, space.missing) == (64 * KiB, 704 * KiB, 256 * KiB)
    remount(disk, size_bytes=2 * MiB)
    assert short_space_warning(space_for([b.meta], str(disk)), str(disk)) is None


def fill(disk: Path) -> None:
    """Write until the filesystem refuses: the state a download leaves a too-small disk in."""
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for chunk in (64 * KiB, 512):  # big writes, then the crumbs of the last block
            try:
                while True:
                    os.write(fd, bytes(chunk))
            except OSError:
                pass
    finally:
        os.close(fd)
    assert os.statvfs(disk).f_bavail == 0


def test_resume_is_saved_on_a_full_disk_through_the_reserve(tmpfs: Mount) -> None:
    b = build([("a.bin", 256 * KiB)], 16 * KiB)
    disk = tmpfs("disk", MiB)
    have = Bitfield(b.meta.num_pieces)
    save_resume(b.meta, disk, have)
    assert reserve_resume_space(b.meta, disk)
    with Storage(b.meta, disk) as st:
        for p in (3, 4):
            st.write_piece_sync(p, b.piece(p))
    fill(disk)
    have.set(3)
    # Without the reserve a fresh file could not be written: the save must have given it back.
    save_resume(b.meta, disk, have)
    assert not os.path.exists(reserve_path(b.meta, disk))
    assert load_resume(b.meta, disk) == have
    fill(disk)  # what the reserve gave back is taken too
    inode = os.stat(resume_path(b.meta, disk)).st_ino
    have.set(4)
    save_resume(b.meta, disk, have)
    assert load_resume(b.meta, disk) == have
    assert os.stat(resume_path(b.meta, disk)).st_ino == inode, "not rewritten in place"


def test_resume_save_on_a_full_disk_without_any_room_is_one_line(tmpfs: Mount) -> None:
    b = build([("a.bin", 256 * KiB)], 16 * KiB)
    disk = tmpfs("disk", MiB)
    fill(disk)  # no first save, no reserve: nothing to fall back on
    assert not reserve_resume_space(b.meta, disk)
    with pytest.raises(StorageError) as info:
        save_resume(b.meta, disk, Bitfield(b.meta.num_pieces))
    assert str(info.value) == f"cannot save resume state .torrentpy/{b.meta.info_hash_hex}.resume: " \
        "No space left on device"
    assert not release_resume_reserve(b.meta, disk)
