"""The lab cluster driven by the official ``kubernetes`` Python client, as the operator's
adapters drive it: typed models, paging, watches resumed from the last resourceVersion without
loss, a 410 after an etcd compaction (real, from kube-apiserver), garbage collection by the
cluster's own collector, and faults injected by the lab's proxy reaching the client as the
API server's own would.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from hack.cluster import Cluster
from hack.lab.faultproxy import FaultProxy

pytestmark = pytest.mark.lab

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "rollout-gateway-api" / "rollout.yaml"


#: The tests' own ConfigMaps carry this label (the cluster puts kube-root-ca.crt in every
#: namespace).
MINE = "lab.rollwise.dev/test=client"


def configmap(name: str) -> client.V1ConfigMap:
    key, value = MINE.split("=")
    return client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=name, labels={key: value}), data={"k": name}
    )


def test_typed_create_get_list_delete(kube_client: Any, namespace: str) -> None:
    core = client.CoreV1Api(kube_client)
    created = core.create_namespaced_config_map(namespace, configmap("one"))
    assert created.metadata.uid
    assert created.metadata.resource_version
    got = core.read_namespaced_config_map("one", namespace)
    assert got.data == {"k": "one"}
    listed = core.list_namespaced_config_map(namespace, label_selector=MINE)
    assert [i.metadata.name for i in listed.items] == ["one"]
    assert listed.metadata.resource_version
    status = core.delete_namespaced_config_map("one", namespace)
    assert status["status"] == "Success"
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("one", namespace)
    assert err.value.status == 404


def test_typed_deployment_defaults_and_status(kube_client: Any, namespace: str) -> None:
    apps = client.AppsV1Api(kube_client)
    body = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1DeploymentSpec(
            selector=client.V1LabelSelector(match_labels={"app": "web"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "web"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="app", image="web:1")]),
            ),
        ),
    )
    created = apps.create_namespaced_deployment(namespace, body)
    assert created.spec.replicas == 1
    assert created.spec.template.spec.containers[0].image_pull_policy == "IfNotPresent"
    patched = apps.patch_namespaced_deployment_status(
        "web", namespace, {"status": {"replicas": 1, "readyReplicas": 1, "observedGeneration": 1}}
    )
    assert patched.status.ready_replicas == 1
    assert patched.metadata.generation == 1
    scaled = apps.patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 2}})
    assert scaled.spec.replicas == 2


def test_custom_objects_merge_patch_and_status(kube_client: Any, namespace: str) -> None:
    api = client.CustomObjectsApi(kube_client)
    group, version, plural = "rollwise.dev", "v1alpha1", "rollouts"
    body = yaml.safe_load(EXAMPLE.read_text())
    created = api.create_namespaced_custom_object(group, version, namespace, plural, body)
    assert created["metadata"]["generation"] == 1
    name = created["metadata"]["name"]
    patched = api.patch_namespaced_custom_object(
        group, version, namespace, plural, name, {"spec": {"paused": True}}
    )
    assert patched["metadata"]["generation"] == 2
    status = api.patch_namespaced_custom_object_status(
        group,
        version,
        namespace,
        plural,
        name,
        {"status": {"phase": "Paused", "observedGeneration": 2}},
    )
    assert status["status"]["phase"] == "Paused"
    assert status["metadata"]["generation"] == 2
    listed = api.list_namespaced_custom_object(group, version, namespace, plural)
    assert listed["kind"] == "RolloutList"
    with pytest.raises(ApiException) as err:
        api.create_namespaced_custom_object(group, version, namespace, plural, body)
    assert err.value.status == 409


def test_paging_with_limit_and_continue(kube_client: Any, namespace: str) -> None:
    core = client.CoreV1Api(kube_client)
    for i in range(5):
        core.create_namespaced_config_map(namespace, configmap(f"c{i}"))
    names: list[str] = []
    token = None
    pages = 0
    while True:
        page = core.list_namespaced_config_map(
            namespace, label_selector=MINE, limit=2, _continue=token
        )
        pages += 1
        names += [i.metadata.name for i in page.items]
        token = page.metadata._continue
        if not token:
            break
    assert pages == 3
    assert names == [f"c{i}" for i in range(5)]


def test_watch_resumes_from_resource_version_without_loss(kube_client: Any, namespace: str) -> None:
    """The test's own ConfigMaps only (label selector): kube-controller-manager adds
    ``kube-root-ca.crt`` to every new namespace, at a moment of its own."""
    core = client.CoreV1Api(kube_client)
    rv = core.list_namespaced_config_map(namespace, label_selector=MINE).metadata.resource_version
    seen: list[tuple[str, str]] = []
    core.create_namespaced_config_map(namespace, configmap("a"))
    w = watch.Watch()
    for event in w.stream(
        core.list_namespaced_config_map,
        namespace,
        label_selector=MINE,
        resource_version=rv,
        timeout_seconds=1,
    ):
        seen.append((event["type"], event["object"].metadata.name))
        rv = event["object"].metadata.resource_version
    # Changes while no watch is open are replayed on reconnect.
    core.create_namespaced_config_map(namespace, configmap("b"))
    core.patch_namespaced_config_map("a", namespace, {"data": {"k": "changed"}})
    core.delete_namespaced_config_map("b", namespace)
    for event in watch.Watch().stream(
        core.list_namespaced_config_map,
        namespace,
        label_selector=MINE,
        resource_version=rv,
        timeout_seconds=1,
    ):
        seen.append((event["type"], event["object"].metadata.name))
    assert seen == [("ADDED", "a"), ("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")]


def test_watch_from_a_compacted_resource_version_is_410(
    kube_client: Any, lab_cluster: Cluster, namespace: str
) -> None:
    """Events are not in kube-apiserver's watch cache: a watch from a version etcd compacted
    away reaches etcd and is answered 410 Gone at once."""
    core = client.CoreV1Api(kube_client)
    first = core.create_namespaced_event(
        namespace,
        client.CoreV1Event(
            metadata=client.V1ObjectMeta(name="old"),
            involved_object=client.V1ObjectReference(
                kind="ConfigMap", name="x", namespace=namespace
            ),
            reason="Old",
            message="before the compaction",
        ),
    )
    core.create_namespaced_config_map(namespace, configmap("later"))
    lab_cluster.compact_etcd()
    with pytest.raises(ApiException) as err:
        for _ in watch.Watch().stream(
            core.list_namespaced_event,
            namespace,
            resource_version=first.metadata.resource_version,
            timeout_seconds=5,
        ):
            pass
    assert err.value.status == 410


def test_garbage_collection_of_dependents(kube_client: Any, namespace: str) -> None:
    core = client.CoreV1Api(kube_client)
    owner = core.create_namespaced_config_map(namespace, configmap("owner"))
    ref = client.V1OwnerReference(
        api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid
    )
    dep = configmap("dependent")
    dep.metadata.owner_references = [ref]
    core.create_namespaced_config_map(namespace, dep)
    core.delete_namespaced_config_map("owner", namespace)
    deadline = time.monotonic() + 5
    remaining = ["dependent"]
    while time.monotonic() < deadline and remaining:
        remaining = [
            i.metadata.name
            for i in core.list_namespaced_config_map(namespace, label_selector=MINE).items
        ]
        time.sleep(0.05)
    assert remaining == []


def test_injected_faults_reach_the_client(
    faults: FaultProxy, proxied_kubeconfig: Path, namespace: str
) -> None:
    with config.new_client_from_config(config_file=str(proxied_kubeconfig)) as proxied:  # type: ignore[no-untyped-call]
        core = client.CoreV1Api(proxied)
        faults.fail_next(1, status=500, verb="create", resource="configmaps", namespace=namespace)
        with pytest.raises(ApiException) as err:
            core.create_namespaced_config_map(namespace, configmap("f"))
        assert err.value.status == 500
        faults.fail_next(1, status=409, verb="patch", resource="configmaps")
        core.create_namespaced_config_map(namespace, configmap("f"))
        with pytest.raises(ApiException) as conflict:
            core.patch_namespaced_config_map("f", namespace, {"data": {"x": "y"}})
        assert conflict.value.status == 409
        patched = core.patch_namespaced_config_map("f", namespace, {"data": {"x": "y"}})
        assert patched.data["x"] == "y"
