"""``kubectl rollwise`` set image, undo, restart, status and list by kind, run as users run it (the
real kubectl finding the ``kubectl-rollwise`` console script on PATH) against the lab cluster's
kube-apiserver, with the CRDs applied. No operator runs: the revision Deployments are created as
the operator creates them (``rollwise.adapters.workloads.revision_deployment``) and stored by
the API server with its defaults; statuses are written through the ``/status`` subresource.

Only the generic fixtures are used (``kubectl``, ``kubeconfig``, ``namespace``), so these tests
run unchanged against any API server those fixtures provide.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hack.cluster import wait_established
from hack.lab.testing.cluster_fixtures import Kubectl, kubectl_binary, manifest
from rollwise.adapters.workloads import RolloutRef, revision_deployment
from rollwise.cli.revisions import RESTARTED_AT
from rollwise.core.observations import revision_of

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent

Plugin = Callable[..., subprocess.CompletedProcess[str]]

TEMPLATE_1: dict[str, Any] = {
    "metadata": {"labels": {"app": "demo"}},
    "spec": {
        "containers": [
            {
                "name": "app",
                "image": "ghcr.io/rollwise/demo-service:1.0.0",
                "ports": [{"name": "http", "containerPort": 8080}],
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
            },
            {"name": "log-shipper", "image": "fluent/fluent-bit:3.2"},
        ]
    },
}
REV_1 = revision_of(TEMPLATE_1)


def rollout_manifest(template: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "rollwise.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "demo"},
        "spec": {
            "replicas": 4,
            "selector": {"matchLabels": {"app": "demo"}},
            "template": template,
            "strategy": {
                "canary": {
                    "stableService": "demo-stable",
                    "canaryService": "demo-canary",
                    "scaleDownDelaySeconds": 600,
                    "steps": [{"setWeight": 25}, {"pause": {}}, {"setWeight": 100}],
                }
            },
        },
    }


@pytest.fixture(scope="module")
def crds(kubectl: Kubectl) -> None:
    """The lab installs the CRDs when it starts (``kubectl apply --server-side``)."""
    wait_established(kubectl, "rollouts.rollwise.dev", "modelreleases.rollwise.dev", timeout=20)


@pytest.fixture
def plugin(kubeconfig: Path, namespace: str) -> Plugin:
    def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(kubectl_binary()), "rollwise", *args, "-n", namespace],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={
                **os.environ,
                "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                "KUBECONFIG": str(kubeconfig),
            },
            check=False,
        )

    return run


def get(kubectl: Kubectl, namespace: str, *what: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(
        kubectl("get", *what, "-o", "json", namespace=namespace, check=True).stdout
    )
    return found


def set_status(kubectl: Kubectl, namespace: str, status: dict[str, Any]) -> None:
    kubectl(
        "patch",
        "rollout",
        "demo",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
        namespace=namespace,
        check=True,
    )


def add_revision(kubectl: Kubectl, namespace: str, template: dict[str, Any], replicas: int) -> str:
    """The revision's Deployment, exactly as the operator creates it; returns the revision."""
    rollout = get(kubectl, namespace, "rollout", "demo")
    ref = RolloutRef(namespace, "demo", rollout["metadata"]["uid"], rollout["spec"]["selector"])
    revision = revision_of(template)
    body = revision_deployment(ref, revision, replicas, template)
    kubectl("apply", "-f", "-", input=manifest(body), namespace=namespace, check=True)
    return revision


@pytest.fixture
def stable(crds: None, kubectl: Kubectl, namespace: str) -> None:
    """Rollout demo, Healthy at revision 1, with its revision Deployment."""
    kubectl(
        "apply",
        "-f",
        "-",
        input=manifest(rollout_manifest(TEMPLATE_1)),
        namespace=namespace,
        check=True,
    )
    add_revision(kubectl, namespace, TEMPLATE_1, 4)
    generation = get(kubectl, namespace, "rollout", "demo")["metadata"]["generation"]
    set_status(
        kubectl,
        namespace,
        {
            "phase": "Healthy",
            "message": f"revision {REV_1} is stable at 100% (4/4 available)",
            "observedGeneration": generation,
            "stableRevision": REV_1,
            "replicas": 4,
            "availableReplicas": 4,
        },
    )


def test_set_image_then_undo_back_to_the_exact_stable_template(
    stable: None, kubectl: Kubectl, namespace: str, plugin: Plugin
) -> None:
    done = plugin("set", "image", "demo", "app=ghcr.io/rollwise/demo-service:1.1.0")
    assert done.returncode == 0, done.stderr
    template_2 = copy.deepcopy(TEMPLATE_1)
    template_2["spec"]["containers"][0]["image"] = "ghcr.io/rollwise/demo-service:1.1.0"
    rev_2 = revision_of(template_2)
    assert get(kubectl, namespace, "rollout", "demo")["spec"]["template"] == template_2
    assert done.stdout.splitlines()[:2] == [
        f"rollout.rollwise.dev/demo image updated (revision {REV_1} → {rev_2})",
        "  app: ghcr.io/rollwise/demo-service:1.0.0 → ghcr.io/rollwise/demo-service:1.1.0",
    ]

    # What the operator would do next: the canary's Deployment and a status at step 2/3.
    add_revision(kubectl, namespace, template_2, 1)
    generation = get(kubectl, namespace, "rollout", "demo")["metadata"]["generation"]
    set_status(
        kubectl,
        namespace,
        {
            "phase": "Paused",
            "message": "step 2/3: paused until promoted",
            "observedGeneration": generation,
            "canaryRevision": rev_2,
            "currentStepIndex": 1,
            "step": "2/3",
            "canaryWeight": 25,
        },
    )
    stored = get(kubectl, namespace, "deployment", f"demo-{REV_1}")["spec"]["template"]
    assert revision_of(stored) != REV_1  # the server filled in its defaults

    done = plugin("undo", "demo")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    back = get(kubectl, namespace, "rollout", "demo")["spec"]["template"]
    assert back == TEMPLATE_1
    assert revision_of(back) == REV_1
    assert done.stdout.splitlines()[-1] == (
        f"revision {REV_1} is the stable revision: it serves all traffic; canary {rev_2} is dropped"
    )


def test_undo_without_an_earlier_revision(stable: None, plugin: Plugin) -> None:
    done = plugin("undo", "demo")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith('error: rollout "demo" has no earlier revision to go back to')
    assert done.stderr.count("\n") == 1


def test_set_image_of_an_unknown_container(stable: None, plugin: Plugin) -> None:
    done = plugin("set", "image", "demo", "web=nginx:1")
    assert done.returncode == 1
    assert done.stderr == (
        'error: rollout "demo": the template has no container "web" (containers: app, '
        "log-shipper)\n"
    )
    bad = plugin("set", "image", "demo", "nginx:1")
    assert bad.returncode == 2
    assert "'nginx:1' is not CONTAINER=IMAGE" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_restart_restarts_the_stable_deployment_only(
    stable: None, kubectl: Kubectl, namespace: str, plugin: Plugin
) -> None:
    before = get(kubectl, namespace, "rollout", "demo")
    done = plugin("restart", "demo")
    assert done.returncode == 0, done.stderr
    deployment = get(kubectl, namespace, "deployment", f"demo-{REV_1}")
    assert RESTARTED_AT in deployment["spec"]["template"]["metadata"]["annotations"]
    after = get(kubectl, namespace, "rollout", "demo")
    assert after["spec"] == before["spec"]
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert "no new revision, no canary" in done.stdout


@pytest.mark.parametrize(
    ("phase", "code"),
    [
        pytest.param("Healthy", 0, id="healthy"),
        pytest.param("Degraded", 1, id="degraded"),
        pytest.param("Progressing", 3, id="progressing"),
    ],
)
def test_status_exit_codes(
    stable: None, kubectl: Kubectl, namespace: str, plugin: Plugin, *, phase: str, code: int
) -> None:
    set_status(kubectl, namespace, {"phase": phase, "message": "as the operator says"})
    done = plugin("status", "demo")
    assert (done.returncode, done.stdout, done.stderr) == (
        code,
        f"{phase} - as the operator says\n",
        "",
    )


def test_status_watch_times_out_while_paused(
    stable: None, kubectl: Kubectl, namespace: str, plugin: Plugin
) -> None:
    set_status(kubectl, namespace, {"phase": "Paused", "message": "step 2/3: paused"})
    done = plugin("status", "demo", "--watch", "--timeout", "2s")
    assert done.returncode == 3
    assert done.stdout == "Paused - step 2/3: paused\n"
    assert (
        done.stderr
        == 'error: timed out after 2s waiting for rollout "demo" to be Healthy (Paused)\n'
    )


def test_get_rollout_draws_the_tree_of_what_the_cluster_runs(
    stable: None, kubectl: Kubectl, namespace: str, plugin: Plugin
) -> None:
    done = plugin("get", "rollout", "demo")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "Images:      app=ghcr.io/rollwise/demo-service:1.0.0 (stable)" in lines
    assert any(line.split()[:3] == [REV_1, "Revision", "stable"] for line in lines)
    row = next(line for line in lines if f"demo-{REV_1}   " in line).split()
    assert row[:3] == ["└─", f"demo-{REV_1}", "Deployment"]
    served = kubectl("api-resources", "--api-group=apps", "-o", "name", check=True).stdout.split()
    if "replicasets.apps" in served:
        assert any("ReplicaSet" in line for line in lines)
    else:
        assert "(no ReplicaSets: this API server does not serve them, so no pods run here)" in (
            done.stdout
        )


def test_list_by_kind(stable: None, kubectl: Kubectl, namespace: str, plugin: Plugin) -> None:
    release = (ROOT / "examples" / "modelrelease-template" / "modelrelease.yaml").read_text()
    kubectl("apply", "-f", "-", input=release, namespace=namespace, check=True)
    rollouts = plugin("list", "rollouts")
    assert rollouts.returncode == 0, rollouts.stderr
    assert [line.split()[0] for line in rollouts.stdout.splitlines()] == ["NAME", "demo"]
    releases = plugin("list", "modelreleases")
    assert releases.returncode == 0, releases.stderr
    rows = [line.split() for line in releases.stdout.splitlines()]
    assert rows[0][:2] == ["NAME", "STAGE"]
    assert [r[0] for r in rows[1:]] == ["fraud-detector-7"]
