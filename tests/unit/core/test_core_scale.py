"""A change of ``spec.replicas`` (``kubectl scale rollout``, a HorizontalPodAutoscaler writing
the scale subresource) while a canary runs: both revisions are resized for the step's weight,
the step, its weight and the pause are kept, and the canary completes with the new count.

Table of cases: a canary paused at step 2 (25%) of ``[25%, pause, 100%]`` with 4 replicas, then
one ``decide`` with another replica count; the revisions' replicas after the ideal cluster
applied the actions, the canary's weight and step, and the events."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from rollwise.core.observations import ManualRequest, RequestKind
from rollwise.core.phases import Phase
from rollwise.core.rollout.actions import ScaleRevision, SetWeight
from rollwise.core.rollout.canary import decide
from rollwise.core.rollout.status import RolloutStatus
from rollwise.core.spec import RolloutSpec
from tests.unit.core.rollout_builders import (
    R1,
    R2,
    V1,
    V2,
    Cluster,
    at,
    drive,
    reasons,
    spec_of,
)

STEPS = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 100}]


def paused_canary(*, router: bool, replicas: int = 4) -> tuple[RolloutStatus, Cluster]:
    """A canary of V2 paused (indefinitely) at step 2 with 25% of the traffic."""
    cluster = Cluster(router=router)
    healthy, _, _ = drive(
        spec_of(image_template=V1, router=router, replicas=replicas, steps=STEPS),
        None,
        cluster,
        V1,
        at(0),
    )
    assert healthy is not None
    assert healthy.phase is Phase.HEALTHY
    status, _, _ = drive(
        spec_of(image_template=V2, router=router, replicas=replicas, steps=STEPS),
        healthy,
        cluster,
        V2,
        at(10),
    )
    assert status is not None
    assert (status.phase, status.current_step_index, status.canary_weight) == (
        Phase.PAUSED,
        1,
        25,
    )
    return status, cluster


def scaled(router: bool, replicas: int) -> RolloutSpec:
    return spec_of(image_template=V2, router=router, replicas=replicas, steps=STEPS)


@dataclass(frozen=True)
class Case:
    router: bool
    before: int
    after: int
    stable: int  # stable revision's replicas after the change
    canary: int  # canary revision's replicas after the change
    status_replicas: int  # status.replicas: pods of both revisions (the scale subresource)


CASES = [
    # With a router the stable keeps the full count and the canary gets ceil(n * 25%).
    pytest.param(Case(True, 4, 10, stable=10, canary=3, status_replicas=13), id="router-up"),
    pytest.param(Case(True, 10, 4, stable=4, canary=1, status_replicas=5), id="router-down"),
    pytest.param(Case(True, 4, 1, stable=1, canary=1, status_replicas=2), id="router-to-one"),
    # Replica ratio: the counts are the weight, so both sides move to keep 25%.
    pytest.param(Case(False, 4, 8, stable=6, canary=2, status_replicas=8), id="ratio-up"),
    pytest.param(Case(False, 8, 4, stable=3, canary=1, status_replicas=4), id="ratio-down"),
    pytest.param(Case(False, 4, 20, stable=15, canary=5, status_replicas=20), id="ratio-up-x5"),
]


@pytest.mark.parametrize("case", CASES)
def test_a_replica_change_mid_canary_resizes_both_revisions_and_keeps_the_step(
    case: Case,
) -> None:
    status, cluster = paused_canary(router=case.router, replicas=case.before)
    spec = scaled(case.router, case.after)
    d = decide(spec, status, cluster.observe(V2, generation=2), at(20))
    cluster.apply(d)
    assert {r: cluster.revisions[r].desired_replicas for r in (R1, R2)} == {
        R1: case.stable,
        R2: case.canary,
    }
    # The step, its weight and its pause are kept; no step event for a resize.
    assert (d.status.phase, d.status.current_step_index, d.status.canary_weight) == (
        Phase.PAUSED,
        1,
        25,
    )
    assert SetWeight(R2, R1, 25) in d.actions
    assert [r for r in reasons(d) if r != "DecisionChanged"] == []
    # The next pass sees the resized revisions: status.replicas counts both, the selector is
    # the string form an autoscaler reads.
    again = decide(spec, d.status, cluster.observe(V2, generation=2), at(21))
    assert again.status.replicas == case.status_replicas
    assert again.status.selector == "app=web"
    assert again.events == ()


@pytest.mark.parametrize("router", [True, False], ids=["router", "ratio"])
def test_scaling_down_moves_the_weight_before_removing_pods(router: bool) -> None:
    """Fewer replicas: the scale-downs come after the weight is re-asserted, so the traffic
    never points at pods that are going away first."""
    status, cluster = paused_canary(router=router, replicas=8)
    d = decide(scaled(router, 4), status, cluster.observe(V2, generation=2), at(20))
    kinds = [type(a) for a in d.actions]
    downs = [i for i, a in enumerate(d.actions) if isinstance(a, ScaleRevision)]
    assert downs, d.actions
    assert kinds.index(SetWeight) < min(downs)


@pytest.mark.parametrize("router", [True, False], ids=["router", "ratio"])
def test_the_canary_completes_with_the_new_count(router: bool) -> None:
    status, cluster = paused_canary(router=router, replicas=4)
    spec = scaled(router, 7)
    status, _, _ = drive(spec, status, cluster, V2, at(20), generation=2)
    assert status is not None
    promoted, seen, _ = drive(
        spec,
        status,
        cluster,
        V2,
        at(30),
        generation=2,
        requests=(ManualRequest(RequestKind.PROMOTE, "p1"),),
    )
    assert promoted is not None
    assert promoted.phase is Phase.HEALTHY, promoted.message
    assert promoted.stable_revision == R2
    assert "RolloutCompleted" in seen
    assert cluster.revisions[R2].desired_replicas == 7
    assert promoted.replicas == 7
