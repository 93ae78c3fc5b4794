"""The Helm chart installed with ``helm install`` into the lab cluster, as a user installs it.

The real kube-apiserver validates every object the chart renders (the Deployment's pod spec, the
RBAC, the PodDisruptionBudget, the webhook configuration, the generated Secrets), the cluster's
own controllers run the Deployment (kwok plays the kubelet: its pods become Running and Ready,
though no container runs), and what the chart installed reads back as it was rendered
(``helm get manifest``). Uninstalling keeps what the chart promises to keep.

The CRDs are the lab's (installed with ``kubectl apply --server-side`` at its start), so the
installs skip them, and kopf's peering CRDs too (``peering.installCRDs=false``: the lab installs
them once). An installed webhook configuration would send ModelRelease writes of the whole
cluster to pods that run nothing: each test removes it as soon as it is read back.
"""

from __future__ import annotations

import base64
import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.cluster import Cluster
from hack.lab.operator import CHART, helm
from hack.lab.testing.cluster_fixtures import Kubectl, delete_namespace, new_namespace

pytestmark = pytest.mark.lab


def get_json(kubectl: Kubectl, *args: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(kubectl("get", *args, "-o", "json", check=True).stdout)
    return result


def install(cluster: Cluster, release: str, namespace: str, *sets: str) -> list[dict[str, Any]]:
    """``helm install`` and what helm recorded it installed."""
    args = ["install", release, str(CHART), "--namespace", namespace, "--skip-crds", "--wait"]
    for item in ("peering.installCRDs=false", f"fullnameOverride={release}", *sets):
        args += ["--set", item]
    helm(cluster, *args, "--timeout", "60s")
    manifest = helm(cluster, "get", "manifest", release, "--namespace", namespace)
    return [doc for doc in yaml.safe_load_all(manifest) if doc]


def test_cluster_scoped_install_runs_and_round_trips(
    lab_cluster: Cluster, kubectl: Kubectl, namespace: str
) -> None:
    release = f"rollwise-{namespace}"
    docs = install(lab_cluster, release, namespace, "replicas=2")
    try:
        # The webhook configuration first: it must not outlive what it is read back for.
        served_hook = get_json(kubectl, "mutatingwebhookconfiguration", release)
    finally:
        kubectl("delete", "mutatingwebhookconfiguration", release, "--ignore-not-found")
    rendered_hook = next(d for d in docs if d["kind"] == "MutatingWebhookConfiguration")
    [hook, rollout_hook, guarded_hook] = served_hook["webhooks"]
    assert hook["failurePolicy"] == "Fail"
    assert hook["clientConfig"] == rendered_hook["webhooks"][0]["clientConfig"]
    assert rollout_hook["failurePolicy"] == "Ignore"
    assert rollout_hook["clientConfig"] == rendered_hook["webhooks"][1]["clientConfig"]
    assert guarded_hook["failurePolicy"] == "Fail"
    assert guarded_hook["objectSelector"] == rendered_hook["webhooks"][2]["objectSelector"]
    tls = get_json(kubectl, "secret", f"{release}-webhook-tls", "-n", namespace)
    assert tls["data"]["ca.crt"] == hook["clientConfig"]["caBundle"]
    webhook_service = get_json(kubectl, "service", f"{release}-webhook", "-n", namespace)
    assert webhook_service["spec"]["ports"][0]["targetPort"] == "webhook"

    rendered_role = next(d for d in docs if d["kind"] == "ClusterRole")
    assert get_json(kubectl, "clusterrole", release)["rules"] == rendered_role["rules"]
    binding = get_json(kubectl, "clusterrolebinding", release)
    assert binding["roleRef"]["name"] == release
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": release, "namespace": namespace}
    ]
    get_json(kubectl, "serviceaccount", release, "-n", namespace)

    # The cluster's controllers ran the Deployment: two replicas, Available (helm --wait).
    deployment = get_json(kubectl, "deployment", release, "-n", namespace)
    assert deployment["status"]["readyReplicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == release
    container = pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["ROLLWISE_PEERING"] == "rollwise"
    budget = get_json(kubectl, "poddisruptionbudget", release, "-n", namespace)
    assert budget["spec"]["minAvailable"] == 1
    assert budget["status"]["currentHealthy"] == 2
    service = get_json(kubectl, "service", f"{release}-metrics", "-n", namespace)
    assert service["spec"]["ports"][0]["port"] == 9102
    endpoints = get_json(
        kubectl,
        "endpointslices",
        "-n",
        namespace,
        "-l",
        f"kubernetes.io/service-name={release}-metrics",
    )
    ready = [
        e for s in endpoints["items"] for e in s.get("endpoints") or [] if e["conditions"]["ready"]
    ]
    assert len(ready) == 2, "the metrics Service reaches both (fake) pods"

    # Uninstalling keeps the record key (ModelReleases' records outlive the chart).
    helm(lab_cluster, "uninstall", release, "--namespace", namespace, "--wait")
    get_json(kubectl, "secret", f"{release}-record-key", "-n", namespace)
    assert kubectl("get", "clusterrole", release).returncode != 0
    assert kubectl("get", "deployment", release, "-n", namespace).returncode != 0


def test_namespace_scoped_install_grants_roles_per_namespace(
    lab_cluster: Cluster, kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    watched = [new_namespace(lab_cluster, "w") for _ in range(2)]
    release = f"rollwise-ns-{uuid.uuid4().hex[:6]}"
    try:
        docs = install(
            lab_cluster,
            release,
            namespace,
            "scope=namespace",
            "watchNamespaces={" + ",".join(watched) + "}",
            "webhook.enabled=false",
        )
        for name in watched:
            rendered = next(
                d for d in docs if d["kind"] == "Role" and d["metadata"]["namespace"] == name
            )
            served = get_json(kubectl, "role", release, "-n", name)
            assert served["rules"] == rendered["rules"]
            binding = get_json(kubectl, "rolebinding", release, "-n", name)
            assert binding["subjects"][0]["namespace"] == namespace
        cluster_rules = get_json(kubectl, "clusterrole", release)["rules"]
        groups = sorted({g for rule in cluster_rules for g in rule["apiGroups"]})
        assert groups == ["", "apiextensions.k8s.io", "rollwise.dev"], (
            "CRD, namespace and ClusterAnalysisTemplate reads only"
        )
        # Of Rollwise's own kinds only the cluster-scoped templates, and only read.
        rollwise_rules = [r for r in cluster_rules if r["apiGroups"] == ["rollwise.dev"]]
        assert rollwise_rules == [
            {
                "apiGroups": ["rollwise.dev"],
                "resources": ["clusteranalysistemplates"],
                "verbs": ["get", "list", "watch"],
            }
        ]
        deployment = get_json(kubectl, "deployment", release, "-n", namespace)
        args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        assert [a for a in args if a.startswith("--namespace=")] == [
            f"--namespace={name}" for name in watched
        ]
        helm(lab_cluster, "uninstall", release, "--namespace", namespace, "--wait")
    finally:
        for name in watched:
            delete_namespace(lab_cluster, name)


def secret_data(kubectl: Kubectl, namespace: str, name: str) -> dict[str, str]:
    return dict(get_json(kubectl, "secret", name, "-n", namespace)["data"])


def test_keys_and_cas_are_generated_once_and_found_again(
    lab_cluster: Cluster, kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    """Installed, the chart generates the record key and the webhook's client CA once; the
    next render against the cluster (an upgrade's) finds them and keeps them. Offline it
    generates neither (tests/unit/test_chart.py)."""
    release = f"rw-keys-{uuid.uuid4().hex[:6]}"
    first = install(lab_cluster, release, namespace)
    kubectl("delete", "mutatingwebhookconfiguration", release, "--ignore-not-found")
    key = secret_data(kubectl, namespace, f"{release}-record-key")
    client = secret_data(kubectl, namespace, f"{release}-webhook-client")
    assert len(base64.b64decode(key["key"])) == 48
    record_key = next(d for d in first if d["metadata"]["name"] == f"{release}-record-key")
    assert record_key["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"

    rendered = helm(
        lab_cluster,
        "template", release, str(CHART), "--namespace", namespace, "--dry-run=server",
        "--set", f"fullnameOverride={release}", "--set", "peering.installCRDs=false",
    )  # fmt: skip
    again = [d for d in yaml.safe_load_all(rendered) if d]
    by_name = {d["metadata"]["name"]: d for d in again if d["kind"] == "Secret"}
    assert by_name[f"{release}-record-key"]["data"] == key, "the same key on every render"
    assert by_name[f"{release}-webhook-client"]["data"] == client

    ca, cert = tmp_path / "ca.crt", tmp_path / "tls.crt"
    ca.write_bytes(base64.b64decode(client["ca.crt"]))
    cert.write_bytes(base64.b64decode(client["tls.crt"]))
    verified = subprocess.run(
        ["openssl", "verify", "-CAfile", str(ca), "-purpose", "sslclient", str(cert)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    serving = secret_data(kubectl, namespace, f"{release}-webhook-tls")
    assert serving["ca.crt"] != client["ca.crt"], "a CA of its own"
    helm(lab_cluster, "uninstall", release, "--namespace", namespace, "--wait")
