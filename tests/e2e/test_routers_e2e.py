"""The other traffic routers end to end: replica ratio (no mesh) and an Istio VirtualService,
each from its example (``examples/rollout-replica-ratio``, ``examples/rollout-istio``) with
test-sized timings, driven with kubectl against the real operator process in the lab.

What is checked is what a user would look at: the revision Deployments' replica counts or the
VirtualService's destination weights, the Rollout's status, its events, the Services' selectors
and, for the data plane, the share of requests Prometheus records per revision.
"""

from __future__ import annotations

from typing import Any

import pytest

from rollwise.core.observations import revision_of
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
    pytest.mark.timeout(60),
    pytest.mark.lab_only("needs the lab's traffic generator (and, for Istio, its Istio CRDs)"),
]

IMAGE_2 = [
    {
        "op": "replace",
        "path": "/spec/template/spec/containers/0/image",
        "value": "ghcr.io/rollwise/demo-service:1.1.0",
    }
]

#: Replicas of the replica-ratio test: 20 makes every step a distinct split (5% is 1 pod of 20,
#: 25% is 5); the example's 4 would realise both 5% and 25% as 1 canary pod next to 3 stable.
RATIO_REPLICAS = 20


def share_query(revision: str, other: str, window: str = "2s") -> str:
    """PromQL: the share of the demo's requests that ``revision`` answered."""
    return (
        f'sum(rate(http_requests_total{{service="demo",revision="{revision}"}}[{window}])) / '
        f'sum(rate(http_requests_total{{service="demo",revision=~"{revision}|{other}"}}'
        f"[{window}]))"
    )


def in_order(seen: list[Any], expected: list[Any]) -> bool:
    """Whether ``expected`` is a subsequence of ``seen``."""
    it = iter(seen)
    return all(any(item == wanted for item in it) for wanted in expected)


def replica_ratio_docs(test_id: str) -> list[dict[str, Any]]:
    """The replica-ratio example with 20 replicas and steps 5 → (pause 4 s) → 25 → (the
    example's analysis step, measured three times a second apart) → 100."""
    docs = example_docs("rollout-replica-ratio", test_id)
    spec = rollout_of(docs)["spec"]
    spec["replicas"] = RATIO_REPLICAS
    canary = spec["strategy"]["canary"]
    analysis = next(step["analysis"] for step in canary["steps"] if "analysis" in step)
    analysis["interval"] = f"{INTERVAL:g}s"
    for metric in analysis["metrics"]:
        fast_metric(metric, count=3)
    canary["steps"] = [
        {"setWeight": 5},
        {"pause": {"duration": "4s"}},
        {"setWeight": 25},
        {"analysis": analysis},
        {"setWeight": 100},
    ]
    canary["scaleDownDelaySeconds"] = 2
    return docs


def test_replica_ratio_realises_5_25_100_as_replica_counts_and_traffic_follows(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    cluster.apply(replica_ratio_docs(cluster.test_id))
    cluster.k("wait", "--for=condition=Ready", f"rollout/{NAME}", "--timeout=30s")
    old = str(cluster.status()["stableRevision"])
    assert cluster.replicas() == {f"{NAME}-{old}": (RATIO_REPLICAS, RATIO_REPLICAS)}
    cluster.the_lab.start_traffic(f"service/{cluster.namespace}/demo", rate=100)
    cluster.patch_template(IMAGE_2)
    new = revision_of(cluster.rollout()["spec"]["template"])
    old_name, new_name = f"{NAME}-{old}", f"{NAME}-{new}"

    splits: list[tuple[int, int]] = []  # (stable, canary) ready pods, in the order seen
    status_weights: list[int] = []
    shares: dict[tuple[int, int], list[float]] = {}  # Prometheus's canary share, per split
    selectors: set[tuple[str | None, str | None]] = set()
    checked: set[int] = set()  # weights whose Service selectors were looked at
    share = share_query(new, old)

    def done() -> bool:
        ready = {name: counts[1] for name, counts in cluster.replicas().items()}
        split = (ready.get(old_name, 0), ready.get(new_name, 0))
        if not splits or splits[-1] != split:
            splits.append(split)
        status = cluster.status()
        weight = int(status.get("canaryWeight", 0))
        if not status_weights or status_weights[-1] != weight:
            status_weights.append(weight)
        if status.get("canaryRevision") == new and 0 < weight < 100:
            if weight not in checked:
                checked.add(weight)
                selectors.add(
                    (
                        cluster.selector("demo-stable").get("rollwise.dev/revision"),
                        cluster.selector("demo-canary").get("rollwise.dev/revision"),
                    )
                )
            measured = cluster.prometheus.query(share)
            if measured is not None:
                shares.setdefault(split, []).append(measured)
        # Healthy may come before the old revision's Deployment status shows its pods gone
        # (the ReplicaSet and Deployment controllers write status after kwok removed them): the
        # last split is seen once the old revision has no ready pod left.
        promoted = status.get("phase") == "Healthy" and status.get("stableRevision") == new
        return promoted and split[0] == 0

    eventually(done, timeout=40, what="the new revision to become stable", every=0.1)
    print(f"ready (stable, canary) pods seen: {splits}; status weights seen: {status_weights}")
    # The status shows each step's weight (100 lasts only until the promotion, which the poll
    # may miss; the events below name all three).
    assert in_order(status_weights, [0, 5, 25]), status_weights
    assert {w for w in status_weights if w} <= {5, 25, 100}, status_weights
    weight_set = [e["message"] for e in cluster.events() if e["reason"] == "WeightSet"]
    assert len(weight_set) == 3, weight_set
    for message, (weight, canary, stable) in zip(
        weight_set, [(5, 1, 19), (25, 5, 15), (100, 20, 0)], strict=True
    ):
        assert f"canary weight set to {weight}% (replica-ratio: {canary} canary and {stable} " in (
            message
        )
    # Each weight is a replica split of the two revision Deployments (a pod of 20 is 5%).
    assert in_order(splits, [(19, 1), (15, 5), (0, 20)]), splits
    # One Service over both revisions: Prometheus sees the canary's share follow its pods.
    for split, expected in (((19, 1), 0.05), ((15, 5), 0.25)):
        closest = min(shares.get(split, [9.9]), key=lambda v: abs(v - expected))
        print(f"split {split}: Prometheus share closest to {expected}: {closest:.3f}")
        assert abs(closest - expected) < 0.03, (split, shares.get(split))
    # During the canary each of demo-stable and demo-canary selects one revision.
    assert selectors == {(old, new)}, selectors

    reasons = cluster.reasons()
    assert in_order(
        reasons,
        ["RevisionDetected", "WeightSet", "StepAdvanced", "WeightSet", "AnalysisPassed"],
    ), reasons
    assert in_order(reasons, ["WeightSet", "RolloutCompleted"]), reasons
    assert not any(e["type"] == "Warning" for e in cluster.events())
    eventually(
        lambda: cluster.deployments() == {new_name},
        timeout=10,
        what=f"the old revision {old} to be deleted",
    )
    eventually(
        lambda: (cluster.prometheus.query(share) or 0) > 0.99,
        timeout=10,
        what="Prometheus to see all traffic on the new revision",
        every=0.25,
    )
    assert cluster.selector("demo-stable").get("rollwise.dev/revision") == new


def istio_docs(test_id: str) -> list[dict[str, Any]]:
    """The Istio example without its manual pause, its analysis measured twice a second
    apart."""
    docs = example_docs("rollout-istio", test_id)
    canary = rollout_of(docs)["spec"]["strategy"]["canary"]
    canary["steps"] = [s for s in canary["steps"] if "pause" not in s]
    canary["scaleDownDelaySeconds"] = 2
    canary["analysis"]["interval"] = f"{INTERVAL:g}s"
    for metric in canary["analysis"]["metrics"]:
        fast_metric(metric)
    return docs


def test_istio_virtualservice_weights_go_5_25_100(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    docs = istio_docs(cluster.test_id)
    assert [s["setWeight"] for s in rollout_of(docs)["spec"]["strategy"]["canary"]["steps"]] == [
        5,
        25,
        100,
    ]
    cluster.apply(docs)
    cluster.k("wait", "--for=condition=Ready", f"rollout/{NAME}", "--timeout=30s")
    old = str(cluster.status()["stableRevision"])
    assert cluster.destination_weights() == {"demo-stable": 100, "demo-canary": 0}
    cluster.the_lab.start_traffic(f"virtualservice/{cluster.namespace}/{NAME}", rate=50)
    cluster.patch_template(IMAGE_2)
    new = revision_of(cluster.rollout()["spec"]["template"])

    seen: list[dict[str, int]] = []

    def done() -> bool:
        # The status first: the operator moves the traffic before it writes Healthy, so the
        # weights read after a Healthy status are the final ones (read before it, they could
        # be the last step's, with Healthy written in between).
        status = cluster.status()
        weights = cluster.destination_weights()
        if not seen or seen[-1] != weights:
            seen.append(weights)
        return status.get("phase") == "Healthy" and status.get("stableRevision") == new

    eventually(done, timeout=35, what="the new revision to become stable", every=0.05)
    print(f"VirtualService destination weights seen: {seen}")
    canary = [w["demo-canary"] for w in seen if w["demo-canary"]]
    assert canary == [5, 25, 100]
    assert all(w["demo-stable"] + w["demo-canary"] == 100 for w in seen), seen
    assert seen[-1] == {"demo-stable": 100, "demo-canary": 0}  # stable is the new revision
    reasons = cluster.reasons()
    assert reasons.count("StepAdvanced") == 3, reasons
    assert "RolloutCompleted" in reasons
    assert not any(e["type"] == "Warning" for e in cluster.events())
    eventually(
        lambda: cluster.deployments() == {f"{NAME}-{new}"},
        timeout=10,
        what=f"the old revision {old} to be deleted",
    )
    eventually(
        lambda: (cluster.prometheus.query(share_query(new, old)) or 0) > 0.99,
        timeout=10,
        what="Prometheus to see all traffic on the new revision",
        every=0.25,
    )
