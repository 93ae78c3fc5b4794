"""The three-way split of each router, without a server: the manifest each router writes for a
stable/canary/baseline split and the shares it reads back (the lab tests write the same
against the real API server)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from rollwise.adapters.traffic import NopRouter, RouterContext
from rollwise.adapters.traffic.base import as_split
from rollwise.adapters.traffic.gateway import (
    route_baseline_weight,
    route_weight,
    rules_with_weight,
)
from rollwise.adapters.traffic.istio import http_with_weight, vs_baseline_weight, vs_weight
from rollwise.adapters.workloads import (
    BASELINE_OF_LABEL,
    ROLE_LABEL,
    RolloutRef,
    baseline_deployment,
    revision_deployment,
)
from rollwise.core.observations import REVISION_LABEL
from rollwise.core.traffic import TrafficSplit

CTX = RouterContext("shop", "web", "web", "web-canary", baseline_service="web-baseline")
TWO_WAY = RouterContext("shop", "web", "web", "web-canary")
SPLIT_5 = TrafficSplit(canary=5, stable=90, baseline=5)
SPLIT_25 = TrafficSplit(canary=25, stable=50, baseline=25)
ALL_STABLE = TrafficSplit(canary=0, stable=100)

S = {"name": "web", "port": 80}
C = {"name": "web-canary", "port": 80}
B = {"name": "web-baseline", "port": 80}


def _route(*refs: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "web"}, "spec": {"rules": [{"backendRefs": list(refs)}]}}


def test_httproute_gets_three_backends_in_order() -> None:
    route = _route(S)
    rules = rules_with_weight(route, CTX, None, SPLIT_5)
    assert rules[0]["backendRefs"] == [
        {**S, "weight": 90},
        {**C, "weight": 5},
        {**B, "weight": 5},
    ]
    assert route == _route(S)
    written = {"metadata": {"name": "web"}, "spec": {"rules": rules}}
    assert route_weight(written, CTX, None) == 5
    assert route_baseline_weight(written, CTX, None) == 5


def test_httproute_moves_the_three_weights_and_back_to_stable() -> None:
    route = _route(S)
    step = {
        "metadata": {"name": "web"},
        "spec": {"rules": rules_with_weight(route, CTX, None, SPLIT_5)},
    }
    step["spec"]["rules"] = rules_with_weight(step, CTX, None, SPLIT_25)
    assert [r["weight"] for r in step["spec"]["rules"][0]["backendRefs"]] == [50, 25, 25]
    back = rules_with_weight(step, CTX, None, ALL_STABLE)
    assert [r["weight"] for r in back[0]["backendRefs"]] == [100, 0, 0]
    # A bare weight 0 means the same: the baseline's share goes back to stable too.
    assert rules_with_weight(step, CTX, None, 0) == back


def test_httproute_a_bare_weight_takes_the_baselines_share_back_to_stable() -> None:
    """A baseline switched off mid-canary: the router still knows the baseline Service and
    is handed the canary's weight alone, so the baseline's share goes back to stable."""
    route = _route({**S, "weight": 90}, {**C, "weight": 5}, {**B, "weight": 5})
    rules = rules_with_weight(route, CTX, None, 5)
    assert [r["weight"] for r in rules[0]["backendRefs"]] == [95, 5, 0]


def test_httproute_without_baseline_leaves_a_third_backend_alone() -> None:
    route = _route({**S, "weight": 80}, {**C, "weight": 10}, {**B, "weight": 10})
    rules = rules_with_weight(route, TWO_WAY, None, 25)
    assert rules[0]["backendRefs"] == [
        {**S, "weight": 75},
        {**C, "weight": 25},
        {**B, "weight": 10},
    ]


def test_httproute_baseline_added_when_the_canary_is_already_there() -> None:
    route = _route({**S, "weight": 100}, {**C, "weight": 0})
    rules = rules_with_weight(route, CTX, None, SPLIT_5)
    assert [r["name"] for r in rules[0]["backendRefs"]] == ["web", "web-canary", "web-baseline"]


def _vs(*destinations: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "web"}, "spec": {"http": [{"route": list(destinations)}]}}


def _dest(host: str, weight: int | None = None, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"destination": {"host": host, **extra}}
    if weight is not None:
        entry["weight"] = weight
    return entry


def test_virtualservice_gets_three_destinations_in_the_stable_form() -> None:
    vs = _vs(_dest("web.shop.svc.cluster.local", subset="v1", port={"number": 80}))
    before = copy.deepcopy(vs)
    http = http_with_weight(vs, CTX, None, SPLIT_5)
    assert http[0]["route"] == [
        {
            "destination": {
                "host": "web.shop.svc.cluster.local",
                "subset": "v1",
                "port": {"number": 80},
            },
            "weight": 90,
        },
        {
            "destination": {"host": "web-canary.shop.svc.cluster.local", "port": {"number": 80}},
            "weight": 5,
        },
        {
            "destination": {"host": "web-baseline.shop.svc.cluster.local", "port": {"number": 80}},
            "weight": 5,
        },
    ]
    assert vs == before
    written = {"metadata": {"name": "web"}, "spec": {"http": http}}
    assert vs_weight(written, CTX, None) == 5
    assert vs_baseline_weight(written, CTX, None) == 5
    back = http_with_weight(written, CTX, None, ALL_STABLE)
    assert [d["weight"] for d in back[0]["route"]] == [100, 0, 0]


def test_virtualservice_without_baseline_is_two_way() -> None:
    vs = _vs(_dest("web", 100))
    http = http_with_weight(vs, TWO_WAY, None, 5)
    assert [(d["destination"]["host"], d["weight"]) for d in http[0]["route"]] == [
        ("web", 95),
        ("web-canary", 5),
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(5, TrafficSplit(canary=5, stable=95), id="bare-weight"),
        pytest.param(SPLIT_5, SPLIT_5, id="split"),
    ],
)
def test_as_split(value: int | TrafficSplit, expected: TrafficSplit) -> None:
    assert as_split(value) == expected


def test_as_split_refuses_a_weight_out_of_range() -> None:
    with pytest.raises(ValueError, match="0-100"):
        as_split(101)


def test_nop_router_verifies_the_baseline_share() -> None:
    router = NopRouter()
    router.set_weight(SPLIT_5)
    assert router.get_weight() == 5
    assert router.get_baseline_weight() == 5
    assert router.verify(SPLIT_5)
    assert router.verify(5)
    assert not router.verify(TrafficSplit(canary=5, stable=95))


REF = RolloutRef("shop", "web", "uid-1", {"matchLabels": {"app": "web"}})


def test_the_baseline_deployment_copies_the_stable_template_under_its_own_revision() -> None:
    template = {
        "metadata": {
            "labels": {"app": "web"},
            "annotations": {"lab.rollwise.dev/error-ratio": "0.01"},
        },
        "spec": {"containers": [{"name": "app", "image": "app:v1"}]},
    }
    stable = revision_deployment(REF, "aaa", 4, template)
    body = baseline_deployment(REF, "aaa-baseline", "aaa", 1, stable)
    assert body["metadata"]["name"] == "web-aaa-baseline"
    assert body["metadata"]["labels"] == {
        "rollwise.dev/rollout": "web",
        REVISION_LABEL: "aaa-baseline",
        ROLE_LABEL: "baseline",
        BASELINE_OF_LABEL: "aaa",
    }
    assert body["spec"]["replicas"] == 1
    assert body["spec"]["selector"] == {
        "matchLabels": {"app": "web", REVISION_LABEL: "aaa-baseline"}
    }
    pod = body["spec"]["template"]
    assert pod["metadata"]["labels"] == {
        "app": "web",
        REVISION_LABEL: "aaa-baseline",
        ROLE_LABEL: "baseline",
        BASELINE_OF_LABEL: "aaa",
    }
    assert pod["metadata"]["annotations"] == template["metadata"]["annotations"]
    assert pod["spec"] == template["spec"]
    assert body["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    # The stable Deployment read is not modified.
    assert stable["spec"]["template"]["metadata"]["labels"][REVISION_LABEL] == "aaa"
