"""Table of Rollout transitions: state in (built by driving the real core through an ideal
cluster), one ``decide``, state out (phase, status fields, actions in order, event reasons in
order, requeue)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pytest

from rollwise.core.conditions import ConditionStatus
from rollwise.core.observations import (
    ManualRequest,
    Observations,
    RequestKind,
    RevisionState,
    revision_of,
)
from rollwise.core.phases import Phase
from rollwise.core.rollout import reasons as R
from rollwise.core.rollout.actions import (
    Action,
    Decision,
    DeleteRevision,
    EnsureRevision,
    PointCanaryService,
    PointStableService,
    ScaleRevision,
    SetWeight,
)
from rollwise.core.rollout.canary import decide
from rollwise.core.rollout.state import sanitize
from rollwise.core.rollout.status import ConditionType, PauseReason, RolloutStatus
from rollwise.core.spec import RolloutSpec
from tests.unit.core.rollout_builders import (
    R1,
    R2,
    R3,
    V1,
    V2,
    V3,
    Cluster,
    at,
    drive,
    error,
    metric,
    obs,
    ready,
    reasons,
    spec_of,
    value,
)

ANALYSIS = {"interval": "1m", "metrics": [metric()]}
STABLE_SVC = "web-stable"
CANARY_SVC = "web-canary"


@dataclass
class Case:
    spec: RolloutSpec | dict[str, Any]
    status: RolloutStatus | None
    obs: Observations
    now: datetime
    phase: Phase
    events: list[str]
    fields: dict[str, Any] = field(default_factory=dict)
    actions: list[Action] | None = None
    contains: list[Action] = field(default_factory=list)
    requeue: float | str | None = "any"
    message: str | None = None


# ------------------------------------------------------------------ state builders


def healthy(template: dict[str, Any] = V1, **spec_kw: Any) -> tuple[RolloutStatus, Cluster]:
    cluster = Cluster(router=spec_kw.get("router", True))
    status, _, _ = drive(
        spec_of(image_template=template, **spec_kw), None, cluster, template, at(0)
    )
    assert status is not None
    assert status.phase is Phase.HEALTHY
    return status, cluster


def canary(
    now: float = 10, template: dict[str, Any] = V2, **spec_kw: Any
) -> tuple[RolloutStatus, Cluster, RolloutSpec]:
    status, cluster = healthy(**spec_kw)
    spec = spec_of(image_template=template, **spec_kw)
    status2, _, _ = drive(spec, status, cluster, template, at(now))
    assert status2 is not None
    return status2, cluster, spec


def rolled_back(**spec_kw: Any) -> tuple[RolloutStatus, Cluster, RolloutSpec]:
    spec_kw.setdefault("analysis", ANALYSIS)
    status, cluster, spec = canary(**spec_kw)
    d = decide(spec, status, cluster.observe(V2, measurements={"error-ratio": value(0.9)}), at(70))
    cluster.apply(d)
    assert d.status.rolled_back_revision == R2
    return d.status, cluster, spec


def at_completion(**spec_kw: Any) -> tuple[RolloutStatus, Cluster, RolloutSpec]:
    status, cluster, spec = canary(steps=[{"setWeight": 100}], **spec_kw)
    assert status.stable_revision == R2
    return status, cluster, spec


# ------------------------------------------------------------------ cases


def first_observation_ready() -> Case:
    return Case(
        spec=spec_of(),
        status=None,
        obs=obs(V1, revisions={R1: ready(4)}),
        now=at(0),
        phase=Phase.HEALTHY,
        events=["Initialized"],
        fields={"stable_revision": R1, "canary_revision": None, "canary_weight": 0},
        actions=[
            EnsureRevision(R1, 4, V1),
            PointStableService(STABLE_SVC, R1),
            PointCanaryService(CANARY_SVC, R1),
            SetWeight(R1, R1, 0),
        ],
        requeue=None,
    )


def first_observation_not_ready() -> Case:
    return Case(
        spec=spec_of(),
        status=None,
        obs=obs(V1),
        now=at(0),
        phase=Phase.PROGRESSING,
        events=[],
        fields={"stable_revision": R1, "progress_started_at": at(0)},
        contains=[EnsureRevision(R1, 4, V1)],
        requeue=5.0,
        message="waiting for stable revision",
    )


def first_observation_becomes_ready() -> Case:
    first = decide(spec_of(), None, obs(V1), at(0))
    return Case(
        spec=spec_of(),
        status=first.status,
        obs=obs(V1, revisions={R1: ready(4)}),
        now=at(20),
        phase=Phase.HEALTHY,
        events=["Initialized"],
        requeue=None,
    )


def first_observation_deadline() -> Case:
    first = decide(spec_of(deadline=60), None, obs(V1), at(0))
    return Case(
        spec=spec_of(deadline=60),
        status=first.status,
        obs=obs(V1, revisions={R1: RevisionState(4)}),
        now=at(61),
        phase=Phase.DEGRADED,
        events=["ProgressDeadlineExceeded"],
        fields={"deadline_exceeded": True},
        requeue=5.0,
    )


def healthy_is_idle() -> Case:
    status, cluster = healthy()
    return Case(
        spec=spec_of(),
        status=status,
        obs=cluster.observe(V1),
        now=at(3600),
        phase=Phase.HEALTHY,
        events=[],
        requeue=None,
    )


def healthy_scaled_up_waits() -> Case:
    status, cluster = healthy()
    return Case(
        spec=spec_of(replicas=6),
        status=status,
        obs=cluster.observe(V1),
        now=at(100),
        phase=Phase.PROGRESSING,
        events=[],
        fields={"progress_started_at": at(100)},
        contains=[EnsureRevision(R1, 6, V1)],
        requeue=5.0,
    )


def new_revision_starts_canary() -> Case:
    status, cluster = healthy()
    return Case(
        spec=spec_of(image_template=V2),
        status=status,
        obs=cluster.observe(V2),
        now=at(10),
        phase=Phase.PROGRESSING,
        events=["RevisionDetected"],
        fields={
            "canary_revision": R2,
            "stable_revision": R1,
            "current_step_index": 0,
            "canary_weight": 0,
        },
        actions=[
            ScaleRevision(R1, 4),
            EnsureRevision(R2, 1, V2),
            PointStableService(STABLE_SVC, R1),
            PointCanaryService(CANARY_SVC, R2),
            SetWeight(R2, R1, 0),
        ],
        requeue=5.0,
        message="waiting for canary",
    )


def canary_ready_sets_weight() -> Case:
    status, cluster = healthy()
    d = decide(spec_of(image_template=V2), status, cluster.observe(V2), at(10))
    cluster.apply(d)
    return Case(
        spec=spec_of(image_template=V2),
        status=d.status,
        obs=cluster.observe(V2),
        now=at(15),
        phase=Phase.PROGRESSING,
        events=["WeightSet"],
        fields={"canary_weight": 5, "current_step_index": 0},
        actions=[
            ScaleRevision(R1, 4),
            EnsureRevision(R2, 1, V2),
            PointStableService(STABLE_SVC, R1),
            PointCanaryService(CANARY_SVC, R2),
            SetWeight(R2, R1, 5),
        ],
        requeue=5.0,
        message="waiting for the router to report 5%",
    )


def weight_verified_advances_without_analysis() -> Case:
    status, cluster = healthy()
    spec = spec_of(image_template=V2)
    d = decide(spec, status, cluster.observe(V2), at(10))
    cluster.apply(d)
    d = decide(spec, d.status, cluster.observe(V2), at(15))
    cluster.apply(d)
    return Case(
        spec=spec,
        status=d.status,
        obs=cluster.observe(V2),
        now=at(20),
        phase=Phase.PROGRESSING,
        events=["StepAdvanced", "WeightSet"],
        fields={"current_step_index": 1, "canary_weight": 25},
        contains=[SetWeight(R2, R1, 25)],
    )


def router_weight_unknown_waits() -> Case:
    status, cluster = healthy()
    spec = spec_of(image_template=V2)
    d = decide(spec, status, cluster.observe(V2), at(10))
    cluster.apply(d)
    d = decide(spec, d.status, cluster.observe(V2), at(15))
    return Case(
        spec=spec,
        status=d.status,
        obs=replace(cluster.observe(V2), actual_weight=None),
        now=at(20),
        phase=Phase.PROGRESSING,
        events=[],
        fields={"current_step_index": 0, "canary_weight": 5},
        requeue=5.0,
        message="(unknown)",
    )


def canary_service_missing_waits() -> Case:
    status, cluster = healthy()
    spec = spec_of(image_template=V2)
    d = decide(spec, status, cluster.observe(V2), at(10))
    cluster.apply(d)
    return Case(
        spec=spec,
        status=d.status,
        obs=replace(cluster.observe(V2), canary_service_exists=False),
        now=at(15),
        phase=Phase.PROGRESSING,
        events=[],
        fields={"canary_weight": 0},
        message="waiting for Service web-canary",
    )


def new_revision_replaces_canary() -> Case:
    status, cluster, _ = canary(steps=[{"setWeight": 25}, {"pause": {}}, {"setWeight": 100}])
    assert status.canary_weight == 25
    return Case(
        spec=spec_of(image_template=V3),
        status=status,
        obs=cluster.observe(V3),
        now=at(100),
        phase=Phase.PROGRESSING,
        events=["RevisionReplaced"],
        fields={"canary_revision": R3, "current_step_index": 0, "canary_weight": 0},
        actions=[
            ScaleRevision(R1, 4),
            EnsureRevision(R3, 1, V3),
            PointStableService(STABLE_SVC, R1),
            SetWeight(R3, R1, 0),
            PointCanaryService(CANARY_SVC, R3),
            DeleteRevision(R2),
        ],
    )


def template_back_to_stable_cancels() -> Case:
    status, cluster, _ = canary(steps=[{"setWeight": 25}, {"pause": {}}, {"setWeight": 100}])
    return Case(
        spec=spec_of(image_template=V1),
        status=status,
        obs=cluster.observe(V1),
        now=at(100),
        # Healthy once the router shows the canary's share gone (the next pass).
        phase=Phase.PROGRESSING,
        message="waiting for the router to report 0% to the canary (25%)",
        events=["CanaryCancelled"],
        fields={"canary_revision": None, "stable_revision": R1, "canary_weight": 0},
        actions=[
            EnsureRevision(R1, 4, V1),
            PointStableService(STABLE_SVC, R1),
            SetWeight(R1, R1, 0),
            PointCanaryService(CANARY_SVC, R1),
            DeleteRevision(R2),
        ],
        requeue=5.0,
    )


def analysis_starts_when_weight_verified() -> Case:
    status, cluster = healthy(analysis=ANALYSIS)
    spec = spec_of(image_template=V2, analysis=ANALYSIS)
    d = decide(spec, status, cluster.observe(V2), at(10))
    cluster.apply(d)
    d = decide(spec, d.status, cluster.observe(V2), at(15))
    cluster.apply(d)
    return Case(
        spec=spec,
        status=d.status,
        obs=cluster.observe(V2),
        now=at(20),
        phase=Phase.PROGRESSING,
        events=[],
        fields={"current_step_index": 0, "canary_weight": 5},
        requeue=60.0,
        message="analysis running (error-ratio 0/1)",
    )


def measurement_pass_advances() -> Case:
    status, cluster, spec = canary(analysis=ANALYSIS)
    return Case(
        spec=spec,
        status=status,
        obs=cluster.observe(V2, measurements={"error-ratio": value(0.01)}),
        now=at(70),
        phase=Phase.PROGRESSING,
        events=["AnalysisMeasured", "AnalysisPassed", "StepAdvanced", "WeightSet"],
        fields={"current_step_index": 1, "canary_weight": 25},
    )


def measurement_not_due_ignored() -> Case:
    status, cluster, spec = canary(analysis=ANALYSIS)
    return Case(
        spec=spec,
        status=status,
        obs=cluster.observe(V2, measurements={"error-ratio": value(0.9)}),
        now=at(30),
        phase=Phase.PROGRESSING,
        events=[],
        fields={"current_step_index": 0, "canary_weight": 5, "rolled_back_revision": None},
        requeue=40.0,
    )


def fail_rolls_back() -> Case:
    status, cluster, spec = canary(analysis=ANALYSIS)
    return Case(
        spec=spec,
        status=status,
        obs=cluster.observe(V2, measurements={"error-ratio": value(0.2)}),
        now=at(70),
        phase=Phase.DEGRADED,
        events=["AnalysisFailed", "RolledBack"],
        fields={
            "rolled_back_revision": R2,
            "canary_revision": None,
            "canary_weight": 0,
            "stable_revision": R1,
            "aborted": False,
        },
        actions=[
            ScaleRevision(R1, 4),
            PointStableService(STABLE_SVC, R1),
            SetWeight(R1, R1, 0),
            PointCanaryService(CANARY_SVC, R1),
            ScaleRevision(R2, 0),
        ],
        requeue=None,
        message="failed successCondition 'result < 0.05' (failures 1 > failureLimit 0)",
    )


def fail_within_limit_continues() -> Case:
    analysis = {"interval": "1m", "failureLimit": 1, "metrics": [metric(count=3)]}
    status, cluster, spec = canary(analysis=analysis)
    return Case(
        spec=spec,
        status=status,
        obs=cluster.observe(V2, measurements={"error-ratio": value(0.2)}),
        now=at(70),
        phase=Phase.PROGRESSING,
        events=["MeasurementFailed"],
        fields={"canary_weight": 5, "rolled_back_revision": None},
        requeue=60.0,
    )


def inconclusive_pauses() -> Case:
    status, cluster, spec = canary(analysis=ANALYSIS)
    return Case(
        spec=spec,
        status=status,
        obs=cluster.observe(V2, measurements={"error-ratio": value(None)}),
        now=at(70),
        phase=Phase.PAUSED,
        events=["AnalysisInconclusive"],
        fields={
            "pause_reason": PauseReason.ANALYSIS_INCONCLUSIVE,
            "canary_weight": 5,
            "current_step_index": 0,
            "rolled_back_revision": None,
        },
        requeue=None,
        message="analysis inconclusive",
    )


def provider_error_within_limit() -> Case:
    status, cluster, spec = canary(analysis=ANALYSIS)
    return Case(
        spec=spec,
        status=status,
        obs=cluster.observe(V2, measurements={"error-ratio": error()}),
        now=at(70),
        phase=Phase.PROGRESSING,
        events=["MeasurementError"],
        fields={"canary_weight": 5},
        requeue=60.0,
    )


def provider_errors_beyond_limit_pause() -> Case:
    analysis = {**ANALYSIS, "consecutiveErrorLimit": 0}
    status, cluster, spec = canary(analysis=analysis)
    return Case(
        spec=spec,
        status=status,
        obs=cluster.observe(V2, measurements={"error-ratio": error("503")}),
        now=at(70),
        phase=Phase.PAUSED,
        events=["AnalysisError"],
        fields={
            "pause_reason": PauseReason.ANALYSIS_INCONCLUSIVE,
            "rolled_back_revision": None,
            "canary_weight": 5,
        },
        requeue=None,
    )


def fail_beats_pending_promote() -> Case:
    status, cluster, spec = canary(analysis=ANALYSIS)
    return Case(
        spec=spec,
        status=status,
        obs=cluster.observe(
            V2,
            measurements={"error-ratio": value(0.5)},
            requests=(_req(RequestKind.PROMOTE, "p1"), _req(RequestKind.PROMOTE_FULL, "f1")),
        ),
        now=at(70),
        phase=Phase.DEGRADED,
        events=["AnalysisFailed", "RolledBack", "RequestIgnored", "RequestIgnored"],
        fields={"canary_weight": 0, "rolled_back_revision": R2},
    )


def timed_pause_entered() -> Case:
    steps = [{"pause": {"duration": "5m"}}, {"setWeight": 100}]
    status, cluster = healthy(steps=steps)
    return Case(
        spec=spec_of(image_template=V2, steps=steps),
        status=status,
        obs=cluster.observe(V2),
        now=at(10),
        phase=Phase.PAUSED,
        events=["RevisionDetected", "Paused"],
        fields={
            "pause_reason": PauseReason.PAUSE_STEP,
            "pause_started_at": at(10),
            "current_step_index": 0,
        },
        requeue=300.0,
    )


def timed_pause_expires() -> Case:
    steps = [{"pause": {"duration": "5m"}}, {"setWeight": 50}, {"setWeight": 100}]
    status, cluster, spec = canary(steps=steps)
    return Case(
        spec=spec,
        status=status,
        obs=cluster.observe(V2),
        now=at(310),
        phase=Phase.PROGRESSING,
        events=["PauseExpired", "StepAdvanced"],
        fields={"current_step_index": 1, "canary_weight": 0, "pause_reason": None},
        contains=[EnsureRevision(R2, 2, V2)],
        message="waiting for canary",
    )


def timed_pause_not_yet() -> Case:
    steps = [{"pause": {"duration": "5m"}}, {"setWeight": 100}]
    status, cluster, spec = canary(steps=steps)
    return Case(
        spec=spec,
        status=status,
        obs=cluster.observe(V2),
        now=at(100),
        phase=Phase.PAUSED,
        events=[],
        requeue=210.0,
        message="3m30s left",
    )


def indefinite_pause_waits() -> Case:
    steps = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 100}]
    status, cluster, spec = canary(steps=steps)
    return Case(
        spec=spec,
        status=status,
        obs=cluster.observe(V2),
        now=at(10_000),
        phase=Phase.PAUSED,
        events=[],
        fields={"current_step_index": 1, "canary_weight": 20},
        requeue=None,
        message="paused until promoted",
    )


def indefinite_pause_promoted() -> Case:
    steps = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"setWeight": 100}]
    status, cluster, spec = canary(steps=steps)
    return Case(
        spec=spec,
        status=status,
        obs=cluster.observe(V2, requests=(_req(RequestKind.PROMOTE, "go"),)),
        now=at(100),
        phase=Phase.PROGRESSING,
        events=["Promoted"],
        fields={
            "current_step_index": 2,
            "canary_weight": 20,
            "handled_requests": {"promote": "go"},
        },
        contains=[EnsureRevision(R2, 2, V2), SetWeight(R2, R1, 20)],
    )


def spec_paused_holds() -> Case:
    status, cluster, _ = canary(analysis=ANALYSIS)
    spec = spec_of(image_template=V2, analysis=ANALYSIS, paused=True)
    return Case(
        spec=spec,
        status=status,
        obs=cluster.observe(V2, measurements={"error-ratio": value(0.9)}),
        now=at(70),
        phase=Phase.PAUSED,
        events=["Paused"],
        fields={"current_step_index": 0, "canary_weight": 5, "rolled_back_revision": None},
        requeue=None,
        message="paused by spec.paused",
    )


def spec_unpaused_resumes() -> Case:
    status, cluster, _ = canary(analysis=ANALYSIS)
    paused = spec_of(image_template=V2, analysis=ANALYSIS, paused=True)
    d = decide(paused, status, cluster.observe(V2), at(30))
    return Case(
        spec=spec_of(image_template=V2, analysis=ANALYSIS),
        status=d.status,
        obs=cluster.observe(V2),
        now=at(40),
        phase=Phase.PROGRESSING,
        events=["Resumed"],
        fields={"current_step_index": 0},
    )


def healthy_spec_paused() -> Case:
    status, cluster = healthy()
    return Case(
        spec=spec_of(paused=True),
        status=status,
        obs=cluster.observe(V1),
        now=at(50),
        phase=Phase.PAUSED,
        events=["Paused"],
        requeue=None,
    )


ANALYSIS_STEPS = [
    {"setWeight": 20},
    {"analysis": {"metrics": [metric(count=2)], "interval": "30s"}},
    {"setWeight": 100},
]


def analysis_step_blocks() -> Case:
    status, cluster, spec = canary(steps=ANALYSIS_STEPS)
    assert status.current_step_index == 1
    return Case(
        spec=spec,
        status=status,
        obs=cluster.observe(V2, measurements={"error-ratio": value(0.01)}),
        now=at(40),
        phase=Phase.PROGRESSING,
        events=["AnalysisMeasured"],
        fields={"current_step_index": 1, "canary_weight": 20},
        requeue=30.0,
        message="analysis running (error-ratio 1/2",
    )


def analysis_step_passes() -> Case:
    status, cluster, spec = canary(steps=ANALYSIS_STEPS)
    d = decide(spec, status, cluster.observe(V2, measurements={"error-ratio": value(0.01)}), at(40))
    return Case(
        spec=spec,
        status=d.status,
        obs=cluster.observe(V2, measurements={"error-ratio": value(0.02)}),
        now=at(70),
        phase=Phase.PROGRESSING,
        events=["AnalysisMeasured", "AnalysisPassed", "StepAdvanced"],
        fields={"current_step_index": 2, "canary_weight": 20},
        contains=[EnsureRevision(R2, 4, V2)],
    )


def abort_rolls_back() -> Case:
    status, cluster, spec = canary(steps=[{"setWeight": 30}, {"pause": {}}, {"setWeight": 100}])
    return Case(
        spec=spec,
        status=status,
        obs=cluster.observe(V2, requests=(_req(RequestKind.ABORT, "stop"),)),
        now=at(50),
        phase=Phase.DEGRADED,
        events=["Aborted"],
        fields={"aborted": True, "rolled_back_revision": R2, "canary_weight": 0},
        actions=[
            ScaleRevision(R1, 4),
            PointStableService(STABLE_SVC, R1),
            SetWeight(R1, R1, 0),
            PointCanaryService(CANARY_SVC, R1),
            ScaleRevision(R2, 0),
        ],
        requeue=None,
        message="was aborted",
    )


def abort_when_healthy_ignored() -> Case:
    status, cluster = healthy()
    return Case(
        spec=spec_of(),
        status=status,
        obs=cluster.observe(V1, requests=(_req(RequestKind.ABORT, "x"),)),
        now=at(50),
        phase=Phase.HEALTHY,
        events=["RequestIgnored"],
        fields={"handled_requests": {"abort": "x"}},
    )


def request_handled_once() -> Case:
    status, cluster = healthy()
    d = decide(
        spec_of(), status, cluster.observe(V1, requests=(_req(RequestKind.ABORT, "x"),)), at(5)
    )
    return Case(
        spec=spec_of(),
        status=d.status,
        obs=cluster.observe(V1, requests=(_req(RequestKind.ABORT, "x"),)),
        now=at(50),
        phase=Phase.HEALTHY,
        events=[],
    )


def promote_full_waits_for_full_scale() -> Case:
    steps = [{"setWeight": 10}, {"pause": {}}, {"setWeight": 100}]
    status, cluster, spec = canary(steps=steps, analysis=None)
    return Case(
        spec=spec,
        status=status,
        obs=cluster.observe(V2, requests=(_req(RequestKind.PROMOTE_FULL, "now"),)),
        now=at(50),
        phase=Phase.PROGRESSING,
        events=["PromotedFull"],
        fields={"current_step_index": 3, "canary_revision": R2},
        contains=[EnsureRevision(R2, 4, V2)],
        message="waiting for canary",
    )


def promote_full_completes_when_ready() -> Case:
    steps = [{"setWeight": 10}, {"pause": {}}, {"setWeight": 100}]
    status, cluster, spec = canary(steps=steps)
    d = decide(
        spec, status, cluster.observe(V2, requests=(_req(RequestKind.PROMOTE_FULL, "n"),)), at(50)
    )
    cluster.apply(d)
    return Case(
        spec=spec,
        status=d.status,
        obs=cluster.observe(V2, requests=(_req(RequestKind.PROMOTE_FULL, "n"),)),
        now=at(55),
        phase=Phase.PROGRESSING,
        message="waiting for the router to report 0% to the canary (10%)",
        events=["RolloutCompleted"],
        fields={"stable_revision": R2, "canary_revision": None},
    )


def retry_after_rollback() -> Case:
    status, cluster, spec = rolled_back()
    return Case(
        spec=spec,
        status=status,
        obs=cluster.observe(V2, requests=(_req(RequestKind.RETRY, "again"),)),
        now=at(100),
        phase=Phase.PROGRESSING,
        events=["RetryRequested"],
        fields={
            "canary_revision": R2,
            "current_step_index": 0,
            "rolled_back_revision": None,
            "analysis": None,
        },
        contains=[EnsureRevision(R2, 1, V2)],
    )


def rolled_back_not_retried() -> Case:
    status, cluster, spec = rolled_back()
    return Case(
        spec=spec,
        status=status,
        obs=cluster.observe(V2),
        now=at(1000),
        phase=Phase.DEGRADED,
        events=[],
        fields={"canary_revision": None, "rolled_back_revision": R2},
        requeue=None,
    )


def rolled_back_spec_edit_skipped() -> Case:
    status, cluster, spec = rolled_back()
    return Case(
        spec=spec,
        status=status,
        obs=replace(cluster.observe(V2), generation=2),
        now=at(1000),
        phase=Phase.DEGRADED,
        events=["RevisionSkipped"],
        fields={"canary_revision": None, "observed_generation": 2},
        requeue=None,
    )


def rolled_back_then_new_template() -> Case:
    status, cluster, _ = rolled_back()
    return Case(
        spec=spec_of(image_template=V3, analysis=ANALYSIS),
        status=status,
        obs=replace(cluster.observe(V3), generation=2),
        now=at(1000),
        phase=Phase.PROGRESSING,
        events=["RevisionDetected"],
        fields={"canary_revision": R3, "rolled_back_revision": None},
        contains=[EnsureRevision(R3, 1, V3), DeleteRevision(R2)],
    )


def inconclusive_retry_restarts_analysis() -> Case:
    status, cluster, spec = canary(analysis=ANALYSIS)
    d = decide(spec, status, cluster.observe(V2, measurements={"error-ratio": value(None)}), at(70))
    return Case(
        spec=spec,
        status=d.status,
        obs=cluster.observe(V2, requests=(_req(RequestKind.RETRY, "r"),)),
        now=at(100),
        phase=Phase.PROGRESSING,
        events=["AnalysisRetried"],
        fields={"pause_reason": None, "current_step_index": 0},
        requeue=60.0,
    )


def inconclusive_promote_skips_step() -> Case:
    status, cluster, spec = canary(analysis=ANALYSIS)
    d = decide(spec, status, cluster.observe(V2, measurements={"error-ratio": value(None)}), at(70))
    return Case(
        spec=spec,
        status=d.status,
        obs=cluster.observe(V2, requests=(_req(RequestKind.PROMOTE, "p"),)),
        now=at(100),
        phase=Phase.PROGRESSING,
        events=["Promoted", "WeightSet"],
        fields={"pause_reason": None, "current_step_index": 1, "canary_weight": 25},
    )


def retry_with_nothing_to_retry() -> Case:
    status, cluster = healthy()
    return Case(
        spec=spec_of(),
        status=status,
        obs=cluster.observe(V1, requests=(_req(RequestKind.RETRY, "r"),)),
        now=at(100),
        phase=Phase.HEALTHY,
        events=["RequestIgnored"],
    )


def until(
    spec: RolloutSpec,
    status: RolloutStatus,
    *,
    cluster: Cluster,
    template: dict[str, Any],
    now: datetime,
    done: Callable[[RolloutStatus], bool],
) -> RolloutStatus:
    """Decide and apply until ``done(status)``: the state just before a transition."""
    for _ in range(10):
        if done(status):
            return status
        d = decide(spec, status, cluster.observe(template), now)
        cluster.apply(d)
        status = d.status
    raise AssertionError(f"state not reached: {status.message}")


def completion_promotes() -> Case:
    status, cluster = healthy()
    spec = spec_of(image_template=V2, steps=[{"setWeight": 50}, {"setWeight": 100}])
    before = until(
        spec,
        status,
        cluster=cluster,
        template=V2,
        now=at(10),
        done=lambda s: s.canary_weight == 100,
    )
    return Case(
        spec=spec,
        status=before,
        obs=cluster.observe(V2),
        now=at(20),
        phase=Phase.PROGRESSING,
        message="waiting for the router to report 0% to the canary (100%)",
        events=["StepAdvanced", "RolloutCompleted"],
        fields={
            "stable_revision": R2,
            "canary_revision": None,
            "canary_weight": 0,
            "current_step_index": None,
        },
        actions=[
            EnsureRevision(R2, 4, V2),
            PointStableService(STABLE_SVC, R2),
            SetWeight(R2, R2, 0),
            PointCanaryService(CANARY_SVC, R2),
        ],
        requeue=5.0,
    )


def retired_removed_after_delay() -> Case:
    status, cluster, spec = at_completion()
    assert status.retired_revisions[0].revision == R1
    return Case(
        spec=spec,
        status=status,
        obs=cluster.observe(V2),
        now=at(41),
        phase=Phase.HEALTHY,
        events=["RevisionRetired"],
        fields={"retired_revisions": []},
        contains=[DeleteRevision(R1)],
        requeue=None,
    )


def retired_kept_before_delay() -> Case:
    status, cluster, spec = at_completion()
    return Case(
        spec=spec,
        status=status,
        obs=cluster.observe(V2),
        now=at(25),
        phase=Phase.HEALTHY,
        events=[],
        requeue=15.0,
    )


def zero_scale_down_delay() -> Case:
    status, cluster = healthy(scale_down_delay=0)
    spec = spec_of(image_template=V2, steps=[{"setWeight": 100}], scale_down_delay=0)
    before = until(
        spec,
        status,
        cluster=cluster,
        template=V2,
        now=at(10),
        done=lambda s: s.canary_weight == 100,
    )
    return Case(
        spec=spec,
        status=before,
        obs=cluster.observe(V2),
        now=at(10),
        phase=Phase.PROGRESSING,
        message="waiting for the router to report 0% to the canary (100%)",
        events=["StepAdvanced", "RolloutCompleted", "RevisionRetired"],
        contains=[DeleteRevision(R1)],
        fields={"retired_revisions": []},
        requeue=5.0,
    )


def canary_deadline_exceeded() -> Case:
    status, cluster = healthy(deadline=120)
    cluster.unready.add(R2)
    spec = spec_of(image_template=V2, deadline=120)
    d = decide(spec, status, cluster.observe(V2), at(10))
    cluster.apply(d)
    return Case(
        spec=spec,
        status=d.status,
        obs=cluster.observe(V2),
        now=at(131),
        phase=Phase.DEGRADED,
        events=["ProgressDeadlineExceeded"],
        fields={"deadline_exceeded": True, "canary_revision": R2, "rolled_back_revision": None},
        requeue=5.0,
        message="progress deadline exceeded",
    )


def deadline_then_progress() -> Case:
    status, cluster = healthy(deadline=120)
    cluster.unready.add(R2)
    spec = spec_of(image_template=V2, deadline=120)
    d = decide(spec, status, cluster.observe(V2), at(10))
    cluster.apply(d)
    d = decide(spec, d.status, cluster.observe(V2), at(131))
    return Case(
        spec=spec,
        status=d.status,
        obs=replace(cluster.observe(V2), revisions={R1: ready(4), R2: ready(1)}),
        now=at(140),
        phase=Phase.PROGRESSING,
        events=["ProgressResumed", "WeightSet"],
        fields={"deadline_exceeded": False, "canary_weight": 5},
    )


def invalid_raw_spec() -> Case:
    status, cluster = healthy()
    raw = spec_of().model_dump(by_alias=True)
    raw["strategy"]["canary"]["steps"] = [{"setWeight": 150}]
    return Case(
        spec=raw,
        status=status,
        obs=replace(cluster.observe(V1), generation=2),
        now=at(50),
        phase=Phase.DEGRADED,
        events=["InvalidSpec"],
        fields={"observed_generation": 2, "stable_revision": R1},
        actions=[],
        requeue=None,
        message="setWeight: Input should be less than or equal to 100",
    )


def invalid_cross_field_spec() -> Case:
    status, cluster = healthy()
    bad = spec_of(steps=[{"setWeight": 50}, {"setWeight": 20}])
    return Case(
        spec=bad,
        status=status,
        obs=cluster.observe(V1),
        now=at(50),
        phase=Phase.DEGRADED,
        events=["InvalidSpec"],
        actions=[],
        requeue=None,
        message="setWeight must not decrease",
    )


def invalid_spec_same_message_quiet() -> Case:
    status, cluster = healthy()
    bad = spec_of(steps=[{"setWeight": 50}])
    d = decide(bad, status, cluster.observe(V1), at(50))
    return Case(
        spec=bad,
        status=d.status,
        obs=cluster.observe(V1),
        now=at(60),
        phase=Phase.DEGRADED,
        events=[],
        actions=[],
    )


def spec_corrected() -> Case:
    status, cluster = healthy()
    d = decide(spec_of(steps=[{"setWeight": 50}]), status, cluster.observe(V1), at(50))
    return Case(
        spec=spec_of(),
        status=d.status,
        obs=cluster.observe(V1),
        now=at(60),
        phase=Phase.HEALTHY,
        events=["SpecCorrected"],
        requeue=None,
    )


def replica_ratio_scales_stable_after_canary() -> Case:
    status, cluster = healthy(router=False, replicas=10)
    spec = spec_of(image_template=V2, router=False, replicas=10)
    d = decide(spec, status, cluster.observe(V2), at(10))
    cluster.apply(d)
    return Case(
        spec=spec,
        status=d.status,
        obs=cluster.observe(V2),
        now=at(15),
        phase=Phase.PROGRESSING,
        events=["WeightSet"],
        fields={"canary_weight": 5},
        actions=[
            EnsureRevision(R2, 1, V2),
            PointStableService(STABLE_SVC, R1),
            PointCanaryService(CANARY_SVC, R2),
            SetWeight(R2, R1, 5),
            ScaleRevision(R1, 9),
        ],
    )


def replica_ratio_rollback_restores_stable_first() -> Case:
    analysis = ANALYSIS
    status, cluster, spec = canary(router=False, replicas=10, analysis=analysis)
    assert cluster.revisions[R1].desired_replicas == 9
    return Case(
        spec=spec,
        status=status,
        obs=cluster.observe(V2, measurements={"error-ratio": value(0.5)}),
        now=at(70),
        phase=Phase.DEGRADED,
        events=["AnalysisFailed", "RolledBack"],
        actions=[
            ScaleRevision(R1, 10),
            PointStableService(STABLE_SVC, R1),
            SetWeight(R1, R1, 0),
            PointCanaryService(CANARY_SVC, R1),
            ScaleRevision(R2, 0),
        ],
    )


def raw_dict_spec_accepted() -> Case:
    raw = spec_of().model_dump(by_alias=True, exclude_none=True)
    return Case(
        spec=raw,
        status=None,
        obs=obs(V1, revisions={R1: ready(4)}),
        now=at(0),
        phase=Phase.HEALTHY,
        events=["Initialized"],
        requeue=None,
    )


def healthy_stable_service_missing() -> Case:
    status, cluster = healthy()
    return Case(
        spec=spec_of(),
        status=status,
        obs=replace(cluster.observe(V1), stable_service_exists=False),
        now=at(30),
        phase=Phase.PROGRESSING,
        events=[],
        message="waiting for Service web-stable",
        requeue=5.0,
    )


def replaced_before_weight_set() -> Case:
    status, cluster = healthy()
    cluster.unready.add(R2)
    d = decide(spec_of(image_template=V2), status, cluster.observe(V2), at(10))
    cluster.apply(d)
    return Case(
        spec=spec_of(image_template=V3),
        status=d.status,
        obs=cluster.observe(V3),
        now=at(20),
        phase=Phase.PROGRESSING,
        events=["RevisionReplaced"],
        fields={"canary_revision": R3, "canary_weight": 0},
        actions=[
            ScaleRevision(R1, 4),
            EnsureRevision(R3, 1, V3),
            PointStableService(STABLE_SVC, R1),
            PointCanaryService(CANARY_SVC, R3),
            SetWeight(R3, R1, 0),
            DeleteRevision(R2),
        ],
    )


TWO_METRICS = {
    "interval": "1m",
    "metrics": [metric(count=3), metric("latency", success="result < 300.0", count=3)],
}


def inconclusive_metric_pauses_others_keep_measuring() -> Case:
    status, cluster, spec = canary(analysis=TWO_METRICS)
    return Case(
        spec=spec,
        status=status,
        obs=cluster.observe(V2, measurements={"error-ratio": value(None), "latency": value(100.0)}),
        now=at(70),
        phase=Phase.PAUSED,
        events=["AnalysisInconclusive", "AnalysisMeasured"],
        fields={"pause_reason": PauseReason.ANALYSIS_INCONCLUSIVE},
        requeue=60.0,
    )


def other_metric_fails_while_inconclusive() -> Case:
    status, cluster, spec = canary(analysis=TWO_METRICS)
    d = decide(
        spec,
        status,
        cluster.observe(V2, measurements={"error-ratio": value(None), "latency": value(100.0)}),
        at(70),
    )
    return Case(
        spec=spec,
        status=d.status,
        obs=cluster.observe(V2, measurements={"latency": value(900.0)}),
        now=at(130),
        phase=Phase.DEGRADED,
        events=["AnalysisFailed", "RolledBack"],
        fields={"rolled_back_revision": R2, "canary_weight": 0, "pause_reason": None},
    )


def promote_on_completion_wait_ignored() -> Case:
    steps = [{"setWeight": 10}, {"pause": {}}, {"setWeight": 100}]
    status, cluster, spec = canary(steps=steps)
    cluster.unready.add(R2)
    d = decide(
        spec, status, cluster.observe(V2, requests=(_req(RequestKind.PROMOTE_FULL, "f"),)), at(50)
    )
    cluster.apply(d)
    return Case(
        spec=spec,
        status=d.status,
        obs=cluster.observe(
            V2, requests=(_req(RequestKind.PROMOTE_FULL, "f"), _req(RequestKind.PROMOTE, "p"))
        ),
        now=at(60),
        phase=Phase.PROGRESSING,
        events=["RequestIgnored"],
        fields={"current_step_index": 3},
    )


def abort_during_completion_wait() -> Case:
    steps = [{"setWeight": 10}, {"pause": {}}, {"setWeight": 100}]
    status, cluster, spec = canary(steps=steps)
    cluster.unready.add(R2)
    d = decide(
        spec, status, cluster.observe(V2, requests=(_req(RequestKind.PROMOTE_FULL, "f"),)), at(50)
    )
    cluster.apply(d)
    return Case(
        spec=spec,
        status=d.status,
        obs=cluster.observe(
            V2, requests=(_req(RequestKind.PROMOTE_FULL, "f"), _req(RequestKind.ABORT, "a"))
        ),
        now=at(60),
        phase=Phase.DEGRADED,
        events=["Aborted"],
        fields={"stable_revision": R1, "rolled_back_revision": R2, "aborted": True},
    )


def promote_skips_weight_step() -> Case:
    status, cluster = healthy()
    cluster.unready.add(R2)
    spec = spec_of(image_template=V2)
    d = decide(spec, status, cluster.observe(V2), at(10))
    cluster.apply(d)
    return Case(
        spec=spec,
        status=d.status,
        obs=cluster.observe(V2, requests=(_req(RequestKind.PROMOTE, "p"),)),
        now=at(20),
        phase=Phase.PROGRESSING,
        events=["Promoted"],
        fields={"current_step_index": 1, "canary_weight": 0},
        contains=[EnsureRevision(R2, 1, V2), SetWeight(R2, R1, 0)],
    )


def new_revision_while_spec_paused() -> Case:
    status, cluster = healthy()
    d = decide(spec_of(paused=True), status, cluster.observe(V1), at(5))
    return Case(
        spec=spec_of(image_template=V2, paused=True),
        status=d.status,
        obs=cluster.observe(V2),
        now=at(10),
        phase=Phase.PAUSED,
        events=["RevisionDetected"],
        fields={"canary_revision": R2, "canary_weight": 0, "current_step_index": 0},
        contains=[EnsureRevision(R2, 1, V2), SetWeight(R2, R1, 0)],
        requeue=None,
    )


def istio_router_same_semantics() -> Case:
    status, cluster = healthy()
    raw = spec_of(image_template=V2).model_dump(by_alias=True, exclude_none=True)
    raw["strategy"]["canary"]["trafficRouting"] = {"istio": {"virtualService": {"name": "web"}}}
    d = decide(raw, status, cluster.observe(V2), at(10))
    cluster.apply(d)
    return Case(
        spec=raw,
        status=d.status,
        obs=cluster.observe(V2),
        now=at(15),
        phase=Phase.PROGRESSING,
        events=["WeightSet"],
        fields={"canary_weight": 5},
        contains=[SetWeight(R2, R1, 5), ScaleRevision(R1, 4)],
    )


def _req(kind: RequestKind, id_: str) -> ManualRequest:
    return ManualRequest(kind, id_)


CASES: list[Callable[[], Case]] = [
    first_observation_ready,
    first_observation_not_ready,
    first_observation_becomes_ready,
    first_observation_deadline,
    healthy_is_idle,
    healthy_scaled_up_waits,
    new_revision_starts_canary,
    canary_ready_sets_weight,
    weight_verified_advances_without_analysis,
    router_weight_unknown_waits,
    canary_service_missing_waits,
    new_revision_replaces_canary,
    template_back_to_stable_cancels,
    analysis_starts_when_weight_verified,
    measurement_pass_advances,
    measurement_not_due_ignored,
    fail_rolls_back,
    fail_within_limit_continues,
    inconclusive_pauses,
    provider_error_within_limit,
    provider_errors_beyond_limit_pause,
    fail_beats_pending_promote,
    timed_pause_entered,
    timed_pause_expires,
    timed_pause_not_yet,
    indefinite_pause_waits,
    indefinite_pause_promoted,
    spec_paused_holds,
    spec_unpaused_resumes,
    healthy_spec_paused,
    analysis_step_blocks,
    analysis_step_passes,
    abort_rolls_back,
    abort_when_healthy_ignored,
    request_handled_once,
    promote_full_waits_for_full_scale,
    promote_full_completes_when_ready,
    retry_after_rollback,
    rolled_back_not_retried,
    rolled_back_spec_edit_skipped,
    rolled_back_then_new_template,
    inconclusive_retry_restarts_analysis,
    inconclusive_promote_skips_step,
    retry_with_nothing_to_retry,
    completion_promotes,
    retired_removed_after_delay,
    retired_kept_before_delay,
    zero_scale_down_delay,
    canary_deadline_exceeded,
    deadline_then_progress,
    invalid_raw_spec,
    invalid_cross_field_spec,
    invalid_spec_same_message_quiet,
    spec_corrected,
    replica_ratio_scales_stable_after_canary,
    replica_ratio_rollback_restores_stable_first,
    raw_dict_spec_accepted,
    healthy_stable_service_missing,
    replaced_before_weight_set,
    inconclusive_metric_pauses_others_keep_measuring,
    other_metric_fails_while_inconclusive,
    promote_on_completion_wait_ignored,
    abort_during_completion_wait,
    promote_skips_weight_step,
    new_revision_while_spec_paused,
    istio_router_same_semantics,
]


def _check(case: Case, decision: Decision) -> None:
    status = decision.status
    assert status.phase is case.phase, status.message
    # The step mechanics' events; the decision's own events are checked in
    # test_core_rollout_decision.py.
    assert [r for r in reasons(decision) if r != R.DECISION_CHANGED.name] == case.events
    for name, expected in case.fields.items():
        assert getattr(status, name) == expected, name
    if case.actions is not None:
        assert list(decision.actions) == case.actions
    for action in case.contains:
        assert action in decision.actions
    if case.requeue != "any":
        assert decision.requeue_after == case.requeue
    if case.message is not None:
        assert case.message in status.message
    assert status.observed_generation == case.obs.generation
    _no_missing_values(decision)


def _no_missing_values(decision: Decision) -> None:
    """Every value a message template names was there: no message says ``None``."""
    texts = [e.message for e in decision.events] + [decision.status.message]
    texts += [c.message for c in decision.status.conditions]
    for text in texts:
        assert "None" not in text, text


@pytest.mark.parametrize("make", [pytest.param(c, id=c.__name__.replace("_", "-")) for c in CASES])
def test_transition(make: Callable[[], Case]) -> None:
    case = make()
    _check(case, decide(case.spec, case.status, case.obs, case.now))


@pytest.mark.parametrize("make", [pytest.param(c, id=c.__name__.replace("_", "-")) for c in CASES])
def test_deciding_again_is_quiet(make: Callable[[], Case]) -> None:
    """Idempotence: the same observations, the same ``now`` and the returned status give the
    same status (so the runtime skips the patch), no events, and the same actions (idempotent
    re-assertions of the desired state)."""
    case = make()
    first = decide(case.spec, case.status, case.obs, case.now)
    second = decide(case.spec, first.status, case.obs, case.now)
    assert second.status == first.status
    assert second.events == ()
    assert second.actions == first.actions
    assert second.requeue_after == first.requeue_after


# ------------------------------------------------------------------ conditions and events


def test_ready_condition_tracks_phase() -> None:
    status, cluster = healthy()
    ready_cond = status.condition(ConditionType.READY)
    assert ready_cond is not None
    assert ready_cond.status is ConditionStatus.TRUE
    spec = spec_of(image_template=V2)
    d = decide(spec, status, cluster.observe(V2), at(10))
    not_ready = d.status.condition(ConditionType.READY)
    assert not_ready is not None
    assert (not_ready.status, not_ready.reason) == (ConditionStatus.FALSE, "Progressing")
    assert not_ready.last_transition_time == at(10)
    progressing = d.status.condition(ConditionType.PROGRESSING)
    assert progressing is not None
    assert progressing.status is ConditionStatus.TRUE


def test_degraded_condition_after_rollback_names_the_cause() -> None:
    status, _, _ = rolled_back()
    degraded = status.condition(ConditionType.DEGRADED)
    assert degraded is not None
    assert (degraded.status, degraded.reason) == (ConditionStatus.TRUE, "RolledBack")
    assert "error-ratio = 0.900" in status.message


def test_invalid_spec_condition_set_and_cleared() -> None:
    status, cluster = healthy()
    bad = decide(spec_of(steps=[{"setWeight": 50}]), status, cluster.observe(V1), at(5))
    assert bad.status.is_true(ConditionType.INVALID_SPEC)
    good = decide(spec_of(), bad.status, cluster.observe(V1), at(6))
    cond = good.status.condition(ConditionType.INVALID_SPEC)
    assert cond is not None
    assert (cond.status, cond.reason) == (ConditionStatus.FALSE, "Valid")


def test_event_messages_name_step_weight_metric_and_threshold() -> None:
    status, cluster, spec = canary(analysis=ANALYSIS)
    d = decide(spec, status, cluster.observe(V2, measurements={"error-ratio": value(0.2)}), at(70))
    failed = d.events[0]
    assert failed.type.value == "Warning"
    assert failed.message == (
        "step 1/3: metric error-ratio = 0.200 failed successCondition 'result < 0.05' "
        "(failures 1 > failureLimit 0)"
    )
    weight = decide(spec_of(image_template=V2), *_ready_for_weight())
    assert weight.events[0].message == "step 1/3: canary weight set to 5% (stable 95%)"


def test_replica_ratio_weight_message_tells_the_achieved_share() -> None:
    status, cluster = healthy(router=False, replicas=10)
    spec = spec_of(image_template=V2, router=False, replicas=10)
    d = decide(spec, status, cluster.observe(V2), at(10))
    cluster.apply(d)
    d = decide(spec, d.status, cluster.observe(V2), at(15))
    assert d.events[0].message == (
        "step 1/3: canary weight set to 5% (replica-ratio: 1 canary and 9 stable pods, "
        "about 10% to the canary)"
    )


def test_step_advanced_message_at_last_step() -> None:
    status, cluster = healthy()
    spec = spec_of(image_template=V2, steps=[{"setWeight": 100}])
    _, _, decisions = drive(spec, status, cluster, V2, at(10))
    messages = [e.message for d in decisions for e in d.events if e.reason.name == "StepAdvanced"]
    assert messages == ["step 1/1 (setWeight 100%) complete; all steps done"]


def _ready_for_weight() -> tuple[RolloutStatus, Observations, datetime]:
    status, cluster = healthy()
    d = decide(spec_of(image_template=V2), status, cluster.observe(V2), at(10))
    cluster.apply(d)
    return d.status, cluster.observe(V2), at(11)


def test_rollback_actions_put_traffic_first_then_scale_canary_down() -> None:
    status, cluster, spec = canary(analysis=ANALYSIS)
    d = decide(spec, status, cluster.observe(V2, measurements={"error-ratio": value(0.2)}), at(70))
    kinds = [type(a) for a in d.actions]
    assert kinds.index(SetWeight) < kinds.index(PointCanaryService)
    assert d.actions[-1] == ScaleRevision(R2, 0)
    weights = [a.weight for a in d.actions if isinstance(a, SetWeight)]
    assert weights == [0]


def test_measurement_recorded_at_decision_time_with_value_and_verdict() -> None:
    status, cluster, spec = canary(analysis={**ANALYSIS, "failureLimit": 2})
    d = decide(
        spec, status, cluster.observe(V2, measurements={"error-ratio": value(0.3, at(0))}), at(70)
    )
    assert d.status.analysis is not None
    run = d.status.analysis.metric("error-ratio")
    assert run is not None
    record = run.measurements[-1]
    assert (record.value, record.at, record.verdict.value) == (0.3, at(70), "Fail")
    assert run.failed == 1


def test_template_back_to_a_rolled_back_revision_drops_the_running_canary() -> None:
    """A canary runs while the template goes back to a revision rolled back earlier: the
    canary is dropped (stable serves) and the rolled-back revision is not retried; deciding
    again changes nothing (a hypothesis property found the second pass restarting it)."""
    spec = RolloutSpec.model_validate(
        {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "app:v3"}]},
            },
            "strategy": {
                "canary": {
                    "steps": [{"setWeight": 5}, {"setWeight": 25}, {"setWeight": 100}],
                    "stableService": "web-stable",
                    "canaryService": "web-canary",
                }
            },
        }
    )
    rev = revision_of(spec.template)
    status = RolloutStatus(
        stable_revision="4f07e42081", canary_revision="aa110f6fee", rolled_back_revision=rev
    )
    obs = Observations(
        template_hash=rev,
        generation=1,
        requests=(ManualRequest(RequestKind.ABORT, "a"),),
    )
    now = datetime(2026, 1, 1, tzinfo=UTC)
    first = decide(spec, status, obs, now)
    assert first.status.canary_revision is None
    assert first.status.rolled_back_revision == rev
    assert first.status.phase is Phase.DEGRADED
    skipped = [e for e in first.events if e.reason is R.REVISION_SKIPPED]
    assert skipped
    assert "canary aa110f6fee dropped" in skipped[0].message
    again = decide(spec, first.status, obs, now)
    assert again.status == first.status
    assert again.events == ()


def test_completion_is_healthy_once_the_router_shows_it() -> None:
    """The status records the completion before the router is told (write-ahead); Ready
    becomes True on the pass that observes the canary's share gone, with no new event."""
    case = completion_promotes()
    decision = decide(case.spec, case.status, case.obs, case.now)
    assert decision.status.phase is Phase.PROGRESSING
    assert not decision.status.is_true(ConditionType.READY)
    cluster = Cluster()
    cluster.revisions = dict(case.obs.revisions)
    cluster.weight = case.obs.actual_weight or 0
    cluster.apply(decision)
    after = decide(case.spec, decision.status, cluster.observe(V2), at(21))
    assert after.status.phase is Phase.HEALTHY
    assert after.status.is_true(ConditionType.READY)
    assert reasons(after) == []


def test_a_retry_restarts_the_step_analysis_from_now() -> None:
    case = inconclusive_retry_restarts_analysis()
    d = decide(case.spec, case.status, case.obs, case.now)
    [event] = [e for e in d.events if e.reason is not R.DECISION_CHANGED]
    assert event.message == "step 1/3: analysis restarted by request r"
    assert d.status.analysis is not None
    assert (d.status.analysis.step_index, d.status.analysis.started_at) == (0, case.now)
    assert d.status.analysis.revision == d.status.canary_revision
    assert all(m.verdict is None and not m.measurements for m in d.status.analysis.metrics)


@pytest.mark.parametrize(
    ("make", "conditions"),
    [
        pytest.param(
            healthy_is_idle,
            {
                "Ready": ("True", "Healthy"),
                "Available": ("True", "MinimumReplicasAvailable"),
                "Progressing": ("False", "Completed"),
                "Paused": ("False", "NotPaused"),
                "Degraded": ("False", "NotDegraded"),
                "InvalidSpec": ("False", "Valid"),
            },
            id="healthy-is-idle",
        ),
        pytest.param(
            first_observation_not_ready,
            {
                "Ready": ("False", "Initializing"),
                "Available": ("False", "MinimumReplicasUnavailable"),
                "Progressing": ("True", "Progressing"),
                "Paused": ("False", "NotPaused"),
                "Degraded": ("False", "NotDegraded"),
                "InvalidSpec": ("False", "Valid"),
            },
            id="first-observation-not-ready",
        ),
        pytest.param(
            first_observation_deadline,
            {
                "Ready": ("False", "Initializing"),
                "Available": ("False", "MinimumReplicasUnavailable"),
                "Progressing": ("False", "ProgressDeadlineExceeded"),
                "Paused": ("False", "NotPaused"),
                "Degraded": ("True", "ProgressDeadlineExceeded"),
                "InvalidSpec": ("False", "Valid"),
            },
            id="first-observation-deadline",
        ),
        pytest.param(
            new_revision_starts_canary,
            {
                "Ready": ("False", "Progressing"),
                "Available": ("True", "MinimumReplicasAvailable"),
                "Progressing": ("True", "Progressing"),
                "Paused": ("False", "NotPaused"),
                "Degraded": ("False", "NotDegraded"),
                "InvalidSpec": ("False", "Valid"),
            },
            id="new-revision-starts-canary",
        ),
        pytest.param(
            fail_rolls_back,
            {
                "Ready": ("False", "Degraded"),
                "Available": ("True", "MinimumReplicasAvailable"),
                "Progressing": ("False", "RolledBack"),
                "Paused": ("False", "NotPaused"),
                "Degraded": ("True", "RolledBack"),
                "InvalidSpec": ("False", "Valid"),
            },
            id="fail-rolls-back",
        ),
        pytest.param(
            inconclusive_pauses,
            {
                "Ready": ("False", "Paused"),
                "Available": ("True", "MinimumReplicasAvailable"),
                "Progressing": ("Unknown", "Paused"),
                "Paused": ("True", "AnalysisInconclusive"),
                "Degraded": ("False", "NotDegraded"),
                "InvalidSpec": ("False", "Valid"),
            },
            id="inconclusive-pauses",
        ),
        pytest.param(
            timed_pause_entered,
            {
                "Ready": ("False", "Paused"),
                "Available": ("True", "MinimumReplicasAvailable"),
                "Progressing": ("Unknown", "Paused"),
                "Paused": ("True", "PauseStep"),
                "Degraded": ("False", "NotDegraded"),
                "InvalidSpec": ("False", "Valid"),
            },
            id="timed-pause-entered",
        ),
        pytest.param(
            spec_paused_holds,
            {
                "Ready": ("False", "Paused"),
                "Available": ("True", "MinimumReplicasAvailable"),
                "Progressing": ("Unknown", "Paused"),
                "Paused": ("True", "SpecPaused"),
                "Degraded": ("False", "NotDegraded"),
                "InvalidSpec": ("False", "Valid"),
            },
            id="spec-paused-holds",
        ),
        pytest.param(
            abort_rolls_back,
            {
                "Ready": ("False", "Degraded"),
                "Available": ("True", "MinimumReplicasAvailable"),
                "Progressing": ("False", "Aborted"),
                "Paused": ("False", "NotPaused"),
                "Degraded": ("True", "Aborted"),
                "InvalidSpec": ("False", "Valid"),
            },
            id="abort-rolls-back",
        ),
        pytest.param(
            canary_deadline_exceeded,
            {
                "Ready": ("False", "Degraded"),
                "Available": ("True", "MinimumReplicasAvailable"),
                "Progressing": ("False", "ProgressDeadlineExceeded"),
                "Paused": ("False", "NotPaused"),
                "Degraded": ("True", "ProgressDeadlineExceeded"),
                "InvalidSpec": ("False", "Valid"),
            },
            id="canary-deadline-exceeded",
        ),
        pytest.param(
            invalid_raw_spec,
            {
                "Ready": ("False", "InvalidSpec"),
                "Available": ("True", "MinimumReplicasAvailable"),
                "Progressing": ("False", "Completed"),
                "Paused": ("False", "NotPaused"),
                "Degraded": ("True", "InvalidSpec"),
                "InvalidSpec": ("True", "InvalidSpec"),
            },
            id="invalid-raw-spec",
        ),
        pytest.param(
            replica_ratio_rollback_restores_stable_first,
            {
                "Ready": ("False", "Degraded"),
                "Available": ("False", "MinimumReplicasUnavailable"),
                "Progressing": ("False", "RolledBack"),
                "Paused": ("False", "NotPaused"),
                "Degraded": ("True", "RolledBack"),
                "InvalidSpec": ("False", "Valid"),
            },
            id="replica-ratio-rollback-restores-stable-first",
        ),
    ],
)
def test_conditions_name_the_state(
    make: Callable[[], Case], conditions: dict[str, tuple[str, str]]
) -> None:
    """The standard conditions (what ``kubectl wait``, Argo CD and dashboards read) and their
    reasons, state by state."""
    case = make()
    status = decide(case.spec, case.status, case.obs, case.now).status
    shown = {
        c.type.value: (c.status.value, c.reason)
        for c in status.conditions
        if c.type.value != "QueriesVerified"
    }
    assert shown == conditions


@pytest.mark.parametrize(
    ("edited", "repaired"),
    [
        pytest.param(
            {
                "stable_revision": R1,
                "canary_revision": R1,
                "current_step_index": 1,
                "canary_weight": 5,
            },
            {"canary_revision": None, "current_step_index": None, "canary_weight": 0},
            id="canary-is-the-stable",
        ),
        pytest.param(
            {
                "stable_revision": R1,
                "current_step_index": 2,
                "canary_weight": 30,
                "pause_reason": PauseReason.PAUSE_STEP,
            },
            {"current_step_index": None, "canary_weight": 0, "pause_reason": None},
            id="no-canary-keeps-no-step-weight-or-pause",
        ),
        pytest.param(
            {"stable_revision": R1, "canary_revision": R2, "current_step_index": 99},
            {"current_step_index": 3},
            id="step-clamped-to-the-steps",
        ),
        pytest.param(
            {"stable_revision": R1, "canary_revision": R2, "canary_weight": 150},
            {"current_step_index": 0, "canary_weight": 100},
            id="weight-clamped-and-step-defaulted",
        ),
        pytest.param(
            {"stable_revision": R1, "pause_reason": PauseReason.OVERRIDE_HOLD},
            {"pause_reason": None},
            id="a-hold-is-never-remembered",
        ),
        pytest.param({"stable_revision": R1}, {}, id="consistent-left-alone"),
    ],
)
def test_a_hand_edited_status_is_repaired(edited: dict[str, Any], repaired: dict[str, Any]) -> None:
    status = RolloutStatus(**edited)
    fixed = sanitize(status, 3)
    for name, expected in repaired.items():
        assert getattr(fixed, name) == expected, name
    if not repaired:
        assert fixed is status


def test_a_route_not_accepted_is_a_false_condition_and_one_warning() -> None:
    status, cluster = healthy()
    rejected = "HTTPRoute ns/app is not accepted: a parent Gateway reports it False"
    seen = replace(cluster.observe(V1), route_rejected=rejected)
    first = decide(spec_of(), status, seen, at(10))
    cond = first.status.condition(ConditionType.ROUTE_ACCEPTED)
    assert cond is not None
    assert (cond.status, cond.reason) == (ConditionStatus.FALSE, "RouteNotAccepted")
    assert rejected in cond.message
    assert reasons(first).count("RouteNotAccepted") == 1
    again = decide(spec_of(), first.status, seen, at(20))
    assert "RouteNotAccepted" not in reasons(again), "reported once while it lasts"
    cleared = decide(spec_of(), again.status, cluster.observe(V1), at(30))
    assert cleared.status.condition(ConditionType.ROUTE_ACCEPTED) is None
