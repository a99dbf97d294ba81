"""Out of memory, in-process: a torrent stops with one line, keeping what it verified, and the I/O pool runs on
the threads it has. A MemoryError is injected where the allocation happens (the hash job, a thread's start)."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import Any

import pytest

import torrentpy.engine.download as download_module
from tests.engine.harness import FakeHost, ManualClock, ScriptedPeer, make_payload, until
from tests.engine.memnet import Network
from tests.engine.test_download import BS, FakeTorrent, payload
from torrentpy.engine.memory import IoExecutor, failure_message
from torrentpy.errors import StorageError, out_of_memory_message
from torrentpy.protocol import events as ev
from torrentpy.storage.resume import resume_state

pytestmark = pytest.mark.timeout(30)


async def test_a_dropped_buffer_is_not_hashed() -> None:
    t = FakeTorrent()
    a = t.connect("A", requesting=False)
    t.picker.pick(a.addr, 2, now=0.0)
    index = t.picker.outstanding(a.addr)[0].index
    t.downloader.on_piece(a, ev.Piece(index, 0, payload(index)[:BS]), 0.0)
    t.downloader.on_piece(a, ev.Piece(index, BS, payload(index)[BS:]), 0.0)
    t.downloader.drop_buffers()  # the torrent failed before the hash job was scheduled
    await asyncio.gather(*t.tasks)
    assert t.errors == [] and t.storage.written == {} and not t.downloader.hashing


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
