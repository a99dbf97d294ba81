"""Sizes and rates as the command line reads them, and as every layer writes them."""

from __future__ import annotations

import pytest

from torrentpy.units import format_eta, format_rate, format_size, parse_rate, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [("262144", 262144), ("256K", 256 * 1024), ("1M", 1024**2), ("32MiB", 32 * 1024**2), ("1.5G", 3 * 1024**3 // 2),
     ("8 mb", 8 * 1024**2), ("0", 0)],
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "size is empty"), ("-1M", "size '-1M' is negative$"), ("big", "size 'big' is not understood"),
     ("9" * 40, "too long to be a size")],
)
def test_parse_size_errors_name_a_size(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_size(text)


def test_parse_rate_errors_still_speak_of_rates() -> None:
    with pytest.raises(ValueError, match="rate '-1M' is negative; use 0 for unlimited"):
        parse_rate("-1M")
    with pytest.raises(ValueError, match="rate is empty; give bytes/s"):
        parse_rate(" ")


def test_a_size_and_a_rate_with_the_same_text_are_the_same_bytes() -> None:
    for text in ("500K", "2M", "1.5MiB", "800KB", "1G", "250000"):
        assert parse_size(text) == parse_rate(text)


@pytest.mark.parametrize("n", [0, 1, 999, 1000, 1023, 1024, 10 * 1024**2, 5 * 1024**4])
def test_format_size_reads_back_close_to_the_number(n: int) -> None:
    text = format_size(n, compact=True)
    assert abs(parse_size(text) - n) <= max(1, n // 100)


def test_format_rate_and_eta() -> None:
    assert format_rate(2048) == "2.00 KiB/s"
    assert format_rate(float("nan"), compact=True) == "0"
    assert format_eta(3725) == "1:02:05"
    assert format_eta(None) == "∞"


def test_the_engine_and_the_dashboard_keep_their_names_for_these() -> None:
    from torrentpy.engine import ratelimit
    from torrentpy.tui import dashboard

    assert ratelimit.parse_rate is parse_rate
    assert dashboard.format_rate is format_rate and dashboard.format_eta is format_eta
