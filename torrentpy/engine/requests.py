"""How many blocks to ask a peer for, and when to stop asking: the request-queue policy.

Which blocks (rarest first, endgame duplicates) is the picker's business; this decides how many, from
the peer's measured rate, what it already has in flight and whether it is snubbing us. Pure: the rate,
the clock and the picker's endgame flag come in, numbers come out."""

from __future__ import annotations

import math
from typing import NamedTuple

BLOCK_SIZE = 16 * 1024
# The shallowest request queue, whatever the measured rate: a peer's rate is only known once blocks
# flow, and a shallow queue would keep it slow (the end-to-end benchmark against libtorrent set it).
MIN_QUEUE = 64
# Bytes in flight across all of a torrent's peers: each partial piece holds a whole piece buffer, and fifty
# seeders each asked for 2 s of their rate held 250 MiB of them. A peer gets its share by rate.
OUTSTANDING_BUDGET_BYTES = 32 * 1024 * 1024
# The shallowest queue a peer's share of that budget can give it (a new peer's rate share is 0).
MIN_SHARED_QUEUE = 16
# Requests a peer may have in flight in endgame, duplicates included.
ENDGAME_QUEUE = 4
# A peer that sent no block for this long while we had requests out is snubbing us.
SNUB_TIMEOUT_S = 60.0
# The queue depth follows the peer's rate, re-measured at most this often.
REMEASURE_S = 0.1


class RequestPlan(NamedTuple):
    want: int  # blocks to request now; 0 for none
    # Until `until`, a peer with more than `refill_below` requests outstanding needs no new plan.
    refill_below: int
    until: float


def queue_depth(rate_bps: float, *, block_size: int = BLOCK_SIZE, target_s: float = 2.0,
                min_depth: int = 4, max_depth: int = 500) -> int:
    """How many requests to keep outstanding with a peer downloading at ``rate_bps``.

    Like libtorrent's request queue: enough blocks to cover ``target_s`` seconds at the measured rate, so
    the pipe never drains while a request round-trips, clamped to [min_depth, max_depth]."""
    if rate_bps <= 0 or not math.isfinite(rate_bps):
        return min_depth if rate_bps <= 0 or math.isnan(rate_bps) else max_depth
    depth = math.ceil(rate_bps * target_s / block_size)
    return max(min_depth, min(max_depth, depth))


def plan_requests(outstanding: int, rate_bps: float, now: float, *, endgame: bool,
                  block_size: int = BLOCK_SIZE, share: float = 1.0) -> RequestPlan:
    """How many requests to send a peer (unchoked, interesting, not snubbing) with `outstanding`
    in flight, downloading from it at `rate_bps`, which is `share` of the torrent's download rate."""
    depth = queue_depth(rate_bps, block_size=block_size, min_depth=MIN_QUEUE)
    if share < 1.0:
        depth = min(depth, max(MIN_SHARED_QUEUE, math.ceil(OUTSTANDING_BUDGET_BYTES // block_size * share)))
    # Refill only below 3/4 of the queue until the next re-measure: the common case, once per received
    # block, is then one comparison.
    refill_below = depth - max(1, depth // 4)
    until = now + REMEASURE_S
    if endgame:
        # Duplicate requests only to peers that have almost nothing left in flight: with deep
        # queues every block would be fetched twice (the demo received 16% extra).
        return RequestPlan(max(0, ENDGAME_QUEUE - outstanding), refill_below, until)
    want = depth - outstanding
    if want < max(1, depth // 4):
        want = 0  # top up in batches: fewer, larger writes
    return RequestPlan(want, refill_below, until)


def is_snubbing(now: float, *, outstanding: int, last_block_at: float, unchoked_us_at: float,
                connected_at: float, timeout_s: float = SNUB_TIMEOUT_S) -> bool:
    """Whether a peer with `outstanding` requests has sent no block for `timeout_s`, counted from its
    last block, its last unchoke of us, or the connection, whichever came last. A snubbing peer gets
    no new requests until it unchokes us afresh, and what it holds is asked of others."""
    return outstanding > 0 and now - max(last_block_at, unchoked_us_at, connected_at) > timeout_s
