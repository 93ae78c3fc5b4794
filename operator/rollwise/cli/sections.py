"""The sections every view shows the same way, whichever the kind: the name and the status
message at the top, the ``Conditions:`` and ``Events:`` tables and the one-line-per-object
list of ``kubectl rollwise list``. Pure
functions from API objects (or the core's tolerant status models) to text, with ``now``
passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from rollwise.cli.colour import PLAIN, Palette
from rollwise.cli.text import (
    Symbols,
    age,
    fit_last_column,
    generation_lag,
    human_duration,
    parse_time,
    table,
)

if TYPE_CHECKING:
    from rollwise.core.modelrelease.status import ReleaseCondition
    from rollwise.core.rollout.status import Condition

#: Events shown under a Rollout (the newest ones; ``kubectl get events`` has the rest).
MAX_EVENTS = 10


def _as_dict(value: object) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()} if isinstance(value, Mapping) else {}


# --------------------------------------------------------------------------------------------
# The top


def name_lines(meta: Mapping[str, Any]) -> list[str]:
    """The object's ``Name:`` and ``Namespace:``."""
    return [f"Name:        {meta.get('name', '?')}", f"Namespace:   {meta.get('namespace', '')}"]


def message_lines(message: str, generation: object, observed_generation: int | None) -> list[str]:
    """The status ``Message:``, then, when the operator has not yet seen the object's latest
    spec, how far behind it is (:func:`rollwise.cli.text.generation_lag`)."""
    lines = [f"Message:     {message}"] if message else []
    lag = generation_lag(generation, observed_generation)
    if lag is not None:
        lines.append(f"             ({lag})")
    return lines


# --------------------------------------------------------------------------------------------
# Conditions and events


def conditions_lines(
    conditions: Sequence[Condition | ReleaseCondition],
    message: str,
    now: datetime,
    symbols: Symbols,
    *,
    width: int | None = None,
) -> list[str]:
    """The ``Conditions:`` table; messages fitted to ``width`` (a terminal's; None: whole)."""
    rows = []
    for cond in conditions:
        # The phase message is already printed at the top; repeating it on every condition
        # would bury the ones that say something else.
        text = "" if cond.message == message else cond.message
        rows.append(
            [
                cond.type.value,
                cond.status.value,
                cond.reason,
                age(cond.last_transition_time, now),
                text,
            ]
        )
    header = ["TYPE", "STATUS", "REASON", "AGE", "MESSAGE"]
    return [
        "Conditions:",
        *table(header, fit_last_column(header, rows, "  ", width, symbols), "  "),
    ]


def event_time(event: Mapping[str, Any]) -> datetime | None:
    """When an event last happened (series, lastTimestamp, eventTime, then creation)."""
    series = _as_dict(event.get("series"))
    meta = _as_dict(event.get("metadata"))
    for value in (
        series.get("lastObservedTime"),
        event.get("lastTimestamp"),
        event.get("eventTime"),
        event.get("firstTimestamp"),
        meta.get("creationTimestamp"),
    ):
        parsed = parse_time(value)
        if parsed is not None:
            return parsed
    return None


def _event_order(event: Mapping[str, Any]) -> tuple[datetime, int]:
    """Events by time; within one second (the precision of most event timestamps) by the
    order the API server stored them, which resourceVersion reflects (opaque in general, an
    increasing integer on etcd-backed servers; a non-integer one sorts first)."""
    version = str(_as_dict(event.get("metadata")).get("resourceVersion") or "")
    at = event_time(event) or datetime.min.replace(tzinfo=UTC)
    return at, int(version) if version.isdigit() else -1


def events_lines(
    events: Sequence[Mapping[str, Any]],
    now: datetime,
    symbols: Symbols,
    *,
    width: int | None = None,
    palette: Palette = PLAIN,
) -> list[str]:
    """The ``Events:`` table: the newest :data:`MAX_EVENTS`, oldest first, each message whole
    or, on a terminal (``width``), as much of it as the line holds."""
    if not events:
        return ["Events:  <none>"]
    ordered = sorted(events, key=_event_order)[-MAX_EVENTS:]
    rows = []
    for event in ordered:
        at = event_time(event)
        when = human_duration((now - at).total_seconds()) if at is not None else "<unknown>"
        count = event.get("count") or _as_dict(event.get("series")).get("count")
        reason = str(event.get("reason") or "")
        if isinstance(count, int) and count > 1:
            when = f"{when} (x{count})"
        rows.append(
            [
                when,
                palette.word(str(event.get("type") or "")),
                reason,
                str(event.get("message") or event.get("note") or ""),
            ]
        )
    header = ["AGE", "TYPE", "REASON", "MESSAGE"]
    return ["Events:", *table(header, fit_last_column(header, rows, "  ", width, symbols), "  ")]


class _WithConditions(Protocol):
    @property
    def conditions(self) -> Sequence[Condition | ReleaseCondition]: ...

    @property
    def message(self) -> str: ...


def closing_lines(
    status: _WithConditions | None,
    events: Sequence[Mapping[str, Any]],
    now: datetime,
    symbols: Symbols,
    *,
    width: int | None = None,
    palette: Palette = PLAIN,
) -> list[str]:
    """What every view ends with: the ``Conditions:`` of ``status`` (when it has any), then
    the ``Events:``, each after a blank line."""
    lines: list[str] = []
    if status is not None and status.conditions:
        table_ = conditions_lines(status.conditions, status.message, now, symbols, width=width)
        lines += ["", *table_]
    return [*lines, "", *events_lines(events, now, symbols, width=width, palette=palette)]


def sorted_by_name(items: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Objects by namespace, then name, as ``kubectl get`` lists them."""

    def key(item: Mapping[str, Any]) -> tuple[str, str]:
        meta = _as_dict(item.get("metadata"))
        return str(meta.get("namespace", "")), str(meta.get("name", ""))

    return sorted(items, key=key)


def list_table(
    header: Sequence[str],
    items: Sequence[Mapping[str, Any]],
    row: Callable[[Mapping[str, Any]], list[str]],
    *,
    all_namespaces: bool,
) -> list[str]:
    """A list of objects by namespace and name, one ``row`` each, under ``header``; with a
    ``NAMESPACE`` column first across all namespaces (lines, no trailing newline)."""
    rows = []
    for item in sorted_by_name(items):
        cells = row(item)
        if all_namespaces:
            cells.insert(0, str(_as_dict(item.get("metadata")).get("namespace", "")))
        rows.append(cells)
    return table(["NAMESPACE", *header] if all_namespaces else list(header), rows)


Row = Callable[[Mapping[str, Any], datetime, Palette], list[str]]
ListView = Callable[..., list[str]]


def list_view(header: Sequence[str], row: Row) -> ListView:
    """The ``kubectl rollwise list`` table of one kind: ``view(items, now, *, all_namespaces,
    palette=PLAIN, wide=False)`` gives its lines (no trailing newline), one ``row`` per object;
    ``wide`` adds the DECISION column before AGE (:func:`rollwise.cli.explain.decision_cell`)."""

    def view(
        items: Sequence[Mapping[str, Any]],
        now: datetime,
        *,
        all_namespaces: bool,
        palette: Palette = PLAIN,
        wide: bool = False,
    ) -> list[str]:
        if not wide:
            return list_table(
                header, items, lambda item: row(item, now, palette), all_namespaces=all_namespaces
            )
        from rollwise.cli.explain import decision_cell  # noqa: PLC0415 - only for wide output

        def wide_row(item: Mapping[str, Any]) -> list[str]:
            cells = row(item, now, palette)
            return [*cells[:-1], decision_cell(item, palette), cells[-1]]

        wide_header = [*header[:-1], "DECISION", header[-1]]
        return list_table(wide_header, items, wide_row, all_namespaces=all_namespaces)

    return view


__all__ = [
    "MAX_EVENTS",
    "closing_lines",
    "conditions_lines",
    "event_time",
    "events_lines",
    "list_table",
    "list_view",
    "message_lines",
    "name_lines",
    "sorted_by_name",
]
