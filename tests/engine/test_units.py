import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.units import (
    UnitError,
    format_bytes,
    format_rate,
    parse_bytes,
    parse_rate,
    parse_seconds,
)


@pytest.mark.parametrize(("text", "expected"), [
    ("512MiB", 512 * 1024**2), ("4GiB", 4 * 1024**3), ("4 KiB", 4096), ("100MB", 10**8),
    ("1.5GiB", 3 * 512 * 1024**2), ("4096", 4096), ("7B", 7),
])
def test_sizes(text: str, expected: int) -> None:
    assert parse_bytes(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("1Gbit/s", 125e6), ("100Mbit/s", 12.5e6), ("100MB/s", 1e8), ("1MiB/s", 1024**2),
    ("500Mbps", 62.5e6), ("8bit/s", 1.0),
])
def test_rates(text: str, expected: float) -> None:
    assert parse_rate(text) == pytest.approx(expected)


@pytest.mark.parametrize(("text", "expected"), [
    ("30s", 30.0), ("250ms", 0.25), ("2min", 120.0), ("1h", 3600.0), ("100us", 1e-4), ("3", 3.0),
])
def test_durations(text: str, expected: float) -> None:
    assert parse_seconds(text) == pytest.approx(expected)


@pytest.mark.parametrize("bad", ["12 parsecs", "MiB", "", "-4GiB", "1Gbit", "5 furlongs/s"])
def test_bad_units_raise_with_the_input_named(bad: str) -> None:
    with pytest.raises(UnitError, match="expected"):
        parse_bytes(bad) if "/s" not in bad and bad != "1Gbit" else parse_rate(bad)


def test_wrong_kind_of_unit_is_rejected() -> None:
    with pytest.raises(UnitError):
        parse_bytes("30s")
    with pytest.raises(UnitError):
        parse_seconds("4GiB")
    with pytest.raises(UnitError):
        parse_rate("4GiB")


@given(st.integers(min_value=0, max_value=2**50))
def test_byte_format_round_trips_within_rounding(n: int) -> None:
    back = parse_bytes(format_bytes(n))
    assert back == n if n < 1024 else math.isclose(back, n, rel_tol=1e-3)


@given(st.floats(min_value=1.0, max_value=1e12, allow_nan=False))
def test_rate_format_round_trips_within_rounding(r: float) -> None:
    assert parse_rate(format_rate(r)) == pytest.approx(r, rel=1e-3)
