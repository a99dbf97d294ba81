"""A real Torrent, in-process, against scripted peers and other in-process torrents.

No sockets and no sleeping: peers are joined by memnet's in-memory transports, disk jobs run inline, and
the clock the torrent sees (FakeHost's ManualClock) moves only when a test advances it, so timeouts such
as snubbing are tested by moving the clock, not by waiting for it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine.harness import FakeHost, ManualClock, ScriptedPeer, candidates, make_payload, settle, until
from tests.engine.memnet import Network
from torrentpy.engine.torrent import Torrent
from torrentpy.metainfo import Magnet, Metainfo
from torrentpy.protocol import events as ev
from torrentpy.protocol.extension import UT_METADATA, UT_PEX

pytestmark = pytest.mark.timeout(30)

PIECE = 16384
# Several blocks per piece and a short last piece: assembly, bounds and the last-piece size all matter.
PIECE_LENGTH = 4 * PIECE
SIZE = 12 * PIECE_LENGTH + 5000


@pytest.fixture
def payload(tmp_path: Path) -> tuple[Metainfo, bytes]:
    return make_payload(tmp_path / "seed", SIZE, piece_length=PIECE_LENGTH)


async def started(host: FakeHost, source: Metainfo | Magnet, save_dir: Path, **options: object) -> Torrent:
    torrent = host.add(source, save_dir, **options)
    await torrent.start()
    return torrent


def downloaded_file(folder: Path, meta: Metainfo) -> bytes:
    return (folder / meta.name).read_bytes()


async def test_download_from_scripted_seeds(tmp_path: Path, net: Network, clock: ManualClock,
                                            payload: tuple[Metainfo, bytes]) -> None:
    meta, data = payload
    seeds = [ScriptedPeer(net, f"10.0.0.{i}", meta, payload=data) for i in (1, 2)]
    host = FakeHost(net, "10.0.1.1", clock=clock)
    torrent = await started(host, meta, tmp_path / "dl", seed_ratio=None)
    assert torrent.state == "downloading"
    torrent.add_candidates([s.addr for s in seeds])
    torrent.tick(clock.now)
    await until(lambda: torrent.complete, what="download complete")
    assert downloaded_file(tmp_path / "dl", meta) == data
    assert torrent.state == "seeding"
    assert sorted(host.dialled) == sorted(s.addr for s in seeds)
    # Both seeds were asked (rarest-first spreads requests over the peers that have the pieces).
    assert all(s.served_bytes > 0 for s in seeds)
    assert sum(s.served_bytes for s in seeds) >= meta.total_length
    snap = torrent.snapshot(clock.now)
    assert snap.done == meta.total_length and snap.progress == 1.0
    completed = host.events_of("completed")
    assert len(completed) == 1 and completed[0]["downloaded_pieces"] == meta.num_pieces
    # A seed that has everything is dropped once we are complete: two seeds have nothing to say.
    await until(lambda: not torrent.peers, what="seeds disconnected")


async def test_download_from_an_inprocess_seeding_torrent(tmp_path: Path, net: Network, clock: ManualClock,
                                                         payload: tuple[Metainfo, bytes]) -> None:
    meta, data = payload
    seed_host = FakeHost(net, "10.0.0.1", clock=clock)
    seeder = await started(seed_host, meta, tmp_path / "seed", seed_ratio=None)
    assert seeder.state == "seeding"
    host = FakeHost(net, "10.0.1.1", clock=clock)
    leecher = await started(host, meta, tmp_path / "dl", seed_ratio=None)
    leecher.add_candidates([seed_host.addr])
    leecher.tick(clock.now)
    await until(lambda: leecher.complete, what="download complete")
    assert downloaded_file(tmp_path / "dl", meta) == data
    up = seeder.snapshot(clock.now)
    down = leecher.snapshot(clock.now)
    # No duplicates from a single source: exactly the payload crossed, counted on both sides.
    assert up.uploaded == down.downloaded == meta.total_length
    assert host.downloaded > meta.total_length  # the session counts wire bytes: payload plus messages
    # Two seeds part: both sides drop the connection.
    await until(lambda: not leecher.peers and not seeder.peers, what="both sides disconnected")


async def test_upload_to_a_scripted_leecher(tmp_path: Path, net: Network, clock: ManualClock,
                                           payload: tuple[Metainfo, bytes]) -> None:
    meta, data = payload
    host = FakeHost(net, "10.0.0.1", clock=clock)
    seeder = await started(host, meta, tmp_path / "seed", seed_ratio=None)
    leecher = ScriptedPeer(net, "10.0.1.1", meta, have=(), listen=False)
    await leecher.dial(host.addr)
    await until(lambda: bool(leecher.of(ev.BitfieldReceived)), what="the seeder's bitfield")
    assert leecher.of(ev.BitfieldReceived)[0].bitfield.all()
    leecher.send(leecher.conn.send_interested())
    # A free unchoke slot is filled at once, not at the next rechoke.
    await until(lambda: bool(leecher.of(ev.Unchoke)), what="unchoke")
    blocks = [(i, b, min(PIECE, meta.piece_size(i) - b))
              for i in range(meta.num_pieces) for b in range(0, meta.piece_size(i), PIECE)]
    leecher.send(b"".join(leecher.conn.send_request(*blk) for blk in blocks))
    await until(lambda: len(leecher.blocks) == len(blocks), what="every block")
    received = b"".join(leecher.blocks[(i, b)] for i, b, _ in blocks)
    assert received == data
    assert seeder.snapshot(clock.now).uploaded == meta.total_length


async def test_choking_rotates_a_seeders_slots(tmp_path: Path, net: Network, clock: ManualClock,
                                              payload: tuple[Metainfo, bytes]) -> None:
    meta, _ = payload
    host = FakeHost(net, "10.0.0.1", clock=clock)
    seeder = await started(host, meta, tmp_path / "seed", seed_ratio=None, unchoke_slots=1)
    leechers = [ScriptedPeer(net, f"10.0.1.{i}", meta, have=(), listen=False) for i in range(4)]
    for leecher in leechers:
        await leecher.dial(host.addr)
        await until(lambda lc=leecher: bool(lc.of(ev.BitfieldReceived)), what="bitfield")  # type: ignore[misc]
        leecher.send(leecher.conn.send_interested())
    await until(lambda: any(lc.of(ev.Unchoke) for lc in leechers), what="an unchoke")

    def unchoked() -> set[str]:
        return {p.ip for p in seeder.snapshot(clock.now).peer_list if not p.am_choking}

    def seen_unchoked() -> set[str]:
        """The peers whose last word from the seeder was UNCHOKE: what the wire says, not the engine."""
        return {lc.ip for lc in leechers if [e for e in lc.events if isinstance(e, ev.Choke | ev.Unchoke)][-1:]
                and isinstance([e for e in lc.events if isinstance(e, ev.Choke | ev.Unchoke)][-1], ev.Unchoke)}

    # One slot, taken at once by the first interested peer; the others wait for the rechoke.
    await until(lambda: len(seen_unchoked()) == 1, what="one unchoke")
    assert unchoked() == seen_unchoked()
    waiting = next(lc for lc in leechers if lc.ip not in unchoked())
    # A choked peer's request is refused (BEP 6 reject), not queued.
    waiting.send(waiting.conn.send_request(0, 0, PIECE))
    await until(lambda: bool(waiting.of(ev.Reject)), what="reject")
    assert not waiting.of(ev.Piece)

    # Seeding, the optimistic slot joins the regular ones: slots + 1 peers are unchoked.
    seeder.tick(clock.now)
    await until(lambda: len(seen_unchoked()) == 2, what="rechoke")
    turns = [seen_unchoked()]
    for _ in range(3):  # each turn is 30 s; then the peers that waited longest take the slots
        clock.advance(29)
        seeder.tick(clock.now)  # a rechoke (one per 10 s) mid-turn: nobody is rotated out
        assert unchoked() == turns[-1]
        clock.advance(11)
        seeder.tick(clock.now)
        await until(lambda: seen_unchoked() == unchoked() != turns[-1], what="rotation")
        assert len(unchoked()) == 2
        turns.append(unchoked())
    # Round robin: two turns cover all four, and the third gives the first pair its slots back.
    assert turns[0] | turns[1] == {lc.ip for lc in leechers}
    assert turns[2] == turns[0] and turns[3] == turns[1]


async def test_snubbing_peer_is_left_for_an_honest_one(tmp_path: Path, net: Network, clock: ManualClock,
                                                      payload: tuple[Metainfo, bytes]) -> None:
    meta, data = payload
    stingy = ScriptedPeer(net, "10.0.0.1", meta, payload=data, serve=False)
    host = FakeHost(net, "10.0.1.1", clock=clock)
    torrent = await started(host, meta, tmp_path / "dl", seed_ratio=None)
    torrent.add_candidates([stingy.addr])
    torrent.tick(clock.now)
    await until(lambda: bool(stingy.requests), what="requests to the stingy peer")

    def snubbed() -> bool:
        return any(p.snubbed for p in torrent.snapshot(clock.now).peer_list)

    asked = len(stingy.requests)
    clock.advance(59)
    torrent.tick(clock.now)
    await settle(net)
    assert not snubbed()  # not yet: the timeout is a minute
    # Meanwhile each request timed out (30 s): cancelled and, the peer being the only one, asked again.
    assert len(stingy.of(ev.Cancel)) == asked
    assert len(stingy.requests) == 2 * asked
    clock.advance(2)
    torrent.tick(clock.now)
    await settle(net)
    assert snubbed()
    asked = len(stingy.requests)
    honest = ScriptedPeer(net, "10.0.0.2", meta, payload=data)
    torrent.add_candidates([honest.addr])
    torrent.tick(clock.now)
    await until(lambda: torrent.complete, what="download complete")
    assert downloaded_file(tmp_path / "dl", meta) == data
    # The snubbed peer's blocks went to the honest one, and it was asked for nothing more.
    assert honest.served_bytes >= meta.total_length
    assert len(stingy.requests) == asked


async def test_endgame_duplicates_and_cancels(tmp_path: Path, net: Network, clock: ManualClock,
                                             payload: tuple[Metainfo, bytes]) -> None:
    meta, data = payload
    slow = ScriptedPeer(net, "10.0.0.1", meta, payload=data, serve=False)
    fast = ScriptedPeer(net, "10.0.0.2", meta, payload=data)
    host = FakeHost(net, "10.0.1.1", clock=clock)
    torrent = await started(host, meta, tmp_path / "dl", seed_ratio=None)
    torrent.add_candidates([slow.addr])
    torrent.tick(clock.now)
    # The first peer's queue is deeper than the torrent: every block is out to the slow peer...
    blocks = sum(-(-meta.piece_size(i) // PIECE) for i in range(meta.num_pieces))
    await until(lambda: len(slow.requests) == blocks, what="all blocks requested of the slow peer")
    torrent.add_candidates([fast.addr])
    torrent.tick(clock.now)
    # ... so the fast peer gets them as endgame duplicates, and each one it delivers is cancelled at the slow one.
    await until(lambda: torrent.complete, what="download complete")
    assert downloaded_file(tmp_path / "dl", meta) == data
    cancels = {(c.index, c.begin, c.length) for c in slow.of(ev.Cancel)}
    assert cancels and cancels <= set(slow.requests)
    assert len(fast.requests) == len(set(fast.requests))
    assert set(fast.requests) <= set(slow.requests)


async def test_corrupt_peer_is_banned_and_the_honest_one_finishes(tmp_path: Path, net: Network,
                                                                  clock: ManualClock,
                                                                  payload: tuple[Metainfo, bytes]) -> None:
    meta, data = payload
    liar = ScriptedPeer(net, "10.0.0.1", meta, payload=data, corrupt=range(meta.num_pieces))
    honest = ScriptedPeer(net, "10.0.0.2", meta, payload=data)
    host = FakeHost(net, "10.0.1.1", clock=clock)
    torrent = await started(host, meta, tmp_path / "dl", seed_ratio=None)
    torrent.add_candidates([liar.addr])
    torrent.tick(clock.now)
    await until(lambda: bool(host.events_of("peer_banned")), what="a ban")
    torrent.add_candidates([honest.addr, liar.addr])
    torrent.tick(clock.now)
    await until(lambda: torrent.complete, what="download complete")
    assert downloaded_file(tmp_path / "dl", meta) == data
    assert host.events_of("hash_failed")
    assert {e["peer"] for e in host.events_of("peer_banned")} == {"10.0.0.1:6881"}
    assert liar.closed_reason is not None
    # Banned means never dialled again, even when offered anew.
    assert host.dialled.count(liar.addr) == 1


async def test_magnet_fetches_metadata_then_downloads(tmp_path: Path, net: Network, clock: ManualClock,
                                                     payload: tuple[Metainfo, bytes]) -> None:
    meta, data = payload
    seed = ScriptedPeer(net, "10.0.0.1", meta, payload=data, info_bytes=meta.info_bytes)
    host = FakeHost(net, "10.0.1.1", clock=clock)
    magnet = Magnet(info_hash=meta.info_hash, display_name="from a magnet", peers=(seed.addr,))
    torrent = await started(host, magnet, tmp_path / "dl", seed_ratio=None)
    assert torrent.state == "metadata"
    torrent.tick(clock.now)
    await until(lambda: torrent.complete, what="metadata, then the download")
    assert [e["name"] for e in host.events_of("metadata_received")] == [meta.name]
    assert torrent.snapshot(clock.now).name == meta.name
    assert downloaded_file(tmp_path / "dl", meta) == data
    assert [r.piece for r in seed.of(ev.MetadataRequest)] == [0]


async def test_pex_names_a_seed_we_then_download_from(tmp_path: Path, net: Network, clock: ManualClock,
                                                     payload: tuple[Metainfo, bytes]) -> None:
    meta, data = payload
    gossip = ScriptedPeer(net, "10.0.0.1", meta, have=(), extensions={UT_METADATA: 3, UT_PEX: 4})
    hidden_seed = ScriptedPeer(net, "10.0.0.9", meta, payload=data)
    host = FakeHost(net, "10.0.1.1", clock=clock)
    torrent = await started(host, meta, tmp_path / "dl", seed_ratio=None)
    torrent.add_candidates([gossip.addr])
    torrent.tick(clock.now)
    await until(lambda: bool(gossip.of(ev.ExtendedHandshake)), what="the extended handshake")
    gossip.send(gossip.conn.send_pex([hidden_seed.addr], []))
    await until(lambda: hidden_seed.addr in candidates(torrent), what="the address from PEX")
    clock.advance(1)
    torrent.tick(clock.now)
    await until(lambda: torrent.complete, what="download from the peer PEX named")
    assert host.dialled == [gossip.addr, hidden_seed.addr]
    assert downloaded_file(tmp_path / "dl", meta) == data


async def test_seed_ratio_reached_finishes(tmp_path: Path, net: Network, clock: ManualClock,
                                          payload: tuple[Metainfo, bytes]) -> None:
    meta, data = payload
    host = FakeHost(net, "10.0.0.1", clock=clock)
    seeder = await started(host, meta, tmp_path / "seed", seed_ratio=1.0)
    leecher = ScriptedPeer(net, "10.0.1.1", meta, have=(), listen=False)
    await leecher.dial(host.addr)
    await until(lambda: bool(leecher.of(ev.BitfieldReceived)), what="bitfield")
    leecher.send(leecher.conn.send_interested())
    await until(lambda: bool(leecher.of(ev.Unchoke)), what="unchoke")
    blocks = [(i, b, min(PIECE, meta.piece_size(i) - b))
              for i in range(meta.num_pieces) for b in range(0, meta.piece_size(i), PIECE)]
    leecher.send(b"".join(leecher.conn.send_request(*blk) for blk in blocks[:-1]))
    await until(lambda: len(leecher.blocks) == len(blocks) - 1, what="all but the last block")
    assert not seeder.finished  # one block short of a ratio of 1.0
    leecher.send(leecher.conn.send_request(*blocks[-1]))
    await until(lambda: seeder.finished, what="the seeding goal")
    assert seeder.state == "finished"
    assert b"".join(leecher.blocks[(i, b)] for i, b, _ in blocks) == data
    assert host.events_of("finished")
    # It parted gracefully: the leecher saw the connection end after the last block.
    await until(lambda: leecher.closed_reason is not None, what="the leecher's connection closed")


async def test_seed_time_reached_finishes(tmp_path: Path, net: Network, clock: ManualClock,
                                         payload: tuple[Metainfo, bytes]) -> None:
    meta, _ = payload
    host = FakeHost(net, "10.0.0.1", clock=clock)
    seeder = await started(host, meta, tmp_path / "seed", seed_ratio=None, seed_time_s=600)
    clock.advance(599)
    seeder.tick(clock.now)
    assert not seeder.finished
    clock.advance(2)
    seeder.tick(clock.now)
    assert seeder.finished and seeder.state == "finished"


async def test_smart_ban_finds_the_liar_among_a_pieces_sources(tmp_path: Path, net: Network, clock: ManualClock,
                                                              payload: tuple[Metainfo, bytes]) -> None:
    """A piece built from two peers fails its hash: neither can be blamed yet. When it passes later, the peer
    whose block differs from the good copy is banned, and the one whose block matched is not."""
    meta, data = payload
    liar = ScriptedPeer(net, "10.0.0.1", meta, payload=data, serve=False, corrupt=range(meta.num_pieces))
    honest = ScriptedPeer(net, "10.0.0.2", meta, payload=data, serve=False)
    host = FakeHost(net, "10.0.1.1", clock=clock)
    torrent = await started(host, meta, tmp_path / "dl", seed_ratio=None)
    torrent.add_candidates([liar.addr])
    torrent.tick(clock.now)
    blocks = sum(-(-meta.piece_size(i) // PIECE) for i in range(meta.num_pieces))
    await until(lambda: len(liar.requests) == blocks, what="every block asked of the liar")
    torrent.add_candidates([honest.addr])
    torrent.tick(clock.now)
    await until(lambda: bool(honest.requests), what="endgame requests to the second peer")
    # One piece, mixed: one block from the honest peer, the rest (corrupt) from the liar.
    index, first, length = honest.requests[0]
    honest.send_block(index, first, length)
    for i, begin, size in liar.requests:
        if i == index and begin != first:
            liar.send_block(i, begin, size)
    await until(lambda: bool(host.events_of("hash_failed")), what="the mixed piece failing")
    failed = host.events_of("hash_failed")[0]
    assert failed["piece"] == index and sorted(failed["peers"]) == ["10.0.0.1:6881", "10.0.0.2:6881"]
    assert not host.events_of("peer_banned")  # two suspects, no proof yet
    # From now on the honest peer answers what it is asked, and the piece passes with its blocks.
    honest.serve = True
    for i, begin, size in honest.requests[1:]:
        honest.send_block(i, begin, size)
    torrent.tick(clock.now)
    await until(lambda: torrent.complete, what="download complete")
    assert downloaded_file(tmp_path / "dl", meta) == data
    bans = host.events_of("peer_banned")
    # (One event per bad block today: the link closes a loop turn later, so each block finds the peer still there.)
    assert {(b["peer"], b["reason"]) for b in bans} == {("10.0.0.1:6881", f"sent a corrupt block of piece {index}")}
    assert liar.closed_reason is not None and honest.closed_reason is None
