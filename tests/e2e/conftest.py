"""End-to-end fixtures: the real ``rollwise-operator`` process against a lab of the test's own.

Each test gets the ``lab`` fixture (a fresh API emulator with the CRDs and the workload
simulator; its demo services join the session's metrics hub, which the session's Prometheus
scrapes every 250 ms), ``cluster`` (kubectl bound to that lab, plus a client for polling) and
``start_operator``, which runs ``rollwise-operator`` as a subprocess (JSON logs to a file,
metrics endpoint off unless asked) and stops it at the end of the test: SIGTERM, then SIGKILL
if it has not exited within 15 s. On failure the tail of the operator's log is attached to the
report.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hack.lab.lab import Lab
from hack.lab.prometheus import PrometheusServer
from hack.lab.testing.kube_fixtures import make_kubectl
from tests.e2e.support import OPERATOR, Cluster, OperatorProcess


@pytest.fixture
def cluster(lab: Lab, prometheus: PrometheusServer, tmp_path: Path) -> Iterator[Cluster]:
    kubectl = make_kubectl(lab.kubeconfig, tmp_path / "kubecache")
    found = Cluster(lab, kubectl, prometheus, uuid.uuid4().hex[:8])
    yield found
    found.close()


@pytest.fixture
def start_operator(
    lab: Lab, prometheus: PrometheusServer, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., OperatorProcess]]:
    started: list[OperatorProcess] = []

    def start(*args: str, **extra_env: str) -> OperatorProcess:
        log = tmp_path / f"operator-{len(started)}.log"
        env = {
            **os.environ,
            "KUBECONFIG": str(lab.kubeconfig),
            "ROLLWISE_PROMETHEUS_URL": prometheus.url,
            "ROLLWISE_LOG_FORMAT": "json",
            "ROLLWISE_METRICS_PORT": "0",
            **extra_env,
        }
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(OPERATOR), *args], env=env, stdout=out, stderr=subprocess.STDOUT
            )
        running = OperatorProcess(process, log)
        started.append(running)
        return running

    yield start
    failed = getattr(request.node, "rep_call", None)
    for running in started:
        running.stop()
        if failed is not None and failed.failed:
            tail = running.log.read_text(errors="replace").splitlines()[-60:]
            request.node.add_report_section("call", "operator log", "\n".join(tail))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
