"""BEP 11 peer exchange, the sending side: what each peer has been told about our other connections,
and when it may hear from us again. Pure (the clock is passed in); Swarm does the sending."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field

from torrentpy.protocol.extension import MAX_PEX_SEND

Addr = tuple[str, int]

# BEP 11: no more than one message a minute. libtorrent disconnects a peer that sends it more than
# three within 60 s, so shorter intervals are for tests between torrentpy peers only.
PEX_INTERVAL_S = 60.0


@dataclass(slots=True)
class _Told:
    next_at: float
    sent: dict[Addr, int] = field(default_factory=dict)  # addresses announced as added → their flags


@dataclass(frozen=True, slots=True)
class PexMessage:
    added: tuple[Addr, ...]
    flags: tuple[int, ...]  # one per added address
    dropped: tuple[Addr, ...]


class PexSchedule:
    def __init__(self, interval_s: float = PEX_INTERVAL_S) -> None:
        if interval_s <= 0:
            raise ValueError("the PEX interval must be positive")
        self.interval_s = interval_s
        self._told: dict[Hashable, _Told] = {}

    def message(
        self, peer: Hashable, now: float, connected: Mapping[Addr, int], exclude: frozenset[Addr] = frozenset()
    ) -> PexMessage | None:
        """What `peer` should hear now about `connected` (listen address → BEP 11 flags), leaving out
        `exclude` (the peer's own addresses); None when it is not its turn or nothing changed.

        The first message lists every peer; later ones only the difference, at most MAX_PEX_SEND added
        and dropped each, the rest following in the next message. A change after a quiet spell goes out
        at once, as long as the last message is at least an interval old."""
        told = self._told.get(peer)
        if told is None:
            told = self._told[peer] = _Told(next_at=now)
        if now < told.next_at:
            return None
        added = [(a, f) for a, f in connected.items() if a not in told.sent and a not in exclude][:MAX_PEX_SEND]
        dropped = [a for a in told.sent if a not in connected or a in exclude][:MAX_PEX_SEND]
        if not added and not dropped:
            return None
        for addr, flags in added:
            told.sent[addr] = flags
        for addr in dropped:
            del told.sent[addr]
        told.next_at = now + self.interval_s
        return PexMessage(tuple(a for a, _ in added), tuple(f for _, f in added), tuple(dropped))

    def forget(self, peer: Hashable) -> None:
        self._told.pop(peer, None)

    def __len__(self) -> int:
        return len(self._told)
