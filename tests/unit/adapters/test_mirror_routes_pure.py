"""The operator's mirrors on a routing object (pure): the HTTPRoute ``RequestMirror`` filter
and the VirtualService ``mirror``/``mirrorPercentage`` they render to, what the annotation
records, and that mirrors and filters people wrote are kept."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from rollwise.adapters.errors import RouteMisconfigured
from rollwise.adapters.traffic.base import RouterContext
from rollwise.adapters.traffic.gateway import mirrors_in_effect as gateway_in_effect
from rollwise.adapters.traffic.gateway import rules_with_mirror_routes, rules_with_weight
from rollwise.adapters.traffic.istio import http_with_mirror_routes, http_with_weight
from rollwise.adapters.traffic.istio import mirrors_in_effect as istio_in_effect
from rollwise.adapters.traffic.mirrors import ANNOTATION, recorded
from rollwise.core.traffic import MirrorRoute

CTX = RouterContext(
    namespace="shop", rollout="web", stable_service="web-stable", canary_service="web-canary"
)
SHADOW = MirrorRoute("shadow", 20)
HEADER_FILTER = {
    "type": "RequestHeaderModifier",
    "requestHeaderModifier": {"set": [{"name": "x-env", "value": "prod"}]},
}


def httproute(annotation: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "web", "resourceVersion": "1"}
    if annotation is not None:
        meta["annotations"] = {ANNOTATION: annotation}
    return {
        "metadata": meta,
        "spec": {
            "rules": [
                {
                    "filters": [HEADER_FILTER],
                    "backendRefs": [{"name": "web-stable", "port": 8080}],
                },
                {"backendRefs": [{"name": "other", "port": 80}]},
            ]
        },
    }


def with_rules(route: dict[str, Any], rules: list[dict[str, Any]], value: str | None) -> Any:
    out = copy.deepcopy(route)
    out["spec"]["rules"] = rules
    out["metadata"]["annotations"] = {ANNOTATION: value} if value else {}
    return out


def test_httproute_mirror_is_a_request_mirror_filter_on_the_split_rules_only() -> None:
    route = httproute()
    rules, value = rules_with_mirror_routes(route, CTX, None, (SHADOW,))
    assert rules[0]["filters"] == [
        HEADER_FILTER,
        {
            "type": "RequestMirror",
            "requestMirror": {"backendRef": {"name": "web-canary", "port": 8080}, "percent": 20},
        },
    ]
    assert "filters" not in rules[1]
    written = with_rules(route, rules, value)
    assert recorded(written) == [SHADOW]
    assert gateway_in_effect(written, CTX, None) == (SHADOW,)
    # Writing it again changes nothing; a new weight keeps the filter.
    assert rules_with_mirror_routes(written, CTX, None, (SHADOW,))[0] == rules
    weighted = with_rules(written, rules_with_weight(written, CTX, None, 25), value)
    assert gateway_in_effect(weighted, CTX, None) == (SHADOW,)
    # Removed: the people's filter stays, the annotation goes.
    removed, gone = rules_with_mirror_routes(written, CTX, None, ())
    assert removed[0]["filters"] == [HEADER_FILTER]
    assert gone is None
    assert gateway_in_effect(with_rules(written, removed, gone), CTX, None) == ()


def test_httproute_mirror_percentage_change_replaces_the_filter() -> None:
    route = httproute()
    rules, value = rules_with_mirror_routes(route, CTX, None, (SHADOW,))
    written = with_rules(route, rules, value)
    more = MirrorRoute("shadow", 50)
    rules2, value2 = rules_with_mirror_routes(written, CTX, None, (more,))
    mirrors = [f for f in rules2[0]["filters"] if f["type"] == "RequestMirror"]
    assert [f["requestMirror"]["percent"] for f in mirrors] == [50]
    assert gateway_in_effect(with_rules(written, rules2, value2), CTX, None) == (more,)


def virtualservice(mirror: dict[str, Any] | None = None) -> dict[str, Any]:
    primary: dict[str, Any] = {
        "name": "primary",
        "route": [
            {"destination": {"host": "web-stable.shop.svc.cluster.local", "port": {"number": 80}}}
        ],
    }
    if mirror is not None:
        primary.update(mirror)
    return {"metadata": {"name": "web", "resourceVersion": "1"}, "spec": {"http": [primary]}}


def test_virtualservice_mirror_and_percentage_on_the_split_routes() -> None:
    vs = virtualservice()
    http, value = http_with_mirror_routes(vs, CTX, None, (SHADOW,))
    assert http[0]["mirror"] == {
        "host": "web-canary.shop.svc.cluster.local",
        "port": {"number": 80},
    }
    assert http[0]["mirrorPercentage"] == {"value": 20}
    written = copy.deepcopy(vs)
    written["spec"]["http"] = http
    written["metadata"]["annotations"] = {ANNOTATION: value}
    assert istio_in_effect(written, CTX, None) == (SHADOW,)
    weighted = copy.deepcopy(written)
    weighted["spec"]["http"] = http_with_weight(written, CTX, None, 25)
    assert istio_in_effect(weighted, CTX, None) == (SHADOW,)
    removed, gone = http_with_mirror_routes(written, CTX, None, ())
    assert "mirror" not in removed[0]
    assert "mirrorPercentage" not in removed[0]
    assert gone is None


def test_virtualservice_mirror_people_wrote_is_never_replaced() -> None:
    theirs = {"mirror": {"host": "audit"}, "mirrorPercentage": {"value": 1}}
    vs = virtualservice(theirs)
    with pytest.raises(RouteMisconfigured, match="already mirrors to audit"):
        http_with_mirror_routes(vs, CTX, None, (SHADOW,))
    # Removing the operator's (none) leaves theirs alone.
    http, value = http_with_mirror_routes(vs, CTX, None, ())
    assert http[0]["mirror"] == {"host": "audit"}
    assert value is None


def test_virtualservice_carries_one_mirror() -> None:
    with pytest.raises(RouteMisconfigured, match="single mirror"):
        http_with_mirror_routes(virtualservice(), CTX, None, (SHADOW, MirrorRoute("b", 5)))
