"""Kill -9 in the middle of a download, start again: torrentpy finishes, fetching no verified piece twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop.peers.base import wait_for
from tests.interop.peers.payload import info_hash_libtorrent, multi_file_spec
from tests.interop.peers.torrentpy_peer import torrentpy_factory

pytestmark = [pytest.mark.interop, pytest.mark.timeout(90)]

PIECE = 64 * 1024
# ~3.8 MiB over five files; at 512 KiB/s (after the rate limiter's initial burst) the first run is
# killed about a third of the way in.
SPEC = multi_file_spec(10 * PIECE)
FIRST_RUN_RATE = "512K"


def verified_pieces(done_bytes: int, total_bytes: int) -> int:
    """Pieces behind a `done` byte count: every piece is PIECE bytes except a shorter last one."""
    full, rest = divmod(done_bytes, PIECE)
    # A remainder can only be the short last piece (done counts verified pieces only).
    assert rest in (0, total_bytes % PIECE), (done_bytes, total_bytes)
    return full + (1 if rest else 0)


def test_kill9_then_restart_downloads_no_verified_piece_again(
    payload_factory, torrent_factory, libtorrent_peer, peer_registry, tmp_path: Path
) -> None:
    payload = payload_factory(SPEC, name="resume.data")
    torrent = torrent_factory(payload, piece_length=PIECE)
    seeder = libtorrent_peer(torrent, payload.save_dir, True)
    seeder.wait_seeding(20)
    dl = tmp_path / "dl"
    make = torrentpy_factory(peer_registry)

    first = make(torrent, dl, False, peers=[seeder.address],
                 extra_args=["--max-download-rate", FIRST_RUN_RATE])
    total = first.wait_event("resumed", 20)["total"]
    stats = wait_for(
        lambda: (s := first.stats()) and s["torrents"][0]["done"] >= payload.total_size // 3 and s,
        30, 0.05, "a third of the payload",
    )
    first.kill9()
    assert first.process is not None and first.process.returncode == -9
    done = first.stats()["torrents"][0]["done"]  # the last line written before the kill
    assert stats["torrents"][0]["done"] <= done < payload.total_size, "the kill did not land mid-download"
    at_kill = verified_pieces(done, payload.total_size)
    assert 0 < at_kill < total
    assert first.event("completed") is None

    second = make(torrent, dl, False, peers=[seeder.address])
    assert second.wait_exit(60) == 0, second.log_tail()
    assert payload.differences(dl) == []
    resumed = second.event("resumed")
    assert resumed is not None and resumed["total"] == total
    assert resumed["pieces"] >= at_kill, (resumed, at_kill)
    completed = second.event("completed")
    assert completed is not None
    assert completed["downloaded_pieces"] == total - resumed["pieces"]
    # The bytes moved agree: at most the missing pieces (the short last one may be among them).
    received = sum(p["downloaded"] for p in completed["peers"])
    assert received <= (total - resumed["pieces"]) * PIECE, (received, resumed, total)
    assert info_hash_libtorrent(torrent).hex() == completed["info_hash"]


# The first start hashes all 3 GiB; on a loaded 2-core machine that has taken over a minute.
@pytest.mark.timeout(300)
def test_stop_during_a_long_check_is_prompt_and_keeps_the_resume_file(peer_registry, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys
    import time

    # A sparse 3 GiB file: cheap to make, but hashing it all takes seconds on two cores.
    data = tmp_path / "seed" / "big.bin"
    data.parent.mkdir()
    with open(data, "wb") as fh:
        fh.truncate(3 << 30)
    torrent = tmp_path / "big.torrent"
    subprocess.run([sys.executable, "-m", "torrentpy", "create", str(data), "--piece-size", "4M",
                    "-o", str(torrent)], check=True, stdout=subprocess.DEVNULL)
    make = torrentpy_factory(peer_registry)
    first = make(torrent, data.parent, True)
    first.wait_event("resumed", 240)  # a timeout for a hung check, not a speed claim
    first.stop()
    resume_files = list((data.parent / ".torrentpy").glob("*.resume"))
    assert len(resume_files) == 1
    saved = resume_files[0].read_bytes()

    # A newer mtime makes the resume file stale for this file: the next start re-hashes all of it.
    os.utime(data, (time.time() + 5, time.time() + 5))
    second = make(torrent, data.parent, True)
    second.wait_event("checking", 20)
    # stop() sends SIGTERM and escalates to SIGKILL (-9) after 10 s, so 143 means torrentpy exited by
    # itself; no "resumed" means it did so without finishing the check first.
    assert second.stop() == 143
    assert second.event("resumed") is None, "the stop request waited for the whole check"
    assert resume_files[0].read_bytes() == saved, "an interrupted check overwrote the resume file"


# Where the five kills land, as fractions of the payload verified by the leecher.
KILL_AT = (0.10, 0.30, 0.50, 0.75, 0.95)
# The seeder's upload limit: slow enough that the leecher's 0.1 s stats lines see each mark go by
# (a piece takes 0.25 s) and the whole run stays near 15 s.
SEEDER_RATE_BPS = 256 * 1024


@pytest.mark.timeout(150)
def test_five_kill9s_cost_the_seeder_only_the_pieces_in_flight(
    payload_factory, torrent_factory, libtorrent_peer, peer_registry, tmp_path: Path
) -> None:
    payload = payload_factory(SPEC, name="resume5.data")
    torrent = torrent_factory(payload, piece_length=PIECE)
    seeder = libtorrent_peer(torrent, payload.save_dir, True, upload_limit_bps=SEEDER_RATE_BPS)
    seeder.wait_seeding(20)
    dl = tmp_path / "dl"
    make = torrentpy_factory(peer_registry)
    in_flight: list[int] = []  # per kill: the most pieces the leecher had started and not yet verified
    kept = 0  # verified pieces the last restart found on disk
    for mark in KILL_AT:
        leecher = make(torrent, dl, False, peers=[seeder.address], interval_s=0.1)
        resumed = leecher.wait_event("resumed", 20)
        # No verified piece is lost to a kill -9: each restart keeps at least what the last one had verified.
        assert resumed["pieces"] >= kept, (mark, resumed, kept)
        total = resumed["total"]
        target = int(mark * total)
        wait_for(
            lambda: (s := leecher.stats()) and s["torrents"][0]["pieces_have"] >= target,  # noqa: B023
            60, 0.02, f"{target} of {total} pieces",
        )
        leecher.kill9()
        assert leecher.process is not None and leecher.process.returncode == -9
        assert leecher.event("completed") is None, f"the kill at {mark:.0%} came after the end"
        lines = [r["torrents"][0] for r in leecher.read() if r.get("type") == "stats"]
        kept = max(line["pieces_have"] for line in lines)  # verified before the kill (the last line shows it)
        assert kept < total
        in_flight.append(max(line["pieces_downloading"] for line in lines))

    last = make(torrent, dl, False, peers=[seeder.address])
    assert last.wait_exit(60) == 0, last.log_tail()
    assert payload.differences(dl) == []
    resumed = last.event("resumed")
    assert resumed is not None and resumed["pieces"] >= kept, (resumed, kept)
    completed = last.event("completed")
    assert completed is not None and completed["downloaded_pieces"] == resumed["total"] - resumed["pieces"]

    # The seeder's own count of payload it sent, once the last leecher has gone: every byte of the payload
    # once, plus what each kill threw away. A kill throws away only blocks of pieces the leecher had
    # requested and not yet verified and written (partly received pieces, and blocks still in the sockets);
    # a verified piece is on disk and the restart keeps it (asserted above), so it is never sent again.
    # Each such piece costs at most one piece length; the leecher reported how many it had started.
    status = seeder.wait_status(lambda s: s["num_peers"] == 0, 20, "to see the last leecher go")
    sent = status["total_payload_upload"]
    bound = payload.total_size + sum(in_flight) * PIECE
    assert payload.total_size <= sent <= bound, (sent, payload.total_size, in_flight)
