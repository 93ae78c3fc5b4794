"""The Rollout's status: everything the decision core remembers between passes.

All progress lives here (DESIGN §2), so a restarted operator continues exactly where the last
one stopped. Models are frozen; the core builds a new status with ``model_copy(update=...)``
and the runtime patches it once, skipping the patch when it compares equal to the old one.

Unknown fields are ignored rather than refused (unlike the spec models): a status written by
a newer or older operator version must never make this one fail to read its own object.
Times are timezone-aware datetimes, serialized as RFC 3339 with a ``Z`` suffix.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from rollwise.core.events import EventLog
from rollwise.core.querycheck import QueryVerification
from rollwise.core.status_model import StatusModel, Time


class Phase(StrEnum):
    """The one-word summary ``kubectl get rollouts`` shows.

    ``Progressing``: a revision is being rolled out (or the first one is becoming available).
    ``Paused``: waiting for a human or a timer (pause step, spec.paused, inconclusive analysis).
    ``Healthy``: one stable revision serves all traffic and is available.
    ``Degraded``: rolled back, aborted, invalid spec or progress deadline exceeded.
    """

    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    HEALTHY = "Healthy"
    DEGRADED = "Degraded"


class Verdict(StrEnum):
    """Three-valued outcome of a measurement, a metric or a step's analysis."""

    PASS = "Pass"
    FAIL = "Fail"
    INCONCLUSIVE = "Inconclusive"


class PauseReason(StrEnum):
    """Why the rollout is paused (``status.pauseReason``)."""

    PAUSE_STEP = "PauseStep"
    SPEC_PAUSED = "SpecPaused"
    ANALYSIS_INCONCLUSIVE = "AnalysisInconclusive"
    OVERRIDE_HOLD = "OverrideHold"


class ConditionType(StrEnum):
    """Standard condition types on a Rollout.

    ``Ready``: the rollout is Healthy (one stable revision at 100%, available): what
    ``kubectl wait --for=condition=Ready`` after an apply should wait for.
    ``Available``: at least ``spec.replicas`` pods (stable plus canary) are available, i.e.
    the workload serves at full capacity, whether or not a canary is in progress.
    ``Progressing``: True while a revision is being rolled out; False with reason
    ``ProgressDeadlineExceeded``, ``RolledBack`` or ``Aborted`` when stuck or rolled back.
    ``Paused``: True with reason PauseStep, SpecPaused, AnalysisInconclusive or OverrideHold.
    ``Degraded``: True when rolled back, aborted, past the progress deadline or invalid.
    ``InvalidSpec``: True with the validation messages when the spec is invalid.
    ``QueriesVerified``: whether the provider parsed every metric query of the spec (True),
    refused one (False, with ``InvalidSpec``) or could not be asked yet (Unknown); only on
    Rollouts that have metrics.
    """

    READY = "Ready"
    AVAILABLE = "Available"
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    DEGRADED = "Degraded"
    INVALID_SPEC = "InvalidSpec"
    QUERIES_VERIFIED = "QueriesVerified"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(StatusModel):
    """A standard Kubernetes condition."""

    type: ConditionType
    status: ConditionStatus
    reason: str
    message: str = ""
    last_transition_time: Time
    observed_generation: int | None = None


class MeasurementRecord(StatusModel):
    """One measurement kept in status (the last few per metric)."""

    value: float | None = None
    verdict: Verdict
    at: Time
    message: str = ""
    error: bool = False
    non_finite: str | None = None
    """What the query returned when it was not a finite number (``nan``, ``inf``, ``-inf``);
    ``value`` is then absent (JSON has no such numbers)."""


#: How many measurements per metric the status keeps (the counters keep the totals).
KEPT_MEASUREMENTS = 10


class MetricRun(StatusModel):
    """Counters and recent measurements of one metric within one step's analysis."""

    name: str
    measurements: list[MeasurementRecord] = Field(default_factory=list)
    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    error: int = 0
    consecutive_errors: int = 0
    verdict: Verdict | None = None
    message: str = ""

    @property
    def taken(self) -> int:
        """Measurements that count towards ``count`` (provider errors do not)."""
        return self.successful + self.failed + self.inconclusive

    @property
    def last_at(self) -> datetime | None:
        return self.measurements[-1].at if self.measurements else None


class AnalysisRun(StatusModel):
    """The analysis of one step of one canary revision."""

    step_index: int
    revision: str
    started_at: Time
    metrics: list[MetricRun] = Field(default_factory=list)
    verdict: Verdict | None = None
    message: str = ""

    def metric(self, name: str) -> MetricRun | None:
        for run in self.metrics:
            if run.name == name:
                return run
        return None


class RetiredRevision(StatusModel):
    """A previous stable revision kept for a quick revert until ``removeAt``."""

    revision: str
    remove_at: Time


def step_text(current_step_index: int | None, steps: int) -> str | None:
    """``status.step``: the 0-based ``current_step_index`` as the 1-based ``N/steps`` people
    read (``kubectl get rollouts`` shows it); the last step once every step is done (the
    index then equals the number of steps); None without a canary or steps."""
    if current_step_index is None or steps <= 0:
        return None
    return f"{min(max(current_step_index, 0) + 1, steps)}/{steps}"


class RolloutStatus(StatusModel):
    """``status`` of a Rollout."""

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
    step_started_at: Time | None = None
    pause_started_at: Time | None = None
    pause_reason: PauseReason | None = None
    aborted: bool = False
    rolled_back_revision: str | None = None
    progress_started_at: Time | None = None
    deadline_exceeded: bool = False
    analysis: AnalysisRun | None = None
    handled_requests: dict[str, str] = Field(default_factory=dict)
    retired_revisions: list[RetiredRevision] = Field(default_factory=list)
    conditions: list[Condition] = Field(default_factory=list)
    replicas: int = 0
    available_replicas: int = 0
    selector: str = ""
    queries: QueryVerification | None = None
    event_log: EventLog = Field(default_factory=EventLog)

    def condition(self, type_: ConditionType) -> Condition | None:
        for cond in self.conditions:
            if cond.type is type_:
                return cond
        return None

    def with_condition(
        self,
        type_: ConditionType,
        status: ConditionStatus,
        *,
        reason: str,
        message: str,
        now: datetime,
        generation: int | None,
    ) -> RolloutStatus:
        """A copy with the condition set; ``lastTransitionTime`` moves only when the condition's
        status changes. Conditions are kept in :class:`ConditionType` order so that the same
        state always serializes the same way."""
        old = self.condition(type_)
        since = old.last_transition_time if old is not None and old.status is status else now
        new = Condition(
            type=type_,
            status=status,
            reason=reason,
            message=message,
            last_transition_time=since,
            observed_generation=generation,
        )
        others = [c for c in self.conditions if c.type is not type_]
        order = list(ConditionType)
        conditions = sorted([*others, new], key=lambda c: order.index(c.type))
        return self.model_copy(update={"conditions": conditions})

    def without_condition(self, type_: ConditionType) -> RolloutStatus:
        """A copy without the condition (the same object when it has none)."""
        if self.condition(type_) is None:
            return self
        return self.model_copy(
            update={"conditions": [c for c in self.conditions if c.type is not type_]}
        )

    def is_true(self, type_: ConditionType) -> bool:
        cond = self.condition(type_)
        return cond is not None and cond.status is ConditionStatus.TRUE

    def to_wire(self) -> dict[str, object]:
        """The status as the API server stores it (camelCase, RFC 3339 times)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
