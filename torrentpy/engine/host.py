"""What a torrent may ask of the session that hosts it.

`Torrent` is written against this protocol, not against `Session`, so the engine has no import
circle and tests can drive a real torrent with a fake host and a manual clock."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import Executor
from typing import Any, Protocol

from torrentpy.engine.alerts import Alert
from torrentpy.engine.ratelimit import TokenBucket
from torrentpy.net.peer import PeerLink

Addr = tuple[str, int]


class Host(Protocol):
    # Read-only here (properties), so a host may hold a subtype, e.g. a ThreadPoolExecutor.
    @property
    def peer_id(self) -> bytes: ...
    @property
    def listen_port(self) -> int:
        """Known only once the session listens, which may be after the torrent was added: read it late."""
    @property
    def version(self) -> str: ...
    @property
    def executor(self) -> Executor: ...
    @property
    def upload_bucket(self) -> TokenBucket: ...
    @property
    def wake_event(self) -> asyncio.Event:
        """Set when a torrent changes in a way the session loop must see before its next tick."""

    def now(self) -> float:
        """The clock every timeout and rate of the torrent is measured on."""

    def emit(self, alert: Alert) -> None:
        """Hand an alert to the listeners (dashboard, --json, log)."""

    def http_session(self) -> Any:
        """The shared HTTP client for trackers, created on first use."""

    def is_self(self, addr: Addr) -> bool:
        """Whether an address is our own listening socket."""

    def can_connect(self) -> bool:
        """Whether the session-wide connection limits leave room for one more dial."""

    def connect(self, owner: Any, addr: Addr) -> Coroutine[Any, Any, None]:
        """Dial a peer for `owner`; a failure comes back as owner.connect_failed(addr, reason)."""

    def release_connection(self, link: PeerLink) -> None:
        """Forget a link the torrent has closed."""

    def dht_port_seen(self, addr: Addr) -> None:
        """A peer announced its DHT node (BEP 5 PORT message) at this address."""

    def count_download(self, nbytes: int) -> None:
        """Count bytes read from a peer against the session-wide download limit."""
