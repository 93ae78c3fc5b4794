"""``kubectl rollwise explain rollout|modelrelease NAME``: the operator's decision on a canary
(``status.decision``) and the evidence behind it.

First the decision: the action (in advisory mode, with what auto mode would do), confidence,
score, reasons (severity, code, metric, observed value, threshold) and required actions
(priority, due time, operator or human). Then the evidence of the current step's analysis
run, by kind of metric: threshold metrics (last value, pass rule, result, the sampleGuard's
last count against ``minSamples``), compare metrics (a measurement's ``compare``: samples,
medians, effect size, p-value, test) and SLO burn rates (a measurement's ``burnRate``: each
window's burn, shortened or not, each pair's rate, severity and state). No decision yet is
said in one line and exits 0; ``-o json`` prints the decision as stored and the evidence.

Pure: from the object as the API server returned it and ``now``. Status is read loosely, so
that a status of an older or newer operator still displays; the decision is read as the wire
form :class:`rollwise.core.decision.Decision` documents, not validated with it (its module
brings the statistics library along).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from rollwise.cli.colour import PLAIN, Palette
from rollwise.cli.common import KINDS, ROLLOUTS
from rollwise.cli.render import last_value, metric_result, threshold_text
from rollwise.cli.text import (
    UNICODE,
    Symbols,
    age,
    fit_last_column,
    human_duration,
    parse_time,
    table,
)
from rollwise.core.analysis import checks_for, format_value
from rollwise.core.durations import format_seconds
from rollwise.core.runs import AnalysisRun, MetricRun
from rollwise.core.spec import Metric

#: Colour of each action, severity, priority and confidence word.
_ACTION_STYLE = {"expand": "good", "hold": "warn", "rollback": "bad"}
_LEVEL_STYLE = {
    "critical": "bad",
    "high": "bad",
    "warning": "warn",
    "medium": "warn",
    "info": "dim",
    "low": "dim",
}
_CONFIDENCE_STYLE = {"high": "good", "medium": "warn", "low": "bad"}


def _as_dict(value: object) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()} if isinstance(value, Mapping) else {}


def _dicts(value: object) -> list[dict[str, Any]]:
    return [_as_dict(v) for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _styled(palette: Palette, text: str, styles: Mapping[str, str]) -> str:
    style = styles.get(text.lower())
    return getattr(palette, style)(text) if style else text


# --------------------------------------------------------------------------------------------
# What the object says


@dataclass(frozen=True)
class Subject:
    """The object explained: its kind, where its canary is, its decision and its analysis."""

    plural: str
    namespace: str
    name: str
    canary: str | None
    step_index: int | None
    steps: int
    weight: int | None
    decision: dict[str, Any] | None
    analysis: dict[str, Any] | None
    metrics: dict[str, Metric]
    status_present: bool

    @property
    def kind(self) -> str:
        return KINDS[self.plural]


def _metrics(plural: str, spec: Mapping[str, Any], step: int | None) -> dict[str, Metric]:
    """The metrics the spec gives the step (for their pass rules); none when it does not parse."""
    if step is None:
        return {}
    if plural == ROLLOUTS:
        from rollwise.core.spec import RolloutSpec  # noqa: PLC0415
        from rollwise.core.validation import parse_rollout_spec  # noqa: PLC0415

        parsed = parse_rollout_spec(dict(spec))
        if not isinstance(parsed, RolloutSpec):
            return {}
        canary = parsed.strategy.canary
        checks = checks_for(canary.steps, canary.analysis, step)
    else:
        from rollwise.core.modelrelease.spec import parse_release_spec  # noqa: PLC0415
        from rollwise.core.spec import ModelReleaseSpec  # noqa: PLC0415

        release = parse_release_spec(dict(spec))
        if not isinstance(release, ModelReleaseSpec):
            return {}
        checks = checks_for(release.canary.steps, release.canary.analysis, step)
    return {m.name: m for m in checks.metrics} if checks is not None else {}


def read_subject(obj: Mapping[str, Any], plural: str) -> Subject:
    """What ``explain`` shows of ``obj``, a Rollout (``plural`` ``rollouts``) or a
    ModelRelease (``modelreleases``)."""
    meta = _as_dict(obj.get("metadata"))
    spec = _as_dict(obj.get("spec"))
    status = _as_dict(obj.get("status"))
    if plural == ROLLOUTS:
        canary_spec = _as_dict(_as_dict(spec.get("strategy")).get("canary"))
        progress = status
        canary = progress.get("canaryRevision")
        index = progress.get("currentStepIndex")
        weight = progress.get("canaryWeight")
        relevant = {canary, progress.get("rolledBackRevision")} - {None}
    else:
        canary_spec = _as_dict(spec.get("canary"))
        progress = _as_dict(status.get("serving"))
        running = not progress.get("passed") and not progress.get("failure")
        canary = progress.get("revision") if running else None
        index = progress.get("stepIndex")
        weight = progress.get("weight")
        relevant = {progress.get("revision")} - {None}
    steps = canary_spec.get("steps")
    count = len(steps) if isinstance(steps, list) else 3  # both kinds' default steps
    analysis = _as_dict(progress.get("analysis")) or None
    if analysis is not None and analysis.get("revision") not in relevant:
        analysis = None  # an earlier revision's run explains nothing about this one
    step = index if isinstance(index, int) and not isinstance(index, bool) else None
    run_step = analysis.get("stepIndex") if analysis is not None else None
    decision = _as_dict(status.get("decision")) or None
    return Subject(
        plural=plural,
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        canary=str(canary) if canary else None,
        step_index=step,
        steps=count,
        weight=weight if isinstance(weight, int) and not isinstance(weight, bool) else None,
        decision=decision,
        analysis=analysis,
        metrics=_metrics(plural, spec, run_step if isinstance(run_step, int) else step),
        status_present=bool(status),
    )


def no_decision_reason(subject: Subject) -> str:
    """Why there is no decision to show, in one sentence."""
    if not subject.status_present:
        return "the object has no status yet (is the Rollwise operator running?)"
    if subject.canary is None:
        return "no canary in progress: decisions are made while a canary runs"
    return (
        "the operator recorded none for this canary yet (an operator version older than "
        "decisions never writes status.decision)"
    )


# --------------------------------------------------------------------------------------------
# The decision


def _number_text(value: object) -> str:
    number = _number(value)
    if number is None:
        return "-"
    return f"{number:g}" if abs(number) >= 1e-3 or number == 0 else f"{number:.3g}"


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _fitted(
    header: list[str], rows: list[list[str]], width: int | None, symbols: Symbols
) -> list[str]:
    """A table whose last column (a sentence) is fitted to the terminal's ``width``."""
    return table(header, fit_last_column(header, rows, "  ", width, symbols), "  ")


def _due_text(value: object, now: datetime) -> str:
    at = parse_time(value)
    if at is None:
        return "-"
    seconds = (at - now).total_seconds()
    when = (
        f"in {human_duration(seconds)}" if seconds >= 0 else f"overdue {human_duration(-seconds)}"
    )
    return f"{when} ({_stamp(at)})"


def decision_lines(
    decision: Mapping[str, Any],
    now: datetime,
    *,
    symbols: Symbols = UNICODE,
    palette: Palette = PLAIN,
    width: int | None = None,
) -> list[str]:
    """The decision's headline, its reasons and its required actions."""
    action = str(decision.get("action") or "?")
    recommended = str(decision.get("recommended") or action)
    mode = str(decision.get("mode") or "auto")
    confidence = str(decision.get("confidence") or "?")
    shown = _styled(palette, action.upper(), _ACTION_STYLE)
    sure = _styled(palette, confidence, _CONFIDENCE_STYLE)
    if mode == "advisory":
        would = _styled(palette, recommended.upper(), _ACTION_STYLE)
        head = f"{shown} (advisory mode: auto would {would}), confidence {sure}"
    else:
        head = f"{shown}, confidence {sure} ({mode} mode)"
    lines = [f"Decision:    {head}"]
    if decision.get("score") is not None:
        lines.append(f"Score:       {_number_text(decision.get('score'))} (compare metrics)")
    decided = parse_time(decision.get("decidedAt"))
    if decided is not None:
        lines.append(f"Decided:     {age(decided, now)} ago ({_stamp(decided)})")
    if decision.get("message"):
        lines.append(f"Message:     {' '.join(str(decision['message']).split())}")

    reasons = _dicts(decision.get("reasons"))
    lines.append("")
    if not reasons:
        lines.append("Reasons:     <none>")
    else:
        header = ["SEVERITY", "CODE", "METRIC", "OBSERVED", "THRESHOLD", "MESSAGE"]
        rows = [
            [
                _styled(palette, str(r.get("severity") or "?"), _LEVEL_STYLE),
                str(r.get("code") or "?"),
                str(r.get("metric") or "-"),
                _number_text(r.get("observed")),
                _number_text(r.get("threshold")),
                str(r.get("message") or ""),
            ]
            for r in reasons
        ]
        lines += ["Reasons:", *_fitted(header, rows, width, symbols)]

    actions = _dicts(decision.get("requiredActions"))
    lines.append("")
    if not actions:
        lines.append("Required actions: <none>")
    else:
        header = ["PRIORITY", "ID", "DUE", "BY", "DESCRIPTION"]
        rows = [
            [
                _styled(palette, str(a.get("priority") or "?"), _LEVEL_STYLE),
                str(a.get("id") or "?"),
                _due_text(a.get("dueBy"), now),
                "operator" if a.get("autoApplicable") else "human",
                str(a.get("description") or ""),
            ]
            for a in actions
        ]
        lines += ["Required actions:", *_fitted(header, rows, width, symbols)]
    return lines


def decision_cell(obj: Mapping[str, Any], palette: Palette = PLAIN) -> str:
    """The DECISION column of ``list -o wide``: ``action/confidence`` of ``status.decision``,
    with what auto mode would do in advisory mode (``hold/high (advisory: rollback)``); ``-``
    without a decision."""
    decision = _as_dict(_as_dict(obj.get("status")).get("decision"))
    action = str(decision.get("action") or "")
    if not action:
        return "-"
    cell = f"{_styled(palette, action, _ACTION_STYLE)}/{decision.get('confidence') or '?'}"
    recommended = str(decision.get("recommended") or action)
    if decision.get("mode") == "advisory" and recommended != action:
        cell += f" (advisory: {_styled(palette, recommended, _ACTION_STYLE)})"
    return cell


# --------------------------------------------------------------------------------------------
# The evidence


@dataclass(frozen=True)
class MetricEvidence:
    """One metric of the analysis run: its counters (``run``), the raw measurement the
    evidence is read from (the last one carrying it), and its kind."""

    run: MetricRun
    kind: str
    latest: dict[str, Any]


def _latest(measurements: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    return next((m for m in reversed(measurements) if _as_dict(m.get(key))), None)


def _without_evidence(analysis: Mapping[str, Any]) -> dict[str, Any]:
    """The analysis run without its measurements' ``compare`` and ``burnRate`` evidence."""

    def bare(metric: Any) -> Any:
        if not isinstance(metric, Mapping) or not isinstance(metric.get("measurements"), list):
            return metric
        kept = [
            {k: v for k, v in m.items() if k not in ("compare", "burnRate")}
            if isinstance(m, Mapping)
            else m
            for m in metric["measurements"]
        ]
        return {**metric, "measurements": kept}

    if not isinstance(analysis.get("metrics"), list):
        return dict(analysis)
    return {**analysis, "metrics": [bare(m) for m in analysis["metrics"]]}


def metric_evidence(analysis: Mapping[str, Any]) -> tuple[AnalysisRun | None, list[MetricEvidence]]:
    """The run as the core reads it (None when unreadable) and each metric's evidence."""
    try:
        # The evidence is read from the raw measurements below, loosely: a malformed one
        # (another operator version, a hand edit) must not make the counters unreadable.
        run = AnalysisRun.model_validate(_without_evidence(analysis))
    except ValidationError:
        return None, []
    raw = {str(m.get("name")): m for m in _dicts(analysis.get("metrics"))}
    out: list[MetricEvidence] = []
    for metric in run.metrics:
        measurements = _dicts(raw.get(metric.name, {}).get("measurements"))
        for kind in ("compare", "burnRate"):
            found = _latest(measurements, kind)
            if found is not None:
                out.append(MetricEvidence(metric, kind, found))
                break
        else:
            out.append(
                MetricEvidence(metric, "threshold", measurements[-1] if measurements else {})
            )
    return run, out


def _samples_text(latest: Mapping[str, Any], metric: Metric | None) -> str:
    """The sample guard's last count against its minimum: ``120 (min 50)``, ``12 < 50``."""
    guard = metric.sample_guard if metric is not None else None
    count = _number(latest.get("samples"))
    if guard is None:
        return "-" if count is None else _number_text(count)
    if count is None:
        return f"? (min {guard.min_samples})"
    if count < guard.min_samples:
        return f"{_number_text(count)} < {guard.min_samples}"
    return f"{_number_text(count)} (min {guard.min_samples})"


def _threshold_lines(
    items: Sequence[MetricEvidence], subject: Subject, running: bool, palette: Palette
) -> list[str]:
    rows = []
    for item in items:
        metric = subject.metrics.get(item.run.name)
        rows.append(
            [
                item.run.name,
                last_value(item.run),
                threshold_text(metric) if metric is not None else "?",
                palette.word(
                    metric_result(
                        item.run, metric.count if metric is not None else None, running=running
                    )
                ),
                _samples_text(item.latest, metric),
            ]
        )
    header = ["METRIC", "LAST", "PASS IF", "RESULT", "SAMPLES"]
    return ["  Threshold metrics:", *table(header, rows, indent="    ")]


def _p_text(value: object) -> str:
    number = _number(value)
    return "-" if number is None else f"{number:.3g}"


def _effect_text(value: object) -> str:
    number = _number(value)
    return "-" if number is None else f"{number * 100:+.1f}%"


def _on_means(c: dict[str, Any]) -> bool:
    return c.get("effectBasis") == "mean"


def _means_note(name: str, c: dict[str, Any]) -> str:
    """Why a compare metric's effect is on its means, and the means."""
    return (
        f"    {name}: more than half of each side is {format_value(_number(c.get('canaryMedian')))}"
        f", so the effect is on the means: canary {format_value(_number(c.get('canaryMean')))} vs "
        f"control {format_value(_number(c.get('controlMean')))}"
    )


def _compare_lines(items: Sequence[MetricEvidence], palette: Palette) -> list[str]:
    rows = []
    notes = []
    for item in items:
        c = _as_dict(item.latest.get("compare"))
        effect = _effect_text(c.get("effectSize"))
        if _on_means(c):
            effect = f"{effect} (means)"
            notes.append(_means_note(item.run.name, c))
        rows.append(
            [
                item.run.name,
                str(c.get("control") or "-"),
                f"{_number_text(c.get('canarySamples'))}/{_number_text(c.get('controlSamples'))}",
                format_value(_number(c.get("canaryMedian"))),
                format_value(_number(c.get("controlMedian"))),
                effect,
                _p_text(c.get("pValue")),
                str(c.get("method") or "-"),
                palette.word(str(item.latest.get("verdict") or "-").upper()),
            ]
        )
    header = ["METRIC", "CONTROL", "SAMPLES", "CANARY MEDIAN", "CONTROL MEDIAN"]
    header += ["EFFECT", "P-VALUE", "TEST", "VERDICT"]
    return [
        "  Compare metrics (canary against control; SAMPLES canary/control):",
        *table(header, rows, indent="    "),
        *notes,
    ]


def _window_text(value: object) -> str:
    number = _number(value)
    if number is not None:
        return format_seconds(number)
    return str(value) if value not in (None, "") else "?"


def _events_text(value: object) -> str:
    """A window's event count, whole (``increase()`` extrapolates to fractions)."""
    number = _number(value)
    return "-" if number is None else f"{number:.0f}"


def _burn_lines(items: Sequence[MetricEvidence], palette: Palette) -> list[str]:
    lines = ["  SLO burn rates:"]
    for item in items:
        b = _as_dict(item.latest.get("burnRate"))
        verdict = palette.word(str(item.latest.get("verdict") or "-").upper())
        lines.append(f"    {item.run.name}: {verdict}")
        windows = [
            [
                _window_text(w.get("window")),
                "no data" if _number(w.get("burnRate")) is None else f"{w['burnRate']:.2f}",
                _events_text(w.get("events")),
                _window_text(w.get("observed")) if w.get("observed") is not None else "-",
                "shortened to the canary's age" if w.get("shortened") else "",
            ]
            for w in _dicts(b.get("windows"))
        ]
        if windows:
            lines += table(["WINDOW", "BURN", "EVENTS", "OBSERVED", ""], windows, indent="      ")
        pairs = [
            [
                f"{_window_text(p.get('long'))}/{_window_text(p.get('short'))}",
                _number_text(p.get("threshold")),
                _styled(palette, str(p.get("severity") or "?"), _LEVEL_STYLE),
                _styled(
                    palette,
                    str(p.get("state") or "?"),
                    {"firing": "bad", "clear": "good", "unknown": "warn"},
                ),
            ]
            for p in _dicts(b.get("pairs"))
        ]
        if pairs:
            lines += table(["PAIR", "ABOVE", "SEVERITY", "STATE"], pairs, indent="      ")
    return lines


def evidence_lines(subject: Subject, now: datetime, *, palette: Palette = PLAIN) -> list[str]:
    """The ``Evidence`` section: the analysis run of the current step, by kind of metric."""
    if subject.analysis is None:
        return ["Evidence:    <none> (no analysis run for this canary)"]
    run, items = metric_evidence(subject.analysis)
    if run is None:
        return ["Evidence:    <unreadable> (the analysis in status could not be read)"]
    current = subject.canary is not None and run.step_index == subject.step_index
    running = current and run.verdict is None
    verdict = palette.word("RUNNING" if running else (run.verdict or "STOPPED").upper())
    title = "Evidence" if current else "Evidence (an earlier step)"
    lines = [
        f"{title}: analysis of step {run.step_index + 1}/{subject.steps}, revision "
        f"{run.revision}, started {age(run.started_at, now)} ago: {verdict}"
    ]
    if run.message:
        lines.append(f"  {' '.join(run.message.split())}")
    if not items:
        lines.append("  no metrics measured yet")
    by_kind = {kind: [i for i in items if i.kind == kind] for kind in ("threshold", "compare")}
    burns = [i for i in items if i.kind == "burnRate"]
    if by_kind["threshold"]:
        lines += _threshold_lines(by_kind["threshold"], subject, running, palette)
    if by_kind["compare"]:
        lines += _compare_lines(by_kind["compare"], palette)
    if burns:
        lines += _burn_lines(burns, palette)
    return lines


# --------------------------------------------------------------------------------------------
# The views


def render_explain(
    obj: Mapping[str, Any],
    plural: str,
    now: datetime,
    *,
    symbols: Symbols = UNICODE,
    palette: Palette = PLAIN,
    width: int | None = None,
) -> str:
    """The ``explain`` text of ``obj`` (ends with a newline)."""
    subject = read_subject(obj, plural)
    lines = [f"{subject.kind}:{' ' * (11 - len(subject.kind))} {subject.namespace}/{subject.name}"]
    if subject.canary is not None:
        step = (
            f"step {min(subject.step_index + 1, subject.steps)}/{subject.steps}"
            if subject.step_index is not None
            else "step ?"
        )
        weight = f", {subject.weight}% of traffic" if subject.weight is not None else ""
        lines.append(f"Canary:      {subject.canary} at {step}{weight}")
    else:
        lines.append("Canary:      - (none in progress)")
    if subject.decision is None:
        lines.append(f"Decision:    none yet: {no_decision_reason(subject)}")
    else:
        if subject.canary is None:
            lines.append("             (the last decision recorded; no canary runs now)")
        lines += decision_lines(
            subject.decision, now, symbols=symbols, palette=palette, width=width
        )
    if subject.analysis is not None or subject.decision is not None:
        lines.append("")
        lines += evidence_lines(subject, now, palette=palette)
    return "\n".join(lines) + "\n"


def explain_document(obj: Mapping[str, Any], plural: str) -> dict[str, Any]:
    """``explain -o json``: the decision as stored (None when there is none, with the reason
    in ``note``) and the evidence of the analysis run, one entry per metric."""
    subject = read_subject(obj, plural)
    canary = (
        {"revision": subject.canary, "stepIndex": subject.step_index, "weight": subject.weight}
        if subject.canary is not None
        else None
    )
    doc: dict[str, Any] = {
        "kind": subject.kind,
        "namespace": subject.namespace,
        "name": subject.name,
        "canary": canary,
        "decision": subject.decision,
    }
    if subject.decision is None:
        doc["note"] = f"no decision yet: {no_decision_reason(subject)}"
    evidence: dict[str, Any] | None = None
    if subject.analysis is not None:
        run, items = metric_evidence(subject.analysis)
        if run is not None:
            evidence = {
                "stepIndex": run.step_index,
                "revision": run.revision,
                "startedAt": subject.analysis.get("startedAt"),
                "verdict": run.verdict.value if run.verdict is not None else None,
                "message": run.message,
                "metrics": [_metric_document(item) for item in items],
            }
    doc["evidence"] = evidence
    return doc


def _metric_document(item: MetricEvidence) -> dict[str, Any]:
    run = item.run
    out: dict[str, Any] = {
        "name": run.name,
        "kind": item.kind,
        "verdict": run.verdict.value if run.verdict is not None else None,
        "taken": run.taken,
        "successful": run.successful,
        "failed": run.failed,
        "inconclusive": run.inconclusive,
        "errors": run.error,
    }
    if item.latest:
        keys = ("value", "verdict", "at", "message", "samples", "nonFinite")
        out["last"] = {k: item.latest[k] for k in keys if item.latest.get(k) is not None}
    if item.kind != "threshold":
        out[item.kind] = item.latest.get(item.kind)
    return out


__all__ = [
    "MetricEvidence",
    "Subject",
    "decision_cell",
    "decision_lines",
    "evidence_lines",
    "explain_document",
    "metric_evidence",
    "no_decision_reason",
    "read_subject",
    "render_explain",
]
