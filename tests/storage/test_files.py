from __future__ import annotations

import errno
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import torrentpy.storage.files as files_module
from tests.storage.builders import build, open_fds
from tests.tmpfs import Mount
from torrentpy.errors import DiskFullError, StorageError
from torrentpy.storage.files import Storage

LAYOUT = [("a.bin", 5000), ("empty", 0), ("sub/b.bin", 70), ("sub/deeper/c.bin", 33000), ("z", 1)]


def test_write_then_read_back_in_random_order(root: Path) -> None:
    b = build(LAYOUT, 4096)
    order = list(range(b.meta.num_pieces))
    random.Random(3).shuffle(order)
    with Storage(b.meta, root) as st:
        st.open_files()
        for p in order:
            st.write_piece_sync(p, b.piece(p))
        for p in range(b.meta.num_pieces):
            assert st.read_piece_sync(p) == b.piece(p)
        assert st.read_block_sync(1, 900, 100) == b.payload[4096 + 900 : 4096 + 1000]
    for i, f in enumerate(b.meta.files):
        assert root.joinpath(*f.path).read_bytes() == b.contents[i]


def test_writers_of_one_file_take_turns_and_of_two_files_do_not(root: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # ext4 serialises writes to a file on its inode lock and spins a waiting writer; ours sleep instead.
    b = build([("a.bin", 8 * 4096), ("b.bin", 8 * 4096)], 4096)
    inside: dict[int, int] = {}
    overlaps: list[tuple[int, int]] = []
    files_at_once: list[int] = []
    real = files_module._pwrite_all
    guard = threading.Lock()

    def slow_pwrite(fd: int, view: memoryview, offset: int) -> None:
        with guard:
            inside[fd] = inside.get(fd, 0) + 1
            overlaps.append((fd, inside[fd]))
            files_at_once.append(sum(1 for n in inside.values() if n))
        time.sleep(0.01)
        real(fd, view, offset)
        with guard:
            inside[fd] -= 1

    monkeypatch.setattr(files_module, "_pwrite_all", slow_pwrite)
    with Storage(b.meta, root) as st:
        st.open_files()
        threads = [threading.Thread(target=st.write_piece_sync, args=(p, b.piece(p))) for p in range(16)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        for p in range(16):
            assert st.read_piece_sync(p) == b.piece(p)
    assert max(n for _fd, n in overlaps) == 1  # never two writers in one file
    assert max(files_at_once) == 2  # the two files were written at the same time


def test_write_block_pieces_together(root: Path) -> None:
    b = build(LAYOUT, 4096)
    with Storage(b.meta, root) as st:
        for begin in range(0, 4096, 1000):
            st.write_block_sync(0, begin, b.piece(0)[begin : begin + 1000])
        assert st.read_piece_sync(0) == b.piece(0)


def test_open_files_makes_folders_and_empty_files_only(root: Path) -> None:
    b = build(LAYOUT, 4096)
    with Storage(b.meta, root) as st:
        st.open_files()
    assert (root / "t" / "empty").read_bytes() == b""
    assert (root / "t" / "sub" / "deeper").is_dir()
    assert not (root / "t" / "a.bin").exists()  # data files appear on first write
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == [
        "t", "t/empty", "t/sub", "t/sub/deeper",
    ]


def test_files_are_created_sparse_at_full_length(root: Path) -> None:
    b = build([("big", 64 * 1024 * 1024 + 5), ("small", 10)], 1024 * 1024, seed=2)
    with Storage(b.meta, root) as st:
        st.write_piece_sync(3, b.piece(3))
    big = root / "t" / "big"
    assert big.stat().st_size == 64 * 1024 * 1024 + 5
    assert big.stat().st_blocks * 512 < 4 * 1024 * 1024  # one piece, not 64 MiB, is allocated
    assert not (root / "t" / "small").exists()
    with big.open("rb") as fh:
        fh.seek(3 * 1024 * 1024)
        assert fh.read(1024 * 1024) == b.piece(3)


def test_padding_files_are_never_created_nor_written(root: Path) -> None:
    b = build([("a", 5000), (".pad/3192", 3192, "p"), ("b", 9000)], 8192)
    with Storage(b.meta, root) as st:
        st.open_files()
        for p in range(b.meta.num_pieces):
            st.write_piece_sync(p, b.piece(p))
        assert st.read_piece_sync(0) == b.piece(0)  # the padding reads as the zeros it hashes as
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == ["t", "t/a", "t/b"]
    assert (root / "t" / "a").read_bytes() == b.contents[0]


def test_single_file_torrent_lives_directly_in_root(root: Path) -> None:
    b = build([("", 10000)], 4096, name="movie.mkv")
    with Storage(b.meta, root) as st:
        for p in range(b.meta.num_pieces):
            st.write_piece_sync(p, b.piece(p))
    assert (root / "movie.mkv").read_bytes() == b.payload


def test_descriptor_cache_is_bounded(root: Path) -> None:
    b = build([(f"f{i}", 3000) for i in range(12)], 4096)
    before = open_fds()
    st = Storage(b.meta, root, max_open_files=3)
    for p in range(b.meta.num_pieces):
        st.write_piece_sync(p, b.piece(p))
        assert st.open_fd_count <= 3
        assert open_fds() - before <= 3
    for p in range(b.meta.num_pieces):
        assert st.read_piece_sync(p) == b.piece(p)
    st.flush_sync()  # reopens files evicted since they were written
    st.close()
    assert open_fds() == before
    with pytest.raises(StorageError, match="closed"):
        st.read_piece_sync(0)


def test_write_of_wrong_size_is_a_programming_error(root: Path) -> None:
    b = build(LAYOUT, 4096)
    with Storage(b.meta, root) as st, pytest.raises(ValueError):
        st.write_piece_sync(0, b"short")


def test_missing_file_strict_and_lenient_reads(root: Path) -> None:
    b = build([("a", 3000), ("b", 3000)], 4096)
    b.write_files(root, skip=(1,))
    with Storage(b.meta, root) as st:
        with pytest.raises(StorageError, match=r"^cannot read t/b: the file is missing$"):
            st.read_piece_sync(0)
        lenient = st.read_piece_sync(0, strict=False)
        assert lenient == b.contents[0] + bytes(1096)
        assert not st.read_piece_into(0, memoryview(bytearray(4096)))
        assert st.read_piece_into(1, memoryview(bytearray(4096))[:1904]) is False
    assert not (root / "t" / "b").exists()  # reading never creates files


def test_short_file_is_reported(root: Path) -> None:
    b = build([("a", 3000), ("b", 3000)], 4096)
    b.write_files(root)
    (root / "t" / "b").write_bytes(b.contents[1][:10])
    with Storage(b.meta, root) as st, pytest.raises(StorageError, match="shorter than the torrent says"):
        st.read_block_sync(1, 0, 100)


# --- errors ------------------------------------------------------------------


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and "Traceback" not in text
    return text


def test_disk_full_is_one_line_and_keeps_what_was_written(tmp_path: Path, tmpfs: Mount) -> None:
    b = build([("a.bin", 3 * 1024 * 1024)], 256 * 1024, seed=5)
    mnt = tmpfs("small", 1024 * 1024)
    with Storage(b.meta, mnt) as st:
        st.write_piece_sync(0, b.piece(0))
        with pytest.raises(DiskFullError) as info:
            for p in range(1, b.meta.num_pieces):
                st.write_piece_sync(p, b.piece(p))
        # The folder (it is the disk that is full) and the sizes that say how much room to make.
        text = _one_line(info.value)
        assert text.startswith(f"disk full writing to {mnt}: the torrent needs 3.00 MiB, 0 B free ("), text
        assert "1.00 MiB of it already written; free 2.00 MiB more" in text, text
        assert st.read_piece_sync(0) == b.piece(0)
    assert (mnt / "t" / "a.bin").exists()


def test_read_only_file_system(tmpfs: Mount) -> None:
    b = build([("a.bin", 1000)], 1024)
    mnt = tmpfs("ro", 1024 * 1024, read_only=True)
    with Storage(b.meta, mnt) as st, pytest.raises(StorageError) as info:
        st.write_piece_sync(0, b.piece(0))
    assert _one_line(info.value) == "cannot write t/a.bin: Read-only file system"


def test_permission_denied(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    b = build([("a.bin", 1000)], 1024)
    # root bypasses file modes, so make open() answer as it would for an ordinary user.
    real_open = os.open

    def open_(path: str, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if path == "a.bin":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", open_)
    with Storage(b.meta, root) as st, pytest.raises(StorageError) as info:
        st.write_piece_sync(0, b.piece(0))
    assert _one_line(info.value) == "cannot write t/a.bin: Permission denied"


def test_permission_denied_for_a_real_unprivileged_user(tmp_path: Path) -> None:
    """The same, with a real EACCES: a child drops to 'nobody' before writing into a 0o755 root-owned dir."""
    b = build([("a.bin", 1000)], 1024)
    target = tmp_path / "locked"
    target.mkdir(mode=0o755)
    torrent = tmp_path / "x.torrent"
    torrent.write_bytes(b.torrent)
    os.chmod(tmp_path, 0o755)
    script = (
        "import sys, os\n"
        "from torrentpy.metainfo import parse_torrent\n"
        "from torrentpy.storage.files import Storage\n"
        "from torrentpy.errors import StorageError\n"
        "meta = parse_torrent(open(sys.argv[1], 'rb').read())\n"
        "os.setgid(65534); os.setuid(65534)\n"
        "try:\n"
        "    Storage(meta, sys.argv[2]).write_piece_sync(0, bytes(1000))\n"
        "except StorageError as e:\n"
        "    print(e)\n"
    )
    if os.geteuid() != 0:  # already unprivileged: the directory's mode alone must refuse us
        target.chmod(0o555)
        script = script.replace("os.setgid(65534); os.setuid(65534)\n", "")
    out = subprocess.run([sys.executable, "-c", script, str(torrent), str(target)],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "cannot write t/a.bin: Permission denied", out.stderr


def test_symlinked_folder_inside_root_is_not_followed(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "t").symlink_to(outside, target_is_directory=True)
    b = build([("a.bin", 1000)], 1024)
    with Storage(b.meta, root) as st:
        with pytest.raises(StorageError) as info:
            st.write_piece_sync(0, b.piece(0))
        assert _one_line(info.value).startswith("cannot write t/a.bin: ")
        with pytest.raises(StorageError):
            st.open_files()
        assert not st.read_piece_into(0, memoryview(bytearray(1000)))
    assert list(outside.iterdir()) == []


def test_symlinked_file_inside_root_is_not_followed(root: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"s" * 1000)
    (root / "t").mkdir()
    (root / "t" / "a.bin").symlink_to(secret)
    b = build([("a.bin", 1000)], 1024)
    with Storage(b.meta, root) as st:
        with pytest.raises(StorageError, match="symbolic link"):
            st.write_piece_sync(0, b.piece(0))
        with pytest.raises(StorageError, match="symbolic link"):
            st.read_block_sync(0, 0, 10)  # would leak the file to peers
        assert st.stat_file(0) is None
    assert secret.read_bytes() == b"s" * 1000


def test_fifo_in_place_of_a_file_does_not_hang(root: Path) -> None:
    (root / "t").mkdir()
    os.mkfifo(root / "t" / "a.bin")
    b = build([("a.bin", 1000)], 1024)
    with Storage(b.meta, root) as st:
        with pytest.raises(StorageError, match=r"^cannot read t/a\.bin: not a regular file$"):
            st.read_block_sync(0, 0, 10)
        with pytest.raises(StorageError, match=r"^cannot write t/a\.bin: not a regular file$"):
            st.write_piece_sync(0, b.piece(0))


def test_file_where_a_folder_should_be(root: Path) -> None:
    (root / "t").mkdir()
    (root / "t" / "sub").write_bytes(b"x")
    b = build([("sub/a.bin", 1000)], 1024)
    with Storage(b.meta, root) as st, pytest.raises(StorageError) as info:
        st.write_piece_sync(0, b.piece(0))
    assert _one_line(info.value).startswith("cannot write t/sub/a.bin: ")


def test_out_of_descriptors_closes_idle_cached_files_instead_of_failing(root: Path) -> None:
    # `ulimit -n` low and the cache's own bound high: the process runs out of descriptors first. The
    # storage closes the files nobody is using and carries on rather than failing the torrent.
    import resource

    b = build([(f"f{i}", 3000) for i in range(12)], 4096)
    st = Storage(b.meta, root, max_open_files=64)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # Room for a few descriptors beyond those open now: the walk to a file opens its folders too.
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_fds() + 6, hard))
    try:
        for p in range(b.meta.num_pieces):
            st.write_piece_sync(p, b.piece(p))
        cached = st.open_fd_count
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert cached < 12
    for p in range(b.meta.num_pieces):
        assert st.read_piece_sync(p) == b.piece(p)
    st.close()
