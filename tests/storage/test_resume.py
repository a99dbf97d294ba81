from __future__ import annotations

import errno
import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.storage.builders import Built, build
from torrentpy._core import Bitfield
from torrentpy.bencoding import decode, encode
from torrentpy.errors import StorageError
from torrentpy.storage import resume
from torrentpy.storage.checker import check_pieces
from torrentpy.storage.files import Storage
from torrentpy.storage.resume import load_resume, resume_candidates, resume_path, save_resume

LAYOUT = [("a.bin", 50000), ("empty", 0), ("b.bin", 30000), ("c.bin", 20000)]


def downloaded(root: Path, pieces: list[int]) -> Built:
    b = build(LAYOUT, 16384)
    with Storage(b.meta, root) as st:
        st.open_files()
        for p in pieces:
            st.write_piece_sync(p, b.piece(p))
        st.flush_sync()
    return b


def with_checksum(record: dict[bytes, object]) -> bytes:
    """Re-seal an edited record, so the test reaches the check behind the checksum."""
    body = {k: v for k, v in record.items() if k != b"sha1"}
    return encode({**body, b"sha1": hashlib.sha1(encode(body)).digest()})


def test_round_trip(root: Path) -> None:
    b = downloaded(root, [0, 1, 5])
    have = Bitfield.from_string("1100010")
    save_resume(b.meta, root, have)
    loaded = load_resume(b.meta, root)
    assert loaded is not None and loaded.to_bytes() == have.to_bytes()
    assert Path(resume_path(b.meta, root)) == root / ".torrentpy" / f"{b.meta.info_hash_hex}.resume"
    assert [p.name for p in (root / ".torrentpy").iterdir()] == [f"{b.meta.info_hash_hex}.resume"]


def test_no_file_means_none(root: Path) -> None:
    assert load_resume(build(LAYOUT, 16384).meta, root) is None


def test_stale_mtime_means_none(root: Path) -> None:
    b = downloaded(root, [0, 1, 5])
    save_resume(b.meta, root, Bitfield.from_string("1100010"))
    st = os.stat(root / "t" / "a.bin")
    os.utime(root / "t" / "a.bin", ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert load_resume(b.meta, root) is None


def test_changed_size_means_none(root: Path) -> None:
    b = downloaded(root, [0, 1, 5])
    save_resume(b.meta, root, Bitfield.from_string("1100010"))
    path = root / "t" / "c.bin"
    st = os.stat(path)
    os.truncate(path, 100)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime, so only the size gives it away
    assert load_resume(b.meta, root) is None


def test_deleted_file_means_none(root: Path) -> None:
    b = downloaded(root, [0, 1, 5])
    save_resume(b.meta, root, Bitfield.from_string("1100010"))
    (root / "t" / "c.bin").unlink()
    assert load_resume(b.meta, root) is None


def test_files_without_claimed_pieces_may_change(root: Path) -> None:
    b = downloaded(root, [0, 1])  # all of piece 0-1 lie in a.bin
    save_resume(b.meta, root, Bitfield.from_string("1100000"))
    with Storage(b.meta, root) as st:  # a later piece of c.bin arrives, without a new save
        st.write_piece_sync(5, b.piece(5))
    loaded = load_resume(b.meta, root)
    assert loaded is not None and list(loaded) == [0, 1]


def test_corrupted_file_means_none(root: Path) -> None:
    b = downloaded(root, [0])
    save_resume(b.meta, root, Bitfield.from_string("1000000"))
    path = Path(resume_path(b.meta, root))
    data = bytearray(path.read_bytes())
    rng = random.Random(5)
    for at in range(len(data)):
        mangled = bytearray(data)
        mangled[at] ^= 1 << rng.randrange(8)
        path.write_bytes(mangled)
        assert load_resume(b.meta, root) is None, at  # the checksum catches every flipped bit
    path.write_bytes(b"\x00garbage")
    assert load_resume(b.meta, root) is None
    path.write_bytes(b"d" * 100000)  # deeper than any resume file
    assert load_resume(b.meta, root) is None


def test_truncated_file_means_none(root: Path) -> None:
    b = downloaded(root, [0])
    save_resume(b.meta, root, Bitfield.from_string("1000000"))
    path = Path(resume_path(b.meta, root))
    data = path.read_bytes()
    for cut in range(len(data)):
        path.write_bytes(data[:cut])
        assert load_resume(b.meta, root) is None


def test_other_torrent_or_wrong_shape_means_none(root: Path) -> None:
    b = downloaded(root, [0])
    save_resume(b.meta, root, Bitfield.from_string("1000000"))
    path = Path(resume_path(b.meta, root))
    record = decode(path.read_bytes())
    for key, value in [
        (b"info_hash", b"\x00" * 20),
        (b"num_pieces", 8),
        (b"version", 2),
        (b"bitfield", b"\x80\x00"),
        (b"bitfield", b"\x81"),  # spare bits set
        (b"files", [[50000, 0]]),
        (b"files", [b"x", b"y", b"z", b"w"]),
    ]:
        path.write_bytes(with_checksum({**record, key: value}))
        assert load_resume(b.meta, root) is None, key
    path.write_bytes(encode([1, 2]))
    assert load_resume(b.meta, root) is None
    path.write_bytes(with_checksum(record))
    assert load_resume(b.meta, root) is not None
    path.write_bytes(encode({**record, b"num_pieces": 8}))  # right shape, checksum left stale
    assert load_resume(b.meta, root) is None


def test_oversized_resume_file_is_not_read(root: Path) -> None:
    b = downloaded(root, [0])
    save_resume(b.meta, root, Bitfield.from_string("1000000"))
    path = Path(resume_path(b.meta, root))
    record = decode(path.read_bytes())
    path.write_bytes(with_checksum({**record, b"zzz": b"x" * 1_000_000}))
    assert load_resume(b.meta, root) is None


def test_failed_save_keeps_the_old_file(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    b = downloaded(root, [0, 1])
    save_resume(b.meta, root, Bitfield.from_string("1000000"))

    # EIO: on ENOSPC the save would fall back to rewriting the file in place (tests/storage/test_folder.py).
    def fail(src: str, dst: str) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(StorageError, match=r"^cannot save resume state .*Input/output error$"):
        save_resume(b.meta, root, Bitfield.from_string("1100000"))
    monkeypatch.undo()
    loaded = load_resume(b.meta, root)
    assert loaded is not None and list(loaded) == [0]
    assert len(list((root / ".torrentpy").iterdir())) == 1  # no temporary file left behind


def test_symlinked_resume_folder_is_refused(root: Path, tmp_path: Path) -> None:
    b = downloaded(root, [0])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (root / ".torrentpy").symlink_to(elsewhere)
    with pytest.raises(StorageError):
        save_resume(b.meta, root, Bitfield.from_string("1000000"))
    assert list(elsewhere.iterdir()) == []


SAVER = """
import sys
from torrentpy._core import Bitfield
from torrentpy.metainfo import parse_torrent
from torrentpy.storage.resume import save_resume
meta = parse_torrent(open(sys.argv[1], "rb").read())
states = [Bitfield.from_string("1000000"), Bitfield.from_string("1100010")]
print("ready", flush=True)
i = 0
while True:
    save_resume(meta, sys.argv[2], states[i % 2])
    i += 1
"""


def test_kill_9_during_saves_leaves_old_or_new(root: Path, tmp_path: Path) -> None:
    b = downloaded(root, [0, 1, 5])
    torrent = tmp_path / "x.torrent"
    torrent.write_bytes(b.torrent)
    save_resume(b.meta, root, Bitfield.from_string("1000000"))
    rng = random.Random(9)
    for _ in range(6):
        proc = subprocess.Popen([sys.executable, "-c", SAVER, str(torrent), str(root)],
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
            time.sleep(rng.uniform(0.01, 0.3))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            proc.stdout.close()  # type: ignore[union-attr]
        loaded = load_resume(b.meta, root)
        assert loaded is not None and loaded.to_bytes() in (b"\x80", b"\xc4")


def test_resume_candidates(root: Path) -> None:
    b = build(LAYOUT, 16384)
    assert resume_candidates(b.meta, root) == []
    b.write_files(root, skip=(2,))
    # b.bin (payload 50000-80000) is missing: pieces 3 and 4 touch it; 5 and 6 lie in c.bin.
    assert resume_candidates(b.meta, root) == [0, 1, 2, 5, 6]


def test_fdatasync_only_touches_written_files(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    b = build(LAYOUT, 16384)
    synced: list[int] = []
    real = os.fdatasync

    def spy(fd: int) -> None:
        synced.append(os.fstat(fd).st_ino)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", spy)
    with Storage(b.meta, root) as st:
        st.write_piece_sync(0, b.piece(0))
        st.flush_sync()
        assert synced == [os.stat(root / "t" / "a.bin").st_ino]
        st.flush_sync()
        assert len(synced) == 1  # nothing new was written
        st.write_piece_sync(5, b.piece(5))
        st.flush_sync()
        assert synced[1:] == [os.stat(root / "t" / "c.bin").st_ino]
    assert resume.RESUME_VERSION == 1


def test_resume_state_after_a_crash_rechecks_only_changed_files(root: Path) -> None:
    b = build([(f"f{i}", 32768) for i in range(4)], 16384)  # two pieces per file
    with Storage(b.meta, root) as st:
        for p in (0, 1, 2, 3):
            st.write_piece_sync(p, b.piece(p))
        st.flush_sync()
        save_resume(b.meta, root, Bitfield.from_string("11110000"))
        time.sleep(0.01)  # mtime granularity of some file systems
        st.write_piece_sync(4, b.piece(4))  # f2 half done, then "kill -9" before the next save
    loaded = load_resume(b.meta, root)
    assert loaded is not None and list(loaded) == [0, 1, 2, 3]  # f2 held no saved piece
    state = resume.resume_state(b.meta, root)
    assert state is not None
    assert list(state.have) == [0, 1, 2, 3]
    assert state.changed_files == [2]
    assert state.recheck == [4, 5]  # f2 exists at full (sparse) length
    with Storage(b.meta, root) as st:
        rechecked = check_pieces(st, b.meta, pieces=state.recheck)
    assert list(state.have | rechecked) == [0, 1, 2, 3, 4]


def test_resume_state_distrusts_only_pieces_of_a_changed_file(root: Path) -> None:
    b = build([(f"f{i}", 32768) for i in range(4)], 16384)
    b.write_files(root)
    save_resume(b.meta, root, Bitfield.full(8))
    path = root / "t" / "f1"
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1000))
    state = resume.resume_state(b.meta, root)
    assert load_resume(b.meta, root) is None  # all or nothing ...
    assert state is not None and list(state.have) == [0, 1, 4, 5, 6, 7] and state.recheck == [2, 3]
    assert state.saved_have.all()
    Path(resume_path(b.meta, root)).write_bytes(b"garbage")
    assert resume.resume_state(b.meta, root) is None
