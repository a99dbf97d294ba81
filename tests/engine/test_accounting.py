from __future__ import annotations

import pytest

from torrentpy.engine.accounting import RateMeter


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

