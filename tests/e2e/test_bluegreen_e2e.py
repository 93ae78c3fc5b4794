"""Blue-green, end to end in the lab, driven with kubectl and the plugin: a new template runs as
a one-pod preview behind the preview Service while the active Service keeps selecting the old
pods; the Rollout waits for promotion (phase Paused, reason AwaitingPromotion);
``kubectl rollwise promote`` scales the preview to full and moves the active Service's selector
to it, with no pod restarted (the same pod UIDs before and after); the old revision goes after
scaleDownDelaySeconds. Then a second new template is aborted before the switch: the preview is
dropped and the active Service never moves. Last, a third one is switched to automatically and
its postPromotionAnalysis fails: the active Service switches back to the pods that kept
running.

The Rollout is ``examples/rollout-blue-green`` without its pre-promotion analysis (the
Services and the pods are under test here, not the checks; the core's tables cover the
analysis) and with a test-sized scale-down delay.
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
    eventually,
    example_docs,
    patient,
    rollout_of,
)

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(300),
    pytest.mark.lab_only("runs an operator process of its own"),
]

EXAMPLE = "rollout-blue-green"
ACTIVE = "demo-active"
PREVIEW = "demo-preview"
REVISION_LABEL = "rollwise.dev/revision"


def image(tag: str) -> list[dict[str, Any]]:
    return [
        {
            "op": "replace",
            "path": "/spec/template/spec/containers/0/image",
            "value": f"ghcr.io/rollwise/demo-service:{tag}",
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


def pod_uids(cluster: Cluster, revision: str) -> set[str]:
    """The UIDs of the revision's pods that are not being deleted."""
    pods = cluster.core.list_namespaced_pod(
        cluster.namespace, label_selector=f"{REVISION_LABEL}={revision}"
    )
    return {p.metadata.uid for p in pods.items if p.metadata.deletion_timestamp is None}


def selects(cluster: Cluster, service: str) -> str | None:
    return cluster.selector(service).get(REVISION_LABEL)


def awaiting_promotion(cluster: Cluster, preview: str, pods: int) -> bool:
    s = cluster.status()
    deployment = f"{NAME}-{preview}"
    return (
        s.get("phase") == "Paused"
        and s.get("pauseReason") == "AwaitingPromotion"
        and s.get("canaryRevision") == preview
        and cluster.replicas().get(deployment) == (pods, pods)
        and selects(cluster, PREVIEW) == preview
    )


def test_blue_green_promote_switches_abort_drops_the_preview_and_a_failure_switches_back(
    cluster: Cluster, start_operator: StartOperator
) -> None:
    docs = example_docs(EXAMPLE, cluster.test_id)
    blue_green = rollout_of(docs)["spec"]["strategy"]["blueGreen"]
    blue_green.pop("prePromotionAnalysis")
    blue_green["scaleDownDelaySeconds"] = 3
    cluster.apply(docs)
    start_operator("--namespace", cluster.namespace)
    cluster.k("wait", "--for=condition=Ready", f"rollout/{NAME}", "--timeout=60s")
    first = str(cluster.status()["stableRevision"])
    assert selects(cluster, ACTIVE) == first
    eventually(
        lambda: len(pod_uids(cluster, first)) == 3,
        timeout=30,
        what="the three pods of the first revision",
    )
    first_pods = pod_uids(cluster, first)

    # A new template: a one-pod preview beside the three active pods, waiting for promotion.
    cluster.patch_template(image("1.1.0"))
    second = revision_of(cluster.rollout()["spec"]["template"])
    eventually(
        lambda: awaiting_promotion(cluster, second, 1),
        timeout=60,
        what="the one-pod preview ready behind demo-preview, awaiting promotion",
    )
    assert selects(cluster, ACTIVE) == first
    assert cluster.replicas()[f"{NAME}-{first}"] == (3, 3)
    assert pod_uids(cluster, first) == first_pods
    preview_pods = pod_uids(cluster, second)
    assert len(preview_pods) == 1
    shown = rollwise(cluster, "get", "rollout", NAME)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert f"Active:      {first} (Service {ACTIVE})" in shown.stdout
    assert f"Preview:     {second} (Service {PREVIEW}, ready)" in shown.stdout
    assert "Waiting:     for promotion" in shown.stdout
    listed = rollwise(cluster, "list")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "awaiting promotion" in listed.stdout
    assert f"{second} (preview)" in listed.stdout

    # Promote means switch: the preview grows to three pods, then the active Service moves.
    promoted = rollwise(cluster, "promote", NAME)
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr

    def switched() -> bool:
        s = cluster.status()
        return (
            s.get("phase") == "Healthy"
            and s.get("stableRevision") == second
            and selects(cluster, ACTIVE) == second
        )

    eventually(switched, timeout=90, what="the active Service switched to the new revision")
    # No pod restarted: the preview pod is still there among the three, and the old pods
    # (kept for the scale-down delay, or already going) were never replaced.
    assert preview_pods <= pod_uids(cluster, second)
    assert pod_uids(cluster, first) <= first_pods
    recorded = cluster.status()["blueGreen"]
    assert recorded["activeRevision"] == second
    assert recorded["previousRevision"] == first
    assert "switchedAt" in recorded
    eventually(
        lambda: f"{NAME}-{first}" not in cluster.deployments(),
        timeout=60,
        what="the previous revision removed after scaleDownDelaySeconds",
    )
    reasons = cluster.reasons()
    for reason in (
        "PreviewReady",
        "AwaitingPromotion",
        "Promoted",
        "ActiveSwitched",
        "RolloutCompleted",
    ):
        assert reason in reasons, reasons

    # Abort before the switch: the preview is dropped, the active Service never moves.
    active_pods = pod_uids(cluster, second)
    cluster.patch_template(image("1.2.0"))
    third = revision_of(cluster.rollout()["spec"]["template"])
    eventually(
        lambda: awaiting_promotion(cluster, third, 1),
        timeout=60,
        what="the second preview awaiting promotion",
    )
    aborted = rollwise(cluster, "abort", NAME)
    assert aborted.returncode == 0, aborted.stdout + aborted.stderr

    def dropped() -> bool:
        s = cluster.status()
        return (
            s.get("phase") == "Degraded"
            and s.get("rolledBackRevision") == third
            and s.get("canaryRevision") is None
            and cluster.replicas().get(f"{NAME}-{third}", (0, 0)) == (0, 0)
            and selects(cluster, PREVIEW) == second
        )

    eventually(dropped, timeout=60, what="the preview dropped and the Rollout Degraded")
    assert selects(cluster, ACTIVE) == second
    assert cluster.replicas()[f"{NAME}-{second}"] == (3, 3)
    assert pod_uids(cluster, second) == active_pods
    degraded = cluster.condition("Degraded")
    assert degraded is not None
    assert degraded["reason"] == "Aborted"
    events = json.dumps(cluster.events())
    assert "Aborted" in events

    # A postPromotionAnalysis that fails after the switch switches back, to pods that never
    # stopped. The check asks the lab's real Prometheus for a constant above its threshold.
    failing = {
        "interval": "1s",
        "metrics": [
            {
                "name": "always-failing",
                "count": 1,
                "failureCondition": "result > 0.5",
                "provider": {"prometheus": {"query": "vector(1)"}},
            }
        ],
    }
    cluster.k(
        "patch",
        f"rollout/{NAME}",
        "--type=json",
        "-p",
        json.dumps(
            [
                *image("1.3.0"),
                {
                    "op": "replace",
                    "path": "/spec/strategy/blueGreen/autoPromotionEnabled",
                    "value": True,
                },
                {
                    "op": "add",
                    "path": "/spec/strategy/blueGreen/postPromotionAnalysis",
                    "value": failing,
                },
            ]
        ),
    )
    fourth = revision_of(cluster.rollout()["spec"]["template"])

    def switched_back() -> bool:
        s = cluster.status()
        return (
            s.get("phase") == "Degraded"
            and s.get("rolledBackRevision") == fourth
            and s.get("stableRevision") == second
            and selects(cluster, ACTIVE) == second
        )

    eventually(switched_back, timeout=90, what="the failed postPromotionAnalysis switched back")
    reasons = cluster.reasons()
    assert reasons.count("ActiveSwitched") == 2, reasons
    assert "SwitchedBack" in reasons, reasons
    assert "AnalysisFailed" in reasons, reasons
    assert pod_uids(cluster, second) == active_pods
    eventually(
        lambda: cluster.replicas().get(f"{NAME}-{fourth}", (0, 0)) == (0, 0),
        timeout=60,
        what="the switched-back revision scaled to 0",
    )
