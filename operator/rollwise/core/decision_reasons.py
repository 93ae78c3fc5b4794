"""Every reason code a decision (``status.decision.reasons[].code``) can carry.

One code per meaning, each with the severity it is reported at and a sentence saying what it
means and what the decision does about it. Nothing else in the package builds a code from a
string: :mod:`rollwise.core.decision` only uses these constants. :data:`ALL_DECISION_REASONS`
feeds the table in ``docs/analysis.md`` (``python -m hack.gen_decision_reasons_table``; a unit
test fails when the two disagree).

Severities: ``critical`` for evidence that rolls a canary back, ``warning`` for evidence that
holds it (or counts against it without deciding alone), ``info`` for what supports an
expansion or explains the confidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    """How much a reason matters to a human reading the decision."""

    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        """0 for critical, 1 for warning, 2 for info: the order reasons are listed in."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}


@dataclass(frozen=True)
class ReasonCode:
    """A reason code: its wire name, its severity and what it means."""

    code: str
    severity: Severity
    doc: str


_C = Severity.CRITICAL
_W = Severity.WARNING
_I = Severity.INFO

# ---------------------------------------------------------------------------------- critical

REGRESSION_CONFIRMED = ReasonCode(
    "RegressionConfirmed",
    _C,
    "After promotion, a watched KPI of the promoted revision regressed and the regression was "
    "confirmed (postPromotion): the decision is the action its severity maps to (rollback, "
    "hold, or alert only).",
)

THRESHOLD_FAILED = ReasonCode(
    "ThresholdFailed",
    _C,
    "A threshold metric failed more often than its failureLimit allows: the decision is rollback.",
)
CRITICAL_METRIC_FAILED = ReasonCode(
    "CriticalMetricFailed",
    _C,
    "A compare metric marked critical is significantly worse than its control, beyond its "
    "tolerance: the decision is rollback whatever the score.",
)
SCORE_BELOW_MARGINAL = ReasonCode(
    "ScoreBelowMarginal",
    _C,
    "The weighted score of the compare metrics is below the marginal threshold, even counting "
    "every inconclusive metric as passed: the decision is rollback.",
)
SLO_BURN_CRITICAL = ReasonCode(
    "SloBurnCritical",
    _C,
    "Both windows of a critical burn-rate pair burn the error budget faster than the pair's "
    "rate (the SRE workbook's page condition): the decision is rollback.",
)

# ----------------------------------------------------------------------------------- warning

THRESHOLD_INCONCLUSIVE = ReasonCode(
    "ThresholdInconclusive",
    _W,
    "A threshold metric was inconclusive (no data, NaN, provider errors) beyond its limits: "
    "the decision is hold; missing data never promotes and never rolls back.",
)
COMPARE_REGRESSION = ReasonCode(
    "CompareRegression",
    _W,
    "A compare metric that is not critical is significantly worse than its control, beyond "
    "its tolerance: it counts as failed in the score, which decides.",
)
INSUFFICIENT_SAMPLES = ReasonCode(
    "InsufficientSamples",
    _W,
    "A compare metric has fewer usable samples than minSamples on the canary or the control "
    "side: it is inconclusive and left out of the score's denominator.",
)
COMPARE_UNCONFIRMED = ReasonCode(
    "CompareUnconfirmed",
    _W,
    "A compare metric whose medians are pinned (more than half of each side is one value, e.g. "
    "an error ratio over few requests, mostly zeros) is beyond its tolerance on the means and "
    "its test leans the bad way, but is not significant yet: it is inconclusive, held for "
    "more samples rather than passed.",
)
CRITICAL_METRIC_INCONCLUSIVE = ReasonCode(
    "CriticalMetricInconclusive",
    _W,
    "A compare metric marked critical is inconclusive (too few samples, or beyond its "
    "tolerance on the means but not significant yet): the decision is hold until it can be "
    "judged; a critical metric is never passed unseen.",
)
SCORE_MARGINAL = ReasonCode(
    "ScoreMarginal",
    _W,
    "The weighted score of the compare metrics is at or above the marginal threshold but "
    "below the pass threshold: the decision is hold.",
)
TOO_MANY_INCONCLUSIVE = ReasonCode(
    "TooManyInconclusive",
    _W,
    "Too much of the compare metrics' weight is inconclusive (more than maxInconclusive, or "
    "enough to lift a score below marginal if it passed): the decision is hold.",
)
SLO_BURN_FEW_EVENTS = ReasonCode(
    "SloBurnFewEvents",
    _W,
    "A burn-rate window counted fewer events than the metric's minEvents, so its burn is not "
    "judged (one stray error among a handful of requests would fire a pair): the pairs using "
    "it are unknown and the decision is hold until enough traffic has reached the canary.",
)
SLO_BURN_WARNING = ReasonCode(
    "SloBurnWarning",
    _W,
    "Both windows of a warning burn-rate pair burn the error budget faster than the pair's "
    "rate (the workbook's ticket condition): the decision is hold, not rollback, and a human "
    "is asked to investigate before the budget runs out.",
)
SLO_BURN_NO_DATA = ReasonCode(
    "SloBurnNoData",
    _W,
    "A burn-rate metric has no usable counts (no data, zero requests, or the canary is too "
    "young for any window) for a pair that is not otherwise clear: the decision is hold.",
)

# -------------------------------------------------------------------------------------- info

ANALYSIS_PENDING = ReasonCode(
    "AnalysisPending",
    _I,
    "A threshold metric has not taken all its measurements yet: the decision is hold until it has.",
)
THRESHOLDS_PASSED = ReasonCode(
    "ThresholdsPassed",
    _I,
    "Every threshold metric took its measurements and passed: supports expand.",
)
SCORE_PASSED = ReasonCode(
    "ScorePassed",
    _I,
    "The weighted score of the compare metrics is at or above the pass threshold: supports expand.",
)
SLO_WITHIN_BUDGET = ReasonCode(
    "SloWithinBudget",
    _I,
    "No burn-rate pair of an SLO has both windows above its rate: supports expand.",
)
SLO_WINDOW_SHORTENED = ReasonCode(
    "SloWindowShortened",
    _I,
    "The canary is younger than a burn-rate window: the window was shortened to the canary's "
    "age and every pair using it is rated low confidence.",
)
SAMPLES_DROPPED = ReasonCode(
    "SamplesDropped",
    _I,
    "Non-finite samples (NaN, infinity: typically a ratio over zero traffic) were dropped "
    "from a compare metric before judging it.",
)
SHORT_OBSERVATION = ReasonCode(
    "ShortObservation",
    _I,
    "The canary was observed for less time than the evidence's own confidence needs (under "
    "5m: low at most; under 1h: medium at most): the decision's confidence was lowered.",
)
ADVISORY_MODE = ReasonCode(
    "AdvisoryMode",
    _I,
    "Advisory mode: the operator only recommends; the decision is hold and the required "
    "actions say what a human should do and what auto mode would have done.",
)
NO_CHECKS = ReasonCode(
    "NoChecks",
    _I,
    "The step measures nothing: the decision is expand, at low confidence.",
)
REASONS_TRUNCATED = ReasonCode(
    "ReasonsTruncated",
    _I,
    "More reasons applied than status keeps: the least severe ones were left out.",
)

ALL_DECISION_REASONS: tuple[ReasonCode, ...] = (
    REGRESSION_CONFIRMED,
    THRESHOLD_FAILED,
    CRITICAL_METRIC_FAILED,
    SCORE_BELOW_MARGINAL,
    SLO_BURN_CRITICAL,
    THRESHOLD_INCONCLUSIVE,
    COMPARE_REGRESSION,
    INSUFFICIENT_SAMPLES,
    COMPARE_UNCONFIRMED,
    CRITICAL_METRIC_INCONCLUSIVE,
    SCORE_MARGINAL,
    TOO_MANY_INCONCLUSIVE,
    SLO_BURN_WARNING,
    SLO_BURN_FEW_EVENTS,
    SLO_BURN_NO_DATA,
    ANALYSIS_PENDING,
    THRESHOLDS_PASSED,
    SCORE_PASSED,
    SLO_WITHIN_BUDGET,
    SLO_WINDOW_SHORTENED,
    SAMPLES_DROPPED,
    SHORT_OBSERVATION,
    ADVISORY_MODE,
    NO_CHECKS,
    REASONS_TRUNCATED,
)

__all__ = [
    "ADVISORY_MODE",
    "ALL_DECISION_REASONS",
    "ANALYSIS_PENDING",
    "COMPARE_REGRESSION",
    "COMPARE_UNCONFIRMED",
    "CRITICAL_METRIC_FAILED",
    "CRITICAL_METRIC_INCONCLUSIVE",
    "INSUFFICIENT_SAMPLES",
    "NO_CHECKS",
    "REASONS_TRUNCATED",
    "REGRESSION_CONFIRMED",
    "SAMPLES_DROPPED",
    "SCORE_BELOW_MARGINAL",
    "SCORE_MARGINAL",
    "SCORE_PASSED",
    "SHORT_OBSERVATION",
    "SLO_BURN_CRITICAL",
    "SLO_BURN_FEW_EVENTS",
    "SLO_BURN_NO_DATA",
    "SLO_BURN_WARNING",
    "SLO_WINDOW_SHORTENED",
    "SLO_WITHIN_BUDGET",
    "THRESHOLDS_PASSED",
    "THRESHOLD_FAILED",
    "THRESHOLD_INCONCLUSIVE",
    "TOO_MANY_INCONCLUSIVE",
    "ReasonCode",
    "Severity",
]
