"""What a ModelRelease pass observes: the gate names, the gates' results, approvals, the alias
as read back, the serving backend's state, and the overrides' decisions.

Pure data: the runtime builds these from the cluster, the registry and the signed records.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from rollwise.core.decision import Decision
from rollwise.core.modelrelease.overrides import ReleaseOverride
from rollwise.core.modelrelease.status import (
    GateStatus,
)
from rollwise.core.observations import Measurement, TemplateKey, TemplateRead
from rollwise.core.phases import Phase
from rollwise.core.querycheck import (
    QueryCheck,
)

#: How often to look again while waiting on the cluster or the alias store.
POLL_SECONDS = 5.0


#: How often to look again while waiting on gates, approvals, a freeze window or the queue.
GATE_POLL_SECONDS = 30.0


GATE_ARTIFACT = "artifact-digest"


GATE_SBOM = "sbom"


GATE_POLICY = "policy-digest"


GATE_MODEL_CARD = "model-card"


GATE_SECURITY = "security-decision"


#: Sigstore evidence: a signature of the artifact's digest and an attestation about it.
GATE_SIGNATURE = "signature"


GATE_ATTESTATION = "attestation"


GATE_REVALIDATE = "revalidate-by"


#: The Rego policy's decision points, as gates: accept (into Staging), promote (Approved on).
GATE_POLICY_ACCEPT = "policy-accept"


GATE_POLICY_PROMOTE = "policy-promote"


#: The Rego policy's canary point: whether the release's canary may go on (evaluated while it
#: runs in Staging; a denial rolls the canary back, and the canary passes only once allowed).
GATE_POLICY_CANARY = "policy-canary"


GATE_APPROVALS = "approvals"


GATE_FREEZE = "freeze-window"


#: The role whose approval lets an emergency change pass a freeze window.
EXECUTIVE_ROLE = "executive"


BACKEND_TEMPLATE = "template"


BACKEND_KSERVE = "inferenceService"


@dataclass(frozen=True)
class GateResult:
    """A gate's result as an adapter reported it.

    ``status`` Waived carries the gate's own result in ``underlying`` (Pending when unknown),
    which applies again once ``waiver_expires_at`` has passed. ``freeze-window`` reports Failed
    while a freeze window is open (its message names the window and when it ends).
    ``recheck_at``: when the result is due to change by itself (a freeze window's end): the
    release looks again then rather than at its next poll.
    """

    name: str
    status: GateStatus
    message: str = ""
    checked_at: datetime | None = None
    waiver_expires_at: datetime | None = None
    underlying: GateStatus | None = None
    recheck_at: datetime | None = None


@dataclass(frozen=True)
class Approval:
    """An approval recorded by the admission webhook: ``user`` is the API server's identity."""

    role: str
    user: str
    at: datetime
    version: str


@dataclass(frozen=True)
class VoidedApproval:
    """A signed approval that does not count: ``fields`` changed since it was given (empty:
    it was recorded before approvals were bound to the release's content)."""

    role: str
    user: str
    fields: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.role}/{self.user}: {', '.join(self.fields) or 'unbound'}"

    def describe(self) -> str:
        changed = ", ".join(self.fields) or "the release's content (recorded unbound)"
        return f"{self.role} by {self.user} (given before {changed} changed)"


@dataclass(frozen=True)
class AliasReading:
    """The alias read back from its store: ``version`` None when the alias is unset;
    ``error`` set when the store could not be read (or refused the last flip)."""

    version: str | None = None
    uri: str | None = None
    digest: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class ChildRolloutState:
    """The child Rollout (template serving) as read from its status.

    ``decision``: the child's ``status.decision`` (:func:`child_decision`), which the release
    mirrors into its own while the child runs its canary."""

    exists: bool = True
    phase: Phase | None = None
    canary_weight: int = 0
    current_step_index: int | None = None
    stable_revision: str | None = None
    canary_revision: str | None = None
    rolled_back_revision: str | None = None
    message: str = ""
    template: Mapping[str, Any] | None = None
    decision: Decision | None = None


def child_decision(raw: object) -> Decision | None:
    """The child Rollout's ``status.decision`` as the core's :class:`Decision`; None when there
    is none or it cannot be read (a decision written by another operator version is ignored,
    never a failed pass)."""
    if not isinstance(raw, Mapping) or not raw:
        return None
    try:
        return Decision.model_validate(raw)
    except (ValidationError, ValueError, TypeError):
        return None


@dataclass(frozen=True)
class InferenceServiceState:
    """The KServe InferenceService's predictor: spec fields read back and status revisions.

    ``latest_percent``: the traffic share status reports for the latest revision.
    ``observed_current``: the KServe controller observed the latest spec (status not stale).
    """

    exists: bool = True
    storage_uri: str | None = None
    canary_traffic_percent: int | None = None
    latest_created_revision: str | None = None
    latest_ready_revision: str | None = None
    latest_rolledout_revision: str | None = None
    previous_rolledout_revision: str | None = None
    latest_percent: int | None = None
    observed_current: bool = True


@dataclass(frozen=True)
class RevokeRequest:
    """``kubectl rollwise revoke``: ``user`` is the identity the webhook recorded."""

    id: str
    reason: str
    user: str | None
    at: datetime


@dataclass(frozen=True)
class ReleaseObservations:
    """Everything observed this pass.

    ``name``: the ModelRelease's ``metadata.name``. ``generation``: its ``metadata.generation``.
    ``gates``: gate results, one per gate (a second result for the same gate is ignored;
    approvals are not a reported gate: the core computes that gate from ``approvals``, and an
    ``approvals`` entry here is ignored). ``version_set_by``: who set
    ``spec.version`` (never a valid approver). ``digest_previously_approved``: the artifact
    digest was Approved in an earlier release. ``version_revoked_before``: another release
    revoked this version. ``blocking_release``: the release holding the (model, alias) slot,
    when it is another one. ``alias``: None when not read this pass. ``manifest_written``: the
    release manifest ConfigMap exists. ``override``: the override in effect for this version:
    ``hold`` stops every stage transition and alias flip (and pauses the child Rollout);
    ``rollback`` ends the release RolledBack, traffic and alias back as for a revoke but
    without entering the revocation ledger; a confirmed ``promote`` lets this version's failed
    gates pass (Waived, reason ``Overridden``); approvals are never overridden.
    ``approvals`` are those bound to the spec's current content (:func:`release_content`);
    ``voided_approvals``: signed approvals given for another content, which do not count.
    ``overrides_seq``: the counter of the verified override list (remembered in status, so
    that an older list put back is recognised).
    """

    name: str
    generation: int
    gates: tuple[GateResult, ...] = ()
    approvals: tuple[Approval, ...] = ()
    version_set_by: str | None = None
    digest_previously_approved: bool = False
    version_revoked_before: bool = False
    blocking_release: str | None = None
    alias: AliasReading | None = None
    child: ChildRolloutState | None = None
    inference_service: InferenceServiceState | None = None
    measurements: Mapping[str, Measurement] = field(default_factory=dict)
    revoke: RevokeRequest | None = None
    manifest_written: bool = False
    override: ReleaseOverride | None = None
    query_check: QueryCheck | None = None
    events_posted: int = 0
    reference_errors: tuple[str, ...] = ()
    voided_approvals: tuple[VoidedApproval, ...] = ()
    overrides_seq: int = 0
    #: The analysis templates the release's own canary references, as read this pass
    #: (:func:`rollwise.core.templates.release_template_keys`; not found: None or no key).
    templates: Mapping[TemplateKey, TemplateRead | None] = field(default_factory=dict)


#: Override decisions (``kubectl rollwise override``), as :mod:`rollwise.core.overrides` names them.
OVERRIDE_PROMOTE = "promote"


OVERRIDE_HOLD = "hold"


OVERRIDE_ROLLBACK = "rollback"


#: The gate reason of a failed gate a confirmed promote override lets pass.
OVERRIDDEN = "Overridden"
