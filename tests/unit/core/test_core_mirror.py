"""Mirroring (``setMirrorRoute`` steps, shadow traffic): the mirrors the core wants per step,
the step's wait on the router's read-back, their removal when the canary ends, and the specs
refused."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from rollwise.core.conditions import ConditionStatus
from rollwise.core.observations import ManualRequest, RequestKind
from rollwise.core.phases import Phase
from rollwise.core.rollout.actions import (
    Action,
    PointCanaryService,
    ScaleRevision,
    SetMirrorRoutes,
)
from rollwise.core.rollout.canary import decide
from rollwise.core.rollout.segments import mirror_routes, most_mirrors
from rollwise.core.rollout.status import ConditionType, RolloutStatus
from rollwise.core.spec import RolloutSpec, step_what
from rollwise.core.traffic import MirrorRoute
from rollwise.core.validation import (
    MSG_MIRROR_ONE,
    MSG_MIRROR_ROUTE_MODELRELEASE,
    MSG_MIRROR_ROUTE_ROUTER,
    MSG_STEP_ONE_KIND,
    load_rollout_spec,
    validate_steps,
)
from tests.unit.core.rollout_builders import (
    R1,
    R2,
    V1,
    V2,
    Cluster,
    at,
    drive,
    raw_spec,
    reasons,
    spec_of,
)


def mirror(name: str, percentage: int) -> dict[str, Any]:
    return {"setMirrorRoute": {"name": name, "percentage": percentage}}


SHADOW = mirror("shadow", 20)
SHADOW_ROUTE = MirrorRoute("shadow", 20)
# Shadow traffic at weight 0, a pause to look at the copies, then the usual canary.
STEPS = [SHADOW, {"pause": {}}, {"setWeight": 25}, {"setWeight": 100}]


# ------------------------------------------------------------------ the mirrors per step


MIRRORS_TABLE = [
    pytest.param([SHADOW, {"setWeight": 100}], 0, (), id="before-the-step"),
    pytest.param([SHADOW, {"setWeight": 100}], 1, (SHADOW_ROUTE,), id="after-the-step"),
    pytest.param([SHADOW, {"setWeight": 100}], 2, (SHADOW_ROUTE,), id="kept-to-the-end"),
    pytest.param(
        [SHADOW, {"setWeight": 50}, mirror("shadow", 0), {"setWeight": 100}],
        3,
        (),
        id="removed-by-percentage-0",
    ),
    pytest.param(
        [SHADOW, mirror("shadow", 100), {"setWeight": 100}],
        2,
        (MirrorRoute("shadow", 100),),
        id="replaced-by-a-step-of-the-same-name",
    ),
    pytest.param(
        [SHADOW, mirror("shadow", 0), mirror("other", 5), {"setWeight": 100}],
        3,
        (MirrorRoute("other", 5),),
        id="another-after-the-first-is-removed",
    ),
]


@pytest.mark.parametrize(("steps", "upto", "expected"), MIRRORS_TABLE)
def test_mirrors_in_effect_after_the_steps(
    steps: list[dict[str, Any]], upto: int, expected: tuple[MirrorRoute, ...]
) -> None:
    spec = spec_of(steps=steps)
    assert mirror_routes(spec.strategy.canary.steps, upto) == expected
    assert most_mirrors(spec.strategy.canary.steps) == 1


@pytest.mark.parametrize(
    ("step", "text"),
    [
        pytest.param(SHADOW, "setMirrorRoute shadow 20%", id="set"),
        pytest.param(mirror("shadow", 0), "remove mirror route shadow", id="remove"),
    ],
)
def test_step_names(step: dict[str, Any], text: str) -> None:
    spec = spec_of(steps=[step, {"setWeight": 100}])
    assert step_what(spec.strategy.canary.steps[0]) == text


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param({"name": "shadow", "percentage": 20}, id="set"),
        pytest.param({"name": "shadow", "percentage": 100}, id="all"),
    ],
)
def test_wire_round_trip(raw: dict[str, Any]) -> None:
    assert MirrorRoute.from_wire(raw).to_wire() == raw


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param({"name": "shadow", "percentage": 0}, id="zero"),
        pytest.param({"name": "shadow", "percentage": 101}, id="over-100"),
        pytest.param({"name": "shadow", "percentage": True}, id="bool"),
        pytest.param({"name": "shadow", "percentage": "20"}, id="text"),
        pytest.param({"percentage": 20}, id="no-name"),
        pytest.param(["shadow", 20], id="not-an-object"),
    ],
)
def test_wire_refuses_what_it_did_not_write(raw: Any) -> None:
    with pytest.raises(ValueError, match="mirror"):
        MirrorRoute.from_wire(raw)


# ------------------------------------------------------------------ decisions


def healthy(steps: list[dict[str, Any]] = STEPS) -> tuple[RolloutStatus, Cluster]:
    cluster = Cluster()
    status, _, _ = drive(spec_of(steps=steps), None, cluster, V1, at(0))
    assert status is not None
    assert status.phase is Phase.HEALTHY
    return status, cluster


def mirrors_of(actions: tuple[Action, ...]) -> list[tuple[MirrorRoute, ...]]:
    return [a.routes for a in actions if isinstance(a, SetMirrorRoutes)]


def test_the_mirror_waits_for_a_canary_pod_then_for_the_router() -> None:
    status, cluster = healthy()
    spec = spec_of(image_template=V2, steps=STEPS)
    first = decide(spec, status, cluster.observe(V2), at(10))
    # The canary has no pod yet: nothing is copied to it, the step waits.
    assert mirrors_of(first.actions) == [()]
    assert "waiting for a canary pod to receive the copies" in first.status.message
    cluster.apply(first)
    second = decide(spec, first.status, cluster.observe(V2), at(11))
    assert mirrors_of(second.actions) == [(SHADOW_ROUTE,)]
    assert "waiting for the router to report the mirror" in second.status.message
    assert "MirrorRouteSet" not in reasons(second)
    # A router that does not carry the mirror holds the step.
    stuck = decide(spec, second.status, cluster.observe(V2), at(12))
    assert stuck.status.current_step_index == 0
    cluster.apply(second)
    third = decide(spec, second.status, cluster.observe(V2), at(13))
    assert [r for r in reasons(third) if r != "DecisionChanged"][:2] == [
        "MirrorRouteSet",
        "StepAdvanced",
    ]
    message = next(e.message for e in third.events if e.reason.name == "MirrorRouteSet")
    assert message == ("step 1/4: mirror route shadow (20% of requests copied to the canary)")
    assert third.status.mirror_routes is not None
    assert [(r.name, r.percentage) for r in third.status.mirror_routes] == [("shadow", 20)]
    # Mirroring moves no live traffic: the canary still has weight 0.
    assert third.status.canary_weight == 0
    assert cluster.weight == 0


def paused_with_mirror() -> tuple[RolloutStatus, Cluster, RolloutSpec]:
    status, cluster = healthy()
    spec = spec_of(image_template=V2, steps=STEPS)
    paused, _, _ = drive(spec, status, cluster, V2, at(10))
    assert paused is not None
    assert (paused.phase, paused.current_step_index, paused.canary_weight) == (
        Phase.PAUSED,
        1,
        0,
    )
    assert cluster.mirror_routes == (SHADOW_ROUTE,)
    return paused, cluster, spec


def test_the_mirror_stays_while_the_weight_moves_on() -> None:
    status, cluster, spec = paused_with_mirror()
    resumed, _, _ = drive(
        spec,
        status,
        cluster,
        V2,
        at(20),
        passes=2,
        requests=(ManualRequest(RequestKind.PROMOTE, "p1"),),
    )
    assert resumed is not None
    assert resumed.canary_weight > 0
    assert cluster.weight == resumed.canary_weight
    assert cluster.mirror_routes == (SHADOW_ROUTE,)
    assert resumed.mirror_routes is not None


def test_completion_removes_the_mirror() -> None:
    status, cluster, spec = paused_with_mirror()
    done, seen, _ = drive(
        spec, status, cluster, V2, at(30), requests=(ManualRequest(RequestKind.PROMOTE, "p1"),)
    )
    assert done is not None
    assert done.phase is Phase.HEALTHY
    assert done.stable_revision == R2
    assert "RolloutCompleted" in seen
    assert cluster.mirror_routes == ()
    assert done.mirror_routes is None


def test_abort_removes_the_mirror_before_the_canary_goes() -> None:
    status, cluster, spec = paused_with_mirror()
    d = decide(
        spec,
        status,
        cluster.observe(V2, requests=(ManualRequest(RequestKind.ABORT, "a1"),)),
        at(30),
    )
    assert d.status.canary_revision is None
    assert d.status.mirror_routes is None
    kinds = list(d.actions)
    removal = kinds.index(SetMirrorRoutes(()))
    # Before the canary Service moves back to stable and before the canary is scaled down.
    assert removal < next(i for i, a in enumerate(kinds) if isinstance(a, PointCanaryService))
    assert removal < kinds.index(ScaleRevision(R2, 0))
    cluster.apply(d)
    assert cluster.mirror_routes == ()


def test_a_mirror_edited_away_is_written_again() -> None:
    status, cluster, spec = paused_with_mirror()
    obs = replace(cluster.observe(V2), actual_mirror_routes=())
    d = decide(spec, status, obs, at(20))
    assert mirrors_of(d.actions) == [(SHADOW_ROUTE,)]


def test_a_rollout_without_mirrors_has_no_mirror_action() -> None:
    plain = [{"setWeight": 50}, {"setWeight": 100}]
    status, cluster = healthy(steps=plain)
    _, _, decisions = drive(spec_of(image_template=V2, steps=plain), status, cluster, V2, at(10))
    assert all(mirrors_of(d.actions) == [] for d in decisions)


def test_a_removed_step_still_removes_the_mirror_it_left() -> None:
    """The spec lost its setMirrorRoute step mid-canary: the recorded mirror is removed."""
    status, cluster, _ = paused_with_mirror()
    plain = [{"pause": {}}, {"setWeight": 25}, {"setWeight": 100}]
    d = decide(spec_of(image_template=V2, steps=plain), status, cluster.observe(V2), at(20))
    assert mirrors_of(d.actions) == [()]


# ------------------------------------------------------------------ refused specs


INVALID = [
    pytest.param(
        raw_spec(steps=STEPS, router=False),
        f"spec.strategy.canary.steps: {MSG_MIRROR_ROUTE_ROUTER}",
        id="replica-ratio",
    ),
    pytest.param(
        raw_spec(steps=[SHADOW, mirror("other", 5), {"setWeight": 100}]),
        f"spec.strategy.canary.steps[1].setMirrorRoute: {MSG_MIRROR_ONE}",
        id="two-mirrors-at-once",
    ),
    pytest.param(
        raw_spec(steps=[{**SHADOW, "setWeight": 5}, {"setWeight": 100}]),
        f"spec.strategy.canary.steps[0]: {MSG_STEP_ONE_KIND}",
        id="two-kinds",
    ),
    pytest.param(
        raw_spec(steps=[mirror("shadow", 101), {"setWeight": 100}]),
        "percentage",
        id="over-100",
    ),
    pytest.param(
        raw_spec(steps=[mirror("Shadow", 10), {"setWeight": 100}]),
        "name",
        id="bad-name",
    ),
]


@pytest.mark.parametrize(("raw", "expected"), INVALID)
def test_invalid_mirrors_are_refused(raw: dict[str, Any], expected: str) -> None:
    spec, errors = load_rollout_spec(raw)
    assert spec is None
    assert any(expected in e for e in errors), errors


def test_a_replica_ratio_rollout_with_a_mirror_is_invalid_and_touches_nothing() -> None:
    status, cluster = healthy(steps=[{"setWeight": 50}, {"setWeight": 100}])
    raw = raw_spec(image_template=V2, steps=STEPS, router=False)
    d = decide(raw, status, cluster.observe(V2), at(10))
    assert d.actions == ()
    cond = d.status.condition(ConditionType.INVALID_SPEC)
    assert cond is not None
    assert cond.status is ConditionStatus.TRUE
    assert MSG_MIRROR_ROUTE_ROUTER in cond.message
    assert d.status.stable_revision == R1
    assert "InvalidSpec" in reasons(d)


def test_a_modelrelease_canary_refuses_mirrors() -> None:
    steps = spec_of(steps=STEPS).strategy.canary.steps
    errors = validate_steps("spec.canary", steps, None)
    assert f"spec.canary.steps[0].setMirrorRoute: {MSG_MIRROR_ROUTE_MODELRELEASE}" in errors
