from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from torrentpy.engine.ratelimit import MIN_BURST_BYTES, TokenBucket, parse_rate


def simulate(bucket: TokenBucket, sizes: list[int], start: float = 0.0) -> list[tuple[float, int]]:
    """A sender that asks before every message and waits as told. Returns (send time, bytes)."""
    now = start
    sent = []
    for n in sizes:
        now += bucket.consume(n, now)
        sent.append((now, n))
    return sent


@pytest.mark.parametrize(
    ("rate_bps", "size"),
    [
        (10_000, 1),
        (10_000, 1500),
        (10_000, 16384),  # each message is more than a second of budget
        (100_000, 1500),
        (1_000_000, 16384),
        (1_000_000, 16384 * 8),
        (50 * 2**20, 16384),
        (50 * 2**20, 16384 * 8),
    ],
)
def test_long_run_rate_within_2_percent(rate_bps: int, size: int) -> None:
    bucket = TokenBucket(rate_bps)
    count = min(math.ceil(rate_bps * 60.0 / size), 200_000)
    sent = simulate(bucket, [size] * count)
    assert count * size > 10 * bucket.burst_bytes  # long enough that the burst is not the measurement
    elapsed = sent[-1][0]
    # Bytes beyond the initial burst had to be earned at rate_bps.
    earned = sum(n for _t, n in sent) - bucket.burst_bytes
    assert elapsed > 0
    assert abs(earned / elapsed - rate_bps) / rate_bps < 0.02


@settings(max_examples=200, deadline=None)
@given(
    st.floats(1_000, 10_000_000),
    st.integers(1, 200_000),
    st.lists(st.integers(1, 100_000), min_size=2, max_size=300),
    st.lists(st.floats(0, 2.0), min_size=2, max_size=300),
)
def test_no_burst_beyond_burst_bytes(rate_bps: float, burst: int, sizes: list[int],
                                     idle: list[float]) -> None:
    bucket = TokenBucket(rate_bps, burst)
    now = 0.0
    sent: list[tuple[float, int]] = []
    for i, n in enumerate(sizes):
        now += idle[i % len(idle)]  # sometimes the sender pauses, letting tokens pile up (to the cap)
        now += bucket.consume(n, now)
        sent.append((now, n))
    # Over any span [t_i, t_j] what went out is at most the burst, plus what the rate earned, plus the
    # first message, which was paid for by the span before t_i.
    for i in range(len(sent)):
        total = 0
        for j in range(i, len(sent)):
            total += sent[j][1]
            span = sent[j][0] - sent[i][0]
            assert total - sent[i][1] <= burst + rate_bps * span + 1e-6 * total + 1


def test_large_requests_go_into_debt_instead_of_stalling() -> None:
    bucket = TokenBucket(1000, burst_bytes=100)
    assert bucket.consume(100, 0.0) == 0.0
    # 5000 bytes is 50× the burst: still admitted; the wait is the time to earn it.
    assert bucket.consume(5000, 0.0) == pytest.approx(5.0)
    # Another caller queues behind the debt.
    assert bucket.consume(1000, 1.0) == pytest.approx(5.0)
    assert bucket.available(6.0) == pytest.approx(0.0)


def test_unlimited_and_set_rate() -> None:
    bucket = TokenBucket(0)
    assert bucket.unlimited
    assert all(bucket.consume(10**9, t) == 0.0 for t in range(5))
    bucket.set_rate(1000)
    assert not bucket.unlimited
    assert bucket.burst_bytes == MIN_BURST_BYTES
    assert bucket.consume(MIN_BURST_BYTES + 500, 10.0) == pytest.approx(0.5)
    bucket.set_rate(0)
    assert bucket.consume(10**9, 10.0) == 0.0
    with pytest.raises(ValueError, match="got -1"):
        bucket.set_rate(-1)
    with pytest.raises(ValueError, match="burst_bytes must be positive"):
        TokenBucket(100, burst_bytes=0)


def test_default_burst_is_a_quarter_second() -> None:
    assert TokenBucket(4_000_000).burst_bytes == 1_000_000
    assert TokenBucket(1000).burst_bytes == MIN_BURST_BYTES


def test_idle_tokens_are_capped_at_the_burst() -> None:
    bucket = TokenBucket(1000, burst_bytes=500)
    bucket.consume(500, 0.0)
    assert bucket.available(1000.0) == 500
    assert bucket.consume(1500, 1000.0) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("250000", 250_000),
        ("500K", 500 * 1024),
        ("500k", 500 * 1024),
        ("2M", 2 * 1024**2),
        ("1.5MiB", int(1.5 * 1024**2)),
        ("800KB", 800 * 1024),
        ("800kb", 800 * 1024),
        ("1G", 1024**3),
        ("1GB/s", 1024**3),
        ("2 MiB", 2 * 1024**2),
        ("  64K  ", 64 * 1024),
        ("100B", 100),
        (".5K", 512),
        ("1.", 1),
    ],
)
def test_parse_rate(text: str, expected: int) -> None:
    assert parse_rate(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("-5K", "negative"),
        ("fast", "not understood"),
        ("5X", "not understood"),
        ("1.2.3M", "not understood"),
        ("K", "not understood"),
        ("5 K B", "not understood"),
        ("1" * 40, "too long"),
        ("nan", "not understood"),
        ("inf", "not understood"),
        ("1e6", "not understood"),
    ],
)
def test_parse_rate_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_rate(text)
