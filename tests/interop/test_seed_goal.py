"""A seeder at the default --seed-ratio 1.0 leaves only after its one leecher has everything it asked for.

It used to count its last blocks as uploaded when it handed them to the transport and then close at once;
the leecher's unread HAVEs made the kernel reset the connection and drop the unsent tail, and the only
leecher sat at 90-99 % for ever (half the runs of a 20 MiB torrent under load). Many small runs in a row
give that race many chances; small pieces make many blocks and HAVEs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop.peers.payload import MiB
from tests.interop.peers.torrentpy_peer import torrentpy_factory

# 20 runs of ~1.5 s each; the bound is for a loaded two-core machine, not a speed claim.
pytestmark = [pytest.mark.interop, pytest.mark.timeout(240)]

RUNS = 20
PIECE = 16 * 1024
# Runs whose leecher is libtorrent rather than torrentpy: the seeder's exit must not depend on who leeches.
LIBTORRENT_RUNS = {4, 11, 18}
# A correct run completes in about a second; a stranded leecher never does.
DONE_TIMEOUT_S = 30


def test_default_ratio_seeder_never_strands_its_only_leecher(
    payload_factory, torrent_factory, libtorrent_peer, peer_registry, tmp_path: Path
) -> None:
    payload = payload_factory(3 * MiB, name="goal.bin")
    torrent = torrent_factory(payload, piece_length=PIECE)
    make = torrentpy_factory(peer_registry)
    for run in range(RUNS):
        # Default options apart from staying on loopback and speaking JSON to the test.
        seeder = make(torrent, payload.save_dir, True, default_goal=True, console_script=True)
        resumed = seeder.wait_event("resumed", 20)
        assert resumed["pieces"] == resumed["total"], resumed
        got = tmp_path / f"got{run}"
        if run in LIBTORRENT_RUNS:
            lt = libtorrent_peer(torrent, got, seed=False, peers=[seeder.address])
            lt.wait_finished(DONE_TIMEOUT_S)
            lt.stop()
        else:
            leecher = make(torrent, got, False, peers=[seeder.address], console_script=True)
            assert leecher.wait_exit(DONE_TIMEOUT_S) == 0, f"run {run}: {leecher.log_tail()}"
            assert leecher.event("completed") is not None, f"run {run}: leecher never completed"
        assert payload.differences(got) == [], f"run {run}"
        # Its one leecher has everything: the seeder has met its ratio and leaves by itself.
        assert seeder.wait_exit(DONE_TIMEOUT_S) == 0, f"run {run}: {seeder.log_tail()}"
        finished = seeder.event("finished")
        assert finished is not None, f"run {run}: seeder exited without meeting its goal"
        last = seeder.stats()
        assert last is not None and last["torrents"][0]["uploaded"] >= payload.total_size, (run, last)
