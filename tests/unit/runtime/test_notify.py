"""The notifier and its delivery queue against real HTTP receivers on loopback: matching, one
submission per event id, signatures, retries, the host policy, a full queue, a dead sink that
delays neither the caller nor another namespace, the policies' status; and the passes' hook
(``post_logged`` hands what it posted, or found posted, to the notifier)."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http_event

from rollwise.adapters.errors import SinkForbidden, SinkSecretError, Unavailable
from rollwise.adapters.notify import (
    HostPolicy,
    SinkCredentials,
    SinkSender,
    credentials_of,
    parse_networks,
)
from rollwise.core.events import EventLog, LoggedEvent
from rollwise.core.notification_bodies import (
    SIGNATURE_HEADER,
    Outgoing,
    Subject,
    verify_signature,
)
from rollwise.core.observations import revision_of
from rollwise.runtime.delivery import DeliveryQueue
from rollwise.runtime.metrics import OperatorMetrics
from rollwise.runtime.notify import Notifier
from rollwise.runtime.passes import post_logged
from tests.unit.runtime.fakes import NAME, NAMESPACE, rollout_body, world

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
KEY = b"signing-key-of-the-test"
LOOPBACK = HostPolicy(allowed=parse_networks(["127.0.0.0/8"]))


class Receiver:
    """An HTTP server recording every POST; answers the statuses in ``answers`` in turn, then
    200."""

    def __init__(self, answers: list[int] | None = None) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.answers = list(answers or [])
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append((dict(self.headers.items()), body))
                status = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


class Secrets:
    def __init__(self, urls: dict[tuple[str, str], str]) -> None:
        self.urls = urls

    def read(self, namespace: str, name: str) -> SinkCredentials:
        url = self.urls.get((namespace, name))
        if url is None:
            raise SinkSecretError(f"Secret {namespace}/{name} does not exist")
        return SinkCredentials(url=url, signing_key=KEY, authorization="Bearer t0k")


class Policies:
    def __init__(self, bodies: list[dict[str, Any]]) -> None:
        self.bodies = bodies
        self.patched: dict[tuple[str, str], dict[str, Any]] = {}

    def list(self, namespaces: Any) -> list[dict[str, Any]]:
        return self.bodies

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.patched[(namespace, name)] = status


def policy_body(
    namespace: str, name: str, sinks: list[dict[str, Any]], **spec: Any
) -> dict[str, Any]:
    return {
        "metadata": {"namespace": namespace, "name": name, "uid": f"uid-{name}", "generation": 1},
        "spec": {"triggers": {"reasons": ["RolledBack"]}, "sinks": sinks, **spec},
    }


def subject(namespace: str = "shop", labels: dict[str, str] | None = None) -> Subject:
    return Subject(
        kind="Rollout",
        plural="rollouts",
        namespace=namespace,
        name="checkout",
        uid=f"uid-checkout-{namespace}",
        labels=labels or {},
        details={"phase": "Degraded"},
    )


def entry(seq: int, reason: str = "RolledBack") -> LoggedEvent:
    return LoggedEvent(seq=seq, type="Warning", reason=reason, message="rolled back", time=NOW)


def notifier_for(
    bodies: list[dict[str, Any]],
    urls: dict[tuple[str, str], str],
    *,
    policy: HostPolicy = LOOPBACK,
    **queue: Any,
) -> tuple[Notifier, Policies, OperatorMetrics]:
    metrics = OperatorMetrics()
    policies = Policies(bodies)
    delivery = DeliveryQueue(SinkSender(policy), metrics=metrics, **queue)
    notifier = Notifier(
        delivery,
        Secrets(urls),
        policies,
        metrics=metrics,
        flush_seconds=0.05,  # type: ignore[arg-type]
    )
    return notifier, policies, metrics


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_a_matching_event_reaches_every_sink_once_signed(receiver: Receiver) -> None:
    sinks = [
        {"name": "hook", "secretRef": {"name": "s"}, "webhook": {}},
        {"name": "bus", "secretRef": {"name": "s"}, "cloudEvents": {"mode": "binary"}},
        {"name": "chat", "secretRef": {"name": "s"}, "slack": {}},
    ]
    notifier, policies, metrics = notifier_for(
        [policy_body("shop", "alerts", sinks)], {("shop", "s"): receiver.url}
    )

    async def scenario() -> None:
        await notifier.start()
        notifier.offer(subject(), entry(3))
        notifier.offer(subject(), entry(3))  # the same event again: submitted once
        notifier.offer(subject(), entry(4, "WeightSet"))  # no trigger
        assert await notifier.queue.drained(10)
        await notifier.stop()

    run(scenario())
    assert len(receiver.requests) == 3
    now = int(time.time())
    for headers, body in receiver.requests:
        assert verify_signature(KEY, headers[SIGNATURE_HEADER], body, now=now)
        assert headers["X-Rollwise-Event-Id"] == "uid-checkout-shop.0000000003"
    binary = [(h, b) for h, b in receiver.requests if "ce-id" in {k.lower() for k in h}]
    (ce_headers, ce_body) = binary[0]
    event = from_http_event(HTTPMessage({k.lower(): v for k, v in ce_headers.items()}, ce_body))
    assert event.get_id() == "uid-checkout-shop.0000000003"
    assert ce_headers["Authorization"] == "Bearer t0k"
    slack = [h for h, b in receiver.requests if b.startswith(b'{"text"')]
    assert len(slack) == 1
    assert "Authorization" not in slack[0]  # a Slack webhook's URL is its credential
    assert (
        metrics.sample("rollwise_notifications_total", {"sink": "slack", "result": "delivered"})
        == 1
    )
    status = policies.patched[("shop", "alerts")]
    assert {s["name"]: s["delivered"] for s in status["sinks"]} == {"hook": 1, "bus": 1, "chat": 1}
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Delivering")
    assert status["observedGeneration"] == 1


def test_a_policy_sees_only_its_namespace_and_its_labels(receiver: Receiver) -> None:
    sinks = [{"name": "hook", "secretRef": {"name": "s"}, "webhook": {}}]
    body = policy_body("shop", "alerts", sinks, selector={"matchLabels": {"team": "a"}})
    notifier, _, _ = notifier_for([body], {("shop", "s"): receiver.url})

    async def scenario() -> None:
        await notifier.start()
        notifier.offer(subject("other", {"team": "a"}), entry(1))
        notifier.offer(subject("shop", {"team": "b"}), entry(2))
        notifier.offer(subject("shop", {"team": "a"}), entry(3))
        assert await notifier.queue.drained(10)
        await notifier.stop()

    run(scenario())
    assert [json.loads(b)["event"]["seq"] for _, b in receiver.requests] == [3]


def test_an_attempt_the_receiver_cannot_take_is_retried_with_backoff() -> None:
    flaky = Receiver([503, 429])
    try:
        sinks = [{"name": "hook", "secretRef": {"name": "s"}, "webhook": {}}]
        notifier, policies, _ = notifier_for(
            [policy_body("shop", "alerts", sinks)], {("shop", "s"): flaky.url}
        )

        async def scenario() -> None:
            await notifier.start()
            notifier.offer(subject(), entry(1))
            assert await notifier.queue.drained(15)
            await notifier.stop()

        run(scenario())
    finally:
        flaky.close()
    assert len(flaky.requests) == 3
    (sink,) = policies.patched[("shop", "alerts")]["sinks"]
    assert sink["delivered"] == 1
    assert sink["lastDelivery"]["attempts"] == 3
    assert sink["lastDelivery"]["httpStatus"] == 200


def test_a_rejecting_receiver_fails_without_retries_and_the_policy_says_so() -> None:
    rejecting = Receiver([403])
    try:
        sinks = [{"name": "hook", "secretRef": {"name": "s"}, "webhook": {}}]
        notifier, policies, metrics = notifier_for(
            [policy_body("shop", "alerts", sinks)], {("shop", "s"): rejecting.url}
        )

        async def scenario() -> None:
            await notifier.start()
            notifier.offer(subject(), entry(1))
            assert await notifier.queue.drained(10)
            await notifier.stop()

        run(scenario())
    finally:
        rejecting.close()
    status = policies.patched[("shop", "alerts")]
    (sink,) = status["sinks"]
    assert (sink["failed"], sink["lastDelivery"]["httpStatus"]) == (1, 403)
    assert "127.0.0.1 answered 403" in sink["lastDelivery"]["message"]
    assert rejecting.url not in json.dumps(status)
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "DeliveryFailed")
    assert (
        metrics.sample("rollwise_notifications_total", {"sink": "webhook", "result": "failed"}) == 1
    )


def test_loopback_and_metadata_addresses_are_refused_by_default(receiver: Receiver) -> None:
    sinks = [{"name": "hook", "secretRef": {"name": "s"}, "webhook": {}}]
    notifier, policies, metrics = notifier_for(
        [policy_body("shop", "alerts", sinks)], {("shop", "s"): receiver.url}, policy=HostPolicy()
    )

    async def scenario() -> None:
        await notifier.start()
        notifier.offer(subject(), entry(1))
        assert await notifier.queue.drained(10)
        await notifier.stop()

    run(scenario())
    assert receiver.requests == []
    (sink,) = policies.patched[("shop", "alerts")]["sinks"]
    assert sink["refused"] == 1
    assert "never notifies" in sink["lastDelivery"]["message"]
    assert (
        metrics.sample("rollwise_notifications_total", {"sink": "webhook", "result": "refused"})
        == 1
    )


@pytest.mark.parametrize(
    ("url", "policy", "message"),
    [
        pytest.param(
            "http://169.254.169.254/latest", HostPolicy(), "never notifies", id="metadata"
        ),
        pytest.param("http://[::ffff:127.0.0.1]:80/", HostPolicy(), "never notifies", id="mapped"),
        pytest.param("ftp://example.com/", HostPolicy(), "scheme 'ftp'", id="scheme"),
        pytest.param(
            "https://evil.example.org/",
            HostPolicy(hosts=("*.example.com",)),
            "not in the operator's notification host list",
            id="allow-list",
        ),
        pytest.param(
            "https://u:p@example.com/", HostPolicy(), "carries credentials", id="userinfo"
        ),
    ],
)
def test_the_host_policy(url: str, policy: HostPolicy, message: str) -> None:
    with pytest.raises(SinkForbidden, match=message):
        policy.check_url(url)


def test_a_name_resolving_to_a_denied_address_is_refused_at_connect(receiver: Receiver) -> None:
    sender = SinkSender(HostPolicy())
    port = receiver.server.server_address[1]
    with pytest.raises(SinkForbidden, match=r"at 127\.0\.0\.1"):
        sender.post(f"http://localhost:{port}/", Outgoing((), b"{}"), 2.0)
    assert receiver.requests == []


def test_a_dead_sink_delays_neither_the_caller_nor_another_namespace(receiver: Receiver) -> None:
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead.listen(64)  # accepts connections, never answers
    try:
        dead_url = f"http://127.0.0.1:{dead.getsockname()[1]}/"
        sinks = [{"name": "hook", "secretRef": {"name": "s"}, "webhook": {}}]
        bodies = [
            policy_body("dead", "alerts", sinks, delivery={"timeoutSeconds": 2, "retries": 0}),
            policy_body("alive", "alerts", sinks),
        ]
        notifier, _, _ = notifier_for(
            bodies,
            {("dead", "s"): dead_url, ("alive", "s"): receiver.url},
            workers=2,
            per_namespace=1,
        )

        async def scenario() -> tuple[float, float]:
            await notifier.start()
            began = time.monotonic()
            for seq in range(1, 21):
                notifier.offer(subject("dead"), entry(seq))
            offered = time.monotonic() - began
            await asyncio.sleep(0.2)  # the dead namespace's deliveries are hanging now
            began = time.monotonic()
            notifier.offer(subject("alive"), entry(1))
            while not receiver.requests:
                await asyncio.sleep(0.01)
                assert time.monotonic() - began < 5
            reached = time.monotonic() - began
            await notifier.stop()
            return offered, reached

        offered, reached = run(scenario())
    finally:
        dead.close()
    assert offered < 0.05
    assert reached < 1.0


def test_a_full_queue_drops_and_counts() -> None:
    sinks = [{"name": "hook", "secretRef": {"name": "s"}, "webhook": {}}]
    notifier, policies, metrics = notifier_for(
        [policy_body("shop", "alerts", sinks)], {}, capacity=2
    )

    async def scenario() -> None:
        for body in policies.bodies:
            notifier.observe(body)
        for seq in range(1, 6):  # no workers started: nothing leaves the queue
            notifier.offer(subject(), entry(seq))
        await notifier.flush()

    run(scenario())
    assert metrics.sample("rollwise_notifications_dropped_total") == 3
    assert metrics.sample("rollwise_notification_queue") == 2
    assert policies.patched[("shop", "alerts")]["dropped"] == 3


def test_an_invalid_policy_is_reported_and_sends_nothing(receiver: Receiver) -> None:
    sinks = [{"name": "hook", "secretRef": {"name": "s"}, "webhook": {}}]
    body = policy_body("shop", "alerts", sinks)
    body["spec"]["triggers"]["reasons"] = ["RolledBak"]
    notifier, policies, _ = notifier_for([body], {("shop", "s"): receiver.url})

    async def scenario() -> None:
        await notifier.start()
        notifier.offer(subject(), entry(1))
        await notifier.flush()
        await notifier.stop()

    run(scenario())
    assert receiver.requests == []
    conditions = {c["type"]: c for c in policies.patched[("shop", "alerts")]["conditions"]}
    assert conditions["InvalidSpec"]["status"] == "True"
    assert "'RolledBak' is not an event reason" in conditions["InvalidSpec"]["message"]


def _secret(labels: dict[str, str], **data: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": labels},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def test_only_secrets_marked_for_notifications_are_used() -> None:
    marked = {"rollwise.dev/notification-sink": "true"}
    found = credentials_of(_secret(marked, url="https://x.example/", signingKey="k"), "ns", "s")
    assert (found.url, found.signing_key) == ("https://x.example/", b"k")
    assert "x.example" not in repr(found)
    with pytest.raises(SinkSecretError, match="not marked for notifications"):
        credentials_of(_secret({}, url="https://x.example/"), "ns", "s")
    with pytest.raises(SinkSecretError, match="has no key 'url'"):
        credentials_of(_secret(marked, password="hunter2"), "ns", "s")


# --------------------------------------------------------------------------------------------
# The passes' hook


class _Memory:
    events_posted: tuple[str, int] | None = None


def test_post_logged_hands_posted_and_found_events_to_the_notifier() -> None:
    log = EventLog(seq=4, posted=0, entries=[entry(i) for i in range(1, 5)])
    offered: list[int] = []

    def post(item: LoggedEvent) -> bool:
        if item.seq == 4:
            raise Unavailable("API down")
        return item.seq != 2  # #2 was posted before a restart

    class Log:
        def __getattr__(self, name: str) -> Any:
            return lambda *a, **k: None

    memory = _Memory()
    done = run(
        post_logged(
            log,
            "uid",
            post,
            memory,
            metrics=None,
            logger=Log(),
            notify=lambda e: offered.append(e.seq),
        )
    )
    assert done is False
    assert offered == [1, 2, 3]  # #4 failed to post: offered once it is posted
    assert memory.events_posted == ("uid", 3)


class RecordingNotifier:
    def __init__(self) -> None:
        self.offered: list[tuple[Subject, LoggedEvent]] = []

    def offer(self, subject: Subject, entry: LoggedEvent) -> None:
        self.offered.append((subject, entry))


def test_a_rollback_pass_offers_each_logged_event_once_with_its_subject() -> None:
    body = rollout_body()
    body["metadata"]["labels"] = {"team": "payments"}
    w = world(body)
    recorder = RecordingNotifier()
    w.ports = replace(w.ports, notifier=recorder)
    w.settle(lambda r: w.status.get("phase") == "Healthy")
    new = revision_of(rollout_body("demo:2")["spec"]["template"])
    w.provider().values[f'error_ratio{{revision="{new}"}}'] = 0.2
    w.cluster.edit_image("demo:2")
    w.settle(lambda r: w.status.get("phase") == "Degraded", passes=20)
    for _ in range(3):  # passes with nothing new offer nothing
        w.run()
    seqs = [entry.seq for _, entry in recorder.offered]
    assert seqs == sorted(set(seqs))
    assert seqs == [e["seq"] for e in w.status["eventLog"]["entries"] if e["seq"] in seqs]
    subject = next(s for s, e in recorder.offered if e.reason == "RolledBack")
    assert (subject.kind, subject.namespace, subject.name) == ("Rollout", NAMESPACE, NAME)
    assert subject.uid == w.cluster.body["metadata"]["uid"]  # type: ignore[index]
    assert subject.labels == {"team": "payments"}
    assert subject.details["phase"] == "Degraded"
    assert subject.details["canaryWeight"] == "0"
    assert w.cluster.reasons.count("RolledBack") == 1


def test_the_revision_roles_are_exported_and_follow_the_status() -> None:
    metrics = OperatorMetrics()
    labels = {"namespace": "shop", "rollout": "checkout"}
    metrics.observe_status(
        "shop", "checkout", "Progressing", 5, revisions={"stable": "a", "canary": "b"}
    )
    assert (
        metrics.sample(
            "rollwise_rollout_revision_info", {**labels, "role": "canary", "revision": "b"}
        )
        == 1
    )
    metrics.observe_status(
        "shop", "checkout", "Healthy", 0, revisions={"stable": "b", "canary": ""}
    )
    assert (
        metrics.sample(
            "rollwise_rollout_revision_info", {**labels, "role": "canary", "revision": "b"}
        )
        is None
    )
    assert (
        metrics.sample(
            "rollwise_rollout_revision_info", {**labels, "role": "stable", "revision": "b"}
        )
        == 1
    )
    metrics.forget("shop", "checkout")
    assert (
        metrics.sample(
            "rollwise_rollout_revision_info", {**labels, "role": "stable", "revision": "b"}
        )
        is None
    )
