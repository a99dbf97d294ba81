"""A loopback UDP relay that drops chosen client datagrams, to exercise BEP 15 retransmission."""

from __future__ import annotations

import asyncio
from typing import Any


class _Upstream(asyncio.DatagramProtocol):
    def __init__(self, relay: LossyUdpRelay) -> None:
        self.relay = relay

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self.relay.client_addr is not None and self.relay.downstream is not None:
            self.relay.downstream.sendto(data, self.relay.client_addr)


class _Downstream(asyncio.DatagramProtocol):
    def __init__(self, relay: LossyUdpRelay) -> None:
        self.relay = relay

    def datagram_received(self, data: bytes, addr: Any) -> None:
        relay = self.relay
        relay.client_addr = addr
        relay.seen += 1
        if relay.drop_first > 0 or relay.drop_all:
            relay.drop_first -= 1
            relay.dropped += 1
            return
        if relay.upstream is not None:
            relay.upstream.sendto(data)


class LossyUdpRelay:
    """Listens on 127.0.0.1:``port``; forwards to ``target`` except the first ``drop_first`` datagrams."""

    def __init__(self, target: tuple[str, int], drop_first: int = 0, drop_all: bool = False) -> None:
        self.target = target
        self.drop_first = drop_first
        self.drop_all = drop_all
        self.seen = 0
        self.dropped = 0
        self.client_addr: Any = None
        self.downstream: asyncio.DatagramTransport | None = None
        self.upstream: asyncio.DatagramTransport | None = None
        self.port = 0

    async def __aenter__(self) -> LossyUdpRelay:
        loop = asyncio.get_running_loop()
        self.upstream, _ = await loop.create_datagram_endpoint(
            lambda: _Upstream(self), remote_addr=self.target
        )
        self.downstream, _ = await loop.create_datagram_endpoint(
            lambda: _Downstream(self), local_addr=("127.0.0.1", 0)
        )
        self.port = self.downstream.get_extra_info("sockname")[1]
        return self

    @property
    def url(self) -> str:
        return f"udp://127.0.0.1:{self.port}/announce"

    async def __aexit__(self, *exc: object) -> None:
        for t in (self.downstream, self.upstream):
            if t is not None:
                t.close()
