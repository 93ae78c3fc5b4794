"""Notifications end to end on the real control plane: the operator runs as the chart's
ServiceAccount (its RBAC rendered by helm and applied, the sink Secrets' namespace opted in
with ``notifications.secretNamespaces``), NotificationPolicies are applied with kubectl, and
the receivers listen on loopback in this test.

1. A Rollout of team "payments" rolls back (its analysis query fails): exactly one CloudEvent
   reaches the CloudEvents receiver (parsed by the ``cloudevents`` SDK) and exactly one message
   the Slack-compatible receiver, both signed with their Secret's key, both with the event's
   stable id; the policy's status counts one delivery per sink and is Ready.
2. The same rollback of a Rollout whose policy also notifies a sink that accepts connections
   and never answers (every event of the Rollout, 10 s per attempt, a retry each): the rollback
   takes no longer than the first one (timed), and the dead sink is reported as failing.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from cloudevents.core.bindings.http import HTTPMessage, from_http_event

from hack.bench._common import OPERATOR, REPO
from hack.cluster import Cluster, wait_established
from hack.lab.processes import stop_process
from hack.lab.prometheus import PrometheusServer
from rollwise.core.notification_bodies import SIGNATURE_HEADER, verify_signature

pytestmark = [pytest.mark.cluster, pytest.mark.timing, pytest.mark.timeout(600)]

NAMESPACE = "shop"
CE_KEY = "cloudevents-signing-key-0123456789"
SLACK_KEY = "slack-signing-key-0123456789abcdef"
FAILING_QUERY = "vector(1)"


class Receiver:
    """Records every POST (headers, body, arrival time) and answers 200."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes, float]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append(
                    ({k.lower(): v for k, v in self.headers.items()}, body, time.monotonic())
                )
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/events"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver, str]]:
    cloudevents, slack = Receiver(), Receiver()
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead.listen(128)  # accepts connections (the kernel does), never answers
    try:
        yield cloudevents, slack, f"http://127.0.0.1:{dead.getsockname()[1]}/hook"
    finally:
        cloudevents.close()
        slack.close()
        dead.close()


def secret(name: str, url: str, key: str | None = None) -> dict[str, Any]:
    data = {"url": url, **({"signingKey": key} if key else {})}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "labels": {"rollwise.dev/notification-sink": "true"}},
        "stringData": data,
    }


def policy(
    name: str, team: str, reasons: list[str], sinks: list[dict[str, Any]], **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "rollwise.dev/v1alpha1",
        "kind": "NotificationPolicy",
        "metadata": {"name": name},
        "spec": {
            "selector": {"kinds": ["Rollout"], "matchLabels": {"team": team}},
            "triggers": {"reasons": reasons},
            "sinks": sinks,
            **spec,
        },
    }


def rollout(name: str, team: str) -> list[dict[str, Any]]:
    services = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": f"{name}-{role}"},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80}]},
        }
        for role in ("stable", "canary")
    ]
    return [
        *services,
        {
            "apiVersion": "rollwise.dev/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": name, "labels": {"team": team}},
            "spec": {
                "replicas": 2,
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
                        "steps": [
                            {"setWeight": 50},
                            {
                                "analysis": {
                                    "interval": "1s",
                                    "metrics": [
                                        {
                                            "name": "errors",
                                            "count": 1,
                                            "successCondition": "result < 0.5",
                                            "provider": {"prometheus": {"query": FAILING_QUERY}},
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


def chart_rbac(namespace: str) -> list[dict[str, Any]]:
    """The chart's ServiceAccount and RBAC, with the sink Secrets' namespace opted in."""
    helm = shutil.which("helm")
    assert helm, "helm is missing: run `make system-deps`"
    proc = subprocess.run(
        [
            helm,
            "template",
            "rollwise",
            str(REPO / "charts" / "rollwise"),
            "--namespace",
            "rollwise-system",
            "--set",
            f"notifications.secretNamespaces={{{namespace}}}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    kinds = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
    return [d for d in yaml.safe_load_all(proc.stdout) if d and d["kind"] in kinds]


def wait_for(what: str, check: Callable[[], Any], timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def get(cluster: Cluster, kind: str, name: str) -> dict[str, Any]:
    out = cluster.kubectl("get", kind, name, "-n", NAMESPACE, "-o", "json", check=True).stdout
    body: dict[str, Any] = json.loads(out)
    return body


def phase(cluster: Cluster, name: str) -> str | None:
    return (get(cluster, "rollout", name).get("status") or {}).get("phase")


def roll_back(cluster: Cluster, name: str) -> float:
    """Starts a canary of a new image and returns the seconds until the Rollout is Degraded
    (rolled back)."""
    wait_for(f"{name} Healthy", lambda: phase(cluster, name) == "Healthy")
    patch = '[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"demo:2"}]'
    began = time.monotonic()
    cluster.kubectl(
        "patch", "rollout", name, "-n", NAMESPACE, "--type=json", "-p", patch, check=True
    )
    wait_for(f"{name} rolled back", lambda: phase(cluster, name) == "Degraded")
    return time.monotonic() - began


def test_a_rollback_notifies_each_sink_once_signed_and_a_dead_sink_delays_nothing(
    tmp_path: Path, receivers: tuple[Receiver, Receiver, str]
) -> None:
    cloudevents, slack, dead_url = receivers
    with Cluster(tmp_path / "cluster", log=lambda _line: None) as cluster:
        cluster.kubectl("apply", "--server-side", "-f", str(REPO / "crds"), check=True)
        wait_established(cluster.kubectl)
        for namespace in ("rollwise-system", NAMESPACE):
            cluster.kubectl("create", "namespace", namespace, check=True)
        cluster.kubectl(
            "apply", "-f", "-", input=yaml.safe_dump_all(chart_rbac(NAMESPACE)), check=True
        )
        kubeconfig = cluster.write_service_account_kubeconfig(
            "rollwise-system", "rollwise", tmp_path / "operator.kubeconfig"
        )
        docs = [
            secret("payments-events", cloudevents.url, CE_KEY),
            secret("payments-chat", slack.url, SLACK_KEY),
            secret("dead-hook", dead_url),
            policy(
                "payments",
                "payments",
                ["RolledBack"],
                [
                    {"name": "events", "secretRef": {"name": "payments-events"}, "cloudEvents": {}},
                    {"name": "chat", "secretRef": {"name": "payments-chat"}, "slack": {}},
                ],
            ),
            policy(
                "search",
                "search",
                ["RevisionDetected", "WeightSet", "StepAdvanced", "AnalysisFailed", "RolledBack"],
                [{"name": "dead", "secretRef": {"name": "dead-hook"}, "webhook": {}}],
                delivery={"timeoutSeconds": 10, "retries": 1},
            ),
            *rollout("checkout", "payments"),
            *rollout("search", "search"),
        ]
        cluster.kubectl(
            "apply", "-n", NAMESPACE, "-f", "-", input=yaml.safe_dump_all(docs), check=True
        )

        prometheus = PrometheusServer([], data_dir=tmp_path / "prometheus")
        prometheus.start()
        env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "ROLLWISE_PROMETHEUS_URL": prometheus.url,
            "ROLLWISE_LOG_FORMAT": "json",
            "ROLLWISE_METRICS_PORT": "0",
            # The receivers are on loopback, which the default host policy refuses.
            "ROLLWISE_NOTIFY_ALLOWED_NETWORKS": "127.0.0.0/8",
        }
        with (tmp_path / "operator.log").open("wb") as log:
            operator = subprocess.Popen(
                [str(OPERATOR)], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            baseline = roll_back(cluster, "checkout")
            wait_for("the CloudEvent", lambda: cloudevents.requests, timeout=30)
            wait_for("the Slack message", lambda: slack.requests, timeout=30)
            with_dead_sink = roll_back(cluster, "search")
            time.sleep(3.0)  # anything doubled would have arrived by now
            payments = get(cluster, "notificationpolicy", "payments")
            search = wait_for(
                "the dead sink's failure",
                lambda: (
                    (s := get(cluster, "notificationpolicy", "search"))
                    .get("status", {})
                    .get("sinks", [{}])[0]
                    .get("lastDelivery")
                    and s
                ),
                timeout=240,
            )
            checkout = get(cluster, "rollout", "checkout")
        finally:
            stop_process(operator, timeout=15)
            prometheus.stop()

    log_text = (tmp_path / "operator.log").read_text()
    assert "Forbidden" not in log_text, "the chart's RBAC lacks something the operator needs"

    # Exactly one CloudEvent, parsed by the SDK, signed, with the event's stable id.
    assert len(cloudevents.requests) == 1, [b for _, b, _ in cloudevents.requests]
    headers, body, _ = cloudevents.requests[0]
    event = from_http_event(HTTPMessage(headers, body))
    uid = checkout["metadata"]["uid"]
    logged = {e["reason"]: e["seq"] for e in checkout["status"]["eventLog"]["entries"]}
    assert event.get_id() == f"{uid}.{logged['RolledBack']:010d}"
    assert event.get_type() == "dev.rollwise.rollout.RolledBack"
    assert (
        event.get_source()
        == f"/apis/rollwise.dev/v1alpha1/namespaces/{NAMESPACE}/rollouts/checkout"
    )
    data = event.get_data()
    assert isinstance(data, dict)
    assert data["event"]["reason"] == "RolledBack"
    assert data["object"]["labels"] == {"team": "payments"}
    now = int(time.time())
    assert verify_signature(CE_KEY.encode(), headers[SIGNATURE_HEADER.lower()], body, now=now)

    # Exactly one Slack message, signed, naming the rollback.
    assert len(slack.requests) == 1
    headers, body, _ = slack.requests[0]
    message = json.loads(body)
    assert message["text"].startswith(":warning: *RolledBack* Rollout shop/checkout")
    assert verify_signature(SLACK_KEY.encode(), headers[SIGNATURE_HEADER.lower()], body, now=now)
    assert headers["x-rollwise-event-id"] == event.get_id()

    # The policies' status.
    sinks = {s["name"]: s for s in payments["status"]["sinks"]}
    assert (sinks["events"]["delivered"], sinks["chat"]["delivered"]) == (1, 1)
    ready = {c["type"]: c for c in payments["status"]["conditions"]}["Ready"]
    assert ready["status"] == "True"
    assert payments["status"]["observedGeneration"] == payments["metadata"]["generation"]
    (dead,) = search["status"]["sinks"]
    assert dead["lastDelivery"]["result"] == "failed"
    assert "did not answer" in dead["lastDelivery"]["message"]

    # The dead sink did not slow the rollback (generous: the runs differ by a pass or two).
    print(f"rollback: {baseline:.1f} s without a dead sink, {with_dead_sink:.1f} s with one")
    assert with_dead_sink < baseline * 2 + 5.0
