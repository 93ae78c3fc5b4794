"""docs/analysis.md tells the truth about the code: its reason-code table is the core's, and
its worked examples give the verdicts the core gives."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from hack.gen_decision_reasons_table import BEGIN, DOC, END, render
from rollwise.core.burnrate import BurnRateRule, WindowCounts, evaluate_burn_rate, windows_to_query
from rollwise.core.compare import CompareRule, judge_metric
from rollwise.core.confidence import Confidence
from rollwise.core.decision import Mode, build_decision
from rollwise.core.decision_reasons import ALL_DECISION_REASONS
from rollwise.core.runs import MetricRun, Verdict
from rollwise.core.scoring import ScoreOutcome, score_metrics


def test_reason_table_matches_the_core() -> None:
    current = DOC.read_text(encoding="utf-8")
    assert render(current) == current, "run: python -m hack.gen_decision_reasons_table"


def test_every_code_is_listed_once() -> None:
    section = DOC.read_text(encoding="utf-8").split(BEGIN, 1)[1].split(END, 1)[0]
    for code in ALL_DECISION_REASONS:
        assert section.count(f"| `{code.code}` |") == 1, code.code


def test_render_refuses_a_page_without_markers() -> None:
    with pytest.raises(SystemExit):
        render("# no table here\n")


CONTROL = [0.19, 0.20, 0.21, 0.22, 0.23, 0.235]


@pytest.mark.parametrize(
    ("canary", "verdict", "quoted"),
    [
        pytest.param(
            [0.24, 0.25, 0.26, 0.27, 0.28, 0.29],
            Verdict.FAIL,
            "canary median 0.265 vs control 0.215 (+23.3%, tolerance 10%), p = 0.00108 < 0.01",
            id="worse",
        ),
        pytest.param(
            [0.205, 0.21, 0.215, 0.22, 0.225, 0.23],
            Verdict.PASS,
            "canary median 0.217 vs control 0.215 (+1.2%, tolerance 10%), p = 0.436 >= 0.01",
            id="within",
        ),
    ],
)
def test_compare_examples(canary: list[float], verdict: Verdict, quoted: str) -> None:
    result = judge_metric(canary, CONTROL, CompareRule(min_samples=6), metric="latency-p99")
    assert result.verdict is verdict
    assert quoted in result.message
    assert quoted in DOC.read_text(encoding="utf-8")


def test_burn_rate_example() -> None:
    now = datetime(2026, 3, 2, 15, tzinfo=UTC)
    rule = BurnRateRule(objective=0.999)
    counts = {
        300: (12_000, 240),
        1800: (70_000, 700),
        3600: (140_000, 2_100),
        21600: (400_000, 2_500),
    }
    queries = windows_to_query(rule, now, now - timedelta(hours=3))
    result = evaluate_burn_rate(
        rule,
        [
            WindowCounts(q, total=counts[int(q.window)][0], bad=counts[int(q.window)][1])
            for q in queries
        ],
        metric="checkout-availability",
    )
    assert result.verdict is Verdict.FAIL
    text = DOC.read_text(encoding="utf-8")
    for pair in result.pairs:
        assert pair.message in text


def test_decision_example_is_what_the_core_decides() -> None:
    now = datetime(2026, 3, 2, 15, tzinfo=UTC)
    rule = BurnRateRule(objective=0.999)
    counts = {
        300: (12_000, 240),
        1800: (70_000, 700),
        3600: (140_000, 2_100),
        21600: (400_000, 2_500),
    }
    queries = windows_to_query(rule, now, now - timedelta(hours=3))
    slo = evaluate_burn_rate(
        rule,
        [
            WindowCounts(q, total=counts[int(q.window)][0], bad=counts[int(q.window)][1])
            for q in queries
        ],
        metric="checkout-availability",
    )
    latency = judge_metric(
        [0.205, 0.21, 0.215, 0.22, 0.225, 0.23], CONTROL, CompareRule(min_samples=6), metric="p99"
    )
    threshold = MetricRun(name="error-ratio", verdict=Verdict.PASS, successful=3)
    decision = build_decision(
        now=now,
        observed=timedelta(hours=3),
        mode=Mode.ADVISORY,
        thresholds=[threshold],
        compares=[latency],
        burn_rates=[slo],
    )
    text = DOC.read_text(encoding="utf-8")
    block = text.split("<!-- decision-example:begin", 1)[1].split("```json", 1)[1]
    block = block.split("```", 1)[0]
    assert json.loads(block) == decision.model_dump(mode="json", by_alias=True, exclude_none=True)


@dataclass(frozen=True)
class Judged:
    metric: str
    verdict: Verdict
    weight: float = 1.0
    critical: bool = False
    confidence: Confidence = Confidence.HIGH


def test_score_example() -> None:
    score = score_metrics(
        [
            Judged("latency-p99", Verdict.PASS, weight=2, critical=True),
            Judged("latency-p50", Verdict.PASS),
            Judged("cpu", Verdict.FAIL),
            Judged("memory", Verdict.INCONCLUSIVE),
        ]
    )
    assert (score.score, score.best_case, score.outcome) == (75.0, 80.0, ScoreOutcome.MARGINAL)
    assert "score 75, best case 80" in DOC.read_text(encoding="utf-8")
