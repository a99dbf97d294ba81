"""The Downloader against a fake torrent: blocks in, hash then write, bans applied.

Peers are fake links that record what we send; the torrent is a plain object with the attributes the
DownloadOwner protocol names, so these tests run without sockets or a session."""

from __future__ import annotations

import asyncio
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from torrentpy._core import Bitfield, sha1
from torrentpy.engine.accounting import RateMeter
from torrentpy.engine.alerts import TorrentAlert
from torrentpy.engine.banlist import BanList
from torrentpy.engine.download import Downloader
from torrentpy.engine.peer import Peer
from torrentpy.engine.picker import STALE_REQUEST_S, Block, PiecePicker
from torrentpy.protocol import events as ev

BS = 16 * 1024
PIECE = 2 * BS
PIECES = 3


def payload(index: int) -> bytes:
    return bytes([index + 1]) * PIECE


@dataclass
class FakeMeta:
    piece_length: int = PIECE
    num_pieces: int = PIECES
    total_length: int = PIECE * PIECES

    def piece_size(self, index: int) -> int:
        return PIECE

    def piece_hash(self, index: int) -> bytes:
        return sha1(payload(index))


@dataclass
class FakeStorage:
    written: dict[int, bytes] = field(default_factory=dict)

    def write_piece_sync(self, index: int, data: bytearray) -> None:
        self.written[index] = bytes(data)


class FakeConn:
    am_interested = True
    peer_choking = False
    supports_fast = True
    peer_id = b""
    peer_listen_port = 0

    def __init__(self, sent: list[tuple[Any, ...]]) -> None:
        self.sent = sent

    def send_request(self, i: int, b: int, n: int) -> tuple[Any, ...]:
        return ("request", i, b, n)

    def send_cancel(self, i: int, b: int, n: int) -> tuple[Any, ...]:
        return ("cancel", i, b, n)

    def send_have(self, i: int) -> tuple[Any, ...]:
        return ("have", i)

    def send_haves(self, indexes: list[int]) -> tuple[Any, ...]:
        return ("haves", *indexes)

    def send_not_interested(self) -> tuple[Any, ...]:
        return ("not_interested",)


class FakeLink:
    incoming = False
    closed = False

    def __init__(self, name: str) -> None:
        self.addr = (name, 6881)
        self.sent: list[tuple[Any, ...]] = []
        self.conn = FakeConn(self.sent)

    def write(self, msg: tuple[Any, ...]) -> None:
        self.sent.append(msg)

    def writelines(self, msgs: list[tuple[Any, ...]]) -> None:
        self.sent.extend(msgs)

    def close(self, reason: str) -> None:
        self.closed = True

    def requests(self) -> list[tuple[int, int]]:
        return [(m[1], m[2]) for m in self.sent if m[0] == "request"]


class FakeHost:
    executor = ThreadPoolExecutor(1)


class FakeTorrent:
    def __init__(self) -> None:
        self.host = FakeHost()
        self.meta = FakeMeta()
        self.picker = PiecePicker(PIECES, PIECE, PIECE * PIECES, block_size=BS, rng=random.Random(0))
        self.storage = FakeStorage()
        self.peers: dict[tuple[str, int], Peer] = {}
        self.paused = False
        self.state = "downloading"
        self.down = RateMeter()
        self.downloaded = 0
        self.resume_dirty = False
        self.start_save: asyncio.Task[Any] | None = None
        self.now = 0.0
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.bans: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self.tasks: list[asyncio.Task[Any]] = []
        self.completed = False
        self.banlist = BanList(block_size=BS)
        self.downloader = Downloader(self, self.banlist)  # type: ignore[arg-type]

    def emit(self, alert: TorrentAlert) -> None:
        fields = {k: v for k, v in alert.as_dict().items() if k not in ("event", "torrent", "info_hash")}
        self.events.append((alert.kind, fields))

    def fail(self, message: str) -> None:
        self.errors.append(message)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.append(task)
        return task

    def ban(self, peer: Peer, reason: str) -> None:
        self.banlist.ban(peer.addr)
        self.bans.append((peer.addr[0], reason))

    def _protocol_error(self, peer: Peer, reason: str) -> bool:
        self.errors.append(f"{peer.addr[0]}: {reason}")
        return False

    def _update_interest(self, peer: Peer) -> None:
        pass

    def _on_download_complete(self, *, announce: bool) -> None:
        self.completed = True

    def connect(self, name: str, *, requesting: bool = True, has: str = "1" * PIECES) -> Peer:
        """A peer with the pieces drawn in `has`; `requesting=False`: the test picks its requests by hand."""
        link = FakeLink(name)
        link.conn.am_interested = requesting
        peer = Peer(link=link, connected_at=0.0)  # type: ignore[arg-type]
        peer.bitfield = Bitfield.from_string(has)
        self.picker.add_peer(peer.addr, peer.bitfield)
        self.peers[peer.addr] = peer
        return peer

    async def deliver(self, peer: Peer, index: int, begin: int, data: bytes | None = None) -> bool:
        block = data if data is not None else payload(index)[begin : begin + BS]
        ok = self.downloader.on_piece(peer, ev.Piece(index, begin, block), self.now)
        await asyncio.gather(*self.tasks)
        self.tasks.clear()
        return ok


async def test_blocks_are_requested_received_verified_and_written() -> None:
    t = FakeTorrent()
    a = t.connect("A")
    t.downloader.fill_requests(a, 0.0)
    link: FakeLink = a.link  # type: ignore[assignment]
    assert sorted(link.requests()) == [(i, b) for i in range(PIECES) for b in (0, BS)]
    for index, begin in link.requests():
        assert await t.deliver(a, index, begin)
    assert t.storage.written == {i: payload(i) for i in range(PIECES)}
    assert t.completed and t.resume_dirty and t.downloaded == PIECE * PIECES
    assert t.downloader.pieces_downloaded == PIECES and not t.downloader.piece_buffers
    # A seed needs none of our pieces: its HAVEs wait for the tick and go out together.
    assert not [m for m in link.sent if m[0] in ("have", "haves")] and sorted(a.pending_haves) == list(range(PIECES))
    t.downloader.check_requests(t.now)
    (haves,) = [m for m in link.sent if m[0] in ("have", "haves")]  # in one write
    assert haves[0] == "haves" and sorted(haves[1:]) == list(range(PIECES)) and not a.pending_haves


async def test_no_piece_is_written_before_the_start_save_is_done() -> None:
    # The resume file and its reserve are saved while the torrent dials (engine/torrent.py): data
    # written before them could fill the disk the resume save needs.
    t = FakeTorrent()
    saved = asyncio.Event()
    t.start_save = asyncio.ensure_future(saved.wait())
    a = t.connect("A")
    t.downloader.fill_requests(a, 0.0)
    link: FakeLink = a.link  # type: ignore[assignment]
    index = link.requests()[0][0]
    assert t.downloader.on_piece(a, ev.Piece(index, 0, payload(index)[:BS]), t.now)
    assert t.downloader.on_piece(a, ev.Piece(index, BS, payload(index)[BS:]), t.now)
    await asyncio.sleep(0.05)
    assert t.storage.written == {}
    saved.set()
    await asyncio.gather(*t.tasks)
    assert t.storage.written == {index: payload(index)}


async def test_a_peer_that_lacks_pieces_gets_each_have_at_once() -> None:
    t = FakeTorrent()
    a = t.connect("A")
    b = t.connect("B", requesting=False, has="0" * PIECES)
    t.downloader.fill_requests(a, 0.0)
    link: FakeLink = a.link  # type: ignore[assignment]
    index, begin = link.requests()[0]
    await t.deliver(a, index, begin)
    await t.deliver(a, index, begin + BS)
    assert [m[1] for m in b.link.sent if m[0] == "have"] == [index]  # type: ignore[attr-defined]


async def test_an_unrequested_block_is_a_protocol_error() -> None:
    t = FakeTorrent()
    a = t.connect("A")
    assert not await t.deliver(a, 0, 0)
    assert t.errors == ["A: sent a block we did not request (piece 0)"]


async def test_a_corrupt_piece_from_one_peer_bans_it() -> None:
    t = FakeTorrent()
    a = t.connect("A", requesting=False)
    t.picker.pick(a.addr, 2, now=0.0)  # both blocks of one piece
    index = t.picker.outstanding(a.addr)[0].index
    await t.deliver(a, index, 0)
    await t.deliver(a, index, BS, b"\x00" * BS)
    assert [k for k, _ in t.events] == ["hash_failed"]
    assert t.bans == [("A", f"sent corrupt data for piece {index}")]
    assert index not in t.storage.written and t.downloader.failed_pieces == 1


async def _fail_piece_one(t: FakeTorrent) -> tuple[Peer, Peer]:
    """Piece 1 from A (block 0) and B (block 1, corrupt): it fails its hash."""
    a = t.connect("A", requesting=False, has="010")
    b = t.connect("B", requesting=False, has="010")
    assert blocks(t.picker.pick(a.addr, 1, now=0.0)) == [(1, 0)]
    assert blocks(t.picker.pick(b.addr, 1, now=0.0)) == [(1, BS)]
    await t.deliver(a, 1, 0)
    await t.deliver(b, 1, BS, b"\x00" * BS)
    kind, fields = t.events[-1]
    assert kind == "hash_failed" and fields["piece"] == 1 and sorted(fields["peers"]) == ["A:6881", "B:6881"]
    assert t.bans == [] and t.banlist.strikes == {a.addr: 1, b.addr: 1}
    return a, b


async def _fetch_piece_one_from(t: FakeTorrent, peer: Peer) -> None:
    assert blocks(t.picker.pick(peer.addr, 2, now=1.0)) == [(1, 0), (1, BS)]
    await t.deliver(peer, 1, 0)
    await t.deliver(peer, 1, BS)
    assert t.storage.written == {1: payload(1)}


def blocks(picked: list[Block]) -> list[tuple[int, int]]:
    return [(blk.index, blk.begin) for blk in picked]


async def test_smart_ban_finds_the_liar_once_the_piece_passes() -> None:
    t = FakeTorrent()
    a, _ = await _fail_piece_one(t)
    await _fetch_piece_one_from(t, a)  # B's block differs from the good copy
    assert t.bans == [("B", "sent a corrupt block of piece 1")]


async def test_a_liar_gone_before_it_is_found_out_is_banned_by_address() -> None:
    t = FakeTorrent()
    a, b = await _fail_piece_one(t)
    del t.peers[b.addr]
    t.picker.remove_peer(b.addr)
    await _fetch_piece_one_from(t, a)
    assert t.bans == [] and b.addr in t.banlist
    assert t.events[-1] == ("peer_banned", {"peer": "B:6881", "reason": "sent a corrupt block of piece 1"})


async def test_no_requests_while_hashing_is_behind() -> None:
    t = FakeTorrent()
    a = t.connect("A")
    t.downloader.hashing.update(range(10**4))  # far more than MAX_PENDING_WRITE_BYTES waiting
    t.downloader.fill_requests(a, 0.0)
    assert a.link.requests() == []  # type: ignore[attr-defined]
    t.downloader.hashing.clear()
    t.downloader.fill_requests(a, 0.0)
    assert a.link.requests()  # type: ignore[attr-defined]


async def test_a_snubbing_peer_gives_its_blocks_back() -> None:
    t = FakeTorrent()
    a, b = t.connect("A"), t.connect("B")
    t.downloader.fill_requests(a, 0.0)
    held = t.picker.outstanding_count(a.addr)
    assert held
    t.downloader.check_requests(61.0)  # SNUB_TIMEOUT_S without a block
    assert a.snubbed and t.picker.outstanding_count(a.addr) == 0 and len(a.released) == held
    assert t.picker.outstanding_count(b.addr) == held  # asked of B instead


async def test_a_peer_idle_at_the_partial_piece_bound_is_asked_again_when_a_piece_passes() -> None:
    t = FakeTorrent()
    t.picker.max_partial = 1  # one piece buffer at a time
    # A has one piece we lack: it asks first, then has nothing more to give. B waits behind it.
    a, b = t.connect("A", has="100"), t.connect("B")
    t.downloader.fill_requests(a, 0.0)
    t.downloader.fill_requests(b, 0.0)
    link_a: FakeLink = a.link  # type: ignore[assignment]
    link_b: FakeLink = b.link  # type: ignore[assignment]
    assert link_a.requests() == [(0, 0), (0, BS)] and link_b.requests() == []  # B waits: the bound holds
    for index, begin in link_a.requests():
        await t.deliver(a, index, begin)
    # The piece passed and left the bound: B is asked for the next one now, not at the next tick, though
    # A (which had waited longer, and gets nothing) came first.
    assert len(link_b.requests()) == 2 and {i for i, _ in link_b.requests()} <= {1, 2}
    assert len(link_a.requests()) == 2
    assert len(t.downloader.piece_buffers) + len(t.downloader.hashing) <= 1


async def test_a_peer_idle_at_the_bound_races_a_slow_peer_on_the_tick() -> None:
    t = FakeTorrent()
    t.picker.max_partial = 1
    slow, fast = t.connect("S"), t.connect("F")
    t.downloader.fill_requests(slow, 0.0)
    t.downloader.fill_requests(fast, 0.0)
    link_s: FakeLink = slow.link  # type: ignore[assignment]
    link_f: FakeLink = fast.link  # type: ignore[assignment]
    assert len(link_s.requests()) == 2 and link_f.requests() == []
    held = link_s.requests()
    t.now = STALE_REQUEST_S
    t.downloader.check_requests(t.now)  # the 1 Hz tick
    assert sorted(link_f.requests()) == sorted(held)  # the slow peer's blocks, raced
    for index, begin in link_f.requests():
        await t.deliver(fast, index, begin)
    assert t.storage.written[held[0][0]] == payload(held[0][0])
    assert sorted((m[1], m[2]) for m in link_s.sent if m[0] == "cancel") == sorted(held)
