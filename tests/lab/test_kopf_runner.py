"""A kopf operator runs against the lab cluster's kube-apiserver, as the operator does.

The operator here is small and generic (a ``KopfExample`` custom resource): a create handler
that makes a child ConfigMap, writes status and posts events; a delete handler behind kopf's
finalizer; and validating and mutating admission handlers served by ``kopf.WebhookServer``
with kopf's managed webhook configurations. Each effect is checked through the API (kubectl),
never through the operator's memory, except what the admission handler saw of the user.

The handlers live in per-test ``kopf.OperatorRegistry`` objects handed to ``KopfRunner``, so
tests in one process do not see each other's handlers. kopf logs in with a
``@kopf.on.login`` handler that reads the kubeconfig named by ``KUBECONFIG``: the
``kubernetes`` client's own login reads that variable once, at import, and would miss it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kopf
import pytest
from kopf.testing import KopfRunner

from hack.cluster import ADMIN, Cluster, wait_established
from hack.lab.testing.cluster_fixtures import Kubectl, grant_namespace, make_kubectl, manifest

pytestmark = pytest.mark.lab

GROUP, VERSION, PLURAL = "lab.rollwise.dev", "v1", "kopfexamples"
MANAGED = "kopf.lab.rollwise.dev"

KOPF_EXAMPLE_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{PLURAL}.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": PLURAL, "singular": "kopfexample", "kind": "KopfExample"},
        "versions": [
            {
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            },
                            "status": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            },
                        },
                    }
                },
            }
        ],
    },
}


def example(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "KopfExample",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def eventually(probe: Callable[[], Any], *, timeout: float = 20, what: str = "") -> Any:
    """Polls ``probe`` until it returns something truthy; bounded in time."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or probe}")
        time.sleep(0.1)


@dataclass
class Lab:
    cluster: Cluster
    namespace: str
    cache: Path

    def kubectl(self, user: str = "operator") -> Kubectl:
        who = ADMIN if user == "operator" else user
        return make_kubectl(self.cluster.kubeconfig_of(who), self.cache / user)

    def get_json(self, *args: str, user: str = "operator") -> dict[str, Any] | None:
        proc = self.kubectl(user)("get", *args, "-o", "json", namespace=self.namespace)
        return json.loads(proc.stdout) if proc.returncode == 0 else None


@pytest.fixture(scope="module")
def example_crd(kubectl: Kubectl) -> Iterator[None]:
    kubectl("apply", "-f", "-", input=manifest(KOPF_EXAMPLE_CRD), check=True)
    wait_established(kubectl, f"{PLURAL}.{GROUP}", timeout=30)
    yield
    kubectl("delete", "crd", f"{PLURAL}.{GROUP}", "--wait=false")


@pytest.fixture
def kopf_lab(
    lab_cluster: Cluster,
    example_crd: None,
    namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Lab]:
    """The session cluster as kopf and two people see it: alice and bob may work in the
    test's namespace; kopf logs in as the administrator. kopf's managed webhook
    configurations are cluster-wide: none outlives the test."""
    grant_namespace(
        lab_cluster,
        namespace,
        ["alice", "bob"],
        [{"apiGroups": [GROUP], "resources": [PLURAL], "verbs": ["get", "list", "create"]}],
    )
    monkeypatch.setenv("KUBECONFIG", str(lab_cluster.kubeconfig))
    lab = Lab(lab_cluster, namespace, tmp_path / "kubecache")
    yield lab
    for kind in ("mutatingwebhookconfiguration", "validatingwebhookconfiguration"):
        lab.kubectl()("delete", kind, MANAGED, "--ignore-not-found")


def operator_settings() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.watching.server_timeout = 10
    settings.networking.request_timeout = 10
    return settings


def login_from_kubeconfig(registry: kopf.OperatorRegistry) -> None:
    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_with_kubeconfig(**kwargs)


def run_operator(
    lab: Lab, registry: kopf.OperatorRegistry, settings: kopf.OperatorSettings
) -> KopfRunner:
    login_from_kubeconfig(registry)
    return KopfRunner(
        ["run", "--standalone", "--verbose", "--namespace", lab.namespace],
        registry=registry,
        settings=settings,
        timeout=30,
    )


def test_operator_creates_child_writes_status_posts_events_and_releases_finalizer(
    kopf_lab: Lab,
) -> None:
    lab = kopf_lab
    registry = kopf.OperatorRegistry()
    deleted: list[str] = []

    @kopf.on.create(GROUP, VERSION, PLURAL, id="create_child", registry=registry)
    def create_child(
        body: kopf.Body, name: str, namespace: str, spec: kopf.Spec, patch: kopf.Patch, **_: Any
    ) -> dict[str, Any]:
        child = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{name}-child"},
            "data": {"greeting": str(spec.get("greeting", ""))},
        }
        kopf.adopt(child, owner=body)
        lab.kubectl()("create", "-f", "-", input=manifest(child), namespace=namespace, check=True)
        patch.status["child"] = f"{name}-child"
        kopf.info(body, reason="ChildCreated", message=f"created configmap {name}-child")
        kopf.event(body, type="Normal", reason="Greeted", message="said hello")
        return {"phase": "Ready"}

    @kopf.on.delete(GROUP, VERSION, PLURAL, id="released", registry=registry)
    def released(name: str, **_: Any) -> None:
        deleted.append(name)

    kubectl = lab.kubectl()
    with run_operator(lab, registry, operator_settings()) as runner:
        kubectl(
            "apply",
            "-f",
            "-",
            input=manifest(example("ex1", lab.namespace, greeting="hi")),
            namespace=lab.namespace,
            check=True,
        )
        child = eventually(
            lambda: lab.get_json("configmap", "ex1-child"), what="the child ConfigMap"
        )
        obj = eventually(
            lambda: (
                (o := lab.get_json(f"{PLURAL}.{GROUP}", "ex1"))
                and o.get("status", {}).get("create_child")
                and o
            ),
            what="the handler's status",
        )

        def two_events() -> list[dict[str, Any]] | None:
            proc = kubectl(
                "get",
                "events",
                "--field-selector",
                "involvedObject.name=ex1",
                "-o",
                "json",
                namespace=lab.namespace,
            )
            items = json.loads(proc.stdout)["items"] if proc.returncode == 0 else []
            reasons = {e["reason"] for e in items}
            return items if {"ChildCreated", "Greeted"} <= reasons else None

        events = eventually(two_events, what="the two events")
        assert kopf_finalizer(obj), "kopf guards the object with its finalizer"

        kubectl(
            "delete",
            f"{PLURAL}.{GROUP}",
            "ex1",
            "--wait=false",
            namespace=lab.namespace,
            check=True,
        )
        eventually(
            lambda: (
                kubectl("get", f"{PLURAL}.{GROUP}", "ex1", namespace=lab.namespace).returncode != 0
            ),
            what="the object to be gone once the finalizer is released",
        )

    assert runner.exception is None
    assert runner.exit_code == 0
    assert child["data"] == {"greeting": "hi"}
    assert child["metadata"]["ownerReferences"][0]["name"] == "ex1"
    assert obj["status"]["child"] == "ex1-child"
    assert obj["status"]["create_child"] == {"phase": "Ready"}
    by_reason = {e["reason"]: e for e in events}
    assert by_reason["ChildCreated"]["message"] == "created configmap ex1-child"
    assert by_reason["Greeted"]["type"] == "Normal"
    assert by_reason["Greeted"]["involvedObject"]["kind"] == "KopfExample"
    assert by_reason["Greeted"]["involvedObject"]["uid"] == obj["metadata"]["uid"]
    assert deleted == ["ex1"]


def kopf_finalizer(obj: dict[str, Any]) -> bool:
    return any("kopf" in f for f in obj["metadata"].get("finalizers", []))


def test_kopf_admission_webhooks_refuse_mutate_and_see_the_real_user(
    kopf_lab: Lab, tmp_path: Path
) -> None:
    lab = kopf_lab
    registry = kopf.OperatorRegistry()
    seen: list[tuple[str, str, str]] = []

    @kopf.on.validate(GROUP, VERSION, PLURAL, id="check_example", registry=registry)
    def check_example(
        name: str, spec: kopf.Spec, userinfo: dict[str, Any], operation: str, **_: Any
    ) -> None:
        seen.append((name, operation, userinfo["username"]))
        if spec.get("forbidden"):
            raise kopf.AdmissionError(f"{userinfo['username']} may not do that", code=403)

    @kopf.on.mutate(GROUP, VERSION, PLURAL, id="stamp", operations=["CREATE"], registry=registry)
    def stamp(patch: kopf.Patch, userinfo: dict[str, Any], **_: Any) -> None:
        labels = patch.setdefault("metadata", {}).setdefault("labels", {})
        labels["created-by"] = userinfo["username"]

    settings = operator_settings()
    settings.admission.managed = MANAGED
    # kube-apiserver calls webhooks over HTTPS only; kopf sends the certificate file itself
    # as the caBundle, so a certificate the cluster CA signed is trusted through that.
    pair = lab.cluster.serving_certificate(tmp_path / "tls")
    settings.admission.server = kopf.WebhookServer(
        addr="127.0.0.1", host="127.0.0.1", certfile=str(pair.cert), pkeyfile=str(pair.key)
    )

    with run_operator(lab, registry, settings) as runner:
        config = eventually(
            lambda: (
                (c := lab.get_json("validatingwebhookconfiguration", MANAGED))
                and c.get("webhooks")
                and c
            ),
            what="kopf's managed ValidatingWebhookConfiguration",
        )
        eventually(
            lambda: (
                (c := lab.get_json("mutatingwebhookconfiguration", MANAGED)) and c.get("webhooks")
            ),
            what="kopf's managed MutatingWebhookConfiguration",
        )
        alice, bob = lab.kubectl("alice"), lab.kubectl("bob")
        allowed = alice(
            "create",
            "-f",
            "-",
            input=manifest(example("fine", lab.namespace, owner="bob")),
            namespace=lab.namespace,
        )
        refused = bob(
            "create",
            "-f",
            "-",
            input=manifest(example("bad", lab.namespace, forbidden=True, owner="alice")),
            namespace=lab.namespace,
        )
        stored = lab.get_json(f"{PLURAL}.{GROUP}", "bad")
        fine = lab.get_json(f"{PLURAL}.{GROUP}", "fine")

    assert runner.exception is None
    [hook] = config["webhooks"]
    assert hook["name"] == f"check-example.{MANAGED}"
    assert hook["clientConfig"]["url"].startswith("https://127.0.0.1:")
    assert "caBundle" in hook["clientConfig"]
    assert allowed.returncode == 0, allowed.stderr
    assert refused.returncode != 0
    assert (
        f'admission webhook "check-example.{MANAGED}" denied the request: bob may not do that'
        in refused.stderr
    )
    assert stored is None, "the refused object was not stored"
    assert fine is not None
    assert fine["metadata"]["labels"] == {"created-by": "alice"}, "kopf's mutation was applied"
    assert ("fine", "CREATE", "alice") in seen
    assert ("bad", "CREATE", "bob") in seen
