"""What a notification sends: the event document, its three wire forms, and the signature.

A :class:`Notice` is one logged event of one object (:class:`Subject`), with the stable id
receivers deduplicate by: ``<object uid>.<sequence number>`` (:func:`notice_id`), the tail of
the Kubernetes Event's own name (``core.events.event_name``). A re-post after a restart
carries the same id, so delivery is at-least-once and a receiver that keeps the ids it has
seen gets every event once.

Wire forms (:func:`render`), all UTF-8 JSON:

* ``webhook``: :func:`event_document`, the documented body (docs/notifications.md);
* ``cloudevents``: CloudEvents 1.0 over HTTP, *structured* (``application/cloudevents+json``:
  the attributes and ``data``) or *binary* (the attributes as ``ce-`` headers, the document as
  the body); the protocol is small enough to write here (a dozen attributes, one header
  encoding rule) and the tests parse what it sends with the ``cloudevents`` SDK;
* ``slack``: an incoming-webhook message, ``text`` (the fallback every client shows) and one
  ``attachments`` entry (colour, fields), which Slack, Mattermost and Rocket.Chat all read.

Every request carries ``X-Rollwise-Event-Id``; with a signing key, ``X-Rollwise-Signature:
t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>`` (:func:`signature_header`,
:func:`verify_signature`): the timestamp lets a receiver refuse replays.

Pure: the caller gives the attempt's time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from rollwise import API_VERSION
from rollwise.core.events import SEQ_DIGITS
from rollwise.core.notification import CloudEventsMode, SinkType
from rollwise.core.status_model import format_time

#: The API group and version of the objects notifications are about.
#: ``schemaVersion`` of the event document: a receiver can tell a later shape apart.
SCHEMA_VERSION = "rollwise.dev/notification/v1"
#: CloudEvents: the spec version, and the prefix of ``type`` (``dev.rollwise.rollout.RolledBack``).
CLOUDEVENTS_SPEC = "1.0"
CLOUDEVENTS_TYPE_PREFIX = "dev.rollwise"
CLOUDEVENTS_STRUCTURED = "application/cloudevents+json; charset=utf-8"
JSON = "application/json"

EVENT_ID_HEADER = "X-Rollwise-Event-Id"
SIGNATURE_HEADER = "X-Rollwise-Signature"
USER_AGENT = "rollwise-operator"

#: Slack attachment colours by event type.
_COLOURS = {"Warning": "danger", "Normal": "good"}


@dataclass(frozen=True)
class Subject:
    """The object an event is about, as notifications describe it: ``details`` are a few
    fields of its status (phase, revisions, weight; model, version, stage, ticket)."""

    kind: str
    plural: str
    namespace: str
    name: str
    uid: str
    labels: Mapping[str, str] = field(default_factory=dict)
    details: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Notice:
    """One logged event of ``subject``."""

    subject: Subject
    seq: int
    reason: str
    type: str
    message: str
    time: datetime

    @property
    def id(self) -> str:
        return notice_id(self.subject.uid, self.seq)


@dataclass(frozen=True)
class Outgoing:
    """One HTTP request's headers and body (the method is POST)."""

    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)


def notice_id(uid: str, seq: int) -> str:
    """The id of event ``seq`` of the object ``uid``: the same on every post and re-post."""
    return f"{uid}.{seq:0{SEQ_DIGITS}d}"


def source_of(subject: Subject) -> str:
    """The object's API path: the CloudEvents ``source`` and the document's ``object.path``."""
    return f"/apis/{API_VERSION}/namespaces/{subject.namespace}/{subject.plural}/{subject.name}"


def cloudevents_type(subject: Subject, reason: str) -> str:
    return f"{CLOUDEVENTS_TYPE_PREFIX}.{subject.kind.lower()}.{reason}"


def event_document(notice: Notice, policy: str, sink: str) -> dict[str, object]:
    """The event as the webhook body and the CloudEvents ``data``."""
    subject = notice.subject
    return {
        "schemaVersion": SCHEMA_VERSION,
        "id": notice.id,
        "time": format_time(notice.time),
        "object": {
            "apiVersion": API_VERSION,
            "kind": subject.kind,
            "namespace": subject.namespace,
            "name": subject.name,
            "uid": subject.uid,
            "path": source_of(subject),
            "labels": dict(subject.labels),
        },
        "event": {
            "seq": notice.seq,
            "reason": notice.reason,
            "type": notice.type,
            "message": notice.message,
        },
        "details": dict(subject.details),
        "policy": {"name": policy, "sink": sink},
    }


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def cloudevent_attributes(notice: Notice) -> dict[str, str]:
    """The CloudEvents context attributes of a notice."""
    return {
        "specversion": CLOUDEVENTS_SPEC,
        "id": notice.id,
        "source": source_of(notice.subject),
        "type": cloudevents_type(notice.subject, notice.reason),
        "subject": notice.subject.name,
        "time": format_time(notice.time),
        "datacontenttype": JSON,
    }


_HEADER_SAFE = frozenset(chr(c) for c in range(0x21, 0x7F)) - {'"', "%"}


def _header_value(value: str) -> str:
    """A CloudEvents HTTP binding header value: printable ASCII except space, ``"`` and ``%``
    as they are, everything else percent-encoded as UTF-8."""
    out: list[str] = []
    for char in value:
        if char in _HEADER_SAFE:
            out.append(char)
        else:
            out.extend(f"%{b:02X}" for b in char.encode())
    return "".join(out)


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(notice: Notice) -> dict[str, object]:
    """A Slack-compatible incoming-webhook message for a notice."""
    subject = notice.subject
    where = f"{subject.kind} {subject.namespace}/{subject.name}"
    icon = ":warning:" if notice.type == "Warning" else ":information_source:"
    text = f"{icon} *{notice.reason}* {_slack_escape(where)}: {_slack_escape(notice.message)}"
    fields = [{"title": "Reason", "value": notice.reason, "short": True}]
    fields += [
        {"title": key, "value": _slack_escape(str(value)), "short": True}
        for key, value in sorted(subject.details.items())
        if value != ""
    ]
    return {
        "text": text,
        "attachments": [
            {
                "fallback": text,
                "color": _COLOURS.get(notice.type, "warning"),
                "title": _slack_escape(where),
                "text": _slack_escape(notice.message),
                "fields": fields,
                "footer": f"rollwise · {notice.id}",
                "ts": int(notice.time.timestamp()),
            }
        ],
    }


def render(
    notice: Notice,
    sink_type: SinkType,
    *,
    policy: str,
    sink: str,
    mode: CloudEventsMode | None = None,
) -> Outgoing:
    """The request (unsigned) that delivers ``notice`` to a sink of ``sink_type`` (CloudEvents
    in ``mode``, structured by default)."""
    common = (("User-Agent", USER_AGENT), (EVENT_ID_HEADER, notice.id))
    if sink_type is SinkType.SLACK:
        return Outgoing((*common, ("Content-Type", JSON)), _json(slack_message(notice)))
    document = event_document(notice, policy, sink)
    if sink_type is SinkType.WEBHOOK:
        return Outgoing((*common, ("Content-Type", JSON)), _json(document))
    attributes = cloudevent_attributes(notice)
    if mode is not CloudEventsMode.BINARY:
        return Outgoing(
            (*common, ("Content-Type", CLOUDEVENTS_STRUCTURED)),
            _json({**attributes, "data": document}),
        )
    headers = [
        (f"ce-{name}", _header_value(value))
        for name, value in attributes.items()
        if name != "datacontenttype"
    ]
    return Outgoing((*common, ("Content-Type", JSON), *headers), _json(document))


def signature(key: bytes, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"<timestamp>." + body`` under ``key``."""
    return hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(key: bytes, timestamp: int, body: bytes) -> str:
    """The ``X-Rollwise-Signature`` value: ``t=<timestamp>,v1=<signature>``."""
    return f"t={timestamp},v1={signature(key, timestamp, body)}"


def signed(outgoing: Outgoing, key: bytes | None, timestamp: int) -> Outgoing:
    """``outgoing`` with its signature header when there is a key."""
    if not key:
        return outgoing
    header = (SIGNATURE_HEADER, signature_header(key, timestamp, outgoing.body))
    return Outgoing((*outgoing.headers, header), outgoing.body)


def verify_signature(
    key: bytes, header: str, body: bytes, *, now: int, tolerance: int = 300
) -> bool:
    """What a receiver does: the header parses, its timestamp is within ``tolerance`` seconds
    of ``now``, and one ``v1`` signature matches (compared in constant time)."""
    parts = [p.partition("=") for p in header.split(",")]
    stamps = [v for k, _, v in parts if k.strip() == "t"]
    signatures = [v.strip() for k, _, v in parts if k.strip() == "v1"]
    if len(stamps) != 1 or not stamps[0].strip().isdigit() or not signatures:
        return False
    timestamp = int(stamps[0])
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature(key, timestamp, body)
    return any(hmac.compare_digest(expected, s) for s in signatures)


__all__ = [
    "API_VERSION",
    "CLOUDEVENTS_SPEC",
    "CLOUDEVENTS_STRUCTURED",
    "EVENT_ID_HEADER",
    "SCHEMA_VERSION",
    "SIGNATURE_HEADER",
    "Notice",
    "Outgoing",
    "Subject",
    "cloudevent_attributes",
    "cloudevents_type",
    "event_document",
    "notice_id",
    "render",
    "signature",
    "signature_header",
    "signed",
    "slack_message",
    "source_of",
    "verify_signature",
]
