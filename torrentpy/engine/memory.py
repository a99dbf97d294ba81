"""Running out of memory: give back what can be given back, else stop one torrent; never lose a verified piece.

Memory runs out as a MemoryError from any allocation (under `ulimit -v`, with overcommit off, in a small
container) and as "can't start new thread" when no stack can be mapped for a thread. Where something can
be done without, the engine does without it: a new piece that gets no buffer while other pieces will give
theirs back drops the peer that sent it (engine/download.py), the read cache of a seed shrinks
(engine/upload.py), a connection keeps reading through its small first buffer (net/peer.py), and the I/O
pool runs on the threads it has (IoExecutor). Anything else stops the torrent it happened in with one
line, its resume state saved; outside every torrent it stops the session the same way (cli.py)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from torrentpy.errors import TorrentError, out_of_memory_message

__all__ = ["IoExecutor", "failure_message"]

log = logging.getLogger("torrentpy")


class IoExecutor(ThreadPoolExecutor):
    """The session's disk and hashing pool. A thread it cannot start (no memory for its stack) is one
    thread fewer, not a failed job: the job is queued already, and a running thread takes it."""

    def _adjust_thread_count(self) -> None:
        try:
            super()._adjust_thread_count()
        except RuntimeError as exc:
            if not self._threads:
                raise MemoryError("no memory to start an I/O thread") from exc
            log.debug("I/O pool stays at %d threads: %s", len(self._threads), exc)


def failure_message(exc: BaseException, name: str) -> str:
    """The line torrent `name` stops with when one of its tasks raised `exc`: a TorrentError says its own;
    out of memory is said as such (the traceback only in --log-file); anything else is our bug."""
    if isinstance(exc, TorrentError):
        return str(exc)
    if isinstance(exc, MemoryError):
        log.debug("out of memory in %s", name, exc_info=exc)
        return out_of_memory_message()
    log.error("internal error in %s", name, exc_info=exc)
    return f"internal error: {exc!r}"
