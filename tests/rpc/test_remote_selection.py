"""Debian's `transmission-remote` (3.00) chooses files and their priorities (-G/-g, -ph/-pn/-pl) on a
multi-file torrent that `torrentpy daemon` then downloads from a libtorrent 2.1 seeder.

Checked three ways: on disk (wanted files byte-identical; the others absent, or holding only the bytes of
pieces they share with a wanted file, sparse elsewhere), in torrent-get (wanted, priorities, fileStats,
sizeWhenDone/leftUntilDone/percentDone over the wanted part, as Transmission counts them) and in
`transmission-remote -f`'s own listing. A restart of the daemon keeps the choice.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.interop.peers.base import LOOPBACK
from tests.rpc.daemon_process import DaemonProcess
from tests.rpc.test_transmission_remote import remote
from torrentpy.metainfo import load
from torrentpy.storage.layout import Layout

pytestmark = [pytest.mark.interop, pytest.mark.timeout(180)]

PIECE = 64 * 1024
SPEC = {"a.bin": 3 * PIECE + 100, "b.bin": 4 * PIECE, "c.bin": 2 * PIECE + 5, "d.bin": 3 * PIECE,
        "e.bin": 5000}
WANTED = {"a.bin", "c.bin"}
PRIORITY = {"a.bin": 1, "b.bin": -1, "c.bin": 0, "d.bin": 0, "e.bin": 0}
# transmission-remote -f prints a file's priority with these words.
PRIORITY_WORD = {1: "High", 0: "Normal", -1: "Low"}


def remote_files(daemon: DaemonProcess, torrent_id: int) -> dict[str, tuple[int, str, str]]:
    """`transmission-remote -t N -f` as {file name: (its number, priority word, Get column)}."""
    out = remote(daemon, "-t", str(torrent_id), "-f")
    rows = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\d+):\s+\S+\s+(High|Normal|Low)\s+(Yes|No)\s+.*?(\S+)$", line)
        if m:
            rows[Path(m.group(4)).name] = (int(m.group(1)), m.group(2), m.group(3))
    assert len(rows) == len(SPEC), out
    return rows


def numbers(rows: dict[str, tuple[int, str, str]], names: set[str] | list[str]) -> str:
    return ",".join(str(rows[n][0]) for n in sorted(names))


def check_choice(daemon: DaemonProcess, torrent_id: int) -> list[dict]:
    """torrent-get and `-f` both say what was chosen; returns torrent-get's `files`/`fileStats` row."""
    (row,) = daemon.torrents("files", "fileStats", "wanted", "priorities", ids=[torrent_id])
    names = [Path(f["name"]).name for f in row["files"]]
    assert sorted(names) == sorted(SPEC)
    assert row["wanted"] == [int(n in WANTED) for n in names]
    assert row["priorities"] == [PRIORITY[n] for n in names]
    assert [(s["wanted"], s["priority"]) for s in row["fileStats"]] == [(n in WANTED, PRIORITY[n]) for n in names]
    listing = remote_files(daemon, torrent_id)
    assert {n: (p, g) for n, (_, p, g) in listing.items()} == \
        {n: (PRIORITY_WORD[PRIORITY[n]], "Yes" if n in WANTED else "No") for n in SPEC}
    return [row]


def test_remote_selects_files_and_priorities(daemon_factory, payload_factory, torrent_factory,
                                             libtorrent_peer) -> None:
    payload = payload_factory(SPEC, name="sel")
    torrent = torrent_factory(payload, piece_length=PIECE)
    meta = load(str(torrent))
    seeder = libtorrent_peer(torrent, payload.save_dir, True)
    seeder.wait_seeding(20)

    daemon = daemon_factory()
    # The .torrent names no tracker: nothing is downloaded before the seeder dials the daemon.
    assert "success" in remote(daemon, "-a", str(torrent))
    files = remote_files(daemon, 1)
    assert {g for _, _, g in files.values()} == {"Yes"}
    remote(daemon, "-t", "1", "-G", "all")
    remote(daemon, "-t", "1", "-g", numbers(files, WANTED))
    remote(daemon, "-t", "1", "-ph", numbers(files, ["a.bin", "c.bin"]))
    remote(daemon, "-t", "1", "-pn", numbers(files, ["c.bin"]))
    remote(daemon, "-t", "1", "-pl", numbers(files, ["b.bin"]))
    check_choice(daemon, 1)

    layout = Layout(meta)
    index = {f.path[-1]: i for i, f in enumerate(meta.files) if not f.padding}
    wanted_pieces = {p for n in WANTED for p in layout.piece_range_of_file(index[n])}
    wanted_bytes = sum(min(PIECE, meta.total_length - p * PIECE) for p in wanted_pieces)
    (before,) = daemon.torrents("sizeWhenDone", "leftUntilDone", "totalSize", ids=[1])
    assert before["sizeWhenDone"] == wanted_bytes < before["totalSize"] == meta.total_length
    assert before["leftUntilDone"] == wanted_bytes

    seeder.add_peer(LOOPBACK, daemon.peer_port)
    done = daemon.wait_torrent(1, lambda r: r["leftUntilDone"] == 0, what="done with the wanted files")
    assert done["percentDone"] == 1.0 and done["error"] == 0
    listed = remote(daemon, "-l")
    assert re.search(r"^\s*1\s+100%", listed, re.M), listed

    got = daemon.download_dir
    for n in WANTED:
        assert (got / "sel" / n).read_bytes() == (payload.save_dir / "sel" / n).read_bytes(), n
    shared_of: dict[str, int] = {}
    for n in set(SPEC) - WANTED:
        f = meta.files[index[n]]
        path = got / "sel" / n
        shared = 0
        expected = bytearray(f.length)
        original = (payload.save_dir / "sel" / n).read_bytes()
        for p in layout.piece_range_of_file(index[n]):
            lo, hi = max(0, p * PIECE - f.offset), min(f.length, (p + 1) * PIECE - f.offset)
            if p in wanted_pieces:
                expected[lo:hi] = original[lo:hi]
                shared += hi - lo
        shared_of[n] = shared
        if not path.exists():
            continue
        data = path.read_bytes()
        # Only what the shared pieces put there; the rest never written (a hole reads as zeros).
        assert data == bytes(expected)[:len(data)] and set(bytes(expected)[len(data):]) <= {0}, n
        assert path.stat().st_blocks * 512 <= shared + 2 * PIECE, f"{n} is not sparse"
    assert shared_of["e.bin"] == 0 and not (got / "sel" / "e.bin").exists()

    (row,) = check_choice(daemon, 1)
    completed = {Path(f["name"]).name: s["bytesCompleted"] for f, s in zip(row["files"], row["fileStats"],
                                                                              strict=True)}
    assert {n: completed[n] for n in WANTED} == {n: SPEC[n] for n in WANTED}
    # An unwanted file is complete only as far as whole pieces inside the shared ones reach.
    assert all(completed[n] <= shared_of[n] for n in set(SPEC) - WANTED), completed

    assert daemon.stop() == 0
    again = daemon_factory()
    check_choice(again, 1)
    again.wait_torrent(1, lambda r: r["leftUntilDone"] == 0 and r["percentDone"] == 1.0, what="done again")
