"""The lab on its real control plane: revision Deployments made ready by the cluster's own
controllers and kwok, one demo service per revision (started and stopped by the lab
controller, its behaviour from the pod template's annotations), never-ready revisions, and the
lab controller's stand-in for KServe's InferenceService controller."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from hack.cluster import NEVER_READY_ANNOTATION as NEVER_READY
from hack.lab.lab import Lab

pytestmark = pytest.mark.lab

#: Objects of unique names in the session cluster's ``default`` namespace.
NS = "default"
ERROR_RATIO = "lab.rollwise.dev/error-ratio"


def _deployment(
    name: str,
    revision: str,
    replicas: int = 2,
    *,
    annotations: dict[str, str] | None = None,
    deadline: int | None = None,
) -> dict[str, Any]:
    labels = {"app": "demo", "rollwise.dev/revision": revision}
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": labels},
        "template": {
            "metadata": {"labels": labels, "annotations": annotations or {}},
            "spec": {"containers": [{"name": "demo", "image": "demo:1"}]},
        },
    }
    if deadline is not None:
        spec["progressDeadlineSeconds"] = deadline
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        # Labelled like the operator's revision Deployments: the lab controller selects these.
        "metadata": {"name": name, "namespace": NS, "labels": dict(labels)},
        "spec": spec,
    }


def _conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status.get("conditions", [])}


def _wait(fetch: Callable[[], Any], check: Callable[[Any], bool], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    value = fetch()
    while not check(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s; last value: {value}")
        time.sleep(0.05)
        value = fetch()
    return value


def test_deployment_becomes_ready_follows_scaling_and_starts_a_demo_service(lab: Lab) -> None:
    apps = client.AppsV1Api(lab.api_client())
    rev = f"w{time.monotonic_ns() % 10**8}"
    body = _deployment(
        "demo-" + rev, rev, replicas=3, annotations={"lab.rollwise.dev/error-ratio": "0.25"}
    )
    apps.create_namespaced_deployment(NS, body)

    def read() -> dict[str, Any]:
        return apps.api_client.sanitize_for_serialization(
            apps.read_namespaced_deployment_status("demo-" + rev, NS)
        )

    ready = _wait(read, lambda d: d.get("status", {}).get("readyReplicas") == 3)
    status = ready["status"]
    assert status["observedGeneration"] == ready["metadata"]["generation"]
    assert _conditions(status)["Available"] == ("True", "MinimumReplicasAvailable")
    pods = client.CoreV1Api(lab.api_client()).list_namespaced_pod(
        NS, label_selector=f"rollwise.dev/revision={rev}"
    )
    assert len(pods.items) == 3
    assert {p.status.phase for p in pods.items} == {"Running"}
    assert all(p.spec.node_name.startswith("kwok-node-") for p in pods.items)
    demo = lab.demo(rev)
    assert demo.service == "demo"
    assert demo.behaviour.error_ratio == 0.25

    apps.patch_namespaced_deployment_scale("demo-" + rev, NS, {"spec": {"replicas": 0}})
    # The API omits a count of 0.
    scaled = _wait(
        read,
        lambda d: (
            d["status"].get("replicas", 0) == 0
            and d["status"].get("observedGeneration") == d["metadata"]["generation"]
        ),
    )
    assert scaled["status"].get("readyReplicas") in (None, 0)
    assert scaled["status"]["observedGeneration"] == scaled["metadata"]["generation"]

    # Deleting the revision's only Deployment stops its demo service.
    apps.delete_namespaced_deployment("demo-" + rev, NS)
    _wait(lambda: lab.loop.call(lambda: lab.registry.get(rev)), lambda demo: demo is None)


def test_a_baseline_is_its_own_revision_answering_as_its_stable_does(lab: Lab) -> None:
    """A Rollout's baseline runs the stable's template: the lab gives it a demo service of its
    own (its requests count under its own revision) with the stable's behaviour as it is when
    the baseline appears, even when that was set at run time rather than by annotation."""
    apps = client.AppsV1Api(lab.api_client())
    rev = f"b{time.monotonic_ns() % 10**8}"
    apps.create_namespaced_deployment(
        NS, _deployment("demo-" + rev, rev, replicas=1, annotations={ERROR_RATIO: "0.25"})
    )
    stable = lab.demo(rev)
    lab.loop.call(lambda: stable.configure(error_ratio=0.02, latency_ms=70))
    baseline_rev = f"{rev}-baseline"
    body = _deployment(
        f"demo-{baseline_rev}", baseline_rev, replicas=1, annotations={ERROR_RATIO: "0.25"}
    )
    body["metadata"]["labels"]["rollwise.dev/baseline-of"] = rev
    apps.create_namespaced_deployment(NS, body)
    baseline = lab.demo(baseline_rev)
    assert baseline is not stable
    assert baseline.revision == baseline_rev
    assert (baseline.behaviour.error_ratio, baseline.behaviour.latency_ms) == (0.02, 70)
    # The stable keeps its own demo service (and behaviour) beside the baseline's.
    assert lab.demo(rev).behaviour.error_ratio == 0.02
    for name in (f"demo-{baseline_rev}", "demo-" + rev):
        apps.delete_namespaced_deployment(name, NS)
    _wait(lambda: lab.loop.call(lambda: lab.registry.get(baseline_rev)), lambda demo: demo is None)


def test_a_deployment_without_a_revision_label_gets_no_demo_service(lab: Lab) -> None:
    apps = client.AppsV1Api(lab.api_client())
    rev = f"u{time.monotonic_ns() % 10**8}"
    body = _deployment("plain-" + rev, rev, replicas=1)
    for labels in (
        body["metadata"].setdefault("labels", {}),
        body["spec"]["selector"]["matchLabels"],
        body["spec"]["template"]["metadata"]["labels"],
    ):
        labels.pop("rollwise.dev/revision", None)
        labels["plain"] = rev
    apps.create_namespaced_deployment(NS, body)
    _wait(
        lambda: apps.read_namespaced_deployment_status("plain-" + rev, NS),
        lambda d: (d.status.ready_replicas or 0) == 1,
    )
    assert lab.loop.call(lambda: [r for r in lab.registry.revisions() if rev in r]) == []
    apps.delete_namespaced_deployment("plain-" + rev, NS)


def test_never_ready_annotation_ends_in_progress_deadline_exceeded(lab: Lab) -> None:
    apps = client.AppsV1Api(lab.api_client())
    rev = f"n{time.monotonic_ns() % 10**8}"
    body = _deployment("bad-" + rev, rev, annotations={NEVER_READY: "true"}, deadline=1)
    apps.create_namespaced_deployment(NS, body)

    def read() -> dict[str, Any]:
        return apps.api_client.sanitize_for_serialization(
            apps.read_namespaced_deployment_status("bad-" + rev, NS)
        )

    done = _wait(
        read,
        lambda d: (
            _conditions(d.get("status", {})).get("Progressing")
            == ("False", "ProgressDeadlineExceeded")
        ),
    )
    assert done["status"].get("readyReplicas") is None
    assert done["status"]["unavailableReplicas"] == 2


def _isvc(name: str, uri: str, canary: int | None = None) -> dict[str, Any]:
    predictor: dict[str, Any] = {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": uri}}
    if canary is not None:
        predictor["canaryTrafficPercent"] = canary
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"predictor": predictor},
    }


def test_inference_service_canary_traffic_follows_kserve(lab: Lab) -> None:
    api = client.CustomObjectsApi(lab.api_client())
    args = ("serving.kserve.io", "v1beta1", NS, "inferenceservices")
    name = f"iris{time.monotonic_ns() % 10**6}"
    api.create_namespaced_custom_object(*args, _isvc(name, "s3://models/iris/1"))

    def traffic() -> dict[str, Any]:
        obj = api.get_namespaced_custom_object(*args, name)
        pred = obj.get("status", {}).get("components", {}).get("predictor", {})
        return {
            "pred": pred,
            "split": {t["revisionName"]: t["percent"] for t in pred.get("traffic", [])},
        }

    first, second = f"{name}-predictor-00001", f"{name}-predictor-00002"
    _wait(traffic, lambda t: t["split"] == {first: 100})

    api.patch_namespaced_custom_object(*args, name, _isvc(name, "s3://models/iris/2", canary=10))
    canary = _wait(traffic, lambda t: t["split"] == {second: 10, first: 90})
    assert canary["pred"]["latestRolledoutRevision"] == first
    assert canary["pred"]["latestReadyRevision"] == second

    # Promote: without canaryTrafficPercent the latest ready revision takes all traffic.
    obj = api.get_namespaced_custom_object(*args, name)
    obj["spec"]["predictor"].pop("canaryTrafficPercent")
    api.replace_namespaced_custom_object(*args, name, obj)
    promoted = _wait(traffic, lambda t: t["split"] == {second: 100})
    assert promoted["pred"]["latestRolledoutRevision"] == second
    assert promoted["pred"]["previousRolledoutRevision"] == first
    assert lab.demo(second).service == name
