"""pytest fixtures for the lab cluster: one real control plane per test session.

A cluster takes seconds to start, so each session (each pytest-xdist worker) starts one, with
the lab on it (``lab``: the CRDs, the lab controller and its demo services, which the session's
Prometheus scrapes), and every test isolates itself in a namespace of its own (``namespace``).

- ``lab``: the session's :class:`hack.lab.lab.Lab` (``lab.cluster`` is the
  :class:`hack.cluster.Cluster`; the people of ``hack.cluster.DEFAULT_IDENTITIES`` have
  kubeconfigs, ``lab.kubeconfig_of("alice")``);
- ``kubeconfig``: the administrator's kubeconfig; ``kubectl``: the cluster's own kubectl with
  it (a private discovery cache, a timeout); ``kube_client``: a ``kubernetes`` ApiClient;
- ``namespace``: a fresh namespace per test, deleted afterwards (finalizers of Rollwise's
  objects removed first: the operator that would remove them has stopped by then);
- ``install_operator``: the chart installed into a namespace for an operator run on this
  machine (``hack.lab.operator``), removed at the end of the test;
- ``fault_proxy``: the session's ``hack.lab.faultproxy.FaultProxy`` in front of the cluster's
  API server, and ``proxied_kubeconfig`` (the administrator's, through it); ``faults`` is the
  proxy with its faults cleared after the test.

Tests that need these carry the ``lab`` marker: the session builds the cluster's binaries
before such a test runs (``tests/conftest.py``).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.cluster import Cluster, ClusterError, build
from hack.lab._support import BackgroundLoop
from hack.lab.faultproxy import FaultProxy
from hack.lab.lab import Lab
from hack.lab.operator import INSTANCE_LABEL, OperatorRelease, release_name
from hack.lab.operator import install_operator as install_release
from hack.lab.service import ServiceRegistry

Kubectl = Callable[..., subprocess.CompletedProcess[str]]

#: Rollwise's kinds, whose finalizer a stopped operator no longer removes.
ROLLWISE_PLURALS = ("rollouts", "modelreleases")


@functools.cache
def kubectl_binary() -> Path:
    """kubectl of the lab cluster's Kubernetes release (built with it); without the lab's
    binaries (another cluster, ``hack/e2e-kind.sh``), the kubectl on PATH."""
    try:
        built: Path | None = build.bin_dir() / "kubectl"
    except (OSError, subprocess.SubprocessError, build.BuildError):
        built = None  # no Go here: not a machine that builds the lab cluster
    if built is not None and built.exists():
        return built
    found = shutil.which("kubectl")
    if found:
        return Path(found)
    if built is None:
        raise FileNotFoundError("kubectl: neither the lab cluster's nor one on PATH")
    return built


def kubeconfig_in(source: Path, path: Path, namespace: str) -> Path:
    """A copy of the kubeconfig ``source`` whose contexts default to ``namespace``."""
    config = yaml.safe_load(source.read_text(encoding="utf-8"))
    for entry in config.get("contexts", []):
        entry["context"]["namespace"] = namespace
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    path.chmod(0o600)
    return path


def make_kubectl(kubeconfig: Path, cache_dir: Path) -> Kubectl:
    """kubectl bound to ``kubeconfig``: ``run(*args, input=, timeout=, check=, namespace=)``."""

    def run(
        *args: str,
        input: str | None = None,
        timeout: float = 30,
        check: bool = False,
        namespace: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        cmd: list[str] = [
            str(kubectl_binary()),
            "--kubeconfig",
            str(kubeconfig),
            "--cache-dir",
            str(cache_dir),
        ]
        if namespace:
            cmd += ["-n", namespace]
        cmd += list(args)
        env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
        proc = subprocess.run(
            cmd, input=input, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
        if check and proc.returncode != 0:
            command = " ".join(args)
            raise AssertionError(
                f"kubectl {command} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    return run


def manifest(*docs: dict[str, Any]) -> str:
    """YAML for kubectl's stdin."""
    return yaml.safe_dump_all(list(docs), sort_keys=False)


@pytest.fixture(scope="session")
def lab(
    tmp_path_factory: pytest.TempPathFactory,
    lab_loop: BackgroundLoop,
    service_registry: ServiceRegistry,
) -> Iterator[Lab]:
    """The session's lab: a real cluster with the CRDs and the lab controller, whose demo
    services join the session's registry (scraped by the session's ``prometheus``). Start
    traffic with ``lab.start_traffic(...)``; the ``namespace`` fixture stops it after the
    test."""
    with Lab(
        tmp_path_factory.mktemp("lab"),
        prometheus=False,
        loop=lab_loop,
        registry=service_registry,
        log=lambda message: None,
    ) as running:
        yield running


@pytest.fixture(scope="session")
def lab_cluster(lab: Lab) -> Cluster:
    return lab.running_cluster


@pytest.fixture(scope="session")
def kubeconfig(lab: Lab) -> Path:
    return lab.kubeconfig


@pytest.fixture(scope="session")
def kubectl(lab_cluster: Cluster) -> Kubectl:
    return make_kubectl(lab_cluster.kubeconfig, lab_cluster.directory / "kubectl-cache")


@pytest.fixture(scope="session")
def bare_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A second cluster of the session, started on first use, without any CRD: for what a
    client does where Rollwise is not installed. Tests that install something remove it."""
    with Cluster(tmp_path_factory.mktemp("bare"), identities={}, nodes=1, log=lambda _: None) as c:
        yield c


@pytest.fixture(scope="session")
def kube_client(kubeconfig: Path) -> Iterator[Any]:
    from kubernetes import client, config  # noqa: PLC0415 - heavy import, only when used

    api_client = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    assert isinstance(api_client, client.ApiClient)
    yield api_client
    api_client.close()  # type: ignore[no-untyped-call]


def release_finalizers(cluster: Cluster, namespace: str) -> None:
    """Removes the finalizers of Rollwise's objects in ``namespace``, so that deleting it
    does not wait for an operator that is gone."""
    for plural in ROLLWISE_PLURALS:
        base = f"/apis/rollwise.dev/v1alpha1/namespaces/{namespace}/{plural}"
        try:
            items = cluster.api("GET", base).get("items", [])
        except ClusterError:
            continue
        for item in items:
            if item["metadata"].get("finalizers"):
                cluster.api(
                    "PATCH",
                    f"{base}/{item['metadata']['name']}",
                    body={"metadata": {"finalizers": None}},
                    content_type="application/merge-patch+json",
                    missing_ok=True,
                )


def new_namespace(cluster: Cluster, prefix: str = "t") -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    cluster.api("POST", "/api/v1/namespaces", body={"metadata": {"name": name}})
    return name


def delete_namespace(cluster: Cluster, name: str) -> None:
    """Deletes ``name`` without waiting (the namespace controller empties it). The webhook
    configuration of the namespace's operator release goes first: its ModelRelease webhook
    fails closed, and nothing serves it any more."""
    cluster.api(
        "DELETE",
        "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
        params={"labelSelector": f"{INSTANCE_LABEL}={release_name(name)}"},
        missing_ok=True,
    )
    release_finalizers(cluster, name)
    cluster.api("DELETE", f"/api/v1/namespaces/{name}", missing_ok=True)


#: What the people of a test may do in its namespace, besides the built-in ``edit`` role:
#: Rollwise's kinds (the chart grants users nothing; a cluster admin decides who may).
ROLLWISE_USER_RULES = [
    {
        "apiGroups": ["rollwise.dev"],
        "resources": ["rollouts", "modelreleases", "analysistemplates"],
        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
    },
    {
        "apiGroups": ["rollwise.dev"],
        "resources": ["rollouts/status", "modelreleases/status"],
        "verbs": ["get"],
    },
]


def grant_namespace(
    cluster: Cluster,
    namespace: str,
    users: list[str],
    extra_rules: list[dict[str, Any]] | None = None,
) -> None:
    """Lets ``users`` work in ``namespace`` as its developers: the built-in ``edit``
    ClusterRole and a Role over Rollwise's kinds (and ``extra_rules``)."""
    subjects = [{"kind": "User", "name": u, "apiGroup": "rbac.authorization.k8s.io"} for u in users]
    base = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
    rules = [*ROLLWISE_USER_RULES, *(extra_rules or [])]
    cluster.api(
        "POST", f"{base}/roles", body={"metadata": {"name": "rollwise-user"}, "rules": rules}
    )
    for kind, role in (("ClusterRole", "edit"), ("Role", "rollwise-user")):
        cluster.api(
            "POST",
            f"{base}/rolebindings",
            body={
                "metadata": {"name": f"people-{role}"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
                "subjects": subjects,
            },
        )


@pytest.fixture
def namespace(lab: Lab) -> Iterator[str]:
    """A new namespace for one test, in the session's cluster; deleted afterwards, with the
    lab's traffic stopped."""
    cluster = lab.running_cluster
    name = new_namespace(cluster)
    yield name
    lab.stop_traffic()
    delete_namespace(cluster, name)


InstallOperator = Callable[..., OperatorRelease]


@pytest.fixture
def install_operator(lab: Lab, tmp_path: Path) -> Iterator[InstallOperator]:
    """``install_operator(namespace, scope=, replicas=, webhook=, values=)``: the chart in
    ``namespace`` for an operator process of this machine (see ``hack.lab.operator``); its
    cluster-scoped objects are removed at the end of the test."""
    releases: list[OperatorRelease] = []

    def install(namespace: str, **options: Any) -> OperatorRelease:
        release = install_release(
            lab.running_cluster, namespace, tmp_path / f"operator-{len(releases)}", **options
        )
        releases.append(release)
        return release

    yield install
    for release in releases:
        release.remove()


@pytest.fixture(scope="session")
def fault_proxy(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultProxy]:
    with FaultProxy(lab.running_cluster, tmp_path_factory.mktemp("fault-proxy")) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def proxied_kubeconfig(
    fault_proxy: FaultProxy, kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The administrator's kubeconfig, pointing at the fault proxy."""
    return fault_proxy.write_kubeconfig(
        kubeconfig, tmp_path_factory.mktemp("proxied") / "kubeconfig"
    )


@pytest.fixture
def faults(fault_proxy: FaultProxy) -> Iterator[FaultProxy]:
    """The session's fault proxy; whatever the test injected and did not use is cleared."""
    yield fault_proxy
    fault_proxy.clear()
