"""`torrentpy daemon` restarted over 2,000 torrents in its state folder (issue 13's "10,000 torrents in the
daemon", at a size a test run affords; bench/test_many_torrents_bench.py measures 10,000).

Every torrent comes back and seeds; a damaged state record costs that torrent alone (one log line), a
torrent whose folder cannot be made fails alone, visibly over the RPC; a restart rewrites no resume file
that still holds; and torrent-get "recently-active" names just the torrents a front end touched."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.rpc.daemon_process import DaemonProcess
from tests.rpc.many import STATUS_SEED, make_torrents, record_torrents, write_session_settings
from torrentpy.storage.resume import resume_path

pytestmark = [pytest.mark.interop, pytest.mark.timeout(240)]

COUNT = 2000
# The window of "recently-active" (Transmission's is 60 s), shortened so the test can outwait it.
WINDOW_S = 4.0


def wait_all_loaded(daemon: DaemonProcess, expected: int, timeout_s: float = 120.0) -> list[dict[str, Any]]:
    """Every torrent past its start-up (seeding, or failed); the rows of the last poll."""
    deadline = time.monotonic() + timeout_s
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rows = daemon.torrents("status", "error", "errorString")
        if len(rows) == expected and all(r["status"] == STATUS_SEED or r["error"] for r in rows):
            return rows
        time.sleep(0.5)
    states = sorted({(r["status"], r["error"]) for r in rows})
    raise AssertionError(f"{len(rows)} torrents, states {states}\n{daemon.log_tail()}")


def recently_active(daemon: DaemonProcess, spelling: str = "recently-active") -> tuple[list[int], list[int]]:
    answer = daemon.call("torrent-get", {"ids": spelling, "fields": ["id", "status"]})
    assert answer["result"] == "success", answer
    args = answer["arguments"]
    return sorted(r["id"] for r in args["torrents"]), sorted(args["removed"])


def resume_stamps(metas: list[Any], folder: Path) -> dict[str, tuple[int, int]]:
    stamps = {}
    for meta in metas:
        st = os.stat(resume_path(meta, folder))
        stamps[meta.name] = (st.st_ino, st.st_mtime_ns)
    return stamps


def test_a_restart_over_thousands_of_torrents(tmp_path: Path,
                                              daemon_factory: Callable[..., DaemonProcess]) -> None:
    downloads, state = tmp_path / "downloads", tmp_path / "state"
    metas = make_torrents(downloads, COUNT)
    record_torrents(state, metas, downloads)
    # A torrent whose download folder cannot be made (a file is in the way): it must fail, alone.
    blocked = make_torrents(tmp_path / "elsewhere", 1, first=COUNT)[0]
    (downloads / "blocker").write_bytes(b"a file, not a folder")
    record_torrents(state, [blocked], downloads / "blocker" / "inside", first_id=COUNT + 1)
    # A state record damaged beyond use (no backup): that torrent is not restored, and says why once.
    damaged = metas[-1]
    (state / (damaged.info_hash_hex + ".state")).write_bytes(b"d7:versioni1e4:junk")
    write_session_settings(state, recently_active_s=WINDOW_S)
    good = metas[:-1]

    daemon = daemon_factory()
    rows = wait_all_loaded(daemon, COUNT)  # the good ones and the blocked one
    failed = [r for r in rows if r["error"]]
    assert [r["id"] for r in failed] == [COUNT + 1], failed
    assert "cannot create folder" in failed[0]["errorString"], failed
    assert sum(r["status"] == STATUS_SEED for r in rows) == COUNT - 1
    log = daemon.log.read_text()
    assert sum(damaged.info_hash_hex in line for line in log.splitlines()) == 1, log[-2000:]
    assert "not restored" in log
    assert daemon.stop() == 0

    # The restart finds a resume file beside each good torrent's data; one of them is damaged meanwhile.
    rechecked = good[3]
    Path(resume_path(rechecked, downloads)).write_bytes(b"not a resume file")
    stamps = resume_stamps(good, downloads)
    started = time.monotonic()
    daemon = daemon_factory()
    rows = wait_all_loaded(daemon, COUNT)
    restart_s = time.monotonic() - started
    assert sum(r["status"] == STATUS_SEED for r in rows) == COUNT - 1, restart_s
    # Each rewrite costs two fsyncs (minutes at 10,000 torrents): only the damaged file is written again.
    after = resume_stamps(good, downloads)
    assert [name for name in stamps if after[name] != stamps[name]] == [rechecked.name]

    # Once start-up has aged out of the window, nothing is recently active...
    time.sleep(WINDOW_S + 1.0)
    assert recently_active(daemon) == ([], [])
    # ... until a front end changes a few torrents (and removes one).
    stopped, labelled, removed = 5, 9, 12
    for method, args in (("torrent-stop", {"ids": [stopped]}), ("torrent-set", {"ids": [labelled], "labels": ["x"]}),
                         ("torrent-remove", {"ids": [removed]})):
        assert daemon.call(method, args)["result"] == "success"
    assert recently_active(daemon) == ([stopped, labelled], [removed])
    assert recently_active(daemon, "recently_active") == ([stopped, labelled], [removed])  # Transmission 4.1's
    listed = daemon.torrents("status", ids=[stopped, labelled, removed])
    assert [(r["id"], r["status"]) for r in listed] == [(stopped, 0), (labelled, STATUS_SEED)]
    time.sleep(WINDOW_S + 1.0)
    assert recently_active(daemon) == ([], [])
    assert daemon.stop() == 0
    assert resume_stamps(good[:3], downloads) == {k: stamps[k] for k in list(stamps)[:3]}
