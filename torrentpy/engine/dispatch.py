"""Peer events → the parts of a torrent that handle them: one handler per event type, as a table.

A kind missing from the table is a KeyError, and tests/engine/test_dispatch.py checks that the table
covers every event a PeerConnection produces after the handshake."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from torrentpy.clients import client_name
from torrentpy.engine.banlist import BanList
from torrentpy.engine.download import Downloader
from torrentpy.engine.host import Host
from torrentpy.engine.metadata import MetadataExchange
from torrentpy.engine.peer import Peer
from torrentpy.engine.picker import Block
from torrentpy.engine.sources import SOURCE_PEX
from torrentpy.engine.upload import Uploader
from torrentpy.metainfo import Metainfo
from torrentpy.protocol import events as ev

Addr = tuple[str, int]


class EventTarget(Protocol):
    """The parts of a torrent (engine.torrent.Torrent) that peer events reach."""

    @property
    def host(self) -> Host: ...
    @property
    def meta(self) -> Metainfo | None: ...
    @property
    def downloader(self) -> Downloader: ...
    @property
    def uploader(self) -> Uploader: ...
    @property
    def banlist(self) -> BanList: ...
    @property
    def metadata(self) -> MetadataExchange: ...
    def add_candidates(self, addrs: list[Addr], source: str = ...) -> None: ...
    def _protocol_error(self, peer: Peer, reason: str) -> bool: ...


# A handler of one kind of peer event; False means the connection was closed.
Handler = Callable[[EventTarget, Peer, Any, float], bool]


def listen_addr(peer: Peer) -> Addr | None:
    """Where an incoming peer says it listens (BEP 10 `p`): the address it is known by in the swarm."""
    port = peer.conn.peer_listen_port
    return (peer.addr[0], port) if peer.link.incoming and port else None


def _unchoke(t: EventTarget, peer: Peer, event: ev.Unchoke, now: float) -> bool:
    # A fresh unchoke is a fresh chance: a snubbing peer that chokes and unchokes us again
    # may have spare upload now.
    peer.snubbed = False
    peer.unchoked_us_at = now
    t.downloader.fill_requests(peer, now)
    return True


def _have(t: EventTarget, peer: Peer, event: ev.Have, now: float) -> bool:
    new = peer.bitfield is None or not peer.bitfield[event.index]
    if not t.downloader.on_have(peer, event.index, now):
        return False
    if new:
        t.uploader.peer_has(peer, event.index, now)
    return True


def _bitfield(t: EventTarget, peer: Peer, event: ev.BitfieldReceived, now: float) -> bool:
    if not t.downloader.on_bitfield(peer, event.bitfield):
        return False
    t.uploader.peer_bitfield(peer, event.bitfield, now)
    return True


def _ext_handshake(t: EventTarget, peer: Peer, event: ev.ExtendedHandshake, now: float) -> bool:
    conn = peer.conn
    if conn.peer_client:
        peer.client = client_name(conn.peer_id or b"")
    if t.banlist.is_banned_identity(conn.peer_id, listen_addr(peer)):
        # A banned peer dialling back in comes from a fresh source port; the listen port it
        # announces still gives it away.
        peer.link.close("banned peer")
        return False
    if t.metadata.fetching and conn.peer_metadata_size:
        t.metadata.request(peer)
    return True


def _pex(t: EventTarget, peer: Peer, event: ev.PexPeers, now: float) -> bool:
    if t.meta is None or not t.meta.private:
        t.add_candidates(event.added, source=SOURCE_PEX)
    return True


def _metadata(t: EventTarget, peer: Peer, event: ev.Event, now: float) -> bool:
    error = t.metadata.on_event(peer, event, t.meta.info_bytes if t.meta is not None else None)
    return True if error is None else t._protocol_error(peer, error)


def _ignore(t: EventTarget, peer: Peer, event: Any, now: float) -> bool:
    return True


def _dht_port(t: EventTarget, peer: Peer, event: ev.Port, now: float) -> bool:
    t.host.dht_port_seen((peer.addr[0], event.port))  # BEP 5: the peer runs a DHT node there
    return True


def _reject(t: EventTarget, peer: Peer, event: ev.Reject, now: float) -> bool:
    t.downloader.on_reject(peer, Block(event.index, event.begin, event.length))
    return True


def _choke(t: EventTarget, peer: Peer, event: ev.Choke, now: float) -> bool:
    t.downloader.on_choked(peer)
    return True


def _interested(t: EventTarget, peer: Peer, event: ev.Interested, now: float) -> bool:
    t.uploader.on_interested(peer, now)
    return True


def _cancel(t: EventTarget, peer: Peer, event: ev.Cancel, now: float) -> bool:
    t.uploader.on_cancel(peer, event)
    return True


# Every event a PeerConnection produces after the handshake, most frequent first.
EVENT_HANDLERS: dict[type[ev.Event], Handler] = {
    ev.Piece: lambda t, peer, event, now: t.downloader.on_piece(peer, event, now),
    ev.Have: _have,
    ev.Request: lambda t, peer, event, now: t.uploader.on_request(peer, event),
    ev.BitfieldReceived: _bitfield,
    ev.Unchoke: _unchoke,
    ev.Choke: _choke,
    ev.Interested: _interested,
    ev.NotInterested: _ignore,
    ev.Cancel: _cancel,
    ev.Reject: _reject,
    ev.AllowedFast: _ignore,  # BEP 6 allowed-fast pieces are not requested while choked (yet)
    ev.ProtocolError: lambda t, peer, event, now: t._protocol_error(peer, event.reason),
    ev.ExtendedHandshake: _ext_handshake,
    ev.PexPeers: _pex,
    ev.MetadataRequest: _metadata,
    ev.MetadataData: _metadata,
    ev.MetadataReject: _metadata,
    ev.HandshakeComplete: _ignore,
    ev.KeepAlive: _ignore,
    ev.Port: _dht_port,
    ev.Suggest: _ignore,
    ev.UnknownExtended: _ignore,
}
