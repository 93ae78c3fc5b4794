"""Decisions that explain themselves: one named case per reason code, the confidence rules,
the two modes, required actions, and the wire form."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollwise.core import decision_reasons as D
from rollwise.core.burnrate import (
    BurnRateResult,
    BurnRateRule,
    WindowCounts,
    evaluate_burn_rate,
    windows_to_query,
)
from rollwise.core.compare import CompareResult, CompareRule, judge_metric
from rollwise.core.confidence import Confidence
from rollwise.core.decision import (
    MAX_REASONS,
    Action,
    Decision,
    Mode,
    Priority,
    build_decision,
    settle,
    threshold_confidence,
)
from rollwise.core.runs import MeasurementRecord, MetricRun, Verdict
from rollwise.core.scoring import score_metrics

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
LONG = timedelta(hours=7)
LOW, MEDIUM, HIGH = Confidence.LOW, Confidence.MEDIUM, Confidence.HIGH
EXPAND, HOLD, ROLLBACK = Action.EXPAND, Action.HOLD, Action.ROLLBACK

# ----------------------------------------------------------------------------- evidence

BASE = [100.0 + 0.05 * i for i in range(40)]
WORSE = [v * 1.3 for v in BASE]


def run(name: str, verdict: Verdict | None, **counts: int) -> MetricRun:
    """A threshold metric's run; PASS defaults to three clean measurements, FAIL to two."""
    defaults = {
        Verdict.PASS: {"successful": 3},
        Verdict.FAIL: {"failed": 2, "successful": 1},
        Verdict.INCONCLUSIVE: {"inconclusive": 2},
        None: {"successful": 1},
    }[verdict]
    values = {**defaults, **counts}
    return MetricRun(
        name=name,
        verdict=verdict,
        message=f"metric {name} {verdict.value.lower() if verdict else 'running'}",
        measurements=[MeasurementRecord(value=0.2, verdict=Verdict.PASS, at=NOW)],
        **values,
    )


def compared(
    name: str, kind: str = "pass", *, critical: bool = False, weight: float = 1.0
) -> CompareResult:
    """A judged compare metric: ``pass`` (40 identical samples a side), ``fail`` (30% worse),
    ``few`` (5 samples, under the default minSamples), ``dropped`` (a pass with two NaN samples),
    ``unconfirmed`` (one-request error ratios, 4 of 20 failed against none: pinned at zero,
    beyond tolerance on the means, p = 0.02)."""
    canary, control = {
        "pass": (BASE, BASE),
        "fail": (WORSE, BASE),
        "few": (BASE[:5], BASE),
        "dropped": ([*BASE, float("nan"), float("nan")], BASE),
        "unconfirmed": ([1.0] * 4 + [0.0] * 16, [0.0] * 20),
    }[kind]
    rule = CompareRule(critical=critical, weight=weight)
    return judge_metric(canary, control, rule, metric=name)


RULE = BurnRateRule(objective=0.999)


def burned(
    name: str = "availability",
    *,
    critical: float = 0.0,
    warning: float = 0.0,
    age: timedelta = LONG,
    answered: bool = True,
    events: float = 100_000.0,
) -> BurnRateResult:
    """An SLO whose critical pair windows (1h, 5m) burn at ``critical`` and warning pair
    windows (6h, 30m) at ``warning`` over ``events`` events each; ``answered`` False: every
    query returned nothing."""
    rates = {300.0: critical, 3600.0: critical, 1800.0: warning, 21600.0: warning}
    counts = [
        WindowCounts(
            q,
            total=events if answered else None,
            bad=rates[q.window] * events * RULE.budget,
        )
        for q in windows_to_query(RULE, NOW, NOW - age)
    ]
    return evaluate_burn_rate(RULE, counts, metric=name)


@dataclass(frozen=True)
class Evidence:
    thresholds: list[MetricRun] = field(default_factory=list)
    compares: list[CompareResult] = field(default_factory=list)
    burn_rates: list[BurnRateResult] = field(default_factory=list)
    observed: timedelta = LONG
    mode: Mode = Mode.AUTO


def decide(evidence: Evidence) -> Decision:
    return build_decision(
        now=NOW,
        observed=evidence.observed,
        mode=evidence.mode,
        thresholds=evidence.thresholds,
        compares=evidence.compares,
        burn_rates=evidence.burn_rates,
    )


# -------------------------------------------------------------- one case per reason code

REASON_CASES = [
    pytest.param(
        D.THRESHOLD_FAILED,
        Evidence(thresholds=[run("errors", Verdict.FAIL)]),
        ROLLBACK,
        id="ThresholdFailed",
    ),
    pytest.param(
        D.CRITICAL_METRIC_FAILED,
        Evidence(
            compares=[
                compared("p99", "fail", critical=True),
                *[compared(f"m{i}") for i in range(9)],
            ]
        ),
        ROLLBACK,
        id="CriticalMetricFailed",
    ),
    pytest.param(
        D.SCORE_BELOW_MARGINAL,
        Evidence(compares=[compared("a", "fail"), compared("b", "fail"), compared("c")]),
        ROLLBACK,
        id="ScoreBelowMarginal",
    ),
    pytest.param(
        D.SLO_BURN_CRITICAL,
        Evidence(burn_rates=[burned(critical=20)]),
        ROLLBACK,
        id="SloBurnCritical",
    ),
    pytest.param(
        D.THRESHOLD_INCONCLUSIVE,
        Evidence(thresholds=[run("errors", Verdict.INCONCLUSIVE)]),
        HOLD,
        id="ThresholdInconclusive",
    ),
    pytest.param(
        D.COMPARE_REGRESSION,
        Evidence(compares=[compared("p99", "fail"), compared("p50", weight=19)]),
        EXPAND,
        id="CompareRegression",
    ),
    pytest.param(
        D.INSUFFICIENT_SAMPLES,
        Evidence(compares=[compared("p99", "few"), *[compared(f"m{i}") for i in range(4)]]),
        EXPAND,
        id="InsufficientSamples",
    ),
    pytest.param(
        D.COMPARE_UNCONFIRMED,
        Evidence(compares=[compared("errors", "unconfirmed"), compared("p50")]),
        HOLD,
        id="CompareUnconfirmed",
    ),
    pytest.param(
        D.CRITICAL_METRIC_INCONCLUSIVE,
        Evidence(compares=[compared("p99", "few", critical=True), compared("p50")]),
        HOLD,
        id="CriticalMetricInconclusive",
    ),
    pytest.param(
        D.SCORE_MARGINAL,
        Evidence(compares=[compared("a", "fail"), compared("b"), compared("c"), compared("d")]),
        HOLD,
        id="ScoreMarginal",
    ),
    pytest.param(
        D.TOO_MANY_INCONCLUSIVE,
        Evidence(compares=[compared("a", "few"), compared("b", "few"), compared("c")]),
        HOLD,
        id="TooManyInconclusive",
    ),
    pytest.param(
        D.SLO_BURN_WARNING, Evidence(burn_rates=[burned(warning=8)]), HOLD, id="SloBurnWarning"
    ),
    pytest.param(
        D.SLO_BURN_FEW_EVENTS,
        Evidence(burn_rates=[burned(critical=20, events=40)]),
        HOLD,
        id="SloBurnFewEvents",
    ),
    pytest.param(
        D.SLO_BURN_NO_DATA,
        Evidence(burn_rates=[burned(answered=False)]),
        HOLD,
        id="SloBurnNoData",
    ),
    pytest.param(
        D.ANALYSIS_PENDING, Evidence(thresholds=[run("errors", None)]), HOLD, id="AnalysisPending"
    ),
    pytest.param(
        D.THRESHOLDS_PASSED,
        Evidence(thresholds=[run("errors", Verdict.PASS)]),
        EXPAND,
        id="ThresholdsPassed",
    ),
    pytest.param(D.SCORE_PASSED, Evidence(compares=[compared("p99")]), EXPAND, id="ScorePassed"),
    pytest.param(
        D.SLO_WITHIN_BUDGET, Evidence(burn_rates=[burned()]), EXPAND, id="SloWithinBudget"
    ),
    pytest.param(
        D.SLO_WINDOW_SHORTENED,
        Evidence(burn_rates=[burned(age=timedelta(minutes=40))], observed=timedelta(minutes=40)),
        EXPAND,
        id="SloWindowShortened",
    ),
    pytest.param(
        D.SAMPLES_DROPPED,
        Evidence(compares=[compared("p99", "dropped")]),
        EXPAND,
        id="SamplesDropped",
    ),
    pytest.param(
        D.SHORT_OBSERVATION,
        Evidence(thresholds=[run("errors", Verdict.PASS)], observed=timedelta(minutes=2)),
        EXPAND,
        id="ShortObservation",
    ),
    pytest.param(
        D.ADVISORY_MODE,
        Evidence(thresholds=[run("errors", Verdict.PASS)], mode=Mode.ADVISORY),
        EXPAND,
        id="AdvisoryMode",
    ),
    pytest.param(D.NO_CHECKS, Evidence(), EXPAND, id="NoChecks"),
    pytest.param(
        D.REASONS_TRUNCATED,
        Evidence(thresholds=[run(f"m{i}", Verdict.FAIL) for i in range(MAX_REASONS + 5)]),
        ROLLBACK,
        id="ReasonsTruncated",
    ),
]


@pytest.mark.parametrize(("code", "evidence", "recommended"), REASON_CASES)
def test_each_reason_code(code: D.ReasonCode, evidence: Evidence, recommended: Action) -> None:
    decision = decide(evidence)
    found = [r for r in decision.reasons if r.code == code.code]
    assert found, [r.code for r in decision.reasons]
    assert all(r.severity is code.severity for r in found)
    assert decision.recommended is recommended, decision.message
    assert decision.action is (recommended if evidence.mode is Mode.AUTO else HOLD)


def test_every_reason_code_has_a_case() -> None:
    # RegressionConfirmed comes from the post-promotion watch (test_core_rollout_watch.py).
    covered = {case.id for case in REASON_CASES} | {D.REGRESSION_CONFIRMED.code}
    assert covered == {code.code for code in D.ALL_DECISION_REASONS}


def test_reason_codes_are_unique_and_documented() -> None:
    codes = [code.code for code in D.ALL_DECISION_REASONS]
    assert len(codes) == len(set(codes))
    assert all(code.doc.endswith(".") for code in D.ALL_DECISION_REASONS)
    constants = [v for v in vars(D).values() if isinstance(v, D.ReasonCode)]
    assert set(constants) == set(D.ALL_DECISION_REASONS)


# ------------------------------------------------------------------------ reason details


def test_reasons_carry_metric_observed_and_threshold() -> None:
    decision = decide(
        Evidence(
            compares=[compared("p99", "fail", critical=True)], burn_rates=[burned(critical=20)]
        )
    )
    by_code = {r.code: r for r in decision.reasons}
    regression = by_code["CriticalMetricFailed"]
    assert regression.metric == "p99"
    assert regression.observed == pytest.approx(0.3)
    assert regression.threshold == 0.1
    burn = by_code["SloBurnCritical"]
    assert (burn.metric, burn.observed, burn.threshold) == ("availability", 20.0, 14.4)
    assert "at this rate the whole budget lasts 36h" in burn.message


def test_reasons_are_ordered_by_severity_and_truncated() -> None:
    evidence = Evidence(
        thresholds=[run(f"m{i}", Verdict.FAIL) for i in range(MAX_REASONS + 5)],
        burn_rates=[burned(age=timedelta(minutes=40))],
    )
    reasons = decide(evidence).reasons
    assert len(reasons) == MAX_REASONS
    ranks = [r.severity.rank for r in reasons]
    assert ranks == sorted(ranks)
    assert reasons[-1].code == "ReasonsTruncated"
    # 25 failed metrics, the shortened windows and the SLO within budget: 27 reasons.
    assert reasons[-1].message == "8 less severe reason(s) left out"


def test_required_actions_are_bounded_by_the_reasons_kept() -> None:
    decision = decide(
        Evidence(thresholds=[run(f"m{i}", Verdict.FAIL) for i in range(MAX_REASONS + 5)])
    )
    investigated = [a.id.removeprefix("investigate/") for a in decision.required_actions[1:]]
    assert investigated == [r.metric for r in decision.reasons if r.metric is not None]
    assert len(decision.required_actions) == MAX_REASONS


def test_shortened_windows_are_named() -> None:
    decision = decide(Evidence(burn_rates=[burned(age=timedelta(minutes=40))]))
    reason = next(r for r in decision.reasons if r.code == "SloWindowShortened")
    assert reason.message == (
        "SLO availability: window(s) 1h, 6h shortened to the canary's age 40m; the pairs using "
        "them are low confidence"
    )
    assert reason.observed == 2400


def test_pending_reports_measurements_so_far() -> None:
    reason = decide(Evidence(thresholds=[run("errors", None, successful=2)])).reasons[0]
    assert reason.message == "metric errors: 2 measurement(s) so far, analysis in progress"
    assert reason.observed == 2


# ----------------------------------------------------------------------------- confidence


@pytest.mark.parametrize(
    ("run_", "confidence"),
    [
        pytest.param(run("a", Verdict.FAIL, failed=2), HIGH, id="fail-twice"),
        pytest.param(run("a", Verdict.FAIL, failed=1), MEDIUM, id="fail-once"),
        pytest.param(run("a", Verdict.PASS, successful=3), HIGH, id="pass-clean"),
        pytest.param(run("a", Verdict.PASS, successful=2), MEDIUM, id="pass-few"),
        pytest.param(
            run("a", Verdict.PASS, successful=5, failed=1), MEDIUM, id="pass-with-failure"
        ),
        pytest.param(run("a", Verdict.PASS, successful=5, error=1), MEDIUM, id="pass-with-error"),
        pytest.param(run("a", Verdict.PASS, successful=5, inconclusive=1), MEDIUM, id="pass-mixed"),
        pytest.param(run("a", Verdict.INCONCLUSIVE), LOW, id="inconclusive"),
        pytest.param(run("a", None), LOW, id="pending"),
    ],
)
def test_threshold_confidence(run_: MetricRun, confidence: Confidence) -> None:
    assert threshold_confidence(run_) is confidence


@pytest.mark.parametrize(
    ("evidence", "action", "confidence"),
    [
        pytest.param(
            Evidence(
                thresholds=[run("a", Verdict.FAIL, failed=1)], burn_rates=[burned(critical=20)]
            ),
            ROLLBACK,
            HIGH,
            id="rollback-strongest-vote",
        ),
        pytest.param(
            Evidence(thresholds=[run("a", Verdict.FAIL, failed=1)]),
            ROLLBACK,
            MEDIUM,
            id="rollback-single-failed-measurement",
        ),
        pytest.param(
            Evidence(thresholds=[run("a", Verdict.FAIL)], observed=timedelta(minutes=1)),
            ROLLBACK,
            HIGH,
            id="rollback-not-capped-by-time",
        ),
        pytest.param(
            Evidence(
                burn_rates=[burned(critical=20, age=timedelta(minutes=20))],
                observed=timedelta(minutes=20),
            ),
            ROLLBACK,
            LOW,
            id="rollback-on-shortened-windows",
        ),
        pytest.param(
            Evidence(
                thresholds=[run("a", Verdict.PASS)],
                compares=[compared("p99")],
                burn_rates=[burned()],
            ),
            EXPAND,
            HIGH,
            id="expand-all-strong",
        ),
        pytest.param(
            Evidence(thresholds=[run("a", Verdict.PASS, successful=2)], burn_rates=[burned()]),
            EXPAND,
            MEDIUM,
            id="expand-weakest-vote",
        ),
        pytest.param(
            Evidence(thresholds=[run("a", Verdict.PASS)], observed=timedelta(minutes=30)),
            EXPAND,
            MEDIUM,
            id="expand-under-an-hour",
        ),
        pytest.param(
            Evidence(thresholds=[run("a", Verdict.PASS)], observed=timedelta(minutes=4)),
            EXPAND,
            LOW,
            id="expand-under-5m",
        ),
        pytest.param(
            Evidence(burn_rates=[burned(age=timedelta(minutes=40))]),
            EXPAND,
            LOW,
            id="expand-on-shortened-windows",
        ),
        pytest.param(Evidence(), EXPAND, LOW, id="expand-without-checks"),
        pytest.param(
            Evidence(burn_rates=[burned(warning=8)]), HOLD, HIGH, id="hold-on-solid-warning"
        ),
        pytest.param(
            Evidence(burn_rates=[burned(warning=8)], observed=timedelta(minutes=10)),
            HOLD,
            MEDIUM,
            id="hold-capped-by-time",
        ),
        pytest.param(
            Evidence(thresholds=[run("a", None)], burn_rates=[burned(warning=8)]),
            HOLD,
            LOW,
            id="hold-weakest-vote",
        ),
        pytest.param(
            Evidence(compares=[compared("p99", "few", critical=True)]),
            HOLD,
            LOW,
            id="hold-on-missing-evidence",
        ),
    ],
)
def test_decision_confidence(evidence: Evidence, action: Action, confidence: Confidence) -> None:
    decision = decide(evidence)
    assert (decision.recommended, decision.confidence) == (action, confidence), decision.message


def test_short_observation_is_reported_only_when_it_lowers_the_confidence() -> None:
    capped = decide(Evidence(thresholds=[run("a", Verdict.PASS)], observed=timedelta(minutes=30)))
    assert [r.message for r in capped.reasons if r.code == "ShortObservation"] == [
        "the canary was observed for 30m: confidence high lowered to medium"
    ]
    already_low = decide(Evidence(thresholds=[run("a", None)], observed=timedelta(minutes=1)))
    assert "ShortObservation" not in [r.code for r in already_low.reasons]


# ---------------------------------------------------------------- modes, required actions


def ids(decision: Decision) -> list[str]:
    return [a.id for a in decision.required_actions]


def test_auto_rollback_is_auto_applicable_and_asks_for_investigation() -> None:
    decision = decide(
        Evidence(thresholds=[run("errors", Verdict.FAIL)], burn_rates=[burned(critical=20)])
    )
    assert decision.action is ROLLBACK
    assert ids(decision) == ["rollback", "investigate/errors", "investigate/availability"]
    first, *rest = decision.required_actions
    assert (first.auto_applicable, first.priority) == (True, Priority.HIGH)
    assert not any(a.auto_applicable for a in rest)
    assert all(a.priority is Priority.HIGH for a in rest)
    assert rest[1].due_by == NOW + timedelta(hours=36)


def test_auto_expand_is_auto_applicable() -> None:
    decision = decide(Evidence(thresholds=[run("errors", Verdict.PASS)]))
    assert decision.action is EXPAND
    assert [(a.id, a.auto_applicable, a.priority) for a in decision.required_actions] == [
        ("expand", True, Priority.LOW)
    ]
    assert decision.message == "expand at high confidence: 1 threshold metric(s) passed: errors"


def test_auto_hold_asks_humans_only_for_what_they_can_fix() -> None:
    decision = decide(
        Evidence(
            thresholds=[run("errors", Verdict.INCONCLUSIVE), run("latency", None)],
            compares=[compared("p99", "few", critical=True)],
            burn_rates=[burned(warning=8), burned("young", age=timedelta(seconds=30))],
        )
    )
    assert decision.action is HOLD
    assert ids(decision) == ["restore-data/errors", "investigate/availability"]
    investigate = decision.required_actions[1]
    assert investigate.priority is Priority.MEDIUM
    assert investigate.due_by == NOW + timedelta(seconds=720 * 3600 / 8)
    assert not any(a.auto_applicable for a in decision.required_actions)


def test_no_data_from_queried_windows_asks_to_restore_it() -> None:
    assert ids(decide(Evidence(burn_rates=[burned(answered=False)]))) == [
        "restore-data/availability"
    ]


@pytest.mark.parametrize(
    ("evidence", "recommended", "first", "priority"),
    [
        pytest.param(
            Evidence(thresholds=[run("e", Verdict.FAIL)]),
            ROLLBACK,
            "abort-by-hand",
            Priority.HIGH,
            id="would-rollback",
        ),
        pytest.param(
            Evidence(thresholds=[run("e", Verdict.PASS)]),
            EXPAND,
            "promote-by-hand",
            Priority.MEDIUM,
            id="would-expand",
        ),
        pytest.param(
            Evidence(thresholds=[run("e", Verdict.INCONCLUSIVE)]),
            HOLD,
            "restore-data/e",
            Priority.MEDIUM,
            id="would-hold",
        ),
    ],
)
def test_advisory_only_recommends(
    evidence: Evidence, recommended: Action, first: str, priority: Priority
) -> None:
    verb = {EXPAND: "expand", HOLD: "hold", ROLLBACK: "roll back"}[recommended]
    auto = decide(evidence)
    advisory = decide(Evidence(thresholds=evidence.thresholds, mode=Mode.ADVISORY))
    assert advisory.action is HOLD
    assert advisory.recommended is recommended is auto.recommended
    assert advisory.confidence is auto.confidence
    assert advisory.required_actions[0].id == first
    assert advisory.required_actions[0].priority is priority
    assert not any(a.auto_applicable for a in advisory.required_actions)
    assert advisory.message.startswith(
        f"hold (advisory mode; auto would {verb} at {auto.confidence.value} confidence): "
    )
    assert any(
        r.code == "AdvisoryMode" and f"auto would {verb}" in r.message for r in advisory.reasons
    )


def test_advisory_abort_is_due_when_the_budget_would_run_out() -> None:
    decision = decide(Evidence(burn_rates=[burned(critical=20)], mode=Mode.ADVISORY))
    assert decision.required_actions[0].id == "abort-by-hand"
    assert decision.required_actions[0].due_by == NOW + timedelta(hours=36)


def test_the_message_leads_with_what_sets_the_confidence() -> None:
    decision = decide(
        Evidence(
            thresholds=[run("errors", Verdict.FAIL, failed=1)], burn_rates=[burned(critical=20)]
        )
    )
    assert decision.message.startswith("rollback at high confidence: SLO availability")


# ------------------------------------------------------------------------------ the wire


def test_wire_form_is_camel_case_and_round_trips() -> None:
    decision = decide(
        Evidence(
            compares=[compared("p99", "fail"), compared("p50")],
            burn_rates=[burned(critical=20)],
            mode=Mode.ADVISORY,
        )
    )
    wire = decision.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert set(wire) == {
        "action",
        "recommended",
        "mode",
        "confidence",
        "message",
        "score",
        "reasons",
        "requiredActions",
        "decidedAt",
    }
    assert wire["decidedAt"] == "2026-01-01T12:00:00Z"
    assert wire["requiredActions"][0] == {
        "id": "abort-by-hand",
        "description": "auto mode would roll back: check the reasons, then abort the canary by "
        "hand (annotation rollwise.dev/abort)",
        "priority": "high",
        "dueBy": "2026-01-03T00:00:00Z",
        "autoApplicable": False,
    }
    assert wire["score"] == 50.0
    json.dumps(wire, allow_nan=False)
    assert Decision.model_validate(wire) == decision


def test_decision_is_frozen_and_reads_newer_statuses() -> None:
    decision = decide(Evidence())
    with pytest.raises(ValueError, match="frozen"):
        decision.action = ROLLBACK  # type: ignore[misc]
    wire = decision.model_dump(mode="json", by_alias=True)
    wire["someFutureField"] = 1
    wire["reasons"][0]["code"] = "SomeFutureCode"
    assert Decision.model_validate(wire).reasons[0].code == "SomeFutureCode"


def test_a_naive_now_is_utc() -> None:
    decision = build_decision(now=datetime(2026, 1, 1, 12), observed=LONG)
    assert decision.decided_at == NOW


def test_settle_keeps_the_time_of_an_unchanged_decision() -> None:
    first = decide(Evidence(thresholds=[run("errors", Verdict.PASS)]))
    later = build_decision(
        now=NOW + timedelta(minutes=1), observed=LONG, thresholds=[run("errors", Verdict.PASS)]
    )
    assert settle(first, later) is first
    changed = build_decision(
        now=NOW + timedelta(minutes=1), observed=LONG, thresholds=[run("errors", Verdict.FAIL)]
    )
    assert settle(first, changed) is changed
    assert settle(None, later) is later


# ----------------------------------------------------------------------------- properties

verdicts = st.sampled_from([Verdict.PASS, Verdict.FAIL, Verdict.INCONCLUSIVE, None])
runs = st.lists(
    st.builds(
        lambda i, v, n: run(f"t{i}", v, successful=n),
        st.integers(0, 3),
        verdicts,
        st.integers(0, 5),
    ),
    max_size=4,
    unique_by=lambda r: r.name,
)
compare_results = st.lists(
    st.builds(
        lambda i, kind, critical: compared(f"c{i}", kind, critical=critical),
        st.integers(0, 5),
        st.sampled_from(["pass", "fail", "few", "dropped"]),
        st.booleans(),
    ),
    max_size=5,
    unique_by=lambda c: c.metric,
)
burn_results = st.lists(
    st.builds(
        burned,
        st.sampled_from(["slo-a", "slo-b"]),
        critical=st.sampled_from([0.0, 10.0, 20.0]),
        warning=st.sampled_from([0.0, 8.0]),
        age=st.sampled_from([timedelta(seconds=30), timedelta(minutes=40), LONG]),
        answered=st.booleans(),
    ),
    max_size=2,
    unique_by=lambda b: b.metric,
)


@settings(
    max_examples=200,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    thresholds=runs,
    compares=compare_results,
    burn_rates=burn_results,
    observed=st.sampled_from([timedelta(minutes=m) for m in (0, 3, 10, 59, 60, 600)]),
    mode=st.sampled_from(Mode),
)
def test_decision_properties(
    thresholds: list[MetricRun],
    compares: list[CompareResult],
    burn_rates: list[BurnRateResult],
    observed: timedelta,
    mode: Mode,
) -> None:
    decision = build_decision(
        now=NOW,
        observed=observed,
        mode=mode,
        thresholds=thresholds,
        compares=compares,
        burn_rates=burn_rates,
    )
    auto_applicable = [a for a in decision.required_actions if a.auto_applicable]
    if mode is Mode.ADVISORY:
        assert decision.action is HOLD
        assert not auto_applicable
    else:
        assert decision.action is decision.recommended
        assert [a.id for a in auto_applicable] == (
            [] if decision.action is HOLD else [decision.action.value]
        )

    failed = (
        any(t.verdict is Verdict.FAIL for t in thresholds)
        or any(b.verdict is Verdict.FAIL for b in burn_rates)
        or (bool(compares) and score_metrics(compares).verdict is Verdict.FAIL)
    )
    assert (decision.recommended is ROLLBACK) is failed
    if decision.recommended is EXPAND:
        assert all(t.verdict is Verdict.PASS for t in thresholds)
        assert all(b.verdict is Verdict.PASS for b in burn_rates)
        assert not any(c.critical and c.verdict is not Verdict.PASS for c in compares)
    if decision.recommended is not ROLLBACK and observed < timedelta(minutes=5):
        assert decision.confidence is LOW

    codes = {code.code for code in D.ALL_DECISION_REASONS}
    assert len(decision.reasons) <= MAX_REASONS
    assert {r.code for r in decision.reasons} <= codes
    ids_ = [a.id for a in decision.required_actions]
    assert len(ids_) == len(set(ids_))
    wire = decision.model_dump(mode="json", by_alias=True, exclude_none=True)
    json.dumps(wire, allow_nan=False)
    assert Decision.model_validate(wire) == decision


def test_confidence_is_derived_not_constant() -> None:
    seen: set[Confidence] = set()
    for case in REASON_CASES:
        evidence = case.values[1]
        assert isinstance(evidence, Evidence)
        seen.add(decide(evidence).confidence)
    assert seen == {LOW, MEDIUM, HIGH}


def test_an_unconfirmed_breach_names_the_p_value_against_the_level() -> None:
    decision = decide(Evidence(compares=[compared("errors", "unconfirmed")]))
    (reason,) = [r for r in decision.reasons if r.code == D.COMPARE_UNCONFIRMED.code]
    assert reason.metric == "errors"
    assert reason.observed == pytest.approx(0.0199, abs=5e-5)
    assert reason.threshold == 0.01
    assert "medians pinned at 0.000" in reason.message
    critical = decide(Evidence(compares=[compared("errors", "unconfirmed", critical=True)]))
    assert critical.recommended is HOLD
    codes = [r.code for r in critical.reasons]
    assert D.CRITICAL_METRIC_INCONCLUSIVE.code in codes
    assert D.COMPARE_UNCONFIRMED.code not in codes


def test_too_few_events_hold_without_asking_to_restore_data() -> None:
    decision = decide(Evidence(burn_rates=[burned(critical=20, events=40)]))
    assert decision.recommended is HOLD
    (reason,) = [r for r in decision.reasons if r.code == D.SLO_BURN_FEW_EVENTS.code]
    assert (reason.observed, reason.threshold) == (40.0, 100.0)
    assert "fewer than minEvents 100 events in window(s) 5m, 30m, 1h, 6h" in reason.message
    codes = [r.code for r in decision.reasons]
    assert D.SLO_BURN_NO_DATA.code not in codes
    assert D.SLO_BURN_CRITICAL.code not in codes
    assert not [a for a in decision.required_actions if a.id.startswith("restore-data/")]
    # The same burn over enough events is a rollback.
    assert decide(Evidence(burn_rates=[burned(critical=20, events=100)])).recommended is ROLLBACK
