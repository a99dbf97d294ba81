"""The asyncio side of one peer connection: bytes in and out of a transport.

All protocol logic lives in `torrentpy.protocol.peer.PeerConnection` (and, for an encrypted handshake,
`torrentpy.protocol.mse`); all decisions in the engine. This adapter only moves bytes, runs them through
the RC4 stream a peer may have chosen, and reports flow-control changes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Protocol

from torrentpy._core import RC4
from torrentpy.protocol.events import Event
from torrentpy.protocol.mse import MseInitiator, MseResponder, method_name
from torrentpy.protocol.peer import PeerConnection

# Receive straight into one preallocated buffer per connection: uvloop reads into
# it without allocating a bytes object per read (BufferedProtocol).
RECV_BUFFER_BYTES = 256 * 1024
# A connection starts with a buffer of this size, four times larger each time a read fills it up to the
# full one: a crowd of idle or slow peers then costs a few pages each, not 256 KiB (bytearray zeroes, so
# touches, every page it allocates). Fifty seeders sharing 300 MB/s filled 64 KiB now and then, and
# 256 KiB each held 12.5 MiB.
FIRST_RECV_BUFFER_BYTES = 16 * 1024
# From a graceful close: how long our buffered blocks get to drain and the peer to close its side after
# our FIN. Clients close at once on EOF, and we only ever owe a peer its request pipeline (about 2-3 s of
# its rate); this bounds a peer that never closes.
LINGER_S = 5.0


class PeerHandler(Protocol):
    def on_connected(self, link: PeerLink) -> None: ...
    def on_event(self, link: PeerLink, event: Event) -> bool: ...  # False: stop processing, link closed
    def on_closed(self, link: PeerLink, reason: str) -> None: ...
    def on_writable(self, link: PeerLink) -> None: ...


class PeerLink(asyncio.BufferedProtocol):
    """One TCP connection to a peer."""

    def __init__(self, conn: PeerConnection, handler: PeerHandler, addr: tuple[str, int], *, incoming: bool,
                 mse: MseInitiator | MseResponder | None = None) -> None:
        self.conn = conn
        self.handler = handler
        self.addr = addr
        self.incoming = incoming
        # The encrypted handshake (or, incoming, the check for one) until it finishes; then None. Still set
        # on a link that closed before it finished: the session retries such a dial in plaintext.
        self.mse = mse
        self.skey: bytes | None = None  # the info-hash the encrypted handshake named
        self.encryption = ""  # "rc4" or "plaintext" after an encrypted handshake, "" without one
        self._encrypt: RC4 | None = None
        self._decrypt: RC4 | None = None
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray(FIRST_RECV_BUFFER_BYTES)
        self._view = memoryview(self._buffer)
        self.write_paused = False
        self.closed = False
        self.close_reason = ""
        self.lost = False  # the transport is gone (connection_lost ran)
        self.on_bytes_in: Callable[[int], None] | None = None
        self._reading_paused = False
        # Who holds reading paused (the session's download limit, this torrent's): it resumes when none does.
        self._paused_by: set[str] = set()

    # --- asyncio protocol ---------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = transport  # type: ignore[assignment]
        if isinstance(self.mse, MseInitiator):
            self.transport.write(self.mse.start())  # type: ignore[union-attr]
        self.handler.on_connected(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        if self.closed:
            return
        if self.on_bytes_in is not None:
            self.on_bytes_in(nbytes)
        data = self._view[:nbytes]
        if self.mse is not None:
            self._handshake_received(data)
        else:
            if self._decrypt is not None:
                self._decrypt.apply_inplace(data)  # our own buffer: decrypted where it lies, before parsing
            # Parsed in place: the connection copies out what it has not parsed before we return, and
            # the next read into this buffer comes after that.
            self.conn.receive_borrowed(data)
            try:
                self._deliver()
            finally:
                self.conn.release_borrowed()
        if nbytes == len(self._buffer) < RECV_BUFFER_BYTES and not self.closed:
            try:
                # Data arrives faster than one read of this size: grow.
                self._buffer = bytearray(min(RECV_BUFFER_BYTES, 4 * nbytes))
            except MemoryError:
                return  # short of memory: read on through the small buffer (more reads, same bytes)
            self._view = memoryview(self._buffer)

    def _deliver(self) -> None:
        conn = self.conn
        while not self.closed:
            event = conn.next_event()
            if event is None:
                break
            # Re-read the handler each time: the session hands the link to its torrent
            # once the handshake names one.
            if not self.handler.on_event(self, event):
                break

    def _handshake_received(self, data: memoryview) -> None:
        mse = self.mse
        assert mse is not None and self.transport is not None
        reply = mse.receive_data(data)
        if reply:
            self.transport.write(reply)  # the handshake's own bytes: encrypted (or not) by it
        if mse.error is not None:
            self.close(f"encrypted handshake: {mse.error}")
            return
        result = mse.result
        if result is None:
            return
        self.mse = None
        self.skey = result.info_hash
        self._encrypt, self._decrypt = result.encryptor, result.decryptor
        if result.encrypted_handshake:
            self.encryption = method_name(result.method)
        if result.payload:
            self.conn.receive_data(result.payload)
            self._deliver()

    def eof_received(self) -> bool | None:
        self.close("peer closed the connection")
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        # The link may live on in a reference cycle until the collector runs: its buffer need not.
        self._buffer = bytearray()
        self._view = memoryview(self._buffer)
        if not self.closed:
            self.closed = True
            lost = f"connection lost: {exc}" if exc else "peer closed the connection"
            self.close_reason = self.close_reason or lost
        self.handler.on_closed(self, self.close_reason)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self.handler.on_writable(self)

    # --- used by the engine -------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.transport is not None and not self.closed and data:
            if self._encrypt is not None:
                data = self._encrypt.apply(data)  # into a new buffer: the caller's may be shared
            self.transport.write(data)

    def writelines(self, chunks: Sequence[bytes | bytearray | memoryview]) -> None:
        if self.transport is not None and not self.closed:
            if self._encrypt is not None:
                # Block views of the read cache are shared by every peer: encrypt into one new buffer.
                self.transport.write(self._encrypt.apply_chunks(chunks))
                return
            self.transport.writelines(chunks)

    def pause_reading(self, who: str = "session") -> None:
        if self.transport is None or self.closed:
            return
        self._paused_by.add(who)
        if not self._reading_paused:
            self._reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self, who: str = "session") -> None:
        self._paused_by.discard(who)
        if self.transport is not None and self._reading_paused and not self._paused_by and not self.closed:
            self._reading_paused = False
            self.transport.resume_reading()

    def close_gracefully(self, reason: str, linger_s: float = LINGER_S) -> None:
        """Send everything written so far, then FIN, and keep reading (discarding) until the peer closes.

        `close()` stops reading at once; the peer's next message (a HAVE for the block we just sent)
        then sits unread in the kernel, and closing a socket with unread input makes Linux send RST
        and drop our unsent output: the last blocks written never arrived. A half-close (shutdown
        SHUT_WR after the write buffer drained) with reading kept on is the lingering close of mature
        servers. For a peer we part with on good terms; a misbehaving one gets `close()`."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        transport = self.transport
        if transport is None:
            self.handler.on_closed(self, reason)
            return
        if self._reading_paused:  # paused by the download limit, which a closed link is left out of
            self._reading_paused = False
            self._paused_by.clear()
            transport.resume_reading()
        try:
            transport.write_eof()  # FIN once the write buffer has drained
        except (OSError, RuntimeError):
            transport.close()
            return
        asyncio.get_running_loop().call_later(linger_s, self._linger_over, transport)

    @staticmethod
    def _linger_over(transport: asyncio.Transport) -> None:
        if not transport.is_closing():
            transport.abort()  # the peer never closed: give up on it (abort: don't wait on its window)

    def close(self, reason: str) -> None:
        """Close the connection; `reason` is kept for logs and the peer's ban record."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        if self.transport is not None:
            self.transport.close()
        else:
            self.handler.on_closed(self, reason)


class Refusal(asyncio.Protocol):
    """An accepted connection we have no room for: reset at once, before it can send a byte."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # abort, not close: an RST frees the socket without a TIME_WAIT or a wait on its window.
        transport.abort()  # type: ignore[attr-defined]
