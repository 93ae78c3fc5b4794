"""What a pass measures for ``compare`` and ``sloBurnRate`` metrics: a compare query
range-queried over the step's window for the canary and for the control, an SLO's counts over
each window the core names. Numbers only: the core judges them
(:mod:`rollwise.core.judging`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rollwise.adapters.errors import AdapterError
from rollwise.adapters.metrics.base import MetricProvider, RangeProvider
from rollwise.core.burnrate import WindowCounts, WindowQuery
from rollwise.core.judging import burn_windows, compare_window
from rollwise.core.observations import Measurement
from rollwise.core.query_templates import (
    COMPARE_PLACEHOLDERS,
    QueryTemplateError,
    compare_contexts,
    render_query,
    render_window,
)
from rollwise.core.spec import Metric
from rollwise.runtime.metrics import OperatorMetrics
from rollwise.runtime.query_budget import QueryBudget, call_in_budget, clip_error, error_code


async def measure_kind(
    metric: Metric,
    context: Mapping[str, str],
    provider: MetricProvider,
    *,
    started: datetime,
    now: datetime,
    timeout: float,
    metrics: OperatorMetrics | None,
    log: Any,
    budget: QueryBudget | None = None,
    namespace: str = "",
) -> Measurement:
    """One measurement of a ``compare`` metric (its query range-queried over the step's
    window for the canary and for the control) or of an ``sloBurnRate`` metric (its counts
    over each window the core names, ``{{window}}`` replaced). Numbers only: the core judges."""

    def failed(error: AdapterError | QueryTemplateError | str) -> Measurement:
        text = error if isinstance(error, str) else getattr(error, "message", str(error))
        if isinstance(error, AdapterError) and metrics is not None:
            metrics.api_error("prometheus_query", error_code(error))
        log.warning("metric query failed", metric=metric.name, error=text)
        return Measurement(value=None, at=now, error=clip_error(text))

    if metric.compare is not None:
        if not isinstance(provider, RangeProvider):
            return failed("compare metrics need a provider that answers range queries")
        canary_context, control_context, control = compare_contexts(dict(context))
        try:
            canary_query = render_query(metric.compare.query, canary_context, COMPARE_PLACEHOLDERS)
            control_query = render_query(
                metric.compare.query, control_context, COMPARE_PLACEHOLDERS
            )
        except QueryTemplateError as exc:
            return failed(exc)
        start, end, step = compare_window(metric, started, now)
        ranged = provider

        def fetch(text: str) -> list[float]:
            return ranged.query_range(text, start, end, step, timeout)

        try:
            canary, control_samples = await asyncio.gather(
                call_in_budget(budget, namespace, fetch, canary_query),
                call_in_budget(budget, namespace, fetch, control_query),
            )
        except AdapterError as exc:
            return failed(exc)
        return Measurement(
            value=None,
            at=now,
            canary_samples=tuple(canary),
            control_samples=tuple(control_samples),
            control=control,
        )
    slo = metric.slo_burn_rate
    if slo is None:
        return failed(f"metric {metric.name} has no kind to measure")
    windows = burn_windows(metric, started, now)

    async def count(template: str | None, window: WindowQuery) -> float | None:
        if template is None:
            return None
        text = render_window(template, dict(context), window.range)
        return await call_in_budget(budget, namespace, provider.query, text, timeout)

    async def one_window(window: WindowQuery) -> WindowCounts:
        total, bad, good = await asyncio.gather(
            count(slo.total_query, window),
            count(slo.bad_query, window),
            count(slo.good_query, window),
        )
        return WindowCounts(query=window, total=total, bad=bad, good=good)

    try:
        counted = await asyncio.gather(*(one_window(w) for w in windows))
    except (AdapterError, QueryTemplateError) as exc:
        return failed(exc)
    return Measurement(value=None, at=now, windows=tuple(counted))


__all__ = ["measure_kind"]
