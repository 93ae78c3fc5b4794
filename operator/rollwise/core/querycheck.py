"""Queries checked before traffic: a metric's query is parsed by its provider when the spec is
seen, not at the first canary step.

A query that does not parse is a spec error like any other (``InvalidSpec``, no action), found
while the object is still new rather than minutes into a canary, where it would only pause the
rollout on ``MeasurementError``. Every PromQL a metric runs is checked, whatever its kind
(:func:`prometheus_queries`): a threshold metric's query and its ``sampleGuard`` query, a
``compare`` metric's query, an ``sloBurnRate`` metric's total and good or bad queries. The
runtime renders each query with sample placeholder values
(:func:`sample_context`, and :func:`render_for_check` for a compare query's ``{{revision}}``
and a burn-rate query's ``{{window}}``: the revisions are not known yet when a spec is first
seen, the windows change with the canary's age) and asks
the provider to parse it; the core records the outcome in ``status.queries`` under a digest of
the queries (:func:`queries_digest`), so each set of queries is checked once, not on every
pass.

A provider that cannot be reached never blocks anything: the queries are recorded as
``Unverified`` (condition ``QueriesVerified`` Unknown) and checked again every
:data:`RECHECK_SECONDS` until it answers; the rollout meanwhile proceeds, and a query that
turns out not to parse then makes the spec invalid.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, Self, TypeVar

from pydantic import Field

from rollwise.core.conditions import ConditionStatus
from rollwise.core.durations import add_seconds
from rollwise.core.query_templates import (
    BURN_RATE_PLACEHOLDERS,
    COMPARE_PLACEHOLDERS,
    QUERY_PLACEHOLDERS,
    REVISION_PLACEHOLDER,
    WINDOW_PLACEHOLDER,
    render_query,
)
from rollwise.core.reasons import clip
from rollwise.core.spec import AnalysisSpec, Metric, MetricKind, Step
from rollwise.core.status_model import StatusModel, Time

#: Seconds between checks while the provider cannot be reached.
RECHECK_SECONDS = 60.0

#: The revision a query is rendered with when it is checked (a revision id's shape).
SAMPLE_REVISION = "0000000000"

#: The window a burn-rate query is rendered with when it is checked (a PromQL range, as the
#: runtime renders every window: whole seconds).
SAMPLE_WINDOW = "300s"

#: The fields of a metric whose queries are checked, and the placeholders each may use.
FIELD_PLACEHOLDERS: dict[str, frozenset[str]] = {
    "provider.prometheus.query": QUERY_PLACEHOLDERS,
    "sampleGuard.query": QUERY_PLACEHOLDERS,
    "compare.query": COMPARE_PLACEHOLDERS,
    "sloBurnRate.totalQuery": BURN_RATE_PLACEHOLDERS,
    "sloBurnRate.badQuery": BURN_RATE_PLACEHOLDERS,
    "sloBurnRate.goodQuery": BURN_RATE_PLACEHOLDERS,
}

#: How many refused queries an InvalidSpec message names.
SHOWN_REFUSALS = 5


class QueryState(StrEnum):
    """``status.queries.state``."""

    VERIFIED = "Verified"
    REFUSED = "Refused"
    UNVERIFIED = "Unverified"


class QueryVerification(StatusModel):
    """``status.queries``: the outcome of checking one set of queries (``digest``)."""

    digest: str
    state: QueryState
    checked_at: Time
    #: Refused: one spec error per refused query (at most :data:`SHOWN_REFUSALS`, then a count).
    refused: list[str] = Field(default_factory=list)
    #: Unverified: why the provider could not be asked.
    message: str = ""


@dataclass(frozen=True)
class QueryRefusal:
    """A query the provider refused to parse: which metric, and the provider's message (it
    names the position, e.g. Prometheus' ``parse error at char 35``)."""

    field: str
    message: str


@dataclass(frozen=True)
class QueryCheck:
    """What the runtime found when it checked the queries of ``digest`` this pass."""

    digest: str
    refused: tuple[QueryRefusal, ...] = ()
    #: Set when the provider could not be asked (unreachable, timeout): queries unverified.
    unreachable: str | None = None


def canary_metrics(
    steps: Sequence[Step], analysis: AnalysisSpec | None, where: str
) -> list[tuple[str, Metric]]:
    """Every metric a canary can measure, with the spec path that names it (``where`` is the
    canary's path, e.g. ``spec.strategy.canary``): the background analysis first, then each
    analysis step's own metrics."""
    found: list[tuple[str, Metric]] = []
    for i, metric in enumerate(analysis.metrics if analysis is not None else ()):
        found.append((f"{where}.analysis.metrics[{i}]", metric))
    for s, step in enumerate(steps):
        own = step.analysis.metrics if step.analysis is not None else None
        for i, metric in enumerate(own or ()):
            found.append((f"{where}.steps[{s}].analysis.metrics[{i}]", metric))
    return found


def prometheus_queries(metric: Metric) -> list[tuple[str, str]]:
    """The PromQL templates a metric runs on Prometheus, each with its field under the metric:
    a threshold metric's query, then its ``sampleGuard`` count query when there is one; a
    ``compare`` metric's query; an ``sloBurnRate`` metric's total query, then its bad or good
    query. They run on the metric's provider and are checked alike (placeholders, parsing); a
    metric of a web provider has none (its jsonPath is checked with the spec)."""
    if metric.provider.web is not None:
        return []
    if metric.compare is not None:
        return [("compare.query", metric.compare.query)]
    slo = metric.slo_burn_rate
    if slo is not None:
        found = [("sloBurnRate.totalQuery", slo.total_query)]
        if slo.bad_query is not None:
            found.append(("sloBurnRate.badQuery", slo.bad_query))
        if slo.good_query is not None:
            found.append(("sloBurnRate.goodQuery", slo.good_query))
        return found
    source = metric.provider.prometheus
    if source is None or source.query is None:
        return []
    found = [("provider.prometheus.query", source.query)]
    if metric.sample_guard is not None:
        found.append(("sampleGuard.query", metric.sample_guard.query))
    return found


def render_for_check(field: str, template: str, context: Mapping[str, str]) -> str:
    """``template`` (the query of ``field``, see :func:`prometheus_queries`) rendered for its
    check: ``context`` (:func:`sample_context`) plus a sample ``{{revision}}`` and
    ``{{window}}``, each allowed only where the field's kind uses it. Raises
    ``QueryTemplateError`` for a placeholder the field may not use (validation reports it)."""
    sample = {
        **context,
        REVISION_PLACEHOLDER: SAMPLE_REVISION,
        WINDOW_PLACEHOLDER: SAMPLE_WINDOW,
    }
    return render_query(template, sample, FIELD_PLACEHOLDERS.get(field, QUERY_PLACEHOLDERS))


def queries_digest(metrics: Iterable[tuple[str, Metric]]) -> str:
    """A digest of what a check depends on: each Prometheus metric's path, provider address
    and queries (:func:`prometheus_queries`; a web provider's jsonPath is checked with the
    spec). Empty when there is nothing to check."""
    items = sorted(
        # The query's item is the metric's path alone, as before sampleGuard existed, so that
        # a spec without a guard keeps its digest (and is not checked again on upgrade).
        (path if field == "provider.prometheus.query" else f"{path}.{field}", address, query)
        for path, m in metrics
        if m.provider.prometheus is not None or m.kind is not MetricKind.THRESHOLD
        for address in (_address(m),)
        for field, query in prometheus_queries(m)
    )
    if not items:
        return ""
    text = json.dumps(items, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _address(metric: Metric) -> str:
    """The metric's own Prometheus address ("" for the operator's default)."""
    source = metric.provider.prometheus
    return (source.address or "") if source is not None else ""


def sample_context(
    namespace: str, name: str, stable_service: str, canary_service: str
) -> dict[str, str]:
    """Placeholder values to render a query with for its check."""
    return {
        "namespace": namespace,
        "name": name,
        "stableRevision": SAMPLE_REVISION,
        "canaryRevision": SAMPLE_REVISION,
        "baselineRevision": SAMPLE_REVISION,
        "stableService": stable_service,
        "canaryService": canary_service,
    }


def check_due(digest: str, recorded: QueryVerification | None, now: datetime) -> bool:
    """Whether the runtime should check the queries of ``digest`` this pass."""
    if not digest:
        return False
    if recorded is None or recorded.digest != digest:
        return True
    if recorded.state is QueryState.UNVERIFIED:
        return now >= add_seconds(recorded.checked_at, RECHECK_SECONDS)
    return False


def verification(
    digest: str,
    recorded: QueryVerification | None,
    check: QueryCheck | None,
    now: datetime,
) -> QueryVerification | None:
    """``status.queries`` after this pass: the new check's outcome when there is one for the
    current digest, else what was recorded (None when there is nothing to check)."""
    if not digest:
        return None
    if check is None or check.digest != digest:
        return recorded if recorded is not None and recorded.digest == digest else None
    if check.refused:
        shown = check.refused[:SHOWN_REFUSALS]
        lines = [f"{r.field}: the provider refused the query: {r.message}" for r in shown]
        if len(check.refused) > SHOWN_REFUSALS:
            lines.append(f"... and {len(check.refused) - SHOWN_REFUSALS} more")
        return QueryVerification(
            digest=digest, state=QueryState.REFUSED, checked_at=now, refused=lines
        )
    if check.unreachable is not None:
        return QueryVerification(
            digest=digest,
            state=QueryState.UNVERIFIED,
            checked_at=now,
            message=check.unreachable,
        )
    return QueryVerification(digest=digest, state=QueryState.VERIFIED, checked_at=now)


def refusals(recorded: QueryVerification | None, digest: str) -> list[str]:
    """The spec errors the recorded check stands for (none unless it refused these queries)."""
    if recorded is None or recorded.digest != digest or recorded.state is not QueryState.REFUSED:
        return []
    return list(recorded.refused)


def condition_of(recorded: QueryVerification | None, digest: str) -> tuple[str, str, str] | None:
    """The ``QueriesVerified`` condition as (status, reason, message) for the queries of
    ``digest``; None when there are no queries (no condition)."""
    if not digest:
        return None
    state = recorded.state if recorded is not None and recorded.digest == digest else None
    if state is QueryState.VERIFIED:
        return "True", "Verified", "the provider parsed every query"
    if state is QueryState.REFUSED:
        return "False", "QueryRefused", "; ".join(refusals(recorded, digest))
    if state is QueryState.UNVERIFIED and recorded is not None:
        return "Unknown", "ProviderUnreachable", f"queries not verified yet: {recorded.message}"
    return "Unknown", "NotChecked", "queries not checked yet"


def recheck_at(recorded: QueryVerification | None) -> datetime | None:
    """When to look again for an unverified check (None otherwise)."""
    if recorded is None or recorded.state is not QueryState.UNVERIFIED:
        return None
    return add_seconds(recorded.checked_at, RECHECK_SECONDS)


class QueriedStatus(Protocol):
    """What the query check needs of a kind's status: its recorded check and its
    conditions."""

    @property
    def queries(self) -> QueryVerification | None: ...

    def model_copy(
        self, *, update: Mapping[str, Any] | None = None, deep: bool = False
    ) -> Self: ...

    def with_condition(
        self,
        type_: Any,
        status: ConditionStatus,
        *,
        reason: str,
        message: str,
        now: datetime,
        generation: int | None,
    ) -> Self: ...

    def without_condition(self, type_: Any) -> Self: ...


Q = TypeVar("Q", bound=QueriedStatus)


def record_check(
    status: Q,
    metrics: Iterable[tuple[str, Metric]],
    check: QueryCheck | None,
    now: datetime,
) -> tuple[Q, str, list[str]]:
    """``status`` with the verdict of this pass's check of ``metrics``' queries recorded
    (:func:`verification`), the queries' digest, and the spec errors a refusal stands for."""
    digest = queries_digest(metrics)
    queries = verification(digest, status.queries, check, now)
    if queries != status.queries:
        status = status.model_copy(update={"queries": queries})
    return status, digest, refusals(queries, digest)


def with_queries_condition(
    status: Q, type_: StrEnum, digest: str, *, generation: int | None, now: datetime
) -> tuple[Q, datetime | None]:
    """``status`` with its ``QueriesVerified`` condition (``type_``: the kind's) for the
    queries of ``digest`` (none without queries), and when to look again at unverified
    queries (None: nothing to look at)."""
    condition = condition_of(status.queries, digest)
    if condition is None:
        return status.without_condition(type_), None
    value, reason, message = condition
    status = status.with_condition(
        type_,
        ConditionStatus(value),
        reason=reason,
        message=clip(message),
        now=now,
        generation=generation,
    )
    return status, recheck_at(status.queries)


__all__ = [
    "FIELD_PLACEHOLDERS",
    "RECHECK_SECONDS",
    "SAMPLE_REVISION",
    "SAMPLE_WINDOW",
    "QueriedStatus",
    "QueryCheck",
    "QueryRefusal",
    "QueryState",
    "QueryVerification",
    "canary_metrics",
    "check_due",
    "condition_of",
    "prometheus_queries",
    "queries_digest",
    "recheck_at",
    "record_check",
    "refusals",
    "render_for_check",
    "sample_context",
    "verification",
    "with_queries_condition",
]
