"""Helpers of the end-to-end tests: the example manifests with test-sized timings, a view of the
cluster for assertions (the lab's, or another one), the operator process handle and its
starter, and bounded polling.

``demo_docs`` are the ``examples/rollout-gateway-api`` manifests with test-sized timings:
steps 5 → 25 → 100 without pauses, analysis every second (two measurements per metric, rate
windows of 10 s), a 2 s scale-down delay, the Prometheus address left to the operator's
default (the lab's), and a template label unique to the test so that its revisions (and their
series in the shared Prometheus) are its own. ``example_docs`` loads any example the same way;
``fast_metric`` gives one of its metrics the test-sized timings.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from hack.lab.lab import Lab
from hack.lab.operator import OperatorRelease
from hack.lab.processes import stop_process
from hack.lab.prometheus import PrometheusServer
from hack.lab.testing.cluster_fixtures import InstallOperator, Kubectl
from tests import waits

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "rollout-gateway-api"
OPERATOR = Path(os.environ.get("VIRTUAL_ENV", REPO / ".venv")) / "bin" / "rollwise-operator"
NAME = "demo"

#: Analysis interval of the test manifests, in seconds.
INTERVAL = 1.0


#: Every time-out in these tests is a give-up bound, not a measurement (bounds that are claims,
#: such as the rollback reaction time, are asserted on measured timestamps). On a loaded
#: machine (2 shared cores, other test workers) an operator can take a while to start, so the
#: bounds written in the tests are multiplied by this factor; a healthy run never waits it out.
PATIENCE = float(os.environ.get("ROLLWISE_E2E_PATIENCE", "3"))


def patient(seconds: float) -> float:
    return seconds * PATIENCE


def eventually(probe: Callable[[], Any], *, timeout: float, what: str, every: float = 0.1) -> Any:
    """Polls ``probe`` until it returns something truthy; fails after ``timeout`` seconds
    (times :data:`PATIENCE`)."""
    limit = patient(timeout)
    began = time.monotonic()
    deadline = began + limit
    while True:
        result = probe()
        if result:
            waits.record(what, time.monotonic() - began, limit)
            return result
        if time.monotonic() > deadline:
            waits.record(what, time.monotonic() - began, limit, met=False)
            raise AssertionError(f"timed out after {limit:g}s waiting for {what}")
        time.sleep(every)


def _patient_args(args: tuple[str, ...]) -> tuple[list[str], float]:
    """kubectl arguments with ``--timeout=Ns`` stretched by PATIENCE, and a subprocess time-out
    that outlasts it."""
    out: list[str] = []
    longest = 0.0
    for arg in args:
        found = re.fullmatch(r"--timeout=(\d+(?:\.\d+)?)s", arg)
        if found is None:
            out.append(arg)
            continue
        seconds = patient(float(found.group(1)))
        longest = max(longest, seconds)
        out.append(f"--timeout={seconds:g}s")
    return out, max(30.0, longest + 15.0)


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1 (for a subprocess to bind)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 2.0) -> tuple[int, str] | None:
    """Status and body of a GET; None when nothing answers (yet)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return int(answer.status), answer.read().decode()
    except OSError:
        return None


def example_docs(example: str, test_id: str) -> list[dict[str, Any]]:
    """The documents of ``examples/<example>``, Services and routes before the Rollout, with
    a pod template label unique to the test (so its revision ids are its own)."""
    docs: list[dict[str, Any]] = []
    for path in sorted((REPO / "examples" / example).glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    order = {"Service": 0, "HTTPRoute": 1, "VirtualService": 1, "Rollout": 2}
    docs.sort(key=lambda d: order.get(d["kind"], 3))
    rollout = rollout_of(docs)
    rollout["spec"]["template"]["metadata"]["labels"]["e2e.rollwise.dev/test"] = test_id
    return docs


def rollout_of(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == "Rollout")


def fast_metric(metric: dict[str, Any], count: int = 2) -> dict[str, Any]:
    """``metric`` measured ``count`` times over 10 s rate windows, on the operator's default
    Prometheus, without the example's sampleGuard (a test that exercises it sets its own)."""
    metric["count"] = count
    # One-second intervals over 10 s windows cannot gather the example's minimum of
    # canary requests before the first measurement: the guard would pause every step.
    metric.pop("sampleGuard", None)
    source = metric["provider"]["prometheus"]
    source.pop("address", None)
    source["query"] = source["query"].replace("[1m]", "[10s]")
    return metric


def demo_docs(test_id: str) -> list[dict[str, Any]]:
    """The example's documents, Services and route first, with test-sized timings."""
    docs = example_docs(EXAMPLE.name, test_id)
    canary = rollout_of(docs)["spec"]["strategy"]["canary"]
    canary["steps"] = [{"setWeight": 5}, {"setWeight": 25}, {"setWeight": 100}]
    canary["scaleDownDelaySeconds"] = 2
    analysis = canary["analysis"]
    analysis["interval"] = f"{INTERVAL:g}s"
    for metric in analysis["metrics"]:
        fast_metric(metric)
    return docs


class RemotePrometheus:
    """A Prometheus the test did not start (a real cluster's, port-forwarded): queries only."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def query(self, promql: str) -> float | None:
        """The single value of an instant query; None when it returns no series or NaN."""
        answer = requests.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5)
        answer.raise_for_status()
        data = answer.json()["data"]
        if data["resultType"] == "scalar":
            value = float(data["result"][1])
        elif data["result"]:
            value = float(data["result"][0]["value"][1])
        else:
            return None
        return None if math.isnan(value) else value


@dataclass
class Cluster:
    """The cluster as a user and a test see it: kubectl, plus a client for fast polling, both
    bound to the test's ``namespace``.

    ``lab`` is the session's lab, or None on another cluster (``kubeconfig`` then names it)."""

    lab: Lab | None
    kubectl: Kubectl
    prometheus: PrometheusServer | RemotePrometheus
    test_id: str
    namespace: str
    kubeconfig: Path
    api: Any = field(default=None)

    def __post_init__(self) -> None:
        from kubernetes import client, config  # noqa: PLC0415 - heavy import, only when used

        self.api = config.new_client_from_config(config_file=str(self.kubeconfig))  # type: ignore[no-untyped-call]
        self.custom = client.CustomObjectsApi(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.core = client.CoreV1Api(self.api)

    @property
    def the_lab(self) -> Lab:
        """The lab (only tests marked ``lab_only`` use it)."""
        assert self.lab is not None, "this test needs the lab: mark it lab_only"
        return self.lab

    def k(self, *args: str, input: str | None = None, check: bool = True) -> Any:
        stretched, limit = _patient_args(args)
        if stretched == list(args):
            return self.kubectl(
                *stretched, input=input, check=check, namespace=self.namespace, timeout=limit
            )
        # A kubectl wait of its own (``--timeout``): recorded like the other bounded waits.
        began = time.monotonic()
        proc = self.kubectl(
            *stretched, input=input, check=False, namespace=self.namespace, timeout=limit
        )
        bound = max(float(a.split("=", 1)[1][:-1]) for a in stretched if a.startswith("--timeout="))
        what = "kubectl " + " ".join(a for a in args if not a.startswith("--timeout="))
        waits.record(what, time.monotonic() - began, bound, met=proc.returncode == 0)
        if check and proc.returncode != 0:
            output = f"{proc.stdout}\n{proc.stderr}"
            raise AssertionError(f"{what} failed ({proc.returncode}):\n{output}")
        return proc

    def apply(self, docs: list[dict[str, Any]], check: bool = True) -> Any:
        return self.k("apply", "-f", "-", input=yaml.safe_dump_all(docs), check=check)

    def rollout(self) -> dict[str, Any]:
        obj: dict[str, Any] = self.custom.get_namespaced_custom_object(
            "rollwise.dev", "v1alpha1", self.namespace, "rollouts", NAME
        )
        return obj

    def status(self) -> dict[str, Any]:
        return dict(self.rollout().get("status") or {})

    def route(self) -> dict[str, Any]:
        obj: dict[str, Any] = self.custom.get_namespaced_custom_object(
            "gateway.networking.k8s.io", "v1", self.namespace, "httproutes", NAME
        )
        return obj

    def route_weight(self) -> int:
        """The canary Service's weight in the route's first rule (0 when it has none)."""
        refs = self.route()["spec"]["rules"][0]["backendRefs"]
        weights = {r["name"]: int(r.get("weight", 1)) for r in refs}
        return weights.get("demo-canary", 0)

    def virtual_service(self) -> dict[str, Any]:
        obj: dict[str, Any] = self.custom.get_namespaced_custom_object(
            "networking.istio.io", "v1", self.namespace, "virtualservices", NAME
        )
        return obj

    def destination_weights(self) -> dict[str, int]:
        """Weight per destination host of the VirtualService's first http route."""
        route = self.virtual_service()["spec"]["http"][0]["route"]
        return {d["destination"]["host"]: int(d.get("weight", 0)) for d in route}

    def deployments(self) -> set[str]:
        listing = self.apps.list_namespaced_deployment(
            self.namespace, label_selector=f"rollwise.dev/rollout={NAME}"
        )
        return {d.metadata.name for d in listing.items}

    def replicas(self) -> dict[str, tuple[int, int]]:
        """(spec.replicas, status.readyReplicas) of each revision Deployment, by name."""
        listing = self.apps.list_namespaced_deployment(
            self.namespace, label_selector=f"rollwise.dev/rollout={NAME}"
        )
        return {
            # A Deployment just created has no status until its controller writes one.
            d.metadata.name: (
                int(d.spec.replicas or 0),
                int((d.status.ready_replicas if d.status is not None else 0) or 0),
            )
            for d in listing.items
        }

    def selector(self, service: str) -> dict[str, str]:
        found = self.core.read_namespaced_service(service, self.namespace)
        return dict(found.spec.selector or {})

    def events(self) -> list[dict[str, Any]]:
        """The Rollout's events in the order they happened (kubectl, field selector): by time,
        then by name (the operator names its events ``<name>.<uid>.<sequence>``, so events of
        one instant keep the order they were recorded in)."""
        proc = self.k(
            "get", "events", "--field-selector", f"involvedObject.name={NAME}", "-o", "json"
        )
        items: list[dict[str, Any]] = json.loads(proc.stdout)["items"]
        return sorted(
            items,
            key=lambda e: (
                e.get("eventTime") or e.get("firstTimestamp") or "",
                e["metadata"]["name"],
            ),
        )

    def reasons(self) -> list[str]:
        return [e["reason"] for e in self.events()]

    def condition(self, type_: str) -> dict[str, Any] | None:
        for cond in self.status().get("conditions", []):
            if cond["type"] == type_:
                return dict(cond)
        return None

    def patch_template(self, ops: list[dict[str, Any]]) -> None:
        self.k("patch", f"rollout/{NAME}", "--type=json", "-p", json.dumps(ops))

    def close(self) -> None:
        if self.lab is not None:
            self.lab.stop_traffic()
        self.api.close()


@dataclass
class OperatorProcess:
    process: subprocess.Popen[bytes]
    log: Path

    def lines(self) -> list[dict[str, Any]]:
        parsed: list[dict[str, Any]] = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                parsed.append(json.loads(line))
            except ValueError:
                parsed.append({"unparsed": line})
        return parsed

    def stop(self) -> int:
        return stop_process(self.process, timeout=15)


class StartOperator:
    """``start_operator(*args, **env)`` runs ``rollwise-operator ARGS`` as the operator of the
    test's namespace; ``install(...)`` (before the first start) chooses the chart's values:
    ``scope="cluster"`` for an operator without ``--namespace``, ``replicas=2`` for peering."""

    def __init__(
        self,
        cluster: Cluster,
        install_operator: InstallOperator | None,
        directory: Path,
    ) -> None:
        self.cluster = cluster
        self._install_operator = install_operator
        self.directory = directory
        self.release: OperatorRelease | None = None
        self.started: list[OperatorProcess] = []

    def install(self, **options: Any) -> OperatorRelease:
        if self.release is not None:
            raise AssertionError("the chart is installed already: call install() first")
        if self._install_operator is None:
            pytest.fail(
                "on a real cluster the operator is the installed one: mark the test lab_only"
            )
        self.release = self._install_operator(self.cluster.namespace, **options)
        return self.release

    def wait_webhook(self, operator: OperatorProcess, timeout: float = 30) -> None:
        """Waits (bounded) until ``operator`` serves the release's admission webhook: the
        chart's configuration is in place from the start, and its ModelRelease webhook fails
        closed while nothing answers."""
        release = self.release
        assert release is not None, "no release installed yet"
        assert release.webhook, "the release has no webhook"

        def serving() -> bool:
            code = operator.process.poll()
            if code is not None:
                tail = "\n".join(operator.log.read_text(errors="replace").splitlines()[-30:])
                raise AssertionError(f"the operator exited with {code}:\n{tail}")
            return release.webhook_serving()

        eventually(serving, timeout=timeout, what="the operator's admission webhook")

    def __call__(self, *args: str, **extra_env: str) -> OperatorProcess:
        release = self.release or self.install()
        prometheus = self.cluster.prometheus.url
        log = self.directory / f"operator-{len(self.started)}.log"
        running = OperatorProcess(
            release.start(*args, log=log, prometheus_url=prometheus, env=extra_env), log
        )
        self.started.append(running)
        return running
