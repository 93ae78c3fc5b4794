"""A tenant's pathological spec cannot freeze the operator: an unclosed placeholder followed by
thousands of spaces (cubic backtracking once: 13 s per validation on the event loop) and a
condition of nested comprehensions are refused as InvalidSpec at once, while another
namespace's Rollout steps through its canary and the liveness probe keeps answering.

On the real control plane, with one operator for both namespaces."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from hack.bench._common import REPO
from hack.cluster import Cluster, wait_established
from hack.lab.operator import OPERATOR
from hack.lab.processes import stop_process
from hack.lab.prometheus import PrometheusServer

pytestmark = [pytest.mark.cluster, pytest.mark.timing, pytest.mark.timeout(600)]

NESTED = (
    "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20].all(x, "
    "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20].all(y, "
    "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20].all(z, result >= 0.0)))"
)
UNCLOSED = "sum(up) {{" + " " * 3500


def rollout(name: str, namespace: str, metric: dict[str, Any] | None) -> list[dict[str, Any]]:
    canary: dict[str, Any] = {
        "stableService": f"{name}-stable",
        "canaryService": f"{name}-canary",
        "scaleDownDelaySeconds": 0,
    }
    if metric is not None:
        canary["analysis"] = {"interval": "1s", "metrics": [metric]}
    services = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": f"{name}-{role}", "namespace": namespace},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80}]},
        }
        for role in ("stable", "canary")
    ]
    return [
        *services,
        {
            "apiVersion": "rollwise.dev/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "app", "image": "demo:1"}]},
                },
                "strategy": {"canary": canary},
            },
        },
    ]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_pathological_spec_is_refused_at_once_and_freezes_nobody(tmp_path: Path) -> None:
    with Cluster(tmp_path / "cluster", log=lambda _line: None) as cluster:
        cluster.kubectl("apply", "--server-side", "-f", str(REPO / "crds"), check=True)
        wait_established(cluster.kubectl)
        for namespace in ("evil", "good"):
            cluster.kubectl("create", "namespace", namespace, check=True)
        prometheus = PrometheusServer([], data_dir=tmp_path / "prometheus")
        prometheus.start()
        liveness = _free_port()
        env = {
            **os.environ,
            "KUBECONFIG": str(cluster.kubeconfig),
            "ROLLWISE_PROMETHEUS_URL": prometheus.url,
            "ROLLWISE_LOG_FORMAT": "json",
            "ROLLWISE_METRICS_PORT": "0",
        }
        with (tmp_path / "operator.log").open("wb") as log:
            operator = subprocess.Popen(
                [str(OPERATOR), f"--liveness=http://127.0.0.1:{liveness}/healthz"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        slowest: list[float] = []
        stop = threading.Event()

        def probe() -> None:
            while not stop.is_set():
                began = time.monotonic()
                try:
                    requests.get(f"http://127.0.0.1:{liveness}/healthz", timeout=5)
                    slowest.append(time.monotonic() - began)
                except requests.RequestException:
                    slowest.append(5.0)
                stop.wait(0.2)

        prober = threading.Thread(target=probe, daemon=True)
        try:
            evil = [
                *rollout(
                    "unclosed",
                    "evil",
                    {
                        "name": "spaces",
                        "successCondition": "result < 1",
                        "provider": {"prometheus": {"query": UNCLOSED}},
                    },
                ),
                *rollout(
                    "nested",
                    "evil",
                    {
                        "name": "comprehensions",
                        "successCondition": NESTED,
                        "provider": {"prometheus": {"query": "vector(0)"}},
                    },
                ),
            ]
            good = rollout("steady", "good", None)
            cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(good), check=True)
            _wait(cluster, "good", "steady", lambda s: s.get("phase") == "Healthy")
            prober.start()
            time.sleep(1.0)
            cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(evil), check=True)
            cluster.kubectl(
                "patch",
                "rollout",
                "steady",
                "-n",
                "good",
                "--type=json",
                "-p",
                '[{"op":"replace","path":"/spec/template/spec/containers/0/image",'
                '"value":"demo:2"}]',
                check=True,
            )
            unclosed = _wait(cluster, "evil", "unclosed", lambda s: s.get("phase") == "Degraded")
            nested = _wait(cluster, "evil", "nested", lambda s: s.get("phase") == "Degraded")
            _wait(
                cluster,
                "good",
                "steady",
                lambda s: s.get("phase") == "Healthy" and s.get("observedGeneration") == 2,
            )
        finally:
            # The probe ends before the operator does: a request cut by the operator's exit
            # is not a slow answer.
            stop.set()
            if prober.is_alive():
                prober.join(timeout=10)
            stop_process(operator, timeout=15)
            prometheus.stop()
        assert "InvalidSpec" in [c["reason"] for c in unclosed["conditions"]]
        assert "all() is not allowed" in nested["message"]
        assert slowest, "the liveness probe was asked"
        assert max(slowest) < 2.0, f"the liveness probe waited {max(slowest):.1f} s"


def _wait(cluster: Cluster, namespace: str, name: str, done: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        out = cluster.kubectl("get", "rollout", name, "-n", namespace, "-o", "yaml").stdout
        status = (yaml.safe_load(out) or {}).get("status") or {}
        if done(status):
            return status
        time.sleep(0.5)
    raise AssertionError(f"{namespace}/{name} never got there: {status.get('message')}")
