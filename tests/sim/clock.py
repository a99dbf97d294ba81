"""An asyncio event loop on a virtual clock: when nothing is ready to run, time jumps to the next timer.

`loop.time()` starts at 0 and moves only when every ready callback has run and the loop would otherwise
wait: then it advances by exactly the time to the earliest timer. A simulated minute of link latencies,
rate-limit pauses and 1 Hz ticks costs only the CPU its callbacks need, and two runs that schedule the
same callbacks see the same times. Only the selector is replaced (asyncio's own `_run_once` computes the
wait from `time()` and hands it to `select`), so everything else is the standard library's loop.

Real file descriptors still work: the loop's self-pipe (call_soon_threadsafe, used by run_in_executor)
is polled without waiting. When no timer is pending at all, only another thread can produce work, so the
loop waits for it in real time; to keep runs reproducible, do threaded work (the first piece check of a
torrent) before scheduling timers, and give torrents an inline executor.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Mapping
from typing import Any


class _VirtualSelector(selectors.BaseSelector):
    def __init__(self, loop: VirtualClockLoop) -> None:
        self._real = selectors.DefaultSelector()
        self._loop = loop

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._real.select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:  # no timer at all: only another thread can wake us
            return self._real.select(None)
        self._loop.advance(timeout)
        return []


class VirtualClockLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self._virtual_now = 0.0
        super().__init__(_VirtualSelector(self))

    def time(self) -> float:
        return self._virtual_now

    def advance(self, seconds: float) -> None:
        if seconds > 0:
            self._virtual_now += seconds


def run(main: Any) -> Any:
    """asyncio.run on a fresh virtual-clock loop."""
    with asyncio.Runner(loop_factory=VirtualClockLoop) as runner:
        return runner.run(main)
