"""The peer wire protocol, sans-I/O: bytes in, events out (BEP 3, 6, 9, 10, 11).

Nothing in this package imports asyncio, socket, time or threading; `torrentpy.net` does the I/O."""

from torrentpy.protocol import events, extension, wire
from torrentpy.protocol.events import *  # noqa: F403 - the event classes are the package's vocabulary
from torrentpy.protocol.events import __all__ as _event_names
from torrentpy.protocol.peer import LocalProtocolError, PeerConnection
from torrentpy.protocol.wire import make_peer_id

__all__ = [
    "LocalProtocolError",
    "PeerConnection",
    "events",
    "extension",
    "make_peer_id",
    "wire",
    *_event_names,
]
