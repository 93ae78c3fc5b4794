"""Metric kinds in a step's analysis: validation of compare and sloBurnRate metrics, their
measurements' verdicts and evidence, and the one judge of a step (the decision's
recommendation is the step's verdict)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from rollwise.core import decision_reasons as D
from rollwise.core.analysis import checks_for_step, first_delay, new_run
from rollwise.core.burnrate import WindowCounts
from rollwise.core.decision import Action, Mode
from rollwise.core.judging import (
    burn_windows,
    compare_window,
    record_measurement,
    step_decision,
    step_evidence,
    step_verdict,
)
from rollwise.core.observations import Measurement
from rollwise.core.query_templates import compare_contexts, render_window
from rollwise.core.runs import MetricRun, Verdict
from rollwise.core.spec import Metric, MetricKind, RolloutSpec
from rollwise.core.validation import (
    MSG_METRIC_KIND,
    MSG_SCORING_ORDER,
    MSG_THRESHOLD_QUERY,
    load_rollout_spec,
)
from tests.unit.core.rollout_builders import T0, at, metric, raw_spec

ERRORS = 'sum(rate(errors{revision="{{revision}}"}[1m]))'
BAD = 'sum(increase(errors{revision="{{canaryRevision}}"}[{{window}}]))'
TOTAL = 'sum(increase(requests{revision="{{canaryRevision}}"}[{{window}}]))'


def compare_metric(**extra: Any) -> dict[str, Any]:
    return {"name": "errors", "compare": {"query": ERRORS, "minSamples": 5, **extra}}


def burn_metric(**extra: Any) -> dict[str, Any]:
    slo: dict[str, Any] = {"objective": 0.99, "badQuery": BAD, "totalQuery": TOTAL}
    slo.update(extra)
    return {"name": "slo", "sloBurnRate": slo}


def errors_of(metrics: list[dict[str, Any]], **analysis: Any) -> list[str]:
    spec = raw_spec(analysis={"interval": "30s", "metrics": metrics, **analysis})
    return load_rollout_spec(spec)[1]


AT = "spec.strategy.canary.analysis.metrics[0]"


@pytest.mark.parametrize(
    ("metrics", "analysis", "expected"),
    [
        pytest.param([compare_metric()], {}, [], id="compare-valid"),
        pytest.param([burn_metric()], {}, [], id="burn-rate-valid"),
        pytest.param(
            [{**compare_metric(), "successCondition": "result < 1"}],
            {},
            [f"{AT}: {MSG_METRIC_KIND}"],
            id="two-kinds",
        ),
        pytest.param(
            [{"name": "none", "provider": {"prometheus": {"query": "up"}}}],
            {},
            [f"{AT}: {MSG_METRIC_KIND}"],
            id="no-kind",
        ),
        pytest.param(
            [{"name": "t", "successCondition": "result < 1", "provider": {"prometheus": {}}}],
            {},
            [f"{AT}.provider.prometheus.query: {MSG_THRESHOLD_QUERY}"],
            id="threshold-without-query",
        ),
        pytest.param(
            [{**compare_metric(), "provider": {"prometheus": {"query": "up"}}}],
            {},
            [
                f"{AT}.provider.prometheus.query: compare and sloBurnRate metrics carry their "
                "queries in their own block; provider.prometheus names only the address and "
                "timeout"
            ],
            id="compare-with-provider-query",
        ),
        pytest.param(
            [{"name": "errors", "compare": {"query": "x{rev='{{window}}'}", "minSamples": 5}}],
            {},
            [
                f"{AT}.compare.query: unknown placeholder {{{{window}}}} (known: "
                "baselineRevision, canaryRevision, canaryService, name, namespace, revision, "
                "stableRevision, stableService)"
            ],
            id="compare-window-placeholder",
        ),
        pytest.param(
            [burn_metric(goodQuery=TOTAL)],
            {},
            [f"{AT}.sloBurnRate: sloBurnRate needs exactly one of goodQuery or badQuery"],
            id="burn-good-and-bad",
        ),
        pytest.param(
            [burn_metric(pairs=[{"long": "5m", "short": "1h", "rate": 2}])],
            {},
            [f"{AT}.sloBurnRate: short window 1h is not shorter than long 5m"],
            id="burn-pair-order",
        ),
        pytest.param(
            [burn_metric(minEvents=0)],
            {},
            [f"{AT}.sloBurnRate.minEvents: Input should be greater than or equal to 1"],
            id="burn-min-events-zero",
        ),
        pytest.param(
            [compare_metric()],
            {"scoring": {"pass": 70, "marginal": 80}},
            [f"spec.strategy.canary.analysis.scoring: {MSG_SCORING_ORDER}"],
            id="scoring-order",
        ),
    ],
)
def test_metric_kinds_are_validated(
    metrics: list[dict[str, Any]], analysis: dict[str, Any], expected: list[str]
) -> None:
    assert errors_of(metrics, **analysis) == expected


def test_kind_of_each_metric() -> None:
    assert Metric.model_validate(metric()).kind is MetricKind.THRESHOLD
    assert Metric.model_validate(compare_metric()).kind is MetricKind.COMPARE
    assert Metric.model_validate(burn_metric()).kind is MetricKind.SLO_BURN_RATE


def test_compare_query_runs_for_canary_and_stable_control() -> None:
    context = {"canaryRevision": "c1", "stableRevision": "s1"}
    canary, control, name = compare_contexts(context)
    assert (canary["revision"], control["revision"], name) == ("c1", "s1", "stable")
    assert render_window(TOTAL, context, "300s") == ('sum(increase(requests{revision="c1"}[300s]))')


def _checks(metrics: list[dict[str, Any]]) -> Any:
    spec = RolloutSpec.model_validate(raw_spec(analysis={"interval": "30s", "metrics": metrics}))
    checks = checks_for_step(spec, 0)
    assert checks is not None
    return checks


def test_compare_waits_for_min_samples_and_queries_the_steps_window() -> None:
    checks = _checks([compare_metric(step="10s")])
    (compare,) = checks.metrics
    assert first_delay(checks, compare) == 50.0  # 5 samples at 10s, more than the 30s interval
    start, end, step = compare_window(compare, T0, at(120))
    assert (start, end, step) == (T0, at(120), 10.0)


def test_burn_windows_are_shortened_to_the_canarys_age() -> None:
    checks = _checks([burn_metric()])
    (slo,) = checks.metrics
    windows = burn_windows(slo, T0, at(600))
    assert [(w.window, w.seconds) for w in windows] == [
        (300.0, 300.0),
        (1800.0, 600.0),
        (3600.0, 600.0),
        (21600.0, 600.0),
    ]


def _compare_measurement(canary: list[float], control: list[float]) -> Measurement:
    return Measurement(
        value=None, at=at(60), canary_samples=tuple(canary), control_samples=tuple(control)
    )


HEALTHY = [0.01 + 0.001 * (i % 5) for i in range(30)]
BROKEN = [0.2 + 0.001 * (i % 5) for i in range(30)]


@pytest.mark.parametrize(
    ("canary", "verdict", "action"),
    [
        pytest.param(HEALTHY, Verdict.PASS, Action.EXPAND, id="same-as-stable"),
        pytest.param(BROKEN, Verdict.FAIL, Action.ROLLBACK, id="raised-errors"),
        pytest.param(BROKEN[:3], Verdict.INCONCLUSIVE, Action.HOLD, id="too-few-samples"),
    ],
)
def test_a_compare_measurement_leaves_evidence_and_decides_the_step(
    canary: list[float], verdict: Verdict, action: Action
) -> None:
    checks = _checks([compare_metric()])
    (compare,) = checks.metrics
    run = new_run(0, "c1", checks, T0)
    rec = record_measurement(
        checks, compare, MetricRun(name="errors"), _compare_measurement(canary, HEALTHY)
    )
    assert rec.assessment.verdict is verdict
    evidence = rec.run.measurements[-1].compare
    assert evidence is not None
    assert (evidence.canary_samples, evidence.control_samples) == (len(canary), 30)
    assert evidence.control == "stable"
    wire = rec.run.measurements[-1].model_dump(mode="json", by_alias=True, exclude_none=True)
    assert set(wire["compare"]) >= {"canarySamples", "controlSamples", "control", "method"}
    if verdict is not Verdict.INCONCLUSIVE:
        assert evidence.p_value is not None
        assert evidence.method == "asymptotic"
    run = run.model_copy(update={"metrics": [rec.run]})
    decision = step_decision(checks, run, now=at(60), observed=timedelta(minutes=1))
    assert decision.recommended is action
    expected_verdict = {
        Action.ROLLBACK: Verdict.FAIL,
        Action.EXPAND: Verdict.PASS,
        Action.HOLD: Verdict.INCONCLUSIVE,
    }[action]
    assert step_verdict(checks, run) is expected_verdict
    advisory = step_decision(
        checks, run, now=at(60), observed=timedelta(minutes=1), mode=Mode.ADVISORY
    )
    assert advisory.action is Action.HOLD
    assert advisory.recommended is action


#: Error ratios over one request per sample: the canary failed 6 of 20, the stable none.
SPARSE_CANARY = [1.0] * 6 + [0.0] * 14
SPARSE_STABLE = [0.0] * 20


def test_pinned_medians_are_judged_on_the_means_and_read_back_from_status() -> None:
    checks = _checks([compare_metric()])
    (compare,) = checks.metrics
    rec = record_measurement(
        checks,
        compare,
        MetricRun(name="errors"),
        _compare_measurement(SPARSE_CANARY, SPARSE_STABLE),
    )
    assert rec.assessment.verdict is Verdict.FAIL
    evidence = rec.run.measurements[-1].compare
    assert evidence is not None
    assert evidence.effect_basis == "mean"
    assert (evidence.canary_median, evidence.control_median) == (0.0, 0.0)
    assert (evidence.canary_mean, evidence.control_mean) == (0.3, 0.0)
    wire = rec.run.measurements[-1].model_dump(mode="json", by_alias=True, exclude_none=True)
    assert wire["compare"]["effectBasis"] == "mean"
    assert (wire["compare"]["canaryMean"], wire["compare"]["controlMean"]) == (0.3, 0.0)
    # The decision reads the evidence back from status: the breach is on the means there too.
    run = new_run(0, "c1", checks, T0).model_copy(update={"metrics": [rec.run]})
    thresholds, compares, burns = step_evidence(checks, run)
    assert (thresholds, burns) == ([], [])
    (result,) = compares
    assert (result.basis, result.breach, result.shift) == ("mean", True, 0.3)
    assert step_verdict(checks, run) is Verdict.FAIL


def test_an_unconfirmed_breach_on_the_means_holds_the_step() -> None:
    checks = _checks([compare_metric()])
    (compare,) = checks.metrics
    canary = [1.0] * 4 + [0.0] * 16  # p = 0.0199: leaning bad, not significant at 0.01
    rec = record_measurement(
        checks, compare, MetricRun(name="errors"), _compare_measurement(canary, SPARSE_STABLE)
    )
    assert rec.assessment.verdict is Verdict.INCONCLUSIVE
    run = new_run(0, "c1", checks, T0).model_copy(update={"metrics": [rec.run]})
    (result,) = step_evidence(checks, run)[1]
    assert result.unconfirmed
    decision = step_decision(checks, run, now=at(60), observed=timedelta(minutes=1))
    assert decision.recommended is Action.HOLD
    assert "CompareUnconfirmed" in [r.code for r in decision.reasons]


def _burn_measurement(bad_ratio: float, seconds: float, total: float = 1000.0) -> Measurement:
    checks = _checks([burn_metric()])
    (slo,) = checks.metrics
    queries = burn_windows(slo, T0, at(seconds))
    counts = tuple(WindowCounts(query=q, total=total, bad=total * bad_ratio) for q in queries)
    return Measurement(value=None, at=at(seconds), windows=counts)


@pytest.mark.parametrize(
    ("min_events", "verdict", "action"),
    [
        pytest.param(None, Verdict.INCONCLUSIVE, Action.HOLD, id="default-floor-100-holds"),
        pytest.param(40, Verdict.FAIL, Action.ROLLBACK, id="floor-met-rolls-back"),
    ],
)
def test_min_events_reaches_the_judge_and_status(
    min_events: int | None, verdict: Verdict, action: Action
) -> None:
    extra = {} if min_events is None else {"minEvents": min_events}
    checks = _checks([burn_metric(**extra)])
    (slo,) = checks.metrics
    assert slo.slo_burn_rate is not None
    assert slo.slo_burn_rate.min_events == (min_events or 100)
    # A 50% error ratio over 40 requests a window.
    measured = _burn_measurement(0.5, 600, total=40.0)
    rec = record_measurement(checks, slo, MetricRun(name="slo"), measured)
    assert rec.assessment.verdict is verdict, rec.assessment.message
    evidence = rec.run.measurements[-1].burn_rate
    assert evidence is not None
    assert {w.events for w in evidence.windows} == {40.0}
    wire = rec.run.measurements[-1].model_dump(mode="json", by_alias=True, exclude_none=True)
    assert wire["burnRate"]["windows"][0]["events"] == 40.0
    # The decision judges the windows again from status, with the same floor.
    run = new_run(0, "c1", checks, T0).model_copy(update={"metrics": [rec.run]})
    decision = step_decision(checks, run, now=at(600), observed=timedelta(minutes=10))
    assert decision.recommended is action
    few = D.SLO_BURN_FEW_EVENTS.code in {r.code for r in decision.reasons}
    assert few is (action is Action.HOLD)


@pytest.mark.parametrize(
    ("bad_ratio", "verdict", "action", "state"),
    [
        pytest.param(0.5, Verdict.FAIL, Action.ROLLBACK, "Firing", id="burning-50x"),
        pytest.param(0.001, Verdict.PASS, Action.EXPAND, "Clear", id="within-budget"),
    ],
)
def test_a_burn_rate_measurement_leaves_evidence_and_decides_the_step(
    bad_ratio: float, verdict: Verdict, action: Action, state: str
) -> None:
    checks = _checks([burn_metric()])
    (slo,) = checks.metrics
    rec = record_measurement(checks, slo, MetricRun(name="slo"), _burn_measurement(bad_ratio, 600))
    assert rec.assessment.verdict is verdict
    evidence = rec.run.measurements[-1].burn_rate
    assert evidence is not None
    windows = {w.window: w for w in evidence.windows}
    assert windows["1h"].shortened
    assert windows["1h"].observed == "10m"
    assert windows["5m"].burn_rate == pytest.approx(bad_ratio / 0.01)
    critical = next(p for p in evidence.pairs if p.severity == "critical")
    assert (critical.long, critical.short, critical.threshold, critical.state) == (
        "1h",
        "5m",
        14.4,
        state,
    )
    run = new_run(0, "c1", checks, T0).model_copy(update={"metrics": [rec.run]})
    decision = step_decision(checks, run, now=at(600), observed=timedelta(minutes=10))
    assert decision.recommended is action
    assert D.SLO_WINDOW_SHORTENED.code in {r.code for r in decision.reasons}
