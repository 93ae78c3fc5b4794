"""The regression counters a stored pass increments: one per episode's detection,
confirmation and false positive, whatever the number of passes that store the same watch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rollwise.core.observations import Measurement
from rollwise.core.postpromotion import LONG, PREVIOUS, SHORT, evaluate, key, start
from rollwise.core.spec import PostPromotion
from rollwise.runtime.metrics import OperatorMetrics

T0 = datetime(2026, 3, 1, tzinfo=UTC)
WATCH = PostPromotion.model_validate(
    {
        "duration": "1h",
        "interval": "10s",
        "windows": {"short": "1m", "long": "1h"},
        "confirmAfter": 2,
        "clearAfter": 2,
        "metrics": [
            {
                "name": "error-ratio",
                "successCondition": "result < 0.05",
                "provider": {"prometheus": {"query": "errors[{{window}}]"}},
            }
        ],
    }
)


def _count(metrics: OperatorMetrics, which: str) -> float:
    value = metrics.registry.get_sample_value(
        f"rollwise_regression_{which}_total",
        {
            "namespace": "ns",
            "name": "web",
            "severity": "critical",
            "reason": "error_rate_regression",
        },
    )
    return value or 0.0


def test_each_episode_is_counted_once_across_stored_passes() -> None:
    metrics = OperatorMetrics()
    status = start(WATCH, WATCH.metrics, revision="new", previous="old", now=T0)
    previous = {key("error-ratio", PREVIOUS): Measurement(0.01, T0)}
    status = evaluate(WATCH, WATCH.metrics, status, previous, T0).status
    # A blip (one bad, two good: a false positive), then a sustained regression (confirmed).
    for i, value in enumerate([0.3, 0.01, 0.01, 0.3, 0.3, 0.3], start=1):
        when = T0 + timedelta(seconds=10 * i)
        measured = {
            key("error-ratio", SHORT): Measurement(value, when),
            key("error-ratio", LONG): Measurement(value, when),
        }
        after = evaluate(WATCH, WATCH.metrics, status, measured, when).status
        metrics.regressions_stored("ns", "web", status, after)
        # The same watch stored again (a pass that changed nothing) counts nothing more.
        metrics.regressions_stored("ns", "web", after, after)
        status = after
    assert _count(metrics, "detected") == 2
    assert _count(metrics, "false_positive") == 1
    assert _count(metrics, "confirmed") == 1
