"""Drive a real Torrent in-process: a fake host, an inline executor, and scripted peers.

`FakeHost` implements `torrentpy.engine.host.Host` the way `Session` does, minus sockets: its clock is a
function the test controls, its events are recorded, and `connect()` dials through a `memnet.Network`,
where the other end is another FakeHost's torrent or a `ScriptedPeer` (a bare PeerConnection answering as
a test tells it to). The PeerLink under the torrent is the real one; only its transport is in memory.

The torrent's internals are being split into modules; the few places that must look inside a Torrent are
the adapter functions at the bottom of this file, so they are the only ones to fix when that moves.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import random
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tests.engine.memnet import Addr, Network
from torrentpy._core import Bitfield
from torrentpy.creation import create_torrent
from torrentpy.engine.alerts import Alert
from torrentpy.engine.encryption import DEFAULT_MODE, Encryption
from torrentpy.engine.ratelimit import TokenBucket
from torrentpy.engine.torrent import Torrent
from torrentpy.metainfo import Metainfo, parse_torrent
from torrentpy.net.peer import PeerLink
from torrentpy.protocol import PeerConnection
from torrentpy.protocol import events as ev

LISTEN_PORT = 6881


class ManualClock:
    """A clock that moves only when the test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


class InlineExecutor(concurrent.futures.Executor):
    """Runs each job at submit time, on the loop's thread: hashing and disk writes finish in a known
    order, and no thread races the (manual or virtual) clock."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


def peer_id_for(name: str) -> bytes:
    """A stable 20-byte peer id in the Azureus style, so runs are reproducible."""
    return b"-TP0100-" + hashlib.sha1(name.encode()).digest()[:12]


class FakeHost:
    """A Host for one or more torrents on one address of a memnet.Network (see the module docstring)."""

    version = "test"

    def __init__(self, network: Network, ip: str, *, clock: Callable[[], float] | None = None,
                 upload_rate_bps: float = 0, executor: concurrent.futures.Executor | None = None,
                 peer_id: bytes | None = None, encryption: str = DEFAULT_MODE) -> None:
        self.network = network
        self.ip = ip
        self.listen_port = LISTEN_PORT
        self.peer_id = peer_id or peer_id_for(ip)
        self.clock = clock or ManualClock()
        self.executor = executor or InlineExecutor()
        self.upload_bucket = TokenBucket(upload_rate_bps)
        self.wake_event = asyncio.Event()
        self.events: list[Alert] = []
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        self.torrents: dict[bytes, Torrent] = {}
        self.encryption = Encryption(encryption)
        self.redials: list[Addr] = []  # encrypted dials made again in plaintext
        self._tasks: set[asyncio.Task[None]] = set()
        self.links: set[PeerLink] = set()
        self.pending: dict[PeerLink, Torrent | None] = {}
        self.dialled: list[Addr] = []
        self.dht_ports: list[Addr] = []
        self.downloaded = 0
        network.listen(self.addr, self._accept)

    @property
    def addr(self) -> Addr:
        return self.ip, self.listen_port

    def add(self, source: Any, save_dir: str | Path, **options: Any) -> Torrent:
        torrent = Torrent(self, source, str(save_dir), **options)
        self.torrents[torrent.info_hash] = torrent
        self.encryption.add_torrent(torrent.info_hash)
        return torrent

    # --- Host -------------------------------------------------------------------

    def now(self) -> float:
        return self.clock()

    def emit(self, event: Alert) -> None:
        self.events.append(event)
        for listener in self.listeners:
            listener(event)

    def http_session(self) -> Any:
        raise AssertionError("in-process torrents have no trackers")

    def is_self(self, addr: Addr) -> bool:
        return addr == self.addr

    def can_connect(self) -> bool:
        return True

    def dht_port_seen(self, addr: Addr) -> None:
        self.dht_ports.append(addr)

    async def connect(self, owner: Any, addr: Addr, *, encrypted: bool | None = None) -> None:
        torrent: Torrent = owner
        self.dialled.append(addr)
        conn = new_connection(self.peer_id, torrent, initiator=True)
        link = PeerLink(conn, self, addr, incoming=False, mse=self.encryption.initiator(conn, encrypted=encrypted))
        self.pending[link] = torrent
        try:
            await self.network.open(self.ip, addr, link)
        except OSError as exc:
            self.pending.pop(link, None)
            torrent.connect_failed(addr, str(exc))

    def release_connection(self, link: PeerLink) -> None:
        self.links.discard(link)

    def count_download(self, nbytes: int) -> None:
        self.downloaded += nbytes

    # --- what Session does until a handshake names the torrent -------------------

    def _accept(self, remote: Addr) -> PeerLink:
        return PeerLink(new_connection(self.peer_id, None, initiator=False), self, remote, incoming=True,
                        mse=self.encryption.responder())

    def on_connected(self, link: PeerLink) -> None:
        self.links.add(link)
        if link.incoming:
            self.pending[link] = None
        elif link.mse is None:
            link.write(link.conn.initiate())

    def on_event(self, link: PeerLink, event: ev.Event) -> bool:
        if isinstance(event, ev.HandshakeInfoHash):
            torrent = self.torrents.get(event.info_hash)
            if torrent is None or not torrent.wants_peers():
                link.close("handshake for a torrent we do not serve")
                return False
            if link.skey is not None and link.skey != event.info_hash:
                link.close("the handshake names another torrent than the encrypted handshake did")
                return False
            meta = torrent.meta
            link.conn.accept_info_hash(event.info_hash, meta.num_pieces if meta else 0,
                                       meta.piece_length if meta else 0, meta.total_length if meta else 0)
            self.pending[link] = torrent
            link.write(link.conn.initiate())
            return True
        if isinstance(event, ev.HandshakeComplete):
            owner = self.pending.pop(link, None)
            if owner is None:
                link.close("handshake without a torrent")
                return False
            if is_banned_id(owner, event.peer_id):
                link.close("banned peer")
                return False
            owner.attach(link)
            if link.closed:
                return False
            peer = owner.peers.get(link.addr)
            if peer is not None:
                owner.start_peer(peer)
            return True
        if isinstance(event, ev.ProtocolError):
            owner = self.pending.pop(link, None)
            if owner is not None:
                owner.emit("peer_error", peer=f"{link.addr[0]}:{link.addr[1]}", reason=event.reason)
                if not link.incoming:
                    owner.connect_failed(link.addr, event.reason)
            link.close(event.reason)
            return False
        return True

    def on_closed(self, link: PeerLink, reason: str) -> None:
        owner = self.pending.pop(link, None)
        if owner is not None and not link.incoming:
            if link.mse is not None and self.encryption.policy.retry_plain and self.torrents.get(owner.info_hash):
                self.redials.append(link.addr)
                task = asyncio.ensure_future(self.connect(owner, link.addr, encrypted=False))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            else:
                owner.connect_failed(link.addr, reason)
        self.links.discard(link)

    def on_writable(self, link: PeerLink) -> None:
        pass

    def events_of(self, kind: str) -> list[dict[str, Any]]:
        """The alerts of one kind, as their --json records."""
        return [e.as_dict() for e in self.events if e.kind == kind]


def new_connection(peer_id: bytes, torrent: Torrent | None, *, initiator: bool) -> PeerConnection:
    """A PeerConnection as Session._new_connection makes one."""
    meta = torrent.meta if torrent is not None else None
    return PeerConnection(
        info_hash=torrent.info_hash if torrent is not None else None, peer_id=peer_id,
        num_pieces=meta.num_pieces if meta else 0, piece_length=meta.piece_length if meta else 0,
        total_length=meta.total_length if meta else 0, initiator=initiator,
        metadata_size=len(meta.info_bytes) if meta else None,
    )


class ScriptedPeer:
    """A remote peer that is a bare PeerConnection plus a few rules a test sets.

    It serves blocks of `payload` for the pieces in `have` (unless `serve` is False: it then withholds
    them, recording the requests), corrupts the pieces in `corrupt`, answers ut_metadata from
    `info_bytes`, unchokes whoever is interested when `unchoke` is True, and records every event.
    It can listen on an address (the torrent dials it) or dial a FakeHost itself."""

    def __init__(self, network: Network, ip: str, meta: Metainfo | None, *, info_hash: bytes | None = None,
                 payload: bytes = b"", have: Iterable[int] | str = "all", serve: bool = True,
                 corrupt: Iterable[int] = (), unchoke: bool = True, info_bytes: bytes | None = None,
                 extensions: dict[str, int] | None = None, listen: bool = True) -> None:
        self.network = network
        self.ip = ip
        self.meta = meta
        self.info_hash = info_hash if info_hash is not None else (meta.info_hash if meta else None)
        self.payload = payload
        n = meta.num_pieces if meta else 0
        self.have = Bitfield.full(n) if have == "all" else Bitfield(n)
        if not isinstance(have, str):
            for i in have:
                self.have.set(i)
        self.serve = serve
        self.corrupt = set(corrupt)
        self.unchoke = unchoke
        self.info_bytes = info_bytes
        self.extensions = extensions
        self.peer_id = peer_id_for(f"scripted {ip}")
        self.events: list[ev.Event] = []
        self.requests: list[tuple[int, int, int]] = []
        self.blocks: dict[tuple[int, int], bytes] = {}  # what it downloaded: (index, begin) → data
        self.served_bytes = 0
        self.link: PeerLink | None = None
        self.closed_reason: str | None = None
        self.announce_on_handshake = True
        if listen:
            network.listen(self.addr, self._accept)

    @property
    def addr(self) -> Addr:
        return self.ip, LISTEN_PORT

    def _conn(self, *, initiator: bool) -> PeerConnection:
        meta = self.meta
        return PeerConnection(
            info_hash=self.info_hash if initiator else None, peer_id=self.peer_id,
            num_pieces=meta.num_pieces if meta else 0, piece_length=meta.piece_length if meta else 0,
            total_length=meta.total_length if meta else 0, initiator=initiator, extensions=self.extensions,
            metadata_size=len(self.info_bytes) if self.info_bytes else None,
        )

    def _accept(self, remote: Addr) -> PeerLink:
        self.link = PeerLink(self._conn(initiator=False), self, remote, incoming=True)
        return self.link

    async def dial(self, addr: Addr) -> PeerLink:
        self.link = PeerLink(self._conn(initiator=True), self, addr, incoming=False)
        await self.network.open(self.ip, addr, self.link)
        return self.link

    @property
    def conn(self) -> PeerConnection:
        assert self.link is not None, "not connected"
        return self.link.conn

    def send(self, data: bytes) -> None:
        assert self.link is not None, "not connected"
        self.link.write(data)

    def of(self, kind: type[ev.Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    # --- PeerHandler --------------------------------------------------------------

    def on_connected(self, link: PeerLink) -> None:
        # With MSE the handshake travels inside it (the initiator's IA): a plain one here would land in the
        # middle of the encrypted handshake's padding.
        if not link.incoming and link.mse is None:
            link.write(link.conn.initiate())

    def on_event(self, link: PeerLink, event: ev.Event) -> bool:
        conn = link.conn
        if isinstance(event, ev.Piece):  # its data is a view into the connection's buffer: keep a copy
            event = ev.Piece(event.index, event.begin, bytes(event.data))
        self.events.append(event)
        if isinstance(event, ev.HandshakeInfoHash):
            meta = self.meta
            conn.accept_info_hash(event.info_hash, meta.num_pieces if meta else 0,
                                  meta.piece_length if meta else 0, meta.total_length if meta else 0)
            link.write(conn.initiate())
        elif isinstance(event, ev.HandshakeComplete):
            if not self.announce_on_handshake:
                return True
            out = []
            if conn.supports_extensions:
                out.append(conn.send_extended_handshake({"v": "scripted", "p": LISTEN_PORT}))
            if self.meta is not None:
                out.append(conn.send_bitfield(self.have))
            link.writelines(out)
        elif isinstance(event, ev.Interested):
            if self.unchoke and conn.am_choking:
                link.write(conn.send_unchoke())
        elif isinstance(event, ev.Request):
            self.requests.append((event.index, event.begin, event.length))
            if self.serve and not conn.am_choking and self.have[event.index]:
                self.send_block(event.index, event.begin, event.length)
        elif isinstance(event, ev.Piece):
            self.blocks[(event.index, event.begin)] = bytes(event.data)
        elif isinstance(event, ev.MetadataRequest):
            info = self.info_bytes
            if info is None:
                link.write(conn.send_metadata_reject(event.piece))
            else:
                start = event.piece * 16384
                link.write(conn.send_metadata_data(event.piece, len(info), info[start : start + 16384]))
        elif isinstance(event, ev.ProtocolError):
            link.close(event.reason)
            return False
        return True

    def send_block(self, index: int, begin: int, length: int) -> None:
        assert self.meta is not None
        start = index * self.meta.piece_length + begin
        data = bytearray(self.payload[start : start + length])
        if index in self.corrupt:
            data[0] ^= 0xFF
        self.served_bytes += length
        self.send(self.conn.send_piece_header(index, begin, length) + bytes(data))

    def on_closed(self, link: PeerLink, reason: str) -> None:
        self.closed_reason = reason

    def on_writable(self, link: PeerLink) -> None:
        pass


# --- files ------------------------------------------------------------------------------------


def make_payload(folder: Path, size: int, *, piece_length: int = 16384, name: str = "payload.bin",
                 seed: int = 1) -> tuple[Metainfo, bytes]:
    """A file of `size` reproducible bytes in `folder` and its torrent (no trackers)."""
    data = random.Random(seed).randbytes(size)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    meta = parse_torrent(create_torrent(str(folder / name), piece_length=piece_length, creation_date=0))
    return meta, data


async def until(predicate: Callable[[], bool], *, timeout_s: float = 5.0, what: str = "") -> None:
    """Let the loop run until `predicate()` holds. The clock the torrent sees does not move; the wall-clock
    bound only stops a hung test (the first check of a torrent runs in a thread, so yield real time too)."""
    deadline = time.monotonic() + timeout_s
    spins = 0
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        spins += 1
        await asyncio.sleep(0 if spins % 50 else 0.001)


async def settle(network: Network, *, timeout_s: float = 5.0) -> None:
    """Let the loop run until nothing is in flight on the network and a few turns passed quietly (a reply
    may be one callback away from being written)."""
    quiet = 0
    deadline = time.monotonic() + timeout_s
    while quiet < 5:
        if time.monotonic() > deadline:
            raise AssertionError("the network never went quiet")
        await asyncio.sleep(0)
        quiet = 0 if network.busy() else quiet + 1


# --- adapters: the only places that look inside a Torrent -----------------------------------


def seed_rng(torrent: Torrent, seed: int) -> None:
    """Make a torrent's random choices (picker, choker, super-seeder) reproducible: they share `rng`."""
    torrent.rng.seed(seed)


def is_banned_id(torrent: Torrent, peer_id: bytes) -> bool:
    """What Session asks at the handshake."""
    return peer_id in torrent.banlist.banned_ids


def candidates(torrent: Torrent) -> set[Addr]:
    return set(torrent.candidates)
