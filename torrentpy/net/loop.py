"""Event-loop setup: uvloop for every asyncio entry point of torrentpy."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")

log = logging.getLogger("torrentpy")

# A download allocates a few container objects per 16 KiB block (events, block tuples, picker
# entries), so the default 700 triggers a young collection every few hundred blocks, and the older
# generations' sweeps walk every object the imports made: 5-6 % of a leech's CPU in py-spy.
# Everything alive when the loop starts is frozen out of the collector, and the young generation
# is collected less often; reference cycles are still collected, just in larger batches.
GC_THRESHOLDS = (20_000, 20, 20)


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` to completion on a fresh uvloop event loop. A collector paused for the start-up
    (`torrentpy add`, see cli.main) stays paused until `end_gc_pause`."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    return uvloop.run(_handled(main))


def end_gc_pause() -> None:
    """The start-up is over (the first requests are out): the cycles the imports left are collected now,
    off the path to the first request, and the survivors frozen again; then the collector runs as usual."""
    if gc.isenabled():
        return
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    gc.enable()


async def _handled(main: Coroutine[Any, Any, T]) -> T:
    asyncio.get_running_loop().set_exception_handler(_exception_handler)
    return await main


def _exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """A callback that ran out of memory (a peer's data, an accepted connection, a timer) is one line:
    uvloop has closed that connection, and the rest runs on. A traceback would only paint over the
    dashboard; --log-file keeps it."""
    exc = context.get("exception")
    if isinstance(exc, MemoryError):
        log.warning("out of memory: %s; dropped it and carrying on", context.get("message") or "in a callback")
        log.debug("out of memory in a callback", exc_info=exc)
        return
    loop.default_exception_handler(context)
