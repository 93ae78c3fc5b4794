"""The contract every traffic router honours, run against the lab cluster's kube-apiserver.

Parametrized over the real routers (Gateway API HTTPRoute, Istio VirtualService, replica
ratio); a new router passes this file by adding one ``RouterCase``. Humans edit the routing
objects with the cluster's ``kubectl``; the replica-ratio router's Deployments become ready
through the cluster's own controllers and kwok. API failures are injected by the lab's fault
proxy, in front of the API server.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from hack.lab.faultproxy import FaultProxy
from hack.lab.lab import Lab
from hack.lab.testing.cluster_fixtures import Kubectl
from rollwise.adapters.errors import Conflict, RouteMisconfigured, RouteNotFound, Unavailable
from rollwise.adapters.kube import DEPLOYMENTS, HTTPROUTES, VIRTUALSERVICES, KubeAPI
from rollwise.adapters.traffic import (
    GatewayAPIRouter,
    IstioRouter,
    ReplicaRatioRouter,
    RouterContext,
    TrafficRouter,
    router_for,
)
from rollwise.core.spec import TrafficRouting
from rollwise.core.traffic import (
    HeaderMatch,
    HeaderRoute,
    MatchKind,
    MirrorRoute,
    cookie_pattern,
    expected_weight,
)

pytestmark = pytest.mark.lab

STABLE_SVC = "web-stable"
CANARY_SVC = "web-canary"
#: Replica-ratio: 20 replicas make 5% and 25% exact (1 and 5 canary pods).
REPLICAS = 20


@dataclass
class Env:
    lab: Lab
    kube: KubeAPI
    kubectl: Kubectl
    faults: FaultProxy


@pytest.fixture(scope="module")
def env(
    lab: Lab, fault_proxy: FaultProxy, proxied_kubeconfig: Path, kubectl: Kubectl
) -> Iterator[Env]:
    """The routers talk to the lab cluster through the fault proxy; kubectl (the humans) goes
    straight to the API server."""
    api_client = config.new_client_from_config(config_file=str(proxied_kubeconfig))  # type: ignore[no-untyped-call]
    yield Env(lab, KubeAPI(api_client), kubectl, fault_proxy)
    fault_proxy.clear()
    api_client.close()


def eventually(read: Callable[[], Any], want: Any, timeout: float = 10.0) -> Any:
    """Polls ``read`` until it returns ``want`` (bounded); returns the last value."""
    deadline = time.monotonic() + timeout
    value = read()
    while value != want and time.monotonic() < deadline:
        time.sleep(0.05)
        value = read()
    return value


def _deployment(ns: str, name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": "web", "rollwise.dev/revision": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "web:1"}]},
            },
        },
    }


# ------------------------------------------------------------------------------------ cases


@dataclass
class RouterCase:
    """How to build one router's world and how a human edits it."""

    routing: TrafficRouting | None
    resource: str  # plural the router writes (fault injection)
    create: Callable[[Env, str], None]
    human_split: Callable[[Env, str, int, int], None]  # (stable weight, canary weight)
    version: Callable[[Env, str], Any]  # changes iff the router wrote
    expected: Callable[[int], int]
    # The context of a router whose routing object does not exist (the test does not call
    # ``create``, so for a named route the context may stay as it is).
    missing: Callable[[RouterContext], RouterContext]

    def context(self, ns: str) -> RouterContext:
        return RouterContext(
            namespace=ns,
            rollout="web",
            stable_service=STABLE_SVC,
            canary_service=CANARY_SVC,
            replicas=REPLICAS,
            stable_deployment="web-stable-rev",
            canary_deployment="web-canary-rev",
        )


def _create_httproute(env: Env, ns: str) -> None:
    env.kubectl(
        "apply",
        "-f",
        "-",
        namespace=ns,
        check=True,
        input=json.dumps(
            {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "HTTPRoute",
                "metadata": {"name": "web"},
                "spec": {
                    "parentRefs": [{"name": "gateway"}],
                    "rules": [
                        {
                            "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                            "backendRefs": [{"name": STABLE_SVC, "port": 80}],
                        }
                    ],
                },
            }
        ),
    )


def _human_httproute(env: Env, ns: str, stable: int, canary: int) -> None:
    patch = [
        {
            "op": "replace",
            "path": "/spec/rules/0/backendRefs",
            "value": [
                {"name": STABLE_SVC, "port": 80, "weight": stable},
                {"name": CANARY_SVC, "port": 80, "weight": canary},
            ],
        }
    ]
    env.kubectl(
        "patch",
        "httproute",
        "web",
        "--type=json",
        "-p",
        json.dumps(patch),
        namespace=ns,
        check=True,
    )


def _create_vs(env: Env, ns: str) -> None:
    env.kubectl(
        "apply",
        "-f",
        "-",
        namespace=ns,
        check=True,
        input=json.dumps(
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "VirtualService",
                "metadata": {"name": "web"},
                "spec": {
                    "hosts": ["web.example.com"],
                    "http": [
                        {
                            "name": "primary",
                            "route": [
                                {
                                    "destination": {
                                        "host": f"{STABLE_SVC}.{ns}.svc.cluster.local",
                                        "port": {"number": 80},
                                    }
                                }
                            ],
                        }
                    ],
                },
            }
        ),
    )


def _human_vs(env: Env, ns: str, stable: int, canary: int) -> None:
    patch = [
        {
            "op": "replace",
            "path": "/spec/http/0/route",
            "value": [
                {"destination": {"host": STABLE_SVC}, "weight": stable},
                {"destination": {"host": CANARY_SVC}, "weight": canary},
            ],
        }
    ]
    env.kubectl(
        "patch",
        "virtualservice",
        "web",
        "--type=json",
        "-p",
        json.dumps(patch),
        namespace=ns,
        check=True,
    )


def _create_deployments(env: Env, ns: str) -> None:
    env.kube.create(DEPLOYMENTS, ns, _deployment(ns, "web-stable-rev", REPLICAS))
    env.kube.create(DEPLOYMENTS, ns, _deployment(ns, "web-canary-rev", 0))


def _human_scale(env: Env, ns: str, stable: int, canary: int) -> None:
    env.kubectl(
        "scale", "deployment/web-stable-rev", f"--replicas={stable}", namespace=ns, check=True
    )
    env.kubectl(
        "scale", "deployment/web-canary-rev", f"--replicas={canary}", namespace=ns, check=True
    )


def _route_rv(resource: Any) -> Callable[[Env, str], Any]:
    def read(env: Env, ns: str) -> Any:
        return env.kube.get(resource, ns, "web")["metadata"]["resourceVersion"]

    return read


def _deployment_generations(env: Env, ns: str) -> Any:
    # Generations, not resourceVersions: the simulator writes status as pods come and go.
    return tuple(
        env.kube.get(DEPLOYMENTS, ns, name)["metadata"]["generation"]
        for name in ("web-stable-rev", "web-canary-rev")
    )


def _renamed(**changes: str) -> Callable[[RouterContext], RouterContext]:
    def rename(ctx: RouterContext) -> RouterContext:
        return dataclasses.replace(ctx, **changes)

    return rename


GATEWAY = RouterCase(
    routing=TrafficRouting.model_validate({"gatewayAPI": {"httpRoute": {"name": "web"}}}),
    resource="httproutes",
    create=_create_httproute,
    human_split=_human_httproute,
    version=_route_rv(HTTPROUTES),
    expected=lambda w: w,
    missing=_renamed(),
)
ISTIO = RouterCase(
    routing=TrafficRouting.model_validate(
        {"istio": {"virtualService": {"name": "web", "routes": ["primary"]}}}
    ),
    resource="virtualservices",
    create=_create_vs,
    human_split=_human_vs,
    version=_route_rv(VIRTUALSERVICES),
    expected=lambda w: w,
    missing=_renamed(),
)
REPLICA_RATIO = RouterCase(
    routing=None,
    resource="deployments",
    create=_create_deployments,
    human_split=_human_scale,
    version=_deployment_generations,
    expected=lambda w: expected_weight(REPLICAS, w, router=False),
    missing=_renamed(stable_deployment="no-such-deployment"),
)
CASES = [
    pytest.param(GATEWAY, id="gateway-api"),
    pytest.param(ISTIO, id="istio"),
    pytest.param(REPLICA_RATIO, id="replica-ratio"),
]


@pytest.fixture
def ns(env: Env) -> str:
    name = f"rc-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(env.kube.api_client).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name))
    )
    return name


def _router(env: Env, case: RouterCase, ctx: RouterContext) -> TrafficRouter:
    return router_for(case.routing, ctx, env.kube)


# ------------------------------------------------------------------------------------ tests


def test_registry_picks_the_router_of_the_spec(env: Env) -> None:
    ctx = RouterContext("ns", "web", STABLE_SVC, CANARY_SVC)
    kinds = [type(_router(env, case, ctx)) for case in (GATEWAY, ISTIO, REPLICA_RATIO)]
    assert kinds == [GatewayAPIRouter, IstioRouter, ReplicaRatioRouter]


@pytest.mark.parametrize("case", CASES)
def test_weights_read_back_and_set_is_idempotent(env: Env, ns: str, case: RouterCase) -> None:
    case.create(env, ns)
    router = _router(env, case, case.context(ns))
    assert isinstance(router, TrafficRouter)
    assert eventually(router.get_weight, 0) == 0

    for weight in (0, 5, 25, 100):
        router.set_weight(weight)
        want = case.expected(weight)
        assert eventually(router.get_weight, want) == want, f"set {weight}"
        assert router.verify(weight)
        before = case.version(env, ns)
        router.set_weight(weight)
        assert case.version(env, ns) == before, f"second set_weight({weight}) wrote"

    router.reset()
    assert eventually(router.get_weight, 0) == 0
    assert router.verify(0)
    assert not router.verify(25)


@pytest.mark.parametrize("case", CASES)
def test_weight_is_read_from_the_object_not_remembered(env: Env, ns: str, case: RouterCase) -> None:
    case.create(env, ns)
    router = _router(env, case, case.context(ns))
    router.set_weight(5)
    assert eventually(router.get_weight, case.expected(5)) == case.expected(5)

    case.human_split(env, ns, 10, 10)  # a human splits 50/50 behind the operator's back

    assert eventually(router.get_weight, 50) == 50
    assert not router.verify(5)
    router.set_weight(5)  # the next pass re-asserts the desired weight
    assert eventually(router.get_weight, case.expected(5)) == case.expected(5)


@pytest.mark.parametrize("case", CASES)
def test_missing_route_is_route_not_found(env: Env, ns: str, case: RouterCase) -> None:
    router = _router(env, case, case.missing(case.context(ns)))
    with pytest.raises(RouteNotFound) as got:
        router.get_weight()
    assert not got.value.retryable
    with pytest.raises(RouteNotFound):
        router.set_weight(25)


@pytest.mark.parametrize("case", CASES)
def test_api_failures_surface_as_kube_errors(env: Env, ns: str, case: RouterCase) -> None:
    case.create(env, ns)
    router = _router(env, case, case.context(ns))
    assert eventually(router.get_weight, 0) == 0
    faults = env.faults

    faults.fail_next(1, status=409, verb="patch", resource=case.resource, namespace=ns)
    with pytest.raises(Conflict) as conflict:
        router.set_weight(25)
    assert conflict.value.retryable
    assert conflict.value.status == 409

    faults.fail_next(1, status=503, verb="get", resource=case.resource, namespace=ns)
    with pytest.raises(Unavailable) as unavailable:
        router.get_weight()
    assert unavailable.value.retryable

    router.set_weight(25)  # the retry succeeds
    assert eventually(router.get_weight, case.expected(25)) == case.expected(25)


def test_httproute_write_from_a_stale_read_is_a_conflict(
    env: Env, ns: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Optimistic concurrency: the write carries the resourceVersion it read, so an edit made
    between our read and our write is never overwritten."""
    _create_httproute(env, ns)
    router = GatewayAPIRouter(env.kube, GATEWAY.context(ns), "web")
    stale = env.kube.get(HTTPROUTES, ns, "web")
    _human_httproute(env, ns, 50, 50)
    monkeypatch.setattr(router, "_read", lambda: stale)

    with pytest.raises(Conflict):
        router.set_weight(25)
    monkeypatch.undo()
    assert router.get_weight() == 50


def test_httproute_canary_backend_is_added_next_to_stable(env: Env, ns: str) -> None:
    _create_httproute(env, ns)
    router = GatewayAPIRouter(env.kube, GATEWAY.context(ns), "web")
    router.set_weight(25)
    refs = env.kube.get(HTTPROUTES, ns, "web")["spec"]["rules"][0]["backendRefs"]
    assert refs == [
        {"name": STABLE_SVC, "port": 80, "weight": 75},
        {"name": CANARY_SVC, "port": 80, "weight": 25},
    ]


def test_httproute_rejected_by_its_gateway_fails_verify(env: Env, ns: str) -> None:
    _create_httproute(env, ns)
    router = GatewayAPIRouter(env.kube, GATEWAY.context(ns), "web")
    router.set_weight(5)
    route = env.kube.get(HTTPROUTES, ns, "web")
    condition = {
        "type": "Accepted",
        "status": "False",
        "reason": "NotAllowedByListeners",
        "message": "no listener accepts this route",
        "observedGeneration": route["metadata"]["generation"],
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }
    status = {
        "parents": [
            {
                "parentRef": {"name": "gateway"},
                "controllerName": "lab/gw",
                "conditions": [condition],
            }
        ]
    }
    client.CustomObjectsApi(env.kube.api_client).patch_namespaced_custom_object_status(
        "gateway.networking.k8s.io",
        "v1",
        ns,
        "httproutes",
        "web",
        {"status": status},
        _content_type="application/merge-patch+json",
    )
    assert router.get_weight() == 5
    assert not router.verify(5)


def test_virtualservice_canary_host_keeps_the_stable_host_form(env: Env, ns: str) -> None:
    _create_vs(env, ns)
    router = IstioRouter(env.kube, ISTIO.context(ns), "web", ["primary"])
    router.set_weight(5)
    route = env.kube.get(VIRTUALSERVICES, ns, "web")["spec"]["http"][0]["route"]
    assert route == [
        {
            "destination": {"host": f"{STABLE_SVC}.{ns}.svc.cluster.local", "port": {"number": 80}},
            "weight": 95,
        },
        {
            "destination": {"host": f"{CANARY_SVC}.{ns}.svc.cluster.local", "port": {"number": 80}},
            "weight": 5,
        },
    ]


# ------------------------------------------------------------------------------------ header routes

BETA = HeaderRoute("beta", (HeaderMatch("x-segment", MatchKind.EXACT, "beta"),))
GAMMA = HeaderRoute(
    "gamma",
    (
        HeaderMatch("x-version", MatchKind.PREFIX, "v2"),
        HeaderMatch("Cookie", MatchKind.REGEX, cookie_pattern("tier", "gold")),
    ),
)
HEADER_CASES = [pytest.param(GATEWAY, id="gateway-api"), pytest.param(ISTIO, id="istio")]


def _entries(env: Env, ns: str, case: RouterCase) -> list[dict[str, Any]]:
    if case is GATEWAY:
        return list(env.kube.get(HTTPROUTES, ns, "web")["spec"]["rules"])
    return list(env.kube.get(VIRTUALSERVICES, ns, "web")["spec"]["http"])


@pytest.mark.parametrize("case", HEADER_CASES)
def test_header_routes_read_back_are_idempotent_and_removed_cleanly(
    env: Env, ns: str, case: RouterCase
) -> None:
    case.create(env, ns)
    router = _router(env, case, case.context(ns))
    router.set_weight(25)
    before = _entries(env, ns, case)
    assert router.get_header_routes() == ()

    router.set_header_routes((BETA, GAMMA))
    assert eventually(router.get_header_routes, (BETA, GAMMA)) == (BETA, GAMMA)
    version = case.version(env, ns)
    router.set_header_routes((BETA, GAMMA))
    assert case.version(env, ns) == version, "a second set_header_routes wrote"
    # The weight is untouched, and weights written later leave the header routes alone.
    assert router.get_weight() == 25
    router.set_weight(50)
    assert eventually(router.get_weight, 50) == 50
    assert router.verify(50)
    assert router.get_header_routes() == (BETA, GAMMA)

    router.set_header_routes((GAMMA,))  # one removed
    assert eventually(router.get_header_routes, (GAMMA,)) == (GAMMA,)
    router.set_header_routes(())
    assert eventually(router.get_header_routes, ()) == ()
    router.set_weight(25)
    assert _entries(env, ns, case) == before
    annotations = (
        env.kube.get(HTTPROUTES if case is GATEWAY else VIRTUALSERVICES, ns, "web")["metadata"].get(
            "annotations"
        )
        or {}
    )
    assert "rollwise.dev/header-routes" not in annotations


@pytest.mark.parametrize("case", HEADER_CASES)
def test_header_routes_edited_away_are_not_reported(env: Env, ns: str, case: RouterCase) -> None:
    case.create(env, ns)
    router = _router(env, case, case.context(ns))
    router.set_weight(5)
    router.set_header_routes((BETA,))
    assert eventually(router.get_header_routes, (BETA,)) == (BETA,)
    # A human removes the operator's rule behind its back: it is no longer in effect.
    field = "rules" if case is GATEWAY else "http"
    kept = [e for e in _entries(env, ns, case) if e not in _header_entries(env, ns, case)]
    env.kubectl(
        "patch",
        case.resource,
        "web",
        "--type=merge",
        "-p",
        json.dumps({"spec": {field: kept}}),
        namespace=ns,
        check=True,
    )
    assert eventually(router.get_header_routes, ()) == ()
    router.set_header_routes((BETA,))  # the next pass writes it again
    assert eventually(router.get_header_routes, (BETA,)) == (BETA,)


def _header_entries(env: Env, ns: str, case: RouterCase) -> list[dict[str, Any]]:
    """The routing object's entries that send everything to the canary Service alone."""
    out = []
    for entry in _entries(env, ns, case):
        targets = entry.get("backendRefs") or entry.get("route") or []
        names = [t.get("name") or (t.get("destination") or {}).get("host", "") for t in targets]
        if len(names) == 1 and names[0].startswith(CANARY_SVC):
            out.append(entry)
    return out


def test_httproute_header_rule_matches_the_target_rules_paths_and_routes_to_the_canary(
    env: Env, ns: str
) -> None:
    _create_httproute(env, ns)
    router = GatewayAPIRouter(env.kube, GATEWAY.context(ns), "web")
    router.set_header_routes((GAMMA,))
    rules = env.kube.get(HTTPROUTES, ns, "web")["spec"]["rules"]
    assert rules[0]["backendRefs"] == [{"name": STABLE_SVC, "port": 80}]  # ruleIndex 0 kept
    assert rules[1] == {
        "matches": [
            {
                "path": {"type": "PathPrefix", "value": "/"},
                "headers": [
                    {"type": "RegularExpression", "name": "x-version", "value": "^v2.*"},
                    {
                        "type": "RegularExpression",
                        "name": "Cookie",
                        "value": cookie_pattern("tier", "gold"),
                    },
                ],
            }
        ],
        "backendRefs": [{"name": CANARY_SVC, "port": 80, "weight": 1}],
    }


def test_virtualservice_header_route_comes_first_with_lower_case_headers(env: Env, ns: str) -> None:
    _create_vs(env, ns)
    router = IstioRouter(env.kube, ISTIO.context(ns), "web", ["primary"])
    router.set_header_routes((GAMMA,))
    http = env.kube.get(VIRTUALSERVICES, ns, "web")["spec"]["http"]
    assert [r.get("name") for r in http] == ["rollwise-gamma", "primary"]
    assert http[0]["match"] == [
        {
            "headers": {
                "x-version": {"prefix": "v2"},
                "cookie": {"regex": cookie_pattern("tier", "gold")},
            }
        }
    ]
    assert http[0]["route"] == [
        {
            "destination": {"host": f"{CANARY_SVC}.{ns}.svc.cluster.local", "port": {"number": 80}},
            "weight": 100,
        }
    ]
    assert router.get_weight() == 0  # the primary route still carries the split


def test_replica_ratio_refuses_header_routes(env: Env, ns: str) -> None:
    REPLICA_RATIO.create(env, ns)
    router = _router(env, REPLICA_RATIO, REPLICA_RATIO.context(ns))
    with pytest.raises(RouteMisconfigured, match="cannot route by header"):
        router.set_header_routes((BETA,))
    router.set_header_routes(())  # removing none is a no-op
    assert router.get_header_routes() == ()


# ------------------------------------------------------------------------------------ mirrors

SHADOW = MirrorRoute("shadow", 20)


def _mirror_fields(env: Env, ns: str, case: RouterCase) -> list[Any]:
    """What each entry carrying the split holds of a mirror, as the API server stores it."""
    if case is GATEWAY:
        rules = env.kube.get(HTTPROUTES, ns, "web")["spec"]["rules"]
        return [
            r.get("filters")
            for r in rules
            if r.get("backendRefs", [{}])[0].get("name") == STABLE_SVC
        ]
    http = env.kube.get(VIRTUALSERVICES, ns, "web")["spec"]["http"]
    return [
        (r.get("mirror"), r.get("mirrorPercentage")) for r in http if r.get("name") == "primary"
    ]


@pytest.mark.parametrize("case", HEADER_CASES)
def test_mirror_routes_read_back_are_idempotent_kept_by_weights_and_removed_cleanly(
    env: Env, ns: str, case: RouterCase
) -> None:
    case.create(env, ns)
    router = _router(env, case, case.context(ns))
    router.set_weight(25)
    before = _entries(env, ns, case)
    assert router.get_mirror_routes() == ()

    router.set_mirror_routes((SHADOW,))
    assert eventually(router.get_mirror_routes, (SHADOW,)) == (SHADOW,)
    version = case.version(env, ns)
    router.set_mirror_routes((SHADOW,))
    assert case.version(env, ns) == version, "a second set_mirror_routes wrote"
    # The mirror moves no weight, and weights written later keep the mirror.
    assert router.get_weight() == 25
    router.set_weight(50)
    assert eventually(router.get_weight, 50) == 50
    assert router.verify(50)
    assert router.get_mirror_routes() == (SHADOW,)

    more = MirrorRoute("shadow", 50)
    router.set_mirror_routes((more,))
    assert eventually(router.get_mirror_routes, (more,)) == (more,)
    router.set_mirror_routes(())
    assert eventually(router.get_mirror_routes, ()) == ()
    router.set_weight(25)
    assert _entries(env, ns, case) == before
    resource = HTTPROUTES if case is GATEWAY else VIRTUALSERVICES
    annotations = env.kube.get(resource, ns, "web")["metadata"].get("annotations") or {}
    assert "rollwise.dev/mirror-routes" not in annotations


def test_httproute_mirror_is_a_request_mirror_filter_to_the_canary(env: Env, ns: str) -> None:
    _create_httproute(env, ns)
    router = GatewayAPIRouter(env.kube, GATEWAY.context(ns), "web")
    router.set_mirror_routes((SHADOW,))
    rule = env.kube.get(HTTPROUTES, ns, "web")["spec"]["rules"][0]
    assert rule["filters"] == [
        {
            "type": "RequestMirror",
            "requestMirror": {"backendRef": {"name": CANARY_SVC, "port": 80}, "percent": 20},
        }
    ]
    assert rule["backendRefs"] == [{"name": STABLE_SVC, "port": 80}]


def test_virtualservice_mirror_keeps_the_stable_host_form(env: Env, ns: str) -> None:
    _create_vs(env, ns)
    router = IstioRouter(env.kube, ISTIO.context(ns), "web", ["primary"])
    router.set_mirror_routes((SHADOW,))
    http = env.kube.get(VIRTUALSERVICES, ns, "web")["spec"]["http"]
    primary = next(r for r in http if r.get("name") == "primary")
    assert primary["mirror"] == {
        "host": f"{CANARY_SVC}.{ns}.svc.cluster.local",
        "port": {"number": 80},
    }
    assert primary["mirrorPercentage"] == {"value": 20}
    assert router.get_weight() == 0


@pytest.mark.parametrize("case", HEADER_CASES)
def test_mirror_edited_away_is_not_reported(env: Env, ns: str, case: RouterCase) -> None:
    case.create(env, ns)
    router = _router(env, case, case.context(ns))
    router.set_mirror_routes((SHADOW,))
    assert eventually(router.get_mirror_routes, (SHADOW,)) == (SHADOW,)
    # A human takes the mirror off behind the operator's back: it is no longer in effect.
    field = "rules" if case is GATEWAY else "http"
    mirror_keys = ("filters", "mirror", "mirrorPercentage")
    edited = [
        {k: v for k, v in entry.items() if k not in mirror_keys}
        for entry in _entries(env, ns, case)
    ]
    env.kubectl(
        "patch",
        case.resource,
        "web",
        "--type=merge",
        "-p",
        json.dumps({"spec": {field: edited}}),
        namespace=ns,
        check=True,
    )
    assert eventually(router.get_mirror_routes, ()) == ()
    router.set_mirror_routes((SHADOW,))  # the next pass writes it again
    assert eventually(router.get_mirror_routes, (SHADOW,)) == (SHADOW,)
    assert _mirror_fields(env, ns, case)


def test_replica_ratio_refuses_mirrors(env: Env, ns: str) -> None:
    REPLICA_RATIO.create(env, ns)
    router = _router(env, REPLICA_RATIO, REPLICA_RATIO.context(ns))
    with pytest.raises(RouteMisconfigured, match="cannot mirror"):
        router.set_mirror_routes((SHADOW,))
    router.set_mirror_routes(())  # removing none is a no-op
    assert router.get_mirror_routes() == ()
