"""The state folder: records survive torn writes, empty files and a full disk, and damage is reported."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from torrentpy.engine.statedir import BACKUP_SUFFIX, SUFFIX, StateDir, TorrentRecord
from torrentpy.errors import StorageError


def record(n: int = 1, **changes: object) -> TorrentRecord:
    r = TorrentRecord(info_hash=bytes([n]) * 20, id=n, name=f"t{n}", save_dir="/data", added_at=1700000000,
                      info=b"d4:name2:t1e", trackers=(("http://a/announce",), ("udp://b:1",)),
                      settings={"seedRatioLimit": 1.5, "labels": ["x"], "seedRatioMode": 1, "sequential": True})
    for key, value in changes.items():
        setattr(r, key, value)
    return r


def test_a_record_round_trips_with_its_settings(tmp_path: Path) -> None:
    state = StateDir(str(tmp_path))
    state.save(record(1))
    state.save(record(2, info=None, peers=(("127.0.0.1", 6881),), paused=True))
    loaded = {r.id: r for r in state.load_all()}
    assert loaded[1] == record(1)
    assert loaded[2] == record(2, info=None, peers=(("127.0.0.1", 6881),), paused=True)
    assert state.problems == []


@pytest.mark.parametrize("damage", [b"", b"d7:version", None], ids=["empty", "torn", "bit-flip"])
def test_a_damaged_file_is_reported_and_the_previous_copy_used(tmp_path: Path, damage: bytes | None) -> None:
    state = StateDir(str(tmp_path))
    state.save(record(1, name="old"))
    state.save(record(1, name="new"))
    current = tmp_path / (bytes([1] * 20).hex() + SUFFIX)
    if damage is None:
        data = bytearray(current.read_bytes())
        data[data.index(b"new")] ^= 0x01  # still bencoding; only the checksum can tell
        current.write_bytes(bytes(data))
    else:
        current.write_bytes(damage)
    [loaded] = state.load_all()
    assert loaded.name == "old"
    assert any(str(current) in p for p in state.problems), state.problems


def test_both_copies_damaged_is_reported_not_fatal(tmp_path: Path) -> None:
    state = StateDir(str(tmp_path))
    state.save(record(1))
    state.save(record(2))
    name = bytes([1] * 20).hex()
    (tmp_path / (name + SUFFIX)).write_bytes(b"")
    (tmp_path / (name + BACKUP_SUFFIX)).write_bytes(b"junk")
    assert [r.id for r in state.load_all()] == [2]
    assert any("not restored" in p for p in state.problems)


def test_a_full_disk_leaves_the_last_good_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = StateDir(str(tmp_path))
    state.save(record(1, name="good"))
    real_write = os.write

    def full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(StorageError, match="No space left"):
        state.save(record(1, name="lost"))
    monkeypatch.setattr(os, "write", real_write)
    assert [r.name for r in state.load_all()] == ["good"]
    assert state.problems == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [bytes([1] * 20).hex() + SUFFIX]  # no temp file left


def test_a_crash_between_the_renames_loses_nothing(tmp_path: Path) -> None:
    state = StateDir(str(tmp_path))
    state.save(record(1, name="old"))
    state.save(record(1, name="new"))
    name = bytes([1] * 20).hex()
    # The moment after "current → backup" and before "temp → current": only the backup and a temp file.
    os.rename(tmp_path / (name + SUFFIX), tmp_path / (name + ".state.tmp-1"))
    [loaded] = state.load_all()
    assert loaded.name == "old"


def test_remove_deletes_both_copies(tmp_path: Path) -> None:
    state = StateDir(str(tmp_path))
    state.save(record(1))
    state.save(record(1))
    state.remove(bytes([1] * 20))
    assert list(tmp_path.iterdir()) == []


def test_saving_the_same_record_again_writes_nothing(tmp_path: Path) -> None:
    state = StateDir(str(tmp_path))
    state.save(record(1))
    current = tmp_path / (bytes([1] * 20).hex() + SUFFIX)
    before = os.stat(current)
    state.save(record(1))  # the daemon saves every record on exit, changed or not
    assert os.stat(current).st_ino == before.st_ino and not (tmp_path / (current.name + ".bak")).exists()
    again = StateDir(str(tmp_path))
    again.load_all()
    again.save(record(1))  # read at start and unchanged: not written either
    assert os.stat(current).st_ino == before.st_ino
    again.save(record(1, name="renamed"))
    assert os.stat(current).st_ino != before.st_ino and (tmp_path / (current.name + ".bak")).exists()


def test_a_session_file_naming_many_torrents_is_read_back(tmp_path: Path) -> None:
    from tests.rpc.many import write_session_settings
    from torrentpy.daemon import Daemon
    from torrentpy.engine.session import Session, SessionConfig

    # 30,000 torrents' queue order is ~1.4 MB: past the 1 MiB the file used to be cut at, losing it all.
    order = [i.to_bytes(20, "big").hex() for i in range(30_000)]
    write_session_settings(tmp_path / "state", queue_order=order, download_queue_size=3, recently_active_s=5)
    session = Session(SessionConfig(save_dir=str(tmp_path), listen_port=0, dht=False))
    try:
        daemon = Daemon.open(session, str(tmp_path / "state"), str(tmp_path))
    finally:
        session.executor.shutdown()
    assert daemon.settings.download_queue_size == 3 and daemon.settings.queue_order == order
    assert daemon.settings.recently_active_s == 5
