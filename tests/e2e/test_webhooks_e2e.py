"""Gating webhooks end to end: the real ``rollwise-operator`` in the lab calls receivers this
test runs on loopback (the operator runs on the same machine; its notification host policy
allows loopback again, ``ROLLWISE_NOTIFY_ALLOWED_NETWORKS``, as an operator's settings would
for a node-local service).

The Rollout is ``examples/rollout-webhooks`` (behind the example's HTTPRoute), with test-sized
steps (5 → 25 → 100, no analysis, no pauses) and the receiver's URLs.

Scenarios:

* a confirm-promotion webhook holds the last step: it answers 403, then 500, while the canary
  stays at 25% (phase Paused, reason AwaitingConfirmation, ``kubectl rollwise get`` says what
  it waits for); once the test flips it to 200 the Rollout completes. The bodies it got are
  the documented JSON.
* a pre-rollout webhook answering 500 rolls the canary back before any traffic (Degraded,
  PreRolloutHookFailed; the route never gave the canary a weight), and the rollback webhook is
  told once.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from rollwise.core.observations import revision_of
from tests.e2e.support import (
    NAME,
    Cluster,
    StartOperator,
    eventually,
    example_docs,
    patient,
    rollout_of,
)
from tests.e2e.test_rollout_e2e import IMAGE_2, new_revision
from tests.e2e.test_upstream_e2e import plugin_get

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(300),
    pytest.mark.lab_only("receivers on this machine's loopback, called by an operator process"),
]

EXAMPLE = "rollout-webhooks"
LOOPBACK = {"ROLLWISE_NOTIFY_ALLOWED_NETWORKS": "127.0.0.0/8"}


class Receiver:
    """An HTTP server on loopback recording every POST by path; each path answers the status
    ``codes`` gives it (200 when it names none), which the test may change at any time."""

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        self.calls: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.calls.append((self.path, dict(self.headers.items()), json.loads(raw)))
                    code = receiver.codes.get(self.path, 200)
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def bodies(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [body for p, _, body in self.calls if p == path]

    def headers(self, path: str) -> list[dict[str, str]]:
        with self.lock:
            return [headers for p, headers, _ in self.calls if p == path]

    def answer(self, path: str, code: int) -> None:
        with self.lock:
            self.codes[path] = code

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


def documents(test_id: str, hooks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The example with test-sized steps and ``hooks`` as its webhooks."""
    docs = example_docs(EXAMPLE, test_id)
    spec = rollout_of(docs)["spec"]
    spec["replicas"] = 2
    canary = spec["strategy"]["canary"]
    canary["steps"] = [{"setWeight": 5}, {"setWeight": 25}, {"setWeight": 100}]
    canary["scaleDownDelaySeconds"] = 2
    canary["webhooks"] = hooks
    return docs


def healthy(cluster: Cluster, docs: list[dict[str, Any]]) -> str:
    cluster.apply(docs)
    cluster.k("wait", "--for=condition=Ready", f"rollout/{NAME}", "--timeout=30s")
    return str(cluster.status()["stableRevision"])


def webhook(status: dict[str, Any], name: str) -> dict[str, Any]:
    return next((c for c in status.get("webhooks") or [] if c["name"] == name), {})


def test_a_confirm_promotion_webhook_holds_the_last_step_until_it_answers_200(
    cluster: Cluster, start_operator: StartOperator, receiver: Receiver
) -> None:
    start_operator("--namespace", cluster.namespace, **LOOPBACK)
    path = "/promote"
    docs = documents(
        cluster.test_id,
        [
            {
                "name": "release-manager",
                "type": "confirm-promotion",
                "url": receiver.url(path),
                "timeout": "5s",
                "metadata": {"ticket": "CHG-1234"},
            }
        ],
    )
    stable = healthy(cluster, docs)
    assert receiver.bodies(path) == []  # the first revision has nothing to confirm

    receiver.answer(path, 403)
    canary = new_revision(cluster, IMAGE_2)

    def held_with(code: int) -> dict[str, Any] | None:
        status = cluster.status()
        call = webhook(status, "release-manager")
        held = call.get("result") == "Held" and call.get("code") == code
        return status if held and call.get("revision") == canary else None

    status = eventually(lambda: held_with(403), timeout=patient(60), what="the 403 recorded")
    assert status["phase"] == "Paused"
    assert status["canaryRevision"] == canary
    assert status["canaryWeight"] == 25
    paused = cluster.condition("Paused")
    assert paused is not None
    assert paused["reason"] == "AwaitingConfirmation"
    assert cluster.route_weight() == 25
    text = plugin_get(cluster)
    assert (
        f"Waiting:     revision {canary} for confirm-promotion webhook release-manager to "
        "answer 2xx"
    ) in text

    receiver.answer(path, 500)
    eventually(lambda: held_with(500), timeout=patient(60), what="the 500 recorded")
    assert cluster.status()["canaryWeight"] == 25  # still held
    assert cluster.status()["stableRevision"] == stable

    receiver.answer(path, 200)
    eventually(
        lambda: (
            cluster.status().get("phase") == "Healthy"
            and cluster.status().get("stableRevision") == canary
        ),
        timeout=patient(60),
        what="the promotion once the webhook answers 200",
    )
    assert webhook(cluster.status(), "release-manager")["result"] == "Passed"
    reasons = cluster.reasons()
    assert "AwaitingConfirmation" in reasons
    assert reasons.count("WebhookHeld") >= 2  # 403, then 500
    assert reasons.index("WebhookPassed") < reasons.index("RolloutCompleted")

    bodies = receiver.bodies(path)
    assert len(bodies) >= 3
    assert [b["attempt"] for b in bodies] == list(range(1, len(bodies) + 1))
    first = bodies[0]
    assert {b["id"] for b in bodies} == {first["id"]}
    assert receiver.headers(path)[0]["X-Rollwise-Webhook-Id"] == first["id"]
    assert first["version"] == "rollwise.dev/v1"
    assert (first["name"], first["namespace"]) == (NAME, cluster.namespace)
    assert (first["webhook"], first["type"]) == ("release-manager", "confirm-promotion")
    assert (first["canaryRevision"], first["stableRevision"]) == (canary, stable)
    assert first["checksum"] == canary
    assert first["weight"] == 25
    assert first["step"] == "3/3"
    assert first["metadata"] == {"ticket": "CHG-1234"}


def test_a_failing_pre_rollout_webhook_rolls_back_before_any_traffic(
    cluster: Cluster, start_operator: StartOperator, receiver: Receiver
) -> None:
    start_operator("--namespace", cluster.namespace, **LOOPBACK)
    docs = documents(
        cluster.test_id,
        [
            {"name": "load-test", "type": "pre-rollout", "url": receiver.url("/load")},
            {"name": "incident", "type": "rollback", "url": receiver.url("/rollback")},
        ],
    )
    stable = healthy(cluster, docs)
    receiver.answer("/load", 500)
    canary = new_revision(cluster, IMAGE_2)
    assert canary != revision_of(rollout_of(docs)["spec"]["template"])

    def told() -> dict[str, Any] | None:
        status = cluster.status()
        done = webhook(status, "incident").get("result") in ("Passed", "Failed")
        return status if done else None

    status = eventually(told, timeout=patient(60), what="the rollback webhook called")
    assert status["phase"] == "Degraded"
    assert status["rolledBackRevision"] == canary
    assert status["stableRevision"] == stable
    degraded = cluster.condition("Degraded")
    assert degraded is not None
    assert degraded["reason"] == "PreRolloutHookFailed"
    assert webhook(status, "load-test")["result"] == "Failed"
    assert webhook(status, "load-test")["code"] == 500
    assert webhook(status, "incident")["result"] == "Passed"
    reasons = cluster.reasons()
    assert "WebhookFailed" in reasons
    assert "RolledBack" in reasons
    assert "WeightSet" not in reasons  # the canary never got a share of the route
    assert cluster.route_weight() == 0

    (load,) = receiver.bodies("/load")
    assert (load["type"], load["canaryRevision"], load["weight"]) == ("pre-rollout", canary, 0)
    (notice,) = receiver.bodies("/rollback")
    assert (notice["type"], notice["canaryRevision"]) == ("rollback", canary)
    assert notice["phase"] == "Degraded"
