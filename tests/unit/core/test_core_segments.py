"""Header-routed segments (``setHeaderRoute`` steps): the routes the core wants per step, the
step's wait on the router's read-back, their removal when the canary ends, and the specs
refused."""

from __future__ import annotations

import re
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
    SetHeaderRoutes,
)
from rollwise.core.rollout.canary import decide
from rollwise.core.rollout.segments import header_routes
from rollwise.core.rollout.status import ConditionType, RolloutStatus
from rollwise.core.spec import RolloutSpec
from rollwise.core.traffic import HeaderMatch, HeaderRoute, MatchKind, cookie_pattern
from rollwise.core.validation import (
    MSG_HEADER_MATCH_ONE,
    MSG_HEADER_ROUTE_MODELRELEASE,
    MSG_HEADER_ROUTE_ROUTER,
    MSG_HEADER_VALUE_ONE,
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


def header(name: str, **value: str) -> dict[str, Any]:
    return {"headerName": name, "headerValue": value}


def set_route(name: str, *match: dict[str, Any]) -> dict[str, Any]:
    step: dict[str, Any] = {"name": name}
    if match:
        step["match"] = list(match)
    return {"setHeaderRoute": step}


BETA = set_route("beta", header("x-segment", exact="beta"))
BETA_ROUTE = HeaderRoute("beta", (HeaderMatch("x-segment", MatchKind.EXACT, "beta"),))
STEPS = [BETA, {"setWeight": 25}, {"pause": {}}, {"setWeight": 100}]


# ------------------------------------------------------------------ the routes per step


ROUTES_TABLE = [
    pytest.param([BETA, {"setWeight": 100}], 0, (), id="before-the-step"),
    pytest.param([BETA, {"setWeight": 100}], 1, (BETA_ROUTE,), id="after-the-step"),
    pytest.param([BETA, {"setWeight": 100}], 2, (BETA_ROUTE,), id="kept-to-the-end"),
    pytest.param(
        [BETA, {"setWeight": 50}, set_route("beta"), {"setWeight": 100}],
        3,
        (),
        id="removed-by-a-step-without-match",
    ),
    pytest.param(
        [BETA, set_route("beta", header("x-segment", prefix="be")), {"setWeight": 100}],
        2,
        (HeaderRoute("beta", (HeaderMatch("x-segment", MatchKind.PREFIX, "be"),)),),
        id="replaced-by-a-step-of-the-same-name",
    ),
    pytest.param(
        [
            set_route("a", header("x-a", regex="^v[0-9]+$"), header("x-b", exact="1")),
            set_route("b", {"cookie": {"name": "segment", "value": "beta"}}),
            {"setWeight": 100},
        ],
        2,
        (
            HeaderRoute(
                "a",
                (
                    HeaderMatch("x-a", MatchKind.REGEX, "^v[0-9]+$"),
                    HeaderMatch("x-b", MatchKind.EXACT, "1"),
                ),
            ),
            HeaderRoute(
                "b", (HeaderMatch("Cookie", MatchKind.REGEX, cookie_pattern("segment", "beta")),)
            ),
        ),
        id="two-routes-headers-anded-and-a-cookie",
    ),
]


@pytest.mark.parametrize(("steps", "upto", "expected"), ROUTES_TABLE)
def test_routes_in_effect_after_the_steps(
    steps: list[dict[str, Any]], upto: int, expected: tuple[HeaderRoute, ...]
) -> None:
    spec = spec_of(steps=steps)
    assert header_routes(spec.strategy.canary.steps, upto) == expected


@pytest.mark.parametrize(
    ("cookie", "matches"),
    [
        pytest.param("segment=beta", True, id="alone"),
        pytest.param("a=1; segment=beta; b=2", True, id="among-others"),
        pytest.param("a=1;segment=beta", True, id="no-space"),
        pytest.param("segment=betamax", False, id="longer-value"),
        pytest.param("xsegment=beta", False, id="longer-name"),
        pytest.param("segment=alpha", False, id="other-value"),
    ],
)
def test_cookie_pattern(cookie: str, matches: bool) -> None:
    assert (re.match(cookie_pattern("segment", "beta"), cookie) is not None) is matches


# ------------------------------------------------------------------ decisions


def healthy(steps: list[dict[str, Any]] = STEPS) -> tuple[RolloutStatus, Cluster]:
    cluster = Cluster()
    status, _, _ = drive(spec_of(steps=steps), None, cluster, V1, at(0))
    assert status is not None
    assert status.phase is Phase.HEALTHY
    return status, cluster


def routes_of(actions: tuple[Action, ...]) -> list[tuple[HeaderRoute, ...]]:
    return [a.routes for a in actions if isinstance(a, SetHeaderRoutes)]


def test_the_route_waits_for_a_canary_pod_then_for_the_router() -> None:
    status, cluster = healthy()
    spec = spec_of(image_template=V2, steps=STEPS)
    first = decide(spec, status, cluster.observe(V2), at(10))
    # The canary has no pod yet: no route to it, the step waits.
    assert routes_of(first.actions) == [()]
    assert "waiting for a canary pod" in first.status.message
    cluster.apply(first)
    second = decide(spec, first.status, cluster.observe(V2), at(11))
    assert routes_of(second.actions) == [(BETA_ROUTE,)]
    assert "waiting for the router to report the header routes" in second.status.message
    assert "HeaderRouteSet" not in reasons(second)
    # A router that does not carry the route holds the step.
    stuck = decide(spec, second.status, cluster.observe(V2), at(12))
    assert stuck.status.current_step_index == 0
    cluster.apply(second)
    third = decide(spec, second.status, cluster.observe(V2), at(13))
    assert [r for r in reasons(third) if r != "DecisionChanged"][:2] == [
        "HeaderRouteSet",
        "StepAdvanced",
    ]
    message = next(e.message for e in third.events if e.reason.name == "HeaderRouteSet")
    assert message == (
        "step 1/4: header route beta (x-segment exact 'beta') sends matching requests to the canary"
    )
    assert third.status.header_routes is not None
    assert [(r.name, r.match) for r in third.status.header_routes] == [
        ("beta", ["x-segment exact 'beta'"])
    ]


def paused_with_route() -> tuple[RolloutStatus, Cluster, RolloutSpec]:
    status, cluster = healthy()
    spec = spec_of(image_template=V2, steps=STEPS)
    paused, _, _ = drive(spec, status, cluster, V2, at(10))
    assert paused is not None
    assert (paused.phase, paused.current_step_index, paused.canary_weight) == (
        Phase.PAUSED,
        2,
        25,
    )
    assert cluster.header_routes == (BETA_ROUTE,)
    return paused, cluster, spec


def test_the_route_stays_while_the_weight_moves_on() -> None:
    status, cluster, spec = paused_with_route()
    d = decide(spec, status, cluster.observe(V2), at(20))
    assert routes_of(d.actions) == [(BETA_ROUTE,)]
    assert d.status.header_routes is not None
    assert d.events == ()


def test_completion_removes_the_routes() -> None:
    status, cluster, spec = paused_with_route()
    done, seen, _ = drive(
        spec, status, cluster, V2, at(30), requests=(ManualRequest(RequestKind.PROMOTE, "p1"),)
    )
    assert done is not None
    assert done.phase is Phase.HEALTHY
    assert done.stable_revision == R2
    assert "RolloutCompleted" in seen
    assert cluster.header_routes == ()
    assert done.header_routes is None


def test_abort_removes_the_routes_before_the_canary_goes() -> None:
    status, cluster, spec = paused_with_route()
    d = decide(
        spec,
        status,
        cluster.observe(V2, requests=(ManualRequest(RequestKind.ABORT, "a1"),)),
        at(30),
    )
    assert d.status.canary_revision is None
    assert d.status.header_routes is None
    kinds = list(d.actions)
    removal = kinds.index(SetHeaderRoutes(()))
    # Before the canary Service moves back to stable and before the canary is scaled down.
    assert removal < next(i for i, a in enumerate(kinds) if isinstance(a, PointCanaryService))
    assert removal < kinds.index(ScaleRevision(R2, 0))
    cluster.apply(d)
    assert cluster.header_routes == ()


def test_a_route_edited_away_is_written_again_and_the_status_keeps_it() -> None:
    status, cluster, spec = paused_with_route()
    obs = replace(cluster.observe(V2), actual_header_routes=())
    d = decide(spec, status, obs, at(20))
    assert routes_of(d.actions) == [(BETA_ROUTE,)]


def test_a_rollout_without_header_routes_has_no_header_route_action() -> None:
    status, cluster = healthy(steps=[{"setWeight": 50}, {"setWeight": 100}])
    spec = spec_of(image_template=V2, steps=[{"setWeight": 50}, {"setWeight": 100}])
    _, _, decisions = drive(spec, status, cluster, V2, at(10))
    assert all(routes_of(d.actions) == [] for d in decisions)


def test_a_removed_step_still_removes_the_routes_it_left() -> None:
    """The spec lost its setHeaderRoute steps mid-canary: the recorded route is removed."""
    status, cluster, _ = paused_with_route()
    plain = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 100}]
    d = decide(spec_of(image_template=V2, steps=plain), status, cluster.observe(V2), at(20))
    assert routes_of(d.actions) == [()]


# ------------------------------------------------------------------ refused specs


INVALID = [
    pytest.param(
        raw_spec(steps=STEPS, router=False),
        f"spec.strategy.canary.steps: {MSG_HEADER_ROUTE_ROUTER}",
        id="replica-ratio",
    ),
    pytest.param(
        raw_spec(steps=[set_route("a", {"headerName": "x-a"}), {"setWeight": 100}]),
        f"spec.strategy.canary.steps[0].setHeaderRoute.match[0]: {MSG_HEADER_MATCH_ONE}",
        id="header-without-value",
    ),
    pytest.param(
        raw_spec(
            steps=[
                set_route(
                    "a",
                    {**header("x-a", exact="1"), "cookie": {"name": "c", "value": "v"}},
                ),
                {"setWeight": 100},
            ]
        ),
        f"spec.strategy.canary.steps[0].setHeaderRoute.match[0]: {MSG_HEADER_MATCH_ONE}",
        id="header-and-cookie",
    ),
    pytest.param(
        raw_spec(steps=[set_route("a", header("x-a", exact="1", prefix="1")), {"setWeight": 100}]),
        f"spec.strategy.canary.steps[0].setHeaderRoute.match[0].headerValue: "
        f"{MSG_HEADER_VALUE_ONE}",
        id="two-value-kinds",
    ),
    pytest.param(
        raw_spec(steps=[set_route("a", header("x-a", regex="(unclosed")), {"setWeight": 100}]),
        "headerValue.regex is not a valid regular expression",
        id="bad-regex",
    ),
    pytest.param(
        raw_spec(steps=[set_route("a", header("x a", exact="1")), {"setWeight": 100}]),
        "spec.strategy.canary.steps[0].setHeaderRoute.match[0].headerName",
        id="bad-header-name",
    ),
    pytest.param(
        raw_spec(steps=[{**BETA, "setWeight": 5}, {"setWeight": 100}]),
        "spec.strategy.canary.steps[0]: each step must set exactly one of setWeight, pause, "
        "analysis, setHeaderRoute, setMirrorRoute or approval",
        id="two-kinds",
    ),
]


@pytest.mark.parametrize(("raw", "expected"), INVALID)
def test_invalid_header_routes_are_refused(raw: dict[str, Any], expected: str) -> None:
    spec, errors = load_rollout_spec(raw)
    assert spec is None
    assert any(expected in e for e in errors), errors


def test_a_replica_ratio_rollout_with_a_header_route_is_invalid_and_touches_nothing() -> None:
    status, cluster = healthy(steps=[{"setWeight": 50}, {"setWeight": 100}])
    raw = raw_spec(image_template=V2, steps=STEPS, router=False)
    d = decide(raw, status, cluster.observe(V2), at(10))
    assert d.actions == ()
    cond = d.status.condition(ConditionType.INVALID_SPEC)
    assert cond is not None
    assert cond.status is ConditionStatus.TRUE
    assert MSG_HEADER_ROUTE_ROUTER in cond.message
    assert d.status.stable_revision == R1
    assert "InvalidSpec" in reasons(d)


def test_a_modelrelease_canary_refuses_header_routes() -> None:
    steps = spec_of(steps=STEPS).strategy.canary.steps
    errors = validate_steps("spec.canary", steps, None)
    assert f"spec.canary.steps[0].setHeaderRoute: {MSG_HEADER_ROUTE_MODELRELEASE}" in errors
