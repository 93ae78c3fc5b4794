"""Freeze windows: cron schedules and explicit intervals, and whether one is open at an instant.

A freeze window (``rollwise.core.spec.FreezeWindow``) is either

* recurring: ``schedule``, a standard five-field cron expression (minute, hour, day of month,
  month, day of week), evaluated on the wall clock of ``timeZone``, with ``duration`` (a
  Go-style duration); each time the schedule fires a window opens for ``duration`` of real
  (elapsed) time; or
* explicit: ``start`` and ``end`` in RFC 3339; a time without an offset is read in
  ``timeZone``. The window is open for ``start <= now < end``.

Cron grammar (Vixie cron): per field ``*``, a value, a range ``a-b``, a step ``*/n``,
``a-b/n`` or ``a/n`` (from ``a`` to the field's maximum), and comma-separated lists of these;
month names ``JAN``..``DEC`` and weekday names ``SUN``..``SAT`` (case-insensitive); weekday
``7`` is Sunday like ``0``; the macros ``@yearly``, ``@annually``, ``@monthly``, ``@weekly``,
``@daily``, ``@midnight`` and ``@hourly``. As in Vixie cron, when both day of month and day of
week are restricted (neither starts with ``*``) a day matches when either matches.

Daylight saving time: a wall-clock time that does not exist (the hour skipped in spring) is
read with the offset in force before the change, so it fires once, shifted by the gap (02:30 on
a day that jumps from 02:00 to 03:00 fires at 03:30); a time that happens twice (the hour
repeated in autumn) fires once, at its first occurrence. ``duration`` is elapsed time, so an
``8h`` window spanning a change still lasts eight real hours.

Pure computation on the ``now`` it is given (the time zone database aside): nothing here
reads a clock. Everything wrong with a window raises :class:`InvalidWindow` with the problem:
the gate fails on it rather than letting a release through a broken window.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import ValidationError

from rollwise.core.durations import InvalidDuration, parse_seconds
from rollwise.core.spec import FreezeWindow

#: A recurring window may last at most this long (a longer one is a typo, and it bounds how
#: far back the search for the window's latest start goes).
MAX_RECURRING_SECONDS = 366 * 86400.0

#: The key of the cluster-wide freeze ConfigMap holding the list of windows.
WINDOWS_KEY = "windows"

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = {
    name: number
    for number, name in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"],
        start=1,
    )
}
_WEEKDAYS = {name: n for n, name in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}


class InvalidWindow(ValueError):
    """A freeze window (or its cron schedule, time zone, duration or times) is malformed."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int] | None = None


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day of month", 1, 31),
    _Field("month", 1, 12, _MONTHS),
    _Field("day of week", 0, 7, _WEEKDAYS),
)


def _value(text: str, spec: _Field) -> int:
    if spec.names is not None and text.upper() in spec.names:
        return spec.names[text.upper()]
    if not text.isdigit():
        raise InvalidWindow(f"{spec.name} {text!r} is not a number")
    number = int(text)
    if not spec.low <= number <= spec.high:
        raise InvalidWindow(f"{spec.name} {number} is out of range {spec.low}-{spec.high}")
    return number


def _parse_field(text: str, spec: _Field) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise InvalidWindow(f"empty list element in {spec.name} field {text!r}")
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise InvalidWindow(f"{spec.name} step {step_text!r} must be a positive number")
            step = int(step_text)
        if base == "*":
            low, high = spec.low, spec.high
        elif "-" in base:
            first, _, last = base.partition("-")
            low, high = _value(first, spec), _value(last, spec)
            if low > high:
                raise InvalidWindow(f"{spec.name} range {base!r} runs backwards")
        else:
            low = _value(base, spec)
            high = spec.high if slash else low
        values.update(range(low, high + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class CronSchedule:
    """A parsed five-field cron expression (weekday 0 = Sunday)."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    day_star: bool
    weekday_star: bool

    def day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        in_month = day.day in self.days
        in_week = day.isoweekday() % 7 in self.weekdays
        if self.day_star or self.weekday_star:
            return in_month and in_week
        return in_month or in_week

    def matches(self, local: datetime) -> bool:
        """Whether the schedule fires at the wall-clock minute of ``local``."""
        return (
            local.minute in self.minutes
            and local.hour in self.hours
            and self.day_matches(local.date())
        )


def parse_cron(text: str) -> CronSchedule:
    """The schedule of a cron expression; :class:`InvalidWindow` names what is wrong."""
    expression = _MACROS.get(text.strip().lower(), text)
    fields = expression.split()
    if len(fields) != 5:
        raise InvalidWindow(
            f"cron schedule {text!r} needs 5 fields (minute hour day-of-month month "
            f"day-of-week), found {len(fields)}"
        )
    try:
        parsed = [_parse_field(field, spec) for field, spec in zip(fields, _FIELDS, strict=True)]
    except InvalidWindow as exc:
        raise InvalidWindow(f"cron schedule {text!r}: {exc}") from None
    weekdays = frozenset(day % 7 for day in parsed[4])
    return CronSchedule(
        minutes=parsed[0],
        hours=parsed[1],
        days=parsed[2],
        months=parsed[3],
        weekdays=weekdays,
        day_star=fields[2].startswith("*"),
        weekday_star=fields[4].startswith("*"),
    )


def zone(name: str) -> ZoneInfo:
    """The time zone called ``name`` (IANA, e.g. ``Europe/Berlin``)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidWindow(f"unknown time zone {name!r}") from exc


def _instant(local: datetime, tz: ZoneInfo) -> datetime:
    """The UTC instant of a naive wall-clock time in ``tz`` (fold 0: see the module doc)."""
    return local.replace(tzinfo=tz, fold=0).astimezone(UTC)


def _fires_on(schedule: CronSchedule, day: date, tz: ZoneInfo) -> Iterator[datetime]:
    if not schedule.day_matches(day):
        return
    for hour in sorted(schedule.hours):
        for minute in sorted(schedule.minutes):
            yield _instant(datetime(day.year, day.month, day.day, hour, minute), tz)


def latest_start(
    schedule: CronSchedule, tz: ZoneInfo, now: datetime, lookback: timedelta
) -> datetime | None:
    """The latest instant at or before ``now``, and after ``now - lookback``, at which
    ``schedule`` fires on the wall clock of ``tz`` (None when it does not fire in between)."""
    now = now.astimezone(UTC)
    earliest = now - lookback
    day = now.astimezone(tz).date() + timedelta(days=1)
    last_day = earliest.astimezone(tz).date() - timedelta(days=1)
    best: datetime | None = None
    found_on: date | None = None
    while day >= last_day:
        for fired in _fires_on(schedule, day, tz):
            if earliest < fired <= now and (best is None or fired > best):
                best, found_on = fired, day
        # Around a DST change the previous day's last minutes can map later than this day's
        # first ones: look one day further than the first day with a match.
        if found_on is not None and day < found_on:
            break
        day -= timedelta(days=1)
    return best


@dataclass(frozen=True)
class OpenWindow:
    """A freeze window open at the instant asked about: ``start <= now < end`` (UTC)."""

    name: str
    start: datetime
    end: datetime


def _parse_time(text: str, tz: ZoneInfo, what: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidWindow(f"{what} {text!r} is not an RFC 3339 time") from exc
    if parsed.tzinfo is None:
        return _instant(parsed, tz)
    return parsed.astimezone(UTC)


def open_window(window: FreezeWindow, now: datetime) -> OpenWindow | None:
    """The occurrence of ``window`` open at ``now``, if any; :class:`InvalidWindow` for a
    window that cannot be evaluated."""
    try:
        return _open_window(window, now)
    except InvalidWindow as exc:
        raise InvalidWindow(f"freeze window {window.name}: {exc}") from None


def _open_window(window: FreezeWindow, now: datetime) -> OpenWindow | None:
    tz = zone(window.time_zone)
    recurring = window.schedule is not None or window.duration is not None
    explicit = window.start is not None or window.end is not None
    if recurring == explicit or (recurring and not (window.schedule and window.duration)):
        raise InvalidWindow("needs either schedule and duration, or start and end")
    now = now.astimezone(UTC)
    if window.schedule is not None and window.duration is not None:
        schedule = parse_cron(window.schedule)
        try:
            seconds = parse_seconds(window.duration)
        except InvalidDuration as exc:
            raise InvalidWindow(str(exc)) from None
        if not 0 < seconds <= MAX_RECURRING_SECONDS:
            raise InvalidWindow(
                f"duration {window.duration} must be more than 0s and at most 366 days"
            )
        length = timedelta(seconds=seconds)
        started = latest_start(schedule, tz, now, length)
        if started is None:
            return None
        return OpenWindow(window.name, started, started + length)
    if window.start is None or window.end is None:
        raise InvalidWindow("needs either schedule and duration, or start and end")
    start = _parse_time(window.start, tz, "start")
    end = _parse_time(window.end, tz, "end")
    if end <= start:
        raise InvalidWindow(f"end {window.end} is not after start {window.start}")
    if start <= now < end:
        return OpenWindow(window.name, start, end)
    return None


def parse_windows(raw: str, source: str) -> list[FreezeWindow]:
    """The windows of a cluster freeze ConfigMap's ``windows`` value: a YAML (or JSON) list
    of objects shaped like the spec's ``FreezeWindow`` (camelCase). ``source`` names the
    ConfigMap in error messages."""
    try:
        loaded: Any = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise InvalidWindow(f"{source}: {WINDOWS_KEY} is not YAML: {exc}") from None
    if loaded is None:
        return []
    if not isinstance(loaded, list):
        raise InvalidWindow(f"{source}: {WINDOWS_KEY} must be a list of freeze windows")
    windows: list[FreezeWindow] = []
    for index, item in enumerate(loaded):
        try:
            windows.append(FreezeWindow.model_validate(item))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'window'}: {err['msg']}"
                for err in exc.errors()
            )
            raise InvalidWindow(f"{source}: window {index}: {problems}") from None
    return windows


@dataclass(frozen=True)
class FreezeVerdict:
    """The windows open at an instant (latest end first) and the problems found."""

    open: tuple[OpenWindow, ...]
    problems: tuple[str, ...]


def evaluate_windows(windows: Sequence[FreezeWindow], now: datetime) -> FreezeVerdict:
    """Every window checked at ``now``; a malformed window is a problem, not an exception."""
    opened: list[OpenWindow] = []
    problems: list[str] = []
    for window in windows:
        try:
            found = open_window(window, now)
        except InvalidWindow as exc:
            problems.append(str(exc))
            continue
        if found is not None:
            opened.append(found)
    opened.sort(key=lambda w: w.end, reverse=True)
    return FreezeVerdict(tuple(opened), tuple(problems))


__all__ = [
    "MAX_RECURRING_SECONDS",
    "WINDOWS_KEY",
    "CronSchedule",
    "FreezeVerdict",
    "InvalidWindow",
    "OpenWindow",
    "evaluate_windows",
    "latest_start",
    "open_window",
    "parse_cron",
    "parse_windows",
    "zone",
]
