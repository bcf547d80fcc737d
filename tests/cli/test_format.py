"""The plain-text formatting helpers."""

from __future__ import annotations

import json
import math

import pytest

from mltrail.cli import format as fmt

NOW = 1_800_000_000_000


@pytest.mark.parametrize(
    ("ago_ms", "text"),
    [(0, "0s ago"), (59_000, "59s ago"), (60_000, "1m ago"), (3 * 3_600_000, "3h ago"),
     (2 * 86_400_000, "2d ago")],
)  # fmt: skip
def test_when_recent(ago_ms: int, text: str):
    assert fmt.when(NOW - ago_ms, NOW) == text


def test_when_old_or_missing():
    assert fmt.when(NOW - 30 * 86_400_000, NOW).count("-") == 2  # a date
    assert fmt.when(None) == fmt.MISSING
    assert fmt.when(NOW + 60_000, NOW).count("-") == 2  # clock skew: a date, not "-1m ago"


@pytest.mark.parametrize(
    ("ms", "text"),
    [(None, "—"), (-5, "0.0s"), (400, "0.4s"), (42_000, "42s"), (187_000, "3m07s"),
     (3_900_000, "1h05m"), (2 * 86_400_000 + 3 * 3_600_000, "2d03h")],
)  # fmt: skip
def test_duration(ms: int | None, text: str):
    assert fmt.duration(ms) == text


@pytest.mark.parametrize(
    ("n", "text"), [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (5 * 1024**3, "5.0 GiB")]
)
def test_size(n: int, text: str):
    assert fmt.size(n) == text


def test_numbers():
    assert fmt.number(math.nan) == "NaN"
    assert fmt.number(-math.inf) == "-inf"
    assert fmt.number(0.123456789) == "0.123457"
    assert fmt.number(5.0) == "5"
    assert fmt.exact(0.1 + 0.2) == "0.30000000000000004"
    assert fmt.exact(math.inf) == "inf"


def test_json_safe_makes_valid_json():
    data = {"a": [math.nan, math.inf, -math.inf, 1.5], "b": {"c": (1, None)}}
    text = json.dumps(fmt.json_safe(data), allow_nan=False)
    assert json.loads(text) == {
        "a": ["NaN", "Infinity", "-Infinity", 1.5],
        "b": {"c": [1, None]},
    }


def test_run_duration():
    assert fmt.run_duration_ms(1000, 3000, running=False) == 2000
    assert fmt.run_duration_ms(1000, None, running=False) is None
    assert fmt.run_duration_ms(1000, None, running=True, now=5000) == 4000


def test_number_columns_are_formatted_alike():
    # The column: `1` beside `0.955556` read as another kind of value.
    assert fmt.number_column([1.0, 0.955556, 0.9111111111, None]) == [
        "1.000000",
        "0.955556",
        "0.911111",
        None,
    ]
    # Integers stay integers only when the whole column is integral.
    assert fmt.number_column([1.0, 20.0, None, math.nan]) == ["1", "20", None, "NaN"]
    assert fmt.number_column([-3.5, 100.0, math.inf]) == ["-3.50000", "100.00000", "inf"]
    # Too wide for one number of decimals: the same significant digits each.
    assert fmt.number_column([1e9, 0.5]) == ["1.00000e+09", "0.500000"]
    assert fmt.number_column([1e-9, 0.5]) == ["1.00000e-09", "0.500000"]
    assert fmt.number_column([]) == [] and fmt.number_column([0.0]) == ["0"]
