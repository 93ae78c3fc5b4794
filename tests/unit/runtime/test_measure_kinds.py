"""What the pass measures for ``compare`` and ``sloBurnRate`` metrics: the compare query
range-queried for the canary and for the stable control over the step's window, the burn-rate
counts over each window with ``{{window}}`` replaced; provider errors become the
measurement's error (the core makes it Inconclusive)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from rollwise.adapters.errors import ProviderUnavailable
from rollwise.adapters.metrics.base import NopProvider
from rollwise.core.spec import Metric
from rollwise.runtime.measuring import measure

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
STARTED = NOW - timedelta(minutes=10)
CONTEXT = {
    "namespace": "shop",
    "name": "web",
    "stableRevision": "s1",
    "canaryRevision": "c1",
    "stableService": "web-stable",
    "canaryService": "web-canary",
}
LOG = structlog.get_logger()


def _measure(metric: dict[str, Any], provider: NopProvider) -> Any:
    return asyncio.run(
        measure(
            [Metric.model_validate(metric)],
            CONTEXT,
            provider_for=lambda _address: provider,
            default_prometheus="http://prometheus:9090",
            now=NOW,
            metrics=None,
            log=LOG,
            started=STARTED,
        )
    )


COMPARE = {
    "name": "errors",
    "compare": {"query": 'err{revision="{{revision}}"}', "minSamples": 5, "step": "30s"},
}


def test_compare_queries_the_canary_and_the_stable_control() -> None:
    provider = NopProvider()
    provider.ranges = {'err{revision="c1"}': [0.2] * 21, 'err{revision="s1"}': [0.01] * 21}
    (measurement,) = _measure(COMPARE, provider).values()
    assert provider.queries == ['err{revision="c1"}', 'err{revision="s1"}']
    assert measurement.canary_samples == (0.2,) * 21
    assert measurement.control_samples == (0.01,) * 21
    assert measurement.control == "stable"
    assert measurement.error is None


def test_a_failed_range_query_is_the_measurements_error() -> None:
    provider = NopProvider()
    provider.ranges = {'err{revision="s1"}': ProviderUnavailable("down")}
    (measurement,) = _measure(COMPARE, provider).values()
    assert measurement.error == "down"


BURN = {
    "name": "slo",
    "sloBurnRate": {
        "objective": 0.99,
        "badQuery": 'sum(increase(err{revision="{{canaryRevision}}"}[{{window}}]))',
        "totalQuery": 'sum(increase(req{revision="{{canaryRevision}}"}[{{window}}]))',
        "pairs": [{"long": "30m", "short": "5m", "rate": 10}],
    },
}


def test_burn_rate_counts_each_window_shortened_to_the_canary() -> None:
    provider = NopProvider(default=100.0)
    (measurement,) = _measure(BURN, provider).values()
    assert sorted(provider.queries) == sorted(
        [
            'sum(increase(err{revision="c1"}[300s]))',
            'sum(increase(req{revision="c1"}[300s]))',
            'sum(increase(err{revision="c1"}[600s]))',
            'sum(increase(req{revision="c1"}[600s]))',
        ]
    )
    windows = {(w.query.window, w.query.seconds): (w.bad, w.total) for w in measurement.windows}
    assert windows == {(300.0, 300.0): (100.0, 100.0), (1800.0, 600.0): (100.0, 100.0)}
