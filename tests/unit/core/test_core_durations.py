from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rollwise.core.durations import (
    InvalidDuration,
    add_seconds,
    format_seconds,
    is_valid,
    parse_duration,
    parse_seconds,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("30s", 30.0, id="seconds"),
        pytest.param("5m", 300.0, id="minutes"),
        pytest.param("2h", 7200.0, id="hours"),
        pytest.param("1h30m", 5400.0, id="hours-minutes"),
        pytest.param("250ms", 0.25, id="milliseconds"),
        pytest.param("1.5s", 1.5, id="fractional"),
        pytest.param("1m30s500ms", 90.5, id="three-units"),
        pytest.param("0s", 0.0, id="zero"),
    ],
)
def test_parse_valid(text: str, seconds: float) -> None:
    assert parse_seconds(text) == pytest.approx(seconds)
    assert parse_duration(text) == timedelta(seconds=seconds)
    assert is_valid(text)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("30", id="no-unit"),
        pytest.param("-5s", id="negative"),
        pytest.param("5d", id="days-not-go"),
        pytest.param("1h 30m", id="space"),
        pytest.param("s", id="unit-only"),
        pytest.param(".5s", id="no-leading-digit"),
        pytest.param("10000000000h", id="too-long"),
    ],
)
def test_parse_invalid(text: str) -> None:
    with pytest.raises(InvalidDuration):
        parse_seconds(text)
    assert not is_valid(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(0.25, "250ms", id="ms"),
        pytest.param(30, "30s", id="s"),
        pytest.param(90, "1m30s", id="m-s"),
        pytest.param(3600, "1h", id="h"),
        pytest.param(0, "0ms", id="zero"),
        pytest.param(0.9994, "999ms", id="just-under-1s-in-ms"),
        pytest.param(1, "1s", id="1s-exactly-in-seconds"),
        pytest.param(1.5, "1.5s", id="fraction-of-a-second"),
        pytest.param(60, "1m", id="1m-exactly"),
        pytest.param(61, "1m1s", id="1m1s"),
        pytest.param(90.5, "1m30.5s", id="m-fractional-s"),
        pytest.param(3661, "1h1m1s", id="h-m-s"),
        pytest.param(7322.25, "2h2m2.25s", id="h-m-fractional-s"),
        pytest.param(86400, "24h", id="a-day-in-hours"),
    ],
)
def test_format_seconds(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text


def test_add_seconds_saturates_instead_of_overflowing() -> None:
    late = datetime(9999, 12, 31, tzinfo=UTC)
    assert add_seconds(late, 1e9) == datetime.max.replace(tzinfo=UTC)
    assert add_seconds(late, 1) == late + timedelta(seconds=1)


@pytest.mark.parametrize(
    ("text", "outcome"),
    [
        pytest.param("9000000000s", 9_000_000_000.0, id="longest-allowed"),
        pytest.param("2500000h", 9_000_000_000.0, id="longest-allowed-in-hours"),
        pytest.param(
            "9000000001s",
            "invalid duration '9000000001s': longer than 9000000000s",
            id="one-second-longer-refused",
        ),
        pytest.param(
            "5x",
            "invalid duration '5x': expected a number with unit ms, s, m or h, e.g. 30s, 5m, 1h30m",
            id="unknown-unit-says-what-is-expected",
        ),
    ],
)
def test_the_longest_duration_and_the_refusals(text: str, outcome: float | str) -> None:
    if isinstance(outcome, float):
        assert parse_seconds(text) == outcome
    else:
        with pytest.raises(InvalidDuration) as refused:
            parse_seconds(text)
        assert str(refused.value) == outcome
