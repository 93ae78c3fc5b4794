"""The release's own canary analysis: the run in progress, what is due now, and the query
placeholders' values (the run rules themselves: :mod:`rollwise.core.analysis`).

Pure: no clock (``now`` is an argument), no I/O.
"""

from __future__ import annotations

from datetime import datetime

from rollwise.core.analysis import (
    MetricDue,
    StepChecks,
    checks_for,
    due_now,
)
from rollwise.core.modelrelease.observations import (
    BACKEND_KSERVE,
    BACKEND_TEMPLATE,
)
from rollwise.core.modelrelease.status import (
    ModelReleaseStatus,
    Stage,
)
from rollwise.core.runs import AnalysisRun
from rollwise.core.spec_release import ModelReleaseSpec


def _active_run(
    spec: ModelReleaseSpec, status: ModelReleaseStatus | None
) -> tuple[StepChecks, AnalysisRun] | None:
    if status is None or status.stage is not Stage.STAGING or status.serving is None:
        return None
    sv = status.serving
    own = sv.backend == BACKEND_KSERVE or (sv.solo and sv.solo_started_at is not None)
    if not own or sv.passed or sv.failure is not None:
        return None
    run = sv.analysis
    if run is None or run.step_index != sv.step_index or run.verdict is not None:
        return None
    checks = checks_for(spec.canary.steps, spec.canary.analysis, sv.step_index)
    if checks is None:
        return None
    return checks, run


def release_due_metrics(
    spec: ModelReleaseSpec, status: ModelReleaseStatus | None, now: datetime
) -> list[MetricDue]:
    """The metrics of the release's KServe canary to query now, in spec order."""
    active = _active_run(spec, status)
    if active is None:
        return []
    checks, run = active
    return due_now(checks, run, now)


def release_query_context(
    namespace: str, spec: ModelReleaseSpec, status: ModelReleaseStatus | None
) -> dict[str, str]:
    """The query placeholders for the release's own canary analysis: for KServe, ``name`` is
    the InferenceService and the revisions are KServe's revision names; for the analysis of a
    first release alone (``serving.solo``), ``name`` is the child Rollout and both revisions
    are this release's."""
    sv = status.serving if status is not None else None
    if sv is not None and sv.backend == BACKEND_TEMPLATE:
        return {
            "namespace": namespace,
            "name": sv.name,
            "stableRevision": sv.revision or "",
            "canaryRevision": sv.revision or "",
            "baselineRevision": sv.revision or "",
            "stableService": spec.serving.stable_service or "",
            "canaryService": spec.serving.canary_service or "",
        }
    ref = spec.serving.inference_service_ref
    return {
        "namespace": namespace,
        "name": ref.name if ref is not None else "",
        "stableRevision": (sv.stable_revision if sv is not None else None) or "",
        "canaryRevision": (sv.revision if sv is not None else None) or "",
        # KServe runs no baseline: the control is the stable revision itself.
        "baselineRevision": (sv.stable_revision if sv is not None else None) or "",
        "stableService": spec.serving.stable_service or "",
        "canaryService": spec.serving.canary_service or "",
    }
