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
brings the statistics library along). What is read of the object is
:mod:`rollwise.cli.explain_subject`; the evidence section, :mod:`rollwise.cli.explain_evidence`;
this module draws the decision and puts the views together.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rollwise.cli.colour import PLAIN, Palette
from rollwise.cli.explain_evidence import (
    MetricEvidence,
    evidence_lines,
    metric_document,
    metric_evidence,
)
from rollwise.cli.explain_subject import (
    ACTION_STYLE,
    CONFIDENCE_STYLE,
    LEVEL_STYLE,
    Subject,
    as_dict,
    dicts,
    no_decision_reason,
    number_text,
    read_subject,
    styled,
)
from rollwise.cli.text import (
    UNICODE,
    Symbols,
    age,
    fit_last_column,
    human_duration,
    parse_time,
    table,
)

# --------------------------------------------------------------------------------------------
# The decision


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
    shown = styled(palette, action.upper(), ACTION_STYLE)
    sure = styled(palette, confidence, CONFIDENCE_STYLE)
    if mode == "advisory":
        would = styled(palette, recommended.upper(), ACTION_STYLE)
        head = f"{shown} (advisory mode: auto would {would}), confidence {sure}"
    else:
        head = f"{shown}, confidence {sure} ({mode} mode)"
    lines = [f"Decision:    {head}"]
    if decision.get("score") is not None:
        lines.append(f"Score:       {number_text(decision.get('score'))} (compare metrics)")
    decided = parse_time(decision.get("decidedAt"))
    if decided is not None:
        lines.append(f"Decided:     {age(decided, now)} ago ({_stamp(decided)})")
    if decision.get("message"):
        lines.append(f"Message:     {' '.join(str(decision['message']).split())}")

    reasons = dicts(decision.get("reasons"))
    lines.append("")
    if not reasons:
        lines.append("Reasons:     <none>")
    else:
        header = ["SEVERITY", "CODE", "METRIC", "OBSERVED", "THRESHOLD", "MESSAGE"]
        rows = [
            [
                styled(palette, str(r.get("severity") or "?"), LEVEL_STYLE),
                str(r.get("code") or "?"),
                str(r.get("metric") or "-"),
                number_text(r.get("observed")),
                number_text(r.get("threshold")),
                str(r.get("message") or ""),
            ]
            for r in reasons
        ]
        lines += ["Reasons:", *_fitted(header, rows, width, symbols)]

    actions = dicts(decision.get("requiredActions"))
    lines.append("")
    if not actions:
        lines.append("Required actions: <none>")
    else:
        header = ["PRIORITY", "ID", "DUE", "BY", "DESCRIPTION"]
        rows = [
            [
                styled(palette, str(a.get("priority") or "?"), LEVEL_STYLE),
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
    decision = as_dict(as_dict(obj.get("status")).get("decision"))
    action = str(decision.get("action") or "")
    if not action:
        return "-"
    cell = f"{styled(palette, action, ACTION_STYLE)}/{decision.get('confidence') or '?'}"
    recommended = str(decision.get("recommended") or action)
    if decision.get("mode") == "advisory" and recommended != action:
        cell += f" (advisory: {styled(palette, recommended, ACTION_STYLE)})"
    return cell


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
                "metrics": [metric_document(item) for item in items],
            }
    doc["evidence"] = evidence
    return doc


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
