"""What the Rollout pass and the ModelRelease pass share: measuring, checking queries, posting
events, timing.

Both passes (``runtime.rollout.reconcile`` and ``runtime.release.reconcile``) query the
metrics their core says are due, ask the provider to parse a spec's queries when the core says
they are unchecked, post the events their status logged (:func:`post_logged`), and choose when
to look again the same way; the functions here are that common part, with the ports passed
in. Synchronous clients run in worker threads (``asyncio.to_thread``). The pass's skeleton
itself (object header, memory, result, write-ahead patch, events tail) is
:mod:`rollwise.runtime.skeleton`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol, TypeVar

from rollwise.adapters.errors import AdapterError, Conflict, QueryRefused
from rollwise.adapters.metrics.base import MetricProvider
from rollwise.core.analysis import (
    QueryTemplateError,
    render_metric,
    render_query,
    render_sample_query,
    timeout_text,
)
from rollwise.core.durations import InvalidDuration, parse_seconds
from rollwise.core.events import Event, EventLog, LoggedEvent
from rollwise.core.notification_bodies import Subject
from rollwise.core.observations import Measurement
from rollwise.core.querycheck import QueryCheck, QueryRefusal, prometheus_queries
from rollwise.core.spec import Metric, MetricKind
from rollwise.runtime.measure_kinds import measure_kind
from rollwise.runtime.metrics import OperatorMetrics
from rollwise.runtime.query_budget import (
    DEFAULT_MAX_QUERY_SECONDS,
    NamespaceShares,
    QueryBudget,
    call_in_budget,
    clip_error,
    error_code,
)

ProviderFactory = Callable[[str], MetricProvider]

#: Seconds before looking again after a pass that changed the cluster.
FOLLOW_UP_SECONDS = 1.0

#: The error of a metric whose provider names no address when the operator has no default.
NO_PROMETHEUS = (
    "no Prometheus address: set the metric's provider.prometheus.address "
    "or the operator's ROLLWISE_PROMETHEUS_URL"
)


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


#: Prefix of a named web provider in the provider factory's keys (``web:<name>``).
WEB_PREFIX = "web:"


def resolve_address(metric: Metric, default_prometheus: str | None) -> str | None:
    """Which provider answers a metric, as the provider factory's key: its Prometheus (its own
    address, else the operator's default) or ``web:<name>`` for a named web provider; a
    ``compare`` or ``sloBurnRate`` metric without a provider asks the default."""
    source = metric.provider
    if source.web is not None:
        return f"{WEB_PREFIX}{source.web.name}"
    if source.prometheus is not None:
        return source.prometheus.address or default_prometheus
    if metric.kind is not MetricKind.THRESHOLD:
        # compare and sloBurnRate metrics may leave the provider out: the default Prometheus.
        return default_prometheus
    return None


def normal_url(url: str) -> str:
    """A provider URL as the allow-list compares it (no trailing slash)."""
    return url.strip().rstrip("/")


def provider_problems(
    metrics: Sequence[tuple[str, Metric]],
    allowed: frozenset[str] | None,
    web: frozenset[str] | None = None,
) -> list[str]:
    """Spec errors for metrics that name a provider the operator may not query: only the
    Prometheus addresses in ``allowed`` (operator settings: the default Prometheus and
    ``prometheusAllowedURLs``) and the web providers named in ``web`` (operator settings
    ``webProviders``) are ever contacted; None allows any (embedding and tests)."""
    problems: list[str] = []
    for path, metric in metrics:
        source = metric.provider
        address = source.prometheus.address if source.prometheus is not None else None
        if allowed is not None and address and normal_url(address) not in allowed:
            problems.append(
                f"{path}.provider.prometheus.address: {address!r} is not a Prometheus this "
                "operator may query (operator setting prometheusAllowedURLs; leave the "
                "address out to use the operator's default)"
            )
        if web is not None and source.web is not None and source.web.name not in web:
            problems.append(
                f"{path}.provider.web.name: {source.web.name!r} is not a web provider of this "
                "operator (operator setting webProviders)"
            )
    return problems


def metric_timeout(metric: Metric, cap: float = DEFAULT_MAX_QUERY_SECONDS) -> float:
    """The metric's query timeout in seconds (10 s when it cannot be read), at most ``cap``."""
    try:
        wanted = parse_seconds(timeout_text(metric)[1])
    except InvalidDuration:
        wanted = 10.0
    return min(wanted, cap)


async def query_metric(
    provider: MetricProvider,
    query: str,
    *,
    timeout: float,
    now: datetime,
    metrics: OperatorMetrics | None,
    log: Any,
    name: str,
    budget: QueryBudget | None = None,
    namespace: str = "",
) -> Measurement:
    """One measurement: the provider's value, ``value=None`` for no data, or the provider's
    error (counted in ``rollwise_api_errors_total``). Runs the synchronous client in a thread
    (the ``budget``'s, within ``namespace``'s share, when given)."""
    try:
        value = await call_in_budget(budget, namespace, provider.query, query, timeout)
    except AdapterError as exc:
        if metrics is not None:
            metrics.api_error("prometheus_query", error_code(exc))
        error = clip_error(exc.message)
        log.warning("metric query failed", metric=name, error=error)
        return Measurement(value=None, at=now, error=error)
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
    budget: QueryBudget | None = None,
    namespace: str = "",
    started: datetime | None = None,
) -> dict[str, Measurement]:
    """The measurements of the ``due`` metrics, queried in parallel with their queries
    rendered over ``context``; a template or provider problem is a measurement's error.
    ``started`` is when the step's analysis started: a ``compare`` metric's window and an
    ``sloBurnRate`` metric's windows reach back to it, never before."""
    cap = budget.max_timeout if budget is not None else DEFAULT_MAX_QUERY_SECONDS

    async def one(metric: Metric) -> tuple[str, Measurement]:
        address = resolve_address(metric, default_prometheus)
        if not address:
            return metric.name, Measurement(value=None, at=now, error=NO_PROMETHEUS)
        if metric.kind is not MetricKind.THRESHOLD:
            return metric.name, await measure_kind(
                metric,
                context,
                provider_for(address),
                started=started if started is not None else now,
                now=now,
                timeout=metric_timeout(metric, cap),
                metrics=metrics,
                log=log,
                budget=budget,
                namespace=namespace,
            )
        try:
            query = render_metric(metric, dict(context))
            sample_query = render_sample_query(metric, dict(context))
        except QueryTemplateError as exc:
            return metric.name, Measurement(value=None, at=now, error=str(exc))
        provider = provider_for(address)

        async def run(text: str) -> Measurement:
            return await query_metric(
                provider,
                text,
                timeout=metric_timeout(metric, cap),
                now=now,
                metrics=metrics,
                log=log,
                name=metric.name,
                budget=budget,
                namespace=namespace,
            )

        if sample_query is None:
            return metric.name, await run(query)
        # The value and its sample count, side by side within the same timeout and budget;
        # the core judges the value only when the count reaches minSamples.
        measured, counted = await asyncio.gather(run(query), run(sample_query))
        if measured.error is None and counted.error is not None:
            error = clip_error(f"sampleGuard.query: {counted.error}")
            return metric.name, Measurement(value=None, at=now, error=error)
        return metric.name, replace(measured, samples=counted.value)

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
    budget: QueryBudget | None = None,
    namespace: str = "",
) -> QueryCheck:
    """Asks each metric's provider to parse its queries (its query and its sampleGuard's),
    rendered over ``context`` (sample
    placeholder values), in parallel. A refusal names the metric's spec path; a provider that
    cannot be asked, or a metric with no provider address, leaves the queries unverified
    (never a spec error). A template that does not render is left to validation, which
    already reports it."""

    async def one(
        path: str, metric: Metric, field: str, template: str
    ) -> QueryRefusal | str | None:
        address = resolve_address(metric, default_prometheus)
        if not address:
            return NO_PROMETHEUS
        try:
            query = render_query(template, dict(context))
        except QueryTemplateError:
            return None
        timeout = min(metric_timeout(metric), CHECK_TIMEOUT_SECONDS)
        try:
            await call_in_budget(budget, namespace, provider_for(address).parse, query, timeout)
        except QueryRefused as exc:
            return QueryRefusal(field=f"{path}.{field}", message=exc.message)
        except AdapterError as exc:
            log.info("cannot check a query yet", metric=metric.name, error=exc.message)
            return exc.message
        return None

    # Only Prometheus can parse a query (its query and its sampleGuard's); a web provider's
    # jsonPath is checked with the spec.
    found = await asyncio.gather(
        *(
            one(path, metric, field, template)
            for path, metric in metrics
            for field, template in prometheus_queries(metric)
        )
    )
    refused = tuple(r for r in found if isinstance(r, QueryRefusal))
    unreachable = next((r for r in found if isinstance(r, str)), None)
    return QueryCheck(digest=digest, refused=refused, unreachable=unreachable)


#: Longest the event loop waits for a spec's validation (off the loop, in a worker thread)
#: before the spec counts as invalid. Validation is linear in the spec's size and CEL
#: conditions are bounded (``core.analysis``); this bound keeps a future mistake there from
#: ever stalling every other object, the liveness probe and the webhook.
VALIDATION_TIMEOUT_SECONDS = 5.0

SpecT = TypeVar("SpecT")


class SpecMemory(Protocol):
    """What a loop remembers of its object's spec: the validation of the last generation seen,
    as (uid, generation, parsed spec or None, errors)."""

    validated: tuple[str, int, Any, list[str]] | None


async def validated(
    memory: SpecMemory,
    uid: str,
    generation: int,
    raw: Mapping[str, Any],
    load: Callable[[dict[str, Any]], tuple[SpecT | None, list[str]]],
    *,
    log: Any,
    timeout: float = VALIDATION_TIMEOUT_SECONDS,
) -> tuple[SpecT | None, list[str]]:
    """The spec parsed and validated by ``load``, once per generation, in a worker thread: a
    spec is tenant input, and nothing done with it may run on the event loop. A validation
    that takes longer than ``timeout`` makes the spec invalid (its thread finishes on its own;
    the verdict is kept until the spec changes)."""
    known = memory.validated
    if known is not None and known[0] == uid and known[1] == generation:
        return known[2], list(known[3])
    try:
        spec, errors = await asyncio.wait_for(asyncio.to_thread(load, dict(raw)), timeout)
    except TimeoutError:
        log.error("spec validation took too long; the spec counts as invalid", seconds=timeout)
        spec, errors = None, [f"spec: validation did not finish within {timeout:g}s"]
    memory.validated = (uid, generation, spec, list(errors))
    return spec, list(errors)


def log_event(logger: Any, event_type: str, message: str, **fields: object) -> None:
    """Logs an event at the level its type says: a Warning event is a warning line."""
    level = logger.warning if event_type == "Warning" else logger.info
    level(message, type=event_type, **fields)


class NotifierPort(Protocol):
    """Where a pass hands the logged events it posted (``runtime.notify.Notifier``): matched
    against the notification policies and queued; it returns at once and never raises."""

    def offer(self, subject: Subject, entry: LoggedEvent) -> None: ...


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
    notify: Callable[[LoggedEvent], None] | None = None,
) -> bool:
    """Posts the entries of ``log`` not yet known to be posted, oldest first, from one worker
    thread. ``post`` returns False when the event already exists (posted before a restart:
    done). Stops at the first failure, so that everything up to the recorded number is
    posted; the next pass posts the rest. Returns False when something is left to post.

    Each entry posted, or found posted already, is then handed to ``notify`` (the notifier's
    :meth:`NotifierPort.offer`, bound to the object), which queues and returns at once: an
    event found posted after a restart is offered again, with the same id, so a notification
    lost with the last process is sent by this one (docs/notifications.md)."""
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

    def post_all() -> tuple[int, list[LoggedEvent], list[LoggedEvent], AdapterError | None]:
        done = since
        created: list[LoggedEvent] = []
        handled: list[LoggedEvent] = []
        for entry in pending:
            try:
                if post(entry):
                    created.append(entry)
            except AdapterError as exc:
                return done, created, handled, exc
            handled.append(entry)
            done = entry.seq
        return done, created, handled, None

    done, created, handled, error = await asyncio.to_thread(post_all)
    for entry in created:
        if metrics is not None:
            metrics.event_posted()
        log_event(logger, entry.type, entry.message, reason=entry.reason, seq=entry.seq)
    if notify is not None:
        for entry in handled:
            notify(entry)
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
        log_event(log, event.type.value, event.message, reason=event.reason.name)
    for event, exc in await asyncio.to_thread(post_all):
        if metrics is not None:
            metrics.api_error("post_event", error_code(exc))
        log.warning("could not post event", reason=event.reason.name, error=exc.message)


__all__ = [
    "BACKOFF_FIRST_SECONDS",
    "BACKOFF_MAX_SECONDS",
    "CHECK_TIMEOUT_SECONDS",
    "CONFLICT_RETRY_SECONDS",
    "DEFAULT_MAX_QUERY_SECONDS",
    "EVENT_RETRY_SECONDS",
    "FOLLOW_UP_SECONDS",
    "NO_PROMETHEUS",
    "VALIDATION_TIMEOUT_SECONDS",
    "WEB_PREFIX",
    "EventMemory",
    "FailureMemory",
    "NamespaceShares",
    "NotifierPort",
    "PassFailure",
    "ProviderFactory",
    "QueryBudget",
    "SpecMemory",
    "after_actions",
    "backoff",
    "check_queries",
    "clip_error",
    "count_failure",
    "error_code",
    "events_posted",
    "log_event",
    "measure",
    "metric_timeout",
    "normal_url",
    "post_events",
    "post_logged",
    "provider_problems",
    "query_metric",
    "resolve_address",
    "soonest",
    "status_write_failed",
    "validated",
]
