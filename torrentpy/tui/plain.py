"""Progress without a terminal UI: plain lines for ``--no-tui`` and JSON lines for ``--json``.

Both read the session only through ``Controller.snapshot()`` and stop when ``stop_event`` is set, after
writing one last report so the final state is always on record.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import math
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

from torrentpy.engine.alerts import Alert
from torrentpy.engine.snapshot import PIECE_DOWNLOADING, PIECE_HAVE, Controller, SessionSnapshot, TorrentSnapshot
from torrentpy.text import printable
from torrentpy.units import format_eta, format_rate, format_size

__all__ = [
    "JsonReporter",
    "PlainReporter",
    "format_progress_line",
    "format_summary_line",
    "run_json",
    "run_plain",
    "stats_record",
]


def format_progress_line(t: TorrentSnapshot) -> str:
    """``name  42.0%  ↓ 12.3 MiB/s ↑ 0 B/s  peers 3  ETA 0:12`` (state shown when not downloading)."""
    percent = math.floor(min(1.0, max(0.0, t.progress)) * 1000) / 10
    rates = f"↓ {format_rate(t.down_rate_bps)} ↑ {format_rate(t.up_rate_bps)}"
    line = f"{printable(t.name)}  {percent:.1f}%  {rates}  peers {t.peers}"
    if t.state == "downloading":
        line += f"  ETA {format_eta(t.eta_s)}"
    else:
        line += f"  [{printable(t.state)}]"
    if t.error:
        line += f"  error: {printable(t.error)}"
    return line


def format_summary_line(t: TorrentSnapshot) -> str:
    """What a run leaves behind for each torrent, whichever way it ended:
    ``name: downloading, 42.0% of 3.00 MiB, downloaded 1.26 MiB, uploaded 0 B``."""
    percent = math.floor(min(1.0, max(0.0, t.progress)) * 1000) / 10
    line = (f"{printable(t.name)}: {printable(t.state)}, {percent:.1f}% of {format_size(t.total_size)}, "
            f"downloaded {format_size(t.downloaded)}, uploaded {format_size(t.uploaded)}")
    return line


def _encodable(file: TextIO) -> bool:
    encoding = getattr(file, "encoding", None) or "utf-8"
    try:
        "↓↑µ…".encode(codecs.lookup(encoding).name)
    except (LookupError, UnicodeEncodeError):
        return False
    return True


class PlainReporter:
    """One line per torrent every ``interval_s`` seconds."""

    def __init__(
        self, controller: Controller, *, file: TextIO | None = None, interval_s: float = 5.0
    ) -> None:
        self.controller = controller
        self.file = file if file is not None else sys.stdout
        self.interval_s = interval_s
        self._unicode = _encodable(self.file)

    def report(self, snapshot: SessionSnapshot | None = None) -> None:
        snapshot = snapshot if snapshot is not None else self.controller.snapshot()
        for t in snapshot.torrents:
            line = format_progress_line(t)
            if not self._unicode:
                line = line.replace("↓", "down").replace("↑", "up")
                line = line.encode("ascii", "backslashreplace").decode("ascii")
            self.file.write(line + "\n")
        self.file.flush()

    async def run(self, stop_event: asyncio.Event) -> None:
        while not stop_event.is_set():
            self.report()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop_event.wait(), timeout=self.interval_s)
        self.report()


def _number(value: float | None) -> float | None:
    """JSON has no inf/NaN; unknown values are written as null."""
    if value is None or not math.isfinite(value):
        return None
    return value


def stats_record(snapshot: SessionSnapshot, *, now_s: float | None = None) -> dict[str, Any]:
    """The ``{"type": "stats", ...}`` object for one snapshot (no per-piece or per-peer detail)."""
    return {
        "type": "stats",
        "time": time.time() if now_s is None else now_s,
        "uptime_s": snapshot.uptime_s,
        "down_rate_bps": _number(snapshot.down_rate_bps),
        "up_rate_bps": _number(snapshot.up_rate_bps),
        "downloaded": snapshot.downloaded,
        "uploaded": snapshot.uploaded,
        "peers": snapshot.peers,
        # Distinct peer addresses each source (tracker, dht, pex, incoming, manual, magnet) has named.
        "peers_found": dict(snapshot.peers_found),
        "dht_nodes": snapshot.dht_nodes,  # the routing table's size; null when the DHT is off
        "listen_port": snapshot.listen_port,
        "torrents": [
            {
                "info_hash": t.info_hash_hex,
                "name": t.name,
                "state": t.state,
                "error": t.error,
                "progress": _number(t.progress),
                "done": t.done,
                "total_size": t.total_size,
                "down_rate_bps": _number(t.down_rate_bps),
                "up_rate_bps": _number(t.up_rate_bps),
                "downloaded": t.downloaded,
                "uploaded": t.uploaded,
                "ratio": _number(t.ratio),
                "eta_s": _number(t.eta_s),
                "peers": t.peers,
                "seeds": t.seeds,
                "peers_found": dict(t.peers_found),
                # Connected peers by where we learned of them.
                "peers_by_source": _count_sources(t),
                "swarm_seeds": t.swarm_seeds,
                "swarm_leechers": t.swarm_leechers,
                "pieces": len(t.piece_states),
                "pieces_have": t.piece_states.count(PIECE_HAVE),
                # Started but not yet verified and written: what a crash now could cost.
                "pieces_downloading": t.piece_states.count(PIECE_DOWNLOADING),
                "trackers": [
                    {"url": tr.url, "status": tr.status, "peers": tr.peers_returned, "message": tr.message}
                    for tr in t.trackers
                ],
            }
            for t in snapshot.torrents
        ],
    }


def _count_sources(t: TorrentSnapshot) -> dict[str, int]:
    counts: dict[str, int] = {}
    for p in t.peer_list:
        counts[p.source] = counts.get(p.source, 0) + 1
    return counts


def _record(item: Alert | Mapping[str, Any]) -> dict[str, Any]:
    return item.as_dict() if isinstance(item, Alert) else dict(item)


def _default(value: object) -> object:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)


class JsonReporter:
    """One JSON object per line: periodic ``stats`` and ``event`` records the engine hands in."""

    def __init__(
        self, controller: Controller, *, file: TextIO | None = None, interval_s: float = 2.0
    ) -> None:
        self.controller = controller
        self.file = file if file is not None else sys.stdout
        self.interval_s = interval_s

    def write(self, record: Mapping[str, Any]) -> None:
        import json  # here: --no-tui's progress lines, on the way to the first request, need no JSON

        # ensure_ascii: control characters and odd code points in names arrive \u-escaped, never raw.
        line = json.dumps(record, ensure_ascii=True, allow_nan=False, separators=(",", ":"), default=_default)
        self.file.write(line + "\n")
        self.file.flush()

    def event(self, kind: str, **fields: Any) -> None:
        """Write ``{"type": "event", "event": kind, "time": …, **fields}`` at once."""
        record: dict[str, Any] = {"type": "event", "event": kind, "time": time.time()}
        for key, value in fields.items():
            if key not in ("type", "event"):  # the record's own kind cannot be overridden by a field
                record[key] = _number(value) if isinstance(value, float) else value
        self.write(record)

    def stats(self, snapshot: SessionSnapshot | None = None) -> None:
        self.write(stats_record(snapshot if snapshot is not None else self.controller.snapshot()))

    async def run(self, stop_event: asyncio.Event, events: asyncio.Queue[Any] | None = None) -> None:
        """Stats every ``interval_s``; events from ``events`` (alerts, or dicts with an ``"event"`` name) as
        they come."""

        async def pump() -> None:
            assert events is not None
            while True:
                item = _record(await events.get())
                self.event(str(item.pop("event", "event")), **item)

        pump_task = asyncio.ensure_future(pump()) if events is not None else None
        try:
            while not stop_event.is_set():
                self.stats()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop_event.wait(), timeout=self.interval_s)
        finally:
            if pump_task is not None:
                pump_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pump_task
        if events is not None:
            while not events.empty():
                item = _record(events.get_nowait())
                self.event(str(item.pop("event", "event")), **item)
        self.stats()


async def run_plain(
    controller: Controller, *, stop_event: asyncio.Event, interval_s: float = 5.0, file: TextIO | None = None
) -> None:
    """Print ``format_progress_line`` for every torrent each ``interval_s`` until ``stop_event`` is set."""
    await PlainReporter(controller, file=file, interval_s=interval_s).run(stop_event)


async def run_json(
    controller: Controller,
    *,
    stop_event: asyncio.Event,
    interval_s: float = 2.0,
    file: TextIO | None = None,
    events: asyncio.Queue[Any] | None = None,
) -> None:
    """JSON lines: stats every ``interval_s`` and each event put on ``events``, until ``stop_event``."""
    await JsonReporter(controller, file=file, interval_s=interval_s).run(stop_event, events)
