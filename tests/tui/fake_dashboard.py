"""A fake session behind the real dashboard, for the pty tests: ``python -m tests.tui.fake_dashboard``.

The first torrent's progress rises with wall time; the second has a hostile name full of escape
sequences. ``q`` asks the fake to stop, which sets the stop event, and the process exits with 0.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import time

from tests.tui.snapshots import make_session, make_torrent
from torrentpy.engine.snapshot import SessionSnapshot
from torrentpy.tui.live import run_dashboard

HOSTILE_NAME = "evil\x1b[2J\x1b]0;pwned\x07\x1b[31mred\u202eeman"
# Progress gained per second, so a test polling a few times a second sees it rise.
PROGRESS_PER_S = 0.04


class FakeController:
    def __init__(self, stop_event: asyncio.Event) -> None:
        self.stop_event = stop_event
        self.started = time.monotonic()
        self.paused: set[str] = set()
        self.base = make_session(
            make_torrent(name="fake-linux-distro.iso", info_hash_hex="aa" * 20, pieces=2000, peers=12),
            make_torrent(name=HOSTILE_NAME, info_hash_hex="bb" * 20, state="seeding", have_fraction=1.0),
        )

    def snapshot(self) -> SessionSnapshot:
        progress = min(1.0, 0.05 + PROGRESS_PER_S * (time.monotonic() - self.started))
        torrents = []
        for t in self.base.torrents:
            changes: dict[str, object] = {}
            if t.info_hash_hex == "aa" * 20:
                pieces = len(t.piece_states)
                have = int(progress * pieces)
                downloading = min(4, pieces - have)
                missing = pieces - have - downloading
                changes.update(
                    progress=have / pieces,
                    piece_states=b"\x01" * have + b"\x02" * downloading + b"\x00" * missing,
                    state="finished" if have == pieces else "downloading",
                )
            if t.info_hash_hex in self.paused:
                changes["state"] = "paused"
            torrents.append(dataclasses.replace(t, **changes))  # type: ignore[arg-type]
        uptime_s = time.monotonic() - self.started
        return dataclasses.replace(self.base, torrents=tuple(torrents), uptime_s=uptime_s)

    def pause(self, info_hash_hex: str) -> None:
        self.paused.add(info_hash_hex)

    def resume(self, info_hash_hex: str) -> None:
        self.paused.discard(info_hash_hex)

    def request_stop(self) -> None:
        self.stop_event.set()


async def main() -> None:
    stop_event = asyncio.Event()
    await run_dashboard(FakeController(stop_event), refresh_hz=8.0, stop_event=stop_event)


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.write("fake dashboard exited\n")
