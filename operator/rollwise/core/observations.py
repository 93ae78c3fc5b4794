"""What the runtime observed in one reconcile pass, for
:func:`rollwise.core.rollout.canary.decide`.

The runtime reads the cluster (revision Deployments, Services, the router's actual weight,
the request annotations) and queries the metrics :func:`rollwise.core.analysis.due_metrics`
asked for; this module only defines the shapes (frozen dataclasses) and the revision hash.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from rollwise.core.burnrate import WindowCounts
from rollwise.core.querycheck import QueryCheck
from rollwise.core.traffic import HeaderRoute, MirrorRoute


@dataclass(frozen=True)
class TemplateKey:
    """An analysis template a spec references: a ``ClusterAnalysisTemplate`` when
    ``cluster_scope``, else an ``AnalysisTemplate`` in the referrer's namespace."""

    cluster_scope: bool
    name: str

    @property
    def kind(self) -> str:
        return "ClusterAnalysisTemplate" if self.cluster_scope else "AnalysisTemplate"


#: What the runtime read of a referenced template: its ``spec`` (wire form), or why it could
#: not be read (a message); a template that does not exist is None.
TemplateRead = Mapping[str, Any] | str

#: Label carrying a revision id on the Deployments and pods the operator owns.
REVISION_LABEL = "rollwise.dev/revision"

#: Length of a revision id (hex characters of a sha256).
REVISION_LENGTH = 10

#: Appended to the stable revision's id to name its baseline (see :func:`baseline_revision_of`).
BASELINE_SUFFIX = "-baseline"


def baseline_revision_of(stable: str) -> str:
    """The revision id of the baseline beside the stable revision ``stable``: the stable
    template in its own Deployment, with its own ``rollwise.dev/revision`` value, so its pods'
    metrics are told apart from the stable fleet's."""
    return f"{stable}{BASELINE_SUFFIX}"


def revision_of(template: Mapping[str, Any]) -> str:
    """The revision id of a pod template: 10 hex chars of sha256 over its canonical JSON.

    Canonical means sorted keys and no insignificant whitespace, so the same template always
    hashes the same whatever the order the API server returned its fields in. The revision
    label itself is removed first, so a user who copies it into the Rollout's template does not
    change the revision. Hash only the Rollout's ``spec.template`` (kept verbatim by the CRD):
    a Deployment's template read back from the API server carries server-side defaults
    (``imagePullPolicy``, ``terminationMessagePath``, ...) and hashes differently.
    """
    cleaned = _without_revision_label(template)
    canonical = json.dumps(cleaned, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:REVISION_LENGTH]


def _without_revision_label(template: Mapping[str, Any]) -> dict[str, Any]:
    copy = dict(template)
    metadata = copy.get("metadata")
    if isinstance(metadata, Mapping):
        labels = metadata.get("labels")
        if isinstance(labels, Mapping) and REVISION_LABEL in labels:
            meta = dict(metadata)
            meta["labels"] = {k: v for k, v in labels.items() if k != REVISION_LABEL}
            copy["metadata"] = meta
    return copy


@dataclass(frozen=True)
class RevisionState:
    """The observed state of one revision's Deployment.

    ``current`` is false while the Deployment controller has not observed the latest
    Deployment spec (``status.observedGeneration < metadata.generation``): its counts are
    stale then and do not prove readiness.
    """

    desired_replicas: int
    updated_replicas: int = 0
    ready_replicas: int = 0
    available_replicas: int = 0
    current: bool = True

    def ready_for(self, replicas: int) -> bool:
        """Whether at least ``replicas`` pods of this revision are updated and available."""
        return (
            self.current
            and self.desired_replicas >= replicas
            and self.updated_replicas >= replicas
            and self.available_replicas >= replicas
        )


@dataclass(frozen=True)
class Measurement:
    """One metric query result. ``value`` None (no data) or NaN/inf is inconclusive;
    ``error`` set means the provider failed (counts towards consecutiveErrorLimit).

    ``at`` is when the runtime queried; ``decide`` records the measurement at its own ``now``
    so that the measurement schedule depends on the decision's clock alone."""

    value: float | None
    at: datetime
    error: str | None = None
    #: The metric's ``sampleGuard`` count, when it has one: None for no data.
    samples: float | None = None
    #: A ``compare`` metric's range-queried samples, for the canary and for the control, and
    #: what the control is (``stable`` or ``baseline``).
    canary_samples: tuple[float, ...] = ()
    control_samples: tuple[float, ...] = ()
    control: str = "stable"
    #: An ``sloBurnRate`` metric's counts, one per window the core asked for.
    windows: tuple[WindowCounts, ...] = ()

    @property
    def usable(self) -> bool:
        return self.error is None and self.value is not None and math.isfinite(self.value)

    def taken_at(self, at: datetime) -> Measurement:
        """This measurement, dated ``at`` (the decision's clock), every result kept."""
        return replace(self, at=at)


class RequestKind(StrEnum):
    """Manual requests, each read from the annotation ``rollwise.dev/<kind>``; the annotation's
    value is the request id (any string; a new id is a new request)."""

    PROMOTE = "promote"
    PROMOTE_FULL = "promote-full"
    ABORT = "abort"
    RETRY = "retry"

    @property
    def annotation(self) -> str:
        return f"rollwise.dev/{self.value}"


#: ``status.handledRequests`` key of the override whose requests were applied (kept apart from
#: the annotation requests' keys, so the two sources never re-trigger each other).
OVERRIDE_HANDLED_KEY = "override"


@dataclass(frozen=True)
class ManualRequest:
    """One manual request; ``user`` and ``confirmed_by`` name who made and who confirmed
    it when an override stands for it (an annotation request names no one)."""

    kind: RequestKind
    id: str
    user: str = ""
    confirmed_by: str = ""


def requests_from_annotations(annotations: Mapping[str, str] | None) -> tuple[ManualRequest, ...]:
    """The manual requests carried by an object's annotations (empty values are ignored)."""
    found: list[ManualRequest] = []
    for kind in RequestKind:
        value = (annotations or {}).get(kind.annotation)
        if value:
            found.append(ManualRequest(kind=kind, id=value))
    return tuple(found)


@dataclass(frozen=True)
class Hold:
    """A hold override in effect (``kubectl rollwise override --decision hold``): ``user`` is
    the identity the webhook recorded, ``id`` the override's id."""

    id: str
    user: str
    reason: str


@dataclass(frozen=True)
class StepApproval:
    """An approval of an approval step as the webhook recorded it (signed): ``user`` holding
    ``role`` approved ``revision`` at the step of index ``step`` (0-based)."""

    role: str
    user: str
    revision: str
    step: int
    at: datetime


@dataclass(frozen=True)
class TemplateAuthor:
    """Who last changed the pod template, as the webhook recorded it (signed): the template
    then became ``revision``."""

    user: str
    revision: str
    at: datetime


@dataclass(frozen=True)
class UpstreamRead:
    """What the runtime read of an upstream Rollout (``spec.promotion.after``): whether it
    exists, and from its status its phase, stable and canary revisions and when its stable
    revision became Healthy (``status.healthySince``)."""

    namespace: str
    rollout: str
    found: bool = True
    phase: str | None = None
    stable_revision: str | None = None
    canary_revision: str | None = None
    healthy_since: datetime | None = None


@dataclass(frozen=True)
class WebhookAnswer:
    """What a gating webhook answered this pass (``name``, as in the spec) to its call number
    ``attempt`` for ``revision``: ``code`` the HTTP status (None: no answer: refused,
    unreachable or too slow), ``detail`` what went wrong (empty on a 2xx). The attempt makes
    recording it idempotent: an answer already recorded is not counted again."""

    name: str
    revision: str
    attempt: int
    code: int | None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.code is not None and 200 <= self.code < 300


@dataclass(frozen=True)
class Observations:
    """Everything observed this pass.

    ``template_hash``: :func:`revision_of` of the current ``spec.template``.
    ``generation``: ``metadata.generation`` of the Rollout.
    ``revisions``: every operator-owned revision Deployment found, by revision id.
    ``actual_weight``: the canary weight the router reports now (None: unknown/unreadable).
    ``actual_baseline_weight``: the baseline's weight the router reports now, read only when
    the Rollout runs with a baseline (None: not read, unknown or unreadable).
    ``actual_header_routes``: the header routes the operator added that the router carries now,
    read only for a Rollout with setHeaderRoute steps or routes in effect (None: not read).
    ``actual_mirror_routes``: likewise the mirrors the operator added that the router carries
    now (setMirrorRoute steps).
    ``stable_service_exists`` / ``canary_service_exists``: whether the Services exist (the
    operator points them, it does not create them: a missing one blocks the rollout);
    ``baseline_service_exists`` likewise for ``baselineService`` (True when none is named).
    ``measurements``: metric name → result, for the metrics that were due.
    ``requests``: manual requests found in annotations.
    ``missing_references``: objects the spec names that do not exist (a Service, the
    HTTPRoute), one message each; any makes the spec invalid for this pass (no actions).
    ``hold``: a hold override in effect: the rollout pauses as under ``spec.paused``.
    ``override_requests``: the manual requests an override in effect stands for (see
    :func:`rollwise.core.overrides.rollout_effect`); applied once, remembered in
    ``status.handledRequests["override"]`` apart from the annotation requests.
    ``override_waiting``: a promote override waiting for its confirmation, for the message.
    ``query_check``: the provider's verdict on the spec's queries, when the runtime checked
    them this pass (:func:`rollwise.core.querycheck.check_due` said so).
    ``events_posted``: the sequence number up to which the runtime knows the logged events
    were posted (:mod:`rollwise.core.events`).
    ``templates``: the analysis templates the spec references, as read this pass (a key
    without a value, or None: not found); :mod:`rollwise.core.templates` resolves them.
    ``route_rejected``: why the routing object does not carry the weight as accepted
    (``TrafficRouter.verify`` said no: its Gateway did not accept the HTTPRoute, or Istio did
    not reconcile the VirtualService); empty when it does, or when nothing was checked.
    ``upstreams``: the upstream Rollouts of ``spec.promotion.after`` by (namespace, name), read
    only while a new revision may wait for them (absent: not read this pass).
    ``webhook_answers``: the gating webhooks called this pass (those
    :func:`rollwise.core.rollout.webhooks.due_webhooks` named), by name.
    ``approvals``: the signed approvals of approval steps on the object; ``template_author``:
    who last changed the template (None: not recorded), whom none of them may come from.
    ``name``: the object's name, for the commands messages suggest (empty: not known).
    """

    template_hash: str
    generation: int
    revisions: Mapping[str, RevisionState] = field(default_factory=dict)
    actual_weight: int | None = None
    actual_baseline_weight: int | None = None
    actual_header_routes: tuple[HeaderRoute, ...] | None = None
    actual_mirror_routes: tuple[MirrorRoute, ...] | None = None
    stable_service_exists: bool = True
    canary_service_exists: bool = True
    baseline_service_exists: bool = True
    measurements: Mapping[str, Measurement] = field(default_factory=dict)
    requests: tuple[ManualRequest, ...] = ()
    missing_references: tuple[str, ...] = ()
    hold: Hold | None = None
    override_requests: tuple[ManualRequest, ...] = ()
    override_waiting: str = ""
    query_check: QueryCheck | None = None
    events_posted: int = 0
    route_rejected: str = ""
    templates: Mapping[TemplateKey, TemplateRead | None] = field(default_factory=dict)
    upstreams: Mapping[tuple[str, str], UpstreamRead] = field(default_factory=dict)
    webhook_answers: Mapping[str, WebhookAnswer] = field(default_factory=dict)
    approvals: tuple[StepApproval, ...] = ()
    template_author: TemplateAuthor | None = None
    name: str = ""
