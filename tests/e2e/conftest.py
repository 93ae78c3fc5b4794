"""End-to-end fixtures: the real ``rollwise-operator`` against the lab's real control plane, or
against another cluster when ``ROLLWISE_E2E_KUBECONFIG`` is set (see tests/e2e/README.md).

In the lab (the default) the session has one cluster (``lab``: kube-apiserver, etcd,
kube-controller-manager, kube-scheduler, kwok; the CRDs; the lab controller, whose demo services
join the session's metrics hub, which the session's Prometheus scrapes every 250 ms). Each test
gets ``cluster`` (kubectl and a client bound to a namespace of its own) and ``start_operator``,
which installs the chart into that namespace with ``helm install`` (namespace scope, no
Deployment, the webhook at a URL on this machine; ``hack.lab.operator``) and runs
``rollwise-operator`` as a process with a token of the chart's ServiceAccount (JSON logs to a
file, metrics endpoint off unless asked). At the end of the test the operators get SIGTERM,
then SIGKILL if they have not exited within 15 s, the release's cluster-scoped objects are
removed and the namespace is deleted. On failure the tail of each operator's log is attached
to the report.

On another cluster (``ROLLWISE_E2E_KUBECONFIG`` and ``ROLLWISE_E2E_PROMETHEUS_URL``, as
``hack/e2e-kind.sh`` exports them) the same tests use that kubeconfig, that Prometheus and a
namespace of the test's own, and the operator is the one installed in the cluster. Tests that
need what only the lab has (their own operator process, the traffic generator, the demo
service's fault injection, the control plane's processes to kill, third-party CRDs the cluster
lacks) are marked ``lab_only`` and are skipped there with the marker's reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.lab.testing.cluster_fixtures import make_kubectl
from tests.e2e.support import Cluster, OperatorProcess, RemotePrometheus, StartOperator

#: The real cluster's kubeconfig; unset: every test runs in the lab.
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
        namespace = request.getfixturevalue("namespace")
        kubectl = make_kubectl(lab.kubeconfig, lab.running_cluster.directory / "kubectl-cache")
        found = Cluster(
            lab,
            kubectl,
            request.getfixturevalue("prometheus"),
            test_id,
            namespace=namespace,
            kubeconfig=lab.kubeconfig,
        )
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
) -> Iterator[StartOperator]:
    installer = None if cluster.lab is None else request.getfixturevalue("install_operator")
    starter = StartOperator(cluster, installer, tmp_path)
    yield starter
    failed = getattr(request.node, "rep_call", None)
    for running in starter.started:
        running.stop()
        if failed is not None and failed.failed:
            tail = running.log.read_text(errors="replace").splitlines()[-60:]
            request.node.add_report_section(
                "call", f"operator log {running.log.name}", "\n".join(tail)
            )
    if starter.release is not None:
        starter.release.remove()


@pytest.fixture
def operator(cluster: Cluster, start_operator: StartOperator) -> OperatorProcess | None:
    """The operator under test, for tests that only need one running: in the lab a process of
    the test's own watching its namespace; on a real cluster the installed one (None)."""
    if cluster.lab is None:
        return None
    return start_operator("--namespace", cluster.namespace)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
