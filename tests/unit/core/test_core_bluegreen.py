"""Blue-green (``strategy.blueGreen``): the preview beside the active revision, the
pre-promotion analysis, the wait for promotion, the switch of the active Service's selector in
one write, abort before the switch, and the previous revision's removal. Same table shape as
test_core_rollout: state in, one ``decide``, state out; and deciding again is quiet."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from rollwise.core.observations import ManualRequest, RequestKind, RevisionState
from rollwise.core.phases import Phase
from rollwise.core.rollout.actions import (
    DeleteRevision,
    EnsureRevision,
    PointCanaryService,
    PointStableService,
    ScaleRevision,
)
from rollwise.core.rollout.canary import decide, rollout_metrics
from rollwise.core.rollout.status import ConditionType, PauseReason, RolloutStatus
from rollwise.core.spec import RolloutSpec, blue_green_steps
from rollwise.core.validation import (
    MSG_ONE_STRATEGY,
    MSG_POST_PROMOTION_METRICS,
    MSG_PRE_PROMOTION_METRICS,
    MSG_PREVIEW_SERVICE_DIFFERS,
    load_rollout_spec,
)
from tests.unit.core.rollout_builders import (
    R1,
    R2,
    V1,
    V2,
    Cluster,
    at,
    drive,
    metric,
    ready,
    reasons,
    value,
)
from tests.unit.core.test_core_rollout import Case, _check

ACTIVE = "web-active"
PREVIEW = "web-preview"


def bg_raw(
    template: dict[str, Any] = V1, *, replicas: int = 4, **blue_green: Any
) -> dict[str, Any]:
    strategy: dict[str, Any] = {"activeService": ACTIVE, "previewService": PREVIEW}
    strategy.update(blue_green)
    return {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": "web"}},
        "template": template,
        "strategy": {"blueGreen": {k: v for k, v in strategy.items() if v is not None}},
    }


def bg(template: dict[str, Any] = V1, **blue_green: Any) -> RolloutSpec:
    return RolloutSpec.model_validate(bg_raw(template, **blue_green))


def active(**blue_green: Any) -> tuple[RolloutStatus, Cluster]:
    """R1 active at 4 pods, Healthy."""
    cluster = Cluster(router=False)
    status, _, _ = drive(bg(V1, **blue_green), None, cluster, V1, at(0))
    assert status is not None
    assert status.phase is Phase.HEALTHY
    return status, cluster


def preview_created(**blue_green: Any) -> tuple[RolloutStatus, Cluster, RolloutSpec]:
    """R2 detected: its preview Deployment asked for, not yet ready."""
    status, cluster = active(**blue_green)
    spec = bg(V2, **blue_green)
    cluster.unready.add(R2)
    d = decide(spec, status, cluster.observe(V2), at(10))
    cluster.apply(d)
    return d.status, cluster, spec


def preview_up(**blue_green: Any) -> tuple[RolloutStatus, Cluster, RolloutSpec]:
    """The preview's pods became available (not yet decided upon)."""
    status, cluster, spec = preview_created(**blue_green)
    cluster.unready.discard(R2)
    cluster.revisions[R2] = cluster_ready(cluster, R2)
    return status, cluster, spec


def cluster_ready(cluster: Cluster, revision: str) -> RevisionState:
    return ready(cluster.revisions[revision].desired_replicas)


def awaiting(**blue_green: Any) -> tuple[RolloutStatus, Cluster, RolloutSpec]:
    blue_green.setdefault("autoPromotionEnabled", False)
    status, cluster, spec = preview_up(**blue_green)
    status2, _, _ = drive(spec, status, cluster, V2, at(20))
    assert status2 is not None
    assert status2.pause_reason is PauseReason.AWAITING_PROMOTION
    return status2, cluster, spec


def switched(**blue_green: Any) -> tuple[RolloutStatus, Cluster, RolloutSpec]:
    status, cluster, spec = preview_up(**blue_green)
    status2, found, _ = drive(spec, status, cluster, V2, at(20))
    assert status2 is not None
    assert "ActiveSwitched" in found
    return status2, cluster, spec


# ------------------------------------------------------------------ cases


def new_revision_runs_a_preview() -> Case:
    status, cluster = active(previewReplicaCount=1)
    cluster.unready.add(R2)
    return Case(
        spec=bg(V2, previewReplicaCount=1),
        status=status,
        obs=cluster.observe(V2),
        now=at(10),
        phase=Phase.PROGRESSING,
        events=["RevisionDetected"],
        fields={"stable_revision": R1, "canary_revision": R2, "canary_weight": 0},
        contains=[
            EnsureRevision(R2, 1, V2),
            ScaleRevision(R1, 4),
            PointStableService(ACTIVE, R1),
            PointCanaryService(PREVIEW, R2),
        ],
    )


def preview_not_ready_waits() -> Case:
    status, cluster, spec = preview_created(previewReplicaCount=2)
    return Case(
        spec=spec,
        status=status,
        obs=cluster.observe(V2),
        now=at(15),
        phase=Phase.PROGRESSING,
        events=[],
        message="preview",
        contains=[EnsureRevision(R2, 2, V2), PointStableService(ACTIVE, R1)],
        requeue=5.0,
    )


def preview_ready_scales_up_for_the_switch() -> Case:
    status, cluster, spec = preview_up(previewReplicaCount=1)
    return Case(
        spec=spec,
        status=status,
        obs=cluster.observe(V2),
        now=at(20),
        phase=Phase.PROGRESSING,
        events=["PreviewReady"],
        contains=[EnsureRevision(R2, 4, V2), PointStableService(ACTIVE, R1)],
    )


def full_preview_switches_the_active_service() -> Case:
    status, cluster, spec = preview_up(previewReplicaCount=1)
    d = decide(spec, status, cluster.observe(V2), at(20))
    cluster.apply(d)
    return Case(
        spec=spec,
        status=d.status,
        obs=cluster.observe(V2),
        now=at(25),
        phase=Phase.HEALTHY,
        events=["ActiveSwitched", "StepAdvanced", "RolloutCompleted"],
        fields={"stable_revision": R2, "canary_revision": None},
        contains=[PointStableService(ACTIVE, R2), PointCanaryService(PREVIEW, R2)],
    )


def awaiting_promotion_is_paused() -> Case:
    status, cluster, spec = preview_up(autoPromotionEnabled=False)
    return Case(
        spec=spec,
        status=status,
        obs=cluster.observe(V2),
        now=at(20),
        phase=Phase.PAUSED,
        events=["PreviewReady", "AwaitingPromotion"],
        fields={"pause_reason": PauseReason.AWAITING_PROMOTION, "stable_revision": R1},
        message="awaits promotion",
        contains=[PointStableService(ACTIVE, R1), EnsureRevision(R2, 4, V2)],
    )


def promote_scales_the_preview_to_full() -> Case:
    status, cluster, spec = awaiting(previewReplicaCount=1)
    return Case(
        spec=spec,
        status=status,
        obs=cluster.observe(V2, requests=_requests(RequestKind.PROMOTE, "p1")),
        now=at(60),
        phase=Phase.PROGRESSING,
        events=["Promoted"],
        fields={"stable_revision": R1, "pause_reason": None},
        contains=[EnsureRevision(R2, 4, V2), PointStableService(ACTIVE, R1)],
    )


def abort_drops_the_preview() -> Case:
    status, cluster, spec = awaiting()
    return Case(
        spec=spec,
        status=status,
        obs=cluster.observe(V2, requests=_requests(RequestKind.ABORT, "a1")),
        now=at(60),
        phase=Phase.DEGRADED,
        events=["Aborted"],
        fields={"stable_revision": R1, "canary_revision": None, "rolled_back_revision": R2},
        contains=[
            ScaleRevision(R2, 0),
            PointStableService(ACTIVE, R1),
            PointCanaryService(PREVIEW, R1),
        ],
    )


def auto_promotion_seconds_waits() -> Case:
    status, cluster, spec = preview_up(autoPromotionSeconds=60)
    return Case(
        spec=spec,
        status=status,
        obs=cluster.observe(V2),
        now=at(20),
        phase=Phase.PAUSED,
        events=["PreviewReady", "AwaitingPromotion"],
        fields={"pause_reason": PauseReason.AWAITING_PROMOTION},
        requeue=60.0,
    )


def auto_promotion_seconds_expire() -> Case:
    status, cluster, spec = preview_up(autoPromotionSeconds=60)
    status2, _, _ = drive(spec, status, cluster, V2, at(20))
    return Case(
        spec=spec,
        status=status2,
        obs=cluster.observe(V2),
        now=at(80),
        phase=Phase.HEALTHY,
        events=[
            "PauseExpired",
            "StepAdvanced",
            "ActiveSwitched",
            "StepAdvanced",
            "RolloutCompleted",
        ],
        fields={"stable_revision": R2},
        contains=[PointStableService(ACTIVE, R2)],
    )


PRE = {"interval": "30s", "metrics": [{k: v for k, v in metric().items() if k != "count"}]}
POST = {"interval": "30s", "metrics": [{k: v for k, v in metric("after").items() if k != "count"}]}
SWITCH = {"setWeight": 100}


def pre_promotion_analysis_measures_the_preview() -> Case:
    status, cluster, spec = preview_up(prePromotionAnalysis=PRE)
    status2, _, _ = drive(spec, status, cluster, V2, at(20))
    return Case(
        spec=spec,
        status=status2,
        obs=cluster.observe(V2, measurements={"error-ratio": value(0.01, at(50))}),
        now=at(50),
        phase=Phase.HEALTHY,
        events=[
            "AnalysisMeasured",
            "AnalysisPassed",
            "StepAdvanced",
            "ActiveSwitched",
            "StepAdvanced",
            "RolloutCompleted",
        ],
        fields={"stable_revision": R2},
        contains=[PointStableService(ACTIVE, R2)],
    )


def pre_promotion_analysis_failure_keeps_active() -> Case:
    status, cluster, spec = preview_up(prePromotionAnalysis=PRE)
    status2, _, _ = drive(spec, status, cluster, V2, at(20))
    return Case(
        spec=spec,
        status=status2,
        obs=cluster.observe(V2, measurements={"error-ratio": value(0.9, at(50))}),
        now=at(50),
        phase=Phase.DEGRADED,
        events=["AnalysisFailed", "RolledBack"],
        fields={"stable_revision": R1, "rolled_back_revision": R2},
        contains=[PointStableService(ACTIVE, R1), ScaleRevision(R2, 0)],
    )


def post_promotion(**blue_green: Any) -> tuple[RolloutStatus, Cluster, RolloutSpec]:
    """Switched to R2; its postPromotionAnalysis runs, R1 still at full size."""
    status, cluster, spec = preview_up(postPromotionAnalysis=POST, **blue_green)
    status2, found, _ = drive(spec, status, cluster, V2, at(20))
    assert status2 is not None
    assert "ActiveSwitched" in found
    return status2, cluster, spec


def switch_then_post_promotion_analysis() -> Case:
    status, cluster, spec = preview_up(postPromotionAnalysis=POST, previewReplicaCount=1)
    d = decide(spec, status, cluster.observe(V2), at(20))
    cluster.apply(d)
    return Case(
        spec=spec,
        status=d.status,
        obs=cluster.observe(V2),
        now=at(25),
        phase=Phase.PROGRESSING,
        events=["ActiveSwitched", "StepAdvanced"],
        fields={"stable_revision": R1, "canary_revision": R2, "canary_weight": 100},
        contains=[PointStableService(ACTIVE, R2), ScaleRevision(R1, 4), EnsureRevision(R2, 4, V2)],
    )


def post_promotion_analysis_passes() -> Case:
    status, cluster, spec = post_promotion()
    return Case(
        spec=spec,
        status=status,
        obs=cluster.observe(V2, measurements={"after": value(0.01, at(50))}),
        now=at(50),
        phase=Phase.HEALTHY,
        events=["AnalysisMeasured", "AnalysisPassed", "StepAdvanced", "RolloutCompleted"],
        fields={"stable_revision": R2, "canary_revision": None},
        contains=[PointStableService(ACTIVE, R2)],
    )


def post_promotion_failure_switches_back() -> Case:
    status, cluster, spec = post_promotion()
    return Case(
        spec=spec,
        status=status,
        obs=cluster.observe(V2, measurements={"after": value(0.9, at(50))}),
        now=at(50),
        phase=Phase.DEGRADED,
        events=["AnalysisFailed", "RolledBack", "SwitchedBack"],
        fields={"stable_revision": R1, "canary_revision": None, "rolled_back_revision": R2},
        actions=None,
        contains=[PointStableService(ACTIVE, R1), ScaleRevision(R2, 0)],
    )


def abort_after_the_switch_switches_back() -> Case:
    status, cluster, spec = post_promotion()
    return Case(
        spec=spec,
        status=status,
        obs=cluster.observe(V2, requests=_requests(RequestKind.ABORT, "a2")),
        now=at(40),
        phase=Phase.DEGRADED,
        events=["Aborted", "SwitchedBack"],
        fields={"stable_revision": R1, "rolled_back_revision": R2, "aborted": True},
        contains=[PointStableService(ACTIVE, R1), ScaleRevision(R2, 0)],
    )


def previous_revision_runs_for_the_delay() -> Case:
    status, cluster, spec = switched(scaleDownDelaySeconds=30)
    return Case(
        spec=spec,
        status=status,
        obs=cluster.observe(V2),
        now=at(40),
        phase=Phase.HEALTHY,
        events=[],
        fields={"stable_revision": R2},
        actions=None,
        requeue=10.0,
    )


def previous_revision_removed_after_the_delay() -> Case:
    status, cluster, spec = switched(scaleDownDelaySeconds=30)
    return Case(
        spec=spec,
        status=status,
        obs=cluster.observe(V2),
        now=at(51),
        phase=Phase.HEALTHY,
        events=["RevisionRetired"],
        contains=[DeleteRevision(R1), PointStableService(ACTIVE, R2)],
    )


def _requests(kind: RequestKind, id_: str) -> tuple[ManualRequest, ...]:
    return (ManualRequest(kind, id_),)


CASES = [
    new_revision_runs_a_preview,
    preview_not_ready_waits,
    preview_ready_scales_up_for_the_switch,
    full_preview_switches_the_active_service,
    awaiting_promotion_is_paused,
    promote_scales_the_preview_to_full,
    abort_drops_the_preview,
    auto_promotion_seconds_waits,
    auto_promotion_seconds_expire,
    pre_promotion_analysis_measures_the_preview,
    pre_promotion_analysis_failure_keeps_active,
    previous_revision_runs_for_the_delay,
    previous_revision_removed_after_the_delay,
    switch_then_post_promotion_analysis,
    post_promotion_analysis_passes,
    post_promotion_failure_switches_back,
    abort_after_the_switch_switches_back,
]


@pytest.mark.parametrize("make", [pytest.param(c, id=c.__name__.replace("_", "-")) for c in CASES])
def test_transition(make: Callable[[], Case]) -> None:
    case = make()
    _check(case, decide(case.spec, case.status, case.obs, case.now))


@pytest.mark.parametrize("make", [pytest.param(c, id=c.__name__.replace("_", "-")) for c in CASES])
def test_deciding_again_is_quiet(make: Callable[[], Case]) -> None:
    case = make()
    first = decide(case.spec, case.status, case.obs, case.now)
    second = decide(case.spec, first.status, case.obs, case.now)
    assert second.status == first.status
    assert second.events == ()
    assert second.actions == first.actions


def test_status_blue_green_tracks_active_preview_and_switch() -> None:
    status, cluster, spec = preview_created(previewReplicaCount=1)
    recorded = status.blue_green
    assert recorded is not None
    assert (recorded.active_revision, recorded.preview_revision) == (R1, R2)
    assert recorded.preview_ready_at is None
    cluster.unready.discard(R2)
    cluster.revisions[R2] = cluster_ready(cluster, R2)
    final, found, _ = drive(spec, status, cluster, V2, at(20))
    assert final is not None
    assert final.blue_green is not None
    assert found.count("PreviewReady") == 1
    assert final.blue_green.active_revision == R2
    assert final.blue_green.preview_revision is None
    assert final.blue_green.previous_revision == R1
    assert final.blue_green.switched_at == at(20)
    assert final.blue_green.scale_down_at == at(50)
    assert final.is_true(ConditionType.READY)


def test_abort_after_the_switch_is_ignored() -> None:
    """After the switch there is no preview to drop: an abort is reported as ignored and the
    active Service stays on the new revision."""
    status, cluster, spec = switched()
    d = decide(
        spec, status, cluster.observe(V2, requests=_requests(RequestKind.ABORT, "a9")), at(30)
    )
    assert reasons(d) == ["RequestIgnored"]
    assert PointStableService(ACTIVE, R2) in d.actions


@pytest.mark.parametrize(
    ("strategy", "message"),
    [
        pytest.param(
            {
                "canary": {"stableService": "a", "canaryService": "b"},
                "blueGreen": {"activeService": "a"},
            },
            MSG_ONE_STRATEGY,
            id="both",
        ),
        pytest.param({}, MSG_ONE_STRATEGY, id="neither"),
        pytest.param(
            {"blueGreen": {"activeService": "a", "previewService": "a"}},
            MSG_PREVIEW_SERVICE_DIFFERS,
            id="preview-is-active",
        ),
        pytest.param(
            {"blueGreen": {"activeService": "a", "prePromotionAnalysis": {"interval": "30s"}}},
            MSG_PRE_PROMOTION_METRICS,
            id="analysis-without-metrics",
        ),
        pytest.param(
            {"blueGreen": {"activeService": "a", "postPromotionAnalysis": {"interval": "30s"}}},
            MSG_POST_PROMOTION_METRICS,
            id="post-analysis-without-metrics",
        ),
    ],
)
def test_invalid_blue_green(strategy: dict[str, Any], message: str) -> None:
    raw = bg_raw(V1)
    raw["strategy"] = strategy
    spec, errors = load_rollout_spec(raw)
    assert spec is None
    assert any(message in e for e in errors), errors


def test_invalid_blue_green_acts_on_nothing() -> None:
    status, cluster = active()
    raw = bg_raw(V2)
    raw["strategy"]["blueGreen"]["previewService"] = ACTIVE
    d = decide(raw, status, cluster.observe(V2), at(10))
    assert d.actions == ()
    assert d.status.phase is Phase.DEGRADED
    assert d.status.is_true(ConditionType.INVALID_SPEC)


@pytest.mark.parametrize(
    ("fields", "steps"),
    [
        pytest.param({}, [SWITCH], id="auto-at-once"),
        pytest.param({"autoPromotionEnabled": False}, [{"pause": {}}, SWITCH], id="manual"),
        pytest.param(
            {"autoPromotionSeconds": 90}, [{"pause": {"duration": "90s"}}, SWITCH], id="timed"
        ),
        pytest.param(
            {"autoPromotionEnabled": False, "autoPromotionSeconds": 90},
            [{"pause": {}}, SWITCH],
            id="manual-ignores-seconds",
        ),
        pytest.param(
            {"prePromotionAnalysis": PRE, "postPromotionAnalysis": POST},
            [{"analysis": PRE}, SWITCH, {"analysis": POST}],
            id="analyses",
        ),
    ],
)
def test_stages(fields: dict[str, Any], steps: list[dict[str, Any]]) -> None:
    blue_green = bg(V1, **fields).strategy.blue_green
    assert blue_green is not None
    found = [
        s.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True)
        for s in blue_green_steps(blue_green)
    ]
    assert found == steps


def test_status_says_the_active_service_selects_the_new_revision_after_the_switch() -> None:
    status, _, _ = post_promotion()
    assert status.stable_revision == R1
    assert status.blue_green is not None
    assert status.blue_green.active_revision == R2
    assert status.blue_green.preview_revision == R2
    assert status.blue_green.previous_revision == R1
    assert status.blue_green.switched_at == at(20)
    assert status.blue_green.scale_down_at is None


def test_promote_full_before_the_switch_switches_at_completion() -> None:
    status, cluster, spec = preview_up(prePromotionAnalysis=PRE, autoPromotionEnabled=False)
    status, _, _ = drive(spec, status, cluster, V2, at(20))
    assert status is not None
    assert status.current_step_index == 0  # the pre-promotion analysis runs
    full = _requests(RequestKind.PROMOTE_FULL, "f1")
    final, found, _ = drive(spec, status, cluster, V2, at(60), requests=full)
    assert final is not None
    assert final.stable_revision == R2
    assert final.blue_green is not None
    assert final.blue_green.active_revision == R2
    assert final.blue_green.switched_at == at(60)
    assert found.count("ActiveSwitched") == 1
    assert "PromotedFull" in found
    assert "RolloutCompleted" in found


def test_blue_green_metrics_are_named_where_they_are_written() -> None:
    """A refused query names the field the user wrote (the pre- or post-promotion analysis),
    not the canary view the pass runs it through."""
    spec = bg(prePromotionAnalysis=PRE, postPromotionAnalysis=POST)
    paths = [path for path, _ in rollout_metrics(spec)]
    assert paths == [
        *(
            f"spec.strategy.blueGreen.prePromotionAnalysis.metrics[{i}]"
            for i in range(len(PRE["metrics"]))
        ),
        *(
            f"spec.strategy.blueGreen.postPromotionAnalysis.metrics[{i}]"
            for i in range(len(POST["metrics"]))
        ),
    ]
    assert paths
