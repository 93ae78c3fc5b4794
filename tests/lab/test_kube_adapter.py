"""The Kubernetes workload adapter against the lab cluster's kube-apiserver: revision Deployments
(named, labelled, owned, scaled, deleted, read back as ``RevisionState`` from the status the
cluster's own controllers write), Service selectors, and the mapping of API failures to
``adapters.errors`` (answers injected by the lab's fault proxy, which forwards everything else
to the real API server)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from hack.lab.faultproxy import FaultProxy
from hack.lab.lab import Lab
from rollwise.adapters.errors import (
    Conflict,
    Forbidden,
    Invalid,
    KubeError,
    NotFound,
    NotOwned,
    Unavailable,
)
from rollwise.adapters.kube import DEPLOYMENTS, SERVICES, KubeAPI
from rollwise.adapters.workloads import ROLLOUT_LABEL, RolloutRef, Workloads
from rollwise.core.observations import REVISION_LABEL, RevisionState, revision_of

pytestmark = pytest.mark.lab

TEMPLATE: dict[str, Any] = {
    "metadata": {"labels": {"app": "web"}, "annotations": {"team": "shop"}},
    "spec": {"containers": [{"name": "web", "image": "web:1", "ports": [{"containerPort": 80}]}]},
}


@dataclass
class Env:
    lab: Lab
    kube: KubeAPI
    api_client: Any
    faults: FaultProxy
    kubeconfig: Path


@pytest.fixture(scope="module")
def env(lab: Lab, fault_proxy: FaultProxy, proxied_kubeconfig: Path) -> Iterator[Env]:
    """The adapter talks to the API server through the fault proxy."""
    api_client = config.new_client_from_config(config_file=str(proxied_kubeconfig))  # type: ignore[no-untyped-call]
    yield Env(lab, KubeAPI(api_client), api_client, fault_proxy, proxied_kubeconfig)
    fault_proxy.clear()
    api_client.close()


@pytest.fixture
def ns(env: Env) -> str:
    name = f"ka-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(env.api_client).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name))
    )
    return name


@pytest.fixture
def rollout(env: Env, ns: str) -> RolloutRef:
    """A real Rollout object (the owner of the revisions)."""
    body = {
        "apiVersion": "rollwise.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": TEMPLATE,
            "strategy": {"canary": {"stableService": "web", "canaryService": "web-canary"}},
        },
    }
    created = client.CustomObjectsApi(env.api_client).create_namespaced_custom_object(
        "rollwise.dev", "v1alpha1", ns, "rollouts", body
    )
    assert isinstance(created, dict)
    return RolloutRef(ns, "web", created["metadata"]["uid"], {"matchLabels": {"app": "web"}})


def _service(env: Env, ns: str, name: str, selector: dict[str, str]) -> None:
    body = client.V1Service(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1ServiceSpec(selector=selector, ports=[client.V1ServicePort(port=80)]),
    )
    client.CoreV1Api(env.api_client).create_namespaced_service(ns, body)


def eventually(read: Callable[[], Any], check: Callable[[Any], bool], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    value = read()
    while not check(value) and time.monotonic() < deadline:
        time.sleep(0.05)
        value = read()
    return value


# ---------------------------------------------------------------------------- revisions


def test_ensure_revision_creates_an_owned_labelled_deployment(
    env: Env, ns: str, rollout: RolloutRef
) -> None:
    workloads = Workloads(env.kube)
    revision = revision_of(TEMPLATE)
    workloads.ensure_revision(rollout, revision, 2, TEMPLATE)

    dep = env.kube.get(DEPLOYMENTS, ns, f"web-{revision}")
    assert dep["metadata"]["labels"] == {ROLLOUT_LABEL: "web", REVISION_LABEL: revision}
    assert dep["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "rollwise.dev/v1alpha1",
            "kind": "Rollout",
            "name": "web",
            "uid": rollout.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert dep["spec"]["selector"] == {"matchLabels": {"app": "web", REVISION_LABEL: revision}}
    pod_meta = dep["spec"]["template"]["metadata"]
    assert pod_meta["labels"] == {"app": "web", REVISION_LABEL: revision}
    assert pod_meta["annotations"] == {"team": "shop"}

    states = eventually(lambda: workloads.revisions(rollout), lambda s: s[revision].ready_for(2))
    assert states == {revision: RevisionState(2, 2, 2, 2, current=True)}


def test_ensure_and_scale_are_idempotent_and_scale_never_creates(
    env: Env, ns: str, rollout: RolloutRef
) -> None:
    workloads = Workloads(env.kube)
    workloads.ensure_revision(rollout, "aaaa", 1, TEMPLATE)

    def generation() -> int:
        return int(env.kube.get(DEPLOYMENTS, ns, "web-aaaa")["metadata"]["generation"])

    first = generation()
    workloads.ensure_revision(rollout, "aaaa", 1, TEMPLATE)
    workloads.scale_revision(rollout, "aaaa", 1)
    assert generation() == first

    state = workloads.ensure_revision(rollout, "aaaa", 3, TEMPLATE)
    assert state.desired_replicas == 3
    assert generation() == first + 1
    assert workloads.scale_revision(rollout, "aaaa", 0).desired_replicas == 0
    scaled = eventually(
        lambda: workloads.revisions(rollout)["aaaa"], lambda s: s.current and s.ready_replicas == 0
    )
    assert scaled == RevisionState(0, 0, 0, 0, current=True)

    with pytest.raises(NotFound):
        workloads.scale_revision(rollout, "bbbb", 1)
    assert env.kube.get_or_none(DEPLOYMENTS, ns, "web-bbbb") is None


def test_delete_revision_is_idempotent(env: Env, ns: str, rollout: RolloutRef) -> None:
    workloads = Workloads(env.kube)
    workloads.ensure_revision(rollout, "cccc", 1, TEMPLATE)
    assert workloads.delete_revision(rollout, "cccc") is True
    assert workloads.delete_revision(rollout, "cccc") is False
    assert "cccc" not in workloads.revisions(rollout)


def test_a_deployment_the_rollout_does_not_own_is_never_touched(
    env: Env, ns: str, rollout: RolloutRef
) -> None:
    foreign = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web-dddd", "labels": {ROLLOUT_LABEL: "web", REVISION_LABEL: "dddd"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "other"}},
            "template": {"metadata": {"labels": {"app": "other"}}, "spec": TEMPLATE["spec"]},
        },
    }
    env.kube.create(DEPLOYMENTS, ns, foreign)
    workloads = Workloads(env.kube)
    with pytest.raises(NotOwned):
        workloads.ensure_revision(rollout, "dddd", 5, TEMPLATE)
    with pytest.raises(NotOwned):
        workloads.delete_revision(rollout, "dddd")
    assert "dddd" not in workloads.revisions(rollout)
    assert env.kube.get(DEPLOYMENTS, ns, "web-dddd")["spec"]["replicas"] == 1


def test_template_fields_newer_than_the_client_pass_through(
    env: Env, ns: str, rollout: RolloutRef
) -> None:
    """The adapter sends the template as written, never through the client's typed models: a
    field the client does not know reaches the API server (which decides; this one, unknown to
    it too, it drops with a warning, as a server of a release without the field would)."""
    template = {
        "metadata": {"labels": {"app": "web"}},
        "spec": {
            "containers": [{"name": "web", "image": "web:2"}],
            "futureField": {"enabled": True},
        },
    }
    Workloads(env.kube).ensure_revision(rollout, "eeee", 1, template)
    [sent] = [
        json.loads(r.body)
        for r in env.faults.forwarded
        if (r.verb, r.resource, r.namespace) == ("create", "deployments", ns)
    ]
    assert sent["spec"]["template"]["spec"]["futureField"] == {"enabled": True}
    stored = env.kube.get(DEPLOYMENTS, ns, "web-eeee")
    assert "futureField" not in stored["spec"]["template"]["spec"]


# ----------------------------------------------------------------------------- services


def test_point_service_sets_and_removes_the_revision_selector(env: Env, ns: str) -> None:
    _service(env, ns, "web", {"app": "web"})
    workloads = Workloads(env.kube)
    assert workloads.service_exists(ns, "web")
    assert not workloads.service_exists(ns, "web-canary")

    assert workloads.point_service(ns, "web", "r1") is True
    svc = env.kube.get(SERVICES, ns, "web")
    assert svc["spec"]["selector"] == {"app": "web", REVISION_LABEL: "r1"}
    rv = svc["metadata"]["resourceVersion"]
    assert workloads.point_service(ns, "web", "r1") is False
    assert env.kube.get(SERVICES, ns, "web")["metadata"]["resourceVersion"] == rv

    assert workloads.point_service(ns, "web", "r2") is True
    assert workloads.point_service(ns, "web", None) is True
    assert env.kube.get(SERVICES, ns, "web")["spec"]["selector"] == {"app": "web"}

    with pytest.raises(NotFound):
        workloads.point_service(ns, "web-canary", "r1")


# --------------------------------------------------------------------------- error mapping


@pytest.mark.parametrize(
    ("status", "error", "retryable"),
    [
        pytest.param(403, Forbidden, False, id="403-forbidden"),
        pytest.param(401, Forbidden, False, id="401-unauthorized"),
        pytest.param(404, NotFound, False, id="404-not-found"),
        pytest.param(409, Conflict, True, id="409-conflict"),
        pytest.param(422, Invalid, False, id="422-invalid"),
        pytest.param(500, Unavailable, True, id="500-internal"),
        pytest.param(503, Unavailable, True, id="503-unavailable"),
        pytest.param(410, KubeError, False, id="410-other"),
    ],
)
def test_api_status_codes_map_to_the_hierarchy(
    env: Env, ns: str, status: int, error: type[KubeError], retryable: bool
) -> None:
    _service(env, ns, "web", {"app": "web"})
    env.faults.fail_next(
        1, status=status, verb="get", resource="services", namespace=ns, message="lab says no"
    )
    with pytest.raises(KubeError) as got:
        env.kube.get(SERVICES, ns, "web")
    assert type(got.value) is error
    assert got.value.retryable is retryable
    assert got.value.status == status
    assert "lab says no" in str(got.value)
    assert f"services {ns}/web" in str(got.value)


def test_throttling_is_retried_by_the_client_then_unavailable(env: Env, ns: str) -> None:
    """One 429 is absorbed by the client (it honours Retry-After); a client configured not to
    retry, or a server that keeps throttling, yields ``Unavailable``."""
    _service(env, ns, "web", {"app": "web"})
    faults = env.faults
    faults.fail_next(1, status=429, verb="get", resource="services", namespace=ns)
    assert env.kube.get(SERVICES, ns, "web")["metadata"]["name"] == "web"

    configuration = client.Configuration()
    config.load_kube_config(  # type: ignore[no-untyped-call]
        str(env.kubeconfig), client_configuration=configuration
    )
    configuration.retries = 0
    with client.ApiClient(configuration) as no_retries:
        faults.fail_next(1, status=429, verb="get", resource="services", namespace=ns)
        with pytest.raises(Unavailable) as got:
            KubeAPI(no_retries).get(SERVICES, ns, "web")
    assert got.value.retryable


def test_invalid_object_is_invalid(env: Env, ns: str) -> None:
    bad = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "Not_A_Valid_Name"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {}}},
    }
    with pytest.raises(Invalid) as got:
        env.kube.create(DEPLOYMENTS, ns, bad)
    assert got.value.status == 422


def test_unreachable_api_server_is_unavailable() -> None:
    configuration = client.Configuration(host="http://127.0.0.1:1")
    configuration.retries = 0
    kube = KubeAPI(client.ApiClient(configuration), timeout=2)
    with pytest.raises(Unavailable) as got:
        kube.get(DEPLOYMENTS, "default", "web")
    assert got.value.retryable
    assert got.value.status is None
