"""An in-memory network: asyncio transports joined in pairs, with per-link bandwidth and latency.

The engine talks to peers through `torrentpy.net.peer.PeerLink`, an `asyncio.BufferedProtocol`; here the
PeerLink is real and only the transport under it is fake, so every byte the engine sends goes through the
real PeerConnection on the other side, with no socket. A direction of a link is a pipe that serialises
writes at `rate_bps` (0: instantly) and delivers each one `latency_s` after it left. Delivery is a timer on
the running loop, so on the virtual-clock loop of tests/sim a slow link costs no real time.

What is modelled of TCP: ordered delivery, write-buffer flow control (pause_writing/resume_writing at the
asyncio default marks), pause_reading holding data back, FIN (write_eof / close after the buffer drained,
seen by the peer as eof_received after all earlier data) and RST (abort: the peer's connection is lost).
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Addr = tuple[str, int]

# asyncio's own defaults for a transport's write buffer (selector_events: 64 KiB high, a quarter low).
HIGH_WATER_BYTES = 64 * 1024
LOW_WATER_BYTES = HIGH_WATER_BYTES // 4
_EOF = None  # in a pipe's queue: the FIN after the data before it
# On a link with latency, arrivals are rounded up to this grid, so the many small messages an engine writes
# in one turn (a HAVE to each peer, a batch of requests) reach the peer as one read, as TCP coalesces
# them: far fewer timers and reads for a large simulated swarm, for at most this much added delay.
DELIVERY_QUANTUM_S = 0.001


@dataclass(frozen=True)
class LinkSpec:
    """One direction of a link: bytes per second (0: no limit) and one-way latency."""

    rate_bps: float = 0.0
    latency_s: float = 0.0


class MemoryTransport(asyncio.Transport):
    """One end of an in-memory connection. Create them with `Network.open` or `transport_pair`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, protocol: asyncio.BaseProtocol, spec: LinkSpec,
                 peername: Addr, sockname: Addr) -> None:
        super().__init__()
        self._loop = loop
        self._protocol = protocol
        self._spec = spec
        self._extra = {"peername": peername, "sockname": sockname}
        self.remote: MemoryTransport | None = None
        self._free_at = 0.0  # when the sending side of our pipe is idle again
        self._queue: deque[tuple[float, bytes | None]] = deque()  # (arrival time, data or _EOF)
        self._delivery: asyncio.TimerHandle | asyncio.Handle | None = None
        self._inbox: deque[bytes | None] = deque()  # arrived while reading was paused
        self._reading = True
        self._write_paused = False
        self._resume_check: asyncio.TimerHandle | None = None
        self._closing = False  # close() or abort(): we write and read no more
        self._eof_sent = False
        self._lost = False
        self.bytes_sent = 0

    # --- asyncio.Transport ----------------------------------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def is_closing(self) -> bool:
        return self._closing

    def is_reading(self) -> bool:
        return self._reading and not self._closing

    def pause_reading(self) -> None:
        self._reading = False

    def resume_reading(self) -> None:
        if self._reading:
            return
        self._reading = True
        if self._inbox:
            self._loop.call_soon(self._drain_inbox)

    def can_write_eof(self) -> bool:
        return True

    def get_write_buffer_size(self) -> int:
        """Bytes written but not yet on the wire: the backlog of a pipe that sends at its rate."""
        rate = self._spec.rate_bps
        if rate <= 0:
            return 0
        return max(0, round((self._free_at - self._loop.time()) * rate))

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return LOW_WATER_BYTES, HIGH_WATER_BYTES

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or self._eof_sent or not data:
            return
        self._send(bytes(data))  # copied: the caller may reuse its buffer at once

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def write_eof(self) -> None:
        if self._closing or self._eof_sent:
            return
        self._eof_sent = True
        self._send(_EOF)

    def close(self) -> None:
        """FIN after what was written; our protocol hears connection_lost at once, the peer EOF later."""
        if self._closing:
            return
        self._closing = True
        self._inbox.clear()
        if not self._eof_sent:
            self._eof_sent = True
            self._send(_EOF)
        self._loop.call_soon(self._connection_lost, None)

    def abort(self) -> None:
        """RST: nothing more arrives anywhere, and the peer's connection is lost with an error."""
        if self._lost:
            return
        self._closing = True
        self._queue.clear()
        self._inbox.clear()
        self._loop.call_soon(self._connection_lost, None)
        remote = self.remote
        if remote is not None and not remote._lost:
            remote._closing = True
            remote._queue.clear()
            remote._inbox.clear()
            self._loop.call_soon(remote._connection_lost, ConnectionResetError("connection reset by peer"))

    # --- the pipe ---------------------------------------------------------------

    def _send(self, data: bytes | None) -> None:
        loop = self._loop
        now = loop.time()
        rate, latency = self._spec.rate_bps, self._spec.latency_s
        size = len(data) if data is not None else 0
        departs = max(now, self._free_at) + (size / rate if rate > 0 else 0.0)
        self._free_at = departs
        self.bytes_sent += size
        arrives = departs + latency
        if latency > 0:
            arrives = math.ceil(arrives / DELIVERY_QUANTUM_S) * DELIVERY_QUANTUM_S
        self._queue.append((arrives, data))
        if self._delivery is None:
            self._schedule_delivery()
        if rate > 0 and not self._write_paused and self.get_write_buffer_size() > HIGH_WATER_BYTES:
            self._write_paused = True
            self._protocol.pause_writing()
            self._schedule_resume_check()

    def _schedule_delivery(self) -> None:
        arrives = self._queue[0][0]
        if arrives <= self._loop.time():
            self._delivery = self._loop.call_soon(self._deliver)
        else:
            self._delivery = self._loop.call_at(arrives, self._deliver)

    def _deliver(self) -> None:
        """Hand the peer everything that has arrived by now, in one piece as TCP would coalesce it."""
        self._delivery = None
        now = self._loop.time()
        chunks: list[bytes] = []
        eof = False
        while self._queue and self._queue[0][0] <= now:
            data = self._queue.popleft()[1]
            if data is _EOF:
                eof = True
                break
            chunks.append(data)
        remote = self.remote
        if remote is not None:
            if chunks:
                remote._arrive(b"".join(chunks))
            if eof:
                remote._arrive(_EOF)
        if self._queue:
            self._schedule_delivery()

    def _schedule_resume_check(self) -> None:
        rate = self._spec.rate_bps
        when = self._free_at - LOW_WATER_BYTES / rate
        self._resume_check = self._loop.call_at(max(when, self._loop.time()), self._check_resume)

    def _check_resume(self) -> None:
        self._resume_check = None
        if self._lost or not self._write_paused:
            return
        if self.get_write_buffer_size() > LOW_WATER_BYTES:
            self._schedule_resume_check()
            return
        self._write_paused = False
        self._protocol.resume_writing()

    # --- the receiving end ------------------------------------------------------------

    def _arrive(self, data: bytes | None) -> None:
        if self._closing:
            return  # we closed: a real socket would discard it (and answer with RST)
        if not self._reading or self._inbox:
            self._inbox.append(data)
            return
        self._feed(data)

    def _drain_inbox(self) -> None:
        while self._inbox and self._reading and not self._closing:
            self._feed(self._inbox.popleft())

    def _feed(self, data: bytes | None) -> None:
        protocol = self._protocol
        if data is _EOF:
            keep_open = protocol.eof_received()  # type: ignore[attr-defined]
            if not keep_open:
                self.close()
            return
        view = memoryview(data)
        while view and not self._closing:
            if isinstance(protocol, asyncio.BufferedProtocol):
                buf = memoryview(protocol.get_buffer(len(view)))
                n = min(len(buf), len(view))
                buf[:n] = view[:n]
                view = view[n:]
                protocol.buffer_updated(n)
            else:
                protocol.data_received(bytes(view))  # type: ignore[attr-defined]
                break
            if not self._reading and view:
                self._inbox.appendleft(bytes(view))  # paused mid-chunk: keep the rest for resume
                break

    def _connection_lost(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._closing = True
        if self._resume_check is not None:
            self._resume_check.cancel()
        self._protocol.connection_lost(exc)


def transport_pair(loop: asyncio.AbstractEventLoop, a: asyncio.BaseProtocol, b: asyncio.BaseProtocol,
                   a_addr: Addr, b_addr: Addr, *, a_to_b: LinkSpec = LinkSpec(),
                   b_to_a: LinkSpec = LinkSpec()) -> tuple[MemoryTransport, MemoryTransport]:
    """Join two protocols; neither has heard connection_made yet."""
    ta = MemoryTransport(loop, a, a_to_b, peername=b_addr, sockname=a_addr)
    tb = MemoryTransport(loop, b, b_to_a, peername=a_addr, sockname=b_addr)
    ta.remote, tb.remote = tb, ta
    return ta, tb


# What a listening address does with a connection: given the dialler's address, the protocol to serve it.
Acceptor = Callable[[Addr], asyncio.BaseProtocol]


class Network:
    """Listening addresses and the links between them.

    `default` is the link spec of both directions of every link; `node_specs[ip]` overrides it for links
    touching that host (the slower of the two ends wins in each direction)."""

    def __init__(self, default: LinkSpec = LinkSpec()) -> None:
        self.default = default
        self.node_specs: dict[str, LinkSpec] = {}
        self.listeners: dict[Addr, Acceptor] = {}
        self._next_port: dict[str, int] = {}
        self.transports: list[MemoryTransport] = []

    def busy(self) -> bool:
        """Whether any byte written is still on its way or waiting for a paused reader."""
        return any(t._queue or t._inbox for t in self.transports)

    def listen(self, addr: Addr, acceptor: Acceptor) -> None:
        self.listeners[addr] = acceptor

    def unlisten(self, addr: Addr) -> None:
        self.listeners.pop(addr, None)

    def spec(self, src: str, dst: str) -> LinkSpec:
        specs = [s for s in (self.node_specs.get(src), self.node_specs.get(dst)) if s is not None] or [self.default]
        rates = [s.rate_bps for s in specs if s.rate_bps > 0]
        return LinkSpec(min(rates) if rates else 0.0, max(s.latency_s for s in specs))

    def ephemeral(self, ip: str) -> Addr:
        port = self._next_port.get(ip, 40000)
        self._next_port[ip] = port + 1
        return ip, port

    async def open(self, src_ip: str, addr: Addr, protocol: asyncio.BaseProtocol) -> MemoryTransport:
        """Dial `addr` from host `src_ip`: after one round trip both sides hear connection_made."""
        acceptor = self.listeners.get(addr)
        if acceptor is None:
            raise ConnectionRefusedError(f"connection refused by {addr[0]}:{addr[1]}")
        out, back = self.spec(src_ip, addr[0]), self.spec(addr[0], src_ip)
        rtt = out.latency_s + back.latency_s
        if rtt > 0:
            await asyncio.sleep(rtt)
        acceptor = self.listeners.get(addr)  # it may have gone meanwhile
        if acceptor is None:
            raise ConnectionRefusedError(f"connection refused by {addr[0]}:{addr[1]}")
        local = self.ephemeral(src_ip)
        served = acceptor(local)
        ours, theirs = transport_pair(asyncio.get_running_loop(), protocol, served, local, addr,
                                      a_to_b=out, b_to_a=back)
        self.transports += (ours, theirs)
        served.connection_made(theirs)
        protocol.connection_made(ours)
        return ours
