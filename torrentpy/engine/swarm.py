"""A torrent's peer set: the addresses it may dial, the dials under way, the connected peers and
what each has exchanged with us, and the health of each connection.

What a peer may download or upload is not decided here (engine/download.py, engine/upload.py); nor who
is banned: the torrent answers that through `is_banned`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from torrentpy.engine.peer import Peer
from torrentpy.engine.pex import PEX_INTERVAL_S, PexSchedule
from torrentpy.engine.sources import (
    SOURCE_INCOMING,
    SOURCE_MANUAL,
    SOURCES,
    PeerSources,
    source_cap,
)
from torrentpy.protocol.extension import PEX_CONNECTABLE, PEX_ENCRYPTION, PEX_HOLEPUNCH, PEX_SEED, UT_PEX

if TYPE_CHECKING:
    from torrentpy.engine.host import Host
    from torrentpy.metainfo import Metainfo
    from torrentpy.net.peer import PeerHandler, PeerLink
    from torrentpy.protocol.peer import PeerConnection

log = logging.getLogger("torrentpy")

Addr = tuple[str, int]

# No message at all for this long: the connection is dead (BEP 3 suggests 2 minutes).
IDLE_TIMEOUT_S = 150.0
KEEPALIVE_INTERVAL_S = 60.0
CONNECT_TIMEOUT_S = 10.0
# Peer addresses kept to dial later; more from PEX or trackers are dropped.
MAX_CANDIDATES = 2000
# Connections accepted beyond max_peers: room for peers dialling in while we are full of our own dials.
INCOMING_SLACK = 5
# How long an address waits before it is dialled again: after a dial (in case it fails), and after
# a connection we made to it closed.
RETRY_AFTER_DIAL_S = 60.0
RETRY_AFTER_CLOSE_S = 30.0
# When the peer set is full, a connection that has exchanged no payload either way for this long is
# closed to make room for a new peer: slow, stalled or idle peers cannot keep out an honest one.
EVICT_AFTER_S = 20.0


def totals_key(peer: Peer) -> Addr:
    """The key a peer's payload totals are kept under, the same for its incoming and outgoing connections."""
    # An accepted connection comes from an ephemeral port; the listen port from the extension
    # handshake names the same peer as a connection we made to it.
    port = peer.conn.peer_listen_port if peer.link.incoming else None
    return (peer.addr[0], port) if port else peer.addr


def _nothing() -> None:
    pass


class Swarm:
    def __init__(
        self,
        host: Host,
        handler: PeerHandler,
        *,
        max_peers: int,
        spawn: Callable[[Coroutine[Any, Any, None]], object],
        wants_peers: Callable[[], bool],
        is_banned: Callable[[Addr], bool],
        on_departed: Callable[[Peer], None],
        shares_peers: Callable[[], bool] = lambda: False,
        pex_interval_s: float = PEX_INTERVAL_S,
        count_download: Callable[[int], None] | None = None,
    ) -> None:
        """`handler` receives the events of attached links and is the owner the host dials for;
        `spawn` runs a dial as a task of the torrent; `wants_peers` says whether the torrent takes
        connections at all; `on_departed` lets the rest of the torrent forget a peer that closed;
        `shares_peers` says whether we may tell peers about each other (PEX: a public torrent whose
        metadata we have, BEP 27); `count_download` sees every byte read from an attached link (the
        torrent's download limit; the host's own count when there is none)."""
        self.host = host
        self.handler = handler
        self.max_peers = max_peers
        self._spawn = spawn
        self._wants_peers = wants_peers
        self._is_banned = is_banned
        self._on_departed = on_departed
        self._shares_peers = shares_peers
        self._count_download = count_download or host.count_download
        self.sources = PeerSources()
        self.pex = PexSchedule(pex_interval_s)
        self.peers: dict[Addr, Peer] = {}
        self.connecting: set[Addr] = set()
        self.candidates: dict[Addr, float] = {}  # addr → earliest retry time
        # Told when there is something to dial or a peer arrives: a session that stopped ticking an idle
        # torrent (engine/idle.py) ticks it again.
        self.on_wake: Callable[[], None] = _nothing
        # Payload exchanged with peers that have since disconnected, keyed like peer_totals(), so a summary
        # written after the download still credits every peer (and one that reconnected is counted once).
        self.departed_totals: dict[Addr, tuple[str, int, int]] = {}

    # --- candidates -------------------------------------------------------------

    def add_candidates(self, addrs: list[Addr], source: str = SOURCE_MANUAL) -> None:
        """Addresses to dial, and where they came from (one of sources.SOURCES: "tracker", "dht", "pex", …)."""
        if source not in SOURCES:
            raise ValueError(f"unknown peer source {source!r}")
        for addr in addrs:
            addr = (str(addr[0]), int(addr[1]))
            if self._is_banned(addr) or self.host.is_self(addr) or not 0 < addr[1] < 65536:
                continue
            if addr not in self.candidates and len(self.candidates) >= MAX_CANDIDATES:
                return  # PEX or trackers flooding us with addresses
            self.candidates.setdefault(addr, 0.0)
            self.sources.record(addr, source)
        if len(self.sources) > 2 * MAX_CANDIDATES:
            self.sources.prune([*self.candidates, *self.peers])  # banned and long-gone addresses
        self.on_wake()

    def connect_more(self, now: float) -> None:
        if not self._wants_peers():
            return
        self.on_wake()
        room = self.max_peers - len(self.peers) - len(self.connecting)
        if room <= 0 and not self.connecting:
            # Full: one useless peer gives way to an address to try (one a tick, as dials may fail).
            if any(retry_at <= now for retry_at in self.candidates.values()) and self.evict_one(now):
                room = 1
        if room <= 0:
            return
        due = [addr for addr, retry_at in self.candidates.items() if retry_at <= now]
        if not due:
            return
        # A peer that dialled us is connected already under its listen address: don't dial it too.
        connected = {totals_key(p) for p in self.peers.values()}
        per_source = self.connections_by_source()
        for addr in self.sources.dial_order(due):
            if room <= 0 or not self.host.can_connect():
                break
            if addr in self.peers or addr in self.connecting or addr in connected or self._is_banned(addr):
                continue
            if self.host.is_self(addr):
                continue
            source = self.sources.source_of(addr)
            if per_source.get(source, 0) >= source_cap(source, self.max_peers):
                continue
            per_source[source] = per_source.get(source, 0) + 1
            self.candidates[addr] = now + RETRY_AFTER_DIAL_S  # back off if this attempt fails
            self.connecting.add(addr)
            room -= 1
            self._spawn(self.host.connect(self.handler, addr))

    def connections_by_source(self) -> dict[str, int]:
        """Open connections and dials under way, per source of the address."""
        counts: dict[str, int] = {}
        for peer in self.peers.values():
            counts[peer.source] = counts.get(peer.source, 0) + 1
        for addr in self.connecting:
            source = self.sources.source_of(addr)
            counts[source] = counts.get(source, 0) + 1
        return counts

    def connect_failed(self, addr: Addr, reason: str) -> None:
        self.connecting.discard(addr)
        log.debug("connect to %s:%d failed: %s", addr[0], addr[1], reason)

    # --- connected peers --------------------------------------------------------

    def attach(self, link: PeerLink) -> None:
        """A connection (ours or accepted) whose handshake named this torrent."""
        self.connecting.discard(link.addr)
        self.on_wake()
        if self._is_banned(link.addr):
            link.close("banned peer")
            return
        if not self._wants_peers():
            link.close("too many peers")
            return
        now = self.host.now()
        if len(self.peers) >= self.max_peers + INCOMING_SLACK and not self.evict_one(now):
            link.close("too many peers")
            return
        if link.addr in self.peers:
            link.close("duplicate connection")
            return
        peer_id = link.conn.peer_id
        if peer_id and any(p.conn.peer_id == peer_id for p in self.peers.values()):
            # Both sides dialled each other (each learned the other from the tracker): keep one.
            link.close("duplicate connection (same peer id)")
            return
        if link.incoming:
            source = SOURCE_INCOMING
            self.sources.record_incoming(link.addr[0], peer_id)
        else:
            source = self.sources.source_of(link.addr)
            self.sources.handshaken.add(link.addr)
        peer = Peer(link=link, connected_at=now, last_recv_at=now, last_sent_at=now, source=source)
        self.peers[link.addr] = peer
        log.debug("peer %s:%d connected (%s, %s)", link.addr[0], link.addr[1], "incoming" if link.incoming else
                  "outgoing", f"encrypted handshake, {link.encryption} stream" if link.encryption else "plain")
        link.handler = self.handler
        link.on_bytes_in = self._count_download
        self.candidates.pop(link.addr, None)

    def evict_one(self, now: float) -> bool:
        """Close the longest-connected peer that has exchanged no payload with us in EVICT_AFTER_S,
        dropping it from the set at once so its slot is free now; False if every peer earns its slot."""
        worst: Peer | None = None
        for peer in self.peers.values():
            if peer.downloaded or peer.uploaded or now - peer.connected_at < EVICT_AFTER_S:
                continue
            if worst is None or peer.connected_at < worst.connected_at:
                worst = peer
        if worst is None:
            return False
        worst.link.close("making room for another peer")
        self.on_closed(worst.link, "making room for another peer")
        return True

    def on_closed(self, link: PeerLink, reason: str) -> None:
        peer = self.peers.get(link.addr)
        if peer is None or peer.link is not link:
            return
        del self.peers[link.addr]
        key = totals_key(peer)
        client, down, up = self.departed_totals.get(key, ("", 0, 0))
        self.departed_totals[key] = (peer.client or client, down + peer.downloaded, up + peer.uploaded)
        self._on_departed(peer)
        self.pex.forget(peer)
        log.debug("peer %s:%d closed: %s", link.addr[0], link.addr[1], reason)
        if not link.incoming and not self._is_banned(link.addr):
            self.candidates[link.addr] = self.host.now() + RETRY_AFTER_CLOSE_S
        elif link.addr not in self.candidates:
            self.sources.forget(link.addr)
        self.host.release_connection(link)

    def extended_handshake(self, conn: PeerConnection, meta: Metainfo | None, *, reqq: int) -> list[bytes]:
        """Our BEP 10 handshake, sent right after the BitTorrent one (none if the peer has no extensions);
        `reqq` is how many requests the peer may queue with us."""
        if not conn.supports_extensions:
            return []
        if meta is not None and meta.private:
            conn.drop_extension(UT_PEX)  # BEP 27: no peer exchange on a private torrent
        extra: dict[str, Any] = {"v": f"torrentpy {self.host.version}", "reqq": reqq, "p": self.host.listen_port}
        if meta is not None:
            extra["metadata_size"] = len(meta.info_bytes)
        return [conn.send_extended_handshake(extra)]

    def check_health(self, now: float) -> list[Peer]:
        """Close connections silent for too long and keep quiet ones alive; returns the peers left open."""
        alive = []
        for peer in list(self.peers.values()):
            if now - peer.last_recv_at > IDLE_TIMEOUT_S:
                peer.link.close("idle for too long")
                continue
            if now - peer.last_sent_at > KEEPALIVE_INTERVAL_S:
                peer.link.write(peer.conn.send_keepalive())
                peer.last_sent_at = now
            alive.append(peer)
        return alive

    def peer_totals(self) -> dict[Addr, tuple[str, int, int]]:
        """(client, downloaded, uploaded) payload bytes per peer this session, connected or gone,
        keyed by (ip, listen port) when the port is known."""
        totals = dict(self.departed_totals)
        for peer in self.peers.values():
            key = totals_key(peer)
            client, down, up = totals.get(key, ("", 0, 0))
            totals[key] = (peer.client or client, down + peer.downloaded, up + peer.uploaded)
        return totals

    # --- peer exchange (BEP 11), the sending side ---------------------------------

    def pex_listing(self) -> dict[Addr, int]:
        """Our connected peers as PEX lists them: by listen address (a peer that dialled us is listed
        only once its extended handshake gave its port), with BEP 11 flags."""
        listing: dict[Addr, int] = {}
        for peer in self.peers.values():
            if peer.link.closed:
                continue
            if peer.link.incoming:
                port = peer.conn.peer_listen_port
                if not port:
                    continue
                addr, flags = (peer.addr[0], port), 0
            else:
                addr, flags = peer.addr, PEX_CONNECTABLE
            if peer.is_seed:
                flags |= PEX_SEED
            if "ut_holepunch" in peer.conn.peer_extensions:
                flags |= PEX_HOLEPUNCH
            if peer.link.encryption:  # it speaks MSE (libtorrent's reading of "prefers encryption" too)
                flags |= PEX_ENCRYPTION
            listing[addr] = flags
        return listing

    def send_pex(self, now: float) -> int:
        """Send each peer that offered ut_pex (and to which we offered it) what changed in our peer set
        since its last message, when its interval has passed. Returns how many messages went out."""
        if not self._shares_peers():
            return 0
        listing: dict[Addr, int] | None = None
        sent = 0
        for peer in list(self.peers.values()):
            conn = peer.conn
            if peer.link.closed or UT_PEX not in conn.extensions or UT_PEX not in conn.peer_extensions:
                continue
            if listing is None:
                listing = self.pex_listing()
            message = self.pex.message(peer, now, listing, exclude=frozenset({peer.addr, totals_key(peer)}))
            if message is None:
                continue
            peer.link.write(conn.send_pex(message.added, message.dropped, message.flags))
            peer.last_sent_at = now
            sent += 1
        return sent
