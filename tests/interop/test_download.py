"""torrentpy downloads from real seeders (libtorrent, aria2, Transmission) found through opentracker.

Every result is compared byte for byte with the payload. The seeders announce first; torrentpy learns
them only from the tracker (no --peer), so these tests also cover the HTTP announce and the compact
peer list. Transmission never dials loopback peers, so its case shows torrentpy dialling out.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote_from_bytes

import bencodepy
import pytest

from tests.interop.opentracker import OpenTracker, opentracker  # noqa: F401  (fixture)
from tests.interop.peers.base import PeerProcess
from tests.interop.peers.payload import MiB, Payload, info_hash_libtorrent, multi_file_spec
from tests.interop.peers.torrentpy_peer import TorrentpyPeer, torrentpy_factory

pytestmark = [pytest.mark.interop, pytest.mark.timeout(90)]

PIECE = 64 * 1024
# A scrape answer is one small dictionary per torrent; anything bigger is not opentracker's.
SCRAPE_LIMIT_BYTES = 64 * 1024
LAYOUTS: dict[str, Any] = {
    "single": 3 * MiB + 777,
    # Scaled so that piece 8 spans a.bin's tail, all of b/c.bin and b/d/e.bin's head.
    "multi": multi_file_spec(4 * PIECE),
}


def scrape_seeders(tracker: OpenTracker, info_hash: bytes) -> int:
    """How many seeders opentracker holds for ``info_hash`` (its scrape "complete" count)."""
    query = f"?info_hash={quote_from_bytes(info_hash, safe='')}"
    url = tracker.http_url.replace("/announce", "/scrape") + query
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=2) as resp:
        reply = bencodepy.decode(resp.read(SCRAPE_LIMIT_BYTES))
    entry = reply.get(b"files", {}).get(info_hash, {})
    return int(entry.get(b"complete", 0))


def wait_registered(tracker: OpenTracker, info_hash: bytes, seeders: int, timeout_s: float = 20) -> None:
    """Wait until ``seeders`` seeders have announced, so one announce of ours finds them all."""
    deadline = time.monotonic() + timeout_s
    while (found := scrape_seeders(tracker, info_hash)) < seeders:
        if time.monotonic() > deadline:
            raise TimeoutError(f"opentracker lists {found} seeders, expected {seeders}: {tracker.log()}")
        time.sleep(0.2)


def tracked_torrent(
    payload_factory: Callable[..., Payload], torrent_factory: Callable[..., Path], tracker: OpenTracker,
    spec: Any, *, name: str = "payload", trackers: list[str] | None = None, creator: str = "libtorrent",
) -> tuple[Payload, Path, bytes]:
    """A payload and its torrent (announcing to ``trackers``, default the tracker's HTTP URL), whitelisted."""
    payload = payload_factory(spec, name=name)
    torrent = torrent_factory(payload, piece_length=PIECE, trackers=trackers or [tracker.http_url],
                              creator=creator)
    info_hash = info_hash_libtorrent(torrent)
    tracker.allow(info_hash)
    return payload, torrent, info_hash


def sources(tp: TorrentpyPeer, info_hash: bytes | None = None) -> dict[str, int]:
    """Payload bytes per peer address from a `completed` event's summary (of one torrent, if given)."""
    done = [e for e in tp.events("completed") if info_hash is None or e["info_hash"] == info_hash.hex()]
    assert len(done) == 1, (done, tp.log_tail())
    return {p["peer"]: p["downloaded"] for p in done[0]["peers"]}


def address_text(peer: PeerProcess) -> str:
    return f"{peer.address[0]}:{peer.address[1]}"


@pytest.mark.parametrize("client", ["libtorrent", "aria2", "transmission", "qbittorrent"])
def test_download_single_and_multi_file_from_seeders_found_via_opentracker(
    client: str, payload_factory, torrent_factory, libtorrent_peer, aria2_peer, transmission_peer,
    qbittorrent_peer, peer_registry, opentracker, tmp_path: Path,  # noqa: F811
) -> None:
    """Both layouts at once, in one torrentpy session: two seeders of ``client``, one per torrent."""
    factory = {"libtorrent": libtorrent_peer, "aria2": aria2_peer, "transmission": transmission_peer,
               "qbittorrent": qbittorrent_peer}[client]
    swarms = []
    for layout, spec in LAYOUTS.items():
        payload, torrent, info_hash = tracked_torrent(payload_factory, torrent_factory, opentracker, spec,
                                                      name=f"{layout}.data")
        swarms.append((payload, torrent, info_hash, factory(torrent, payload.save_dir, True)))
    for _, _, info_hash, seeder in swarms:
        seeder.wait_seeding(30)
        wait_registered(opentracker, info_hash, 1)

    tp = torrentpy_factory(peer_registry)([t for _, t, _, _ in swarms], tmp_path / "dl", False)
    # Transmission unchokes on its 10-second rechoke timer: allow for one full period.
    assert tp.wait_exit(60) == 0, tp.log_tail()
    for payload, _, info_hash, seeder in swarms:
        assert payload.differences(tmp_path / "dl") == []
        # Every byte came over a connection to the seeder's listen port: torrentpy dialled it.
        got = sources(tp, info_hash)
        assert set(got) == {address_text(seeder)}, got
        assert got[address_text(seeder)] >= payload.total_size
    resumed = {e["info_hash"]: e for e in tp.events("resumed")}
    for done in tp.events("completed"):
        assert resumed[done["info_hash"]]["pieces"] == 0
        assert done["downloaded_pieces"] == resumed[done["info_hash"]]["total"]


def test_download_mktorrent_torrent(payload_factory, torrent_factory, libtorrent_peer, peer_registry,
                                    opentracker, tmp_path: Path) -> None:  # noqa: F811
    payload, torrent, info_hash = tracked_torrent(payload_factory, torrent_factory, opentracker,
                                                  multi_file_spec(3 * PIECE), name="mk", creator="mktorrent")
    seeder = libtorrent_peer(torrent, payload.save_dir, True)
    seeder.wait_seeding(20)
    wait_registered(opentracker, info_hash, 1)
    tp = torrentpy_factory(peer_registry)(torrent, tmp_path / "dl", False)
    assert tp.wait_exit(60) == 0, tp.log_tail()
    assert payload.differences(tmp_path / "dl") == []


def test_swarm_of_three_different_seeders(payload_factory, torrent_factory, libtorrent_peer, aria2_peer,
                                          transmission_peer, peer_registry, opentracker,  # noqa: F811
                                          tmp_path: Path) -> None:
    payload, torrent, info_hash = tracked_torrent(payload_factory, torrent_factory, opentracker, 6 * MiB,
                                                  name="swarm.bin")
    # libtorrent is by far the fastest on loopback; capped, it leaves work for the other two.
    seeders = [
        libtorrent_peer(torrent, payload.save_dir, True, upload_limit_bps=1 * MiB),
        aria2_peer(torrent, payload.save_dir, True, upload_limit_bps=2 * MiB),
        transmission_peer(torrent, payload.save_dir, True),
    ]
    for seeder in seeders:
        seeder.wait_seeding(30)
    wait_registered(opentracker, info_hash, 3)

    tp = torrentpy_factory(peer_registry)(torrent, tmp_path / "dl", False)
    assert tp.wait_exit(60) == 0, tp.log_tail()
    assert payload.differences(tmp_path / "dl") == []
    got = sources(tp)
    # All three were dialled from the tracker's list and still connected at the end (Transmission,
    # unchoking only on its 10 s timer, may have sent nothing before the other two were done).
    assert set(got) == {address_text(s) for s in seeders}, got
    contributors = {addr for addr, nbytes in got.items() if nbytes > 0}
    assert len(contributors) >= 2, f"data came from only {contributors}: {tp.event('completed')}"
    assert sum(got.values()) >= payload.total_size


def test_magnet_with_tracker_fetches_metadata_from_libtorrent(
    payload_factory, torrent_factory, libtorrent_peer, peer_registry, opentracker, tmp_path: Path,  # noqa: F811
) -> None:
    payload, torrent, info_hash = tracked_torrent(payload_factory, torrent_factory, opentracker,
                                                  LAYOUTS["multi"], name="magnet.data")
    seeder = libtorrent_peer(torrent, payload.save_dir, True)
    seeder.wait_seeding(20)
    wait_registered(opentracker, info_hash, 1)
    tracker_url = quote_from_bytes(opentracker.http_url.encode(), safe="")
    magnet = f"magnet:?xt=urn:btih:{info_hash.hex()}&tr={tracker_url}"

    tp = torrentpy_factory(peer_registry)(magnet, tmp_path / "dl", False)
    assert tp.wait_exit(60) == 0, tp.log_tail()
    assert payload.differences(tmp_path / "dl") == []
    received = tp.event("metadata_received")
    assert received is not None and received["name"] == "magnet.data"
    assert set(sources(tp)) == {address_text(seeder)}


def test_magnet_with_peer_address_and_no_tracker(payload_factory, torrent_factory, libtorrent_peer,
                                                 peer_registry, tmp_path: Path) -> None:
    payload = payload_factory(LAYOUTS["single"], name="xpe.bin")
    torrent = torrent_factory(payload, piece_length=PIECE)
    seeder = libtorrent_peer(torrent, payload.save_dir, True)
    seeder.wait_seeding(20)
    info_hash = info_hash_libtorrent(torrent)
    magnet = f"magnet:?xt=urn:btih:{info_hash.hex()}&x.pe={seeder.address[0]}:{seeder.address[1]}"

    tp = torrentpy_factory(peer_registry)(magnet, tmp_path / "dl", False)
    assert tp.wait_exit(60) == 0, tp.log_tail()
    assert payload.differences(tmp_path / "dl") == []
    assert tp.event("metadata_received") is not None
    assert set(sources(tp)) == {address_text(seeder)}
