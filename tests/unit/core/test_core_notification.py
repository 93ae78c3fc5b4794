"""NotificationPolicy core: validation against the reason constants, selection by kind and
labels, the policy's status, and what each sink type is sent (parsed back with the
``cloudevents`` SDK for the CloudEvents modes), with signatures a receiver can verify."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http_event

from rollwise.core.modelrelease import reasons as MR
from rollwise.core.notification import (
    CloudEventsMode,
    DeliveryResult,
    LastDelivery,
    PolicyConditionType,
    SinkStatus,
    SinkType,
    load_policy_spec,
    matches,
    policy_status,
)
from rollwise.core.notification_bodies import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    Notice,
    Subject,
    event_document,
    notice_id,
    render,
    signed,
    verify_signature,
)
from rollwise.core.rollout import reasons as R

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
UID = "0b9c7d4e-1111-2222-3333-444455556666"


def policy(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "triggers": {"reasons": ["RolledBack"]},
        "sinks": [{"name": "hook", "secretRef": {"name": "s"}, "webhook": {}}],
    }
    base.update(spec)
    return base


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        pytest.param(
            policy(triggers={"reasons": ["RolledBak"]}),
            "spec.triggers.reasons[0]: 'RolledBak' is not an event reason of Rollwise",
            id="unknown-reason",
        ),
        pytest.param(
            policy(
                selector={"kinds": ["Rollout"]},
                triggers={"reasons": ["RolledBack", "ReleaseRevoked"]},
            ),
            "spec.triggers.reasons[1]: 'ReleaseRevoked' is never emitted by the selected kinds "
            "(Rollout)",
            id="reason-of-another-kind",
        ),
        pytest.param(
            policy(selector={"kinds": ["Deployment"]}),
            "spec.selector.kinds.0: String should match pattern '^(Rollout|ModelRelease)$'",
            id="unknown-kind",
        ),
        pytest.param(
            policy(
                sinks=[
                    {"name": "a", "secretRef": {"name": "s"}, "webhook": {}},
                    {"name": "a", "secretRef": {"name": "t"}, "slack": {}},
                ]
            ),
            "spec.sinks[1].name: 'a' names two sinks",
            id="duplicate-sink",
        ),
        pytest.param(
            policy(sinks=[{"name": "a", "secretRef": {"name": "s"}}]),
            "spec.sinks[0]: set exactly one of webhook, cloudEvents, slack",
            id="no-sink-type",
        ),
        pytest.param(
            policy(sinks=[{"name": "a", "secretRef": {"name": "s"}, "webhook": {}, "slack": {}}]),
            "spec.sinks[0]: set exactly one of webhook, cloudEvents, slack",
            id="two-sink-types",
        ),
        pytest.param(
            policy(selector={"matchExpressions": [{"key": "team", "operator": "In"}]}),
            "spec.selector.matchExpressions[0].values: operator In needs at least one value",
            id="in-without-values",
        ),
        pytest.param(
            policy(delivery={"timeoutSeconds": 60}),
            "spec.delivery.timeoutSeconds: Input should be less than or equal to 10",
            id="timeout-bound",
        ),
    ],
)
def test_invalid_policies_name_their_problem(spec: dict[str, Any], problem: str) -> None:
    parsed, problems = load_policy_spec(spec)
    assert parsed is None
    assert problem in problems


def test_every_reason_constant_is_a_valid_trigger() -> None:
    names = [r.name for r in (*R.ALL_REASONS, *MR.ALL_RELEASE_REASONS)]
    parsed, problems = load_policy_spec(policy(triggers={"reasons": sorted(set(names))}))
    assert problems == []
    assert parsed is not None
    assert parsed.selector.kinds == ["Rollout", "ModelRelease"]
    assert parsed.delivery.timeout_seconds == 5
    assert parsed.delivery.retries == 3


@pytest.mark.parametrize(
    ("selector", "kind", "labels", "reason", "expected"),
    [
        pytest.param({}, "Rollout", {}, "RolledBack", True, id="defaults-select-all"),
        pytest.param({}, "Rollout", {}, "WeightSet", False, id="other-reason"),
        pytest.param({"kinds": ["ModelRelease"]}, "Rollout", {}, "InvalidSpec", False, id="kind"),
        pytest.param(
            {"kinds": ["ModelRelease"]}, "ModelRelease", {}, "InvalidSpec", True, id="kind-selected"
        ),
        pytest.param(
            {"matchLabels": {"team": "a"}}, "Rollout", {"team": "a"}, "RolledBack", True, id="label"
        ),
        pytest.param(
            {"matchLabels": {"team": "a"}},
            "Rollout",
            {"team": "b"},
            "RolledBack",
            False,
            id="label-differs",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]}]},
            "Rollout",
            {"tier": "api"},
            "RolledBack",
            True,
            id="in",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["batch"]}]},
            "Rollout",
            {"tier": "batch"},
            "RolledBack",
            False,
            id="not-in",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "canary-exempt", "operator": "DoesNotExist"}]},
            "Rollout",
            {"canary-exempt": ""},
            "RolledBack",
            False,
            id="does-not-exist",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "team", "operator": "Exists"}]},
            "Rollout",
            {"team": "x"},
            "RolledBack",
            True,
            id="exists",
        ),
    ],
)
def test_matching_by_kind_labels_and_reason(
    selector: dict[str, Any], kind: str, labels: dict[str, str], reason: str, expected: bool
) -> None:
    reasons = ["InvalidSpec"] if selector.get("kinds") == ["ModelRelease"] else ["RolledBack"]
    spec, problems = load_policy_spec(policy(selector=selector, triggers={"reasons": reasons}))
    assert spec is not None, problems
    assert matches(spec, kind, labels, reason) is expected


def delivered(name: str, result: DeliveryResult, at: datetime = NOW) -> SinkStatus:
    return SinkStatus(
        name=name,
        delivered=1,
        last_delivery=LastDelivery(time=at, result=result, attempts=1, event_id="x"),
    )


def test_status_conditions_follow_spec_and_deliveries() -> None:
    invalid = policy_status(
        None, generation=2, problems=["spec.x: bad"], sinks=[], dropped=0, now=NOW
    )
    ready = {c.type: c for c in invalid.conditions}[PolicyConditionType.READY]
    assert (ready.status, ready.reason, ready.message) == ("False", "InvalidSpec", "spec.x: bad")
    assert invalid.observed_generation == 2

    fine = policy_status(
        invalid,
        generation=3,
        problems=[],
        sinks=[delivered("a", DeliveryResult.DELIVERED)],
        dropped=0,
        now=NOW + timedelta(minutes=1),
    )
    ready = {c.type: c for c in fine.conditions}[PolicyConditionType.READY]
    assert (ready.status, ready.reason) == ("True", "Delivering")
    assert ready.last_transition_time == NOW + timedelta(minutes=1)

    failing = policy_status(
        fine,
        generation=3,
        problems=[],
        sinks=[delivered("a", DeliveryResult.DELIVERED), delivered("b", DeliveryResult.FAILED)],
        dropped=4,
        now=NOW + timedelta(minutes=2),
    )
    ready = {c.type: c for c in failing.conditions}[PolicyConditionType.READY]
    assert (ready.status, ready.reason) == ("False", "DeliveryFailed")
    assert "sink(s) b " in ready.message
    assert failing.dropped == 4
    invalid_spec = {c.type: c for c in failing.conditions}[PolicyConditionType.INVALID_SPEC]
    # Unchanged conditions keep their transition time.
    assert invalid_spec.last_transition_time == NOW + timedelta(minutes=1)


# --------------------------------------------------------------------------------------------
# Bodies

SUBJECT = Subject(
    kind="Rollout",
    plural="rollouts",
    namespace="shop",
    name="checkout",
    uid=UID,
    labels={"team": "payments"},
    details={"phase": "Degraded", "stableRevision": "abc", "canaryRevision": "def"},
)
NOTICE = Notice(
    subject=SUBJECT,
    seq=7,
    reason="RolledBack",
    type="Warning",
    message="canary def rolled back: error-ratio 0.2 > 0.05 <at step 2>",
    time=NOW,
)


def test_the_id_is_the_uid_and_the_padded_sequence_number() -> None:
    assert NOTICE.id == notice_id(UID, 7) == f"{UID}.0000000007"


def test_webhook_body_is_the_documented_event_document() -> None:
    outgoing = render(NOTICE, SinkType.WEBHOOK, policy="alerts", sink="hook")
    assert outgoing.header("Content-Type") == "application/json"
    assert outgoing.header(EVENT_ID_HEADER) == NOTICE.id
    body = json.loads(outgoing.body)
    assert body == event_document(NOTICE, "alerts", "hook")
    assert body == {
        "schemaVersion": "rollwise.dev/notification/v1",
        "id": NOTICE.id,
        "time": "2025-03-01T12:00:00Z",
        "object": {
            "apiVersion": "rollwise.dev/v1alpha1",
            "kind": "Rollout",
            "namespace": "shop",
            "name": "checkout",
            "uid": UID,
            "path": "/apis/rollwise.dev/v1alpha1/namespaces/shop/rollouts/checkout",
            "labels": {"team": "payments"},
        },
        "event": {
            "seq": 7,
            "reason": "RolledBack",
            "type": "Warning",
            "message": NOTICE.message,
        },
        "details": {"phase": "Degraded", "stableRevision": "abc", "canaryRevision": "def"},
        "policy": {"name": "alerts", "sink": "hook"},
    }


@pytest.mark.parametrize("mode", [CloudEventsMode.STRUCTURED, CloudEventsMode.BINARY])
def test_cloudevents_parse_with_the_sdk(mode: CloudEventsMode) -> None:
    outgoing = render(NOTICE, SinkType.CLOUDEVENTS, policy="alerts", sink="ce", mode=mode)
    event = from_http_event(HTTPMessage(dict(outgoing.headers), outgoing.body))
    assert event.get_specversion() == "1.0"
    assert event.get_id() == NOTICE.id
    assert event.get_source() == "/apis/rollwise.dev/v1alpha1/namespaces/shop/rollouts/checkout"
    assert event.get_type() == "dev.rollwise.rollout.RolledBack"
    assert event.get_subject() == "checkout"
    assert event.get_time() == NOW
    assert event.get_data() == event_document(NOTICE, "alerts", "ce")
    if mode is CloudEventsMode.BINARY:
        assert outgoing.header("ce-id") == NOTICE.id
        assert outgoing.header("Content-Type") == "application/json"
    else:
        assert outgoing.header(
            "Content-Type",
        ).startswith("application/cloudevents+json")


def test_binary_headers_percent_encode_what_http_cannot_carry() -> None:
    odd = Notice(
        subject=Subject("Rollout", "rollouts", "ns", "ein-übel", UID),
        seq=1,
        reason="RolledBack",
        type="Warning",
        message="m",
        time=NOW,
    )
    outgoing = render(odd, SinkType.CLOUDEVENTS, policy="p", sink="s", mode=CloudEventsMode.BINARY)
    assert outgoing.header("ce-subject") == "ein-%C3%BCbel"
    event = from_http_event(HTTPMessage(dict(outgoing.headers), outgoing.body))
    assert event.get_subject() == "ein-übel"


def test_slack_message_escapes_and_colours() -> None:
    outgoing = render(NOTICE, SinkType.SLACK, policy="alerts", sink="chat")
    message = json.loads(outgoing.body)
    assert message["text"].startswith(":warning: *RolledBack* Rollout shop/checkout: ")
    assert "&lt;at step 2&gt;" in message["text"]
    (attachment,) = message["attachments"]
    assert attachment["color"] == "danger"
    assert {"title": "canaryRevision", "value": "def", "short": True} in attachment["fields"]
    assert attachment["footer"].endswith(NOTICE.id)


def test_signatures_verify_and_refuse_tampering_and_replays() -> None:
    key = b"k" * 32
    outgoing = signed(render(NOTICE, SinkType.WEBHOOK, policy="p", sink="s"), key, 1_700_000_000)
    header = outgoing.header(SIGNATURE_HEADER)
    assert header is not None
    assert header.startswith("t=1700000000,v1=")
    assert verify_signature(key, header, outgoing.body, now=1_700_000_010)
    assert not verify_signature(key, header, outgoing.body + b" ", now=1_700_000_010)
    assert not verify_signature(b"other", header, outgoing.body, now=1_700_000_010)
    assert not verify_signature(key, header, outgoing.body, now=1_700_001_000)
    assert not verify_signature(key, "v1=abc", outgoing.body, now=1_700_000_000)
    assert signed(outgoing, None, 1) is outgoing
