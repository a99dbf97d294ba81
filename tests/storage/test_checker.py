from __future__ import annotations

import hashlib
import random
import threading
import time
from pathlib import Path

import libtorrent as lt
import pytest

from tests.storage.builders import Built, build
from torrentpy._core import Bitfield
from torrentpy.metainfo import parse_torrent
from torrentpy.storage import checker
from torrentpy.storage.checker import check_pieces, present_pieces, verify
from torrentpy.storage.files import Storage

LAYOUT = [("a.bin", 50000), ("empty", 0), ("sub/b.bin", 70), ("sub/c.bin", 90000), ("z", 3)]


def expected_by_hashlib(b: Built, root: Path) -> list[bool]:
    """Independent oracle: concatenate whatever is on disk (missing = absent) and SHA-1 each piece."""
    meta = b.meta
    good = []
    for p in range(meta.num_pieces):
        start = p * meta.piece_length
        end = start + meta.piece_size(p)
        chunk = bytearray()
        ok = True
        for f in meta.files:
            lo, hi = max(start, f.offset), min(end, f.offset + f.length)
            if lo >= hi:
                continue
            if f.padding:
                chunk += bytes(hi - lo)
                continue
            path = root.joinpath(*f.path)
            data = path.read_bytes() if path.is_file() else b""
            part = data[lo - f.offset : hi - f.offset]
            if len(part) != hi - lo:
                ok = False
            chunk += part
        good.append(ok and hashlib.sha1(chunk).digest() == meta.piece_hash(p))
    return good


def corrupt(path: Path, offset: int) -> None:
    with path.open("r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0xFF]))


def test_all_good_then_corrupted_pieces_fail(root: Path) -> None:
    b = build(LAYOUT, 16384)
    b.write_files(root)
    with Storage(b.meta, root) as st:
        assert check_pieces(st, b.meta).all()
    corrupt(root / "t" / "a.bin", 20000)  # piece 1
    corrupt(root / "t" / "sub" / "b.bin", 10)  # piece 3, which spans a.bin, b.bin and c.bin
    corrupt(root / "t" / "z", 2)  # the last piece
    with Storage(b.meta, root) as st:
        have = check_pieces(st, b.meta)
    assert [have[p] for p in range(b.meta.num_pieces)] == expected_by_hashlib(b, root)
    assert have.missing() == [1, 3, b.meta.num_pieces - 1]


def test_missing_and_short_files_fail_their_pieces_without_crashing(root: Path) -> None:
    b = build(LAYOUT, 16384)
    b.write_files(root, skip=(2,))  # sub/b.bin absent
    (root / "t" / "sub" / "c.bin").write_bytes(b.contents[3][:40000])
    with Storage(b.meta, root) as st:
        readable = present_pieces(st)
        have = check_pieces(st, b.meta)
    assert 3 not in readable  # the piece holding b.bin is not even read
    assert [have[p] for p in range(b.meta.num_pieces)] == expected_by_hashlib(b, root)
    # 0-2 lie in a.bin; 4 lies in the first 40000 bytes c.bin still has; 3 needs b.bin.
    assert list(have) == [0, 1, 2, 4]


def test_empty_folder_checks_to_nothing_and_creates_nothing(root: Path) -> None:
    b = build(LAYOUT, 16384)
    with Storage(b.meta, root) as st:
        assert check_pieces(st, b.meta).count() == 0
    assert list(root.iterdir()) == []


def test_padding_files_hash_as_zeros(root: Path) -> None:
    b = build([("a", 5000), (".pad/11384", 11384, "p"), ("b", 20000)], 16384)
    b.write_files(root)
    with Storage(b.meta, root) as st:
        assert check_pieces(st, b.meta).all()


@pytest.mark.parametrize(("pass_files", "pass_pieces"), [(1, 1 << 16), (2, 3), (64, 1 << 16)])
def test_pass_size_does_not_change_the_answer(
    root: Path, monkeypatch: pytest.MonkeyPatch, pass_files: int, pass_pieces: int
) -> None:
    b = build([(f"f{i}", random.Random(i).randrange(0, 60000)) for i in range(20)], 16384)
    b.write_files(root)
    rng = random.Random(7)
    for f in rng.sample([f for f in b.meta.files if f.length], 6):
        corrupt(root.joinpath(*f.path), rng.randrange(f.length))
    (root.joinpath(*b.meta.files[4].path)).unlink(missing_ok=True)
    monkeypatch.setattr(checker, "MAX_PASS_FILES", pass_files)
    monkeypatch.setattr(checker, "MAX_PASS_PIECES", pass_pieces)
    seen: list[int] = []
    with Storage(b.meta, root) as st:
        have = check_pieces(st, b.meta, progress=seen.append, threads=2)
        assert st.open_fd_count <= max(st.max_open_files, pass_files)
    assert [have[p] for p in range(b.meta.num_pieces)] == expected_by_hashlib(b, root)
    assert seen == sorted(seen) and seen[-1] == b.meta.num_pieces


def test_pieces_across_files_and_padding(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    b = build([("big.bin", 16384 * 40 + 123), (".pad/x", 16384 - 123, "p"), ("tail.bin", 5000),
               ("c.bin", 30000), ("d.bin", 9000)], 16384)
    b.write_files(root)
    big = root.joinpath(*b.meta.files[0].path)
    for offset in (0, 16384 * 7 + 5, 16384 * 40 + 100):  # first piece, a middle one, the one with padding
        corrupt(big, offset)
    corrupt(root.joinpath(*b.meta.files[4].path), 8999)  # the last piece, which spans c.bin and d.bin
    monkeypatch.setattr(checker, "MAX_PASS_FILES", 2)  # several passes, one piece opening two files
    seen: list[int] = []
    with Storage(b.meta, root) as st:
        have = check_pieces(st, b.meta, threads=2, progress=seen.append)
    assert [have[p] for p in range(b.meta.num_pieces)] == expected_by_hashlib(b, root)
    last = b.meta.num_pieces - 1
    assert not have[0] and not have[7] and not have[40] and not have[last] and have[1] and have[41]
    assert seen == sorted(seen) and seen[-1] == b.meta.num_pieces


def test_a_file_that_cannot_be_opened_fails_its_pieces(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    b = build(LAYOUT, 16384)
    b.write_files(root)
    real_acquire = Storage._acquire

    def refuse_b(self: Storage, index: int, *, write: bool) -> object:
        if index == 2:
            raise PermissionError(13, "denied")
        return real_acquire(self, index, write=write)

    monkeypatch.setattr(Storage, "_acquire", refuse_b)
    with Storage(b.meta, root) as st:
        have = check_pieces(st, b.meta)
        assert st.open_fd_count <= st.max_open_files
    assert have.missing() == [3]  # the one piece holding sub/b.bin


def test_subset_of_pieces(root: Path) -> None:
    b = build(LAYOUT, 16384)
    b.write_files(root)
    with Storage(b.meta, root) as st:
        have = check_pieces(st, b.meta, pieces=[4, 1, 1])
        with pytest.raises(IndexError):
            check_pieces(st, b.meta, pieces=[b.meta.num_pieces])
    assert list(have) == [1, 4]


def test_verify_report(root: Path) -> None:
    b = build(LAYOUT, 16384)
    b.write_files(root, skip=(4,))
    corrupt(root / "t" / "a.bin", 0)
    calls: list[int] = []
    report = verify(b.meta, root, progress=calls.append)
    assert report.total_pieces == b.meta.num_pieces
    assert report.good_pieces == report.have.count() == b.meta.num_pieces - 2
    assert not report.complete
    by_path = {f.relpath: f for f in report.files}
    assert by_path["t/a.bin"] == ("t/a.bin", 50000, 50000 - 16384, False)
    assert by_path["t/empty"].complete
    assert by_path["t/z"] == ("t/z", 3, 0, False)
    assert by_path["t/sub/b.bin"].complete
    assert calls[-1] == b.meta.num_pieces
    (root / "t" / "z").write_bytes(b.contents[4])
    with (root / "t" / "a.bin").open("r+b") as fh:
        fh.write(b.contents[0][:1])
    assert verify(b.meta, root).complete


# --- against libtorrent's own check --------------------------------------------------


def libtorrent_check(torrent: bytes, save_path: Path) -> list[bool]:
    session = lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "dht_bootstrap_nodes": "", "enable_ip_notifier": False,
        "enable_incoming_utp": False, "enable_outgoing_utp": False,
        "alert_mask": lt.alert_category.status | lt.alert_category.error,
    })
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(lt.bdecode(torrent))
    params.save_path = str(save_path)
    params.flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)
    handle = session.add_torrent(params)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        session.wait_for_alert(200)
        if any(isinstance(a, lt.torrent_checked_alert) for a in session.pop_alerts()):
            pieces = list(handle.status().pieces)
            session.remove_torrent(handle)
            return pieces
    raise AssertionError("libtorrent did not finish checking in 60 s")


def libtorrent_torrent(data_root: Path, name: str, piece_length: int, *, hybrid: bool) -> bytes:
    rng = random.Random(11)
    # big.bin: enough pieces of one length for groups of 16 hashed at once
    sizes = {"a.bin": 70000, "empty": 0, "sub/b.bin": 123457, "c": 5, "sub/d/e": 40000, "f/big.bin": 600_000}
    for rel, size in sizes.items():
        path = data_root / name / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(size))
    fs = lt.file_storage()
    for rel in sorted(sizes):  # explicit order, no deprecated directory walk
        fs.add_file(f"{name}/{rel}", sizes[rel])
    flags = 0 if hybrid else lt.create_torrent.v1_only
    ct = lt.create_torrent(fs, piece_length, flags=flags)
    lt.set_piece_hashes(ct, str(data_root))
    return lt.bencode(ct.generate())


@pytest.mark.parametrize("hybrid", [False, True], ids=["v1", "hybrid-with-padding"])
def test_agrees_with_libtorrent(tmp_path: Path, hybrid: bool) -> None:
    data = tmp_path / "data"
    torrent = libtorrent_torrent(data, "t", 16384, hybrid=hybrid)
    meta = parse_torrent(torrent)
    assert any(f.padding for f in meta.files) == hybrid
    with Storage(meta, data) as st:
        assert check_pieces(st, meta).all()
    assert all(libtorrent_check(torrent, data))

    corrupt(data / "t" / "a.bin", 69999)  # last piece of a.bin, which also holds c (v1 order)
    corrupt(data / "t" / "sub" / "b.bin", 60000)
    (data / "t" / "sub" / "d" / "e").write_bytes(b"short")
    with Storage(meta, data) as st:
        have = check_pieces(st, meta)
    ours = [have[p] for p in range(meta.num_pieces)]
    theirs = libtorrent_check(torrent, data)
    assert ours == theirs
    assert 0 < sum(ours) < meta.num_pieces


def test_bitfield_type() -> None:
    b = build(LAYOUT, 16384)
    assert isinstance(check_pieces(Storage(b.meta, "/nonexistent-torrentpy-root"), b.meta), Bitfield)


async def test_async_check_reports_progress_on_the_loop_thread(root: Path) -> None:
    b = build(LAYOUT, 16384)
    b.write_files(root)
    corrupt(root / "t" / "a.bin", 0)
    threads_seen: set[int] = set()
    calls: list[int] = []

    def progress(n: int) -> None:
        threads_seen.add(threading.get_ident())
        calls.append(n)

    with Storage(b.meta, root) as st:
        have = await checker.check_pieces_async(st, b.meta, progress=progress)
    assert have.missing() == [0]
    assert threads_seen == {threading.get_ident()}
    assert calls[-1] == b.meta.num_pieces


def test_storage_of_another_torrent_is_refused(root: Path) -> None:
    a, b = build(LAYOUT, 16384), build(LAYOUT, 16384, seed=2)
    with Storage(a.meta, root) as st, pytest.raises(ValueError):
        check_pieces(st, b.meta)


@pytest.mark.parametrize("seed", range(12))
def test_plan_tables_match_the_layout(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    """The bulk-built tables say exactly what Layout.segments says, piece by piece, in every pass."""
    rng = random.Random(seed)
    files = []
    for i in range(rng.randrange(1, 12)):
        if rng.random() < 0.2:
            files.append((f".pad/{i}", rng.randrange(1, 40000), "p"))
        else:
            files.append((f"f{i}", rng.choice([0, rng.randrange(1, 100), rng.randrange(1, 200000)])))
    if all(len(f) == 3 or f[1] == 0 for f in files):
        files.append(("last", 12345))
    b = build(files, rng.choice([16384, 32768]))
    meta = b.meta
    monkeypatch.setattr(checker, "MAX_PASS_FILES", rng.randrange(1, 4))
    monkeypatch.setattr(checker, "MAX_PASS_PIECES", rng.randrange(1, 20))
    pieces = sorted(rng.sample(range(meta.num_pieces), rng.randrange(1, meta.num_pieces + 1)))
    passes = checker._plan(meta, pieces)
    assert [p for plan in passes for p in plan.pieces] == pieces
    layout = Storage(meta, "/nonexistent-torrentpy-root").layout
    for plan in passes:
        assert len(plan.pieces) <= checker.MAX_PASS_PIECES
        # a piece across more files than the limit still makes a pass of its own
        assert len(plan.files) <= checker.MAX_PASS_FILES or len(plan.pieces) == 1
        assert len(set(plan.files)) == len(plan.files)
        assert plan.expected == b"".join(meta.piece_hash(p) for p in plan.pieces)
        assert len(plan.starts) == len(plan.pieces) + 1
        for n, p in enumerate(plan.pieces):
            spans = [(plan.files[plan.which[s]] if plan.which[s] >= 0 else -1, plan.offsets[s], plan.lengths[s])
                     for s in range(plan.starts[n], plan.starts[n + 1])]
            want = [(-1 if seg.padding else seg.file_index, seg.file_offset, seg.length) for seg in layout.segments(p)]
            assert spans == want


LOW_LIMIT_CHECK = """
import resource, sys
from pathlib import Path
from tests.storage.builders import build
from torrentpy.storage.checker import check_pieces
from torrentpy.storage.files import Storage
root = Path(sys.argv[1])
b = build([(f"f{i:03}", 3000 + i) for i in range(120)], 16384)
b.write_files(root)
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[2]), hard))
with Storage(b.meta, root) as st:
    have = check_pieces(st, b.meta, threads=2)
print(have.count(), b.meta.num_pieces)
"""


@pytest.mark.parametrize("limit", [24, 40])
def test_a_low_descriptor_limit_checks_every_piece(tmp_path: Path, limit: int) -> None:
    """Under `ulimit -n` below a pass's 64 files, the files a pass cannot open are checked in smaller
    passes: good pieces were failed for want of a descriptor (and a resumed download lost them)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", LOW_LIMIT_CHECK, str(tmp_path), str(limit)], capture_output=True,
                         text=True, timeout=60, cwd=Path(__file__).parents[2])
    assert out.returncode == 0, out.stderr
    good, total = map(int, out.stdout.split())
    assert good == total
