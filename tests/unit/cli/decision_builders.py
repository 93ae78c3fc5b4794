"""Decisions and the analysis evidence behind them, as the operator writes them in status:
the decision built by the core (:func:`rollwise.core.decision.build_decision` over real
compare and burn-rate results, then its wire form), the analysis run with each measurement's
``compare`` or ``burnRate`` evidence and sample-guard count in the wire form status keeps.

The scenario is the worked example of ``docs/analysis.md``: a canary at 25%, observed for 3h,
whose SLO burns its budget (the critical 1h/5m pair fires), while its threshold metrics pass
and its latency is within tolerance of the baseline's.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from rollwise.core.burnrate import (
    BurnRateResult,
    BurnRateRule,
    WindowCounts,
    evaluate_burn_rate,
    windows_to_query,
)
from rollwise.core.compare import CompareResult, CompareRule, judge_metric
from rollwise.core.decision import Decision, Mode, build_decision
from rollwise.core.judging import burn_evidence, compare_evidence
from rollwise.core.runs import AnalysisRun, MeasurementRecord, MetricRun, Verdict

#: The baseline's p99 latency samples, and a canary's within tolerance of them.
CONTROL = [0.19, 0.20, 0.21, 0.22, 0.23, 0.235]
CANARY_WITHIN = [0.205, 0.21, 0.215, 0.22, 0.225, 0.23]
CANARY_WORSE = [0.24, 0.25, 0.26, 0.27, 0.28, 0.29]

#: Total and bad requests of each burn-rate window, by the window's length in seconds.
BURN_COUNTS = {
    300: (12_000, 240),
    1800: (70_000, 700),
    3600: (140_000, 2_100),
    21600: (400_000, 2_500),
}

#: The sample guard's counts recorded with the error-ratio measurements.
GUARD_COUNTS = (140.0, 150.0, 160.0)


def compare_wire(result: CompareResult, control: str = "baseline") -> dict[str, Any]:
    """A compare result as a measurement's ``compare`` field, as the operator records it."""
    return compare_evidence(result, control).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )


def burn_wire(result: BurnRateResult) -> dict[str, Any]:
    """A burn-rate result as a measurement's ``burnRate`` field, as the operator records it."""
    return burn_evidence(result).model_dump(mode="json", by_alias=True, exclude_none=True)


def burn_result(now: datetime, started: datetime) -> BurnRateResult:
    rule = BurnRateRule(objective=0.999)
    queries = windows_to_query(rule, now, started)
    counts = [
        WindowCounts(q, total=BURN_COUNTS[int(q.window)][0], bad=BURN_COUNTS[int(q.window)][1])
        for q in queries
    ]
    return evaluate_burn_rate(rule, counts, metric="checkout-availability")


def threshold_runs(now: datetime, errors_taken: int = 3, latency_taken: int = 2) -> list[MetricRun]:
    """error-ratio (``errors_taken`` measurements, all passed, with a sample guard) and
    p99-latency (``latency_taken``, all passed)."""
    errors = MetricRun(
        name="error-ratio",
        measurements=[
            MeasurementRecord(
                value=value,
                verdict=Verdict.PASS,
                at=now - timedelta(seconds=60 - 30 * i),
                message=f"metric error-ratio = {value:.3f} passed successCondition 'result < 0.05'",
            )
            for i, value in enumerate((0.009, 0.012, 0.011)[-errors_taken:])
        ],
        successful=errors_taken,
        verdict=Verdict.PASS,
    )
    latency = MetricRun(
        name="p99-latency",
        measurements=[
            MeasurementRecord(value=v, verdict=Verdict.PASS, at=now - timedelta(seconds=s))
            for v, s in ((0.231, 40), (0.228, 10))[-latency_taken:]
        ],
        successful=latency_taken,
        verdict=Verdict.PASS,
    )
    return [errors, latency]


def evidence(
    now: datetime,
    *,
    mode: Mode = Mode.ADVISORY,
    canary_samples: list[float] | None = None,
    observed: timedelta = timedelta(hours=3),
    errors_taken: int = 3,
    latency_taken: int = 2,
) -> tuple[Decision, list[MetricRun], CompareResult, BurnRateResult]:
    """The decision on the canary and what it rests on."""
    started = now - observed
    slo = burn_result(now, started)
    latency = judge_metric(
        canary_samples if canary_samples is not None else CANARY_WITHIN,
        CONTROL,
        CompareRule(min_samples=6),
        metric="latency-vs-baseline",
    )
    runs = threshold_runs(now, errors_taken, latency_taken)
    decision = build_decision(
        now=now,
        observed=observed,
        mode=mode,
        thresholds=runs,
        compares=[latency],
        burn_rates=[slo],
    )
    return decision, runs, latency, slo


def decision_wire(decision: Decision) -> dict[str, Any]:
    wire: dict[str, Any] = decision.model_dump(mode="json", by_alias=True, exclude_none=True)
    return wire


def analysis_wire(
    now: datetime,
    *,
    revision: str,
    step_index: int,
    runs: list[MetricRun],
    compare: CompareResult,
    burn: BurnRateResult,
) -> dict[str, Any]:
    """The step's analysis run as status keeps it: the threshold runs, then one metric
    measured by the judge and one by the burn-rate check, each measurement carrying its
    evidence."""
    run = AnalysisRun(
        step_index=step_index,
        revision=revision,
        started_at=now - timedelta(minutes=4),
        metrics=[
            *runs,
            MetricRun(
                name=compare.metric,
                measurements=[
                    MeasurementRecord(
                        value=compare.effect_size,
                        verdict=compare.verdict,
                        at=now - timedelta(seconds=15),
                        message=compare.message,
                    )
                ],
                successful=int(compare.verdict is Verdict.PASS),
                failed=int(compare.verdict is Verdict.FAIL),
            ),
            MetricRun(
                name=burn.metric,
                measurements=[
                    MeasurementRecord(
                        value=burn.highest_burn,
                        verdict=burn.verdict,
                        at=now - timedelta(seconds=15),
                        message=burn.message,
                    )
                ],
                failed=int(burn.verdict is Verdict.FAIL),
            ),
        ],
    )
    wire: dict[str, Any] = run.model_dump(mode="json", by_alias=True, exclude_none=True)
    metrics = {m["name"]: m for m in wire["metrics"]}
    records = metrics["error-ratio"]["measurements"]
    for record, count in zip(records, GUARD_COUNTS[-len(records) :], strict=True):
        record["samples"] = count
    metrics[compare.metric]["measurements"][-1]["compare"] = compare_wire(compare)
    metrics[burn.metric]["measurements"][-1]["burnRate"] = burn_wire(burn)
    return wire
