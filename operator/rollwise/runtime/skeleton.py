"""The pass skeleton both kinds share: the object's header, the loop's memory, the result,
the write-ahead status patch and the events tail.

Every pass (``runtime.rollout.reconcile`` for a Rollout, ``runtime.release.reconcile`` for a
ModelRelease) has the same shape: read the object (:class:`ObjectHeader`), parse its status
(:func:`parse_status`), observe, decide, then :func:`persist` the new status, conditional on
the resourceVersion read and skipped when nothing changed, and only then act; last, post the
events the status logged and this process's reports (:func:`post_pass_events`). What a pass
did comes back as a :class:`PassResult`; what its loop remembers between passes (not
progress: that is in status) is a :class:`Memory`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, Self, TypeVar

from pydantic import BaseModel, ValidationError

from rollwise.adapters.errors import AdapterError, Conflict, NotFound
from rollwise.adapters.resources import Resource, copy_json
from rollwise.adapters.watch_cache import WatchCache
from rollwise.core.events import Event, EventLog, LoggedEvent
from rollwise.runtime.measuring import ProviderFactory
from rollwise.runtime.metrics import OperatorMetrics
from rollwise.runtime.passes import (
    CONFLICT_RETRY_SECONDS,
    EVENT_RETRY_SECONDS,
    NotifierPort,
    TemplatesPort,
    count_failure,
    error_code,
    post_events,
    post_logged,
    soonest,
)
from rollwise.runtime.query_budget import QueryBudget

A = TypeVar("A")
D = TypeVar("D")
S = TypeVar("S", bound=BaseModel)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(kw_only=True)
class CommonPorts:
    """The ports every kind's pass has, beside its own (each kind's ``Ports`` adds what it
    talks to): metric providers and where queries may go, the operator's metrics, the clock,
    the record key, notifications and analysis templates."""

    provider_for: ProviderFactory
    #: The operator's record key: records (``rollwise.dev/overrides``, a release's approvals,
    #: written by its admission webhook) count only with a valid signature under it; None
    #: trusts none.
    record_key: bytes | None = None
    default_prometheus: str | None = None
    metrics: OperatorMetrics | None = None
    clock: Callable[[], datetime] = utc_now
    #: Where queries run, within each namespace's share (None: the default worker threads).
    queries: QueryBudget | None = None
    #: The Prometheus addresses a spec may name (None: any, for embedding and tests).
    allowed_prometheus: frozenset[str] | None = None
    #: The web providers a spec may name (None: any, for embedding and tests).
    web_providers: frozenset[str] | None = None
    #: Where posted events go for notifications (None: no notifications).
    notifier: NotifierPort | None = None
    #: Where referenced analysis templates are read (None: every reference is not found).
    templates: TemplatesPort | None = None


@dataclass(frozen=True)
class ObjectHeader:
    """The fields of a custom object a pass works with (wire form)."""

    namespace: str
    name: str
    uid: str
    generation: int
    resource_version: str | None
    spec: dict[str, Any]
    status: dict[str, Any] | None
    annotations: dict[str, str]
    labels: dict[str, str] = field(default_factory=dict)
    created: str = ""
    generate_name: str = ""

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Self:
        meta = body.get("metadata") or {}
        status = body.get("status")
        return cls(
            namespace=str(meta.get("namespace") or ""),
            name=str(meta.get("name") or ""),
            uid=str(meta.get("uid") or ""),
            generation=int(meta.get("generation") or 0),
            resource_version=meta.get("resourceVersion"),
            spec=dict(body.get("spec") or {}),
            status=dict(status) if isinstance(status, Mapping) and status else None,
            annotations={str(k): str(v) for k, v in (meta.get("annotations") or {}).items()},
            labels={str(k): str(v) for k, v in (meta.get("labels") or {}).items()},
            created=str(meta.get("creationTimestamp") or ""),
            generate_name=str(meta.get("generateName") or ""),
        )


@dataclass
class Memory:
    """What an object's loop remembers between passes (not progress: that is in status).

    ``failures`` counts consecutive failed passes (for the backoff); ``reported`` is the last
    action failure reported as an event, so a persisting failure is not re-posted each retry;
    ``events_posted`` is (uid, sequence number) up to which the object's logged events are
    posted (``runtime.passes.post_logged``); ``validated`` the spec of the last generation
    seen, validated once (``runtime.passes.validated``); ``rejected_records`` the identity
    records already reported as rejected (a ModelRelease's).
    """

    failures: int = 0
    reported: str | None = None
    events_posted: tuple[str, int] | None = None
    validated: tuple[str, int, Any, list[str]] | None = None
    rejected_records: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ActionFailure(Generic[A]):
    """The action that failed, its error, and the action as messages name it."""

    action: A
    error: AdapterError
    what: str


@dataclass(frozen=True)
class PassResult(Generic[D]):
    """What one pass did. ``decision`` is None when the pass stopped before deciding (the
    object is gone, or observing failed)."""

    requeue_after: float | None
    decision: D | None = None
    gone: bool = False
    status_written: bool = False
    acted: bool = False
    failure: ActionFailure[Any] | None = None
    error: str | None = None
    events: tuple[Event, ...] = field(default=())


async def read_object(
    resource: Resource,
    namespace: str,
    name: str,
    read: Callable[[str, str], dict[str, Any] | None],
    cache: WatchCache | None,
) -> dict[str, Any] | None:
    """The object a pass works on: the body its watch delivered (``WatchCache``: at a known
    resourceVersion, never older than this operator's last write of it, and the status patch
    is conditional on that version), else ``read`` (a GET, in a worker thread)."""
    cached = cache.lookup(resource, namespace, name) if cache is not None else None
    if cached is not None:
        body: dict[str, Any] = copy_json(cached)
        return body
    found = await asyncio.to_thread(read, namespace, name)
    if found is not None and cache is not None:
        cache.observe(resource, found, confirmed=True)
    return found


class PassPorts(Protocol):
    """What :func:`timed_pass` needs of a kind's ports."""

    @property
    def metrics(self) -> OperatorMetrics | None: ...

    @property
    def for_pass(self) -> Callable[[WatchCache | None], Any] | None: ...


P = TypeVar("P", bound=PassPorts)
R = TypeVar("R")


async def timed_pass(ports: P, cache: WatchCache | None, run: Callable[[P], Awaitable[R]]) -> R:
    """Runs one pass with the ports for it (``for_pass``: a read view through ``cache``, so
    that the pass reads each object at most once), timed in
    ``rollwise_reconcile_duration_seconds``."""
    started = time.monotonic()
    if ports.for_pass is not None:
        ports = ports.for_pass(cache)
    try:
        return await run(ports)
    finally:
        if ports.metrics is not None:
            ports.metrics.reconcile_duration.observe(time.monotonic() - started)


def cannot(
    call: str,
    message: str,
    exc: AdapterError,
    memory: Memory,
    *,
    metrics: OperatorMetrics | None,
    log: Any,
) -> PassResult[Any]:
    """A pass that could not read what it needs (``call``: what failed, as
    ``rollwise_api_errors_total`` counts it; ``message``: the log line): logged, counted, and
    looked at again after the failure backoff (or the server's ``Retry-After``)."""
    if metrics is not None:
        metrics.api_error(call, error_code(exc))
    log.warning(message, error=exc.message)
    return PassResult(requeue_after=count_failure(memory, exc.retry_after), error=exc.message)


class Decided(Protocol):
    """What :func:`pass_done` needs of a kind's decision."""

    @property
    def actions(self) -> Sequence[object]: ...

    @property
    def events(self) -> Sequence[Event]: ...


DD = TypeVar("DD", bound=Decided)


def pass_done(
    decision: DD,
    requeue: float | None,
    *,
    status_written: bool,
    acted: bool,
    failure: ActionFailure[Any] | None,
    reports: Sequence[Event],
    log: Any,
    **fields: object,
) -> PassResult[DD]:
    """The end of a pass that stored its status: one debug line (``fields`` first: what the
    kind's status says), and the result with the decision's events and this process's
    ``reports``."""
    log.debug(
        "pass done",
        **fields,
        actions=len(decision.actions),
        status_written=status_written,
        requeue_after=requeue,
    )
    return PassResult(
        requeue_after=requeue,
        decision=decision,
        status_written=status_written,
        acted=acted,
        failure=failure,
        events=(*decision.events, *reports),
    )


def parse_status(model: type[S], raw: dict[str, Any] | None, log: Any) -> S | None:
    """The object's status, or None when it has none or this version cannot read it."""
    if raw is None:
        return None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        # A status this version cannot read: start over rather than crash on every pass.
        log.warning("unreadable status, starting from scratch", error=str(exc)[:500])
        return None


def merge_patch_diff(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) turning ``old`` into ``new``: changed keys, nested
    objects recursively, removed keys as null; lists are replaced whole."""
    before = old or {}
    patch: dict[str, Any] = {}
    for key in before:
        if key not in new:
            patch[key] = None
    for key, value in new.items():
        prior = before.get(key)
        if isinstance(value, Mapping) and isinstance(prior, Mapping):
            nested = merge_patch_diff(prior, value)
            if nested:
                patch[key] = nested
        elif key not in before or prior != value:
            patch[key] = value
    return patch


class WireStatus(Protocol):
    def to_wire(self) -> dict[str, object]: ...


@dataclass(frozen=True)
class Persisted:
    """What :func:`persist` did: whether the status changed, the object the API server
    answered with, or the error that kept the status from being stored."""

    changed: bool
    written: dict[str, Any] | None = None
    error: AdapterError | None = None


StatusPatcher = Callable[[str, str, dict[str, Any], str | None], dict[str, Any] | None]


def persist(
    obj: ObjectHeader, before: object | None, after: WireStatus, patch_status: StatusPatcher
) -> Persisted:
    """Write-ahead: merge-patch the status ``after`` over the one read (``before``, the parsed
    form of ``obj.status``), conditional on the resourceVersion read, and only when it
    changed. Nothing may act on a status this did not store: a kill then must find the
    cluster as the stored status describes it, or behind it, never ahead."""
    if before is not None and after == before:
        return Persisted(changed=False)
    patch = merge_patch_diff(obj.status, after.to_wire())
    try:
        written = patch_status(obj.namespace, obj.name, patch, obj.resource_version)
    except AdapterError as exc:
        return Persisted(changed=True, error=exc)
    return Persisted(changed=True, written=written)


def settle_write(
    resource: Resource,
    obj: ObjectHeader,
    stored: Persisted,
    decision: D,
    *,
    cache: WatchCache | None,
    metrics: OperatorMetrics | None,
    log: Any,
) -> PassResult[D] | None:
    """What the status write of a pass means for the rest of it. A conflict (somebody wrote
    since the read: decide again from what is there now, read from the server since the
    cached body was behind) or a vanished object ends the pass with nothing done: the result
    says so. A stored status is fed back to the cache (read-your-writes: the next pass starts
    from this answer, not from an older body whose watch event is still on its way) and
    counted; the pass goes on (None), as it does after any other write failure, which the
    kind handles."""
    error = stored.error
    if isinstance(error, Conflict):
        if cache is not None:
            cache.forget(resource, obj.namespace, obj.name)
        log.info("status write conflicted; looking again", error=error.message)
        return PassResult(requeue_after=CONFLICT_RETRY_SECONDS, decision=decision)
    if isinstance(error, NotFound):
        if cache is not None:
            cache.deleted(resource, obj.namespace, obj.name)
        return PassResult(requeue_after=None, gone=True)
    if error is None and stored.changed:
        if cache is not None and stored.written:
            cache.observe(resource, stored.written, confirmed=True)
        if metrics is not None:
            metrics.status_written()
    return None


async def post_pass_events(
    requeue: float | None,
    *,
    uid: str,
    logged: EventLog | None,
    post_entry: Callable[[LoggedEvent], bool],
    reports: Sequence[Event],
    post_report: Callable[[Event], None],
    memory: Memory,
    metrics: OperatorMetrics | None,
    log: Any,
    notify: Callable[[LoggedEvent], None] | None,
) -> float | None:
    """The tail of a pass: the events of the persisted status's log not yet known to be
    posted (under their deterministic names), then this process's reports. Returns
    ``requeue``, shortened when logged events are left to post."""
    if logged is not None:
        all_posted = await post_logged(
            logged, uid, post_entry, memory, metrics=metrics, logger=log, notify=notify
        )
        if not all_posted:
            requeue = soonest(requeue, EVENT_RETRY_SECONDS)
    await post_events(reports, post_report, metrics=metrics, log=log)
    return requeue


__all__ = [
    "ActionFailure",
    "CommonPorts",
    "Decided",
    "Memory",
    "ObjectHeader",
    "PassPorts",
    "PassResult",
    "Persisted",
    "cannot",
    "merge_patch_diff",
    "parse_status",
    "pass_done",
    "persist",
    "post_pass_events",
    "read_object",
    "settle_write",
    "timed_pass",
    "utc_now",
]
