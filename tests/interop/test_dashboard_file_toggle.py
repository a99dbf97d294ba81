"""`torrentpy add`'s own dashboard in a pty: `w` in the files panel skips a file while it downloads from a
libtorrent seeder; the wanted files complete byte-identical, the skipped one does not, and add exits."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop import test_dashboard_pty
from tests.interop.peers.payload import MiB
from tests.interop.test_dashboard_pty import _add_argv, assert_terminal_restored

pty_terminal = test_dashboard_pty.pty_terminal  # the fixture, shared
pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]


def test_w_skips_a_file_during_a_download(payload_factory, torrent_factory, libtorrent_peer, pty_terminal,
                                          tmp_path: Path) -> None:
    payload = payload_factory({"a.bin": 128 * 1024, "b.bin": 3 * MiB, "c.bin": 128 * 1024}, name="trio")
    torrent = torrent_factory(payload, piece_length=64 * 1024)
    # ~200 KiB/s: b.bin alone would take 15 s, so the key lands long before it could be complete.
    seeder = libtorrent_peer(torrent, payload.save_dir, True, upload_limit_bps=200 * 1024)
    seeder.wait_seeding(20)
    term = pty_terminal(_add_argv(torrent, tmp_path / "dl", seeder.address), 120, 40, cwd=tmp_path)
    term.wait_for(lambda s: "trio" in s and "q  quit" in s, 20, "the dashboard")
    term.child.send("\t\t\t")  # pieces → peers → trackers → files
    term.wait_for(lambda s: "get/skip" in s and "trio/b.bin" in s, 10, "the files panel and its keys")
    term.child.send("]w")
    term.wait_for(lambda s: "skip" in next((line for line in s.splitlines() if "trio/b.bin" in line), ""), 10,
                  "b.bin skipped")
    rc, stty = term.wait_exit(60)  # the wanted 256 KiB (and the pieces they share) only
    assert rc == 0, term.raw[-2000:]
    assert_terminal_restored(term, stty)
    problems = payload.differences(tmp_path / "dl")
    assert problems and all(p.startswith("trio/b.bin") for p in problems), problems
