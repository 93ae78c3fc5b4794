"""Analysis: verdicts of single measurements, their aggregation per step, which metrics are
due, and query templates.

Semantics (DESIGN §4):

* A measurement is PASS, FAIL or INCONCLUSIVE. No data, NaN or infinity is INCONCLUSIVE; a
  provider error is INCONCLUSIVE too, and is counted as an *error* (not as an inconclusive
  measurement) towards ``consecutiveErrorLimit``; errors do not count towards ``count``.
* ``sampleGuard``: before the value is judged, its count (the metric's requests in the window,
  say) must reach ``minSamples``; fewer, no count or a NaN count is INCONCLUSIVE whatever the
  value, so a ratio over a handful of requests never passes (nor fails).
* ``thresholdRange``: PASS when ``min <= result <= max`` (bounds inclusive, either optional).
* ``successCondition`` / ``failureCondition`` are CEL over ``result`` (a double). Failure wins
  when true; only a success condition: PASS when true, FAIL when false; only a failure
  condition: PASS when false; both and neither true: INCONCLUSIVE.
  A condition that does not evaluate to a bool is INCONCLUSIVE (validation rejects most such
  expressions up front).
* Per metric: FAIL as soon as ``failed > failureLimit``; INCONCLUSIVE as soon as
  ``inconclusive > inconclusiveLimit`` or ``consecutiveErrors > consecutiveErrorLimit`` (a
  successful, failed or no-data measurement resets the consecutive error counter); PASS once
  ``count`` measurements were taken within the limits.
* Per step: FAIL if any metric failed; PASS when every metric passed; INCONCLUSIVE once every
  metric finished and one is inconclusive. The rollout pauses as soon as one metric is
  inconclusive, but the other metrics keep being measured, so a later failure still rolls
  back: a provider outage never promotes and never rolls back on its own.
* The first measurement of a metric is due one interval after the step's analysis started
  (the canary has then served its weight for one interval, so rate windows see it), then
  every interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from rollwise.core.burnrate import MIN_WINDOW_SECONDS
from rollwise.core.durations import InvalidDuration, add_seconds, parse_seconds
from rollwise.core.expressions import (
    FORBIDDEN_CEL_CALLS,
    MAX_CONDITION_NODES,
    ConditionError,
    check_condition,
    check_json_path,
    compile_json_path,
    evaluate_condition,
)
from rollwise.core.observations import Measurement
from rollwise.core.query_templates import (
    QUERY_PLACEHOLDERS,
    QueryTemplateError,
    placeholders_of,
    query_templates,
    render_metric,
    render_query,
    render_sample_query,
    timeout_text,
    unknown_placeholders,
    web_query,
)
from rollwise.core.runs import (
    KEPT_MEASUREMENTS,
    AnalysisRun,
    BurnRateEvidence,
    CompareEvidence,
    MeasurementRecord,
    MetricRun,
    Verdict,
)
from rollwise.core.spec import (
    AnalysisSpec,
    Metric,
    RolloutSpec,
    Scoring,
    Step,
    StepAnalysis,
)

# --------------------------------------------------------------------------------------------
# One measurement


#: The words for a measurement without a usable number, in every message and view: the query
#: returned nothing (``no data``) or failed (``error``); a value that is not a finite number
#: reads as Python writes it (``nan``, ``inf``, ``-inf``).
NO_DATA = "no data"
QUERY_ERROR = "error"


def format_value(value: float | None) -> str:
    """A metric value as messages show it: ``0.200``, ``1.5e-05``, ``nan``, ``no data``."""
    if value is None:
        return NO_DATA
    if not math.isfinite(value):
        return str(value)
    if value == 0 or 0.001 <= abs(value) < 1e6:
        return f"{value:.3f}"
    return f"{value:.3g}"


def measured_text(record: MeasurementRecord) -> str:
    """A recorded measurement in the words :func:`assess` used for it: the value, ``nan`` (or
    ``inf``), ``no data``, or ``error`` for a failed query. The plugin's VALUE column and the
    operator's "(last ...)" summaries both say it this way."""
    if record.error:
        return QUERY_ERROR
    if record.non_finite:
        return record.non_finite
    return format_value(record.value)


def rule_text(metric: Metric) -> str:
    """The metric's verdict rule as messages quote it."""
    parts: list[str] = []
    if metric.threshold_range is not None:
        low, high = metric.threshold_range.min, metric.threshold_range.max
        parts.append(
            "thresholdRange ["
            + ("-inf" if low is None else format_value(low))
            + ", "
            + ("+inf" if high is None else format_value(high))
            + "]"
        )
    if metric.success_condition is not None:
        parts.append(f"successCondition '{metric.success_condition}'")
    if metric.failure_condition is not None:
        parts.append(f"failureCondition '{metric.failure_condition}'")
    return " and ".join(parts) if parts else "no rule"


def too_few_samples(metric: Metric, samples: float | None) -> str | None:
    """Why ``samples`` (the metric's ``sampleGuard`` count) is too little evidence to judge
    its value, or None when it is enough or the metric has no guard. No count, NaN and a
    count below ``minSamples`` are all too little."""
    guard = metric.sample_guard
    if guard is None:
        return None
    required = f"the {guard.min_samples} required (minSamples)"
    if samples is None:
        return f"sample count has no data, not {required}"
    if not math.isfinite(samples):
        return f"sample count is {format_value(samples)}, not {required}"
    if samples < guard.min_samples:
        return f"{_count_text(samples)} samples, fewer than {required}"
    return None


def _count_text(samples: float) -> str:
    """A sample count as messages show it: ``12``, or ``12.5`` when the query's count is not
    whole (``increase()`` extrapolates)."""
    return str(int(samples)) if samples == int(samples) else format_value(samples)


@dataclass(frozen=True)
class Assessment:
    """The verdict on one measurement, with the sentence that explains it and, for a
    ``compare`` or ``sloBurnRate`` metric, the evidence status keeps."""

    verdict: Verdict
    message: str
    error: bool = False
    compare: CompareEvidence | None = None
    burn_rate: BurnRateEvidence | None = None


def assess(metric: Metric, measurement: Measurement) -> Assessment:
    """The verdict of one measurement of ``metric``."""
    head = f"metric {metric.name}"
    if measurement.error is not None:
        return Assessment(Verdict.INCONCLUSIVE, f"{head} query failed: {measurement.error}", True)
    short = too_few_samples(metric, measurement.samples)
    if short is not None:
        return Assessment(
            Verdict.INCONCLUSIVE,
            f"{head} = {format_value(measurement.value)}: {short} (inconclusive)",
        )
    value = measurement.value
    if value is None or not math.isfinite(value):
        return Assessment(
            Verdict.INCONCLUSIVE, f"{head} = {format_value(value)}: no usable value (inconclusive)"
        )
    shown = f"{head} = {format_value(value)}"
    if metric.threshold_range is not None:
        low, high = metric.threshold_range.min, metric.threshold_range.max
        inside = (low is None or value >= low) and (high is None or value <= high)
        verdict = Verdict.PASS if inside else Verdict.FAIL
        word = "within" if inside else "outside"
        return Assessment(verdict, f"{shown} {word} {rule_text(metric)}")
    try:
        failed = metric.failure_condition is not None and evaluate_condition(
            metric.failure_condition, value
        )
        if failed:
            return Assessment(
                Verdict.FAIL, f"{shown} met failureCondition '{metric.failure_condition}'"
            )
        if metric.success_condition is None:
            if metric.failure_condition is None:
                return Assessment(Verdict.INCONCLUSIVE, f"{shown}: metric has no verdict rule")
            return Assessment(
                Verdict.PASS, f"{shown} passed failureCondition '{metric.failure_condition}'"
            )
        if evaluate_condition(metric.success_condition, value):
            return Assessment(
                Verdict.PASS, f"{shown} passed successCondition '{metric.success_condition}'"
            )
    except ConditionError as exc:
        return Assessment(Verdict.INCONCLUSIVE, f"{shown}: condition {exc} (inconclusive)")
    if metric.failure_condition is not None:
        return Assessment(
            Verdict.INCONCLUSIVE,
            f"{shown} met neither successCondition '{metric.success_condition}' nor "
            f"failureCondition '{metric.failure_condition}' (inconclusive)",
        )
    return Assessment(Verdict.FAIL, f"{shown} failed successCondition '{metric.success_condition}'")


# --------------------------------------------------------------------------------------------
# The checks of a step and their aggregation


@dataclass(frozen=True)
class StepChecks:
    """The metrics a step measures and the limits that apply (step overrides resolved)."""

    metrics: tuple[Metric, ...]
    interval: str
    failure_limit: int
    inconclusive_limit: int
    consecutive_error_limit: int
    scoring: Scoring | None = None

    def interval_of(self, metric: Metric) -> float:
        """Seconds between measurements of ``metric`` (invalid durations fall back to 30s;
        validation reports them)."""
        for text in (metric.interval, self.interval):
            if text is not None:
                try:
                    return max(parse_seconds(text), 0.001)
                except InvalidDuration:
                    continue
        return 30.0


def checks_for_step(spec: RolloutSpec, index: int) -> StepChecks | None:
    """The analysis of step ``index``: an analysis step's own (falling back field by field to
    ``canary.analysis``), or for a setWeight step the canary's ``analysis``; None when the
    step measures nothing."""
    canary = spec.strategy.canary
    return checks_for(canary.steps, canary.analysis, index)


def checks_for(
    steps: Sequence[Step], analysis: AnalysisSpec | None, index: int
) -> StepChecks | None:
    """:func:`checks_for_step` over any canary's ``steps`` and background ``analysis`` (shared
    by the Rollout and the ModelRelease's own canary of a KServe InferenceService)."""
    if not 0 <= index < len(steps):
        return None
    step = steps[index]
    base = analysis or AnalysisSpec()
    if step.analysis is not None:
        return _merge(step.analysis, base)
    if step.set_weight is not None and analysis is not None and analysis.metrics:
        return _merge(None, base)
    return None


def _merge(own: StepAnalysis | None, base: AnalysisSpec) -> StepChecks | None:
    metrics = own.metrics if own is not None and own.metrics is not None else base.metrics
    if not metrics:
        return None

    def pick(value: int | None, default: int) -> int:
        return default if value is None else value

    return StepChecks(
        metrics=tuple(metrics),
        interval=own.interval if own is not None and own.interval is not None else base.interval,
        failure_limit=pick(own.failure_limit if own else None, base.failure_limit),
        inconclusive_limit=pick(own.inconclusive_limit if own else None, base.inconclusive_limit),
        consecutive_error_limit=pick(
            own.consecutive_error_limit if own else None, base.consecutive_error_limit
        ),
        scoring=own.scoring if own is not None and own.scoring is not None else base.scoring,
    )


def new_run(step_index: int, revision: str, checks: StepChecks, now: datetime) -> AnalysisRun:
    """A fresh analysis of a step."""
    return AnalysisRun(
        step_index=step_index,
        revision=revision,
        started_at=now,
        metrics=[MetricRun(name=m.name) for m in checks.metrics],
    )


def _guard_count(metric: Metric, measurement: Measurement) -> float | None:
    """The sample guard's count to keep with a measurement: a finite one of a guarded metric."""
    count = measurement.samples
    if metric.sample_guard is None or count is None or not math.isfinite(count):
        return None
    return count


@dataclass(frozen=True)
class Recorded:
    """One measurement recorded into a metric: the updated metric, the assessment, and
    whether this measurement decided the metric's verdict."""

    metric: Metric
    run: MetricRun
    assessment: Assessment
    decided: bool


def record(
    checks: StepChecks,
    metric: Metric,
    run: MetricRun,
    measurement: Measurement,
    assessment: Assessment | None = None,
) -> Recorded:
    """``run`` updated with one measurement, limits applied. ``assessment`` is the
    measurement's verdict when the caller judged it (a ``compare`` or ``sloBurnRate`` metric,
    :mod:`rollwise.core.judging`); a threshold metric's is :func:`assess`'s."""
    if assessment is None:
        assessment = assess(metric, measurement)
    finite = measurement.value is not None and math.isfinite(measurement.value)
    kept = [
        *run.measurements,
        MeasurementRecord(
            value=measurement.value if finite else None,
            verdict=assessment.verdict,
            at=measurement.at,
            message=assessment.message,
            error=assessment.error,
            non_finite=format_value(measurement.value)
            if measurement.value is not None and not finite and not assessment.error
            else None,
            samples=_guard_count(metric, measurement),
            compare=assessment.compare,
            burn_rate=assessment.burn_rate,
        ),
    ][-KEPT_MEASUREMENTS:]
    successful, failed, inconclusive = run.successful, run.failed, run.inconclusive
    error, consecutive = run.error, run.consecutive_errors
    verdict: Verdict | None = None
    message = ""
    if assessment.error:
        error += 1
        consecutive += 1
        if consecutive > checks.consecutive_error_limit:
            verdict = Verdict.INCONCLUSIVE
            message = (
                f"{consecutive} consecutive query errors > consecutiveErrorLimit "
                f"{checks.consecutive_error_limit}"
            )
    else:
        consecutive = 0
        if assessment.verdict is Verdict.PASS:
            successful += 1
        elif assessment.verdict is Verdict.FAIL:
            failed += 1
            if failed > checks.failure_limit:
                verdict = Verdict.FAIL
                message = f"failures {failed} > failureLimit {checks.failure_limit}"
        else:
            inconclusive += 1
            if inconclusive > checks.inconclusive_limit:
                verdict = Verdict.INCONCLUSIVE
                message = (
                    f"inconclusive {inconclusive} > inconclusiveLimit {checks.inconclusive_limit}"
                )
    if verdict is None and successful + failed + inconclusive >= metric.count:
        verdict = Verdict.PASS
        message = f"{successful}/{metric.count} measurements passed"
    updated = run.model_copy(
        update={
            "measurements": kept,
            "successful": successful,
            "failed": failed,
            "inconclusive": inconclusive,
            "error": error,
            "consecutive_errors": consecutive,
            "verdict": verdict,
            "message": message,
        }
    )
    return Recorded(metric, updated, assessment, verdict is not None)


def run_verdict(checks: StepChecks, run: AnalysisRun) -> Verdict | None:
    """The step's verdict from its metrics: FAIL if any failed, PASS when all passed,
    INCONCLUSIVE once all finished and one is inconclusive, None while running."""
    verdicts = [(run.metric(m.name) or MetricRun(name=m.name)).verdict for m in checks.metrics]
    if Verdict.FAIL in verdicts:
        return Verdict.FAIL
    if None in verdicts:
        return None
    if Verdict.INCONCLUSIVE in verdicts:
        return Verdict.INCONCLUSIVE
    return Verdict.PASS


def any_inconclusive(run: AnalysisRun) -> bool:
    return any(m.verdict is Verdict.INCONCLUSIVE for m in run.metrics)


# --------------------------------------------------------------------------------------------
# Scheduling


@dataclass(frozen=True)
class MetricDue:
    """A metric the runtime must query before calling ``decide``."""

    metric: Metric
    due_at: datetime


def next_due(checks: StepChecks, metric: Metric, run: AnalysisRun) -> datetime | None:
    """When ``metric`` is next due in ``run``; None when it is finished."""
    metric_run = run.metric(metric.name)
    if metric_run is not None and metric_run.verdict is not None:
        return None
    last = metric_run.last_at if metric_run is not None else None
    if last is not None:
        return add_seconds(last, checks.interval_of(metric))
    return add_seconds(run.started_at, first_delay(checks, metric))


#: Resolution of a ``compare`` metric's range query when its spec sets no ``step``.
DEFAULT_COMPARE_STEP = "15s"


def compare_step_seconds(metric: Metric) -> float:
    """Seconds between two samples of a ``compare`` metric's range query (15 s by default;
    an unreadable step falls back to it, validation reports it)."""
    text = metric.compare.step if metric.compare is not None else None
    try:
        return max(parse_seconds(text or DEFAULT_COMPARE_STEP), 1.0)
    except InvalidDuration:
        return parse_seconds(DEFAULT_COMPARE_STEP)


def first_delay(checks: StepChecks, metric: Metric) -> float:
    """Seconds from the start of a step's analysis to a metric's first measurement: one
    interval; for an ``sloBurnRate`` metric at least its shortest window (a minute); for a
    ``compare`` metric at least long enough for the step's window to hold
    ``minSamples`` samples at its step, so that the first comparison can decide."""
    interval = checks.interval_of(metric)
    if metric.slo_burn_rate is not None:
        # A burn rate needs a window of at least a minute to count over.
        return max(interval, MIN_WINDOW_SECONDS)
    if metric.compare is None:
        return interval
    return max(interval, metric.compare.min_samples * compare_step_seconds(metric))


def due_now(checks: StepChecks, run: AnalysisRun, now: datetime) -> list[MetricDue]:
    """The metrics of ``run`` to query at ``now``, in spec order."""
    due: list[MetricDue] = []
    for metric in checks.metrics:
        at = next_due(checks, metric, run)
        if at is not None and at <= now:
            due.append(MetricDue(metric=metric, due_at=at))
    return due


__all__ = [
    "DEFAULT_COMPARE_STEP",
    "FORBIDDEN_CEL_CALLS",
    "KEPT_MEASUREMENTS",
    "MAX_CONDITION_NODES",
    "NO_DATA",
    "QUERY_ERROR",
    "QUERY_PLACEHOLDERS",
    "Assessment",
    "ConditionError",
    "MetricDue",
    "QueryTemplateError",
    "Recorded",
    "StepChecks",
    "any_inconclusive",
    "assess",
    "check_condition",
    "check_json_path",
    "checks_for",
    "checks_for_step",
    "compare_step_seconds",
    "compile_json_path",
    "due_now",
    "evaluate_condition",
    "first_delay",
    "format_value",
    "measured_text",
    "new_run",
    "next_due",
    "placeholders_of",
    "query_templates",
    "record",
    "render_metric",
    "render_query",
    "render_sample_query",
    "rule_text",
    "run_verdict",
    "timeout_text",
    "too_few_samples",
    "unknown_placeholders",
    "web_query",
]
