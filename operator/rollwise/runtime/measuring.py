"""Measuring, for both passes: which provider answers a metric, the query budget each
namespace shares, one measurement (:func:`query_metric`), the measurements due now
(:func:`measure`) and the provider's verdict on a spec's queries (:func:`check_queries`).

The core says what is due and judges the values; this module only asks the providers, from
worker threads (``asyncio.to_thread``, or the :class:`QueryBudget`'s pool within a
namespace's share). A provider error becomes a measurement's error, never an exception.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

from rollwise.adapters.errors import AdapterError, ProviderUnavailable, QueryRefused
from rollwise.adapters.metrics.base import MetricProvider
from rollwise.core.analysis import (
    QueryTemplateError,
    render_metric,
    render_sample_query,
    timeout_text,
)
from rollwise.core.durations import InvalidDuration, parse_seconds
from rollwise.core.observations import Measurement
from rollwise.core.querycheck import (
    QueryCheck,
    QueryRefusal,
    QueryVerification,
    check_due,
    prometheus_queries,
    queries_digest,
    render_for_check,
)
from rollwise.core.spec import Metric, MetricKind
from rollwise.runtime.measure_kinds import measure_kind
from rollwise.runtime.metrics import OperatorMetrics
from rollwise.runtime.query_budget import (
    DEFAULT_MAX_QUERY_SECONDS,
    MAX_MEASUREMENT_ERROR,
    NamespaceShares,
    QueryBudget,
    call_in_budget,
    clip_error,
    error_code,
)

ProviderFactory = Callable[[str], MetricProvider]

#: The error of a metric whose provider names no address when the operator has no default.
NO_PROMETHEUS = (
    "no Prometheus address: set the metric's provider.prometheus.address "
    "or the operator's ROLLWISE_PROMETHEUS_URL"
)


#: How a measurement's error starts when the provider's health check fails as well: the
#: provider is down, not just this query.
PROVIDER_OFFLINE = "the metric provider is offline (its health check fails too)"

#: Prefix of a named web provider in the provider factory's keys (``web:<name>``).
WEB_PREFIX = "web:"


def resolve_address(metric: Metric, default_prometheus: str | None) -> str | None:
    """Which provider answers a metric, as the provider factory's key: its Prometheus (its own
    address, else the operator's default) or ``web:<name>`` for a named web provider."""
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
    (the ``budget``'s, within ``namespace``'s share, when given).

    When the provider cannot be reached (``ProviderUnavailable``), its health check
    (``MetricProvider.is_online``) tells a provider that is down from a query that failed on
    a live one: the error of an offline provider starts with :data:`PROVIDER_OFFLINE`, which
    the ``MeasurementError`` event and the analysis in status carry. Only a failed query pays
    for the check."""
    try:
        value = await call_in_budget(budget, namespace, provider.query, query, timeout)
    except AdapterError as exc:
        if metrics is not None:
            metrics.api_error("prometheus_query", error_code(exc))
        message = exc.message
        if isinstance(exc, ProviderUnavailable) and not await call_in_budget(
            budget, namespace, provider.is_online
        ):
            message = f"{PROVIDER_OFFLINE}: {message}"
        error = clip_error(message)
        log.warning("metric query failed", metric=name, error=error)
        return Measurement(value=None, at=now, error=error)
    return Measurement(value=value, at=now)


class Measuring(Protocol):
    """What measuring needs of a kind's ports: its providers, the default Prometheus, the
    operator's metrics and the query budget."""

    @property
    def provider_for(self) -> ProviderFactory: ...

    @property
    def default_prometheus(self) -> str | None: ...

    @property
    def metrics(self) -> OperatorMetrics | None: ...

    @property
    def queries(self) -> QueryBudget | None: ...

    @property
    def allowed_prometheus(self) -> frozenset[str] | None: ...

    @property
    def web_providers(self) -> frozenset[str] | None: ...


async def measure_due(
    ports: Measuring,
    due: Sequence[Metric],
    context: Mapping[str, str],
    *,
    now: datetime,
    log: Any,
    namespace: str,
    started: datetime | None = None,
) -> dict[str, Measurement]:
    """:func:`measure` through a pass's ports (none when nothing is due)."""
    if not due:
        return {}
    return await measure(
        due,
        context,
        provider_for=ports.provider_for,
        default_prometheus=ports.default_prometheus,
        now=now,
        metrics=ports.metrics,
        log=log,
        budget=ports.queries,
        namespace=namespace,
        started=started,
    )


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
    """Asks each metric's provider to parse its queries (a threshold metric's query and its
    sampleGuard's, a compare metric's query, a burn-rate metric's counts:
    :func:`rollwise.core.querycheck.prometheus_queries`), rendered over ``context`` (sample
    placeholder values, :func:`rollwise.core.querycheck.render_for_check`), in parallel. A
    refusal names the metric's spec path and field; a provider that cannot be asked, or a
    metric with no provider address, leaves the queries unverified (never a spec error). A
    template that does not render is left to validation, which already reports it."""

    async def one(
        path: str, metric: Metric, field: str, template: str
    ) -> QueryRefusal | str | None:
        address = resolve_address(metric, default_prometheus)
        if not address:
            return NO_PROMETHEUS
        try:
            query = render_for_check(field, template, context)
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

    # Only Prometheus can parse a query (every kind's queries); a web provider's jsonPath is
    # checked with the spec.
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


async def check_spec_queries(
    ports: Measuring,
    metrics: Sequence[tuple[str, Metric]],
    context: Callable[[], Mapping[str, str]],
    recorded: QueryVerification | None,
    *,
    now: datetime,
    log: Any,
    namespace: str,
) -> QueryCheck | None:
    """The provider's verdict on a spec's queries (``metrics``, with their spec paths) when
    they are unchecked, or were unverified long enough (``recorded``: the status's last
    verdict); None when nothing is to be checked this pass, or when a metric names a provider
    the operator may not query (the spec is invalid anyway: nothing is sent to a host it
    chose). ``context`` makes the sample placeholder values."""
    digest = queries_digest(metrics)
    if not check_due(digest, recorded, now):
        return None
    if provider_problems(metrics, ports.allowed_prometheus, ports.web_providers):
        return None
    return await check_queries(
        digest,
        metrics,
        context(),
        provider_for=ports.provider_for,
        default_prometheus=ports.default_prometheus,
        log=log,
        budget=ports.queries,
        namespace=namespace,
    )


__all__ = [
    "CHECK_TIMEOUT_SECONDS",
    "DEFAULT_MAX_QUERY_SECONDS",
    "MAX_MEASUREMENT_ERROR",
    "NO_PROMETHEUS",
    "PROVIDER_OFFLINE",
    "WEB_PREFIX",
    "Measuring",
    "NamespaceShares",
    "ProviderFactory",
    "QueryBudget",
    "check_queries",
    "check_spec_queries",
    "clip_error",
    "measure",
    "measure_due",
    "metric_timeout",
    "normal_url",
    "provider_problems",
    "query_metric",
    "resolve_address",
]
