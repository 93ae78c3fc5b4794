"""A canary judged against a baseline, end to end: the real operator process in the lab,
driven with kubectl and the manifests of ``examples/rollout-baseline`` (test-sized timings).

What is checked is what a user and the data plane see: the HTTPRoute's three backendRefs, the
share of requests the lab's traffic generator sends to each revision as it follows the route,
the baseline's Deployment and ``status.baseline``, and that the baseline's requests count under
a revision of their own.
"""

from __future__ import annotations

from typing import Any

import pytest

from rollwise.core.observations import baseline_revision_of, revision_of
from tests.e2e.support import (
    INTERVAL,
    NAME,
    Cluster,
    OperatorProcess,
    eventually,
    example_docs,
    fast_metric,
    rollout_of,
)

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(90),
    pytest.mark.lab_only("needs the lab's traffic generator and demo services"),
]

IMAGE_2 = [
    {
        "op": "replace",
        "path": "/spec/template/spec/containers/0/image",
        "value": "ghcr.io/rollwise/demo-service:1.1.0",
    }
]
BAD = {
    "op": "add",
    "path": "/spec/template/metadata/annotations",
    "value": {"lab.rollwise.dev/error-ratio": "0.2"},
}


def baseline_docs(test_id: str) -> list[dict[str, Any]]:
    """The example with steps 5 → (pause 3 s) → 25 → (pause 3 s) → 100, measured every
    second over 10 s windows."""
    docs = example_docs("rollout-baseline", test_id)
    canary = rollout_of(docs)["spec"]["strategy"]["canary"]
    canary["steps"] = [
        {"setWeight": 5},
        {"pause": {"duration": "3s"}},
        {"setWeight": 25},
        {"pause": {"duration": "3s"}},
        {"setWeight": 100},
    ]
    canary["scaleDownDelaySeconds"] = 2
    analysis = canary["analysis"]
    analysis["interval"] = f"{INTERVAL:g}s"
    # The first measurement of a step may come before the baseline has a rate to compare.
    analysis["inconclusiveLimit"] = 3
    for metric in analysis["metrics"]:
        fast_metric(metric)
    return docs


def backend_weights(cluster: Cluster) -> dict[str, int]:
    refs = cluster.route()["spec"]["rules"][0]["backendRefs"]
    return {r["name"]: int(r.get("weight", 1)) for r in refs}


def rounded(weights: dict[str, float]) -> dict[str, int]:
    """The generator's fractions per revision as whole percents (0 left out)."""
    return {rev: round(100 * w) for rev, w in weights.items() if round(100 * w)}


def healthy(cluster: Cluster) -> str:
    cluster.apply(baseline_docs(cluster.test_id))
    cluster.k("wait", "--for=condition=Ready", f"rollout/{NAME}", "--timeout=30s")
    return str(cluster.status()["stableRevision"])


def test_a_baseline_takes_the_canarys_share_at_5_and_25_and_is_removed_at_100(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    old = healthy(cluster)
    baseline = baseline_revision_of(old)
    generator = cluster.the_lab.start_traffic(f"httproute/{cluster.namespace}/{NAME}", rate=100)
    cluster.patch_template(IMAGE_2)
    new = revision_of(cluster.rollout()["spec"]["template"])

    splits: list[dict[str, int]] = []  # the generator's split per revision, in order seen
    routes: list[dict[str, int]] = []  # the route's backendRef weights, in order seen
    statuses: list[dict[str, Any]] = []  # status.baseline, in order seen

    def done() -> bool:
        split = rounded(generator.weights)
        if not splits or splits[-1] != split:
            splits.append(split)
        route = backend_weights(cluster)
        if not routes or routes[-1] != route:
            routes.append(route)
        status = cluster.status()
        part = status.get("baseline")
        if part and (not statuses or statuses[-1] != part):
            statuses.append(part)
        return status.get("phase") == "Healthy" and status.get("stableRevision") == new

    eventually(done, timeout=45, what="the new revision to become stable", every=0.05)
    print(f"generator splits seen: {splits}\nroute weights seen: {routes}")

    # The traffic generator follows the route: 90/5/5, then 50/25/25, then all on the canary.
    assert {old: 90, baseline: 5, new: 5} in splits, splits
    assert {old: 50, baseline: 25, new: 25} in splits, splits
    assert splits.index({old: 90, baseline: 5, new: 5}) < splits.index(
        {old: 50, baseline: 25, new: 25}
    )
    assert {"demo-stable": 90, "demo-canary": 5, "demo-baseline": 5} in routes, routes
    assert {"demo-stable": 50, "demo-canary": 25, "demo-baseline": 25} in routes, routes
    eventually(
        lambda: rounded(generator.weights) == {new: 100},
        timeout=10,
        what="all traffic on the new revision",
    )

    # The status named the baseline with its weight and pods at each step.
    shown = [(s["revision"], s["stableRevision"], s["weight"]) for s in statuses]
    assert (baseline, old, 5) in shown, statuses
    assert (baseline, old, 25) in shown, statuses
    assert all(s["replicas"] == 1 for s in statuses if s["weight"] in (5, 25)), statuses

    # The baseline's requests counted under its own revision, answered like the stable's.
    served = generator.served()
    assert served.get(baseline, 0) > 0, served
    assert cluster.the_lab.demo(new).revision == new

    # Removed at the end: its Deployment, its status, its share of the route.
    eventually(
        lambda: cluster.deployments() == {f"{NAME}-{new}"},
        timeout=15,
        what="only the new revision's Deployment left",
    )
    assert "baseline" not in cluster.status()
    assert backend_weights(cluster) == {"demo-stable": 100, "demo-canary": 0, "demo-baseline": 0}
    assert cluster.selector("demo-baseline").get("rollwise.dev/revision") == new
    assert not [e for e in cluster.events() if e["type"] == "Warning"]


def test_a_canary_worse_than_its_baseline_is_rolled_back_and_the_baseline_removed(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    old = healthy(cluster)
    baseline = baseline_revision_of(old)
    generator = cluster.the_lab.start_traffic(f"httproute/{cluster.namespace}/{NAME}", rate=100)
    cluster.patch_template([*IMAGE_2, BAD])
    bad = revision_of(cluster.rollout()["spec"]["template"])

    eventually(
        lambda: f"{NAME}-{baseline}" in cluster.deployments(),
        timeout=15,
        what="the baseline's Deployment",
    )
    status = eventually(
        lambda: (s := cluster.status()).get("phase") == "Degraded" and s,
        timeout=30,
        what="the canary rolled back",
    )
    assert status["rolledBackRevision"] == bad
    assert status["stableRevision"] == old
    assert "baseline" not in status
    run = status["analysis"]
    check = next(m for m in run["metrics"] if m["name"] == "errors-above-baseline")
    assert [m for m in check["measurements"] if m["verdict"] == "Fail"], check

    # The baseline ran the stable's template and behaviour: no 5xx; the canary's did fail.
    codes = generator.stats.codes
    assert codes.get((baseline, 200), 0) > 0, codes
    assert codes.get((baseline, 500), 0) == 0, codes
    assert codes.get((bad, 500), 0) > 0, codes

    eventually(
        lambda: f"{NAME}-{baseline}" not in cluster.deployments(),
        timeout=15,
        what="the baseline's Deployment deleted",
    )
    assert backend_weights(cluster) == {"demo-stable": 100, "demo-canary": 0, "demo-baseline": 0}
    eventually(
        lambda: rounded(generator.weights) == {old: 100},
        timeout=10,
        what="all traffic back on the stable revision",
    )
    warnings = [e["reason"] for e in cluster.events() if e["type"] == "Warning"]
    assert "RolledBack" in warnings, warnings


def test_without_a_router_the_replicas_split_three_ways_and_traffic_follows(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    """Replica ratio: one Service over every revision's pods, so the baseline's share is its
    share of the pods: 20 replicas split 18/1/1 at 5% and 10/5/5 at 25%."""
    docs = example_docs("rollout-replica-ratio", cluster.test_id)
    spec = rollout_of(docs)["spec"]
    spec["replicas"] = 20
    canary = spec["strategy"]["canary"]
    canary["baseline"] = True
    canary["steps"] = [
        {"setWeight": 5},
        {"pause": {"duration": "3s"}},
        {"setWeight": 25},
        {"pause": {"duration": "3s"}},
        {"setWeight": 100},
    ]
    canary["scaleDownDelaySeconds"] = 2
    cluster.apply(docs)
    cluster.k("wait", "--for=condition=Ready", f"rollout/{NAME}", "--timeout=30s")
    old = str(cluster.status()["stableRevision"])
    baseline = baseline_revision_of(old)
    generator = cluster.the_lab.start_traffic(f"service/{cluster.namespace}/demo", rate=100)
    cluster.patch_template(IMAGE_2)
    new = revision_of(cluster.rollout()["spec"]["template"])
    names = (f"{NAME}-{old}", f"{NAME}-{baseline}", f"{NAME}-{new}")

    pods: list[tuple[int, ...]] = []  # ready (stable, baseline, canary) pods, in order seen
    splits: list[dict[str, int]] = []

    def done() -> bool:
        ready = {name: counts[1] for name, counts in cluster.replicas().items()}
        seen = tuple(ready.get(name, 0) for name in names)
        if not pods or pods[-1] != seen:
            pods.append(seen)
        split = rounded(generator.weights)
        if not splits or splits[-1] != split:
            splits.append(split)
        status = cluster.status()
        return status.get("phase") == "Healthy" and status.get("stableRevision") == new

    eventually(done, timeout=60, what="the new revision to become stable", every=0.05)
    print(f"ready (stable, baseline, canary) pods seen: {pods}\ngenerator splits: {splits}")
    assert (18, 1, 1) in pods, pods
    assert (10, 5, 5) in pods, pods
    assert {old: 90, baseline: 5, new: 5} in splits, splits
    assert {old: 50, baseline: 25, new: 25} in splits, splits
    weight_set = [e["message"] for e in cluster.events() if e["reason"] == "WeightSet"]
    assert (
        "replica-ratio: 1 canary, 1 baseline and 18 stable pods, about 5% to the canary"
        in (weight_set[0])
    ), weight_set
    eventually(
        lambda: cluster.deployments() == {f"{NAME}-{new}"},
        timeout=15,
        what="only the new revision's Deployment left",
    )
