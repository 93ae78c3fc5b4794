"""What the Rollout pass and the ModelRelease pass share beyond the skeleton: timing and
backoff, action failures, validating a spec once per generation, posting events.

Both passes (``runtime.rollout.reconcile`` and ``runtime.release.reconcile``) validate the
spec once per generation (:func:`validated`), post the events their status logged
(:func:`post_logged`), report a failed action once (:func:`after_actions`) and choose when to
look again the same way; the functions here are that common part, with the ports passed in.
Synchronous clients run in worker threads (``asyncio.to_thread``). Measuring is
:mod:`rollwise.runtime.measuring`; the pass's skeleton itself (object header, memory, result,
write-ahead patch, events tail) is :mod:`rollwise.runtime.skeleton`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from rollwise.adapters.errors import AdapterError, Conflict
from rollwise.core.events import Event, EventLog, LoggedEvent
from rollwise.core.notification_bodies import Subject
from rollwise.core.observations import TemplateKey, TemplateRead
from rollwise.runtime.metrics import OperatorMetrics
from rollwise.runtime.query_budget import error_code

#: Seconds before looking again after a pass that changed the cluster.
FOLLOW_UP_SECONDS = 1.0


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


#: Seconds before trying again to post logged events the API refused.
EVENT_RETRY_SECONDS = 5.0

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


class TemplatesPort(Protocol):
    """The analysis templates a spec references (``adapters.templates.AnalysisTemplates``)."""

    def read(self, namespace: str, key: TemplateKey) -> TemplateRead | None:
        """The template's spec; None when it does not exist; a message when unreadable."""
        ...


async def read_templates(
    port: TemplatesPort | None, namespace: str, keys: Sequence[TemplateKey]
) -> dict[TemplateKey, TemplateRead | None]:
    """Each referenced template as read now (in a worker thread: these are API calls; a
    failure to reach the API server raises ``AdapterError`` and ends the pass). Without a
    port every template counts as not found."""
    if not keys:
        return {}
    if port is None:
        return dict.fromkeys(keys)

    def read_all() -> dict[TemplateKey, TemplateRead | None]:
        return {key: port.read(namespace, key) for key in keys}

    return await asyncio.to_thread(read_all)


ResolvedT = TypeVar("ResolvedT")
#: The spec error of a template resolution that did not finish in time: passed to the core as
#: a spec error, so that it does not resolve again.
RESOLUTION_TIMED_OUT = "spec: resolving the analysis templates did not finish within {seconds:g}s"


async def resolved(
    resolve: Callable[
        [ResolvedT, Mapping[TemplateKey, TemplateRead | None]], tuple[ResolvedT, list[str]]
    ],
    spec: ResolvedT,
    reads: Mapping[TemplateKey, TemplateRead | None],
    *,
    log: Any,
    timeout: float = VALIDATION_TIMEOUT_SECONDS,
) -> tuple[ResolvedT, list[str]]:
    """``spec`` with its analysis templates resolved by ``resolve`` (a core function), in a
    worker thread with ``timeout`` like :func:`validated`: templates and args are tenant input
    (their metrics' conditions are compiled), and nothing done with them may run on the event
    loop. A resolution that takes too long makes the spec invalid for this pass."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(resolve, spec, reads), timeout)
    except TimeoutError:
        log.error("resolving analysis templates took too long", seconds=timeout)
        return spec, [RESOLUTION_TIMED_OUT.format(seconds=timeout)]


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
    "CONFLICT_RETRY_SECONDS",
    "EVENT_RETRY_SECONDS",
    "FOLLOW_UP_SECONDS",
    "VALIDATION_TIMEOUT_SECONDS",
    "EventMemory",
    "FailureMemory",
    "NotifierPort",
    "PassFailure",
    "SpecMemory",
    "after_actions",
    "backoff",
    "count_failure",
    "error_code",
    "events_posted",
    "log_event",
    "post_events",
    "post_logged",
    "soonest",
    "status_write_failed",
    "validated",
]
