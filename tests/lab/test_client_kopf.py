"""The API emulator driven by a real kopf operator (the operator's own framework).

A minimal operator adds its finalizer, writes status through the status subresource, posts
Events, keeps its progress annotations, and releases the object on deletion; kopf's
peering CRDs are applied first, as the e2e tests do. This proves the discovery, watch,
patch and event paths kopf relies on, with the same kubeconfig kubectl uses; a second test
runs kopf with a bearer token against the https server an authenticator implies.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from hack.lab.kube.auth import TokenEntry, TokenFileAuthenticator
from hack.lab.kube.server import BackgroundAPIServer
from hack.lab.processes import stop_process
from hack.lab.testing.kube_fixtures import (
    KOPF_PEERING_CRDS,
    WIDGET_CRD,
    Kubectl,
    make_kubectl,
    manifest,
)

pytestmark = pytest.mark.lab

OPERATOR = textwrap.dedent(
    """
    import kopf

    @kopf.on.create("lab.rollwise.dev", "v1", "widgets")
    @kopf.on.update("lab.rollwise.dev", "v1", "widgets")
    def reconcile(spec, patch, body, **_):
        kopf.info(body, reason="Reconciled", message=f"colour {spec.get('color')}")
        patch.status["phase"] = "Ready"
        patch.status["observedGeneration"] = body["metadata"]["generation"]

    @kopf.on.delete("lab.rollwise.dev", "v1", "widgets")
    def cleanup(body, **_):
        kopf.info(body, reason="CleanedUp", message="released")
    """
)


def _get(kubectl: Kubectl, namespace: str) -> dict[str, Any] | None:
    out = kubectl("get", "widget", "k", "-o", "json", namespace=namespace)
    return json.loads(out.stdout) if out.returncode == 0 else None


def _until(predicate: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    return predicate()


@pytest.mark.usefixtures("widgets")
def test_kopf_operator_reconciles_and_finalizes(
    kubectl: Kubectl, kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    kubectl("apply", "-f", "-", input=manifest(*KOPF_PEERING_CRDS), check=True)
    script = tmp_path / "operator.py"
    script.write_text(OPERATOR)
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    kopf = Path(sys.executable).with_name("kopf")
    log = (tmp_path / "kopf.log").open("w")
    proc = subprocess.Popen(
        [str(kopf), "run", "--standalone", "--namespace", namespace, str(script)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        body = {
            "apiVersion": "lab.rollwise.dev/v1",
            "kind": "Widget",
            "metadata": {"name": "k"},
            "spec": {"color": "red"},
        }
        kubectl("apply", "-f", "-", input=manifest(body), namespace=namespace, check=True)
        ready = _until(
            lambda: (
                (o := _get(kubectl, namespace))
                and (o.get("status") or {}).get("phase") == "Ready"
                and o
            )
        )
        assert ready, (tmp_path / "kopf.log").read_text()[-3000:]
        assert ready["metadata"]["finalizers"] == ["kopf.zalando.org/KopfFinalizerMarker"]
        events = kubectl(
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=k",
            "-o",
            "json",
            namespace=namespace,
            check=True,
        )
        reasons = {e["reason"] for e in json.loads(events.stdout)["items"]}
        assert "Reconciled" in reasons
        kubectl("delete", "widget", "k", "--timeout=20s", namespace=namespace, check=True)
        assert _get(kubectl, namespace) is None
        cleaned = _until(
            lambda: (
                "CleanedUp"
                in kubectl(
                    "get",
                    "events",
                    "--field-selector",
                    "involvedObject.name=k",
                    namespace=namespace,
                ).stdout
            )
        )
        assert cleaned
    finally:
        stop_process(proc, timeout=10)
        log.close()
    text = (tmp_path / "kopf.log").read_text()
    assert "Traceback" not in text, text[-3000:]
    assert "[ERROR" not in text, text[-3000:]


def test_kopf_authenticates_with_a_token_over_tls(tmp_path: Path) -> None:
    auth = TokenFileAuthenticator([TokenEntry("op-token", "operator", "1", ("system:masters",))])
    with BackgroundAPIServer(authenticator=auth) as server:
        assert server.url.startswith("https://")
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig", token="op-token")
        kubectl = make_kubectl(kubeconfig, tmp_path / "cache")
        kubectl("apply", "-f", "-", input=manifest(WIDGET_CRD), check=True)
        script = tmp_path / "operator.py"
        script.write_text(OPERATOR)
        kopf = Path(sys.executable).with_name("kopf")
        with (tmp_path / "kopf.log").open("w") as log:
            proc = subprocess.Popen(
                [str(kopf), "run", "--standalone", "--namespace", "default", str(script)],
                env={**os.environ, "KUBECONFIG": str(kubeconfig)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                body = {
                    "apiVersion": "lab.rollwise.dev/v1",
                    "kind": "Widget",
                    "metadata": {"name": "k"},
                    "spec": {"color": "blue"},
                }
                kubectl("apply", "-f", "-", input=manifest(body), namespace="default", check=True)
                ready = _until(
                    lambda: (
                        (o := _get(kubectl, "default"))
                        and (o.get("status") or {}).get("phase") == "Ready"
                    )
                )
            finally:
                stop_process(proc, timeout=10)
        assert ready, (tmp_path / "kopf.log").read_text()[-3000:]
