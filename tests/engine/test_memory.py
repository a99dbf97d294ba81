"""Out of memory, in-process: each place that can do without something does, and the rest stops one torrent
with one line, keeping what it verified. A MemoryError is injected where the allocation happens (the module's
`bytearray`, the hash job, a thread's start); tests/interop/test_memory_limit.py has the real limit, and
tests/engine/test_upload.py the read cache."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import Any

import pytest

import torrentpy.engine.download as download_module
import torrentpy.net.peer as peer_module
from tests.engine.harness import FakeHost, ManualClock, ScriptedPeer, make_payload, until
from tests.engine.memnet import Network
from tests.engine.test_download import BS, PIECE, FakeTorrent, payload
from torrentpy.engine.memory import IoExecutor, failure_message
from torrentpy.errors import StorageError, out_of_memory_message
from torrentpy.net.peer import FIRST_RECV_BUFFER_BYTES, RECV_BUFFER_BYTES, PeerLink
from torrentpy.protocol import events as ev
from torrentpy.storage.resume import resume_state

pytestmark = pytest.mark.timeout(30)


def no_memory_for(size: int, failures: int = 1 << 30) -> Any:
    """A `bytearray` for a module whose allocations of `size` bytes fail (the first `failures` of them)."""
    left = [failures]

    def make(*args: Any) -> bytearray:
        if args and args[0] == size and left[0] > 0:
            left[0] -= 1
            raise MemoryError
        return bytearray(*args)

    return make


# --- the piece buffers (engine/download.py) ---------------------------------------------------


async def test_no_buffer_and_none_in_use_stops_the_torrent_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    t = FakeTorrent()
    a = t.connect("A", requesting=False)
    t.picker.pick(a.addr, 2, now=0.0)
    index = t.picker.outstanding(a.addr)[0].index
    monkeypatch.setattr(download_module, "bytearray", no_memory_for(PIECE), raising=False)
    assert not await t.deliver(a, index, 0)
    assert t.errors == [out_of_memory_message("no memory for a 32.0 KiB piece buffer")]
    assert t.errors[0].endswith("verified pieces are kept: free some memory (or raise `ulimit -v`) and run again")
    # The block the picker counted was not kept: the piece is wanted whole again, nothing is half-claimed.
    assert not t.downloader.piece_buffers and index not in t.picker.downloading_pieces()
    t.picker.check_invariants()


async def test_no_buffer_while_others_are_in_use_drops_only_that_peer(monkeypatch: pytest.MonkeyPatch) -> None:
    t = FakeTorrent()
    a, b = t.connect("A", requesting=False), t.connect("B", requesting=False)
    (first,) = t.picker.pick(a.addr, 1, now=0.0)
    (other,) = t.picker.pick(b.addr, 1, now=0.0)
    assert first.index != other.index
    assert await t.deliver(a, first.index, 0)  # A's piece has its buffer
    monkeypatch.setattr(download_module, "bytearray", no_memory_for(PIECE), raising=False)
    assert not await t.deliver(b, other.index, 0)
    assert t.errors == [] and b.link.closed and not a.link.closed
    assert t.events[-1] == ("peer_error", {"peer": "B:6881", "reason": "no memory for a 32.0 KiB piece buffer"})
    assert list(t.downloader.piece_buffers) == [first.index]
    t.picker.check_invariants()
    # A finishes its piece; its buffer, recycled, carries the next piece while allocations still fail.
    t.picker.pick(a.addr, 1, now=0.0)
    assert await t.deliver(a, first.index, BS)
    assert t.storage.written == {first.index: payload(first.index)} and len(t.downloader._buffer_pool) == 1
    nxt = t.picker.pick(a.addr, 2, now=0.0)
    assert {blk.index for blk in nxt} == {nxt[0].index} and nxt[0].index != first.index
    for blk in nxt:
        assert await t.deliver(a, blk.index, blk.begin)
    assert set(t.storage.written) == {first.index, nxt[0].index} and t.errors == []


async def test_spare_buffers_are_bounded_in_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    t = FakeTorrent()
    monkeypatch.setattr(download_module, "BUFFER_POOL_BYTES", 5 * PIECE + PIECE // 2)
    for _ in range(8):
        t.downloader._recycle(bytearray(PIECE))
    assert len(t.downloader._buffer_pool) == 5
    t.downloader._recycle(bytearray(BS))  # the short last piece is never kept
    assert len(t.downloader._buffer_pool) == 5


async def test_spare_buffers_are_given_back_before_giving_up(monkeypatch: pytest.MonkeyPatch) -> None:
    t = FakeTorrent()
    t.meta.piece_size = lambda index: PIECE if index < 2 else BS  # type: ignore[method-assign]
    t.downloader._buffer_pool.extend([bytearray(PIECE), bytearray(PIECE)])
    monkeypatch.setattr(download_module, "bytearray", no_memory_for(BS, failures=1), raising=False)
    buf = t.downloader._new_piece_buffer(2)  # the short last piece: the spares are the wrong size
    assert len(buf) == BS and not t.downloader._buffer_pool


async def test_a_complete_piece_goes_to_the_pool_at_once_and_survives_dropped_buffers() -> None:
    t = FakeTorrent()
    a = t.connect("A", requesting=False)
    t.picker.pick(a.addr, 2, now=0.0)
    index = t.picker.outstanding(a.addr)[0].index
    t.downloader.on_piece(a, ev.Piece(index, 0, payload(index)[:BS]), 0.0)
    t.downloader.on_piece(a, ev.Piece(index, BS, payload(index)[BS:]), 0.0)
    # Handed to the pool by the call that completed it, before any task has run.
    assert t.downloader.hashing == {index} and index not in t.downloader.piece_buffers
    t.downloader.drop_buffers()  # the torrent failed while the job was running: it finishes on its own
    await asyncio.gather(*t.tasks)
    assert t.errors == [] and t.storage.written == {index: payload(index)} and not t.downloader.hashing


# --- a hash job out of memory, in a real Torrent ----------------------------------------------


async def test_a_hash_job_out_of_memory_stops_the_torrent_and_the_next_run_resumes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    meta, data = make_payload(tmp_path / "seed", 12 * 16384, piece_length=16384)
    net, clock = Network(), ManualClock()
    ScriptedPeer(net, "10.0.0.1", meta, payload=data)
    real_verify, verified = download_module.verify_piece, []

    def verify_then_run_out(buf: Any, expected: bytes) -> bool:
        if len(verified) == 5:
            raise MemoryError
        verified.append(1)
        return real_verify(buf, expected)

    monkeypatch.setattr(download_module, "verify_piece", verify_then_run_out)
    host = FakeHost(net, "10.0.1.1", clock=clock)
    torrent = host.add(meta, tmp_path / "dl", seed_ratio=None)
    await torrent.start()
    torrent.add_candidates([("10.0.0.1", 6881)])
    torrent.tick(clock.now)
    with caplog.at_level(logging.DEBUG, logger="torrentpy"):
        await until(lambda: torrent.state == "error", what="the torrent to stop")
    assert torrent.error == out_of_memory_message()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # no "internal error" traceback
    saved = resume_state(meta, tmp_path / "dl")
    assert saved is not None and saved.saved_have.count() == 5

    monkeypatch.setattr(download_module, "verify_piece", real_verify)
    again = FakeHost(net, "10.0.1.2", clock=clock).add(meta, tmp_path / "dl", seed_ratio=None)
    await again.start()
    assert again.pieces_at_start == 5
    again.add_candidates([("10.0.0.1", 6881)])
    again.tick(clock.now)
    await until(lambda: again.complete, what="the rest downloaded")
    assert (tmp_path / "dl" / meta.name).read_bytes() == data
    assert again.downloader.pieces_downloaded == meta.num_pieces - 5


def test_failure_messages() -> None:
    assert failure_message(StorageError("disk full"), "t") == "disk full"
    assert failure_message(MemoryError(), "t") == out_of_memory_message()
    assert failure_message(ValueError("x"), "t") == "internal error: ValueError('x')"


# --- the I/O pool -------------------------------------------------------------------------


def test_a_thread_that_cannot_start_leaves_the_job_to_the_running_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    pool = IoExecutor(max_workers=4)
    gate = threading.Event()
    try:
        busy = pool.submit(gate.wait, 10)  # the one thread, busy: the next job wants a second one

        def cannot_start(self: threading.Thread) -> None:
            raise RuntimeError("can't start new thread")

        monkeypatch.setattr(threading.Thread, "start", cannot_start)
        job = pool.submit(lambda: 42)
        monkeypatch.undo()
        gate.set()
        assert busy.result(5) and job.result(5) == 42
        assert len(pool._threads) == 1
    finally:
        gate.set()
        pool.shutdown()


def test_no_thread_at_all_is_out_of_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    pool = IoExecutor(max_workers=2)

    def cannot_start(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", cannot_start)
    with pytest.raises(MemoryError):
        pool.submit(lambda: 1)
    monkeypatch.undo()
    pool.shutdown(wait=False, cancel_futures=True)


# --- a connection's receive buffer (net/peer.py) ---------------------------------------------


class _Conn:
    def receive_borrowed(self, data: memoryview) -> None:
        self.got = bytes(data)

    def next_event(self) -> None:
        return None

    def release_borrowed(self) -> None:
        pass


class _Handler:
    def on_event(self, link: PeerLink, event: Any) -> bool:
        return True


@pytest.mark.parametrize("memory", [True, False])
def test_a_receive_buffer_that_cannot_grow_stays_small(memory: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    link = PeerLink(_Conn(), _Handler(), ("10.0.0.1", 6881), incoming=False)  # type: ignore[arg-type]
    if not memory:
        monkeypatch.setattr(peer_module, "bytearray", no_memory_for(4 * FIRST_RECV_BUFFER_BYTES), raising=False)
    sizes = []
    for _ in range(4):
        view = link.get_buffer(-1)
        view[:] = b"x" * len(view)
        link.buffer_updated(len(view))  # a full read: the link asks for a bigger buffer, up to the full one
        assert link.conn.got == b"x" * len(view)  # type: ignore[attr-defined]
        sizes.append(len(link.get_buffer(-1)))
    if memory:
        assert sizes == [4 * FIRST_RECV_BUFFER_BYTES] + [RECV_BUFFER_BYTES] * 3
    else:
        assert sizes == [FIRST_RECV_BUFFER_BYTES] * 4
