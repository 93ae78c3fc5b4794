"""Decisions that explain themselves: expand, hold or rollback, with a confidence derived from
the evidence, reason codes and the actions required (``status.decision``).

:func:`build_decision` turns one pass's evidence about a canary step into a
:class:`Decision`: the threshold metrics' runs (:class:`~rollwise.core.rollout.status.MetricRun`,
failure limits already applied by :mod:`rollwise.core.analysis`), the compare metrics'
results (:mod:`rollwise.core.compare`, scored together by :mod:`rollwise.core.scoring`), the
SLO burn-rate results (:mod:`rollwise.core.burnrate`), how long the canary was observed, and
the mode. Pure: ``now`` is an argument; the caller stores the decision and acts on it.

Each piece of evidence becomes a *finding*: a reason code from
:mod:`rollwise.core.decision_reasons`, a message with the numbers, a confidence, and possibly
a vote:

* **rollback** votes: a failed threshold metric, a failed critical compare metric, a score
  below marginal, a firing critical burn-rate pair;
* **hold** votes: an inconclusive or unfinished threshold metric, an inconclusive critical
  compare metric, a marginal score, too much inconclusive compare weight, a firing warning
  burn-rate pair, a burn-rate pair without data;
* **expand** votes: all threshold metrics passed, a passing score, an SLO within budget, or
  no checks at all (at LOW confidence).

The recommendation is rollback if anything votes rollback, else hold if anything votes hold,
else expand. Its confidence:

* rollback: the *strongest* rollback vote (any one of them suffices on its own);
* hold and expand: the *weakest* vote for it (the conclusion needs all of them), then capped
  by the observed time (:func:`~rollwise.core.confidence.observation_cap`: under 5m LOW,
  under 1h MEDIUM); the cap is reported as ``ShortObservation`` when it lowers anything. A
  rollback is not capped: a regression proven in two minutes is proven.

Each kind rates its own evidence (rules in :mod:`~rollwise.core.compare`,
:mod:`~rollwise.core.scoring`, :mod:`~rollwise.core.burnrate`); a threshold metric's run is
rated by :func:`threshold_confidence`.

Modes: ``auto`` decides the recommendation, with the operator's own step (expand, rollback)
as an auto-applicable required action. ``advisory`` never acts: the action is always hold,
no required action is auto-applicable, and the required actions say what a human should do
(promote or abort by hand) and what auto mode would have done (``recommended``, and the
``AdvisoryMode`` reason). In both modes, findings about a metric ask a human to investigate
it (failures and firing pairs) or to restore its data (no data), critical ones at high
priority; a burn-rate finding is due when the burn would exhaust a whole budget.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import Field, FiniteFloat

from rollwise.core import decision_reasons as D
from rollwise.core.burnrate import BurnRateResult
from rollwise.core.confidence import (
    Confidence,
    capped,
    observation_cap,
    strongest,
    weakest,
)
from rollwise.core.decision_evidence import (
    HIGH_CONFIDENCE_MEASUREMENTS,
    INVESTIGATE_PREFIX,
    RESTORE_DATA_PREFIX,
    Action,
    Finding,
    burn_findings,
    compare_findings,
    finite,
    threshold_confidence,
    threshold_findings,
)
from rollwise.core.decision_reasons import Severity
from rollwise.core.durations import format_seconds
from rollwise.core.reasons import clip
from rollwise.core.runs import MetricRun
from rollwise.core.scoring import ScoreThresholds
from rollwise.core.spec import DecisionMode
from rollwise.core.status_model import StatusModel, Time

if TYPE_CHECKING:
    from rollwise.core.compare import CompareResult

#: Most reasons a decision keeps (status stays small); the least severe go first.
MAX_REASONS = 20


#: ``auto`` acts on its decisions; ``advisory`` only recommends them (the spec's
#: ``decisionMode``).
Mode = DecisionMode


#: The recommendation as a verb in messages.
_VERB = {Action.EXPAND: "expand", Action.HOLD: "hold", Action.ROLLBACK: "roll back"}


class Priority(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


#: Required action ids (``status.decision.requiredActions[].id``).
EXPAND_ID = "expand"
ROLLBACK_ID = "rollback"
PROMOTE_BY_HAND_ID = "promote-by-hand"
ABORT_BY_HAND_ID = "abort-by-hand"


class DecisionReason(StatusModel):
    """One reason for a decision: a code of :mod:`~rollwise.core.decision_reasons`, its
    severity, the sentence with the numbers, and the metric, value and threshold involved
    when there are such."""

    code: str
    severity: Severity
    message: str
    metric: str | None = None
    observed: FiniteFloat | None = None
    threshold: FiniteFloat | None = None


class RequiredAction(StatusModel):
    """Something that must happen next: by the operator itself when ``autoApplicable``,
    otherwise by a human, by ``dueBy`` when the evidence sets a deadline."""

    id: str
    description: str
    priority: Priority
    due_by: Time | None = None
    auto_applicable: bool = False


class Decision(StatusModel):
    """``status.decision``: what to do with the canary, how sure, why, and what is needed.

    ``recommended`` is what the evidence calls for, the action auto mode takes; ``action``
    equals it in auto mode and is hold in advisory mode. ``score`` is the compare metrics'
    score when there are any. The wire form is ``model_dump(mode="json", by_alias=True,
    exclude_none=True)``; pass a new decision through :func:`settle` with the stored one so
    that ``decidedAt`` only moves when the decision changes. (Not to be confused with
    :class:`rollwise.core.rollout.canary.Decision`, the outcome of a whole Rollout pass, which will
    carry one of these in its status.)
    """

    action: Action
    recommended: Action
    mode: Mode
    confidence: Confidence
    message: str
    score: FiniteFloat | None = None
    reasons: list[DecisionReason] = Field(default_factory=list)
    required_actions: list[RequiredAction] = Field(default_factory=list)
    decided_at: Time


# ------------------------------------------------------------------------------ the decision


def _recommendation(findings: Sequence[Finding]) -> Action:
    votes = {f.vote for f in findings}
    if Action.ROLLBACK in votes:
        return Action.ROLLBACK
    if Action.HOLD in votes:
        return Action.HOLD
    return Action.EXPAND


def _priority(severity: Severity) -> Priority:
    return {
        Severity.CRITICAL: Priority.HIGH,
        Severity.WARNING: Priority.MEDIUM,
        Severity.INFO: Priority.LOW,
    }[severity]


def _human_actions(findings: Iterable[Finding]) -> list[RequiredAction]:
    actions: list[RequiredAction] = []
    for finding in findings:
        if finding.asks is None or finding.metric is None:
            continue
        if finding.asks == INVESTIGATE_PREFIX:
            description = f"investigate metric {finding.metric}: {finding.message}"
        else:
            description = (
                f"restore the data of metric {finding.metric} (check its query, the provider "
                f"and that the canary receives traffic): {finding.message}"
            )
        actions.append(
            RequiredAction(
                id=f"{finding.asks}{finding.metric}",
                description=clip(description),
                priority=_priority(finding.reason.severity),
                due_by=finding.due_by,
            )
        )
    return actions


def _operator_action(recommended: Action, mode: Mode, due: datetime | None) -> RequiredAction:
    if mode is Mode.AUTO:
        if recommended is Action.ROLLBACK:
            return RequiredAction(
                id=ROLLBACK_ID,
                description="roll the canary back: traffic to stable first, then scale the "
                "canary down",
                priority=Priority.HIGH,
                auto_applicable=True,
            )
        return RequiredAction(
            id=EXPAND_ID,
            description="expand the canary to the next step (promote after the last step)",
            priority=Priority.LOW,
            auto_applicable=True,
        )
    if recommended is Action.ROLLBACK:
        return RequiredAction(
            id=ABORT_BY_HAND_ID,
            description="auto mode would roll back: check the reasons, then abort the canary "
            "by hand (annotation rollwise.dev/abort)",
            priority=Priority.HIGH,
            due_by=due,
        )
    return RequiredAction(
        id=PROMOTE_BY_HAND_ID,
        description="auto mode would expand: check the reasons, then promote the canary by "
        "hand (annotation rollwise.dev/promote)",
        priority=Priority.MEDIUM,
    )


def _ordered(findings: Sequence[Finding]) -> list[Finding]:
    """Most severe first, stable otherwise; cut to :data:`MAX_REASONS` with a note."""
    ranked = sorted(findings, key=lambda f: f.reason.severity.rank)
    if len(ranked) <= MAX_REASONS:
        return ranked
    kept = ranked[: MAX_REASONS - 1]
    left = len(ranked) - len(kept)
    return [*kept, Finding(D.REASONS_TRUNCATED, f"{left} less severe reason(s) left out")]


def build_decision(
    *,
    now: datetime,
    observed: timedelta,
    mode: Mode = Mode.AUTO,
    thresholds: Sequence[MetricRun] = (),
    compares: Sequence[CompareResult] = (),
    burn_rates: Sequence[BurnRateResult] = (),
    scoring: ScoreThresholds | None = None,
) -> Decision:
    """The decision on a canary step from its evidence.

    ``observed`` is how long the canary has served traffic (its confidence cap);
    ``thresholds`` the step's threshold metric runs, finished or not; ``compares`` the judged
    compare metrics, scored with ``scoring`` (Kayenta's defaults when None); ``burn_rates``
    the judged SLOs. ``now`` should be timezone-aware; a naive one is taken as UTC.
    """
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    findings = threshold_findings(thresholds)
    from_compares, score = compare_findings(compares, scoring)
    findings += from_compares
    findings += burn_findings(burn_rates, now)
    if not thresholds and not compares and not burn_rates:
        findings.append(
            Finding(D.NO_CHECKS, "the step measures nothing", Confidence.LOW, Action.EXPAND)
        )

    recommended = _recommendation(findings)
    voters = [f for f in findings if f.vote is recommended]
    if recommended is Action.ROLLBACK:
        confidence = strongest(f.confidence for f in voters)
    else:
        evidence = weakest(f.confidence for f in voters)
        observed = max(observed, timedelta(0))
        seconds = observed.total_seconds()
        confidence = capped(evidence, observation_cap(observed))
        if confidence is not evidence:
            findings.append(
                Finding(
                    D.SHORT_OBSERVATION,
                    f"the canary was observed for {format_seconds(round(seconds))}: "
                    f"confidence {evidence.value} lowered to {confidence.value}",
                    observed=seconds,
                )
            )
    if mode is Mode.ADVISORY:
        findings.append(
            Finding(
                D.ADVISORY_MODE,
                f"advisory mode: auto would {_VERB[recommended]} at {confidence.value} "
                "confidence; holding for a human",
            )
        )
    action = recommended if mode is Mode.AUTO else Action.HOLD

    # The message leads with the evidence that sets the confidence: the strongest rollback
    # vote, or the weakest vote for hold or expand; the most severe one among equals. There
    # is always a vote: every kind of evidence votes, and a step without checks votes expand.
    sign = -1 if recommended is Action.ROLLBACK else 1
    lead = min(
        voters, key=lambda f: (sign * f.confidence.rank, f.reason.severity.rank), default=None
    )
    if mode is Mode.AUTO:
        message = f"{action.value} at {confidence.value} confidence"
    else:
        message = (
            f"hold (advisory mode; auto would {_VERB[recommended]} at {confidence.value} "
            "confidence)"
        )
    if lead is not None:
        message += f": {lead.message}"

    kept = _ordered(findings)
    required: list[RequiredAction] = []
    if recommended is not Action.HOLD:
        dues = [f.due_by for f in voters if f.due_by is not None]
        required.append(_operator_action(recommended, mode, min(dues) if dues else None))
    seen = {r.id for r in required}
    # Only the reasons kept ask for actions: what status shows explains every action in it,
    # and the list stays as bounded as the reasons.
    for human in _human_actions(kept):
        if human.id not in seen:
            seen.add(human.id)
            required.append(human)

    return Decision(
        action=action,
        recommended=recommended,
        mode=mode,
        confidence=confidence,
        message=clip(message),
        score=finite(score.score) if score is not None else None,
        reasons=[
            DecisionReason(
                code=f.reason.code,
                severity=f.reason.severity,
                message=clip(f.message),
                metric=f.metric,
                observed=finite(f.observed),
                threshold=finite(f.threshold),
            )
            for f in kept
        ],
        required_actions=required,
        decided_at=now,
    )


def settle(previous: Decision | None, new: Decision) -> Decision:
    """``previous`` when ``new`` says the same thing (only ``decidedAt`` differs), else
    ``new``: ``decidedAt`` then records when the decision last changed, and an unchanged
    decision leaves the status unchanged (so the runtime's status patch is skipped)."""
    if previous is not None and previous.model_copy(update={"decided_at": new.decided_at}) == new:
        return previous
    return new


__all__ = [
    "ABORT_BY_HAND_ID",
    "EXPAND_ID",
    "HIGH_CONFIDENCE_MEASUREMENTS",
    "INVESTIGATE_PREFIX",
    "MAX_REASONS",
    "PROMOTE_BY_HAND_ID",
    "RESTORE_DATA_PREFIX",
    "ROLLBACK_ID",
    "Action",
    "Decision",
    "DecisionReason",
    "Mode",
    "Priority",
    "RequiredAction",
    "build_decision",
    "settle",
    "threshold_confidence",
]
