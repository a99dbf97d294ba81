"""`torrentpy add` running out of memory under a real address-space limit (RLIMIT_AS); the daemon's case is
tests/rpc/test_memory_limit.py.

A process's size at start depends on the machine (thread stacks, malloc arenas, what the imports mapped), so
no fixed `ulimit -v` both lets it start everywhere and fails it at a known point. Each test starts torrentpy
without a limit, waits for its size (read from /proc) to settle, and then gives it a few MiB of room with
prlimit(2), the kernel's own limit on that process: less than one 16 MiB piece buffer.

- With no piece buffer yet (a resumed download whose seeder dials in after the limit), the first block needs
  one that cannot be had: the torrent stops with one line, every piece verified before is kept, and a run
  without the limit picks up from there.
- With the buffers of a download under way, it goes on with those, turning away the peers that would need
  more, and completes.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path
from typing import Any

import pytest

from tests.interop.peers.base import LOOPBACK, wait_for
from tests.interop.peers.torrentpy_peer import torrentpy_factory
from tests.procstatus import status_bytes
from torrentpy._core import sha1
from torrentpy.metainfo import Metainfo, load
from torrentpy.storage.resume import resume_state

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

MiB = 1024 * 1024
PIECE = 16 * MiB
PIECES = 8
# Room left above the measured size: enough for connections, parsing and a resume save, not for a piece.
HEADROOM = 6 * MiB
# The first run stops (SIGTERM) once this many pieces are verified: they must survive what follows.
KEEP = 2


@pytest.fixture
def one_malloc_arena(monkeypatch: pytest.MonkeyPatch) -> None:
    """Processes started from now on keep glibc's malloc to one arena. Each further arena (one per thread
    that allocates, up to 8 per core) reserves 64 MiB of address space up front and hands out memory from
    inside that reservation without asking the kernel again: with them RLIMIT_AS bounds where the memory
    comes from, not how much of it there is. Some deployments set this too, to keep their footprint small."""
    monkeypatch.setenv("MALLOC_ARENA_MAX", "1")


def limit_memory(pid: int, headroom: int = HEADROOM) -> int:
    """Let `pid` map at most `headroom` more bytes than it has once its size has settled; returns the limit."""
    sizes = [status_bytes(pid, "VmSize")]
    deadline = time.monotonic() + 10
    # Settled: the same size for a second (a check's file maps and helper threads come and go before that).
    while len(sizes) < 10 or len(set(sizes[-10:])) > 1:
        assert time.monotonic() < deadline, f"the size of {pid} never settled: {sizes}"
        time.sleep(0.1)
        sizes.append(status_bytes(pid, "VmSize"))
    limit = sizes[-1] + headroom
    resource.prlimit(pid, resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
    return limit


def verified_on_disk(meta: Metainfo, save_dir: Path) -> tuple[list[int], int]:
    """The pieces the resume file claims, and how many of them fail their hash on disk. (A piece write that
    was under way at the save lands after it: the next start then re-hashes the file's claimed pieces.)"""
    state = resume_state(meta, str(save_dir))
    assert state is not None, "no resume file"
    claimed = list(state.saved_have)
    bad = 0
    with open(save_dir / meta.name, "rb") as fh:
        for index in claimed:
            fh.seek(index * meta.piece_length)
            bad += sha1(fh.read(meta.piece_size(index))) != meta.piece_hash(index)
    return claimed, bad


def error_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if line.startswith("torrentpy: error:")]


def done_pieces(peer: Any) -> int:
    stats = peer.stats()
    return stats["torrents"][0]["done"] // PIECE if stats and stats["torrents"] else 0


@pytest.fixture
def big(payload_factory, torrent_factory) -> tuple[Any, Path, Metainfo]:
    payload = payload_factory(PIECES * PIECE, name="big.bin")
    torrent = torrent_factory(payload, piece_length=PIECE)
    meta = load(str(torrent))
    assert isinstance(meta, Metainfo)
    return payload, torrent, meta


@pytest.mark.usefixtures("one_malloc_arena")
def test_add_out_of_memory_says_so_in_one_line_and_keeps_every_verified_piece(
    big, libtorrent_peer, peer_registry, tmp_path: Path
) -> None:
    payload, torrent, meta = big
    seeder = libtorrent_peer(torrent, payload.save_dir, True, seed_mode=True)
    dl = tmp_path / "dl"
    make = torrentpy_factory(peer_registry)

    # 1. Some pieces are downloaded and verified; then a clean stop.
    first = make(torrent, dl, False, peers=[seeder.address], extra_args=["--no-dht", "--max-download-rate", "24M"])
    wait_for(lambda: done_pieces(first) >= KEEP, 60, 0.05, f"{KEEP} verified pieces")
    assert first.stop() == 143, first.log_tail()
    kept, bad = verified_on_disk(meta, dl)
    assert KEEP <= len(kept) < PIECES and bad == 0, (kept, bad)

    # 2. The same download under a memory limit: no peer until the limit is set, then the seeder dials in.
    second = make(torrent, dl, False, extra_args=["--no-dht"])
    resumed = second.wait_event("resumed", 20)
    assert resumed["pieces"] >= len(kept), resumed
    wait_for(lambda: (s := second.stats()) and s["torrents"][0]["state"] == "downloading", 20, 0.05,
             "the second run to be downloading")
    assert second.process is not None
    limit_memory(second.process.pid)
    seeder.add_peer(LOOPBACK, second.port)
    assert second.wait_exit(60) == 1, second.log_tail()
    log = second.log_tail()
    assert "Traceback" not in log, log
    errors = error_lines(log)
    assert len(errors) == 1 and "big.bin: out of memory (no memory for a 16.0 MiB piece buffer)" in errors[0], log
    assert "verified pieces are kept" in errors[0]
    failed = second.event("error")
    assert failed is not None and failed["message"].startswith("out of memory"), failed
    after, bad = verified_on_disk(meta, dl)
    assert set(kept) <= set(after) and bad == 0, (kept, after, bad)

    # 3. Without the limit the download resumes: no verified piece is fetched again.
    third = make(torrent, dl, False, peers=[seeder.address], extra_args=["--no-dht"])
    assert third.wait_exit(60) == 0, third.log_tail()
    assert payload.differences(dl) == []
    resumed = third.event("resumed")
    assert resumed is not None and resumed["pieces"] >= len(after), (resumed, after)
    completed = third.event("completed")
    assert completed is not None and completed["downloaded_pieces"] == PIECES - resumed["pieces"], completed


@pytest.mark.usefixtures("one_malloc_arena")
def test_add_under_a_limit_goes_on_with_the_buffers_it_has_and_drops_peers_that_need_more(
    big, libtorrent_peer, peer_registry, tmp_path: Path
) -> None:
    payload, torrent, _ = big
    dl = tmp_path / "dl"
    make = torrentpy_factory(peer_registry)
    # Each of these would start a piece of its own: more buffers than the limit leaves room for. Started
    # first, so that they dial in at once when asked to, long before the slow seeder alone could finish.
    fast = [libtorrent_peer(torrent, payload.save_dir, True, seed_mode=True) for _ in range(4)]
    # A slow seeder alone: a piece or two in flight, and the buffers they need, before the limit.
    slow = libtorrent_peer(torrent, payload.save_dir, True, seed_mode=True, upload_limit_bps=8 * MiB)
    run = make(torrent, dl, False, peers=[slow.address], extra_args=["--no-dht"])
    wait_for(lambda: done_pieces(run) >= KEEP, 60, 0.05, f"{KEEP} verified pieces")
    assert run.process is not None
    limit_memory(run.process.pid)
    assert done_pieces(run) < PIECES - 2, "the slow seeder was not slow"
    for seeder in fast:
        seeder.add_peer(LOOPBACK, run.port)
    assert run.wait_exit(90) == 0, run.log_tail()
    assert payload.differences(dl) == []
    log = run.log_tail()
    assert "Traceback" not in log and not error_lines(log), log
    dropped = [e for e in run.events("peer_error") if e["reason"] == "no memory for a 16.0 MiB piece buffer"]
    assert dropped, "the limit never bit: no peer was turned away for want of a buffer"
    completed = run.event("completed")
    assert completed is not None and completed["downloaded_pieces"] == PIECES, completed
