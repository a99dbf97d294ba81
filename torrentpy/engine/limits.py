"""One torrent's own limits: its upload and download rates, whether it also obeys the session's, and the
idle seeding limit (Transmission's per-torrent speed limits, honorsSessionLimits and seedIdleLimit).

The upload bucket is applied by the Uploader's pacing next to the session's; the download side is counted
here for every byte a link of this torrent reads (swarm.attach wires PeerLink.on_bytes_in to
`count_download`) and, like the session's limit, slows a torrent by pausing reads on its links while its
bucket is in debt, so TCP flow control makes the senders wait."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from torrentpy.engine.ratelimit import TokenBucket

if TYPE_CHECKING:
    from torrentpy.engine.host import Host
    from torrentpy.engine.peer import Peer

__all__ = ["TorrentLimits"]

# The key this torrent's limit pauses a link's reading under (the session pauses under its own).
PAUSE_KEY = "torrent"


class TorrentLimits:
    def __init__(self, host: Host, peers: Callable[[], Iterable[Peer]]) -> None:
        self.host = host
        self._peers = peers
        self.upload = TokenBucket(0)
        self.download = TokenBucket(0)
        # False: the session's limits do not apply to this torrent (Transmission's honorsSessionLimits).
        self.honors_session = True
        self.seed_idle_s: float | None = None  # leave once a seed has uploaded nothing for this long
        self.last_upload_at: float | None = None
        self._reading_paused = False
        self._resume_handle: asyncio.TimerHandle | None = None

    def set_rates(self, *, download_bps: float | None = None, upload_bps: float | None = None) -> None:
        """Set either rate in bytes/s (0 = unlimited); a lifted download limit resumes reading at once."""
        if upload_bps is not None:
            self.upload.set_rate(upload_bps)
        if download_bps is not None:
            self.download.set_rate(download_bps)
            if download_bps == 0 and self._reading_paused:
                self._resume()

    # --- upload -----------------------------------------------------------------

    def upload_buckets(self) -> list[TokenBucket]:
        """The buckets an upload batch must pass: the torrent's, and the session's unless exempt."""
        buckets = [self.upload] if self.upload.rate_bps > 0 else []
        if self.honors_session and self.host.upload_bucket.rate_bps > 0:
            buckets.append(self.host.upload_bucket)
        return buckets

    def consume_upload(self, nbytes: int, now: float) -> float:
        """Take `nbytes` from every bucket that applies; the wait is the longest debt among them."""
        return max((bucket.consume(nbytes, now) for bucket in self.upload_buckets()), default=0.0)

    def uploaded(self, now: float) -> None:
        self.last_upload_at = now

    # --- download ---------------------------------------------------------------

    def count_download(self, nbytes: int) -> None:
        """Bytes read from one of this torrent's links (PeerLink.on_bytes_in)."""
        if self.honors_session:
            self.host.count_download(nbytes)
        bucket = self.download
        if bucket.rate_bps <= 0:
            return
        wait_s = bucket.consume(nbytes, self.host.now())
        if wait_s <= 0:
            return
        # Bytes while held come from a read already under way or a link attached since: hold them all.
        for peer in self._peers():
            peer.link.pause_reading(PAUSE_KEY)
        if not self._reading_paused:
            self._reading_paused = True
            self._resume_handle = asyncio.get_running_loop().call_later(wait_s, self._try_resume)

    def _try_resume(self) -> None:
        self._resume_handle = None
        # Measured on the host's clock, which may not be the loop's: wait again for any debt still owed.
        # (Less than a byte owed is rounding: waiting on it could schedule a timer at the same instant.)
        owed = -self.download.available(self.host.now())
        if owed >= 1 and self.download.rate_bps > 0:
            self._resume_handle = asyncio.get_running_loop().call_later(
                owed / self.download.rate_bps, self._try_resume)
            return
        self._resume()

    def _resume(self) -> None:
        if self._resume_handle is not None:
            self._resume_handle.cancel()
            self._resume_handle = None
        self._reading_paused = False
        for peer in list(self._peers()):
            peer.link.resume_reading(PAUSE_KEY)

    # --- the idle seeding limit -----------------------------------------------------

    def goal_met(self, now: float, seeding_since: float | None, seed_time_s: float | None) -> bool:
        """Whether a complete torrent has seeded long enough (seed_time_s) or sat idle too long."""
        if seeding_since is None:
            return False
        if seed_time_s is not None and now - seeding_since >= seed_time_s:
            return True
        # Idle since the later of becoming a seed and its last upload (a download before counts for nothing).
        due = self.idle_goal_at(seeding_since)
        return due is not None and now >= due

    def idle_goal_at(self, seeding_since: float | None) -> float | None:
        """When the idle limit will be met if nothing is uploaded meanwhile (None: no idle limit), for a
        scheduler that sleeps a torrent without peers until its next deadline."""
        if self.seed_idle_s is None or seeding_since is None:
            return None
        return max(seeding_since, self.last_upload_at or seeding_since) + self.seed_idle_s
