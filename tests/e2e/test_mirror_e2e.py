"""Mirroring (shadow traffic) end to end in the lab: ``examples/rollout-mirror`` with
test-sized steps, the real operator, and the lab's traffic generator following the HTTPRoute as
a gateway would: at weight 0 every client request is answered by stable, and the
``RequestMirror`` filter's share of them is copied to the canary (Host suffixed ``-shadow``),
the copies' answers discarded.

What reaches which revision is read from the demo services' own counters in Prometheus
(``http_requests_total`` by revision, ``mirrored="true"`` for the copies), never from the
operator's memory.
"""

from __future__ import annotations

import json

import pytest

from rollwise.core.observations import revision_of
from tests.e2e.support import (
    NAME,
    Cluster,
    StartOperator,
    eventually,
    example_docs,
    rollout_of,
)
from tests.e2e.test_segments_e2e import IMAGE_2, rollwise

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(240),
    pytest.mark.lab_only("runs an operator process of its own and the lab's traffic generator"),
]

ANNOTATION = "rollwise.dev/mirror-routes"


class Counts:
    """The demo services' request counters of one namespace, as Prometheus scraped them."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.ns = cluster.namespace

    def requests(self, revision: str, mirrored: str) -> float:
        promql = (
            f'sum(http_requests_total{{namespace="{self.ns}",service="demo",'
            f'revision="{revision}",mirrored="{mirrored}"}})'
        )
        return self.cluster.prometheus.query(promql) or 0.0

    def snapshot(self, old: str, new: str) -> dict[str, float]:
        return {
            "stable": self.requests(old, "false"),
            "stable_mirrored": self.requests(old, "true"),
            "canary": self.requests(new, "false"),
            "canary_mirrored": self.requests(new, "true"),
        }


def mirror_filters(cluster: Cluster) -> list[object]:
    """The RequestMirror filters of the HTTPRoute's rules."""
    return [
        f
        for rule in cluster.route()["spec"]["rules"]
        for f in rule.get("filters") or []
        if f.get("type") == "RequestMirror"
    ]


def test_mirroring_at_weight_0_copies_the_share_to_the_canary_and_goes_at_completion(
    cluster: Cluster, start_operator: StartOperator
) -> None:
    docs = example_docs("rollout-mirror", cluster.test_id)
    canary = rollout_of(docs)["spec"]["strategy"]["canary"]
    canary["steps"] = [
        {"setMirrorRoute": {"name": "shadow", "percentage": 50}},
        {"pause": {}},
        {"setWeight": 100},
    ]
    canary["scaleDownDelaySeconds"] = 2
    cluster.apply(docs)
    start_operator("--namespace", cluster.namespace)
    cluster.k("wait", "--for=condition=Ready", f"rollout/{NAME}", "--timeout=30s")
    old = str(cluster.status()["stableRevision"])
    assert mirror_filters(cluster) == []

    generator = cluster.the_lab.start_traffic(f"httproute/{cluster.namespace}/{NAME}", rate=40)
    cluster.patch_template(IMAGE_2)
    new = revision_of(cluster.rollout()["spec"]["template"])

    def paused_with_mirror() -> bool:
        s = cluster.status()
        return (
            s.get("phase") == "Paused"
            and s.get("currentStepIndex") == 1
            and s.get("canaryWeight") == 0
            and s.get("mirrorRoutes") == [{"name": "shadow", "percentage": 50}]
        )

    eventually(paused_with_mirror, timeout=60, what="the canary paused at 0% with a mirror")
    assert cluster.route_weight() == 0
    assert mirror_filters(cluster) == [
        {
            "type": "RequestMirror",
            "requestMirror": {"backendRef": {"name": "demo-canary", "port": 80}, "percent": 50},
        }
    ]
    recorded = json.loads(cluster.route()["metadata"]["annotations"][ANNOTATION])
    assert recorded == [{"name": "shadow", "percentage": 50}]
    assert cluster.reasons().count("MirrorRouteSet") == 1

    shown = rollwise(cluster, "get", "rollout", NAME)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "Mirror:      shadow: 50% of requests copied to the canary" in shown.stdout

    # Measure over a window that starts once copies already reach the canary.
    counts = Counts(cluster)
    eventually(
        lambda: counts.requests(new, "true") >= 20,
        timeout=30,
        what="Prometheus to count mirrored requests on the canary",
        every=0.5,
    )
    start = counts.snapshot(old, new)
    eventually(
        lambda: counts.requests(old, "false") - start["stable"] >= 200,
        timeout=60,
        what="a window of 200 stable requests",
        every=0.5,
    )
    end = counts.snapshot(old, new)
    delta = {key: end[key] - start[key] for key in start}
    print(f"requests in the window: {delta}")
    # Clients reach stable alone; the canary receives only copies, about half of them (the
    # window's edges are a scrape apart).
    assert delta["canary"] == 0, "a client request reached the canary at weight 0"
    assert delta["stable_mirrored"] == 0, "a copy reached the stable revision"
    share = delta["canary_mirrored"] / delta["stable"]
    assert 0.35 <= share <= 0.65, f"mirrored share {share:.3f}"
    # What the clients got came from stable only: the copies' answers were discarded.
    answered = {revision for revision, _code in generator.stats.codes}
    assert new not in answered
    assert generator.stats.mirrored[new] > 0

    promoted = rollwise(cluster, "promote", NAME)
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr

    def completed() -> bool:
        s = cluster.status()
        return s.get("phase") == "Healthy" and s.get("stableRevision") == new

    eventually(completed, timeout=60, what="the canary to complete")
    assert "mirrorRoutes" not in cluster.status()
    eventually(lambda: mirror_filters(cluster) == [], timeout=10, what="the mirror removed")
    assert ANNOTATION not in (cluster.route()["metadata"].get("annotations") or {})
    assert cluster.route_weight() == 0


def test_istio_analysis_of_the_copies_rolls_back_and_removes_the_mirror(
    cluster: Cluster, start_operator: StartOperator
) -> None:
    """``examples/rollout-istio`` with shadow traffic first and an analysis of the mirrored
    copies alone (``mirrored="true"``, the query of ``examples/rollout-mirror``): the canary
    answers every copy with a 500, the analysis fails and rolls back, the VirtualService's
    mirror goes, and no client ever got an error (the copies' answers were discarded)."""
    docs = example_docs("rollout-istio", cluster.test_id)
    canary = rollout_of(docs)["spec"]["strategy"]["canary"]
    example = rollout_of(example_docs("rollout-mirror", cluster.test_id))
    shadow_metric = example["spec"]["strategy"]["canary"]["steps"][1]["analysis"]["metrics"][0]
    query = shadow_metric["provider"]["prometheus"]["query"].replace("[1m]", "[10s]")
    canary["steps"] = [
        {"setMirrorRoute": {"name": "shadow", "percentage": 50}},
        {
            "analysis": {
                "inconclusiveLimit": 10,
                "metrics": [
                    {
                        "name": "shadow-error-ratio",
                        "interval": "2s",
                        "count": 6,
                        "successCondition": "result < 0.05",
                        "provider": {"prometheus": {"query": query}},
                    }
                ],
            }
        },
        {"pause": {}},
        {"setWeight": 100},
    ]
    canary.pop("analysis")
    canary["scaleDownDelaySeconds"] = 2
    cluster.apply(docs)
    start_operator("--namespace", cluster.namespace)
    cluster.k("wait", "--for=condition=Ready", f"rollout/{NAME}", "--timeout=30s")
    old = str(cluster.status()["stableRevision"])
    generator = cluster.the_lab.start_traffic(f"virtualservice/{cluster.namespace}/{NAME}", rate=40)
    cluster.patch_template(IMAGE_2)
    new = revision_of(cluster.rollout()["spec"]["template"])
    # The canary's demo service starts with its pods, before the mirror sends it anything.
    cluster.the_lab.demo(new, timeout=60).configure(error_ratio=1.0)

    def mirrored() -> bool:
        primary = cluster.virtual_service()["spec"]["http"][-1]
        return primary.get("mirrorPercentage") == {"value": 50}

    eventually(mirrored, timeout=60, what="the VirtualService's mirror")
    primary = cluster.virtual_service()["spec"]["http"][-1]
    assert primary["mirror"]["host"].split(".")[0] == "demo-canary"

    status = eventually(
        lambda: (s := cluster.status()).get("phase") == "Degraded" and s,
        timeout=90,
        what="the analysis of the copies to roll back",
    )
    assert status["stableRevision"] == old
    assert "mirrorRoutes" not in status
    events = cluster.events()
    reasons = [e["reason"] for e in events]
    assert "MirrorRouteSet" in reasons
    assert "RolledBack" in reasons
    failed = [e["message"] for e in events if e["reason"] == "AnalysisFailed"]
    assert failed, reasons
    assert "shadow-error-ratio" in failed[0], failed
    eventually(
        lambda: "mirror" not in cluster.virtual_service()["spec"]["http"][-1],
        timeout=10,
        what="the mirror removed",
    )
    vs = cluster.virtual_service()
    assert "mirrorPercentage" not in vs["spec"]["http"][-1]
    assert ANNOTATION not in (vs["metadata"].get("annotations") or {})
    counts = Counts(cluster)
    assert counts.requests(new, "true") > 0
    assert counts.requests(new, "false") == 0, "a client request reached the canary"
    # Every answer the clients got came from stable, and none was an error.
    assert {revision for revision, _code in generator.stats.codes} == {old}
    assert all(code == 200 for _revision, code in generator.stats.codes)
    assert generator.stats.mirrored_codes[(new, 500)] > 0
