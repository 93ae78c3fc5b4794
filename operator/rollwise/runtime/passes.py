"""What the Rollout pass and the ModelRelease pass share: measuring, checking queries, posting
events, timing.

Both passes (``runtime.reconcile`` and ``runtime.release``) query the metrics their core says
are due, ask the provider to parse a spec's queries when the core says they are unchecked,
post the events their status logged (:func:`post_logged`), and choose when to look again the
same way; the functions here are that common part, with the ports passed in. Synchronous
clients run in worker threads (``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from rollwise.adapters.errors import AdapterError, Conflict, KubeError, QueryRefused
from rollwise.adapters.metrics.base import MetricProvider
from rollwise.core.analysis import QueryTemplateError, render_query
from rollwise.core.durations import InvalidDuration, parse_seconds
from rollwise.core.events import Event, EventLog, LoggedEvent
from rollwise.core.observations import Measurement
from rollwise.core.querycheck import QueryCheck, QueryRefusal
from rollwise.core.spec import Metric
from rollwise.runtime.metrics import OperatorMetrics

ProviderFactory = Callable[[str], MetricProvider]

#: Seconds before looking again after a pass that changed the cluster.
FOLLOW_UP_SECONDS = 1.0

#: The error of a metric whose provider names no address when the operator has no default.
NO_PROMETHEUS = (
    "no Prometheus address: set the metric's provider.prometheus.address "
    "or the operator's ROLLWISE_PROMETHEUS_URL"
)


def error_code(error: BaseException) -> str:
    """The ``code`` label of ``rollwise_api_errors_total``."""
    if isinstance(error, KubeError) and error.status is not None:
        return str(error.status)
    return type(error).__name__


def soonest(*values: float | None) -> float | None:
    """The smallest of the given delays, ignoring None (None when all are)."""
    present = [v for v in values if v is not None]
    return min(present) if present else None


#: Seconds before retrying after a Conflict (someone else wrote: re-read and go again).
CONFLICT_RETRY_SECONDS = 1.0

#: Backoff after failures: the first retry and the cap (doubling in between).
BACKOFF_FIRST_SECONDS = 2.0
BACKOFF_MAX_SECONDS = 300.0


class FailureMemory(Protocol):
    """What a loop remembers of its failures: consecutive failed passes (for the backoff) and
    the last action failure reported as an event (so a persisting one is not re-posted)."""

    failures: int
    reported: str | None


def backoff(failures: int) -> float:
    """Seconds to wait after ``failures`` consecutive failed passes (2, 4, 8, ... 300)."""
    if failures <= 0:
        return BACKOFF_FIRST_SECONDS
    return float(min(BACKOFF_FIRST_SECONDS * 2 ** (failures - 1), BACKOFF_MAX_SECONDS))


def count_failure(memory: FailureMemory, wait: float | None = None) -> float:
    """Counts a failed pass; the seconds to wait: ``wait`` (the server's), else the backoff."""
    memory.failures += 1
    return wait if wait is not None else backoff(memory.failures)


class PassFailure(Protocol):
    """An action of a pass that failed: what it was (``what``) and the error."""

    @property
    def what(self) -> str: ...

    @property
    def error(self) -> AdapterError: ...


def after_actions(
    memory: FailureMemory,
    requeue: float | None,
    *,
    acted: bool,
    failure: PassFailure | None,
    report_retryable: bool,
    failed_event: Callable[[str, str], Event],
    log: Any,
) -> tuple[float | None, Event | None]:
    """When to look again after the actions, and the event reporting ``failure``, if any
    (``failed_event(what, error message)``): a Conflict is retried after a second, another
    error with the backoff and reported once per distinct failure (retryable ones only when
    ``report_retryable``); a pass that changed the cluster looks again soon to observe it.
    A failure is logged every time."""
    if failure is None:
        memory.failures = 0
        memory.reported = None
        return (soonest(requeue, FOLLOW_UP_SECONDS) if acted else requeue), None
    error = failure.error
    log.warning("action failed", action=failure.what, error=error.message)
    if isinstance(error, Conflict):
        return CONFLICT_RETRY_SECONDS, None
    requeue = count_failure(memory, error.retry_after if error.retryable else None)
    text = f"{failure.what} failed: {error.message}"
    if (error.retryable and not report_retryable) or text == memory.reported:
        return requeue, None
    memory.reported = text
    return requeue, failed_event(failure.what, error.message)


def status_write_failed(
    memory: FailureMemory, error: AdapterError, metrics: OperatorMetrics | None, log: Any
) -> float:
    """Counts and logs a status write that failed (other than a conflict or a deletion);
    the seconds to wait before the next pass."""
    if metrics is not None:
        metrics.api_error("patch_status", error_code(error))
    log.warning("cannot write status", error=error.message)
    return count_failure(memory, error.retry_after)


def resolve_address(metric: Metric, default_prometheus: str | None) -> str | None:
    """The Prometheus a metric is queried at: its own address, else the operator's default."""
    return metric.provider.prometheus.address or default_prometheus


def metric_timeout(metric: Metric) -> float:
    """The metric's query timeout in seconds (10 s when it cannot be read)."""
    try:
        return parse_seconds(metric.provider.prometheus.timeout)
    except InvalidDuration:
        return 10.0


async def query_metric(
    provider: MetricProvider,
    query: str,
    *,
    timeout: float,
    now: datetime,
    metrics: OperatorMetrics | None,
    log: Any,
    name: str,
) -> Measurement:
    """One measurement: the provider's value, ``value=None`` for no data, or the provider's
    error (counted in ``rollwise_api_errors_total``). Runs the synchronous client in a thread."""
    try:
        value = await asyncio.to_thread(provider.query, query, timeout)
    except AdapterError as exc:
        if metrics is not None:
            metrics.api_error("prometheus_query", error_code(exc))
        log.warning("metric query failed", metric=name, error=exc.message)
        return Measurement(value=None, at=now, error=exc.message)
    return Measurement(value=value, at=now)


async def measure(
    due: Sequence[Metric],
    context: Mapping[str, str],
    *,
    provider_for: ProviderFactory,
    default_prometheus: str | None,
    now: datetime,
    metrics: OperatorMetrics | None,
    log: Any,
) -> dict[str, Measurement]:
    """The measurements of the ``due`` metrics, queried in parallel with their queries
    rendered over ``context``; a template or provider problem is a measurement's error."""

    async def one(metric: Metric) -> tuple[str, Measurement]:
        source = metric.provider.prometheus
        address = resolve_address(metric, default_prometheus)
        if not address:
            return metric.name, Measurement(value=None, at=now, error=NO_PROMETHEUS)
        try:
            query = render_query(source.query, dict(context))
        except QueryTemplateError as exc:
            return metric.name, Measurement(value=None, at=now, error=str(exc))
        return metric.name, await query_metric(
            provider_for(address),
            query,
            timeout=metric_timeout(metric),
            now=now,
            metrics=metrics,
            log=log,
            name=metric.name,
        )

    return dict(await asyncio.gather(*(one(metric) for metric in due)))


#: Seconds before trying again to post logged events the API refused.
EVENT_RETRY_SECONDS = 5.0

#: Longest a query check may take, whatever the metric's own timeout.
CHECK_TIMEOUT_SECONDS = 5.0


async def check_queries(
    digest: str,
    metrics: Sequence[tuple[str, Metric]],
    context: Mapping[str, str],
    *,
    provider_for: ProviderFactory,
    default_prometheus: str | None,
    log: Any,
) -> QueryCheck:
    """Asks each metric's provider to parse its query, rendered over ``context`` (sample
    placeholder values), in parallel. A refusal names the metric's spec path; a provider that
    cannot be asked, or a metric with no provider address, leaves the queries unverified
    (never a spec error). A template that does not render is left to validation, which
    already reports it."""

    async def one(path: str, metric: Metric) -> QueryRefusal | str | None:
        address = resolve_address(metric, default_prometheus)
        if not address:
            return NO_PROMETHEUS
        try:
            query = render_query(metric.provider.prometheus.query, dict(context))
        except QueryTemplateError:
            return None
        timeout = min(metric_timeout(metric), CHECK_TIMEOUT_SECONDS)
        try:
            await asyncio.to_thread(provider_for(address).parse, query, timeout)
        except QueryRefused as exc:
            return QueryRefusal(field=f"{path}.provider.prometheus.query", message=exc.message)
        except AdapterError as exc:
            log.info("cannot check a query yet", metric=metric.name, error=exc.message)
            return exc.message
        return None

    found = await asyncio.gather(*(one(path, metric) for path, metric in metrics))
    refused = tuple(r for r in found if isinstance(r, QueryRefusal))
    unreachable = next((r for r in found if isinstance(r, str)), None)
    return QueryCheck(digest=digest, refused=refused, unreachable=unreachable)


class EventMemory(Protocol):
    """What a loop remembers of its object's posted events: (uid, the sequence number up to
    which every logged event is known to be posted), or None before its first post."""

    events_posted: tuple[str, int] | None


def events_posted(memory: EventMemory, uid: str, log: EventLog | None) -> int:
    """Up to which sequence number the object's logged events are known to be posted: this
    process's own record for this object, else (first pass after a start, a new object with
    the same name) what the status says."""
    recorded = log.posted if log is not None else 0
    known = memory.events_posted
    if known is not None and known[0] == uid:
        return max(known[1], recorded)
    return recorded


async def post_logged(
    log: EventLog,
    uid: str,
    post: Callable[[LoggedEvent], bool],
    memory: EventMemory,
    *,
    metrics: OperatorMetrics | None,
    logger: Any,
) -> bool:
    """Posts the entries of ``log`` not yet known to be posted, oldest first, from one worker
    thread. ``post`` returns False when the event already exists (posted before a restart:
    done). Stops at the first failure, so that everything up to the recorded number is
    posted; the next pass posts the rest. Returns False when something is left to post."""
    since = events_posted(memory, uid, log)
    pending = log.unposted(since)
    first = pending[0].seq if pending else log.seq + 1
    if first > since + 1:
        # Unposted entries pushed out of the log (a long API outage): say so, count them.
        lost = first - since - 1
        if metrics is not None:
            metrics.events_lost(lost)
        logger.error("logged events were dropped before they were posted", count=lost)
        since = first - 1
    if not pending:
        memory.events_posted = (uid, since)
        return True

    def post_all() -> tuple[int, list[LoggedEvent], AdapterError | None]:
        done = since
        created: list[LoggedEvent] = []
        for entry in pending:
            try:
                if post(entry):
                    created.append(entry)
            except AdapterError as exc:
                return done, created, exc
            done = entry.seq
        return done, created, None

    done, created, error = await asyncio.to_thread(post_all)
    for entry in created:
        if metrics is not None:
            metrics.event_posted()
        logger.info(entry.message, reason=entry.reason, type=entry.type, seq=entry.seq)
    memory.events_posted = (uid, done)
    if error is not None:
        if metrics is not None:
            metrics.api_error("post_event", error_code(error))
        logger.warning("could not post event; posting it again later", error=error.message)
        return False
    return True


async def post_events(
    events: Sequence[Event],
    post: Callable[[Event], None],
    *,
    metrics: OperatorMetrics | None,
    log: Any,
) -> None:
    """Logs the events, then posts them in order from one worker thread (one hop for all).
    An event lost is a pity, not a reason to redo the pass: failures are logged and counted."""
    if not events:
        return

    def post_all() -> list[tuple[Event, AdapterError]]:
        lost: list[tuple[Event, AdapterError]] = []
        for event in events:
            try:
                post(event)
            except AdapterError as exc:
                lost.append((event, exc))
        return lost

    for event in events:
        log.info(event.message, reason=event.reason.name, type=event.type.value)
    for event, exc in await asyncio.to_thread(post_all):
        if metrics is not None:
            metrics.api_error("post_event", error_code(exc))
        log.warning("could not post event", reason=event.reason.name, error=exc.message)


__all__ = [
    "BACKOFF_FIRST_SECONDS",
    "BACKOFF_MAX_SECONDS",
    "CHECK_TIMEOUT_SECONDS",
    "CONFLICT_RETRY_SECONDS",
    "EVENT_RETRY_SECONDS",
    "FOLLOW_UP_SECONDS",
    "NO_PROMETHEUS",
    "EventMemory",
    "FailureMemory",
    "PassFailure",
    "ProviderFactory",
    "after_actions",
    "backoff",
    "check_queries",
    "count_failure",
    "error_code",
    "events_posted",
    "measure",
    "metric_timeout",
    "post_events",
    "post_logged",
    "query_metric",
    "resolve_address",
    "soonest",
    "status_write_failed",
]
