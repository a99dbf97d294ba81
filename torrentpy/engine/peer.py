"""What the engine knows about one connected peer, beyond the wire state."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from torrentpy._core import Bitfield
from torrentpy.engine.accounting import RateMeter
from torrentpy.engine.picker import Block
from torrentpy.net.peer import PeerLink
from torrentpy.protocol.peer import PeerConnection


@dataclass(eq=False)
class Peer:
    link: PeerLink
    connected_at: float
    bitfield: Bitfield | None = None
    client: str = ""
    last_recv_at: float = 0.0
    last_sent_at: float = 0.0
    last_block_at: float = 0.0
    snubbed: bool = False
    down: RateMeter = field(default_factory=RateMeter)
    up: RateMeter = field(default_factory=RateMeter)
    downloaded: int = 0
    uploaded: int = 0
    # Blocks we asked for and then gave up on (cancel, choke, time-out): the peer may
    # still send them, which is not a protocol violation.
    released: set[Block] = field(default_factory=set)
    upload_queue: deque[tuple[int, int, int]] = field(default_factory=deque)
    # Blocks taken off upload_queue for a batch that waits on the upload limit; a cancel removes them here.
    pacing: set[tuple[int, int, int]] = field(default_factory=set)
    serving: bool = False
    unchoked_us_at: float = 0.0  # when they last unchoked us (the snub clock starts there)
    # Request-queue refill threshold and until when it holds (see engine.requests.plan_requests).
    refill_below: int = 0
    metadata_requests: int = 0
    depth_until: float = 0.0
    source: str = "manual"  # where its address came from (engine.sources.SOURCES)
    # HAVEs owed to a seed, sent together on the next tick (see Downloader.finish_piece).
    pending_haves: list[int] = field(default_factory=list)

    @property
    def addr(self) -> tuple[str, int]:
        return self.link.addr

    @property
    def conn(self) -> PeerConnection:
        return self.link.conn

    @property
    def is_seed(self) -> bool:
        return self.bitfield is not None and self.bitfield.all()

    def __hash__(self) -> int:
        return id(self)
