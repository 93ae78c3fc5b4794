"""The evidence of a decision, kind by kind: what a step's threshold metrics, compare metrics
(scored together) and SLO burn rates each contribute to :func:`rollwise.core.decision.
build_decision` as *findings* (a reason code, a message with the numbers, a confidence, and
possibly a vote for expand, hold or rollback). The voting rules are those the decision's
module docstring lists; this module only turns evidence into findings. Pure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from rollwise.core import decision_reasons as D
from rollwise.core.burnrate import BurnRateResult, PairSeverity
from rollwise.core.confidence import Confidence, weakest
from rollwise.core.decision_reasons import ReasonCode
from rollwise.core.durations import format_seconds
from rollwise.core.runs import MetricRun, Verdict
from rollwise.core.scoring import Score, ScoreOutcome, ScoreThresholds, score_metrics

if TYPE_CHECKING:
    from rollwise.core.compare import CompareResult

#: Measurements a passing threshold metric needs for HIGH confidence.
HIGH_CONFIDENCE_MEASUREMENTS = 3


class Action(StrEnum):
    """What to do with the canary now."""

    #: Move on: the next step's weight, or promotion after the last step.
    EXPAND = "expand"
    #: Stay at the current weight and look again.
    HOLD = "hold"
    #: Traffic back to stable, canary scaled down.
    ROLLBACK = "rollback"


#: Required action id prefixes of the actions a finding asks a human for about its metric.
INVESTIGATE_PREFIX = "investigate/"
RESTORE_DATA_PREFIX = "restore-data/"


@dataclass(frozen=True)
class Finding:
    """What one piece of evidence contributes: a reason, its confidence and its vote."""

    reason: ReasonCode
    message: str
    confidence: Confidence = Confidence.LOW
    vote: Action | None = None
    metric: str | None = None
    observed: float | None = None
    threshold: float | None = None
    due_by: datetime | None = None
    #: Which human action the finding asks for about its metric: investigate or restore data.
    asks: str | None = None


def finite(value: float | None) -> float | None:
    """``value`` for status: None unless finite (JSON has no NaN), six significant digits
    (float noise such as 19.999999999999982 would otherwise churn the status)."""
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.6g}")


# ------------------------------------------------------------------------ threshold metrics


def threshold_confidence(run: MetricRun) -> Confidence:
    """How far a threshold metric's run can be trusted.

    FAIL: HIGH from two failed measurements on, MEDIUM on a single one. PASS: HIGH with at
    least :data:`HIGH_CONFIDENCE_MEASUREMENTS` measurements and no failed, inconclusive or
    erroneous one along the way, else MEDIUM. Inconclusive or unfinished: LOW.
    """
    if run.verdict is Verdict.FAIL:
        return Confidence.HIGH if run.failed >= 2 else Confidence.MEDIUM
    if run.verdict is Verdict.PASS:
        clean = run.failed == 0 and run.inconclusive == 0 and run.error == 0
        plenty = run.taken >= HIGH_CONFIDENCE_MEASUREMENTS
        return Confidence.HIGH if clean and plenty else Confidence.MEDIUM
    return Confidence.LOW


def _last_value(run: MetricRun) -> float | None:
    for record in reversed(run.measurements):
        if record.value is not None:
            return record.value
    return None


def threshold_findings(runs: Sequence[MetricRun]) -> list[Finding]:
    findings: list[Finding] = []
    for run in runs:
        head = f"metric {run.name}"
        if run.verdict is Verdict.FAIL:
            findings.append(
                Finding(
                    D.THRESHOLD_FAILED,
                    run.message or f"{head} failed",
                    threshold_confidence(run),
                    Action.ROLLBACK,
                    metric=run.name,
                    observed=_last_value(run),
                    asks=INVESTIGATE_PREFIX,
                )
            )
        elif run.verdict is Verdict.INCONCLUSIVE:
            findings.append(
                Finding(
                    D.THRESHOLD_INCONCLUSIVE,
                    run.message or f"{head} is inconclusive",
                    Confidence.LOW,
                    Action.HOLD,
                    metric=run.name,
                    asks=RESTORE_DATA_PREFIX,
                )
            )
        elif run.verdict is None:
            findings.append(
                Finding(
                    D.ANALYSIS_PENDING,
                    f"{head}: {run.taken} measurement(s) so far, analysis in progress",
                    Confidence.LOW,
                    Action.HOLD,
                    metric=run.name,
                    observed=float(run.taken),
                )
            )
    if runs and all(run.verdict is Verdict.PASS for run in runs):
        names = ", ".join(run.name for run in runs)
        findings.append(
            Finding(
                D.THRESHOLDS_PASSED,
                f"{len(runs)} threshold metric(s) passed: {names}",
                weakest(threshold_confidence(run) for run in runs),
                Action.EXPAND,
            )
        )
    return findings


# -------------------------------------------------------------------------- compare metrics


def compare_findings(
    results: Sequence[CompareResult], thresholds: ScoreThresholds | None
) -> tuple[list[Finding], Score | None]:
    if not results:
        return [], None
    limits = thresholds if thresholds is not None else ScoreThresholds()
    score = score_metrics(results, limits)
    findings: list[Finding] = []
    for result in results:
        if result.dropped:
            findings.append(
                Finding(
                    D.SAMPLES_DROPPED,
                    f"metric {result.metric}: {result.canary_dropped} canary and "
                    f"{result.control_dropped} control samples were not finite and were dropped",
                    metric=result.metric,
                    observed=float(result.dropped),
                )
            )
        if result.verdict is Verdict.FAIL:
            findings.append(
                Finding(
                    D.CRITICAL_METRIC_FAILED if result.critical else D.COMPARE_REGRESSION,
                    result.message,
                    result.confidence,
                    Action.ROLLBACK if result.critical else None,
                    metric=result.metric,
                    observed=result.effect_size,
                    threshold=result.rule.tolerance,
                    asks=INVESTIGATE_PREFIX,
                )
            )
        elif result.unconfirmed:
            # Beyond tolerance on the means, not significant yet: the p-value against the
            # level is what it waits for.
            findings.append(
                Finding(
                    D.CRITICAL_METRIC_INCONCLUSIVE if result.critical else D.COMPARE_UNCONFIRMED,
                    result.message,
                    Confidence.LOW,
                    Action.HOLD if result.critical else None,
                    metric=result.metric,
                    observed=result.p_value,
                    threshold=result.rule.significance,
                )
            )
        elif result.verdict is Verdict.INCONCLUSIVE:
            findings.append(
                Finding(
                    D.CRITICAL_METRIC_INCONCLUSIVE if result.critical else D.INSUFFICIENT_SAMPLES,
                    result.message,
                    Confidence.LOW,
                    Action.HOLD if result.critical else None,
                    metric=result.metric,
                    observed=float(min(result.canary_samples, result.control_samples)),
                    threshold=float(result.rule.min_samples),
                )
            )
    shown = score.score
    level: dict[ScoreOutcome, tuple[ReasonCode, Action, float | None, float | None]] = {
        ScoreOutcome.PASSED: (D.SCORE_PASSED, Action.EXPAND, shown, limits.passing),
        ScoreOutcome.MARGINAL: (D.SCORE_MARGINAL, Action.HOLD, shown, limits.passing),
        ScoreOutcome.BELOW_MARGINAL: (
            D.SCORE_BELOW_MARGINAL,
            Action.ROLLBACK,
            score.best_case,
            limits.marginal,
        ),
        ScoreOutcome.TOO_MANY_INCONCLUSIVE: (
            D.TOO_MANY_INCONCLUSIVE,
            Action.HOLD,
            score.inconclusive_weight / score.total_weight if score.total_weight else None,
            limits.max_inconclusive,
        ),
    }
    # Critical outcomes are carried by the per-metric findings above.
    if score.outcome in level:
        code, vote, observed, threshold = level[score.outcome]
        findings.append(
            Finding(
                code,
                f"compare metrics: {score.message}",
                score.confidence,
                vote,
                observed=observed,
                threshold=threshold,
            )
        )
    return findings, score


# ---------------------------------------------------------------------------- SLO burn rates


def burn_findings(results: Sequence[BurnRateResult], now: datetime) -> list[Finding]:
    findings: list[Finding] = []
    for result in results:
        head = f"SLO {result.metric}"
        if result.shortened:
            shortened = [w for w in result.windows if w.shortened]
            age = min(w.seconds for w in shortened)
            names = ", ".join(format_seconds(w.window) for w in shortened)
            findings.append(
                Finding(
                    D.SLO_WINDOW_SHORTENED,
                    f"{head}: window(s) {names} shortened to the canary's age "
                    f"{format_seconds(age)}; the pairs using them are low confidence",
                    metric=result.metric,
                    observed=age,
                )
            )
        for severity, code, vote in (
            (PairSeverity.CRITICAL, D.SLO_BURN_CRITICAL, Action.ROLLBACK),
            (PairSeverity.WARNING, D.SLO_BURN_WARNING, Action.HOLD),
        ):
            for pair in result.firing(severity):
                due = (
                    now + timedelta(seconds=pair.exhaustion_seconds)
                    if pair.exhaustion_seconds is not None
                    else None
                )
                exhausts = (
                    f"; at this rate the whole budget lasts "
                    f"{format_seconds(round(pair.exhaustion_seconds))}"
                    if pair.exhaustion_seconds is not None
                    else ""
                )
                findings.append(
                    Finding(
                        code,
                        f"{head} (objective {result.rule.objective * 100:g}%): "
                        f"{pair.message}{exhausts}",
                        pair.confidence,
                        vote,
                        metric=result.metric,
                        observed=pair.long.burn,
                        threshold=pair.pair.rate,
                        due_by=due,
                        asks=INVESTIGATE_PREFIX,
                    )
                )
        floor = result.rule.min_events
        thin = [p for p in result.unknown if p.long.too_few(floor) or p.short.too_few(floor)]
        if thin:
            # Traffic, not a human, settles it: nothing to restore.
            fewest = min(w.total for w in result.few_events if w.total is not None)
            findings.append(
                Finding(
                    D.SLO_BURN_FEW_EVENTS,
                    f"{head}: fewer than minEvents {floor} events in window(s) "
                    + ", ".join(w.label for w in result.few_events)
                    + " (fewest "
                    + f"{fewest:g}); not judged: "
                    + ", ".join(p.pair.label for p in thin),
                    Confidence.LOW,
                    Action.HOLD,
                    metric=result.metric,
                    observed=fewest,
                    threshold=float(floor),
                )
            )
        unknown = [p for p in result.unknown if p not in thin]
        if unknown:
            # Data a human can restore only if a window was asked for; a canary too young for
            # any window just needs time.
            queried = any(p.long.seconds > 0 or p.short.seconds > 0 for p in unknown)
            findings.append(
                Finding(
                    D.SLO_BURN_NO_DATA,
                    f"{head}: no usable counts for "
                    + ", ".join(p.pair.label for p in unknown)
                    + ("" if queried else " (the canary is too young for any window)"),
                    Confidence.LOW,
                    Action.HOLD,
                    metric=result.metric,
                    asks=RESTORE_DATA_PREFIX if queried else None,
                )
            )
        if result.verdict is Verdict.PASS:
            findings.append(
                Finding(
                    D.SLO_WITHIN_BUDGET,
                    result.message,
                    result.confidence,
                    Action.EXPAND,
                    metric=result.metric,
                    observed=result.highest_burn,
                    threshold=min(p.rate for p in result.rule.windows),
                )
            )
    return findings


__all__ = [
    "HIGH_CONFIDENCE_MEASUREMENTS",
    "INVESTIGATE_PREFIX",
    "RESTORE_DATA_PREFIX",
    "Action",
    "Finding",
    "burn_findings",
    "compare_findings",
    "finite",
    "threshold_confidence",
    "threshold_findings",
]
