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

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from rollwise.core.durations import InvalidDuration, add_seconds, parse_seconds
from rollwise.core.observations import Measurement
from rollwise.core.runs import KEPT_MEASUREMENTS, AnalysisRun, MeasurementRecord, MetricRun, Verdict
from rollwise.core.spec import (
    MAX_CONDITION_LENGTH,
    MAX_JSON_PATH_LENGTH,
    AnalysisSpec,
    Metric,
    RolloutSpec,
    Step,
    StepAnalysis,
)

# --------------------------------------------------------------------------------------------
# CEL conditions


class ConditionError(ValueError):
    """A success/failure condition does not compile or does not yield a bool."""


@lru_cache(maxsize=1)
def _cel() -> Any:
    """The CEL environment, built on first use: building its parser takes a tenth of a second
    or more, which a process that never evaluates a condition (the plugin showing a Rollout)
    need not pay."""
    import celpy  # noqa: PLC0415 - deferred: see the docstring

    return celpy.Environment()


#: Most syntax-tree nodes a condition may have (``result < 0.05`` has 20, a range check with
#: ``&&`` about 34). Together with :data:`FORBIDDEN_CEL_CALLS` it bounds what evaluating a
#: condition can cost: every node is evaluated at most once.
MAX_CONDITION_NODES = 200

#: CEL calls a condition may not make: comprehensions (``all``, ``exists``, ... nest into
#: loops whose cost multiplies) and regular expressions (``matches``: backtracking). A
#: condition judges one number and needs none of them.
FORBIDDEN_CEL_CALLS = frozenset({"all", "exists", "exists_one", "map", "filter", "matches"})


def _bounded(tree: Any) -> str | None:
    """Why a compiled condition could cost too much to evaluate (None when it cannot)."""
    nodes = 0
    for subtree in tree.iter_subtrees():
        nodes += 1
        if subtree.data in ("member_dot_arg", "ident_arg"):
            for child in subtree.children:
                if getattr(child, "type", None) == "IDENT" and str(child) in FORBIDDEN_CEL_CALLS:
                    return f"{child}() is not allowed in a condition (it may cost too much)"
    if nodes > MAX_CONDITION_NODES:
        return f"too complex: {nodes} syntax nodes, at most {MAX_CONDITION_NODES}"
    return None


@lru_cache(maxsize=512)
def _program(expression: str) -> Any:
    """The compiled CEL program for ``expression``, compiled once per process; refused when it
    is too long or could cost too much to evaluate (see :func:`_bounded`)."""
    if len(expression) > MAX_CONDITION_LENGTH:
        raise ConditionError(
            f"too long: {len(expression)} characters, at most {MAX_CONDITION_LENGTH}"
        )
    try:
        tree = _cel().compile(expression)
    except Exception as exc:  # celpy raises its own parse error types
        raise ConditionError(f"does not compile: {_first_line(exc)}") from exc
    problem = _bounded(tree)
    if problem is not None:
        raise ConditionError(problem)
    try:
        return _cel().program(tree)
    except Exception as exc:
        raise ConditionError(f"does not compile: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def evaluate_condition(expression: str, result: float) -> bool:
    """``expression`` evaluated with ``result`` bound to a CEL double."""
    program = _program(expression)
    from celpy import celtypes  # noqa: PLC0415 - loaded by _program already

    try:
        value = program.evaluate({"result": celtypes.DoubleType(result)})
    except Exception as exc:  # CELEvalError and friends: reported as a verdict, not raised
        raise ConditionError(f"evaluation failed: {_first_line(exc)}") from exc
    if not isinstance(value, celtypes.BoolType):
        raise ConditionError(f"yields {type(value).__name__}, not a bool")
    return bool(value)


def check_condition(expression: str) -> str | None:
    """Why ``expression`` is unusable as a condition (compiled and tried on ``result = 1.0``),
    or None when it is fine."""
    try:
        evaluate_condition(expression, 1.0)
    except ConditionError as exc:
        return str(exc)
    return None


# --------------------------------------------------------------------------------------------
# JSONPath (web providers)


@lru_cache(maxsize=512)
def compile_json_path(expression: str) -> Any:
    """The parsed JSONPath ``expression`` (``jsonpath_ng``'s extended dialect: filters and
    arithmetic), parsed once per process; raises ``ValueError`` when it does not parse."""
    from jsonpath_ng.ext.parser import parse  # noqa: PLC0415 - deferred, like CEL's parser

    try:
        return parse(expression)
    except Exception as exc:  # the parser raises several error types of its own
        raise ValueError(_first_line(exc)) from exc


def check_json_path(expression: str) -> str | None:
    """Why ``expression`` is unusable as a web provider's jsonPath, or None."""
    if len(expression) > MAX_JSON_PATH_LENGTH:
        return f"too long: {len(expression)} characters, at most {MAX_JSON_PATH_LENGTH}"
    try:
        compile_json_path(expression)
    except ValueError as exc:
        return f"'{expression}' is not a JSONPath: {exc}"
    return None


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
    """The verdict on one measurement, with the sentence that explains it."""

    verdict: Verdict
    message: str
    error: bool = False


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
    checks: StepChecks, metric: Metric, run: MetricRun, measurement: Measurement
) -> Recorded:
    """``run`` updated with one measurement, limits applied."""
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
    start = last if last is not None else run.started_at
    return add_seconds(start, checks.interval_of(metric))


def due_now(checks: StepChecks, run: AnalysisRun, now: datetime) -> list[MetricDue]:
    """The metrics of ``run`` to query at ``now``, in spec order."""
    due: list[MetricDue] = []
    for metric in checks.metrics:
        at = next_due(checks, metric, run)
        if at is not None and at <= now:
            due.append(MetricDue(metric=metric, due_at=at))
    return due


# --------------------------------------------------------------------------------------------
# Query templates

#: Placeholders a query may use.
QUERY_PLACEHOLDERS = frozenset(
    {
        "namespace",
        "name",
        "stableRevision",
        "canaryRevision",
        "baselineRevision",
        "stableService",
        "canaryService",
    }
)
#: ``{{`` + anything but braces + ``}}``; the name is the content stripped of white space.
#: One greedy class and no optional parts: linear in the template's length whatever it holds
#: (an unclosed ``{{`` followed by thousands of spaces included), so a spec cannot make the
#: operator spin on it.
_PLACEHOLDER = re.compile(r"\{\{([^{}]*)\}\}")


class QueryTemplateError(ValueError):
    """A query uses a placeholder that does not exist."""


def placeholders_of(template: str) -> list[str]:
    """Placeholder names in ``template``, in order of appearance."""
    return [match.group(1).strip() for match in _PLACEHOLDER.finditer(template)]


def unknown_placeholders(template: str) -> list[str]:
    return [p for p in placeholders_of(template) if p not in QUERY_PLACEHOLDERS]


def render_query(template: str, context: dict[str, str]) -> str:
    """``template`` with every ``{{ name }}`` replaced from ``context``.

    Raises :class:`QueryTemplateError` for a placeholder that is not one of
    :data:`QUERY_PLACEHOLDERS` or that ``context`` lacks.
    """
    unknown = unknown_placeholders(template)
    if unknown:
        raise QueryTemplateError(f"unknown placeholder {{{{{unknown[0]}}}}}")

    def replace(match: re.Match[str]) -> str:
        key = match.group(1).strip()
        if key not in context:
            raise QueryTemplateError(f"no value for placeholder {{{{{key}}}}}")
        return context[key]

    return _PLACEHOLDER.sub(replace, template)


def query_templates(metric: Metric) -> list[tuple[str, str]]:
    """The templated texts of a metric's provider, each with its field under ``provider``:
    a Prometheus query, or a web provider's path and body."""
    source = metric.provider
    if source.prometheus is not None:
        return [("prometheus.query", source.prometheus.query)]
    if source.web is not None:
        texts = [("web.path", source.web.path)]
        if source.web.body is not None:
            texts.append(("web.body", source.web.body))
        return texts
    return []


def timeout_text(metric: Metric) -> tuple[str, str]:
    """The metric's query timeout as written, with its field under ``provider``."""
    source = metric.provider
    if source.web is not None:
        return "web.timeout", source.web.timeout
    if source.prometheus is not None:
        return "prometheus.timeout", source.prometheus.timeout
    return "timeout", "10s"


def web_query(metric: Metric, context: dict[str, str]) -> str:
    """A web provider's request, rendered over ``context``, as the provider's query text: the
    canonical JSON of method, path, body and jsonPath (``adapters.metrics.web`` reads it)."""
    web = metric.provider.web
    if web is None:
        raise QueryTemplateError(f"metric {metric.name} has no web provider")
    request = {
        "method": web.method.value,
        "path": render_query(web.path, context),
        "body": render_query(web.body, context) if web.body is not None else None,
        "jsonPath": web.json_path,
    }
    return json.dumps(request, sort_keys=True, separators=(",", ":"))


def render_sample_query(metric: Metric, context: dict[str, str]) -> str | None:
    """The metric's ``sampleGuard`` count query rendered over ``context``; None without a
    guard."""
    if metric.sample_guard is None:
        return None
    return render_query(metric.sample_guard.query, context)


def render_metric(metric: Metric, context: dict[str, str]) -> str:
    """The query the metric's provider runs now: the Prometheus query or the web request."""
    if metric.provider.web is not None:
        return web_query(metric, context)
    if metric.provider.prometheus is not None:
        return render_query(metric.provider.prometheus.query, context)
    raise QueryTemplateError(f"metric {metric.name} has no provider")
