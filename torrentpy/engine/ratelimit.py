"""Bandwidth limits: a token bucket that never reads the clock (rate options are parsed in ``torrentpy.units``).

``TokenBucket.consume(n, now)`` says how long to wait before sending (or reading) ``n`` bytes. The bucket
may go into debt: any request is admitted and its wait is the time the debt takes to pay off, so a
message larger than the burst flows at the configured rate instead of stalling forever, and several
callers sharing one bucket simply queue behind each other's debt.
"""

from __future__ import annotations

import math

from torrentpy.units import parse_rate  # re-exported: the rate-limit tests read it from here

__all__ = ["TokenBucket", "parse_rate"]

# Without an explicit burst, allow this many seconds of traffic at once (but at least one block), so a
# throttled peer connection still sends whole 16 KiB blocks back to back.
DEFAULT_BURST_S = 0.25
MIN_BURST_BYTES = 16384


class TokenBucket:
    def __init__(self, rate_bps: float, burst_bytes: int | None = None) -> None:
        self._explicit_burst = burst_bytes
        self._tokens = 0.0
        self._last: float | None = None
        self.rate_bps = 0.0
        self.burst_bytes = 0
        self.set_rate(rate_bps)
        self._tokens = float(self.burst_bytes)

    @property
    def unlimited(self) -> bool:
        return self.rate_bps == 0

    def set_rate(self, rate_bps: float) -> None:
        """Change the rate (0 = unlimited). Debt and saved tokens carry over, capped at the new burst."""
        if rate_bps < 0 or not math.isfinite(rate_bps):
            raise ValueError(f"rate must be a finite number of bytes/s >= 0, got {rate_bps}")
        self.rate_bps = float(rate_bps)
        if self._explicit_burst is not None:
            if self._explicit_burst <= 0:
                raise ValueError("burst_bytes must be positive")
            self.burst_bytes = self._explicit_burst
        else:
            self.burst_bytes = max(MIN_BURST_BYTES, int(self.rate_bps * DEFAULT_BURST_S))
        self._tokens = min(self._tokens, float(self.burst_bytes))

    def _refill(self, now: float) -> None:
        if self._last is not None and now > self._last:
            self._tokens = min(float(self.burst_bytes), self._tokens + (now - self._last) * self.rate_bps)
        if self._last is None or now > self._last:
            self._last = now

    def consume(self, n: int, now: float) -> float:
        """Take ``n`` bytes' worth of tokens; return the seconds to wait before they may go (0 = now)."""
        if n < 0:
            raise ValueError("cannot consume a negative number of bytes")
        if self.rate_bps == 0:
            return 0.0
        self._refill(now)
        # Go into debt rather than refuse: a request larger than the burst is still admitted, and the
        # wait is exactly the time to pay it back, so a sender that waits as told never exceeds
        # burst_bytes + rate_bps * elapsed, and concurrent callers queue behind each other's debt.
        self._tokens -= n
        return -self._tokens / self.rate_bps if self._tokens < 0 else 0.0

    def available(self, now: float) -> float:
        """Tokens on hand at ``now`` (negative while in debt); infinite when unlimited."""
        if self.rate_bps == 0:
            return math.inf
        self._refill(now)
        return self._tokens
