"""The snub rule with the real constants, seen on the real dashboard.

A scripted peer has every piece, unchokes torrentpy, takes its requests and never answers one. After
SNUB_TIMEOUT_S (60 s) without a block while requests are out, torrentpy marks it snubbed (the `S` flag in
the peers tab), hands its requests to the picker again and sends it no new ones, while an honest
libtorrent seeder keeps the download going.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.hostile import HostilePeer, TorrentData
from tests.interop.peers.base import LOOPBACK, free_port
from tests.interop.peers.payload import MiB
from tests.interop.test_dashboard_pty import PtyTerminal, pty_terminal  # noqa: F401
from torrentpy.engine.requests import SNUB_TIMEOUT_S

# SNUB_TIMEOUT_S of waiting, plus slack for a loaded machine.
pytestmark = [pytest.mark.interop, pytest.mark.timeout(SNUB_TIMEOUT_S + 60)]

TORRENTPY = Path(sys.executable).with_name("torrentpy")
# 8 MiB at 64 KiB/s: 128 s, so the download is still going when the snub is seen.
SIZE = 8 * MiB
HONEST_BPS = 64 * 1024
FLAGS = re.compile(r"^[DdUuK?IS]+$")


@pytest.fixture
def snubber() -> Iterator[list[HostilePeer]]:
    started: list[HostilePeer] = []
    yield started
    for peer in started:
        peer.stop()


def _flags(row: str) -> str:
    return next((tok for tok in row.split() if FLAGS.match(tok)), "")


def test_a_peer_that_stops_sending_is_snubbed_and_gets_no_new_requests(
    payload_factory, torrent_factory, libtorrent_peer, pty_terminal, snubber,  # noqa: F811
    tmp_path: Path,
) -> None:
    payload = payload_factory(SIZE, name="snub.bin", seed=3)
    torrent = torrent_factory(payload, piece_length=64 * 1024)
    hostile = HostilePeer(TorrentData.from_payload(torrent, payload), "snub").start()
    snubber.append(hostile)
    seeder = libtorrent_peer(torrent, payload.save_dir, True, upload_limit_bps=HONEST_BPS)
    seeder.wait_seeding(20)
    argv = [str(TORRENTPY), "add", str(torrent), "-o", str(tmp_path / "dl"), "--seed-ratio", "0",
            "--bind", LOOPBACK, "--listen-port", str(free_port()),
            "--peer", hostile.address_text, "--peer", f"{LOOPBACK}:{seeder.port}"]
    term: PtyTerminal = pty_terminal(argv, 140, 40, cwd=tmp_path)
    term.wait_for(lambda s: "snub.bin" in s, 20, "the torrent")
    hostile.wait_for(lambda: hostile.requests_received > 0, 20, "a block request")
    term.child.send("\t")  # pieces → peers
    address = hostile.address_text

    def hostile_row() -> str:
        return next((line for line in term.screen.display if address in line), "")

    term.wait_for(lambda s: address in s, 20, "the scripted peer in the peers table")
    assert "S" not in _flags(hostile_row()), hostile_row()
    term.wait_for(lambda s: "S" in _flags(hostile_row()), SNUB_TIMEOUT_S + 30, f"{address} flagged S")
    asked = hostile.requests_received
    progress = seeder.status()["total_payload_upload"]
    # The download goes on from the honest seeder, and the snubbed peer is asked for nothing new.
    seeder.wait_status(lambda s: s["total_payload_upload"] >= progress + 4 * 64 * 1024, 30,
                       "more upload from the honest seeder")
    term.pump()
    assert "S" in _flags(hostile_row()), hostile_row()
    assert hostile.requests_received == asked, (asked, hostile.requests_received)
    assert payload.differences(tmp_path / "dl"), "the download should still be going"
    term.child.send("q")
    rc, _stty = term.wait_exit(20)
    assert rc == 0, term.raw[-2000:]
