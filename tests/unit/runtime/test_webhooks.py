"""Gating webhooks through a whole Rollout pass: the runtime calls what the core asked for,
through the real guarded sender, against a real HTTP receiver on loopback (allowed again by
the host policy, as an operator's settings would), and the answers drive the canary."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from rollwise.adapters.gate_hooks import ID_HEADER, GateHooks
from rollwise.adapters.notify import HostPolicy, SinkSender
from rollwise.core.observations import revision_of
from rollwise.runtime.query_budget import QueryBudget
from tests.unit.runtime.fakes import NAME, NAMESPACE, World, rollout_body, world
from tests.unit.runtime.test_notify import LOOPBACK, Receiver


def revision(image: str) -> str:
    return revision_of(rollout_body(image)["spec"]["template"])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


def hooked_world(url: str, *kinds: str, policy: HostPolicy = LOOPBACK) -> World:
    hooks = [
        {"name": kind, "type": kind, "url": f"{url}/{kind}", "timeout": "2s"} for kind in kinds
    ]
    w = world(rollout_body(webhooks=hooks, analysis=None))
    w.ports.gate_hooks = GateHooks(SinkSender(policy))
    return w


def bodies(receiver: Receiver) -> list[tuple[dict[str, str], dict[str, Any]]]:
    return [(headers, json.loads(body)) for headers, body in receiver.requests]


def calls(w: World) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in w.status.get("webhooks", [])}


def condition(w: World, kind: str) -> dict[str, Any]:
    return next(c for c in w.status["conditions"] if c["type"] == kind)


def test_confirm_promotion_holds_until_the_receiver_answers_2xx(receiver: Receiver) -> None:
    w = hooked_world(receiver.url, "confirm-promotion")
    w.settle(lambda r: w.status.get("phase") == "Healthy")
    receiver.answers = [403, 500]
    new = revision("demo:2")
    w.cluster.edit_image("demo:2")
    w.settle(lambda r: calls(w).get("confirm-promotion", {}).get("result") == "Held")
    assert w.status["phase"] == "Paused"
    assert condition(w, "Paused")["reason"] == "AwaitingConfirmation"
    assert w.status["canaryWeight"] == 5  # held before 100%
    w.settle(lambda r: w.status.get("phase") == "Healthy" and w.status["stableRevision"] == new)
    sent = bodies(receiver)
    assert [b["attempt"] for _, b in sent] == [1, 2, 3]
    headers, body = sent[0]
    assert headers[ID_HEADER] == body["id"]
    assert {b["id"] for _, b in sent} == {body["id"]}
    assert body["type"] == "confirm-promotion"
    assert (body["name"], body["namespace"]) == (NAME, NAMESPACE)
    assert (body["canaryRevision"], body["stableRevision"]) == (new, revision("demo:1"))
    assert body["weight"] == 5
    reasons = w.cluster.reasons
    assert reasons.count("WebhookHeld") == 2  # 403, then 500
    assert reasons.count("WebhookPassed") == 1
    assert reasons.index("WebhookPassed") < reasons.index("RolloutCompleted")
    assert calls(w)["confirm-promotion"]["code"] == 200
    counted = {"type": "confirm-promotion"}
    assert w.metrics.sample("rollwise_webhook_calls_total", {**counted, "answer": "other"}) == 2
    assert w.metrics.sample("rollwise_webhook_calls_total", {**counted, "answer": "2xx"}) == 1


def test_a_failing_pre_rollout_rolls_back_before_traffic_and_calls_rollback(
    receiver: Receiver,
) -> None:
    w = hooked_world(receiver.url, "pre-rollout", "rollback")
    w.settle(lambda r: w.status.get("phase") == "Healthy")
    receiver.answers = [500]
    w.cluster.edit_image("demo:2")
    new = revision("demo:2")
    w.settle(lambda r: calls(w).get("rollback", {}).get("result") in ("Passed", "Failed"))
    assert w.status["phase"] == "Degraded"
    assert w.status["rolledBackRevision"] == new
    assert condition(w, "Degraded")["reason"] == "PreRolloutHookFailed"
    assert w.router.weight == 0
    assert "WeightSet" not in w.cluster.reasons  # never any traffic
    sent = [b for _, b in bodies(receiver)]
    assert [b["type"] for b in sent] == ["pre-rollout", "rollback"]
    assert calls(w)["pre-rollout"]["result"] == "Failed"
    assert calls(w)["rollback"]["result"] == "Passed"
    # Nothing is called again.
    w.run()
    assert len(receiver.requests) == 2


def test_a_url_the_host_policy_refuses_is_an_invalid_spec(receiver: Receiver) -> None:
    w = hooked_world(receiver.url, "confirm-rollout", policy=HostPolicy())
    w.run()
    assert w.status["phase"] == "Degraded"
    message = condition(w, "InvalidSpec")["message"]
    assert "spec.strategy.canary.webhooks[0].url" in message
    assert "127.0.0.1" in message
    assert receiver.requests == []
    assert w.workloads.deployments == {}


def test_without_a_webhook_caller_a_spec_with_webhooks_is_invalid() -> None:
    w = world(
        rollout_body(webhooks=[{"name": "a", "type": "rollback", "url": "https://x.example"}])
    )
    w.run()
    assert "makes no webhook calls" in condition(w, "InvalidSpec")["message"]


def test_an_unreachable_confirm_rollout_holds_the_new_revision(receiver: Receiver) -> None:
    w = hooked_world(receiver.url, "confirm-rollout")
    w.settle(lambda r: w.status.get("phase") == "Healthy")
    receiver.close()  # nobody listens any more
    w.cluster.edit_image("demo:2")
    w.settle(lambda r: calls(w).get("confirm-rollout", {}).get("result") == "Held")
    call = calls(w)["confirm-rollout"]
    assert call.get("code") is None
    assert call["message"].startswith("cannot reach 127.0.0.1")
    counted = {"type": "confirm-rollout", "answer": "none"}
    assert (w.metrics.sample("rollwise_webhook_calls_total", counted) or 0) >= 1
    assert revision("demo:2") not in w.workloads.deployments
    assert w.status["phase"] == "Paused"


class RecordingHooks:
    """A webhook caller answering 200, recording the thread each call ran in."""

    def __init__(self) -> None:
        self.threads: list[str] = []

    def refusal(self, url: str) -> str | None:
        return None

    def call(
        self, name: str, url: str, body: dict[str, Any], timeout: float
    ) -> tuple[int | None, str]:
        self.threads.append(threading.current_thread().name)
        return 200, ""


def test_calls_run_in_the_query_threads_within_the_namespace_share() -> None:
    hooks = [{"name": "gate", "type": "confirm-rollout", "url": "https://gate.example/ok"}]
    w = world(rollout_body(webhooks=hooks, analysis=None))
    recording = RecordingHooks()
    w.ports.gate_hooks = recording
    w.ports.queries = QueryBudget(2, per_namespace=1)
    try:
        w.settle(lambda r: w.status.get("phase") == "Healthy")
        w.cluster.edit_image("demo:2")
        w.settle(lambda r: w.status.get("canaryRevision") == revision("demo:2"))
    finally:
        w.ports.queries.close()
    assert recording.threads
    assert all(name.startswith("rollwise-query") for name in recording.threads)
