"""The traffic generator follows the routing written in the API server: HTTPRoute weights (a
change shows in real Prometheus within 2 s), VirtualService weights, replica ratio."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from hack.lab.lab import Lab
from hack.lab.prometheus import PrometheusServer
from hack.lab.service import is_mirrored
from hack.lab.traffic import (
    RouteTarget,
    httproute_header_rule,
    httproute_mirror,
    virtualservice_header_route,
    virtualservice_mirror,
)

pytestmark = pytest.mark.lab

#: Apps of unique names in the session cluster's ``default`` namespace.
NS = "default"


@pytest.fixture(autouse=True)
def _traffic_stops(lab: Lab) -> Iterator[None]:
    yield
    lab.stop_traffic()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("httproute/prod/web", RouteTarget("httproute", "prod", "web"), id="full"),
        pytest.param(
            "VirtualService/web", RouteTarget("virtualservice", "default", "web"), id="short"
        ),
        pytest.param("service/a/b", RouteTarget("service", "a", "b"), id="replica-ratio"),
    ],
)
def test_route_target_parses(text: str, expected: RouteTarget) -> None:
    assert RouteTarget.parse(text) == expected


@pytest.mark.parametrize(
    "text", [pytest.param("ingress/a/b", id="unknown-kind"), pytest.param("x", id="no-name")]
)
def test_route_target_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="KIND/NAMESPACE/NAME"):
        RouteTarget.parse(text)


def _wait(check: Callable[[], Any], timeout: float = 5.0, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout} s")
        time.sleep(step)


class App:
    """Two revisions of one demo app with a stable and a canary Service, created over HTTP."""

    def __init__(self, lab: Lab, replicas: tuple[int, int] = (1, 1)) -> None:
        self.lab = lab
        self.api = lab.api_client()
        self.app = f"demo-{uuid.uuid4().hex[:6]}"
        self.stable, self.canary = f"{self.app}-s", f"{self.app}-c"
        apps, core = client.AppsV1Api(self.api), client.CoreV1Api(self.api)
        for revision, count in zip((self.stable, self.canary), replicas, strict=True):
            labels = {"app": self.app, "rollwise.dev/revision": revision}
            apps.create_namespaced_deployment(
                NS,
                {
                    "metadata": {"name": revision, "labels": labels},
                    "spec": {
                        "replicas": count,
                        "selector": {"matchLabels": labels},
                        "template": {
                            "metadata": {"labels": labels},
                            "spec": {"containers": [{"name": "app", "image": "demo:1"}]},
                        },
                    },
                },
            )
        for name, selector in (
            (f"{self.app}-stable", {"app": self.app, "rollwise.dev/revision": self.stable}),
            (f"{self.app}-canary", {"app": self.app, "rollwise.dev/revision": self.canary}),
            (self.app, {"app": self.app}),
        ):
            core.create_namespaced_service(
                NS,
                {
                    "metadata": {"name": name},
                    "spec": {"selector": selector, "ports": [{"port": 80}]},
                },
            )
        self.demos = {rev: lab.demo(rev) for rev in (self.stable, self.canary)}
        # Until the simulator marks its pods ready, a revision has no endpoints to route to.
        _wait(
            lambda: all(
                (apps.read_namespaced_deployment_status(rev, NS).status.ready_replicas or 0) == n
                for rev, n in zip((self.stable, self.canary), replicas, strict=True)
            )
        )

    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)


def _httproute(name: str, app: str, stable: int, canary: int) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "parentRefs": [{"name": "gateway"}],
            "rules": [
                {
                    "backendRefs": [
                        {"name": f"{app}-stable", "port": 80, "weight": stable},
                        {"name": f"{app}-canary", "port": 80, "weight": canary},
                    ]
                }
            ],
        },
    }


def test_httproute_weight_change_shows_in_prometheus_within_2s(
    lab: Lab, prometheus: PrometheusServer
) -> None:
    """Measures, for a patch of the HTTPRoute from 100/0 to 50/50, the time from the moment
    before the PATCH request is sent to the timestamp of the first sample Prometheus scraped in
    which the canary's request counter is above zero (its value before the patch). That span
    covers the API server's watch event, the generator's re-routing, the first canary request
    and Prometheus' next scrape (every 250 ms). It must be below 2 s; after the change the
    canary's share of the requests Prometheus counts must settle near 50%."""
    app = App(lab)
    routes = ("gateway.networking.k8s.io", "v1", NS, "httproutes")
    app.custom().create_namespaced_custom_object(*routes, _httproute(app.app, app.app, 100, 0))
    generator = lab.start_traffic(f"httproute/{NS}/{app.app}", rate=100, duration=20)
    stable_sel = f'http_requests_total{{service="{app.app}",revision="{app.stable}"}}'
    canary_sel = f'http_requests_total{{service="{app.app}",revision="{app.canary}"}}'
    _wait(lambda: (prometheus.query(f"sum({stable_sel})") or 0) > 0)
    assert prometheus.query(f"sum({canary_sel})") == 0.0

    patched_at = time.time()
    app.custom().patch_namespaced_custom_object(
        *routes, app.app, _httproute(app.app, app.app, 50, 50)
    )

    def first_canary_sample() -> float | None:
        series = prometheus.samples(canary_sel, "10s")
        stamps = [t for _labels, values in series for t, v in values if v > 0]
        return min(stamps) if stamps else None

    first = _wait(first_canary_sample, timeout=5.0)
    print(f"canary traffic in Prometheus {first - patched_at:.3f} s after the patch")
    assert first - patched_at < 2.0, (
        f"canary traffic reached Prometheus {first - patched_at:.2f} s after the patch"
    )

    # The split itself: over the last 2 s, half of the requests Prometheus saw went to the canary.
    time.sleep(2.5)
    share = prometheus.query(
        f"sum(increase({canary_sel}[2s])) / "
        f'sum(increase(http_requests_total{{service="{app.app}"}}[2s]))'
    )
    assert share is not None
    assert 0.4 <= share <= 0.6
    assert generator.stats.sent[app.canary] > 0


def test_virtualservice_weights_split_requests(lab: Lab) -> None:
    app = App(lab)
    vs = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": app.app, "namespace": NS},
        "spec": {
            "hosts": [app.app],
            "http": [
                {
                    "name": "primary",
                    "route": [
                        {"destination": {"host": f"{app.app}-stable"}, "weight": 80},
                        {
                            "destination": {"host": f"{app.app}-canary.{NS}.svc.cluster.local"},
                            "weight": 20,
                        },
                    ],
                }
            ],
        },
    }
    app.custom().create_namespaced_custom_object(
        "networking.istio.io", "v1", NS, "virtualservices", vs
    )
    generator = lab.start_traffic(f"virtualservice/{NS}/{app.app}", rate=200, count=100)
    lab.loop.run(generator.wait(timeout=5))
    served = generator.served()
    assert served == {app.stable: 80, app.canary: 20}, generator.stats
    assert app.demos[app.canary].served["200"] == 20


def test_replica_ratio_follows_ready_replicas(lab: Lab) -> None:
    app = App(lab, replicas=(3, 1))
    generator = lab.start_traffic(f"service/{NS}/{app.app}", rate=200, count=100)
    lab.loop.run(generator.wait(timeout=5))
    assert generator.served() == {app.stable: 75, app.canary: 25}


def test_inference_service_traffic_follows_its_status(lab: Lab) -> None:
    api = client.CustomObjectsApi(lab.api_client())
    args = ("serving.kserve.io", "v1beta1", NS, "inferenceservices")
    name = f"m{uuid.uuid4().hex[:6]}"

    def isvc(uri: str, canary: int | None) -> dict[str, Any]:
        predictor: dict[str, Any] = {"model": {"storageUri": uri}}
        if canary is not None:
            predictor["canaryTrafficPercent"] = canary
        return {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": name},
            "spec": {"predictor": predictor},
        }

    def split() -> dict[str, int]:
        status = api.get_namespaced_custom_object(*args, name).get("status", {})
        traffic = status.get("components", {}).get("predictor", {}).get("traffic", [])
        return {t["revisionName"]: t["percent"] for t in traffic}

    api.create_namespaced_custom_object(*args, isvc("s3://m/1", None))
    _wait(lambda: split() == {f"{name}-predictor-00001": 100})
    api.patch_namespaced_custom_object(*args, name, isvc("s3://m/2", 25))
    _wait(lambda: split() == {f"{name}-predictor-00002": 25, f"{name}-predictor-00001": 75})

    generator = lab.start_traffic(f"inferenceservice/{NS}/{name}", rate=200, count=100)
    lab.loop.run(generator.wait(timeout=5))
    assert generator.served() == {f"{name}-predictor-00001": 75, f"{name}-predictor-00002": 25}


# ------------------------------------------------------------------ header matches


def _rule(backend: str, *headers: dict[str, str], path: str = "/") -> dict[str, Any]:
    match: dict[str, Any] = {"path": {"type": "PathPrefix", "value": path}}
    if headers:
        match["headers"] = list(headers)
    return {"matches": [match], "backendRefs": [{"name": backend, "port": 80}]}


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({"x-segment": "beta"}, "beta", id="exact"),
        pytest.param({"X-Segment": "beta"}, "beta", id="name-case-insensitive"),
        pytest.param({"x-segment": "beta", "x-tier": "gold"}, "gold", id="more-headers-win"),
        pytest.param({"x-segment": "alpha"}, None, id="no-match"),
        pytest.param({"cookie": "a=1; segment=beta"}, "cookie", id="regex-whole-value"),
        pytest.param({"cookie": "segment=betamax"}, None, id="regex-is-anchored"),
    ],
)
def test_httproute_header_rule_follows_gateway_precedence(
    headers: dict[str, str], expected: str | None
) -> None:
    rules = [
        _rule("weighted"),
        _rule("beta", {"type": "Exact", "name": "x-segment", "value": "beta"}),
        _rule(
            "gold",
            {"type": "Exact", "name": "x-segment", "value": "beta"},
            {"name": "x-tier", "value": "gold"},
        ),
        _rule(
            "cookie",
            {"type": "RegularExpression", "name": "Cookie", "value": "(.*;\\s*)?segment=beta"},
        ),
        _rule("elsewhere", {"name": "x-segment", "value": "beta"}, path="/admin"),
    ]
    chosen = httproute_header_rule(rules, 0, headers)
    assert (chosen["backendRefs"][0]["name"] if chosen else None) == expected


def test_virtualservice_header_route_is_the_first_that_matches() -> None:
    routes = [
        {"name": "rollwise-beta", "match": [{"headers": {"x-segment": {"exact": "beta"}}}]},
        {"name": "rollwise-v", "match": [{"headers": {"x-version": {"prefix": "v2"}}}]},
        {"name": "primary", "route": []},
    ]
    pick = virtualservice_header_route
    assert (pick(routes, {"X-Segment": "beta"}) or {}).get("name") == "rollwise-beta"
    assert (pick(routes, {"x-version": "v2.1"}) or {}).get("name") == "rollwise-v"
    assert pick(routes, {"x-version": "v1"}) is None  # the weighted route's case


# ------------------------------------------------------------------ mirrors


def _mirror_filter(**spec: Any) -> dict[str, Any]:
    return {
        "type": "RequestMirror",
        "requestMirror": {"backendRef": {"name": "web-canary"}, **spec},
    }


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        pytest.param(
            {"filters": [_mirror_filter(percent=20)]}, (("ns", "web-canary"), 0.2), id="percent"
        ),
        pytest.param(
            {"filters": [_mirror_filter(fraction={"numerator": 1, "denominator": 8})]},
            (("ns", "web-canary"), 0.125),
            id="fraction",
        ),
        pytest.param(
            {"filters": [_mirror_filter(fraction={"numerator": 3})]},
            (("ns", "web-canary"), 0.03),
            id="fraction-default-denominator",
        ),
        pytest.param({"filters": [_mirror_filter()]}, (("ns", "web-canary"), 1.0), id="all"),
        pytest.param(
            {"filters": [{"type": "RequestHeaderModifier"}, _mirror_filter(percent=5)]},
            (("ns", "web-canary"), 0.05),
            id="among-other-filters",
        ),
        pytest.param({"filters": [{"type": "RequestHeaderModifier"}]}, None, id="none"),
    ],
)
def test_httproute_mirror_reads_percent_and_fraction(
    rule: dict[str, Any], expected: tuple[tuple[str, str], float] | None
) -> None:
    assert httproute_mirror(rule, "ns") == expected


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        pytest.param(
            {
                "mirror": {"host": "web-canary.shop.svc.cluster.local"},
                "mirrorPercentage": {"value": 20},
            },
            (("shop", "web-canary"), 0.2),
            id="qualified-host",
        ),
        pytest.param({"mirror": {"host": "web-canary"}}, (("ns", "web-canary"), 1.0), id="all"),
        pytest.param({"route": []}, None, id="none"),
    ],
)
def test_virtualservice_mirror_reads_host_and_percentage(
    route: dict[str, Any], expected: tuple[tuple[str, str], float] | None
) -> None:
    assert virtualservice_mirror(route, "ns") == expected


@pytest.mark.parametrize(
    ("host", "mirrored"),
    [
        pytest.param("web.shop-shadow", True, id="shadow"),
        pytest.param("web.shop-shadow:8080", True, id="shadow-with-port"),
        pytest.param("127.0.0.1:8080", False, id="plain"),
        pytest.param("shadow.example.com", False, id="word-elsewhere"),
        pytest.param("", False, id="empty"),
    ],
)
def test_the_demo_service_tells_mirrored_copies_by_their_host(host: str, mirrored: bool) -> None:
    assert is_mirrored(host) is mirrored
