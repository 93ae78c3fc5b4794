"""The metric kinds in a step's analysis, and the one judge of a step.

A step's metrics may be of three kinds (:class:`~rollwise.core.spec.MetricKind`): a threshold
on one value (:func:`rollwise.core.analysis.assess`), a ``compare`` of the canary's samples
with the control's (:mod:`rollwise.core.compare`), or an SLO's burn rate over window pairs
(:mod:`rollwise.core.burnrate`). Each measurement of any kind is PASS, FAIL or INCONCLUSIVE
and counts towards the metric's limits alike (:func:`rollwise.core.analysis.record`); a
``compare`` or ``sloBurnRate`` measurement also leaves its evidence in status
(:class:`~rollwise.core.runs.CompareEvidence`, :class:`~rollwise.core.runs.BurnRateEvidence`).

The step itself is judged once, by :func:`step_decision` (:func:`rollwise.core.decision.
build_decision` over the step's metrics): its recommendation *is* the step's verdict
(:func:`step_verdict`: rollback is FAIL, expand PASS, hold INCONCLUSIVE once every metric
finished), so what the pass does and what ``status.decision`` says cannot disagree.

What the runtime must measure for a metric of each kind: a threshold metric's query, a compare
metric's range over the step's window (:func:`compare_window`), a burn-rate metric's counts
over the windows :func:`burn_windows` names. Pure: ``now`` is an argument.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from datetime import datetime, timedelta

from pydantic import ValidationError

from rollwise.core.analysis import (
    Assessment,
    Recorded,
    StepChecks,
    assess,
    compare_step_seconds,
    record,
)
from rollwise.core.burnrate import (
    DEFAULT_PAIRS,
    BurnRateResult,
    BurnRateRule,
    BurnWindowPair,
    WindowBurn,
    WindowQuery,
    evaluate_burn_rate,
    judge_windows,
    windows_to_query,
)
from rollwise.core.compare import (
    BASIS_MEAN,
    BASIS_MEDIAN,
    CompareResult,
    CompareRule,
    breaches,
    judge_metric,
)
from rollwise.core.decision import Action, Decision, Mode, build_decision
from rollwise.core.durations import InvalidDuration, format_seconds, parse_seconds
from rollwise.core.observations import Measurement
from rollwise.core.runs import (
    AnalysisRun,
    BurnPairRecord,
    BurnRateEvidence,
    BurnWindowRecord,
    CompareEvidence,
    MeasurementRecord,
    MetricRun,
    Verdict,
)
from rollwise.core.scoring import ScoreThresholds
from rollwise.core.spec import Compare, Metric, MetricKind, Scoring, SloBurnRate

#: Most samples one side of a comparison may bring (Prometheus refuses a range query of more
#: than 11,000 points per series; the runtime widens the step to stay under this).
MAX_COMPARE_POINTS = 10_000

# ------------------------------------------------------------------------------ the rules


def compare_rule(spec: Compare) -> CompareRule:
    """The judge's rule of a ``compare`` block (its fields after ``query`` and ``step``)."""
    return CompareRule.model_validate(spec.model_dump(exclude={"query", "step"}))


def burn_rule(spec: SloBurnRate) -> BurnRateRule:
    """The judge's rule of an ``sloBurnRate`` block (the workbook's pairs when it names none).
    Raises ``ValueError`` (pydantic's ``ValidationError``) for unusable windows."""
    pairs = (
        list(DEFAULT_PAIRS)
        if spec.pairs is None
        else [
            BurnWindowPair(long=p.long, short=p.short, rate=p.rate, severity=p.severity)
            for p in spec.pairs
        ]
    )
    return BurnRateRule(
        objective=spec.objective, windows=pairs, period=spec.period, min_events=spec.min_events
    )


def score_thresholds(spec: Scoring | None) -> ScoreThresholds | None:
    """The score's thresholds of an analysis (Kayenta's defaults when None)."""
    if spec is None:
        return None
    return ScoreThresholds.model_validate(spec.model_dump(by_alias=True))


def _errors(exc: ValidationError) -> list[str]:
    return [str(e["msg"]).removeprefix("Value error, ") for e in exc.errors()]


def kind_problems(at: str, metric: Metric) -> list[str]:
    """What is wrong with a ``compare`` or ``sloBurnRate`` metric beyond single fields (the
    operator's validation; located under ``at``)."""
    errors: list[str] = []
    if metric.compare is not None and metric.compare.step is not None:
        try:
            if parse_seconds(metric.compare.step) < 1:
                errors.append(f"{at}.compare.step: must be at least 1s")
        except InvalidDuration as exc:
            errors.append(f"{at}.compare.step: {exc}")
    slo = metric.slo_burn_rate
    if slo is not None:
        if (slo.good_query is None) == (slo.bad_query is None):
            errors.append(f"{at}.sloBurnRate: {MSG_GOOD_OR_BAD}")
        try:
            burn_rule(slo)
        except ValidationError as exc:
            errors.extend(f"{at}.sloBurnRate: {text}" for text in _errors(exc))
        except InvalidDuration as exc:
            errors.append(f"{at}.sloBurnRate: {exc}")
    if metric.kind is not MetricKind.THRESHOLD and metric.kinds:
        source = metric.provider
        if source.web is not None:
            errors.append(f"{at}.provider: {MSG_KIND_PROMETHEUS}")
        if source.prometheus is not None and source.prometheus.query is not None:
            errors.append(f"{at}.provider.prometheus.query: {MSG_KIND_NO_QUERY}")
        if metric.sample_guard is not None:
            errors.append(f"{at}.sampleGuard: {MSG_KIND_NO_GUARD}")
    return errors


MSG_GOOD_OR_BAD = "sloBurnRate needs exactly one of goodQuery or badQuery"
MSG_KIND_PROMETHEUS = "compare and sloBurnRate metrics query Prometheus (no web provider)"
MSG_KIND_NO_QUERY = (
    "compare and sloBurnRate metrics carry their queries in their own block; "
    "provider.prometheus names only the address and timeout"
)
MSG_KIND_NO_GUARD = "sampleGuard is for threshold metrics (compare counts its own samples)"

# ------------------------------------------------------------------- what to measure


def compare_window(
    metric: Metric, started: datetime, now: datetime
) -> tuple[datetime, datetime, float]:
    """The range a ``compare`` metric queries now: from the step's analysis start to ``now``,
    at its step (widened so that a side has at most :data:`MAX_COMPARE_POINTS` samples)."""
    step = compare_step_seconds(metric)
    span = max((now - started).total_seconds(), 0.0)
    step = max(step, math.ceil(span / MAX_COMPARE_POINTS))
    return started, now, step


def burn_windows(metric: Metric, started: datetime, now: datetime) -> tuple[WindowQuery, ...]:
    """The windows an ``sloBurnRate`` metric counts over now (shortened to the time since
    ``started``, the canary's start at this step); none for another kind."""
    if metric.slo_burn_rate is None:
        return ()
    try:
        rule = burn_rule(metric.slo_burn_rate)
    except (ValidationError, InvalidDuration):
        return ()
    return windows_to_query(rule, now, started)


# ------------------------------------------------------------------- one measurement


def compare_evidence(result: CompareResult, control: str) -> CompareEvidence:
    return CompareEvidence(
        p_value=_finite(result.p_value),
        effect_size=_finite(result.effect_size),
        effect_basis=result.basis,
        canary_median=_finite(result.canary_median),
        control_median=_finite(result.control_median),
        canary_mean=_finite(result.canary_mean),
        control_mean=_finite(result.control_mean),
        canary_samples=result.canary_samples,
        control_samples=result.control_samples,
        control=control,
        method=result.method,
    )


def burn_evidence(result: BurnRateResult) -> BurnRateEvidence:
    return BurnRateEvidence(
        windows=[
            BurnWindowRecord(
                window=format_seconds(w.window),
                burn_rate=_finite(w.burn),
                # Unrounded: read back, the count meets minEvents exactly as it did here.
                events=w.total if w.total is not None and math.isfinite(w.total) else None,
                observed=format_seconds(w.seconds) if w.seconds > 0 else "",
                shortened=w.shortened,
            )
            for w in result.windows
        ],
        pairs=[
            BurnPairRecord(
                long=p.pair.long,
                short=p.pair.short,
                threshold=p.pair.rate,
                severity=p.pair.severity.value,
                state=p.state.value,
            )
            for p in result.pairs
        ],
    )


def _finite(value: float | None) -> float | None:
    """``value`` for status: None unless finite, six significant digits."""
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.6g}")


def judge(metric: Metric, measurement: Measurement) -> Assessment:
    """The verdict of one measurement of ``metric``, whatever its kind, with its evidence."""
    kind = metric.kind
    if kind is MetricKind.THRESHOLD:
        return assess(metric, measurement)
    if measurement.error is not None:
        return Assessment(
            Verdict.INCONCLUSIVE, f"metric {metric.name} query failed: {measurement.error}", True
        )
    if kind is MetricKind.COMPARE and metric.compare is not None:
        result = judge_metric(
            measurement.canary_samples,
            measurement.control_samples,
            compare_rule(metric.compare),
            metric=metric.name,
        )
        return Assessment(
            result.verdict,
            result.message,
            compare=compare_evidence(result, measurement.control),
        )
    if metric.slo_burn_rate is None:
        return Assessment(Verdict.INCONCLUSIVE, f"metric {metric.name} has no rule")
    try:
        rule = burn_rule(metric.slo_burn_rate)
    except (ValidationError, InvalidDuration):
        return Assessment(Verdict.INCONCLUSIVE, f"metric {metric.name}: unusable sloBurnRate")
    burn = evaluate_burn_rate(rule, measurement.windows, metric=metric.name)
    return Assessment(burn.verdict, burn.message, burn_rate=burn_evidence(burn))


def record_measurement(
    checks: StepChecks, metric: Metric, run: MetricRun, measurement: Measurement
) -> Recorded:
    """``run`` updated with one measurement of ``metric`` judged by its kind, limits applied."""
    return record(checks, metric, run, measurement, judge(metric, measurement))


def record_due(
    checks: StepChecks,
    run: AnalysisRun,
    measurements: Mapping[str, Measurement],
    due: Collection[str],
    *,
    now: datetime,
    recorded: Callable[[Recorded], str | None],
) -> AnalysisRun:
    """``run`` with the measurement of each metric ``due`` recorded and judged, then its
    verdict; the run's message, when that verdict is FAIL, is the last non-empty answer of
    ``recorded`` (called for each recorded measurement, in the order of the step's metrics:
    the kind's events, its failure message). Each measurement is recorded at ``now``: the
    schedule, and so idempotence, depends on the decision's clock only, never on when the
    runtime's query ran."""
    metrics: list[MetricRun] = []
    failure = ""
    for metric in checks.metrics:
        metric_run = run.metric(metric.name) or MetricRun(name=metric.name)
        measurement = measurements.get(metric.name)
        if metric.name not in due or measurement is None:
            metrics.append(metric_run)
            continue
        rec = record_measurement(checks, metric, metric_run, measurement.taken_at(now))
        metrics.append(rec.run)
        failure = recorded(rec) or failure
    updated = run.model_copy(update={"metrics": metrics})
    verdict = step_verdict(checks, updated)
    return updated.model_copy(
        update={"verdict": verdict, "message": failure if verdict is Verdict.FAIL else ""}
    )


# ------------------------------------------------------------------ the step's evidence


def _last(run: MetricRun) -> MeasurementRecord | None:
    return run.measurements[-1] if run.measurements else None


def _compare_result(metric: Metric, compare: Compare, run: MetricRun) -> CompareResult:
    """A finished compare metric as the score sees it: its verdict (limits applied) with the
    numbers of its last measurement."""
    rule = compare_rule(compare)
    verdict = run.verdict or Verdict.INCONCLUSIVE
    last = _last(run)
    evidence = last.compare if last is not None else None
    message = (last.message if last is not None else "") or run.message
    if evidence is None:
        return CompareResult(metric.name, rule, verdict, message, 0, 0)
    shift = None
    breach = False
    basis = BASIS_MEAN if evidence.effect_basis == BASIS_MEAN else BASIS_MEDIAN
    canary, control = (
        (evidence.canary_mean, evidence.control_mean)
        if basis == BASIS_MEAN
        else (evidence.canary_median, evidence.control_median)
    )
    if canary is not None and control is not None:
        shift = canary - control
        breach = breaches(rule, canary, control)
    return CompareResult(
        metric=metric.name,
        rule=rule,
        verdict=verdict,
        message=message,
        canary_samples=evidence.canary_samples,
        control_samples=evidence.control_samples,
        p_value=evidence.p_value,
        canary_median=evidence.canary_median,
        control_median=evidence.control_median,
        canary_mean=evidence.canary_mean,
        control_mean=evidence.control_mean,
        basis=basis,
        shift=shift,
        effect_size=evidence.effect_size,
        breach=breach,
        method=evidence.method,
    )


def _burn_result(metric: Metric, slo: SloBurnRate, run: MetricRun) -> BurnRateResult | None:
    """A finished burn-rate metric as the decision sees it: its last measurement's windows
    judged again (the same maths, from status)."""
    try:
        rule = burn_rule(slo)
    except (ValidationError, InvalidDuration):
        return None
    last = _last(run)
    evidence = last.burn_rate if last is not None else None
    burns: list[WindowBurn] = []
    for window in evidence.windows if evidence is not None else []:
        try:
            seconds = parse_seconds(window.window)
            observed = parse_seconds(window.observed) if window.observed else 0.0
        except InvalidDuration:
            continue
        ratio = window.burn_rate * rule.budget if window.burn_rate is not None else None
        burns.append(
            WindowBurn(
                window=seconds,
                seconds=observed,
                total=window.events,
                error_ratio=ratio,
                burn=window.burn_rate,
            )
        )
    return judge_windows(rule, burns, metric=metric.name)


def step_evidence(
    checks: StepChecks, run: AnalysisRun
) -> tuple[list[MetricRun], list[CompareResult], list[BurnRateResult]]:
    """The step's metrics as the decision reads them: threshold runs (and every metric still
    measuring, which holds the step), finished compare metrics, finished SLOs."""
    thresholds: list[MetricRun] = []
    compares: list[CompareResult] = []
    burns: list[BurnRateResult] = []
    for metric in checks.metrics:
        metric_run = run.metric(metric.name) or MetricRun(name=metric.name)
        kind = metric.kind
        if kind is MetricKind.THRESHOLD or metric_run.verdict is None:
            thresholds.append(metric_run)
        elif kind is MetricKind.COMPARE and metric.compare is not None:
            compares.append(_compare_result(metric, metric.compare, metric_run))
        elif metric.slo_burn_rate is not None:
            burn = _burn_result(metric, metric.slo_burn_rate, metric_run)
            if burn is None:
                thresholds.append(metric_run)
            elif metric_run.verdict is Verdict.INCONCLUSIVE and burn.verdict is Verdict.PASS:
                # Inconclusive by its limits (errors, no data): the SLO holds the step.
                thresholds.append(metric_run)
            else:
                burns.append(burn)
    return thresholds, compares, burns


def step_decision(
    checks: StepChecks | None,
    run: AnalysisRun | None,
    *,
    now: datetime,
    observed: timedelta,
    mode: Mode = Mode.AUTO,
) -> Decision:
    """The decision on a canary step from its analysis so far (no checks: expand, at low
    confidence)."""
    if checks is None or run is None:
        return build_decision(now=now, observed=observed, mode=mode)
    thresholds, compares, burns = step_evidence(checks, run)
    return build_decision(
        now=now,
        observed=observed,
        mode=mode,
        thresholds=thresholds,
        compares=compares,
        burn_rates=burns,
        scoring=score_thresholds(checks.scoring),
    )


def step_verdict(checks: StepChecks, run: AnalysisRun) -> Verdict | None:
    """The step's verdict, read off the decision's recommendation: rollback FAIL, expand
    PASS, hold INCONCLUSIVE once every metric finished (None while one still measures)."""
    decision = step_decision(checks, run, now=run.started_at, observed=timedelta(0))
    if decision.recommended is Action.ROLLBACK:
        return Verdict.FAIL
    if decision.recommended is Action.EXPAND:
        return Verdict.PASS
    finished = all(
        (run.metric(m.name) or MetricRun(name=m.name)).verdict is not None for m in checks.metrics
    )
    return Verdict.INCONCLUSIVE if finished else None


__all__ = [
    "MAX_COMPARE_POINTS",
    "MSG_GOOD_OR_BAD",
    "MSG_KIND_NO_GUARD",
    "MSG_KIND_NO_QUERY",
    "MSG_KIND_PROMETHEUS",
    "burn_rule",
    "burn_windows",
    "compare_rule",
    "compare_window",
    "judge",
    "kind_problems",
    "record_due",
    "record_measurement",
    "score_thresholds",
    "step_decision",
    "step_evidence",
    "step_verdict",
]
