import asyncio
import io
import json

from tests.tui.snapshots import make_session, make_torrent
from torrentpy.engine.snapshot import SessionSnapshot
from torrentpy.tui.plain import PlainReporter, format_progress_line, run_json, run_plain, stats_record


class TickingController:
    """Progress advances by 10% per snapshot."""

    def __init__(self, stop_event: asyncio.Event, *, name: str = "ubuntu.iso") -> None:
        self.stop_event = stop_event
        self.calls = 0
        self.name = name

    def snapshot(self) -> SessionSnapshot:
        self.calls += 1
        fraction = min(1.0, 0.1 * self.calls)
        return make_session(
            make_torrent(name=self.name, pieces=100, have_fraction=fraction, peers=3, eta_s=12.0)
        )

    def pause(self, info_hash_hex: str) -> None:
        raise AssertionError("reporters never send commands")

    resume = pause

    def request_stop(self) -> None:
        self.stop_event.set()


def test_progress_line_format() -> None:
    t = make_torrent(name="ubuntu.iso", pieces=1000, have_fraction=0.42, peers=3, eta_s=12.0)
    assert format_progress_line(t) == "ubuntu.iso  42.0%  ↓ 12.3 MiB/s ↑ 0 B/s  peers 3  ETA 0:12"
    seeding = make_torrent(name="done.iso", have_fraction=1.0, state="seeding", up_rate_bps=2048.0)
    assert format_progress_line(seeding).endswith("↑ 2.00 KiB/s  peers 5  [seeding]")
    broken = make_torrent(name="x", state="error", error="disk\nfull\x1b[2J")
    assert "error: disk\\x0afull\\x1b[2J" in format_progress_line(broken)


def test_progress_line_escapes_hostile_names() -> None:
    line = format_progress_line(make_torrent(name="a\x1b]0;pwned\x07\nb\u202ec"))
    assert "\x1b" not in line and "\n" not in line and "\x07" not in line and "\u202e" not in line
    assert line.startswith("a\\x1b]0;pwned\\x07\\x0ab\\u202ec  ")


async def test_plain_reporter_prints_periodically_and_once_more_at_stop() -> None:
    stop_event = asyncio.Event()
    out = io.StringIO()
    controller = TickingController(stop_event)
    task = asyncio.create_task(run_plain(controller, stop_event=stop_event, interval_s=0.05, file=out))
    await asyncio.sleep(0.28)
    stop_event.set()
    await asyncio.wait_for(task, 2)
    lines = out.getvalue().splitlines()
    assert len(lines) >= 3  # periodic: several reports in 0.28 s, not just the first and last
    percents = [float(line.split()[1].rstrip("%")) for line in lines]
    assert percents == sorted(percents) and percents[0] < percents[-1]
    assert all("peers 3" in line and "ETA" in line for line in lines[:-1] if not line.endswith("]"))
    assert len(lines) == controller.calls


def test_plain_reporter_on_an_ascii_only_stream() -> None:
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="ascii")
    PlainReporter(TickingController(asyncio.Event(), name="café"), file=out).report()
    text = raw.getvalue().decode("ascii")
    assert "down 12.3 MiB/s up 0 B/s" in text
    assert "caf\\xe9" in text


async def test_json_reporter_stats_and_events() -> None:
    stop_event = asyncio.Event()
    out = io.StringIO()
    events: asyncio.Queue = asyncio.Queue()
    controller = TickingController(stop_event, name="evil\x1b[2J\n")
    task = asyncio.create_task(
        run_json(controller, stop_event=stop_event, interval_s=0.05, file=out, events=events)
    )
    await asyncio.sleep(0.12)
    await events.put({"event": "piece_finished", "info_hash": "aa" * 20, "piece": 7, "rate": float("inf")})
    await asyncio.sleep(0.08)
    await events.put({"event": "torrent_finished", "info_hash": "aa" * 20})
    stop_event.set()
    await asyncio.wait_for(task, 2)
    text = out.getvalue()
    assert "\x1b" not in text  # control characters are \u-escaped by JSON
    records = [json.loads(line) for line in text.splitlines()]
    stats = [r for r in records if r["type"] == "stats"]
    evts = [r for r in records if r["type"] == "event"]
    assert len(stats) >= 3
    assert [e["event"] for e in evts] == ["piece_finished", "torrent_finished"]
    assert evts[0]["piece"] == 7 and evts[0]["rate"] is None
    assert records[-1]["type"] == "stats"  # a final report after the last event
    t = stats[-1]["torrents"][0]
    assert t["name"] == "evil\x1b[2J\n"  # exact for machines
    assert t["progress"] > stats[0]["torrents"][0]["progress"]
    assert t["peers"] == 3 and t["eta_s"] == 12.0 and t["pieces"] == 100
    assert stats[-1]["listen_port"] == 6881


def test_stats_record_has_no_non_finite_numbers() -> None:
    snap = make_session(make_torrent(eta_s=None, ratio=float("inf")))
    record = stats_record(snap, now_s=1.0)
    json.dumps(record, allow_nan=False)
    assert record["torrents"][0]["eta_s"] is None and record["torrents"][0]["ratio"] is None
    assert record["time"] == 1.0


def test_stats_record_has_the_dht_node_count_or_null_when_off() -> None:
    assert stats_record(make_session(dht_nodes=57), now_s=1.0)["dht_nodes"] == 57
    assert stats_record(make_session(), now_s=1.0)["dht_nodes"] is None
