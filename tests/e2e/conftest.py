"""End-to-end fixtures: the real ``rollwise-operator`` against a lab of the test's own, or
against a real cluster when ``ROLLWISE_E2E_KUBECONFIG`` is set (see tests/e2e/README.md).

In the lab (the default), each test gets the ``lab`` fixture (a fresh API emulator with the CRDs
and the workload simulator; its demo services join the session's metrics hub, which the
session's Prometheus scrapes every 250 ms), ``cluster`` (kubectl bound to that lab, plus a
client for polling) and ``start_operator``, which runs ``rollwise-operator`` as a subprocess
(JSON logs to a file, metrics endpoint off unless asked) and stops it at the end of the test:
SIGTERM, then SIGKILL if it has not exited within 15 s. On failure the tail of the operator's
log is attached to the report.

On a real cluster (``ROLLWISE_E2E_KUBECONFIG`` and ``ROLLWISE_E2E_PROMETHEUS_URL``, as
``hack/e2e-kind.sh`` exports them) no lab starts: ``cluster`` uses that kubeconfig, that
Prometheus and a namespace of the test's own (deleted afterwards), and the operator is the one
installed in the cluster. Tests that need what only the lab has (their own operator process,
the traffic generator, the demo service's fault injection, stopping Prometheus, third-party
CRDs the cluster lacks) are marked ``lab_only`` and are skipped there with the marker's reason.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.lab.testing.kube_fixtures import make_kubectl
from tests.e2e.support import NAMESPACE, OPERATOR, Cluster, OperatorProcess, RemotePrometheus

#: The real cluster's kubeconfig; unset: every test runs in a lab of its own.
REAL_KUBECONFIG = os.environ.get("ROLLWISE_E2E_KUBECONFIG") or None
REAL_PROMETHEUS_URL = os.environ.get("ROLLWISE_E2E_PROMETHEUS_URL") or None

NAMESPACE_DOC = {"apiVersion": "v1", "kind": "Namespace"}


def pytest_runtest_setup(item: pytest.Item) -> None:
    marker = item.get_closest_marker("lab_only")
    if REAL_KUBECONFIG and marker is not None:
        reason = marker.args[0] if marker.args else marker.kwargs.get("reason", "")
        pytest.skip(f"lab only: {reason}")


@pytest.fixture
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    # A letter first: an all-digit id would be a number to YAML, not a label value.
    test_id = f"t{uuid.uuid4().hex[:7]}"
    if REAL_KUBECONFIG is None:
        lab = request.getfixturevalue("lab")
        kubectl = make_kubectl(lab.kubeconfig, tmp_path / "kubecache")
        found = Cluster(lab, kubectl, request.getfixturevalue("prometheus"), test_id)
        yield found
        found.close()
        return
    if REAL_PROMETHEUS_URL is None:
        pytest.fail("ROLLWISE_E2E_KUBECONFIG is set but ROLLWISE_E2E_PROMETHEUS_URL is not")
    kubeconfig = Path(REAL_KUBECONFIG)
    kubectl = make_kubectl(kubeconfig, tmp_path / "kubecache")
    namespace = f"rollwise-e2e-{test_id}"
    kubectl(
        "apply",
        "-f",
        "-",
        input=yaml.safe_dump(NAMESPACE_DOC | {"metadata": {"name": namespace}}),
        check=True,
    )
    found = Cluster(
        None,
        kubectl,
        RemotePrometheus(REAL_PROMETHEUS_URL),
        test_id,
        namespace=namespace,
        kubeconfig=kubeconfig,
    )
    try:
        yield found
    finally:
        found.close()
        kubectl("delete", "namespace", namespace, "--wait=false")


@pytest.fixture
def start_operator(
    cluster: Cluster, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., OperatorProcess]]:
    started: list[OperatorProcess] = []

    def start(*args: str, **extra_env: str) -> OperatorProcess:
        if cluster.lab is None:
            pytest.fail(
                "on a real cluster the operator is the installed one: mark the test lab_only"
            )
        log = tmp_path / f"operator-{len(started)}.log"
        env = {
            **os.environ,
            "KUBECONFIG": str(cluster.kubeconfig),
            "ROLLWISE_PROMETHEUS_URL": cluster.prometheus.url,
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


@pytest.fixture
def operator(
    cluster: Cluster, start_operator: Callable[..., OperatorProcess]
) -> OperatorProcess | None:
    """The operator under test, for tests that only need one running: in the lab a process of
    the test's own watching its namespace; on a real cluster the installed one (None)."""
    if cluster.lab is None:
        return None
    return start_operator("--namespace", NAMESPACE)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
