"""The Helm chart's rendered objects applied to the lab's API emulator with the real kubectl.

`helm template` (the real helm, see tests/unit/test_chart.py) renders the chart as an install
would; kubectl applies the CRDs, the ServiceAccount, the RBAC and the workload objects. The
CRDs must become Established and serve their resources, and the ClusterRole and Roles must
read back with exactly the rules the chart rendered. The lab serves no PodDisruptionBudget and
no NetworkPolicy (it has no network to police), so those objects are left out.

`helm install` itself cannot target the lab yet: helm writes its release Secret as protobuf and
the emulator reads JSON only (and helm's in-memory release driver swaps in a fake cluster
client, so it proves nothing). Applying the rendered objects is what an install does otherwise.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.lab.testing.kube_fixtures import Kubectl, manifest

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "rollwise"
RELEASE = "rollwise"
NOT_SERVED_BY_THE_LAB = {"PodDisruptionBudget", "NetworkPolicy"}


def helm(home: Path, *args: str) -> str:
    binary = shutil.which("helm")
    assert binary, "helm is missing: run `make system-deps` (hack/ensure-helm.sh installs it)"
    env = {
        "HOME": str(home),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    proc = subprocess.run(
        [binary, *args], capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def helm_template(
    home: Path, namespace: str, *sets: str, kubeconfig: Path | None = None
) -> list[dict[str, Any]]:
    """The chart rendered offline, or against the lab's API server with ``kubeconfig``
    (``--dry-run=server``: its lookups see the cluster, as an install's do)."""
    args = ["template", RELEASE, str(CHART), "--namespace", namespace, "--include-crds"]
    if kubeconfig is not None:
        args += ["--dry-run=server", "--kubeconfig", str(kubeconfig)]
    for item in sets:
        args += ["--set", item]
    return [doc for doc in yaml.safe_load_all(helm(home, *args)) if doc]


def apply(kubectl: Kubectl, docs: list[dict[str, Any]]) -> str:
    return kubectl("apply", "-f", "-", input=manifest(*docs), check=True).stdout


def get_json(kubectl: Kubectl, *args: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(kubectl("get", *args, "-o", "json", check=True).stdout)
    return result


def install_rendered(kubectl: Kubectl, docs: list[dict[str, Any]]) -> None:
    """Apply as `helm install` would: CRDs first, established, then everything else."""
    crds = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
    assert crds
    applied = apply(kubectl, crds)
    for crd in crds:
        name = crd["metadata"]["name"]
        assert name in applied
        kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=20s", check=True)
    rest = [
        d
        for d in docs
        if d["kind"] != "CustomResourceDefinition" and d["kind"] not in NOT_SERVED_BY_THE_LAB
    ]
    apply(kubectl, rest)


def test_cluster_scoped_install_is_served_and_round_trips(
    kubectl: Kubectl, kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    docs = helm_template(tmp_path, namespace, "replicas=2", kubeconfig=kubeconfig)
    install_rendered(kubectl, docs)

    for crd in ("rollouts.rollwise.dev", "modelreleases.rollwise.dev"):
        conditions = get_json(kubectl, "crd", crd)["status"]["conditions"]
        established = [c for c in conditions if c["type"] == "Established"]
        assert established, crd
        assert established[0]["status"] == "True", crd
    for kind in ("rollouts", "modelreleases", "kopfpeerings"):
        listed = get_json(kubectl, kind, "-n", namespace)
        assert listed["items"] == []
    assert get_json(kubectl, "clusterkopfpeerings")["kind"] == "List"

    rendered_role = next(d for d in docs if d["kind"] == "ClusterRole")
    served_role = get_json(kubectl, "clusterrole", RELEASE)
    assert served_role["rules"] == rendered_role["rules"]
    binding = get_json(kubectl, "clusterrolebinding", RELEASE)
    assert binding["roleRef"]["name"] == RELEASE
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": RELEASE, "namespace": namespace}
    ]
    get_json(kubectl, "serviceaccount", RELEASE, "-n", namespace)

    deployment = get_json(kubectl, "deployment", RELEASE, "-n", namespace)
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == RELEASE
    container = pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["ROLLWISE_PEERING"] == "rollwise"
    service = get_json(kubectl, "service", f"{RELEASE}-metrics", "-n", namespace)
    assert service["spec"]["ports"][0]["port"] == 9102

    # The webhook's configuration is cluster-wide in this module's server: read it back, then
    # remove it so that no later write to a ModelRelease calls a webhook that is not running.
    rendered_hook = next(d for d in docs if d["kind"] == "MutatingWebhookConfiguration")
    served_hook = get_json(kubectl, "mutatingwebhookconfiguration", RELEASE)
    kubectl("delete", "mutatingwebhookconfiguration", RELEASE, check=True)
    [hook, rollout_hook, guarded_hook] = served_hook["webhooks"]
    assert hook["failurePolicy"] == "Fail"
    assert hook["clientConfig"] == rendered_hook["webhooks"][0]["clientConfig"]
    assert rollout_hook["failurePolicy"] == "Ignore"
    assert rollout_hook["clientConfig"] == rendered_hook["webhooks"][1]["clientConfig"]
    assert guarded_hook["failurePolicy"] == "Fail"
    assert guarded_hook["objectSelector"] == rendered_hook["webhooks"][2]["objectSelector"]
    tls = get_json(kubectl, "secret", f"{RELEASE}-webhook-tls", "-n", namespace)
    assert tls["data"]["ca.crt"] == hook["clientConfig"]["caBundle"]
    get_json(kubectl, "secret", f"{RELEASE}-record-key", "-n", namespace)
    webhook_service = get_json(kubectl, "service", f"{RELEASE}-webhook", "-n", namespace)
    assert webhook_service["spec"]["ports"][0]["targetPort"] == "webhook"


def test_namespace_scoped_install_grants_roles_per_namespace(
    kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    watched = [f"w-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    apply(
        kubectl,
        [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in watched],
    )
    docs = helm_template(
        tmp_path,
        namespace,
        "scope=namespace",
        "watchNamespaces={" + ",".join(watched) + "}",
        "fullnameOverride=rollwise-ns",
    )
    install_rendered(kubectl, docs)

    for name in watched:
        rendered = next(
            d for d in docs if d["kind"] == "Role" and d["metadata"]["namespace"] == name
        )
        served = get_json(kubectl, "role", "rollwise-ns", "-n", name)
        assert served["rules"] == rendered["rules"]
        binding = get_json(kubectl, "rolebinding", "rollwise-ns", "-n", name)
        assert binding["subjects"][0]["namespace"] == namespace
    cluster_rules = get_json(kubectl, "clusterrole", "rollwise-ns")["rules"]
    groups = sorted({g for rule in cluster_rules for g in rule["apiGroups"]})
    assert groups == ["apiextensions.k8s.io"], "the chart, not the operator, owns the webhook"
    deployment = get_json(kubectl, "deployment", "rollwise-ns", "-n", namespace)
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert [a for a in args if a.startswith("--namespace=")] == [
        f"--namespace={name}" for name in watched
    ]


def secret_data(kubectl: Kubectl, namespace: str, name: str) -> dict[str, str]:
    return dict(get_json(kubectl, "secret", name, "-n", namespace)["data"])


def test_keys_and_cas_are_generated_once_and_found_again(
    kubectl: Kubectl, kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    """Rendered against the cluster, the chart generates the record key and the webhook's
    client CA once; the next render finds them and keeps them. Offline it generates neither
    (tests/unit/test_chart.py)."""
    first = helm_template(tmp_path, namespace, "fullnameOverride=rw-keys", kubeconfig=kubeconfig)
    install_rendered(kubectl, first)
    kubectl("delete", "mutatingwebhookconfiguration", "rw-keys", check=True)
    key = secret_data(kubectl, namespace, "rw-keys-record-key")
    client = secret_data(kubectl, namespace, "rw-keys-webhook-client")
    assert len(base64.b64decode(key["key"])) == 48
    record_key = next(d for d in first if d["metadata"]["name"] == "rw-keys-record-key")
    assert record_key["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"

    again = helm_template(tmp_path, namespace, "fullnameOverride=rw-keys", kubeconfig=kubeconfig)
    by_name = {d["metadata"]["name"]: d for d in again if d["kind"] == "Secret"}
    assert by_name["rw-keys-record-key"]["data"] == key, "the same key on every render"
    assert by_name["rw-keys-webhook-client"]["data"] == client

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
    serving = secret_data(kubectl, namespace, "rw-keys-webhook-tls")
    assert serving["ca.crt"] != client["ca.crt"], "a CA of its own"
