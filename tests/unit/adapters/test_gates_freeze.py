"""Freeze windows: cron parsing and matching, recurring and explicit windows across time zones
and daylight saving changes, the cluster ConfigMap's window list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rollwise.adapters.gates.freeze import (
    InvalidWindow,
    evaluate_windows,
    latest_start,
    open_window,
    parse_cron,
    parse_windows,
    zone,
)
from rollwise.core.spec_release import FreezeWindow


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# ------------------------------------------------------------------------------------ parsing


_SPAN = {
    "minutes": timedelta(days=1),
    "hours": timedelta(days=1),
    "months": timedelta(days=366),
    "weekdays": timedelta(days=366),
}


def fired_values(expression: str, field: str) -> set[int]:
    """The values of ``field`` over every firing of ``expression`` in the span before
    2026-06-02 (a Tuesday, so the day before it is a Monday)."""
    end = datetime(2026, 6, 2)
    values: set[int] = set()
    for local in parse_cron(expression).fires_back_from(end):
        if local < end - _SPAN[field]:
            break
        values.add(
            {
                "minutes": local.minute,
                "hours": local.hour,
                "months": local.month,
                "weekdays": local.isoweekday() % 7,
            }[field]
        )
    return values


@pytest.mark.parametrize(
    ("expression", "field", "expected"),
    [
        pytest.param("* * * * *", "minutes", set(range(60)), id="star-minutes"),
        pytest.param("*/15 * * * *", "minutes", {0, 15, 30, 45}, id="step"),
        pytest.param("5,10-12 * * * *", "minutes", {5, 10, 11, 12}, id="list-and-range"),
        pytest.param("0 9-17/4 * * *", "hours", {9, 13, 17}, id="range-step"),
        pytest.param("0 20/2 * * *", "hours", {20, 22}, id="value-step-to-max"),
        pytest.param("0 0 * JAN,mar-May *", "months", {1, 3, 4, 5}, id="month-names"),
        pytest.param("0 0 * * MON-FRI", "weekdays", {1, 2, 3, 4, 5}, id="weekday-names"),
        pytest.param("0 0 * * 5-7", "weekdays", {5, 6, 0}, id="seven-is-sunday"),
        pytest.param("@daily", "hours", {0}, id="macro"),
        pytest.param("@hourly", "minutes", {0}, id="macro-hourly"),
    ],
)
def test_parse_cron_fields(expression: str, field: str, expected: set[int]) -> None:
    assert fired_values(expression, field) == expected


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        pytest.param("* * * *", "needs 5 fields", id="four-fields"),
        pytest.param("* * * * * *", "found 6", id="six-fields"),
        pytest.param("60 * * * *", "minute field '60' is not valid", id="minute-range"),
        pytest.param("* 24 * * *", "hour field '24' is not valid", id="hour-range"),
        pytest.param("* * 0 * *", "day-of-month field '0' is not valid", id="dom-zero"),
        pytest.param("* * * 13 *", "month field '13'", id="month-range"),
        pytest.param("* * * * 8", "day-of-week field '8'", id="dow-range"),
        pytest.param("*/0 * * * *", r"minute field '\*/0' is not valid", id="zero-step"),
        pytest.param("5-1 * * * *", "minute field '5-1'", id="backwards"),
        pytest.param("1,,2 * * * *", "minute field '1,,2'", id="empty-element"),
        pytest.param("x * * * *", "minute field 'x'", id="garbage"),
        pytest.param("* * * FOO *", "month field 'FOO'", id="bad-name"),
        # 30 February never comes: refused rather than a window that never opens.
        pytest.param("0 0 30 2 *", "day-of-month field '30'", id="never"),
    ],
)
def test_parse_cron_refuses(expression: str, problem: str) -> None:
    with pytest.raises(InvalidWindow, match=problem):
        parse_cron(expression)


@pytest.mark.parametrize(
    ("expression", "local", "expected"),
    [
        pytest.param("30 9 * * *", "2026-03-02T09:30", True, id="exact"),
        pytest.param("30 9 * * *", "2026-03-02T09:31", False, id="minute-off"),
        pytest.param("0 18 * * FRI", "2026-11-27T18:00", True, id="friday"),
        pytest.param("0 18 * * FRI", "2026-11-26T18:00", False, id="thursday"),
        pytest.param("0 0 24-26 DEC *", "2026-12-25T00:00", True, id="christmas"),
        pytest.param("0 0 24-26 DEC *", "2026-11-25T00:00", False, id="not-december"),
        # Both day fields restricted: either matches (Vixie cron).
        pytest.param("0 0 1 * MON", "2026-06-01T00:00", True, id="dom-or-dow-both"),
        pytest.param("0 0 1 * MON", "2026-06-08T00:00", True, id="dom-or-dow-monday"),
        pytest.param("0 0 1 * MON", "2026-06-09T00:00", False, id="dom-or-dow-neither"),
        # One day field is a star: both must match.
        pytest.param("0 0 */2 * MON", "2026-06-08T00:00", False, id="star-step-dom-and"),
        pytest.param("0 0 * * 0", "2026-06-07T00:00", True, id="sunday-zero"),
        pytest.param("0 0 * * 7", "2026-06-07T00:00", True, id="sunday-seven"),
    ],
)
def test_cron_matches(expression: str, local: str, expected: bool) -> None:
    assert parse_cron(expression).matches(datetime.fromisoformat(local)) is expected


# ------------------------------------------------------------------------- recurring windows


def recurring(schedule: str, duration: str, tz: str = "UTC", name: str = "w") -> FreezeWindow:
    return FreezeWindow(name=name, schedule=schedule, duration=duration, time_zone=tz)


def explicit(start: str, end: str, tz: str = "UTC", name: str = "w") -> FreezeWindow:
    return FreezeWindow(name=name, start=start, end=end, time_zone=tz)


@pytest.mark.parametrize(
    ("window", "now", "end"),
    [
        # Weekday business hours in New York: 09:00 EST is 14:00Z, 09:00 EDT is 13:00Z.
        pytest.param(
            recurring("0 9 * * 1-5", "8h", "America/New_York"),
            "2026-01-05T13:30:00",
            None,
            id="ny-winter-before-opening",
        ),
        pytest.param(
            recurring("0 9 * * 1-5", "8h", "America/New_York"),
            "2026-01-05T14:00:00",
            "2026-01-05T22:00:00",
            id="ny-winter-at-opening",
        ),
        pytest.param(
            recurring("0 9 * * 1-5", "8h", "America/New_York"),
            "2026-07-06T13:30:00",
            "2026-07-06T21:00:00",
            id="ny-summer-open",
        ),
        pytest.param(
            recurring("0 9 * * 1-5", "8h", "America/New_York"),
            "2026-07-06T21:00:00",
            None,
            id="ny-summer-end-is-exclusive",
        ),
        pytest.param(
            recurring("0 9 * * 1-5", "8h", "America/New_York"),
            "2026-07-04T14:00:00",
            None,
            id="ny-saturday",
        ),
        # Friday evening to Monday morning, across the week boundary.
        pytest.param(
            recurring("0 18 * * FRI", "62h", "Europe/Berlin"),
            "2026-11-30T06:59:00",
            "2026-11-30T07:00:00",
            id="weekend-freeze-monday-dawn",
        ),
        pytest.param(
            recurring("0 18 * * FRI", "62h", "Europe/Berlin"),
            "2026-11-30T07:00:00",
            None,
            id="weekend-freeze-over",
        ),
        # A window that started in the previous year.
        pytest.param(
            recurring("0 0 24 DEC *", "336h", "UTC"),
            "2027-01-03T12:00:00",
            "2027-01-07T00:00:00",
            id="year-boundary",
        ),
        # Spring forward in Berlin (2026-03-29, 02:00 CET -> 03:00 CEST): 02:30 does not
        # exist; it fires at 03:30 CEST (01:30Z).
        pytest.param(
            recurring("30 2 * * *", "1h", "Europe/Berlin"),
            "2026-03-29T01:45:00",
            "2026-03-29T02:30:00",
            id="berlin-spring-gap-shifted",
        ),
        pytest.param(
            recurring("30 2 * * *", "1h", "Europe/Berlin"),
            "2026-03-29T01:15:00",
            None,
            id="berlin-spring-before-gap",
        ),
        # Fall back (2026-10-25, 03:00 CEST -> 02:00 CET): 02:30 happens twice; it fires
        # once, at the first (00:30Z); the window lasts one real hour.
        pytest.param(
            recurring("30 2 * * *", "1h", "Europe/Berlin"),
            "2026-10-25T01:10:00",
            "2026-10-25T01:30:00",
            id="berlin-autumn-first-occurrence",
        ),
        pytest.param(
            recurring("30 2 * * *", "1h", "Europe/Berlin"),
            "2026-10-25T01:40:00",
            None,
            id="berlin-autumn-no-second-firing",
        ),
        # Hourly on the autumn day: the repeated 02:00 (01:00Z) does not fire again.
        pytest.param(
            recurring("0 * * * *", "30m", "Europe/Berlin"),
            "2026-10-25T01:10:00",
            None,
            id="berlin-autumn-hourly-once",
        ),
        pytest.param(
            recurring("0 * * * *", "30m", "Europe/Berlin"),
            "2026-10-25T00:10:00",
            "2026-10-25T00:30:00",
            id="berlin-autumn-hourly-first",
        ),
        # Duration is elapsed time: an 8h window across the autumn change ends 8 real hours
        # after it opened (00:00 CEST = 22:00Z -> 06:00Z, which is 07:00 CET).
        pytest.param(
            recurring("0 0 25 OCT *", "8h", "Europe/Berlin"),
            "2026-10-25T05:59:00",
            "2026-10-25T06:00:00",
            id="duration-is-elapsed",
        ),
        # Southern hemisphere: Sydney is UTC+11 in January (daylight time).
        pytest.param(
            recurring("0 0 * * *", "2h", "Australia/Sydney"),
            "2026-01-10T13:30:00",
            "2026-01-10T15:00:00",
            id="sydney-summer",
        ),
        pytest.param(
            recurring("0 0 * * *", "2h", "Australia/Sydney"),
            "2026-07-10T14:30:00",
            "2026-07-10T16:00:00",
            id="sydney-winter",
        ),
        pytest.param(
            recurring("0 0 * * *", "2h", "Asia/Kolkata"),
            "2026-05-01T19:00:00",
            "2026-05-01T20:30:00",
            id="half-hour-offset",
        ),
        # Overlapping firings: every 10 minutes for 30 minutes is always open.
        pytest.param(
            recurring("*/10 * * * *", "30m", "UTC"),
            "2026-05-01T12:34:00",
            "2026-05-01T13:00:00",
            id="overlapping-latest-end",
        ),
        # Explicit windows.
        pytest.param(
            explicit("2026-12-20T00:00:00Z", "2027-01-04T00:00:00Z"),
            "2026-12-24T12:00:00",
            "2027-01-04T00:00:00",
            id="explicit-open",
        ),
        pytest.param(
            explicit("2026-12-20T00:00:00Z", "2027-01-04T00:00:00Z"),
            "2027-01-04T00:00:00",
            None,
            id="explicit-end-exclusive",
        ),
        pytest.param(
            explicit("2026-12-20T00:00:00", "2026-12-21T00:00:00", "Asia/Tokyo"),
            "2026-12-19T15:00:00",
            "2026-12-20T15:00:00",
            id="explicit-naive-in-zone",
        ),
        pytest.param(
            explicit("2026-12-20T00:00:00+02:00", "2026-12-21T00:00:00+02:00", "Asia/Tokyo"),
            "2026-12-19T22:30:00",
            "2026-12-20T22:00:00",
            id="explicit-offset-wins-over-zone",
        ),
        pytest.param(
            explicit("2026-12-24", "2026-12-27", "Europe/Berlin"),
            "2026-12-23T23:30:00",
            "2026-12-26T23:00:00",
            id="explicit-dates",
        ),
    ],
)
def test_open_window(window: FreezeWindow, now: str, end: str | None) -> None:
    found = open_window(window, utc(now))
    if end is None:
        assert found is None
    else:
        assert found is not None
        assert found.end == utc(end)
        assert found.start <= utc(now) < found.end


@pytest.mark.parametrize(
    ("window", "problem"),
    [
        pytest.param(recurring("0 25 * * *", "1h"), "hour field '25' is not valid", id="bad-cron"),
        pytest.param(recurring("0 1 * * *", "1h", "Mars/Olympus"), "unknown time zone", id="tz"),
        pytest.param(recurring("0 1 * * *", "0s"), "must be more than 0s", id="zero-duration"),
        pytest.param(recurring("0 1 * * *", "9000h"), "at most 366 days", id="too-long"),
        pytest.param(
            FreezeWindow(name="w", schedule="0 1 * * *"), "either schedule and duration", id="half"
        ),
        pytest.param(
            FreezeWindow(name="w", start="2026-01-01T00:00:00Z"),
            "either schedule and duration",
            id="no-end",
        ),
        pytest.param(
            FreezeWindow(
                name="w", schedule="0 1 * * *", duration="1h", start="2026-01-01", end="2026-01-02"
            ),
            "either schedule and duration",
            id="both-shapes",
        ),
        pytest.param(FreezeWindow(name="w"), "either schedule and duration", id="empty"),
        pytest.param(explicit("soon", "2026-01-02"), "start 'soon' is not an RFC 3339", id="t"),
        pytest.param(explicit("2026-01-02", "2026-01-01"), "is not after start", id="backwards"),
    ],
)
def test_invalid_windows_name_the_problem(window: FreezeWindow, problem: str) -> None:
    with pytest.raises(InvalidWindow, match=problem) as raised:
        open_window(window, utc("2026-01-01T12:00:00"))
    assert str(raised.value).startswith("freeze window w: ")


def test_latest_start_is_bounded_by_lookback() -> None:
    schedule = parse_cron("0 0 1 1 *")
    tz = zone("UTC")
    now = utc("2026-06-01T00:00:00")
    assert latest_start(schedule, tz, now, timedelta(days=200)) == utc("2026-01-01T00:00:00")
    assert latest_start(schedule, tz, now, timedelta(days=100)) is None


def test_a_rare_schedule_with_a_long_window_is_fast() -> None:
    # 29 February with a 366-day window: the search walks about a year of days.
    started = datetime.now(UTC)
    found = open_window(recurring("0 0 29 2 *", "8784h"), utc("2028-03-01"))
    assert found is not None
    assert found.start == utc("2028-02-29T00:00:00")
    assert datetime.now(UTC) - started < timedelta(seconds=2)


def test_an_every_minute_schedule_is_fast() -> None:
    started = datetime.now(UTC)
    for duration in ("1h", "8784h"):
        summer = open_window(
            recurring("* * * * *", duration, "Europe/Berlin"), utc("2026-06-01T12:30:30")
        )
        assert summer is not None
        assert summer.start == utc("2026-06-01T12:30:00")
        # 02:30 CET, in the repeated hour: its minutes fired already (CEST), so the latest
        # start is 02:59 CEST (00:59Z).
        autumn = open_window(
            recurring("* * * * *", duration, "Europe/Berlin"), utc("2026-10-25T01:30:30")
        )
        assert autumn is not None
        assert autumn.start == utc("2026-10-25T00:59:00")
    assert datetime.now(UTC) - started < timedelta(seconds=2)


# ------------------------------------------------------------------ several windows, cluster


def test_evaluate_windows_orders_open_by_end_and_collects_problems() -> None:
    windows = [
        explicit("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", name="short"),
        explicit("2026-01-01T00:00:00Z", "2026-01-09T00:00:00Z", name="long"),
        recurring("0 0 * * *", "1h", "Nowhere/City", name="broken"),
        explicit("2026-02-01T00:00:00Z", "2026-02-02T00:00:00Z", name="later"),
    ]
    verdict = evaluate_windows(windows, utc("2026-01-01T12:00:00"))
    assert [w.name for w in verdict.open] == ["long", "short"]
    assert verdict.problems == ("freeze window broken: unknown time zone 'Nowhere/City'",)


def test_parse_cluster_windows_yaml_and_json() -> None:
    raw = """
- name: year-end
  start: "2026-12-20T00:00:00Z"
  end: "2027-01-04T00:00:00Z"
- name: weekend
  schedule: "0 18 * * FRI"
  duration: 62h
  timeZone: Europe/Berlin
"""
    windows = parse_windows(raw, "freeze ConfigMap ops/freeze")
    assert [w.name for w in windows] == ["year-end", "weekend"]
    assert windows[1].time_zone == "Europe/Berlin"
    as_json = '[{"name": "x", "schedule": "@daily", "duration": "1h"}]'
    assert parse_windows(as_json, "cm")[0].schedule == "@daily"
    assert parse_windows("", "cm") == []


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        pytest.param("name: x", "must be a list", id="not-a-list"),
        pytest.param("- name: x\n  duration: 5 minutes", "window 0: duration", id="bad-duration"),
        pytest.param("- schedule: '@daily'", "window 0: name", id="no-name"),
        pytest.param("- name: x\n  timezone: UTC", "window 0: timezone", id="unknown-field"),
        pytest.param("- [unclosed", "is not YAML", id="not-yaml"),
    ],
)
def test_parse_cluster_windows_refuses(raw: str, problem: str) -> None:
    with pytest.raises(InvalidWindow, match=problem) as raised:
        parse_windows(raw, "freeze ConfigMap ops/freeze")
    assert "freeze ConfigMap ops/freeze" in str(raised.value)


def test_matches_uses_calendar_dates() -> None:
    schedule = parse_cron("0 0 29 2 *")
    assert schedule.matches(datetime(2028, 2, 29))
    assert not schedule.matches(datetime(2027, 3, 1))
    assert not schedule.matches(datetime(2028, 2, 29, 0, 1))


def test_last_day_of_month_and_nth_weekday() -> None:
    assert parse_cron("0 0 L * *").matches(datetime(2026, 2, 28))
    assert not parse_cron("0 0 L * *").matches(datetime(2026, 2, 27))
    # The first Monday of June 2026 is the 1st; the 8th is the second.
    assert parse_cron("0 0 * * MON#1").matches(datetime(2026, 6, 1))
    assert not parse_cron("0 0 * * MON#1").matches(datetime(2026, 6, 8))
