"""A fake link joining two PeerConnections: what one side's send_* returns is fed to the other."""

from __future__ import annotations

from dataclasses import dataclass, field

from torrentpy.protocol import Event, PeerConnection, Piece, make_peer_id

INFO_HASH = bytes(range(20))
PIECE_LENGTH = 32768
NUM_PIECES = 10
# The last piece is short so bounds checks on it are exercised.
TOTAL_LENGTH = PIECE_LENGTH * (NUM_PIECES - 1) + 5000


def connection(**overrides: object) -> PeerConnection:
    kwargs: dict[str, object] = {
        "info_hash": INFO_HASH,
        "peer_id": make_peer_id(),
        "num_pieces": NUM_PIECES,
        "piece_length": PIECE_LENGTH,
        "total_length": TOTAL_LENGTH,
        "initiator": True,
    }
    kwargs.update(overrides)
    return PeerConnection(**kwargs)  # type: ignore[arg-type]


def stable(event: Event) -> Event:
    """Piece data is a view valid only until the next receive_data(): copy it for keeping."""
    if isinstance(event, Piece):
        return Piece(event.index, event.begin, bytes(event.data))
    return event


def drain(conn: PeerConnection) -> list[Event]:
    events: list[Event] = []
    while (event := conn.next_event()) is not None:
        events.append(stable(event))
    return events


@dataclass
class Link:
    a: PeerConnection
    b: PeerConnection
    a_events: list[Event] = field(default_factory=list)
    b_events: list[Event] = field(default_factory=list)

    def to_b(self, data: bytes) -> list[Event]:
        self.b.receive_data(data)
        events = drain(self.b)
        self.b_events += events
        return events

    def to_a(self, data: bytes) -> list[Event]:
        self.a.receive_data(data)
        events = drain(self.a)
        self.a_events += events
        return events


def handshaken(**b_overrides: object) -> Link:
    """Two connections after both handshakes: `a` dialled `b`."""
    link = Link(connection(), connection(initiator=False, **b_overrides))
    link.to_b(link.a.initiate())
    link.to_a(link.b.initiate())
    return link
