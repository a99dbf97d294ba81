"""Event-loop setup: uvloop for every asyncio entry point of torrentpy."""

from __future__ import annotations

import gc
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")

# A download allocates a few container objects per 16 KiB block (events, block tuples, picker
# entries), so the default 700 triggers a young collection every few hundred blocks, and the older
# generations' sweeps walk every object the imports made: 5-6 % of a leech's CPU in py-spy.
# Everything alive when the loop starts is frozen out of the collector, and the young generation
# is collected less often; reference cycles are still collected, just in larger batches.
GC_THRESHOLDS = (20_000, 20, 20)


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` to completion on a fresh uvloop event loop."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    return uvloop.run(main)
