"""The three-way split (stable, canary, baseline) of each router, against the lab cluster's
kube-apiserver: the objects each router writes, the shares it reads back, ``verify`` and
idempotence. The replica-ratio router's Deployments become ready through the cluster's own
controllers and kwok."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from hack.lab.lab import Lab
from hack.lab.testing.cluster_fixtures import Kubectl
from rollwise.adapters.kube import DEPLOYMENTS, HTTPROUTES, VIRTUALSERVICES, KubeAPI
from rollwise.adapters.traffic import (
    GatewayAPIRouter,
    IstioRouter,
    ReplicaRatioRouter,
    RouterContext,
)
from rollwise.core.traffic import TrafficSplit, weights

pytestmark = pytest.mark.lab

STABLE, CANARY, BASELINE = "web-stable", "web-canary", "web-baseline"
SPLITS = [weights(w, baseline=True) for w in (5, 25, 100)]
ALL_STABLE = TrafficSplit(canary=0, stable=100)
#: Replica ratio: 20 replicas make 5% and 25% exact for all three parts.
REPLICAS = 20


@pytest.fixture(scope="module")
def kube(lab: Lab) -> Iterator[KubeAPI]:
    api_client = lab.api_client()
    yield KubeAPI(api_client)
    api_client.close()


@pytest.fixture
def ns(kube: KubeAPI) -> str:
    name = f"rb-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(kube.api_client).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name))
    )
    return name


def context(ns: str, **extra: Any) -> RouterContext:
    return RouterContext(
        namespace=ns,
        rollout="web",
        stable_service=STABLE,
        canary_service=CANARY,
        replicas=REPLICAS,
        baseline_service=BASELINE,
        **extra,
    )


def eventually(read: Callable[[], Any], want: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    value = read()
    while value != want and time.monotonic() < deadline:
        time.sleep(0.05)
        value = read()
    return value


def _apply(kubectl: Kubectl, ns: str, doc: dict[str, Any]) -> None:
    kubectl("apply", "-f", "-", namespace=ns, check=True, input=json.dumps(doc))


def test_httproute_three_backends(kube: KubeAPI, kubectl: Kubectl, ns: str) -> None:
    _apply(
        kubectl,
        ns,
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "web"},
            "spec": {
                "parentRefs": [{"name": "gateway"}],
                "rules": [{"backendRefs": [{"name": STABLE, "port": 80, "weight": 100}]}],
            },
        },
    )
    router = GatewayAPIRouter(kube, context(ns), "web")

    def refs() -> list[tuple[str, int]]:
        rule = kube.get(HTTPROUTES, ns, "web")["spec"]["rules"][0]
        return [(r["name"], r["weight"]) for r in rule["backendRefs"]]

    for split in SPLITS:
        router.set_weight(split)
        assert refs() == [
            (STABLE, split.stable),
            (CANARY, split.canary),
            (BASELINE, split.baseline),
        ]
        assert router.get_weight() == split.canary
        assert router.get_baseline_weight() == split.baseline
        assert router.verify(split)
        before = kube.get(HTTPROUTES, ns, "web")["metadata"]["resourceVersion"]
        router.set_weight(split)
        assert kube.get(HTTPROUTES, ns, "web")["metadata"]["resourceVersion"] == before
    assert refs() == [(STABLE, 0), (CANARY, 100), (BASELINE, 0)]

    router.set_weight(SPLITS[0])
    # Somebody takes the baseline's share: the canary's share still reads 5, verify says no.
    patch = [{"op": "replace", "path": "/spec/rules/0/backendRefs/2/weight", "value": 0}]
    kubectl("patch", "httproute", "web", "--type=json", "-p", json.dumps(patch), namespace=ns)
    assert refs() == [(STABLE, 90), (CANARY, 5), (BASELINE, 0)]
    assert router.get_baseline_weight() == 0
    assert not router.verify(SPLITS[0])

    router.reset()
    assert refs() == [(STABLE, 100), (CANARY, 0), (BASELINE, 0)]
    assert router.get_weight() == 0
    assert router.verify(ALL_STABLE)


def test_virtualservice_three_destinations(kube: KubeAPI, kubectl: Kubectl, ns: str) -> None:
    _apply(
        kubectl,
        ns,
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
                                    "host": f"{STABLE}.{ns}.svc.cluster.local",
                                    "port": {"number": 80},
                                }
                            }
                        ],
                    }
                ],
            },
        },
    )
    router = IstioRouter(kube, context(ns), "web", ["primary"])

    def destinations() -> list[tuple[str, int]]:
        route = kube.get(VIRTUALSERVICES, ns, "web")["spec"]["http"][0]["route"]
        return [(d["destination"]["host"], d["weight"]) for d in route]

    host = f"{{}}.{ns}.svc.cluster.local"
    for split in SPLITS:
        router.set_weight(split)
        assert destinations() == [
            (host.format(STABLE), split.stable),
            (host.format(CANARY), split.canary),
            (host.format(BASELINE), split.baseline),
        ]
        assert router.get_weight() == split.canary
        assert router.get_baseline_weight() == split.baseline
        assert router.verify(split)
        before = kube.get(VIRTUALSERVICES, ns, "web")["metadata"]["resourceVersion"]
        router.set_weight(split)
        assert kube.get(VIRTUALSERVICES, ns, "web")["metadata"]["resourceVersion"] == before

    router.reset()
    assert [w for _, w in destinations()] == [100, 0, 0]
    assert router.verify(ALL_STABLE)


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


def test_replica_ratio_splits_replicas_three_ways(kube: KubeAPI, ns: str) -> None:
    names = {"stable": "web-s", "canary": "web-c", "baseline": "web-b"}
    for part, name in names.items():
        kube.create(DEPLOYMENTS, ns, _deployment(ns, name, REPLICAS if part == "stable" else 0))
    router = ReplicaRatioRouter(
        kube,
        context(
            ns,
            stable_deployment=names["stable"],
            canary_deployment=names["canary"],
            baseline_deployment=names["baseline"],
        ),
    )

    def wanted() -> tuple[int, ...]:
        return tuple(
            kube.get(DEPLOYMENTS, ns, names[p])["spec"]["replicas"]
            for p in ("stable", "canary", "baseline")
        )

    for split, counts in zip(SPLITS[:2], [(18, 1, 1), (10, 5, 5)], strict=True):
        router.set_weight(split)
        assert wanted() == counts
        assert eventually(router.get_weight, split.canary) == split.canary
        assert eventually(router.get_baseline_weight, split.baseline) == split.baseline
        assert router.verify(split)

    router.reset()
    assert wanted() == (REPLICAS, 0, 0)
    assert eventually(router.get_weight, 0) == 0
    assert router.verify(0)
