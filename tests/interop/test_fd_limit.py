"""`torrentpy add` under a low `ulimit -n`: many files, several peers, and still a clean, complete run.

The connection cap follows RLIMIT_NOFILE and the storage gives back idle file descriptors when the process
runs out, so 64 descriptors are enough for a 100-file torrent from three seeders; a restart with the same
limit finds everything verified."""

from __future__ import annotations

from pathlib import Path

from tests.interop.peers.torrentpy_peer import TorrentpyPeer

NOFILE = 64
PIECE = 16 * 1024
# 100 files of 5 KiB: about three files a piece, so pieces span files and every file gets opened.
SPEC = {f"d{i // 10}/f{i:03}.bin": 5 * 1024 + i for i in range(100)}


class _Limited(TorrentpyPeer):
    def argv(self) -> list[str]:
        # prlimit execs the command: the PID the fixture stops is torrentpy's own.
        return ["prlimit", f"--nofile={NOFILE}:{NOFILE}", "--", *super().argv()]


def test_a_low_descriptor_limit_still_downloads_everything(
    payload_factory, torrent_factory, libtorrent_peer, peer_registry, tmp_path: Path
) -> None:
    payload = payload_factory(SPEC, name="many-files")
    torrent = torrent_factory(payload, piece_length=PIECE)
    seeders = [libtorrent_peer(torrent, payload.save_dir, True, upload_limit_bps=256 * 1024) for _ in range(3)]
    for seeder in seeders:
        seeder.wait_seeding(30)
    dl = tmp_path / "dl"

    def run(name: str) -> _Limited:
        peer = _Limited(peer_registry.work_dir, torrent, dl, False, name=name,
                        peers=[s.address for s in seeders])
        peer_registry.peers.append(peer)
        return peer.start()

    first = run("limited-1")
    assert first.wait_exit(120) == 0, first.log_tail()
    assert payload.differences(dl) == []
    log = first.log_tail()
    assert "Traceback" not in log and "Too many open files" not in log, log
    completed = first.event("completed")
    assert completed is not None and sum(p["downloaded"] for p in completed["peers"]) > 0

    again = run("limited-2")
    assert again.wait_exit(60) == 0, again.log_tail()
    resumed = again.event("resumed")
    assert resumed is not None and resumed["pieces"] == resumed["total"], resumed
    assert again.event("completed")["downloaded_pieces"] == 0  # type: ignore[index]

