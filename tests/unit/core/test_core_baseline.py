"""The baseline beside a canary (``strategy.canary.baseline``): state in, state out.

An ideal cluster (pods ready at once, the router reporting what it was told) applies each
decision; the tests follow a canary with a baseline through its steps, a rollback and an abort,
and check the baseline's Deployment, weight and status at each point.
"""

from __future__ import annotations

from typing import Any

import pytest

from rollwise.core.observations import (
    ManualRequest,
    Observations,
    RequestKind,
    RevisionState,
    baseline_revision_of,
)
from rollwise.core.phases import Phase
from rollwise.core.rollout.actions import (
    Decision,
    DeleteRevision,
    EnsureBaseline,
    PointBaselineService,
    PointCanaryService,
    SetWeight,
)
from rollwise.core.rollout.canary import decide
from rollwise.core.rollout.status import RolloutStatus
from rollwise.core.spec import RolloutSpec
from rollwise.core.traffic import TrafficSplit, replica_ratio_weight
from rollwise.core.validation import (
    MSG_BASELINE_NEEDS_SERVICE,
    MSG_BASELINE_SERVICE_DIFFERS,
    validate_rollout,
)
from tests.unit.core.rollout_builders import (
    R1,
    R2,
    V1,
    V2,
    Cluster,
    at,
    metric,
    raw_spec,
    ready,
    reasons,
    value,
)

BASELINE = baseline_revision_of(R1)
ANALYSIS = {"interval": "1m", "metrics": [metric()]}
#: 5% → 25% → 100%, each weight held for 20 s so a test can look at it.
STEPS = [
    {"setWeight": 5},
    {"pause": {"duration": "20s"}},
    {"setWeight": 25},
    {"pause": {"duration": "20s"}},
    {"setWeight": 100},
]


def baseline_spec(
    template: dict[str, Any] = V1,
    *,
    router: bool = True,
    replicas: int = 4,
    analysis: dict[str, Any] | None = None,
) -> RolloutSpec:
    raw = raw_spec(
        image_template=template, router=router, replicas=replicas, analysis=analysis, steps=STEPS
    )
    raw["strategy"]["canary"]["baseline"] = True
    if router:
        raw["strategy"]["canary"]["baselineService"] = "web-baseline"
    return RolloutSpec.model_validate(raw)


class BaselineCluster(Cluster):
    """The ideal cluster, with baselines: created only from an existing stable Deployment, and
    counted in the replica ratio."""

    def __init__(self, *, router: bool = True) -> None:
        super().__init__(router=router)
        self.baseline_weight = 0
        self.baseline_service: str | None = None

    def apply(self, decision: Decision) -> None:
        for action in decision.actions:
            if isinstance(action, EnsureBaseline):
                assert action.stable_revision in self.revisions, "baseline before its stable"
                self.revisions[action.revision] = ready(action.replicas)
            elif isinstance(action, SetWeight):
                self.baseline_weight = action.split().baseline
            elif isinstance(action, PointBaselineService):
                self.baseline_service = action.revision
        super().apply(decision)

    def _ratio(self, status: RolloutStatus) -> int:
        canary, stable = status.canary_revision, status.stable_revision
        if canary is None or stable is None:
            return 0

        def pods(revision: str) -> int:
            state = self.revisions.get(revision)
            return state.available_replicas if state is not None else 0

        return replica_ratio_weight(pods(canary), pods(stable), pods(baseline_revision_of(stable)))

    def observe(self, template_: dict[str, Any], **kwargs: Any) -> Observations:
        kwargs.setdefault("actual_baseline_weight", self.baseline_weight)
        return super().observe(template_, **kwargs)


def settle(
    spec: RolloutSpec,
    status: RolloutStatus | None,
    cluster: BaselineCluster,
    template: dict[str, Any],
    now: float,
    **obs: Any,
) -> tuple[RolloutStatus, list[Decision]]:
    decisions: list[Decision] = []
    for _ in range(10):
        decision = decide(spec, status, cluster.observe(template, **obs), at(now))
        decisions.append(decision)
        cluster.apply(decision)
        if decision.status == status and not decision.events:
            break
        status = decision.status
    assert status is not None
    return status, decisions


def healthy(**kw: Any) -> tuple[RolloutStatus, BaselineCluster]:
    cluster = BaselineCluster(router=kw.get("router", True))
    status, _ = settle(baseline_spec(**kw), None, cluster, V1, 0)
    assert status.phase is Phase.HEALTHY
    assert status.baseline is None
    return status, cluster


def actions_of(decisions: list[Decision]) -> list[Any]:
    return [a for d in decisions for a in d.actions]


def test_a_canary_with_a_baseline_walks_5_25_100_and_removes_the_baseline() -> None:
    status, cluster = healthy()
    spec = baseline_spec(V2)

    status, decisions = settle(spec, status, cluster, V2, 10)
    assert (status.canary_revision, status.canary_weight) == (R2, 5)
    assert status.baseline is not None
    assert (status.baseline.revision, status.baseline.stable_revision) == (BASELINE, R1)
    assert (status.baseline.weight, status.baseline.replicas) == (5, 1)
    assert status.baseline.available_replicas == 1
    assert cluster.revisions[BASELINE] == ready(1)
    assert cluster.revisions[R2] == ready(1)
    assert (cluster.weight, cluster.baseline_weight) == (5, 5)
    assert cluster.baseline_service == BASELINE
    weights = [a.split() for a in actions_of(decisions) if isinstance(a, SetWeight)]
    assert TrafficSplit(canary=5, stable=90, baseline=5) in weights
    assert "stable 90%, baseline 5%" in next(
        e.message for d in decisions for e in d.events if e.reason.name == "WeightSet"
    )

    status, _ = settle(spec, status, cluster, V2, 40)
    assert status.canary_weight == 25
    assert status.baseline is not None
    assert (status.baseline.weight, status.baseline.replicas) == (25, 1)
    assert (cluster.weight, cluster.baseline_weight) == (25, 25)

    status, decisions = settle(spec, status, cluster, V2, 70)
    assert status.stable_revision == R2
    assert status.canary_revision is None
    assert status.baseline is None
    assert BASELINE not in cluster.revisions
    assert DeleteRevision(BASELINE) in actions_of(decisions)
    assert (cluster.weight, cluster.baseline_weight) == (0, 0)
    # The baseline Service follows the new stable, as the canary Service does.
    assert cluster.baseline_service == R2


def test_the_weight_waits_for_the_baseline_pods() -> None:
    status, cluster = healthy()
    spec = baseline_spec(V2)
    cluster.unready.add(BASELINE)

    def unready_baseline(decision: Decision) -> None:
        for action in decision.actions:
            if isinstance(action, EnsureBaseline):
                cluster.revisions[action.revision] = RevisionState(desired_replicas=1)

    first = decide(spec, status, cluster.observe(V2), at(10))
    cluster.apply(first)
    unready_baseline(first)
    second = decide(spec, first.status, cluster.observe(V2), at(11))
    assert second.status.canary_weight == 0
    assert f"waiting for baseline {BASELINE}: 0/1 available" in second.status.message
    assert "WeightSet" not in reasons(second)


def test_the_baseline_is_created_before_any_traffic_and_pointed_before_the_weight() -> None:
    status, cluster = healthy()
    spec = baseline_spec(V2)
    first = decide(spec, status, cluster.observe(V2), at(10))
    kinds = [type(a) for a in first.actions]
    assert EnsureBaseline(BASELINE, R1, 1) in first.actions
    assert kinds.index(EnsureBaseline) < kinds.index(SetWeight)
    cluster.apply(first)
    second = decide(spec, first.status, cluster.observe(V2), at(11))
    kinds = [type(a) for a in second.actions]
    assert kinds.index(PointBaselineService) < kinds.index(SetWeight)
    assert PointBaselineService("web-baseline", BASELINE) in second.actions


@pytest.mark.parametrize(
    "how",
    [
        pytest.param("analysis", id="rollback"),
        pytest.param("abort", id="abort"),
    ],
)
def test_rollback_and_abort_remove_the_baseline_after_moving_its_traffic(how: str) -> None:
    status, cluster = healthy(analysis=ANALYSIS)
    spec = baseline_spec(V2, analysis=ANALYSIS)
    status, _ = settle(spec, status, cluster, V2, 10)
    assert status.baseline is not None
    assert cluster.baseline_weight == 5
    obs: dict[str, Any] = (
        {"measurements": {"error-ratio": value(0.9)}}
        if how == "analysis"
        else {"requests": (_abort(),)}
    )
    decision = decide(spec, status, cluster.observe(V2, **obs), at(70))
    assert decision.status.rolled_back_revision == R2
    assert decision.status.baseline is None
    kinds = [type(a) for a in decision.actions]
    assert kinds.index(SetWeight) < kinds.index(PointCanaryService)
    assert kinds.index(SetWeight) < kinds.index(DeleteRevision)
    assert DeleteRevision(BASELINE) in decision.actions
    split = next(a for a in decision.actions if isinstance(a, SetWeight)).split()
    assert split == TrafficSplit(canary=0, stable=100, baseline=0)
    cluster.apply(decision)
    assert BASELINE not in cluster.revisions
    assert (cluster.weight, cluster.baseline_weight) == (0, 0)
    assert cluster.baseline_service == R1


def _abort() -> ManualRequest:
    return ManualRequest(RequestKind.ABORT, "abort-1")


def test_replica_ratio_splits_the_pods_three_ways() -> None:
    status, cluster = healthy(router=False, replicas=20)
    spec = baseline_spec(V2, router=False, replicas=20)
    status, _ = settle(spec, status, cluster, V2, 10)
    assert status.canary_weight == 5
    assert (
        cluster.revisions[R2].desired_replicas,
        cluster.revisions[BASELINE].desired_replicas,
        cluster.revisions[R1].desired_replicas,
    ) == (1, 1, 18)
    assert cluster.weight == 5
    assert status.baseline is not None
    assert status.baseline.weight == 5
    status, _ = settle(spec, status, cluster, V2, 40)
    assert (
        cluster.revisions[R2].desired_replicas,
        cluster.revisions[BASELINE].desired_replicas,
        cluster.revisions[R1].desired_replicas,
    ) == (5, 5, 10)
    assert cluster.weight == 25
    status, _ = settle(spec, status, cluster, V2, 70)
    assert status.stable_revision == R2
    assert BASELINE not in cluster.revisions


def test_without_baseline_no_baseline_action_or_status() -> None:
    raw = raw_spec(image_template=V1, steps=STEPS)
    cluster = BaselineCluster()
    status, _ = settle(RolloutSpec.model_validate(raw), None, cluster, V1, 0)
    spec = RolloutSpec.model_validate(raw_spec(image_template=V2, steps=STEPS))
    status, decisions = settle(spec, status, cluster, V2, 10)
    assert status.canary_weight == 5
    assert status.baseline is None
    assert not [a for a in actions_of(decisions) if isinstance(a, EnsureBaseline)]
    assert not [a for a in actions_of(decisions) if isinstance(a, PointBaselineService)]
    assert all(a.baseline_weight == 0 for a in actions_of(decisions) if isinstance(a, SetWeight))


@pytest.mark.parametrize(
    ("canary", "errors"),
    [
        pytest.param(
            {"baseline": True, "baselineService": "web-baseline"}, [], id="router-with-service"
        ),
        pytest.param(
            {"baseline": True},
            [f"spec.strategy.canary: {MSG_BASELINE_NEEDS_SERVICE}"],
            id="router-without-service",
        ),
        pytest.param(
            {"baseline": True, "baselineService": "web-stable"},
            [f"spec.strategy.canary: {MSG_BASELINE_SERVICE_DIFFERS}"],
            id="service-is-the-stable",
        ),
        pytest.param(
            {"baseline": True, "baselineService": "web-canary"},
            [f"spec.strategy.canary: {MSG_BASELINE_SERVICE_DIFFERS}"],
            id="service-is-the-canary",
        ),
    ],
)
def test_baseline_validation(canary: dict[str, Any], errors: list[str]) -> None:
    raw = raw_spec()
    raw["strategy"]["canary"].update(canary)
    assert validate_rollout(RolloutSpec.model_validate(raw)) == errors


def test_replica_ratio_baseline_needs_no_service() -> None:
    raw = raw_spec(router=False)
    raw["strategy"]["canary"]["baseline"] = True
    assert validate_rollout(RolloutSpec.model_validate(raw)) == []


def test_an_invalid_baseline_spec_acts_on_nothing() -> None:
    raw = raw_spec(image_template=V2)
    raw["strategy"]["canary"]["baseline"] = True
    status, cluster = healthy()
    decision = decide(raw, status, cluster.observe(V2), at(10))
    assert decision.actions == ()
    assert decision.status.canary_revision is None
    assert MSG_BASELINE_NEEDS_SERVICE in decision.status.message


def test_the_step_waits_until_the_router_reports_the_baselines_share() -> None:
    """The canary's share alone is not enough: a route whose baseline backend lost its weight
    (edited behind the operator's back, or a write not visible yet) holds the step."""
    status, cluster = healthy()
    spec = baseline_spec(V2)
    held, decisions = settle(spec, status, cluster, V2, 10, actual_baseline_weight=0)
    assert (held.canary_weight, held.current_step_index) == (5, 0)
    assert "waiting for the router to report 5% to the baseline (0%)" in held.message
    assert "StepAdvanced" not in [r for d in decisions for r in reasons(d)]
    # The split is asserted again on every pass.
    assert SetWeight(R2, R1, 5, 5) in decisions[-1].actions
    moved = decide(spec, held, cluster.observe(V2), at(11))
    assert "StepAdvanced" in reasons(moved)


def test_a_baseline_switched_off_mid_canary_gives_its_share_back_then_goes() -> None:
    status, cluster = healthy()
    spec = baseline_spec(V2)
    status, _ = settle(spec, status, cluster, V2, 10)
    assert cluster.baseline_weight == 5
    raw = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    raw["strategy"]["canary"]["baseline"] = False
    off = RolloutSpec.model_validate(raw)
    decision = decide(off, status, cluster.observe(V2), at(12))
    assert decision.status.baseline is None
    assert decision.status.canary_weight == 5  # the canary itself carries on
    kinds = [type(a) for a in decision.actions]
    assert PointBaselineService("web-baseline", R1) in decision.actions
    assert kinds.index(PointBaselineService) < kinds.index(SetWeight)
    assert kinds.index(SetWeight) < kinds.index(DeleteRevision)
    assert SetWeight(R2, R1, 5, 0) in decision.actions
    assert DeleteRevision(BASELINE) in decision.actions
    cluster.apply(decision)
    assert (cluster.weight, cluster.baseline_weight) == (5, 0)
    assert BASELINE not in cluster.revisions
