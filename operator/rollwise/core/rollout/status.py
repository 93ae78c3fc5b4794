"""The Rollout's status: everything the decision core remembers between passes.

All progress lives here (DESIGN §2), so a restarted operator continues exactly where the last
one stopped. Models are frozen; the core builds a new status with ``model_copy(update=...)``
and the runtime patches it once, skipping the patch when it compares equal to the old one.

Unknown fields are ignored rather than refused (unlike the spec models): a status written by
a newer or older operator version must never make this one fail to read its own object.
Times are timezone-aware datetimes, serialized as RFC 3339 with a ``Z`` suffix.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from rollwise.core.decision import Decision
from rollwise.core.events import EventLog
from rollwise.core.phases import Phase
from rollwise.core.postpromotion import PostPromotionStatus
from rollwise.core.querycheck import QueryVerification
from rollwise.core.runs import AnalysisRun
from rollwise.core.status_model import ConditionedStatus, ConditionModel, StatusModel, Time


class PauseReason(StrEnum):
    """Why the rollout is paused (``status.pauseReason``)."""

    PAUSE_STEP = "PauseStep"
    SPEC_PAUSED = "SpecPaused"
    ANALYSIS_INCONCLUSIVE = "AnalysisInconclusive"
    OVERRIDE_HOLD = "OverrideHold"
    #: Advisory mode: the step reached its gate and waits for a promote or an abort.
    AWAITING_DECISION = "AwaitingDecision"
    #: A confirmed post-promotion regression with action hold keeps a new revision waiting.
    REGRESSION_HOLD = "RegressionHold"
    #: A confirm-rollout or confirm-promotion webhook has not answered 2xx yet.
    AWAITING_CONFIRMATION = "AwaitingConfirmation"
    #: An approval step waits for its approvals.
    AWAITING_APPROVAL = "AwaitingApproval"
    #: An approval step's timeout passed without every approval: it keeps holding.
    APPROVAL_TIMED_OUT = "ApprovalTimedOut"
    #: Blue-green: the preview is ready and waits for a promotion to switch.
    AWAITING_PROMOTION = "AwaitingPromotion"


class ConditionType(StrEnum):
    """Standard condition types on a Rollout.

    ``Ready``: the rollout is Healthy (one stable revision at 100%, available): what
    ``kubectl wait --for=condition=Ready`` after an apply should wait for.
    ``Available``: at least ``spec.replicas`` pods (stable plus canary) are available, i.e.
    the workload serves at full capacity, whether or not a canary is in progress.
    ``Progressing``: True while a revision is being rolled out; False with reason
    ``ProgressDeadlineExceeded``, ``RolledBack`` or ``Aborted`` when stuck or rolled back.
    ``Paused``: True with reason PauseStep, SpecPaused, AnalysisInconclusive, OverrideHold,
    AwaitingApproval or ApprovalTimedOut.
    ``Degraded``: True when rolled back, aborted, past the progress deadline or invalid.
    ``InvalidSpec``: True with the validation messages when the spec is invalid.
    ``QueriesVerified``: whether the provider parsed every metric query of the spec (True),
    refused one (False, with ``InvalidSpec``) or could not be asked yet (Unknown); only on
    Rollouts that have metrics.
    ``RouteAccepted``: False while the routing object does not report the weight as accepted
    (its Gateway did not accept the HTTPRoute, Istio did not reconcile the VirtualService);
    absent otherwise.
    """

    READY = "Ready"
    AVAILABLE = "Available"
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    DEGRADED = "Degraded"
    INVALID_SPEC = "InvalidSpec"
    QUERIES_VERIFIED = "QueriesVerified"
    ROUTE_ACCEPTED = "RouteAccepted"


class Condition(ConditionModel[ConditionType]):
    """A standard Kubernetes condition of a Rollout."""


class RetiredRevision(StatusModel):
    """A previous stable revision kept for a quick revert until ``removeAt``."""

    revision: str
    remove_at: Time


class BaselineStatus(StatusModel):
    """The baseline running beside the canary (``strategy.canary.baseline``): its revision id
    (the ``{{baselineRevision}}`` of queries), the share of traffic it is given, and its
    pods."""

    revision: str
    stable_revision: str
    weight: int = 0
    replicas: int = 0
    available_replicas: int = 0


class BlueGreenStatus(StatusModel):
    """Where a blue-green Rollout stands (``strategy.blueGreen``): the revision the active
    Service selects, the one the preview Service selects while a new revision waits, when the
    preview became ready, and the last switch."""

    active_revision: str | None = None
    preview_revision: str | None = None
    preview_ready_at: Time | None = None
    """When the preview's pods became available (None while they are not yet)."""
    switched_at: Time | None = None
    """When the active Service's selector last moved to a new revision."""
    previous_revision: str | None = None
    """The revision the active Service selected before the last switch."""
    scale_down_at: Time | None = None
    """When the previous revision is removed (None once it is)."""


def step_text(current_step_index: int | None, steps: int) -> str | None:
    """``status.step``: the 0-based ``current_step_index`` as the 1-based ``N/steps`` people
    read (``kubectl get rollouts`` shows it); the last step once every step is done (the
    index then equals the number of steps); None without a canary or steps."""
    if current_step_index is None or steps <= 0:
        return None
    return f"{min(max(current_step_index, 0) + 1, steps)}/{steps}"


class ActiveHeaderRoute(StatusModel):
    """A header route in effect: requests matching every entry of ``match`` go to the canary."""

    name: str
    match: list[str] = Field(default_factory=list)


class ActiveMirrorRoute(StatusModel):
    """A mirror in effect: ``percentage`` of the routed requests are copied to the canary."""

    name: str
    percentage: int


class WebhookResult(StrEnum):
    """Where a gating webhook stands for a revision (``status.webhooks[].result``).

    ``Pending``: due, not called yet. ``Held``: a confirm webhook answered something other
    than 2xx (or nothing in time): asked again. ``Passed``: it answered 2xx. ``Failed``: a
    pre-rollout webhook did not answer 2xx (the canary is rolled back), or a rollback webhook
    did not (recorded only).
    """

    PENDING = "Pending"
    HELD = "Held"
    PASSED = "Passed"
    FAILED = "Failed"


class WebhookCall(StatusModel):
    """The last call of one gating webhook (``status.webhooks[]``), for ``revision``."""

    name: str
    type: str
    revision: str
    result: WebhookResult = WebhookResult.PENDING
    code: int | None = None
    """The HTTP status it answered (None: no answer: not called yet, refused or timed out)."""
    message: str = ""
    last_call: Time | None = None
    calls: int = 0


class GivenApproval(StatusModel):
    """An approval as the approval step counts it: ``user`` approved as ``role``."""

    role: str
    user: str
    at: Time


class ApprovalStatus(StatusModel):
    """The approval step the canary is at (``stepIndex``, 0-based as ``currentStepIndex``):
    the roles it asks for, those ``granted`` and those still ``pending``, when it was
    requested and its ``deadline`` (None: no timeout), whether it ``timedOut``, who changed the
    template (``templateChangedBy``, who may approve none of it) and the approvals not counted
    (``refused``, with why)."""

    step_index: int
    revision: str
    roles: list[str] = Field(default_factory=list)
    granted: list[GivenApproval] = Field(default_factory=list)
    pending: list[str] = Field(default_factory=list)
    refused: list[str] = Field(default_factory=list)
    requested_at: Time
    deadline: Time | None = None
    timed_out: bool = False
    approved_at: Time | None = None
    template_changed_by: str | None = None


class RolloutStatus(ConditionedStatus[ConditionType, Condition]):
    """``status`` of a Rollout."""

    condition_model = Condition

    phase: Phase | None = None
    message: str = ""
    observed_generation: int | None = None
    current_step_index: int | None = None
    step: str | None = None
    """The step in progress as people read it: 1-based, out of the number of steps
    (``2/5``, as events and the plugin say it); None when no canary runs. See
    :func:`step_text`."""
    canary_weight: int = 0
    stable_revision: str | None = None
    canary_revision: str | None = None
    baseline: BaselineStatus | None = None
    blue_green: BlueGreenStatus | None = None
    header_routes: list[ActiveHeaderRoute] | None = None
    """The header routes in effect while a canary runs (None: none)."""
    mirror_routes: list[ActiveMirrorRoute] | None = None
    """The mirrors in effect while a canary runs (None: none)."""
    step_started_at: Time | None = None
    pause_started_at: Time | None = None
    pause_reason: PauseReason | None = None
    aborted: bool = False
    rolled_back_revision: str | None = None
    progress_started_at: Time | None = None
    deadline_exceeded: bool = False
    analysis: AnalysisRun | None = None
    decision: Decision | None = None
    post_promotion: PostPromotionStatus | None = None
    handled_requests: dict[str, str] = Field(default_factory=dict)
    retired_revisions: list[RetiredRevision] = Field(default_factory=list)
    conditions: list[Condition] = Field(default_factory=list)
    replicas: int = 0
    available_replicas: int = 0
    selector: str = ""
    queries: QueryVerification | None = None
    healthy_since: Time | None = None
    """When the stable revision last became Healthy (None while the phase is not Healthy):
    what a downstream Rollout's ``spec.promotion.after`` soaks against."""
    awaiting_upstream: str | None = None
    """The revision that waits for its upstream Rollouts (``spec.promotion.after``)."""
    webhooks: list[WebhookCall] | None = None
    """The gating webhooks' last calls, one per webhook of the spec (None: none called)."""
    approvals: ApprovalStatus | None = None
    """The approval step the canary is at, or last passed (None: none in this canary)."""
    event_log: EventLog = Field(default_factory=EventLog)
