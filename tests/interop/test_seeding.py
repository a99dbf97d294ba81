"""torrentpy seeds to real clients, found through a real tracker, and stops cleanly.

Each leecher learns the seeder only from tracker. Transmission never dials loopback peers it got from a
tracker, so the torrentpy seeder must dial it: the leecher announces first, then the seeder starts, checks
its data (so it is already seeding) and connects out to the address the tracker returned.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.interop.opentracker import OpenTracker
from tests.interop.peers.base import wait_for
from tests.interop.peers.payload import MiB, info_hash_libtorrent, make_payload, multi_file_spec
from tests.interop.peers.torrentpy_peer import torrentpy_factory

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]

PIECE = 64 * 1024



@pytest.fixture
def tracker() -> Iterator[OpenTracker]:
    """opentracker on loopback (tests.interop.opentracker), under a name that does not shadow the import."""
    t = OpenTracker()
    try:
        yield t
    finally:
        t.close()

def _tracked_torrent(payload_factory: Any, torrent_factory: Any, tracker: OpenTracker, spec: Any,
                     name: str = "payload") -> tuple[Any, Path]:
    payload = payload_factory(spec, name=name)
    torrent = torrent_factory(payload, piece_length=PIECE, trackers=[tracker.http_url])
    tracker.allow(info_hash_libtorrent(torrent))
    return payload, torrent


def _seeder(peer_registry: Any, torrent: Any, save_dir: Path, *extra: str) -> Any:
    seeder = torrentpy_factory(peer_registry)(torrent, save_dir, True, extra_args=list(extra))
    resumed = seeder.wait_event("resumed", 20)
    assert resumed["pieces"] == resumed["total"], resumed
    return seeder


def _dialled(seeder: Any, address: tuple[str, int]) -> bool:
    """The seeder holds a TCP connection whose remote end is the leecher's listen port: one it opened."""
    return any(s.proto == "tcp" and s.remote == address for s in seeder.open_sockets())


def test_seeds_libtorrent_via_opentracker(payload_factory, torrent_factory, libtorrent_peer, peer_registry,
                                          tracker, tmp_path: Path) -> None:
    payload, torrent = _tracked_torrent(payload_factory, torrent_factory, tracker, multi_file_spec(PIECE * 8))
    seeder = _seeder(peer_registry, torrent, payload.save_dir)
    leecher = libtorrent_peer(torrent, tmp_path / "lt", seed=False)
    leecher.wait_finished(40)
    assert payload.differences(tmp_path / "lt") == []
    stats = wait_for(lambda: (s := seeder.stats()) and s["uploaded"] >= payload.total_size and s, 10, 0.2,
                     "seeder to count its upload")
    assert stats["uploaded"] >= payload.total_size


def test_seeds_aria2_via_opentracker(payload_factory, torrent_factory, aria2_peer, peer_registry, tracker,
                                     tmp_path: Path) -> None:
    payload, torrent = _tracked_torrent(payload_factory, torrent_factory, tracker, 3 * MiB, "one.bin")
    _seeder(peer_registry, torrent, payload.save_dir)
    leecher = aria2_peer(torrent, tmp_path / "aria2", seed=False)
    leecher.wait_finished(40)
    assert payload.differences(tmp_path / "aria2") == []


def test_seeds_transmission_by_dialling_it(payload_factory, torrent_factory, transmission_peer, peer_registry,
                                           tracker, tmp_path: Path) -> None:
    payload, torrent = _tracked_torrent(payload_factory, torrent_factory, tracker, 3 * MiB, "one.bin")
    leecher = transmission_peer(torrent, tmp_path / "tr", seed=False)
    # Transmission's announce must reach the tracker before the seeder's, so the seeder is told about it.
    wait_for(lambda: opentracker_peers(tracker, torrent) >= 1, 15, 0.2, "transmission to announce")
    seeder = _seeder(peer_registry, torrent, payload.save_dir)
    dialled = False

    def finished() -> bool:
        nonlocal dialled
        dialled = dialled or _dialled(seeder, leecher.address)
        st = leecher.status()
        return bool(st["leftUntilDone"] == 0 and st["percentDone"] == 1)

    wait_for(finished, 40, 0.1, "transmission to finish")
    assert payload.differences(tmp_path / "tr") == []
    assert dialled, "the seeder never connected out to transmission"
    stats = wait_for(lambda: (s := seeder.stats()) and s["uploaded"] >= payload.total_size and s, 10, 0.2,
                     "seeder to count its upload")
    assert stats["torrents"][0]["state"] == "seeding", stats


def test_seeds_qbittorrent_via_opentracker(payload_factory, torrent_factory, qbittorrent_peer, peer_registry,
                                           tracker, tmp_path: Path) -> None:
    payload, torrent = _tracked_torrent(payload_factory, torrent_factory, tracker, multi_file_spec(PIECE * 8))
    _seeder(peer_registry, torrent, payload.save_dir)
    leecher = qbittorrent_peer(torrent, tmp_path / "qb", seed=False)
    leecher.wait_finished(45)
    assert payload.differences(tmp_path / "qb") == []


def opentracker_peers(tracker: OpenTracker, torrent: Path) -> int:
    """How many peers tracker lists for the torrent (a scrape would count too, but needs no whitelist)."""
    import urllib.request
    from urllib.parse import quote_from_bytes

    import bencodepy

    ih = info_hash_libtorrent(torrent)
    url = tracker.http_url.replace("/announce", "/scrape") + f"?info_hash={quote_from_bytes(ih, safe='')}"
    with urllib.request.urlopen(url, timeout=2) as resp:
        body = bencodepy.decode(resp.read(65536))
    files = body.get(b"files", {})
    entry = files.get(ih)
    if entry is None:
        return 0
    return int(entry.get(b"complete", 0)) + int(entry.get(b"incomplete", 0))


def test_sigterm_announces_stopped_and_exits_143(payload_factory, torrent_factory, peer_registry, tracker,
                                                 tmp_path: Path) -> None:
    payload, torrent = _tracked_torrent(payload_factory, torrent_factory, tracker, 1 * MiB, "one.bin")
    seeder = _seeder(peer_registry, torrent, payload.save_dir)
    wait_for(lambda: opentracker_peers(tracker, torrent) == 1, 15, 0.2, "the seeder to be listed")
    assert seeder.stop(15) == 143  # stop() sends SIGTERM to the PID and waits
    # The `stopped` announce removed it; nothing else could have, tracker keeps peers 30 minutes.
    assert opentracker_peers(tracker, torrent) == 0


def test_two_torrents_share_one_session_and_port(torrent_factory, libtorrent_peer, peer_registry,
                                                 tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = make_payload(data, multi_file_spec(PIECE * 4), name="first")
    second = make_payload(data, 2 * MiB + 7, name="second.bin")
    torrents = [torrent_factory(p, piece_length=PIECE) for p in (first, second)]
    seeder = torrentpy_factory(peer_registry)(torrents, data, True)
    wait_for(lambda: len(seeder.events("resumed")) == 2, 20, 0.1, "both torrents to be checked")
    assert all(e["pieces"] == e["total"] for e in seeder.events("resumed"))
    tcp_listeners = [s for s in seeder.listening_sockets() if s.proto == "tcp"]
    assert [s.port for s in tcp_listeners] == [seeder.port], tcp_listeners
    leechers = [libtorrent_peer(t, tmp_path / f"got{i}", seed=False, peers=[seeder.address])
                for i, t in enumerate(torrents)]
    for leecher in leechers:
        leecher.wait_finished(40)
    assert first.differences(tmp_path / "got0") == []
    assert second.differences(tmp_path / "got1") == []
    stats = wait_for(lambda: (s := seeder.stats()) and all(t["uploaded"] >= t["total_size"]
                                                            for t in s["torrents"]) and s,
                     10, 0.2, "per-torrent upload counts")
    assert {t["name"] for t in stats["torrents"]} == {"first", "second.bin"}
    assert stats["uploaded"] == sum(t["uploaded"] for t in stats["torrents"])
