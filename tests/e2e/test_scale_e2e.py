"""The Rollout's scale subresource, end to end in the lab: ``kubectl scale rollout`` while the
canary is paused at a step resizes both revisions and keeps the step's weight, the canary then
completes with the new count, and a HorizontalPodAutoscaler targets the Rollout.

The HPA part uses what the lab has: kube-controller-manager runs its horizontal-pod-autoscaler
controller, but the lab has no metrics-server (no ``metrics.k8s.io``), so no utilisation is
ever measured. What the controller does without metrics is still real: it reads the Rollout's
scale subresource (condition ``AbleToScale``) and raises a target below ``minReplicas`` to the
minimum through that subresource, which the operator then applies to the stable revision.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

from hack.lab.testing.cluster_fixtures import kubectl_binary
from rollwise.core.observations import revision_of
from tests.e2e.support import (
    NAME,
    OPERATOR,
    Cluster,
    StartOperator,
    demo_docs,
    eventually,
    patient,
    rollout_of,
)

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(240),
    pytest.mark.lab_only("runs an operator process of its own"),
]

IMAGE_2 = [
    {
        "op": "replace",
        "path": "/spec/template/spec/containers/0/image",
        "value": "ghcr.io/rollwise/demo-service:1.1.0",
    }
]


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


def sized(cluster: Cluster, want: dict[str, int]) -> bool:
    """Whether the revision Deployments are exactly ``want`` (name: replicas), all ready."""
    have = cluster.replicas()
    return set(have) == set(want) and all(have[n] == (r, r) for n, r in want.items())


def scale_of(cluster: Cluster) -> dict[str, Any]:
    path = f"/apis/rollwise.dev/v1alpha1/namespaces/{cluster.namespace}/rollouts/{NAME}/scale"
    found: dict[str, Any] = json.loads(cluster.k("get", "--raw", path).stdout)
    return found


def test_kubectl_scale_mid_canary_resizes_both_revisions_and_an_hpa_targets_the_rollout(
    cluster: Cluster, start_operator: StartOperator
) -> None:
    docs = demo_docs(cluster.test_id)
    spec = rollout_of(docs)["spec"]
    spec["replicas"] = 4
    canary = spec["strategy"]["canary"]
    canary["steps"] = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 100}]
    canary.pop("analysis")  # the replica counts are under test, not the checks
    cluster.apply(docs)
    start_operator("--namespace", cluster.namespace)
    cluster.k("wait", "--for=condition=Ready", f"rollout/{NAME}", "--timeout=30s")
    old = str(cluster.status()["stableRevision"])
    stable = f"{NAME}-{old}"

    cluster.patch_template(IMAGE_2)
    new = revision_of(cluster.rollout()["spec"]["template"])
    canary_deployment = f"{NAME}-{new}"

    def paused_at_25() -> bool:
        s = cluster.status()
        return (
            s.get("phase") == "Paused"
            and s.get("currentStepIndex") == 1
            and s.get("canaryWeight") == 25
            and sized(cluster, {stable: 4, canary_deployment: 1})
        )

    eventually(paused_at_25, timeout=40, what="the canary paused at 25% with 4 + 1 pods")
    assert cluster.route_weight() == 25

    # kubectl scale writes spec.replicas through the scale subresource.
    cluster.k("scale", f"rollout/{NAME}", "--replicas=8")
    assert cluster.rollout()["spec"]["replicas"] == 8
    eventually(
        lambda: sized(cluster, {stable: 8, canary_deployment: 2}),
        timeout=40,
        what="stable resized to 8 and the canary to ceil(8 * 25%) = 2",
    )
    status = cluster.status()
    assert (status["phase"], status["currentStepIndex"], status["canaryWeight"]) == (
        "Paused",
        1,
        25,
    )
    assert cluster.route_weight() == 25
    eventually(
        lambda: cluster.status().get("replicas") == 10,
        timeout=20,
        what="status.replicas to count both revisions' pods",
    )
    scale = scale_of(cluster)
    assert scale["kind"] == "Scale"
    assert scale["spec"]["replicas"] == 8
    assert scale["status"]["replicas"] == 10
    assert scale["status"]["selector"] == "app=demo"

    promoted = rollwise(cluster, "promote", NAME)
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr

    def completed() -> bool:
        s = cluster.status()
        return (
            s.get("phase") == "Healthy"
            and s.get("stableRevision") == new
            and sized(cluster, {canary_deployment: 8})
        )

    eventually(completed, timeout=60, what="the canary completed with 8 pods, old one retired")
    assert cluster.route_weight() == 0
    reasons = cluster.reasons()
    assert reasons.count("RevisionDetected") == 1
    assert "RolloutCompleted" in reasons

    # An HPA targeting the Rollout is accepted and its controller reads the scale subresource.
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": NAME},
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "rollwise.dev/v1alpha1",
                "kind": "Rollout",
                "name": NAME,
            },
            "minReplicas": 10,
            "maxReplicas": 12,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 80},
                    },
                }
            ],
        },
    }
    cluster.apply([hpa])

    def hpa_condition(type_: str) -> dict[str, Any] | None:
        found = json.loads(cluster.k("get", f"hpa/{NAME}", "-o", "json").stdout)
        for cond in (found.get("status") or {}).get("conditions", []):
            if cond["type"] == type_:
                return dict(cond)
        return None

    def able_to_scale() -> dict[str, Any] | None:
        cond = hpa_condition("AbleToScale")
        return cond if cond is not None and cond["status"] == "True" else None

    # The controller-manager maps kinds through discovery, which it refreshes every 30 s: a
    # CRD installed after it started reads "no matches for kind" until the next refresh.
    able = eventually(
        able_to_scale,
        timeout=60,
        what="the HPA controller to read the Rollout's scale subresource",
        every=1.0,
    )
    assert able["reason"] in ("SucceededGetScale", "ReadyForNewScale", "SucceededRescale"), able
    # Below minReplicas the controller scales to the minimum without needing metrics.
    eventually(
        lambda: cluster.rollout()["spec"]["replicas"] == 10,
        timeout=60,
        what="the HPA to raise spec.replicas to its minimum (10) via the scale subresource",
        every=1.0,
    )
    eventually(
        lambda: sized(cluster, {canary_deployment: 10}),
        timeout=40,
        what="the operator to resize the stable revision to 10",
    )
    # Healthy again once the new pods are ready (Progressing while they start).
    eventually(
        lambda: cluster.status().get("phase") == "Healthy",
        timeout=60,
        what="the Rollout to be Healthy at 10 replicas",
    )
