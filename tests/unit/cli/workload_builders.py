"""A Rollout with real revision ids and what runs it, in the shapes the API server returns:
revision Deployments as the operator creates them (read back with kube-apiserver's defaults),
their ReplicaSets and pods as the controllers and the kubelet report them."""

from __future__ import annotations

import copy
from typing import Any

from rollwise.core.observations import revision_of
from rollwise.core.phases import Phase
from rollwise.core.rollout.status import RolloutStatus
from tests.unit.cli.cli_builders import stamp

UID = "0b6e1c9a-rollout"
LABELS = {"app": "web"}


def template(image: str = "ghcr.io/acme/web:1.0", sidecar: str = "busybox:1.36") -> dict[str, Any]:
    """A Rollout's pod template as a user writes it."""
    return {
        "metadata": {"labels": dict(LABELS)},
        "spec": {
            "containers": [
                {"name": "app", "image": image, "ports": [{"containerPort": 8080, "name": "http"}]},
                {"name": "sidecar", "image": sidecar},
            ]
        },
    }


def defaulted(pod_template: dict[str, Any], revision: str) -> dict[str, Any]:
    """``pod_template`` as kube-apiserver 1.37 stores it in a revision Deployment: the revision
    label added, and the defaults it fills in (read back from a real API server)."""
    out = copy.deepcopy(pod_template)
    out["metadata"]["labels"]["rollwise.dev/revision"] = revision
    spec = out["spec"]
    spec.update(
        dnsPolicy="ClusterFirst",
        restartPolicy="Always",
        schedulerName="default-scheduler",
        securityContext={},
        terminationGracePeriodSeconds=30,
    )
    for container in spec["containers"]:
        container.setdefault("imagePullPolicy", "IfNotPresent")
        container.setdefault("resources", {})
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        for port in container.get("ports", []):
            port.setdefault("protocol", "TCP")
    return out


STABLE_TEMPLATE = template("ghcr.io/acme/web:1.0")
CANARY_TEMPLATE = template("ghcr.io/acme/web:1.1")
OLD_TEMPLATE = template("ghcr.io/acme/web:0.9")
STABLE = revision_of(STABLE_TEMPLATE)
CANARY = revision_of(CANARY_TEMPLATE)
OLD = revision_of(OLD_TEMPLATE)


def rollout(
    spec_template: dict[str, Any],
    *,
    stable: str | None = STABLE,
    canary: str | None = None,
    step: int | None = None,
    phase: Phase = Phase.HEALTHY,
    message: str = "",
    rolled_back: str | None = None,
    generation: int = 2,
    observed: int | None = 2,
    steps: int = 3,
) -> dict[str, Any]:
    status = RolloutStatus(
        phase=phase,
        message=message,
        observed_generation=observed,
        stable_revision=stable,
        canary_revision=canary,
        current_step_index=step,
        canary_weight=25 if canary else 0,
        rolled_back_revision=rolled_back,
        replicas=4,
        available_replicas=4,
    )
    return {
        "apiVersion": "rollwise.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "uid": UID,
            "generation": generation,
            "creationTimestamp": stamp(86400),
        },
        "spec": {
            "replicas": 4,
            "selector": {"matchLabels": dict(LABELS)},
            "template": copy.deepcopy(spec_template),
            "strategy": {
                "canary": {
                    "stableService": "web-stable",
                    "canaryService": "web-canary",
                    "scaleDownDelaySeconds": 600,
                    "steps": [{"setWeight": 10 * (i + 1)} for i in range(steps)],
                }
            },
        },
        "status": status.to_wire(),
    }


def deployment(
    revision: str,
    pod_template: dict[str, Any],
    *,
    replicas: int = 3,
    ready: int | None = None,
    age: float = 3600,
    owner: str = UID,
) -> dict[str, Any]:
    ready = replicas if ready is None else ready
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": f"web-{revision}",
            "namespace": "shop",
            "uid": f"uid-deploy-{revision}",
            "generation": 1,
            "creationTimestamp": stamp(age),
            "labels": {"rollwise.dev/rollout": "web", "rollwise.dev/revision": revision},
            "ownerReferences": [
                {
                    "apiVersion": "rollwise.dev/v1alpha1",
                    "kind": "Rollout",
                    "name": "web",
                    "uid": owner,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {**LABELS, "rollwise.dev/revision": revision}},
            "template": defaulted(pod_template, revision),
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
        },
        "status": {
            "observedGeneration": 1,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": ready,
            "availableReplicas": ready,
        },
    }


def replica_set(
    deployment_obj: dict[str, Any], suffix: str, *, replicas: int, ready: int | None = None
) -> dict[str, Any]:
    meta = deployment_obj["metadata"]
    revision = meta["labels"]["rollwise.dev/revision"]
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{meta['name']}-{suffix}",
            "namespace": "shop",
            "uid": f"uid-rs-{revision}-{suffix}",
            "creationTimestamp": meta["creationTimestamp"],
            "labels": {**LABELS, "rollwise.dev/revision": revision, "pod-template-hash": suffix},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": {"replicas": replicas},
        "status": {"replicas": replicas, "readyReplicas": replicas if ready is None else ready},
    }


def pod(
    rs: dict[str, Any],
    suffix: str,
    *,
    phase: str = "Running",
    ready: bool = True,
    restarts: int = 0,
    waiting: str | None = None,
    age: float = 600,
) -> dict[str, Any]:
    meta = rs["metadata"]
    state: dict[str, Any] = {"running": {"startedAt": stamp(age)}}
    if waiting:
        state = {"waiting": {"reason": waiting}}
    statuses = [
        {
            "name": name,
            "ready": ready,
            "restartCount": restarts if name == "app" else 0,
            "state": state,
        }
        for name in ("app", "sidecar")
    ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{meta['name']}-{suffix}",
            "namespace": "shop",
            "uid": f"uid-pod-{meta['name']}-{suffix}",
            "creationTimestamp": stamp(age),
            "labels": dict(meta["labels"]),
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": {"containers": [{"name": "app"}, {"name": "sidecar"}]},
        "status": {"phase": phase, "containerStatuses": statuses},
    }
