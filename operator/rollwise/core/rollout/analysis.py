"""The Rollout's analysis: the run of the step in progress, what is due now, and the query
placeholders' values (the run rules themselves: :mod:`rollwise.core.analysis`).

Pure: no clock (``now`` is an argument), no I/O.
"""

from __future__ import annotations

from datetime import datetime

from rollwise.core.analysis import MetricDue, StepChecks, checks_for_step, due_now, next_due
from rollwise.core.rollout.status import RolloutStatus
from rollwise.core.runs import AnalysisRun
from rollwise.core.spec import RolloutSpec


def active_run(
    spec: RolloutSpec, status: RolloutStatus | None, *, held: bool = False
) -> tuple[StepChecks, AnalysisRun] | None:
    """The analysis being measured now, if any: a canary at a step with checks, whose run
    belongs to that step and revision, not stopped by spec.paused nor by a hold override
    (``held``)."""
    if status is None or status.canary_revision is None or status.current_step_index is None:
        return None
    if spec.paused or held or status.rolled_back_revision == status.canary_revision:
        return None
    run = status.analysis
    if run is None or run.step_index != status.current_step_index:
        return None
    if run.revision != status.canary_revision or run.verdict is not None:
        return None
    checks = checks_for_step(spec, status.current_step_index)
    if checks is None:
        return None
    return checks, run


def due_metrics(
    spec: RolloutSpec, status: RolloutStatus | None, now: datetime, *, held: bool = False
) -> list[MetricDue]:
    """The metrics to query now, in spec order (none while ``held`` by a hold override)."""
    active = active_run(spec, status, held=held)
    if active is None:
        return []
    checks, run = active
    return due_now(checks, run, now)


def soonest_due(
    spec: RolloutSpec, status: RolloutStatus | None, *, held: bool = False
) -> datetime | None:
    """When the next metric of the active analysis is due; None when none is pending."""
    active = active_run(spec, status, held=held)
    if active is None:
        return None
    checks, run = active
    times = [t for m in checks.metrics if (t := next_due(checks, m, run)) is not None]
    return min(times) if times else None


def query_context(
    namespace: str, name: str, spec: RolloutSpec, status: RolloutStatus | None
) -> dict[str, str]:
    """The values of the query placeholders for a rollout in ``status``."""
    stable = status.stable_revision if status is not None else None
    canary = status.canary_revision if status is not None else None
    return {
        "namespace": namespace,
        "name": name,
        "stableRevision": stable or "",
        "canaryRevision": canary or stable or "",
        "stableService": spec.strategy.canary.stable_service,
        "canaryService": spec.strategy.canary.canary_service,
    }
