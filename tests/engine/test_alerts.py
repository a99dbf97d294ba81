"""Alerts are typed, but each still reads out as the exact record `--json` has always written."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
from typing import Any

import pytest

from tests.tui.snapshots import make_session, make_torrent
from torrentpy.engine import alerts
from torrentpy.tui.plain import run_json

NAME, HEX = "ubuntu.iso", "ab" * 20


@pytest.mark.parametrize(
    ("alert", "expected"),
    [
        (alerts.Failed("disk full"), {"message": "disk full"}),
        (alerts.Checking(), {}),
        (alerts.Checking(12), {"pieces": 12}),
        (alerts.Checking(0), {"pieces": 0}),
        (alerts.Resumed(3, 10), {"pieces": 3, "total": 10}),
        (alerts.TrackerError("timed out"), {"message": "timed out"}),
        (alerts.TrackerWarning("slow down"), {"message": "slow down"}),
        (alerts.PeerBanned("1.2.3.4:5", "sent corrupt data for piece 7"),
         {"peer": "1.2.3.4:5", "reason": "sent corrupt data for piece 7"}),
        (alerts.PeerError("[::1]:6881", "bad handshake"), {"peer": "[::1]:6881", "reason": "bad handshake"}),
        (alerts.HashFailed(7, ("1.2.3.4:5", "6.7.8.9:10")), {"piece": 7, "peers": ["1.2.3.4:5", "6.7.8.9:10"]}),
        (alerts.Completed(4, ({"peer": "1.2.3.4:5", "client": "aria2 1.36.0", "downloaded": 99},)),
         {"downloaded_pieces": 4, "peers": [{"peer": "1.2.3.4:5", "client": "aria2 1.36.0", "downloaded": 99}]}),
        (alerts.Finished(), {}),
        (alerts.MetadataReceived("ubuntu.iso"), {"name": "ubuntu.iso"}),
    ],
)
def test_a_torrent_alert_is_the_old_dict_in_the_old_order(alert: alerts.TorrentAlert, expected: dict) -> None:
    stamped = alert.about(NAME, HEX)
    record = stamped.as_dict()
    # What Torrent.emit built before alerts were typed: {"event", "torrent", "info_hash", **fields}.
    old = {"event": alert.kind, "torrent": NAME, "info_hash": HEX, **expected}
    assert record == old
    assert list(record) == list(old)  # key order is what --json prints
    assert json.dumps(record) == json.dumps(old)
    assert stamped == dataclasses.replace(alert, torrent=NAME, info_hash=HEX)
    with pytest.raises(dataclasses.FrozenInstanceError):
        stamped.torrent = "other"  # type: ignore[misc]


def test_listening_names_no_torrent() -> None:
    assert alerts.Listening(6881).as_dict() == {"event": "listening", "port": 6881}


def test_every_kind_has_its_own_name() -> None:
    kinds = [cls.kind for cls in vars(alerts).values()
             if isinstance(cls, type) and issubclass(cls, alerts.Alert) and cls.kind]
    assert len(kinds) == len(set(kinds)) == 12


class _Still:
    def snapshot(self) -> Any:
        return make_session(make_torrent())


async def test_json_lines_write_an_alert_as_its_record() -> None:
    out = io.StringIO()
    events: asyncio.Queue[alerts.Alert] = asyncio.Queue()
    stop = asyncio.Event()
    task = asyncio.create_task(run_json(_Still(), stop_event=stop, events=events, interval_s=60, file=out))  # type: ignore[arg-type]
    events.put_nowait(alerts.HashFailed(3, ("1.2.3.4:5",)).about(NAME, HEX))
    await asyncio.sleep(0.05)
    events.put_nowait(alerts.Listening(6881))  # still queued at the stop: written before the last stats
    stop.set()
    await asyncio.wait_for(task, 5)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    evts = [r for r in records if r["type"] == "event"]
    assert [[k for k in r if k != "time"] for r in evts] == [
        ["type", "event", "torrent", "info_hash", "piece", "peers"], ["type", "event", "port"]]
    assert evts[0]["event"] == "hash_failed" and evts[0]["peers"] == ["1.2.3.4:5"]
    assert evts[1] == {"type": "event", "event": "listening", "time": evts[1]["time"], "port": 6881}
