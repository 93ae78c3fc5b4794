"""Every query of the chart's Grafana dashboard returns data while the real operator works.

On the real control plane, the operator (its metrics served) runs a Rollout of the lab's demo
service through a canary that fails its analysis and is rolled back; a real Prometheus scrapes
the operator and the demo service's revisions (``http_requests_total{service,revision,code}``,
``http_request_duration_seconds``), whose traffic follows the weights in the Rollout's status.
Then each panel's PromQL, with the dashboard's variables substituted, is run as Grafana runs it
(a range query over the run) and must return series; the template variables' own queries must
find values. Panels for series the operator does not export yet are listed in :data:`PENDING`
with the reason, and must return nothing (so that they are moved out of the list when their
series lands).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from hack.bench._common import OPERATOR, REPO
from hack.cluster import Cluster, wait_established
from hack.lab.processes import stop_process
from hack.lab.prometheus import PrometheusServer
from hack.lab.service import Behaviour, ServiceRegistry

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]

DASHBOARD = REPO / "charts" / "rollwise" / "dashboards" / "rollwise.json"
NAMESPACE = "web"
NAME = "demo"
SERVICE = "demo"

#: Panels whose series do not exist yet, and why.
PENDING = {
    "Regressions confirmed": (
        "rollwise_regressions_total",
        "exported once the post-promotion watch confirms regressions",
    ),
}

CANARY = 'service="demo", revision="{{ canaryRevision }}"'
ERROR_RATIO = (
    f'sum(rate(http_requests_total{{{CANARY}, code=~"5.."}}[10s]))'
    f" / sum(rate(http_requests_total{{{CANARY}}}[10s]))"
)


def manifests() -> list[dict[str, Any]]:
    services = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": f"{NAME}-{role}"},
            "spec": {"selector": {"app": NAME}, "ports": [{"port": 80}]},
        }
        for role in ("stable", "canary")
    ]
    return [
        *services,
        {
            "apiVersion": "rollwise.dev/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": NAME},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": NAME}},
                "template": {
                    "metadata": {"labels": {"app": NAME}},
                    "spec": {"containers": [{"name": "app", "image": "demo:1"}]},
                },
                "strategy": {
                    "canary": {
                        "stableService": f"{NAME}-stable",
                        "canaryService": f"{NAME}-canary",
                        "scaleDownDelaySeconds": 0,
                        "steps": [
                            {"setWeight": 50},
                            {"pause": {"duration": "15s"}},
                            {
                                "analysis": {
                                    "interval": "3s",
                                    "metrics": [
                                        {
                                            "name": "error-ratio",
                                            "count": 3,
                                            "successCondition": "result < 0.1",
                                            "provider": {"prometheus": {"query": ERROR_RATIO}},
                                        }
                                    ],
                                }
                            },
                            {"setWeight": 100},
                        ],
                    }
                },
            },
        },
    ]


class Workload:
    """The demo service's revisions (one DemoService each) and traffic that follows the
    Rollout's status: ``canaryWeight`` percent to the canary revision, the rest to stable. A
    canary revision answers 40% errors, slower."""

    def __init__(self) -> None:
        self.registry = ServiceRegistry(seed=7)
        self.status: dict[str, Any] = {}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._task: asyncio.Future[None] | None = None
        self._first: str | None = None

    def start(self) -> str:
        self.thread.start()
        hub = asyncio.run_coroutine_threadsafe(self.registry.start_hub(), self.loop).result(10)
        self._task = asyncio.run_coroutine_threadsafe(self._traffic(), self.loop)
        return hub

    async def _revision(self, revision: str) -> str:
        if self._first is None:
            self._first = revision
        behaviour = None
        if revision != self._first:
            behaviour = Behaviour(error_ratio=0.4, latency_ms=120, jitter_ms=40)
        demo = await self.registry.ensure(SERVICE, revision, behaviour)
        return demo.url

    async def _traffic(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while True:
                await asyncio.sleep(0.02)
                status = self.status
                stable, canary = status.get("stableRevision"), status.get("canaryRevision")
                if not stable:
                    continue
                weight = int(status.get("canaryWeight") or 0)
                revision = canary if canary and random.uniform(0, 100) < weight else stable
                url = await self._revision(revision)
                try:
                    async with session.get(url + "/") as answer:
                        await answer.read()
                except aiohttp.ClientError:
                    continue

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        asyncio.run_coroutine_threadsafe(self.registry.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def substitute(expr: str, values: dict[str, str]) -> str:
    """The query as Grafana sends it: variables replaced (``$name`` and ``${name}``)."""
    for name, value in sorted(values.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace("${" + name + "}", value).replace("$" + name, value)
    assert "$" not in expr, f"an unsubstituted variable in {expr}"
    return expr


def panels() -> list[dict[str, Any]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def test_every_panel_query_returns_data_from_a_real_run(tmp_path: Path) -> None:
    metrics_port = _free_port()
    workload = Workload()
    with Cluster(tmp_path / "cluster", log=lambda _line: None) as cluster:
        cluster.kubectl("apply", "--server-side", "-f", str(REPO / "crds"), check=True)
        wait_established(cluster.kubectl)
        cluster.kubectl("create", "namespace", NAMESPACE, check=True)
        hub = workload.start()
        operator_target = f"127.0.0.1:{metrics_port}"
        prometheus = PrometheusServer([hub, operator_target], data_dir=tmp_path / "prometheus")
        prometheus.start()
        env = {
            **os.environ,
            "KUBECONFIG": str(cluster.kubeconfig),
            "ROLLWISE_PROMETHEUS_URL": prometheus.url,
            "ROLLWISE_LOG_FORMAT": "json",
            "ROLLWISE_METRICS_PORT": str(metrics_port),
        }
        with (tmp_path / "operator.log").open("wb") as log:
            operator = subprocess.Popen(
                [str(OPERATOR)], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        stop = threading.Event()

        def follow() -> None:
            while not stop.is_set():
                out = cluster.kubectl("get", "rollout", NAME, "-n", NAMESPACE, "-o", "json").stdout
                if out.strip():
                    workload.status = json.loads(out).get("status") or {}
                stop.wait(0.3)

        follower = threading.Thread(target=follow, daemon=True)
        try:
            cluster.kubectl(
                "apply",
                "-n",
                NAMESPACE,
                "-f",
                "-",
                input=yaml.safe_dump_all(manifests()),
                check=True,
            )
            follower.start()
            _until(lambda: workload.status.get("phase") == "Healthy", "Healthy")
            began = time.time()
            patch = json.dumps(
                [
                    {
                        "op": "replace",
                        "path": "/spec/template/spec/containers/0/image",
                        "value": "demo:2",
                    }
                ]
            )
            cluster.kubectl(
                "patch", "rollout", NAME, "-n", NAMESPACE, "--type=json", "-p", patch, check=True
            )
            _until(lambda: workload.status.get("phase") == "Degraded", "rolled back", timeout=180)
            time.sleep(5.0)  # the last scrapes
            ended = time.time()
            values = {
                "datasource": "prometheus",
                "namespace": NAMESPACE,
                "rollout": NAME,
                "service": SERVICE,
                "job": "lab",
                "__rate_interval": "10s",
                "__range": f"{int(ended - began) + 1}s",
            }
            results: dict[str, list[Any]] = {}
            for panel in panels():
                for target in panel["targets"]:
                    expr = substitute(target["expr"], values)
                    key = f"{panel['title']} [{target['refId']}]"
                    results[key] = prometheus.query_range(expr, began, ended, 1.0)
            variables: dict[str, list[str]] = {}
            dashboard = json.loads(DASHBOARD.read_text())
            for variable in dashboard["templating"]["list"]:
                if variable["type"] != "query":
                    continue
                match = re.fullmatch(r"label_values\((.*), (\w+)\)", variable["definition"])
                assert match, variable["definition"]
                selector = substitute(match.group(1), values)
                found = prometheus.query_vector(f"count by ({match.group(2)}) ({selector})")
                variables[variable["name"]] = [
                    labels.get(match.group(2), "") for labels, _ in found
                ]
            exported = {
                name
                for labels, _ in prometheus.query_vector(
                    'count by (__name__) ({__name__=~"rollwise_.+"})'
                )
                for name in [labels["__name__"]]
            }
        finally:
            stop.set()
            stop_process(operator, timeout=15)
            prometheus.stop()
            workload.stop()

    empty = [
        key for key, series in results.items() if not series and key.split(" [")[0] not in PENDING
    ]
    assert empty == [], f"panels without data: {empty}"
    for title, (series, _why) in PENDING.items():
        assert [k for k in results if k.startswith(title + " [")], f"no pending panel {title}"
        assert all(not results[k] for k in results if k.startswith(title + " [")), (
            f"{title} has data now: take it out of PENDING"
        )
        assert not any(name.startswith(series) for name in exported)
    assert NAMESPACE in variables["namespace"]
    assert NAME in variables["rollout"]
    assert SERVICE in variables["service"]
    assert "lab" in variables["job"]
    roles = {labels.get("role") for labels, _ in results["Error ratio: canary vs stable [A]"]}
    assert roles == {"stable", "canary"}, "the workload's metrics split by role"


def _until(check: Any, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")
