"""NotificationPolicy: which events of which objects go to which sinks, and the policy's status.

A ``NotificationPolicy`` (``rollwise.dev/v1alpha1``, namespaced) selects objects of its own
namespace by kind and labels, triggers on event reasons (the constants of
:mod:`rollwise.core.reasons` and :mod:`rollwise.core.modelrelease.reasons`; an unknown name
makes the policy invalid) and names its sinks: a generic JSON webhook, a CloudEvents 1.0 sink
(structured or binary mode) or a Slack-compatible incoming webhook, each with a Secret of the
policy's namespace that holds its URL and, optionally, a signing key and an Authorization
header value.

Trigger kinds: ``reasons`` today. A decision change (``status.decision`` on Rollouts) will be
a trigger kind of its own, ``decisions``; it reaches this module the same way, as the logged
event its transition writes, so :func:`matches` is the one place it joins.

This module is pure: the models, :func:`validate`, :func:`matches` and the status
(:func:`policy_status`). What is sent is :mod:`rollwise.core.notification_bodies`; reading
Secrets and sending are adapters' business, the queue the runtime's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from rollwise.core.modelrelease import reasons as MR
from rollwise.core.reasons import clip
from rollwise.core.rollout import reasons as R
from rollwise.core.status_model import StatusModel, Time

#: The kinds a policy can select, by the name ``spec.selector.kinds`` uses.
ROLLOUT_KIND = "Rollout"
MODELRELEASE_KIND = "ModelRelease"
KINDS = (ROLLOUT_KIND, MODELRELEASE_KIND)

#: Event reasons each kind emits (by wire name).
REASONS_BY_KIND: Mapping[str, frozenset[str]] = {
    ROLLOUT_KIND: frozenset(r.name for r in R.ALL_REASONS),
    MODELRELEASE_KIND: frozenset(r.name for r in MR.ALL_RELEASE_REASONS),
}
ALL_REASON_NAMES = frozenset().union(*REASONS_BY_KIND.values())

#: Bounds of what a policy may ask (the CRD's limits): a policy is tenant input.
MAX_SINKS = 8
MAX_REASONS = 96
MAX_TIMEOUT_SECONDS = 10
MAX_RETRIES = 5
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

#: Keys of a sink's Secret.
URL_KEY = "url"
SIGNING_KEY = "signingKey"
AUTHORIZATION_KEY = "authorization"

#: The label a Secret must carry before the operator uses it for a sink: a policy author may
#: name any Secret of the namespace, and only the Secrets someone marked for notifications
#: may be sent from (docs/notifications.md, "Secrets").
SINK_SECRET_LABEL = "rollwise.dev/notification-sink"
SINK_SECRET_LABEL_VALUE = "true"


class _Spec(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class SelectorOperator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


LabelValue = Annotated[str, Field(max_length=63)]
ReasonName = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[A-Z][A-Za-z]*$")]
KindName = Annotated[str, Field(pattern=r"^(Rollout|ModelRelease)$")]

#: List bounds (the CRD's maxItems; checked again by :func:`validate`).
MAX_KINDS = 2
MAX_EXPRESSIONS = 16
MAX_VALUES = 64


class SelectorRequirement(_Spec):
    key: str = Field(min_length=1, max_length=317)
    operator: SelectorOperator
    values: list[LabelValue] | None = None


class ObjectSelector(_Spec):
    """Which objects of the policy's namespace: kinds (default both) and a label selector."""

    kinds: list[KindName] = Field(default_factory=lambda: list(KINDS))
    match_labels: dict[str, str] | None = None
    match_expressions: list[SelectorRequirement] | None = None


class Triggers(_Spec):
    """What makes a notification: event reasons."""

    reasons: list[ReasonName]


class CloudEventsMode(StrEnum):
    STRUCTURED = "structured"
    BINARY = "binary"


class WebhookSink(_Spec):
    """A generic webhook: the event as a JSON document (POST)."""


class CloudEventsSink(_Spec):
    """CloudEvents 1.0 over HTTP: ``structured`` (the whole event as
    ``application/cloudevents+json``) or ``binary`` (attributes as ``ce-`` headers)."""

    mode: CloudEventsMode = CloudEventsMode.STRUCTURED


class SlackSink(_Spec):
    """A Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat)."""


class SecretRef(_Spec):
    name: str = Field(min_length=1, max_length=253)


class SinkType(StrEnum):
    """The sink's type, as the ``sink`` label of the metrics names it."""

    WEBHOOK = "webhook"
    CLOUDEVENTS = "cloudevents"
    SLACK = "slack"


class Sink(_Spec):
    """One destination: a name, its Secret and exactly one of webhook, cloudEvents, slack."""

    name: str = Field(min_length=1, max_length=63, pattern=NAME_PATTERN)
    secret_ref: SecretRef
    webhook: WebhookSink | None = None
    cloud_events: CloudEventsSink | None = None
    slack: SlackSink | None = None

    @property
    def type(self) -> SinkType:
        if self.cloud_events is not None:
            return SinkType.CLOUDEVENTS
        if self.slack is not None:
            return SinkType.SLACK
        return SinkType.WEBHOOK


class Delivery(_Spec):
    """How hard to try: one attempt's timeout and the retries after a failed attempt."""

    timeout_seconds: int = Field(default=5, ge=1, le=MAX_TIMEOUT_SECONDS)
    retries: int = Field(default=3, ge=0, le=MAX_RETRIES)


class NotificationPolicySpec(_Spec):
    selector: ObjectSelector = Field(default_factory=ObjectSelector)
    triggers: Triggers
    sinks: list[Sink]
    delivery: Delivery = Field(default_factory=Delivery)


def _requirement_problems(path: str, req: SelectorRequirement) -> list[str]:
    if req.operator in (SelectorOperator.IN, SelectorOperator.NOT_IN) and not req.values:
        return [f"{path}.values: operator {req.operator.value} needs at least one value"]
    if req.operator in (SelectorOperator.EXISTS, SelectorOperator.DOES_NOT_EXIST) and req.values:
        return [f"{path}.values: operator {req.operator.value} takes no values"]
    return []


def validate(spec: NotificationPolicySpec) -> list[str]:
    """The rules a parsed spec must also keep (the CRD says the same with maxItems and CEL
    rules): list sizes, known reasons, a reason the selected kinds can emit, unique sink
    names, one type per sink, sound selector requirements."""
    problems: list[str] = []
    kinds = spec.selector.kinds
    expressions = spec.selector.match_expressions or []
    sizes: list[tuple[str, Sequence[object], int, int]] = [
        ("spec.selector.kinds", kinds, 1, MAX_KINDS),
        ("spec.selector.matchExpressions", expressions, 0, MAX_EXPRESSIONS),
        ("spec.triggers.reasons", spec.triggers.reasons, 1, MAX_REASONS),
        ("spec.sinks", spec.sinks, 1, MAX_SINKS),
        *(
            (f"spec.selector.matchExpressions[{i}].values", e.values or [], 0, MAX_VALUES)
            for i, e in enumerate(expressions)
        ),
    ]
    for path, items, low, high in sizes:
        if not low <= len(items) <= high:
            problems.append(f"{path}: between {low} and {high} items, not {len(items)}")
    if len(set(kinds)) != len(kinds):
        problems.append("spec.selector.kinds: a kind is listed twice")
    emitted = frozenset().union(*(REASONS_BY_KIND.get(k, frozenset()) for k in kinds))
    for i, reason in enumerate(spec.triggers.reasons):
        path = f"spec.triggers.reasons[{i}]"
        if reason not in ALL_REASON_NAMES:
            problems.append(f"{path}: {reason!r} is not an event reason of Rollwise")
        elif reason not in emitted:
            problems.append(
                f"{path}: {reason!r} is never emitted by the selected kinds ({', '.join(kinds)})"
            )
    for i, req in enumerate(spec.selector.match_expressions or ()):
        problems += _requirement_problems(f"spec.selector.matchExpressions[{i}]", req)
    seen: set[str] = set()
    for i, sink in enumerate(spec.sinks):
        path = f"spec.sinks[{i}]"
        if sink.name in seen:
            problems.append(f"{path}.name: {sink.name!r} names two sinks")
        seen.add(sink.name)
        chosen = [t for t in (sink.webhook, sink.cloud_events, sink.slack) if t is not None]
        if len(chosen) != 1:
            problems.append(f"{path}: set exactly one of webhook, cloudEvents, slack")
    return problems


def _pydantic_problems(error: ValidationError) -> list[str]:
    out: list[str] = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"])
        out.append(f"spec.{where}: {item['msg']}" if where else f"spec: {item['msg']}")
    return out


def load_policy_spec(raw: Mapping[str, object]) -> tuple[NotificationPolicySpec | None, list[str]]:
    """The spec parsed and validated: (spec, []) or (None, the problems)."""
    try:
        spec = NotificationPolicySpec.model_validate(dict(raw))
    except ValidationError as exc:
        return None, _pydantic_problems(exc)
    problems = validate(spec)
    return (None, problems) if problems else (spec, [])


def selects_labels(selector: ObjectSelector, labels: Mapping[str, str]) -> bool:
    """Whether ``labels`` satisfy the selector's matchLabels and matchExpressions."""
    for key, value in (selector.match_labels or {}).items():
        if labels.get(key) != value:
            return False
    for req in selector.match_expressions or ():
        present = req.key in labels
        found = labels.get(req.key)
        if req.operator is SelectorOperator.IN and found not in (req.values or ()):
            return False
        if req.operator is SelectorOperator.NOT_IN and present and found in (req.values or ()):
            return False
        if req.operator is SelectorOperator.EXISTS and not present:
            return False
        if req.operator is SelectorOperator.DOES_NOT_EXIST and present:
            return False
    return True


def matches(
    spec: NotificationPolicySpec, kind: str, labels: Mapping[str, str], reason: str
) -> bool:
    """Whether an event ``reason`` of an object of ``kind`` with ``labels`` (in the policy's own
    namespace: the caller's check) triggers the policy."""
    return (
        kind in spec.selector.kinds
        and reason in spec.triggers.reasons
        and selects_labels(spec.selector, labels)
    )


# --------------------------------------------------------------------------------------------
# Status


class DeliveryResult(StrEnum):
    """The outcome of one notification to one sink (the ``result`` label of
    ``rollwise_notifications_total``): ``delivered`` (a 2xx answer), ``failed`` (the last
    attempt failed, or the receiver refused it with a 4xx answer), ``refused`` (never sent:
    the sink's Secret is missing or unusable, or the operator's host policy forbids its
    address)."""

    DELIVERED = "delivered"
    FAILED = "failed"
    REFUSED = "refused"


class PolicyConditionType(StrEnum):
    """``Ready``: the spec is valid and no sink's last delivery failed. ``InvalidSpec``: True
    with the problems when the spec breaks a rule (nothing is sent)."""

    READY = "Ready"
    INVALID_SPEC = "InvalidSpec"


#: Condition reasons of a NotificationPolicy.
REASON_VALID = "Valid"
REASON_INVALID = "InvalidSpec"
REASON_DELIVERING = "Delivering"
REASON_DELIVERY_FAILED = "DeliveryFailed"


class PolicyCondition(StatusModel):
    type: PolicyConditionType
    status: str
    reason: str
    message: str = ""
    last_transition_time: Time
    observed_generation: int | None = None


class LastDelivery(StatusModel):
    """A sink's last delivery: when it ended, its result, the receiver's HTTP status (none when
    nothing answered), the attempts made, the event's id, and what went wrong."""

    time: Time
    result: DeliveryResult
    http_status: int | None = None
    attempts: int = 0
    event_id: str = ""
    message: str = ""


class SinkStatus(StatusModel):
    name: str
    delivered: int = 0
    failed: int = 0
    refused: int = 0
    last_delivery: LastDelivery | None = None


class NotificationPolicyStatus(StatusModel):
    observed_generation: int | None = None
    conditions: list[PolicyCondition] = Field(default_factory=list)
    sinks: list[SinkStatus] = Field(default_factory=list)
    #: Notifications of this policy dropped because the operator's queue was full.
    dropped: int = 0


@dataclass(frozen=True)
class _Wanted:
    type: PolicyConditionType
    status: str
    reason: str
    message: str


def _conditions(
    previous: Sequence[PolicyCondition], wanted: Sequence[_Wanted], generation: int, now: datetime
) -> list[PolicyCondition]:
    known = {c.type: c for c in previous}
    out: list[PolicyCondition] = []
    for want in wanted:
        before = known.get(want.type)
        since = before.last_transition_time if before and before.status == want.status else now
        out.append(
            PolicyCondition(
                type=want.type,
                status=want.status,
                reason=want.reason,
                message=clip(want.message),
                last_transition_time=since,
                observed_generation=generation,
            )
        )
    return out


def policy_status(
    previous: NotificationPolicyStatus | None,
    *,
    generation: int,
    problems: Sequence[str],
    sinks: Sequence[SinkStatus],
    dropped: int,
    now: datetime,
) -> NotificationPolicyStatus:
    """The policy's status: the conditions for ``problems`` (validation) and the sinks' last
    results, the sinks' counts, the drops; transition times kept while a condition holds."""
    failing = [
        s.name
        for s in sinks
        if s.last_delivery is not None and s.last_delivery.result is not DeliveryResult.DELIVERED
    ]
    if problems:
        text = "; ".join(problems)
        wanted = [
            _Wanted(PolicyConditionType.READY, "False", REASON_INVALID, text),
            _Wanted(PolicyConditionType.INVALID_SPEC, "True", REASON_INVALID, text),
        ]
    elif failing:
        wanted = [
            _Wanted(
                PolicyConditionType.READY,
                "False",
                REASON_DELIVERY_FAILED,
                f"the last delivery to sink(s) {', '.join(failing)} did not succeed "
                "(status.sinks says why)",
            ),
            _Wanted(PolicyConditionType.INVALID_SPEC, "False", REASON_VALID, ""),
        ]
    else:
        wanted = [
            _Wanted(PolicyConditionType.READY, "True", REASON_DELIVERING, "the policy is active"),
            _Wanted(PolicyConditionType.INVALID_SPEC, "False", REASON_VALID, ""),
        ]
    before = previous.conditions if previous is not None else []
    return NotificationPolicyStatus(
        observed_generation=generation,
        conditions=_conditions(before, wanted, generation, now),
        sinks=list(sinks),
        dropped=dropped,
    )


__all__ = [
    "ALL_REASON_NAMES",
    "AUTHORIZATION_KEY",
    "KINDS",
    "MAX_RETRIES",
    "MAX_SINKS",
    "MAX_TIMEOUT_SECONDS",
    "MODELRELEASE_KIND",
    "REASONS_BY_KIND",
    "ROLLOUT_KIND",
    "SIGNING_KEY",
    "SINK_SECRET_LABEL",
    "SINK_SECRET_LABEL_VALUE",
    "URL_KEY",
    "CloudEventsMode",
    "CloudEventsSink",
    "Delivery",
    "DeliveryResult",
    "LastDelivery",
    "NotificationPolicySpec",
    "NotificationPolicyStatus",
    "ObjectSelector",
    "PolicyCondition",
    "PolicyConditionType",
    "SecretRef",
    "SelectorOperator",
    "SelectorRequirement",
    "Sink",
    "SinkStatus",
    "SinkType",
    "SlackSink",
    "Triggers",
    "WebhookSink",
    "load_policy_spec",
    "matches",
    "policy_status",
    "selects_labels",
    "validate",
]
