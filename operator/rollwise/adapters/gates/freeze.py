"""Freeze windows: cron schedules and explicit intervals, and whether one is open at an instant.

A freeze window (``rollwise.core.spec_release.FreezeWindow``) is either

* recurring: ``schedule``, a standard five-field cron expression (minute, hour, day of month,
  month, day of week), evaluated on the wall clock of ``timeZone``, with ``duration`` (a
  Go-style duration); each time the schedule fires a window opens for ``duration`` of real
  (elapsed) time; or
* explicit: ``start`` and ``end`` in RFC 3339; a time without an offset is read in
  ``timeZone``. The window is open for ``start <= now < end``.

Cron grammar: ``cronsim``'s, which follows Debian (Vixie) cron: per field ``*``, a value, a
range ``a-b``, a step ``*/n``, ``a-b/n`` or ``a/n`` (from ``a`` to the field's maximum), and
comma-separated lists of these; month names ``JAN``..``DEC`` and weekday names ``SUN``..``SAT``
(case-insensitive); weekday ``7`` is Sunday like ``0``; ``L`` (last day of the month), ``LW``
(its last weekday) and ``DOW#n`` (the n-th such weekday) as well. This module adds the macros
``@yearly``, ``@annually``, ``@monthly``, ``@weekly``, ``@daily``, ``@midnight`` and
``@hourly``, and insists on exactly five fields. When both day of month and day of week are
restricted (neither starts with ``*``) a day matches when either matches.

The schedule is iterated on the naive wall clock (``cronsim`` then applies no time-zone rule of
its own); each wall-clock firing is then read in ``timeZone`` by this module, as follows.

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
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from cronsim import CronSim, CronSimError
from pydantic import ValidationError

from rollwise.core.durations import InvalidDuration, parse_seconds
from rollwise.core.spec_release import FreezeWindow

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
_FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")


class InvalidWindow(ValueError):
    """A freeze window (or its cron schedule, time zone, duration or times) is malformed."""


@dataclass(frozen=True)
class CronSchedule:
    """A validated five-field cron expression, macros expanded (see the module doc)."""

    expression: str

    def fires_back_from(self, local: datetime) -> Iterator[datetime]:
        """The naive wall-clock minutes at which the schedule fires, strictly before ``local``
        (naive), latest first."""
        return iter(CronSim(self.expression, local, reverse=True))

    def matches(self, local: datetime) -> bool:
        """Whether the schedule fires at the wall-clock minute of ``local`` (naive)."""
        minute = local.replace(second=0, microsecond=0, tzinfo=None)
        return next(self.fires_back_from(minute + timedelta(seconds=1)), None) == minute


def parse_cron(text: str) -> CronSchedule:
    """The schedule of a cron expression; :class:`InvalidWindow` names what is wrong."""
    expression = _MACROS.get(text.strip().lower(), text.strip())
    fields = expression.split()
    if len(fields) != 5:
        raise InvalidWindow(
            f"cron schedule {text!r} needs 5 fields (minute hour day-of-month month "
            f"day-of-week), found {len(fields)}"
        )
    try:
        CronSim(expression, datetime(2000, 1, 1))
    except CronSimError as exc:
        # cronsim names the field ("Bad day-of-month"); name its text too.
        named = [n for n in _FIELD_NAMES if str(exc).endswith(n)]
        where = f"{named[0]} field {fields[_FIELD_NAMES.index(named[0])]!r}" if named else ""
        raise InvalidWindow(f"cron schedule {text!r}: {where or exc} is not valid") from None
    return CronSchedule(expression)


def zone(name: str) -> ZoneInfo:
    """The time zone called ``name`` (IANA, e.g. ``Europe/Berlin``)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidWindow(f"unknown time zone {name!r}") from exc


def _instant(local: datetime, tz: ZoneInfo) -> datetime:
    """The UTC instant of a naive wall-clock time in ``tz`` (fold 0: see the module doc)."""
    return local.replace(tzinfo=tz, fold=0).astimezone(UTC)


def latest_start(
    schedule: CronSchedule, tz: ZoneInfo, now: datetime, lookback: timedelta
) -> datetime | None:
    """The latest instant at or before ``now``, and after ``now - lookback``, at which
    ``schedule`` fires on the wall clock of ``tz`` (None when it does not fire in between)."""
    now = now.astimezone(UTC)
    earliest = now - lookback
    # Wall-clock firings are walked back from a day after now's wall clock: around a DST
    # change a later wall-clock time can be an earlier instant (the autumn hour read first).
    start = now.astimezone(tz).replace(tzinfo=None) + timedelta(days=1)
    floor = earliest.astimezone(tz).replace(tzinfo=None) - timedelta(days=1)
    best: datetime | None = None
    found_at: datetime | None = None
    for local in schedule.fires_back_from(start):
        if local < floor or (found_at is not None and local < found_at - timedelta(days=1)):
            break
        fired = _instant(local, tz)
        if earliest < fired <= now and (best is None or fired > best):
            best, found_at = fired, local
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
