"""The ``Evidence`` section of ``kubectl rollwise explain`` (text and ``-o json``): the
analysis run of the canary's current step, by kind of metric: threshold metrics (last value,
pass rule, result, the sampleGuard's last count against ``minSamples``), compare metrics (a
measurement's ``compare``) and SLO burn rates (a measurement's ``burnRate``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from rollwise.cli.colour import PLAIN, Palette
from rollwise.cli.explain_subject import (
    LEVEL_STYLE,
    Subject,
    as_dict,
    dicts,
    finite_number,
    number_text,
    styled,
)
from rollwise.cli.render import last_value, metric_result, threshold_text
from rollwise.cli.text import age, table
from rollwise.core.analysis import format_value
from rollwise.core.durations import format_seconds
from rollwise.core.runs import AnalysisRun, MetricRun
from rollwise.core.spec import Metric


@dataclass(frozen=True)
class MetricEvidence:
    """One metric of the analysis run: its counters (``run``), the raw measurement the
    evidence is read from (the last one carrying it), and its kind."""

    run: MetricRun
    kind: str
    latest: dict[str, Any]


def _latest(measurements: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    return next((m for m in reversed(measurements) if as_dict(m.get(key))), None)


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
    raw = {str(m.get("name")): m for m in dicts(analysis.get("metrics"))}
    out: list[MetricEvidence] = []
    for metric in run.metrics:
        measurements = dicts(raw.get(metric.name, {}).get("measurements"))
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
    count = finite_number(latest.get("samples"))
    if guard is None:
        return "-" if count is None else number_text(count)
    if count is None:
        return f"? (min {guard.min_samples})"
    if count < guard.min_samples:
        return f"{number_text(count)} < {guard.min_samples}"
    return f"{number_text(count)} (min {guard.min_samples})"


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
    number = finite_number(value)
    return "-" if number is None else f"{number:.3g}"


def _effect_text(value: object) -> str:
    number = finite_number(value)
    return "-" if number is None else f"{number * 100:+.1f}%"


def _on_means(c: dict[str, Any]) -> bool:
    return c.get("effectBasis") == "mean"


def _means_note(name: str, c: dict[str, Any]) -> str:
    """Why a compare metric's effect is on its means, and the means."""
    return (
        f"    {name}: more than half of each side is "
        f"{format_value(finite_number(c.get('canaryMedian')))}"
        f", so the effect is on the means: canary "
        f"{format_value(finite_number(c.get('canaryMean')))} vs "
        f"control {format_value(finite_number(c.get('controlMean')))}"
    )


def _compare_lines(items: Sequence[MetricEvidence], palette: Palette) -> list[str]:
    rows = []
    notes = []
    for item in items:
        c = as_dict(item.latest.get("compare"))
        effect = _effect_text(c.get("effectSize"))
        if _on_means(c):
            effect = f"{effect} (means)"
            notes.append(_means_note(item.run.name, c))
        rows.append(
            [
                item.run.name,
                str(c.get("control") or "-"),
                f"{number_text(c.get('canarySamples'))}/{number_text(c.get('controlSamples'))}",
                format_value(finite_number(c.get("canaryMedian"))),
                format_value(finite_number(c.get("controlMedian"))),
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
    number = finite_number(value)
    if number is not None:
        return format_seconds(number)
    return str(value) if value not in (None, "") else "?"


def _events_text(value: object) -> str:
    """A window's event count, whole (``increase()`` extrapolates to fractions)."""
    number = finite_number(value)
    return "-" if number is None else f"{number:.0f}"


def _burn_lines(items: Sequence[MetricEvidence], palette: Palette) -> list[str]:
    lines = ["  SLO burn rates:"]
    for item in items:
        b = as_dict(item.latest.get("burnRate"))
        verdict = palette.word(str(item.latest.get("verdict") or "-").upper())
        lines.append(f"    {item.run.name}: {verdict}")
        windows = [
            [
                _window_text(w.get("window")),
                "no data" if finite_number(w.get("burnRate")) is None else f"{w['burnRate']:.2f}",
                _events_text(w.get("events")),
                _window_text(w.get("observed")) if w.get("observed") is not None else "-",
                "shortened to the canary's age" if w.get("shortened") else "",
            ]
            for w in dicts(b.get("windows"))
        ]
        if windows:
            lines += table(["WINDOW", "BURN", "EVENTS", "OBSERVED", ""], windows, indent="      ")
        pairs = [
            [
                f"{_window_text(p.get('long'))}/{_window_text(p.get('short'))}",
                number_text(p.get("threshold")),
                styled(palette, str(p.get("severity") or "?"), LEVEL_STYLE),
                styled(
                    palette,
                    str(p.get("state") or "?"),
                    {"firing": "bad", "clear": "good", "unknown": "warn"},
                ),
            ]
            for p in dicts(b.get("pairs"))
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


def metric_document(item: MetricEvidence) -> dict[str, Any]:
    """One metric of ``explain -o json``'s evidence."""
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


__all__ = ["MetricEvidence", "evidence_lines", "metric_document", "metric_evidence"]
