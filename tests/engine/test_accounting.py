from __future__ import annotations

import math

import pytest

from torrentpy.engine.accounting import RateMeter, Transfer


def test_steady_rate_is_measured_exactly() -> None:
    m = RateMeter(5.0)
    for i in range(200):
        m.add(1000, 100.0 + i * 0.1)  # 10 kB/s
    assert m.rate(120.0) == pytest.approx(10_000, rel=0.03)
    assert m.total == 200 * 1000


def test_rate_forgets_traffic_older_than_the_window() -> None:
    m = RateMeter(5.0)
    for i in range(50):
        m.add(10_000, i * 0.1)
    assert m.rate(5.0) > 0
    assert m.rate(10.5) == 0.0
    assert m.total == 500_000


def test_rate_falls_off_as_the_window_slides() -> None:
    m = RateMeter(5.0)
    for i in range(100):
        m.add(1000, i * 0.1)  # 10 kB/s for 10 s, then silence
    full = m.rate(10.0)
    half = m.rate(12.5)
    assert full == pytest.approx(10_000, rel=0.1)
    assert half == pytest.approx(5_000, rel=0.15)


def test_young_meter_is_not_diluted_by_the_whole_window() -> None:
    m = RateMeter(5.0)
    m.add(5000, 10.0)
    m.add(5000, 11.0)
    assert m.rate(11.0) == pytest.approx(10_000)


def test_long_gap_clears_everything() -> None:
    m = RateMeter(2.0)
    m.add(10**6, 0.0)
    m.add(100, 1000.0)
    # Only the new sample is left, spread over the part of the window that has elapsed.
    assert m.rate(1000.0) == pytest.approx(100 / 1.5)


def test_memory_is_bounded() -> None:
    m = RateMeter(5.0)
    for i in range(10_000):
        m.add(1, i * 0.01)
    assert len(m._buckets) == 10


def test_zero_before_any_sample_and_bad_window() -> None:
    assert RateMeter().rate(5.0) == 0.0
    with pytest.raises(ValueError, match=r"at least 0\.5 s"):
        RateMeter(0.1)


def test_transfer_rolls_up_into_parent_and_splits_payload_from_protocol() -> None:
    torrent = Transfer()
    a, b = Transfer(parent=torrent), Transfer(parent=torrent)
    a.record_down(16384, 1.0, payload=True)
    a.record_down(17, 1.0, payload=False)
    b.record_up(16384 * 2, 1.0, payload=True)
    b.record_up(13, 1.0, payload=False)
    assert (a.downloaded, a.uploaded) == (16384, 0)
    assert torrent.downloaded == 16384 and torrent.uploaded == 32768
    assert torrent.protocol_down.total == 17 and torrent.protocol_up.total == 13
    assert torrent.ratio() == pytest.approx(2.0)
    assert torrent.down_rate_bps(1.0) > 0 and torrent.up_rate_bps(1.0) > 0


def test_ratio_edge_cases() -> None:
    t = Transfer()
    assert t.ratio() == 0.0
    t.record_up(100, 0.0, payload=True)
    assert t.ratio() == math.inf
    assert t.ratio(size_bytes=400) == pytest.approx(0.25)
