"""Helpers of the end-to-end tests: the demo manifests with test-sized timings, a view of the
lab's cluster for assertions, the operator subprocess handle, and bounded polling.

``demo_docs`` are the ``examples/rollout-gateway-api`` manifests with test-sized timings:
steps 5 → 25 → 100 without pauses, analysis every second (two measurements per metric, rate
windows of 10 s), a 2 s scale-down delay, the Prometheus address left to the operator's
default (the lab's), and a template label unique to the test so that its revisions (and their
series in the shared Prometheus) are its own.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hack.lab.lab import Lab
from hack.lab.prometheus import PrometheusServer
from hack.lab.testing.kube_fixtures import Kubectl

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "rollout-gateway-api"
OPERATOR = Path(os.environ.get("VIRTUAL_ENV", REPO / ".venv")) / "bin" / "rollwise-operator"
NAMESPACE = "default"
NAME = "demo"

#: Analysis interval of the test manifests, in seconds.
INTERVAL = 1.0


def eventually(probe: Callable[[], Any], *, timeout: float, what: str, every: float = 0.1) -> Any:
    """Polls ``probe`` until it returns something truthy; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


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


def demo_docs(test_id: str) -> list[dict[str, Any]]:
    """The example's documents, Services and route first, with test-sized timings."""
    docs: list[dict[str, Any]] = []
    for path in sorted(EXAMPLE.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    order = {"Service": 0, "HTTPRoute": 1, "Rollout": 2}
    docs.sort(key=lambda d: order.get(d["kind"], 3))
    rollout = next(d for d in docs if d["kind"] == "Rollout")
    labels = rollout["spec"]["template"]["metadata"]["labels"]
    labels["e2e.rollwise.dev/test"] = test_id
    canary = rollout["spec"]["strategy"]["canary"]
    canary["steps"] = [{"setWeight": 5}, {"setWeight": 25}, {"setWeight": 100}]
    canary["scaleDownDelaySeconds"] = 2
    analysis = canary["analysis"]
    analysis["interval"] = f"{INTERVAL:g}s"
    for metric in analysis["metrics"]:
        metric["count"] = 2
        source = metric["provider"]["prometheus"]
        source.pop("address", None)
        source["query"] = source["query"].replace("[1m]", "[10s]")
    return docs


@dataclass
class Cluster:
    """The lab as a user and a test see it: kubectl, plus a client for fast polling."""

    lab: Lab
    kubectl: Kubectl
    prometheus: PrometheusServer
    test_id: str
    api: Any = field(default=None)

    def __post_init__(self) -> None:
        from kubernetes import client  # noqa: PLC0415 - heavy import, only when used

        self.api = self.lab.api_client()
        self.custom = client.CustomObjectsApi(self.api)
        self.apps = client.AppsV1Api(self.api)

    def k(self, *args: str, input: str | None = None, check: bool = True) -> Any:
        return self.kubectl(*args, input=input, check=check, namespace=NAMESPACE)

    def apply(self, docs: list[dict[str, Any]], check: bool = True) -> Any:
        return self.k("apply", "-f", "-", input=yaml.safe_dump_all(docs), check=check)

    def rollout(self) -> dict[str, Any]:
        obj: dict[str, Any] = self.custom.get_namespaced_custom_object(
            "rollwise.dev", "v1alpha1", NAMESPACE, "rollouts", NAME
        )
        return obj

    def status(self) -> dict[str, Any]:
        return dict(self.rollout().get("status") or {})

    def route(self) -> dict[str, Any]:
        obj: dict[str, Any] = self.custom.get_namespaced_custom_object(
            "gateway.networking.k8s.io", "v1", NAMESPACE, "httproutes", NAME
        )
        return obj

    def route_weight(self) -> int:
        """The canary Service's weight in the route's first rule (0 when it has none)."""
        refs = self.route()["spec"]["rules"][0]["backendRefs"]
        weights = {r["name"]: int(r.get("weight", 1)) for r in refs}
        return weights.get("demo-canary", 0)

    def deployments(self) -> set[str]:
        listing = self.apps.list_namespaced_deployment(
            NAMESPACE, label_selector=f"rollwise.dev/rollout={NAME}"
        )
        return {d.metadata.name for d in listing.items}

    def events(self) -> list[dict[str, Any]]:
        """The Rollout's events in the order they happened (kubectl, field selector)."""
        proc = self.k(
            "get", "events", "--field-selector", f"involvedObject.name={NAME}", "-o", "json"
        )
        items: list[dict[str, Any]] = json.loads(proc.stdout)["items"]
        return sorted(items, key=lambda e: e.get("eventTime") or e.get("firstTimestamp") or "")

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
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        return int(self.process.returncode)
