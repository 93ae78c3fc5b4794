"""Header-routed segments end to end in the lab: ``examples/rollout-header-route`` with
test-sized steps, the real operator, and the lab's traffic generator sending a tagged share of
its requests (``x-segment: beta``). The generator follows the HTTPRoute as a gateway would:
tagged requests take the operator's header rule, untagged ones the weighted rule.

What reaches which revision is read from the demo services' own counters in Prometheus
(``http_requests_total`` by revision, ``http_segment_requests_total`` for the tagged ones),
never from the generator's or the operator's memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from hack.lab.testing.cluster_fixtures import kubectl_binary
from rollwise.core.observations import revision_of
from tests.e2e.support import (
    NAME,
    OPERATOR,
    Cluster,
    StartOperator,
    eventually,
    example_docs,
    patient,
    rollout_of,
)

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(240),
    pytest.mark.lab_only("runs an operator process of its own and the lab's traffic generator"),
]

IMAGE_2 = [
    {
        "op": "replace",
        "path": "/spec/template/spec/containers/0/image",
        "value": "ghcr.io/rollwise/demo-service:1.1.0",
    }
]
ANNOTATION = "rollwise.dev/header-routes"


def rollwise(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    """``kubectl rollwise ARGS -n NAMESPACE`` (the plugin from the venv)."""
    env = {
        **os.environ,
        "PATH": f"{OPERATOR.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "KUBECONFIG": str(cluster.kubeconfig),
    }
    return subprocess.run(
        [str(kubectl_binary()), "rollwise", *args, "-n", cluster.namespace],
        capture_output=True,
        text=True,
        env=env,
        timeout=patient(30),
        check=False,
    )


class Counts:
    """The demo services' request counters of one namespace, as Prometheus scraped them."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.ns = cluster.namespace

    def _value(self, promql: str, at: float | None = None) -> float:
        return self.cluster.prometheus.query(promql, at) or 0.0

    def all(self, revision: str, at: float | None = None) -> float:
        return self._value(
            f'sum(http_requests_total{{namespace="{self.ns}",service="demo",'
            f'revision="{revision}"}})',
            at,
        )

    def tagged(self, revision: str, at: float | None = None) -> float:
        return self._value(
            f'sum(http_segment_requests_total{{namespace="{self.ns}",service="demo",'
            f'revision="{revision}",segment="beta"}})',
            at,
        )

    def snapshot(self, old: str, new: str) -> dict[str, float]:
        """The four counters at one instant: queried at different instants, a scrape between
        two queries would count requests in one counter and not yet in the other."""
        at = time.time()
        return {
            "stable": self.all(old, at),
            "canary": self.all(new, at),
            "stable_tagged": self.tagged(old, at),
            "canary_tagged": self.tagged(new, at),
        }


def header_rules(cluster: Cluster) -> list[dict[str, object]]:
    """The HTTPRoute's rules that carry header matches."""
    return [
        rule
        for rule in cluster.route()["spec"]["rules"]
        if any(m.get("headers") for m in rule.get("matches") or [])
    ]


def test_tagged_requests_reach_only_the_canary_and_the_route_goes_at_completion(
    cluster: Cluster, start_operator: StartOperator
) -> None:
    docs = example_docs("rollout-header-route", cluster.test_id)
    canary = rollout_of(docs)["spec"]["strategy"]["canary"]
    beta, cookie = canary["steps"][0], canary["steps"][1]
    canary["steps"] = [beta, cookie, {"setWeight": 20}, {"pause": {}}, {"setWeight": 100}]
    canary["scaleDownDelaySeconds"] = 2
    canary.pop("analysis")  # what reaches which revision is under test, not the checks
    cluster.apply(docs)
    start_operator("--namespace", cluster.namespace)
    cluster.k("wait", "--for=condition=Ready", f"rollout/{NAME}", "--timeout=30s")
    old = str(cluster.status()["stableRevision"])
    assert header_rules(cluster) == []

    # 40 requests/s, a quarter of them tagged x-segment: beta.
    cluster.the_lab.start_traffic(
        f"httproute/{cluster.namespace}/{NAME}",
        rate=40,
        tag=("x-segment", "beta"),
        tagged_share=0.25,
    )
    cluster.patch_template(IMAGE_2)
    new = revision_of(cluster.rollout()["spec"]["template"])

    def paused_with_segments() -> bool:
        s = cluster.status()
        return (
            s.get("phase") == "Paused"
            and s.get("currentStepIndex") == 3
            and s.get("canaryWeight") == 20
            and [r["name"] for r in s.get("headerRoutes") or []] == ["beta", "beta-cookie"]
        )

    eventually(paused_with_segments, timeout=60, what="the canary paused at 20% with 2 segments")
    assert cluster.route_weight() == 20
    rules = header_rules(cluster)
    assert len(rules) == 2
    assert all(rule["backendRefs"][0]["name"] == "demo-canary" for rule in rules)
    recorded = json.loads(cluster.route()["metadata"]["annotations"][ANNOTATION])
    assert [r["name"] for r in recorded] == ["beta", "beta-cookie"]
    reasons = cluster.reasons()
    assert reasons.count("HeaderRouteSet") == 2

    shown = rollwise(cluster, "get", "rollout", NAME)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "Segments:    beta: x-segment exact 'beta' -> canary" in shown.stdout

    # Measure over a window that starts once tagged requests already reach the canary (the
    # generator follows the route within its watch's latency).
    counts = Counts(cluster)
    eventually(
        lambda: counts.tagged(new) >= 20,
        timeout=30,
        what="Prometheus to count tagged requests on the canary",
        every=0.5,
    )
    start = counts.snapshot(old, new)
    eventually(
        lambda: (
            counts.tagged(new) - start["canary_tagged"] >= 60
            and counts.all(old) - start["stable"] >= 150
        ),
        timeout=60,
        what="a window of 60 tagged and 150 stable requests",
        every=0.5,
    )
    end = counts.snapshot(old, new)
    delta = {key: end[key] - start[key] for key in start}
    print(f"requests in the window: {delta}")
    assert delta["stable_tagged"] == 0, "a tagged request reached the stable revision"
    assert delta["canary_tagged"] >= 60
    untagged_canary = delta["canary"] - delta["canary_tagged"]
    untagged_total = delta["stable"] - delta["stable_tagged"] + untagged_canary
    share = untagged_canary / untagged_total
    # Untagged requests follow the weight (20%); the window's edges are a scrape apart.
    assert 0.12 <= share <= 0.28, f"untagged canary share {share:.3f}"

    promoted = rollwise(cluster, "promote", NAME)
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr

    def completed() -> bool:
        s = cluster.status()
        return s.get("phase") == "Healthy" and s.get("stableRevision") == new

    eventually(completed, timeout=60, what="the canary to complete")
    assert "headerRoutes" not in cluster.status()
    eventually(lambda: header_rules(cluster) == [], timeout=10, what="the header rules removed")
    annotations = cluster.route()["metadata"].get("annotations") or {}
    assert ANNOTATION not in annotations
    assert cluster.route_weight() == 0


def test_abort_removes_the_segments_before_the_canary_goes(
    cluster: Cluster, start_operator: StartOperator
) -> None:
    docs = example_docs("rollout-header-route", cluster.test_id)
    canary = rollout_of(docs)["spec"]["strategy"]["canary"]
    canary["steps"] = [canary["steps"][0], {"pause": {}}, {"setWeight": 100}]
    canary.pop("analysis")
    cluster.apply(docs)
    start_operator("--namespace", cluster.namespace)
    cluster.k("wait", "--for=condition=Ready", f"rollout/{NAME}", "--timeout=30s")
    old = str(cluster.status()["stableRevision"])
    cluster.patch_template(IMAGE_2)
    eventually(
        lambda: cluster.status().get("phase") == "Paused" and len(header_rules(cluster)) == 1,
        timeout=60,
        what="the beta segment on the canary",
    )
    aborted = rollwise(cluster, "abort", NAME)
    assert aborted.returncode == 0, aborted.stdout + aborted.stderr
    eventually(
        lambda: (
            cluster.status().get("phase") == "Degraded"
            and cluster.status().get("stableRevision") == old
        ),
        timeout=60,
        what="the canary aborted",
    )
    eventually(lambda: header_rules(cluster) == [], timeout=10, what="the header rules removed")
    assert "headerRoutes" not in cluster.status()
    assert ANNOTATION not in (cluster.route()["metadata"].get("annotations") or {})


def test_istio_tagged_requests_reach_only_the_canary_before_any_weight(
    cluster: Cluster, start_operator: StartOperator
) -> None:
    """``examples/rollout-istio`` with a segment first: the VirtualService gets the operator's
    http route ``rollwise-beta`` before ``primary``; tagged requests (the generator takes the
    first route a request meets, as Istio does) reach only the canary while the weight is 0."""
    docs = example_docs("rollout-istio", cluster.test_id)
    canary = rollout_of(docs)["spec"]["strategy"]["canary"]
    canary["steps"] = [
        {
            "setHeaderRoute": {
                "name": "beta",
                "match": [{"headerName": "X-Segment", "headerValue": {"prefix": "bet"}}],
            }
        },
        {"pause": {}},
        {"setWeight": 100},
    ]
    canary.pop("analysis")
    cluster.apply(docs)
    start_operator("--namespace", cluster.namespace)
    cluster.k("wait", "--for=condition=Ready", f"rollout/{NAME}", "--timeout=30s")
    old = str(cluster.status()["stableRevision"])
    cluster.the_lab.start_traffic(
        f"virtualservice/{cluster.namespace}/{NAME}",
        rate=40,
        tag=("x-segment", "beta"),
        tagged_share=0.25,
    )
    cluster.patch_template(IMAGE_2)
    new = revision_of(cluster.rollout()["spec"]["template"])
    eventually(
        lambda: (
            cluster.status().get("phase") == "Paused" and bool(cluster.status().get("headerRoutes"))
        ),
        timeout=60,
        what="the beta segment on the canary",
    )
    http = cluster.virtual_service()["spec"]["http"]
    assert [r.get("name") for r in http] == ["rollwise-beta", "primary"]
    assert http[0]["match"] == [{"headers": {"x-segment": {"prefix": "bet"}}}]

    counts = Counts(cluster)
    eventually(
        lambda: counts.tagged(new) >= 20,
        timeout=30,
        what="Prometheus to count tagged requests on the canary",
        every=0.5,
    )
    start = counts.snapshot(old, new)
    eventually(
        lambda: counts.tagged(new) - start["canary_tagged"] >= 40,
        timeout=60,
        what="a window of 40 tagged requests",
        every=0.5,
    )
    end = counts.snapshot(old, new)
    delta = {key: end[key] - start[key] for key in start}
    print(f"requests in the window: {delta}")
    assert delta["stable_tagged"] == 0, "a tagged request reached the stable revision"
    # Weight 0: the canary's requests are the tagged ones alone; stable has all the others.
    assert delta["canary"] == delta["canary_tagged"]
    assert delta["stable"] > 0

    promoted = rollwise(cluster, "promote", NAME)
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    eventually(
        lambda: (
            cluster.status().get("phase") == "Healthy"
            and cluster.status().get("stableRevision") == new
        ),
        timeout=60,
        what="the canary to complete",
    )
    eventually(
        lambda: [r.get("name") for r in cluster.virtual_service()["spec"]["http"]] == ["primary"],
        timeout=10,
        what="the operator's http route removed",
    )
