"""The ModelRelease's status: everything its decision core remembers between passes.

Same conventions as :mod:`rollwise.core.rollout.status` (frozen pydantic models, camelCase on the
wire, unknown fields ignored, RFC 3339 times). The fields users and tools read are the CRD's:
``stage``, ``phase``, ``message``, ``conditions``, ``alias``, ``history`` (``stage``, ``time``,
``reason``, ``message``, ``user``, plus ``from``) and ``gates`` (``name``, ``status``,
``reason``, ``message``, ``lastTransitionTime``, plus ``checkedAt`` and ``waiverExpiresAt``);
``serving``, ``approvals``, ``revoked``, ``approvedContent``, ``voidedApprovals``,
``contentChanged`` and ``overridesSeq`` are the operator's bookkeeping (the CRD preserves
unknown status fields).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field

from rollwise.core.decision import Decision
from rollwise.core.events import EventLog
from rollwise.core.postpromotion import PostPromotionStatus
from rollwise.core.querycheck import QueryVerification
from rollwise.core.runs import AnalysisRun
from rollwise.core.status_model import ConditionedStatus, ConditionModel, StatusModel, Time

#: How many stage transitions ``status.history`` keeps (oldest dropped first).
MAX_HISTORY = 50


class Stage(StrEnum):
    """Where the release is. ``RolledBack`` and ``Revoked`` are terminal."""

    CANDIDATE = "Candidate"
    STAGING = "Staging"
    APPROVED = "Approved"
    PRODUCTION = "Production"
    ROLLED_BACK = "RolledBack"
    REVOKED = "Revoked"

    @property
    def terminal(self) -> bool:
        return self in (Stage.ROLLED_BACK, Stage.REVOKED)


class ReleasePhase(StrEnum):
    """One-word summary of the stage's progress.

    ``Progressing``: the canary runs or the cluster/registry is catching up with an action.
    ``Waiting``: held by a gate, approvals or a freeze window (a human or time unblocks it).
    ``Queued``: another release of the same model and alias is in progress.
    ``Healthy``: in Production with the alias verified.
    ``Degraded``: rolled back, revoked, refused or invalid.
    """

    PROGRESSING = "Progressing"
    WAITING = "Waiting"
    QUEUED = "Queued"
    HEALTHY = "Healthy"
    DEGRADED = "Degraded"


class GateStatus(StrEnum):
    PASSED = "Passed"
    FAILED = "Failed"
    PENDING = "Pending"
    WAIVED = "Waived"


class ReleaseConditionType(StrEnum):
    """Conditions on a ModelRelease.

    ``Ready``: in Production with the alias read back on this version (``kubectl wait``).
    ``Progressing``: True while the release moves; its reason is the current stage.
    ``GatesPassed``: whether every gate that applies so far passes (failing gates named).
    ``Queued``: True while another release of the same model and alias goes first.
    ``Degraded``: rolled back, revoked or refused (a revoked version).
    ``InvalidSpec``: the spec is invalid (messages) or the version was revoked before.
    ``QueriesVerified``: whether the provider parsed every query of the canary's analysis
    (True), refused one (False, with ``InvalidSpec``) or could not be asked yet (Unknown);
    only on releases whose canary has metrics.
    ``RevalidationDue``: True once ``spec.revalidateBy`` has passed (reason ``Overdue``), False
    before it (``Scheduled``); only on releases that set the date.
    """

    READY = "Ready"
    PROGRESSING = "Progressing"
    GATES_PASSED = "GatesPassed"
    QUEUED = "Queued"
    DEGRADED = "Degraded"
    INVALID_SPEC = "InvalidSpec"
    QUERIES_VERIFIED = "QueriesVerified"
    REVALIDATION_DUE = "RevalidationDue"


class ReleaseCondition(ConditionModel[ReleaseConditionType]):
    """A standard Kubernetes condition of a ModelRelease."""


class GateRecord(StatusModel):
    """One gate as ``kubectl rollwise get modelrelease`` shows it."""

    name: str
    status: GateStatus
    reason: str
    message: str = ""
    checked_at: Time | None = None
    waiver_expires_at: Time | None = None
    last_transition_time: Time | None = None


class HistoryEntry(StatusModel):
    """One stage transition: ``from`` → ``stage`` at ``time``, ``reason``, by ``user``."""

    from_stage: Stage | None = Field(default=None, alias="from")
    stage: Stage
    time: Time
    reason: str
    message: str = ""
    user: str | None = None


class AliasStatus(StatusModel):
    """The registry alias as last read back, and the rollback target.

    ``previous*``: what the alias pointed at before this release (recorded from readings taken
    before the flip, so a crash between flip and status patch never loses it).
    ``flipRequested``: a flip to this version was issued (it may not have happened).
    ``held``: the alias was read back pointing at this version at least once.
    ``lastError``: the last read/flip error reported by the store.
    """

    name: str
    current_version: str | None = None
    previous_version: str | None = None
    previous_uri: str | None = None
    previous_digest: str | None = None
    flip_requested: bool = False
    held: bool = False
    restored: bool = False
    last_error: str | None = None


class ApprovalRecord(StatusModel):
    role: str
    user: str
    at: Time


class RevokeRecord(StatusModel):
    request: str
    reason: str
    user: str | None = None
    at: Time
    from_stage: Stage = Field(alias="from")


class ServingStatus(StatusModel):
    """Canary progress of the release's serving backend.

    ``revision``: the release's revision (child Rollout template hash, or the KServe revision
    name once it is ready); ``stableRevision``: the KServe revision it is compared against.
    ``stepIndex``/``weight``/``analysis``: the canary's progress (for a child Rollout,
    mirrored from it). ``passed``: the version serves 100% and passed. ``failure``: why the
    canary failed. ``previousTemplate``/``previousStorageUri``: what served before this
    release, for revoke. ``solo``: nothing served before this release (the first one through
    a new child Rollout): the canary analysis runs on this version alone, from
    ``soloStartedAt``, once it serves. ``trafficOff``: how traffic is taken off on rollback/revoke
    (``revert``: back to what served before; ``pin``: canaryTrafficPercent 0; ``none``:
    nothing to do), decided once so that later passes re-assert the same actions.
    """

    backend: str
    name: str
    revision: str | None = None
    stable_revision: str | None = None
    step_index: int = 0
    weight: int = 0
    step_started_at: Time | None = None
    analysis: AnalysisRun | None = None
    passed: bool = False
    failure: str | None = None
    previous_template: dict[str, Any] | None = None
    previous_storage_uri: str | None = None
    traffic_off: str | None = None
    solo: bool = False
    solo_started_at: Time | None = None


class ModelReleaseStatus(ConditionedStatus[ReleaseConditionType, ReleaseCondition]):
    """``status`` of a ModelRelease."""

    condition_model = ReleaseCondition

    stage: Stage | None = None
    phase: ReleasePhase | None = None
    message: str = ""
    observed_generation: int | None = None
    conditions: list[ReleaseCondition] = Field(default_factory=list)
    gates: list[GateRecord] = Field(default_factory=list)
    history: list[HistoryEntry] = Field(default_factory=list)
    alias: AliasStatus | None = None
    serving: ServingStatus | None = None
    #: The decision on the canary's current step: the release's own (a KServe canary, or a
    #: first release analysed alone), or the child Rollout's, mirrored while the child runs
    #: the canary; the last one stays once the canary ended.
    decision: Decision | None = None
    #: The regression watch of the version once in Production (canary.postPromotion).
    post_promotion: PostPromotionStatus | None = None
    approvals: list[ApprovalRecord] = Field(default_factory=list)
    revoked: RevokeRecord | None = None
    queued_behind: str | None = None
    emergency_announced: bool = False
    queries: QueryVerification | None = None
    event_log: EventLog = Field(default_factory=EventLog)
    #: What decided what runs when the release was approved (``release_content``): a later
    #: change holds the promotion and is never applied.
    approved_content: dict[str, str] | None = None
    #: The approvals reported as no longer counting (``role/user: fields``), each once.
    voided_approvals: list[str] = Field(default_factory=list)
    #: The fields found changed after approval, reported once per distinct set.
    content_changed: list[str] = Field(default_factory=list)
    #: The highest counter of the signed override list seen: an older list put back is not
    #: trusted.
    overrides_seq: int = 0

    def gate(self, name: str) -> GateRecord | None:
        for record in self.gates:
            if record.name == name:
                return record
        return None
