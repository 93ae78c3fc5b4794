"""What ``kubectl rollwise explain`` reads of a Rollout or a ModelRelease (:class:`Subject`:
where its canary is, its decision, its analysis run and the step's metrics), and the small
readers and colours its decision and evidence sections share. Status is read loosely, as
:mod:`rollwise.cli.explain` says.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rollwise.cli.colour import Palette
from rollwise.cli.common import KINDS, ROLLOUTS
from rollwise.core.analysis import checks_for
from rollwise.core.spec import Metric

#: Colour of each action, severity, priority and confidence word.
ACTION_STYLE = {"expand": "good", "hold": "warn", "rollback": "bad"}
LEVEL_STYLE = {
    "critical": "bad",
    "high": "bad",
    "warning": "warn",
    "medium": "warn",
    "info": "dim",
    "low": "dim",
}
CONFIDENCE_STYLE = {"high": "good", "medium": "warn", "low": "bad"}


def as_dict(value: object) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()} if isinstance(value, Mapping) else {}


def dicts(value: object) -> list[dict[str, Any]]:
    return [as_dict(v) for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def finite_number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def styled(palette: Palette, text: str, styles: Mapping[str, str]) -> str:
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


def step_metrics(plural: str, spec: Mapping[str, Any], step: int | None) -> dict[str, Metric]:
    """The metrics the spec gives the 0-based ``step`` of the canary (for their pass rules and
    targets); none when the spec does not parse."""
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
        from rollwise.core.spec_release import ModelReleaseSpec  # noqa: PLC0415

        release = parse_release_spec(dict(spec))
        if not isinstance(release, ModelReleaseSpec):
            return {}
        checks = checks_for(release.canary.steps, release.canary.analysis, step)
    return {m.name: m for m in checks.metrics} if checks is not None else {}


def read_subject(obj: Mapping[str, Any], plural: str) -> Subject:
    """What ``explain`` shows of ``obj``, a Rollout (``plural`` ``rollouts``) or a
    ModelRelease (``modelreleases``)."""
    meta = as_dict(obj.get("metadata"))
    spec = as_dict(obj.get("spec"))
    status = as_dict(obj.get("status"))
    if plural == ROLLOUTS:
        canary_spec = as_dict(as_dict(spec.get("strategy")).get("canary"))
        progress = status
        canary = progress.get("canaryRevision")
        index = progress.get("currentStepIndex")
        weight = progress.get("canaryWeight")
        relevant = {canary, progress.get("rolledBackRevision")} - {None}
    else:
        canary_spec = as_dict(spec.get("canary"))
        progress = as_dict(status.get("serving"))
        running = not progress.get("passed") and not progress.get("failure")
        canary = progress.get("revision") if running else None
        index = progress.get("stepIndex")
        weight = progress.get("weight")
        relevant = {progress.get("revision")} - {None}
    steps = canary_spec.get("steps")
    count = len(steps) if isinstance(steps, list) else 3  # both kinds' default steps
    analysis = as_dict(progress.get("analysis")) or None
    if analysis is not None and analysis.get("revision") not in relevant:
        analysis = None  # an earlier revision's run explains nothing about this one
    step = index if isinstance(index, int) and not isinstance(index, bool) else None
    run_step = analysis.get("stepIndex") if analysis is not None else None
    decision = as_dict(status.get("decision")) or None
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
        metrics=step_metrics(plural, spec, run_step if isinstance(run_step, int) else step),
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


def number_text(value: object) -> str:
    number = finite_number(value)
    if number is None:
        return "-"
    return f"{number:g}" if abs(number) >= 1e-3 or number == 0 else f"{number:.3g}"


__all__ = [
    "ACTION_STYLE",
    "CONFIDENCE_STYLE",
    "LEVEL_STYLE",
    "Subject",
    "as_dict",
    "dicts",
    "finite_number",
    "no_decision_reason",
    "number_text",
    "read_subject",
    "step_metrics",
    "styled",
]
