"""Kayenta-style scoring of judged metrics: score, best case, verdict rules, confidence."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from rollwise.core.confidence import Confidence
from rollwise.core.runs import Verdict
from rollwise.core.scoring import ScoreOutcome, ScoreThresholds, score_metrics

P, F, U = Verdict.PASS, Verdict.FAIL, Verdict.INCONCLUSIVE
LOW, MED, HIGH = Confidence.LOW, Confidence.MEDIUM, Confidence.HIGH


@dataclass(frozen=True)
class M:
    """A judged metric as the score sees it."""

    verdict: Verdict
    weight: float = 1.0
    critical: bool = False
    confidence: Confidence = Confidence.HIGH
    metric: str = "m"


def ms(*verdicts: Verdict, **kwargs: Any) -> list[M]:
    return [M(v, metric=f"m{i}", **kwargs) for i, v in enumerate(verdicts)]


@pytest.mark.parametrize(
    ("metrics", "outcome", "verdict", "score"),
    [
        pytest.param(ms(P, P, P, P), ScoreOutcome.PASSED, P, 100.0, id="all-pass"),
        pytest.param(
            [*ms(P, P, P), M(F, weight=0.1, metric="x")],
            ScoreOutcome.PASSED,
            P,
            3 / 3.1 * 100,
            id="light-failure-still-passes",
        ),
        pytest.param(ms(P, P, P, F), ScoreOutcome.MARGINAL, U, 75.0, id="marginal-at-75"),
        pytest.param(ms(P, P, F, F), ScoreOutcome.BELOW_MARGINAL, F, 50.0, id="below-marginal"),
        pytest.param(
            [*ms(P, P, P, P), M(F, critical=True, metric="c")],
            ScoreOutcome.CRITICAL_FAILED,
            F,
            80.0,
            id="critical-fails-whatever-the-score",
        ),
        pytest.param(
            [*ms(P, P, P, P), M(U, critical=True, metric="c")],
            ScoreOutcome.CRITICAL_INCONCLUSIVE,
            U,
            100.0,
            id="critical-inconclusive-holds",
        ),
        pytest.param(
            ms(P, P, P, U), ScoreOutcome.PASSED, P, 100.0, id="inconclusive-out-of-denominator"
        ),
        pytest.param(
            ms(P, P, U, U), ScoreOutcome.TOO_MANY_INCONCLUSIVE, U, 100.0, id="too-many-inconclusive"
        ),
        pytest.param(
            ms(U, U, U), ScoreOutcome.TOO_MANY_INCONCLUSIVE, U, None, id="nothing-decided"
        ),
        pytest.param([], ScoreOutcome.TOO_MANY_INCONCLUSIVE, U, None, id="no-metrics"),
        pytest.param(
            [M(P, weight=0.55), M(F, weight=0.2), M(U, weight=0.25)],
            ScoreOutcome.TOO_MANY_INCONCLUSIVE,
            U,
            0.55 / 0.75 * 100,
            id="missing-metrics-could-lift-a-failing-score",
        ),
        pytest.param(
            ms(F, F, F, U), ScoreOutcome.BELOW_MARGINAL, F, 0.0, id="fails-even-in-the-best-case"
        ),
        pytest.param(
            [*ms(F, F, F), M(U, critical=True, metric="c")],
            ScoreOutcome.BELOW_MARGINAL,
            F,
            0.0,
            id="decisive-failures-beat-a-critical-unknown",
        ),
    ],
)
def test_outcomes(
    metrics: list[M], outcome: ScoreOutcome, verdict: Verdict, score: float | None
) -> None:
    result = score_metrics(metrics)
    assert result.outcome is outcome, result.message
    assert result.verdict is verdict
    assert result.score == (pytest.approx(score) if score is not None else None)


@pytest.mark.parametrize(
    ("metrics", "fragment"),
    [
        pytest.param(
            ms(P, P, U, U), "50% of the weight inconclusive (maxInconclusive 25%)", id="share"
        ),
        pytest.param(
            [M(P, weight=0.55), M(F, weight=0.2), M(U, weight=0.25)],
            "below marginal 75, but the inconclusive metrics could lift it to 80.0",
            id="could-lift",
        ),
        pytest.param([], "nothing to score", id="empty"),
        pytest.param(
            ms(P, P, F, F), "below marginal 75 even if every inconclusive metric passed", id="below"
        ),
        pytest.param(ms(P, P, P, F), "between marginal 75 and pass 95", id="marginal"),
        pytest.param(
            ms(P),
            "score 100.0 (1 passed, 0 failed, 0 inconclusive of 1 metrics): at or above pass 95",
            id="pass",
        ),
        pytest.param(
            [M(U, critical=True, metric="c")],
            "critical metric inconclusive: c",
            id="critical-unknown",
        ),
    ],
)
def test_messages(metrics: list[M], fragment: str) -> None:
    assert fragment in score_metrics(metrics).message


def test_numbers_and_names() -> None:
    metrics = [
        M(P, weight=2, metric="a"),
        M(F, weight=1, metric="b"),
        M(U, weight=1, metric="c"),
        M(F, weight=1, critical=True, metric="d"),
    ]
    result = score_metrics(metrics)
    assert (result.passed_weight, result.failed_weight, result.inconclusive_weight) == (2, 2, 1)
    assert result.total_weight == 5
    assert result.score == 50.0
    assert result.best_case == 60.0
    assert result.failed == ("b", "d")
    assert result.inconclusive == ("c",)
    assert result.critical_failed == ("d",)
    assert result.message.startswith(
        "score 50.0 (1 passed, 2 failed, 1 inconclusive of 4 metrics): critical metric failed: d"
    )


@pytest.mark.parametrize(
    ("thresholds", "metrics", "outcome"),
    [
        pytest.param(
            {"pass": 80, "marginal": 50},
            ms(P, P, P, F),
            ScoreOutcome.MARGINAL,
            id="custom-marginal",
        ),
        pytest.param(
            {"pass": 75, "marginal": 50}, ms(P, P, P, F), ScoreOutcome.PASSED, id="custom-pass"
        ),
        pytest.param(
            {"maxInconclusive": 0},
            ms(P, P, P, U),
            ScoreOutcome.TOO_MANY_INCONCLUSIVE,
            id="no-inconclusive-allowed",
        ),
        pytest.param(
            {"maxInconclusive": 0.5},
            ms(P, P, U, U),
            ScoreOutcome.PASSED,
            id="half-inconclusive-allowed",
        ),
    ],
)
def test_thresholds(thresholds: dict[str, Any], metrics: list[M], outcome: ScoreOutcome) -> None:
    assert score_metrics(metrics, ScoreThresholds.model_validate(thresholds)).outcome is outcome


@pytest.mark.parametrize(
    "wire",
    [
        pytest.param({"pass": 70, "marginal": 80}, id="marginal-above-pass"),
        pytest.param({"pass": 101}, id="pass-over-100"),
        pytest.param({"maxInconclusive": 1.5}, id="share-over-1"),
    ],
)
def test_thresholds_refuse(wire: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ScoreThresholds.model_validate(wire)


@pytest.mark.parametrize(
    ("metrics", "confidence"),
    [
        pytest.param([M(P, confidence=HIGH), M(P, confidence=MED)], MED, id="pass-weakest"),
        pytest.param([M(P), M(P), M(P), M(U)], MED, id="pass-with-unknown-at-most-medium"),
        pytest.param(
            [M(P, confidence=LOW), M(F, critical=True, confidence=MED), M(F, critical=True)],
            HIGH,
            id="critical-fail-strongest",
        ),
        pytest.param(
            [M(P), M(F, confidence=HIGH), M(F, confidence=MED)],
            MED,
            id="below-marginal-weakest-failure",
        ),
        pytest.param([M(P), M(P), M(P), M(F, confidence=MED)], MED, id="marginal-weakest-failure"),
        pytest.param([M(P), M(U), M(U)], LOW, id="too-many-inconclusive-low"),
        pytest.param([M(P), M(U, critical=True)], LOW, id="critical-inconclusive-low"),
    ],
)
def test_confidence(metrics: list[M], confidence: Confidence) -> None:
    assert score_metrics(metrics).confidence is confidence


verdicts = st.sampled_from([P, F, U])
metric_lists = st.lists(
    st.builds(
        M,
        verdict=verdicts,
        weight=st.floats(min_value=0.1, max_value=10),
        critical=st.booleans(),
        confidence=st.sampled_from(Confidence),
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(metrics=metric_lists)
def test_score_properties(metrics: list[M]) -> None:
    limits = ScoreThresholds()
    result = score_metrics(metrics, limits)
    assert result.score is None or 0.0 <= result.score <= 100.0 + 1e-9
    if any(m.critical and m.verdict is F for m in metrics):
        assert result.verdict is F
    if result.verdict is P:
        assert not any(m.critical and m.verdict is not P for m in metrics)
        assert result.inconclusive_weight <= limits.max_inconclusive * result.total_weight
        assert result.score is not None
        assert result.score >= limits.passing
    if result.verdict is F and not result.critical_failed:
        # Decisive: even with every inconclusive metric passed it would fail.
        assert result.best_case < limits.marginal
    # Turning an inconclusive metric into a pass never makes a failing score worse than fail,
    # and never turns a non-failing score into a fail.
    if result.verdict is not F:
        lifted = [
            M(P, m.weight, m.critical, m.confidence) if m.verdict is U else m for m in metrics
        ]
        assert score_metrics(lifted, limits).verdict is not F
