"""``python -m hack.bench.tenants``: one namespace's hostile endpoints against another's steps.

    python -m hack.bench.tenants [--quiet 5] [--noisy 20] [--scenarios alone,budgets,none]
                                 [--workdir DIR]

In a cluster of its own (``hack.cluster``), with a real Prometheus, two namespaces share one
``rollwise-operator``:

- ``quiet``: ``--quiet`` Rollouts stepping 5% → 25% → 100%, each step gated by a check the real
  Prometheus answers at once;
- ``noisy``: ``--noisy`` Rollouts whose checks go to an allowed "Prometheus" that accepts
  connections and never answers (a black hole), with the longest timeout the operator allows.

Scenarios: ``alone`` (the quiet namespace by itself), ``budgets`` (both, with the operator's
per-namespace budgets: the defaults), ``none`` (both, with the budgets off:
``ROLLWISE_NAMESPACE_PASSES=0``, ``ROLLWISE_NAMESPACE_QUERIES=0``). For each it prints how long
every quiet Rollout took from its template change to Healthy on the new revision (p50 and
max), so the budgets' effect reads directly: the quiet steps' times with the noisy namespace
beside them against their times alone.

Boundary: a measurement script; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from hack.bench._common import REPO, percentile
from hack.cluster import Cluster, wait_established
from hack.lab.operator import OPERATOR
from hack.lab.processes import stop_process
from hack.lab.prometheus import PrometheusServer

CRDS = [REPO / "crds", REPO / "hack" / "lab" / "crds" / "gateway.networking.k8s.io_httproutes.yaml"]


class BlackHole:
    """A TCP listener on loopback that accepts every connection and never answers."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.listen(512)
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}"

    def _accept(self) -> None:
        self._socket.settimeout(0.5)
        while not self._stop.is_set():
            try:
                conn, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._held.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._socket.close()
        for conn in self._held:
            conn.close()


def rollout(name: str, address: str | None, query: str) -> list[dict[str, Any]]:
    prometheus: dict[str, Any] = {"query": query, "timeout": "30s"}
    if address is not None:
        prometheus["address"] = address
    return [
        *[
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": f"{name}-{role}"},
                "spec": {"selector": {"app": name}, "ports": [{"port": 80}]},
            }
            for role in ("stable", "canary")
        ],
        {
            "apiVersion": "rollwise.dev/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": name},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "app", "image": "demo:1"}]},
                },
                "strategy": {
                    "canary": {
                        "stableService": f"{name}-stable",
                        "canaryService": f"{name}-canary",
                        "scaleDownDelaySeconds": 0,
                        "analysis": {
                            "interval": "1s",
                            "metrics": [
                                {
                                    "name": "check",
                                    "successCondition": "result < 0.5",
                                    "provider": {"prometheus": prometheus},
                                }
                            ],
                        },
                    }
                },
            },
        },
    ]


NEW_IMAGE = (
    "--type=json",
    "-p",
    '[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"demo:2"}]',
)


def in_namespace(namespace: str, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**d, "metadata": {**d["metadata"], "namespace": namespace}} for d in docs]


def _rollouts(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    out = cluster.kubectl("get", "rollouts", "-n", namespace, "-o", "json").stdout
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


def scenario(workdir: Path, *, quiet: int, noisy: int, budgets: bool) -> list[float]:
    """Seconds each quiet Rollout took from its template change to Healthy on the new
    revision (``noisy`` 0: the quiet namespace alone)."""
    workdir.mkdir(parents=True, exist_ok=True)
    hole = BlackHole()
    with Cluster(workdir / "cluster", log=lambda _line: None) as cluster:
        for path in CRDS:
            cluster.kubectl("apply", "--server-side", "-f", str(path))
        wait_established(cluster.kubectl)
        prometheus = PrometheusServer([], data_dir=workdir / "prometheus")
        prometheus.start()
        env = {
            **os.environ,
            "KUBECONFIG": str(cluster.kubeconfig),
            "ROLLWISE_PROMETHEUS_URL": prometheus.url,
            "ROLLWISE_PROMETHEUS_ALLOWED_URLS": hole.url,
            "ROLLWISE_LOG_FORMAT": "json",
            "ROLLWISE_METRICS_PORT": "0",
        }
        if not budgets:
            env |= {"ROLLWISE_NAMESPACE_PASSES": "0", "ROLLWISE_NAMESPACE_QUERIES": "0"}
        docs: list[dict[str, Any]] = []
        for ns in ("quiet", "noisy"):
            cluster.kubectl("create", "namespace", ns)
        for i in range(quiet):
            docs += [
                {**d, "metadata": {**d["metadata"], "namespace": "quiet"}}
                for d in rollout(f"q{i}", None, "vector(0)")
            ]
        for i in range(noisy):
            docs += [
                {**d, "metadata": {**d["metadata"], "namespace": "noisy"}}
                for d in rollout(f"n{i}", hole.url, "vector(0)")
            ]
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
        with (workdir / "operator.log").open("wb") as log:
            operator = subprocess.Popen(
                [str(OPERATOR)], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                items = _rollouts(cluster, "quiet") + _rollouts(cluster, "noisy")
                if len(items) == quiet + noisy and all(
                    (i.get("status") or {}).get("phase") == "Healthy" for i in items
                ):
                    break
                time.sleep(1)
            for i in range(noisy):
                cluster.kubectl("patch", "rollout", f"n{i}", "-n", "noisy", *NEW_IMAGE)
            time.sleep(5.0)  # the noisy canaries are waiting on the black hole
            started = {f"q{i}": time.monotonic() for i in range(quiet)}
            for i in range(quiet):
                cluster.kubectl("patch", "rollout", f"q{i}", "-n", "quiet", *NEW_IMAGE)
            took: dict[str, float] = {}
            deadline = time.monotonic() + 600
            while len(took) < quiet and time.monotonic() < deadline:
                for item in _rollouts(cluster, "quiet"):
                    name = item["metadata"]["name"]
                    status = item.get("status") or {}
                    done = (
                        status.get("observedGeneration") == item["metadata"]["generation"]
                        and status.get("phase") == "Healthy"
                        and status.get("canaryRevision") is None
                    )
                    if done and name not in took:
                        took[name] = time.monotonic() - started[name]
                time.sleep(0.2)
            return sorted(took.values()) + [float("inf")] * (quiet - len(took))
        finally:
            stop_process(operator, timeout=15)
            prometheus.stop()
            hole.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m hack.bench.tenants", description=__doc__)
    parser.add_argument("--quiet", type=int, default=5)
    parser.add_argument("--noisy", type=int, default=20)
    parser.add_argument("--scenarios", default="alone,budgets,none")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="rollwise-tenants-"))
    for name in args.scenarios.split(","):
        noisy = 0 if name == "alone" else args.noisy
        times = scenario(workdir / name, quiet=args.quiet, noisy=noisy, budgets=name != "none")
        print(
            f"{name:8} quiet Rollouts 5% -> 25% -> 100% (each step analysed) with {noisy} noisy "
            f"ones: p50 {percentile(times, 0.5):.1f} s, max {max(times):.1f} s "
            f"({', '.join(f'{t:.1f}' for t in times)})"
        )
    print(f"workdir {workdir}")


if __name__ == "__main__":
    main()
