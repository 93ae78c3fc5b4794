"""Route arithmetic of the routers, without a server: which rules carry the split, the weight
they carry, and the rules after a weight is applied."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from rollwise.adapters.errors import RouteMisconfigured
from rollwise.adapters.traffic import NopRouter, RouterContext, TrafficRouter
from rollwise.adapters.traffic.base import canary_share, conditions_ok
from rollwise.adapters.traffic.gateway import route_weight, rules_with_weight
from rollwise.adapters.traffic.istio import host_matches, http_with_weight, vs_weight
from rollwise.adapters.traffic.replica_ratio import ready_pods

CTX = RouterContext("shop", "web", "web", "web-canary")


def _route(*rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "metadata": {"name": "web"},
        "spec": {"rules": [{"backendRefs": refs} for refs in rules]},
    }


S = {"name": "web", "port": 80}
C = {"name": "web-canary", "port": 80}
OTHER = {"name": "api", "port": 80}


@pytest.mark.parametrize(
    ("route", "rule_index", "expected"),
    [
        pytest.param(_route([S]), None, 0, id="stable-only"),
        pytest.param(_route([S, C]), None, 50, id="default-weights-1-1"),
        pytest.param(_route([{**S, "weight": 75}, {**C, "weight": 25}]), None, 25, id="75-25"),
        pytest.param(_route([{**S, "weight": 0}, {**C, "weight": 0}]), None, None, id="all-zero"),
        pytest.param(
            _route([{**S, "weight": 95}, {**C, "weight": 5}], [{**S, "weight": 50}, C]),
            None,
            None,
            id="rules-disagree",
        ),
        pytest.param(
            _route([{**S, "weight": 95}, {**C, "weight": 5}], [{**S, "weight": 50}, C]),
            1,
            2,
            id="rule-index-chosen",
        ),
        pytest.param(
            _route([OTHER], [{**S, "weight": 90}, {**C, "weight": 10}]),
            None,
            10,
            id="rules-without-stable-ignored",
        ),
        pytest.param(
            _route([S, {**C, "namespace": "other", "weight": 100}]),
            None,
            0,
            id="canary-of-another-namespace-is-not-ours",
        ),
    ],
)
def test_httproute_weight(
    route: dict[str, Any], rule_index: int | None, expected: int | None
) -> None:
    assert route_weight(route, CTX, rule_index) == expected


@pytest.mark.parametrize(
    ("route", "rule_index", "message"),
    [
        pytest.param(_route([OTHER]), None, "no rule of HTTPRoute shop/web", id="no-stable"),
        pytest.param(_route([S]), 3, "ruleIndex 3 does not exist", id="index-out-of-range"),
        pytest.param(_route([S], [OTHER]), 1, "rule 1 of HTTPRoute", id="index-without-stable"),
    ],
)
def test_httproute_misconfigured(
    route: dict[str, Any], rule_index: int | None, message: str
) -> None:
    with pytest.raises(RouteMisconfigured, match=message):
        route_weight(route, CTX, rule_index)


def test_httproute_weight_applied_to_every_stable_rule_and_input_untouched() -> None:
    route = _route([S, OTHER], [OTHER], [{**S, "weight": 1}, {**C, "weight": 1}])
    before = copy.deepcopy(route)
    rules = rules_with_weight(route, CTX, None, 25)
    assert route == before
    assert rules[0]["backendRefs"] == [
        {**S, "weight": 75},
        {**C, "weight": 25},
        OTHER,
    ]
    assert rules[1]["backendRefs"] == [OTHER]
    assert rules[2]["backendRefs"] == [{**S, "weight": 75}, {**C, "weight": 25}]


def test_httproute_zero_does_not_add_a_canary_backend() -> None:
    route = _route([S])
    assert rules_with_weight(route, CTX, None, 0) == route["spec"]["rules"]


@pytest.mark.parametrize(
    ("host", "matches"),
    [
        pytest.param("web", True, id="short"),
        pytest.param("web.shop", True, id="with-namespace"),
        pytest.param("web.shop.svc", True, id="svc"),
        pytest.param("web.shop.svc.cluster.local", True, id="fqdn"),
        pytest.param("web.shop.svc.corp.example", True, id="other-cluster-domain"),
        pytest.param("web.other.svc.cluster.local", False, id="other-namespace"),
        pytest.param("web-canary", False, id="other-service"),
        pytest.param("web.example.com", False, id="external-host"),
    ],
)
def test_istio_host_matching(host: str, matches: bool) -> None:
    assert host_matches(host, "web", "shop") is matches


def _vs(*routes: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "web"}, "spec": {"http": list(routes)}}


def _dest(host: str, weight: int | None = None, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"destination": {"host": host, **extra}}
    if weight is not None:
        entry["weight"] = weight
    return entry


def test_istio_lone_destination_takes_all_traffic() -> None:
    assert vs_weight(_vs({"route": [_dest("web")]}), CTX, None) == 0
    assert vs_weight(_vs({"route": [_dest("web", 80), _dest("web-canary", 20)]}), CTX, None) == 20


def test_istio_named_routes_only() -> None:
    vs = _vs(
        {"name": "primary", "route": [_dest("web", 90), _dest("web-canary", 10)]},
        {"name": "mirror", "route": [_dest("web")]},
    )
    assert vs_weight(vs, CTX, ["primary"]) == 10
    assert vs_weight(vs, CTX, None) is None  # the two routes disagree
    with pytest.raises(RouteMisconfigured, match="no http route named 'missing'"):
        vs_weight(vs, CTX, ["missing"])


def test_istio_canary_destination_copies_the_stable_form_without_subset() -> None:
    vs = _vs(
        {
            "name": "primary",
            "route": [_dest("web.shop.svc.cluster.local", port={"number": 80}, subset="v1")],
        }
    )
    http = http_with_weight(vs, CTX, None, 5)
    assert http[0]["route"] == [
        _dest("web.shop.svc.cluster.local", 95, port={"number": 80}, subset="v1"),
        _dest("web-canary.shop.svc.cluster.local", 5, port={"number": 80}),
    ]


@pytest.mark.parametrize(
    ("deployment", "pods"),
    [
        pytest.param(None, 0, id="missing"),
        pytest.param({"spec": {"replicas": 3}, "status": {"readyReplicas": 3}}, 3, id="ready"),
        pytest.param({"spec": {"replicas": 3}, "status": {}}, 0, id="not-ready"),
        pytest.param(
            {"spec": {"replicas": 1}, "status": {"readyReplicas": 3}}, 1, id="scaling-down"
        ),
    ],
)
def test_replica_ratio_counts_ready_pods_still_wanted(
    deployment: dict[str, Any] | None, pods: int
) -> None:
    assert ready_pods(deployment) == pods


@pytest.mark.parametrize(
    ("stable", "canary", "share"),
    [
        pytest.param(95, 5, 5, id="95-5"),
        pytest.param(1, 1, 50, id="1-1"),
        pytest.param(2, 1, 33, id="rounded"),
        pytest.param(0, 0, None, id="nothing"),
    ],
)
def test_canary_share(stable: float, canary: float, share: int | None) -> None:
    assert canary_share(stable, canary) == share


def test_conditions_ok_ignores_stale_and_absent_conditions() -> None:
    obj = {"metadata": {"generation": 3}}
    refused = {"type": "Accepted", "status": "False", "observedGeneration": 3}
    assert conditions_ok(obj, [], {"Accepted"})
    assert not conditions_ok(obj, [refused], {"Accepted"})
    assert conditions_ok(obj, [{**refused, "observedGeneration": 2}], {"Accepted"})
    assert conditions_ok(obj, [{**refused, "type": "Other"}], {"Accepted"})


def test_nop_router_reports_what_was_set() -> None:
    router = NopRouter()
    assert isinstance(router, TrafficRouter)
    router.set_weight(25)
    router.set_weight(25)
    assert (router.get_weight(), router.writes) == (25, 1)
    assert router.verify(25)
    router.reset()
    assert router.get_weight() == 0
    with pytest.raises(ValueError, match="0-100"):
        router.set_weight(101)
