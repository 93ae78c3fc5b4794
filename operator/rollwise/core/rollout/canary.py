"""The Rollout decision: ``decide(spec, status, observations, now) -> Decision``.

A pure function of its arguments. The runtime observes (revision Deployments, Services, the
router's actual weight, request annotations, the metrics :func:`due_metrics` asked for), calls
:func:`decide`, applies ``Decision.actions`` in order, patches ``Decision.status`` once when it
differs from the old one, emits ``Decision.events`` and looks again after
``Decision.requeue_after`` seconds (None: nothing to wait for, a watch event wakes it).

Behaviour, in the words a platform engineer running progressive delivery looks for:

* **First observation**: the template's revision becomes stable at 100%; there is nothing to
  canary against. The phase is Healthy (and ``Ready`` True) once its Deployment is available,
  Progressing until then.
* **New revision**: a canary starts at step 1 with weight 0. A change during a canary replaces
  it (traffic back to stable first); a change back to the stable revision cancels it. Under
  ``spec.paused`` a new revision is recorded and its Deployment created, but no step runs.
* **setWeight step**: the canary is scaled for the weight first (see
  :mod:`rollwise.core.traffic`); only when that many pods are available is the weight written
  (``WeightSet``). The step's analysis (``canary.analysis`` metrics) starts once the router
  *reports* the weight, and the step completes when it passed (at once without analysis).
* **pause step**: with a duration it expires by ``now``; without one it waits for a promote
  request. ``spec.paused`` holds everything (no step advances, no measurements) until cleared.
* **analysis step**: blocks until its metrics took ``count`` measurements and passed.
* **FAIL** beyond ``failureLimit``: automatic rollback in the same pass, before any promote request
  is looked at: weight 0 first, stable at full size, canary scaled to 0, phase Degraded, the
  revision remembered in ``rolledBackRevision`` and not retried until the template changes or
  ``rollwise.dev/retry`` is set. A failed canary never gets more traffic.
* **INCONCLUSIVE** (limits, or consecutive provider errors): the rollout pauses, is never
  promoted or rolled back automatically; other metrics keep being measured so a FAIL still
  rolls back. ``retry`` re-runs the step's analysis, ``promote`` skips the step.
* **Requests** (annotations ``rollwise.dev/<kind>: <id>``, each id handled once): ``abort``
  rolls back like a failure (reason Aborted); ``promote`` skips the current step;
  ``promote-full`` jumps to completion skipping every remaining check (a Warning event, for
  audits); ``retry`` restarts a rolled-back revision at step 1 (or re-runs an inconclusive
  analysis). A request that does not apply is consumed with ``RequestIgnored``, so it cannot
  fire by surprise in a later rollout.
* **Completion** (after the last step, once the canary runs the full replica count): the
  stable Service moves to the canary revision (no pod restarts), the weight resets to 0 and the
  old revision is deleted after ``scaleDownDelaySeconds``.
* **Progress deadline**: waiting on the cluster (pods becoming available, the router reporting
  the weight) for longer than ``progressDeadlineSeconds`` makes the rollout Degraded
  (``ProgressDeadlineExceeded``) without aborting it: aborting on a slow image pull would
  throw away a rollout that is about to succeed; the operator continues as soon as progress
  resumes, and a user who wants out sets ``rollwise.dev/abort``. Pauses and analysis never count.
* **Invalid spec**: no actions at all, phase Degraded, condition ``InvalidSpec`` True with the
  messages; a fix clears it and the rollout continues where it stood. A spec naming an object
  that does not exist (``Observations.missing_references``: a Service, the HTTPRoute) is
  invalid the same way, so nothing is created for a rollout that could not route traffic.
* **Conditions**: ``Ready`` is True only when Healthy (``kubectl wait --for=condition=Ready``
  after an apply waits for the whole rollout); ``Available`` tells whether ``spec.replicas``
  pods serve, canary or not; ``Progressing``, ``Paused``, ``Degraded`` and ``InvalidSpec``
  carry the reason. ``lastTransitionTime`` moves only when a condition's status changes.
* **Events** come from transitions only: deciding again with the returned status and the same
  observations and ``now`` yields the same status, no events, and the same (idempotent)
  actions, which re-assert the desired state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rollwise.core.analysis import (
    Recorded,
    StepChecks,
    any_inconclusive,
    checks_for_step,
    measured_text,
    new_run,
    record,
    run_verdict,
)
from rollwise.core.conditions import ConditionStatus
from rollwise.core.durations import InvalidDuration, add_seconds, format_seconds, parse_seconds
from rollwise.core.events import Event, log_events, mark_posted
from rollwise.core.observations import (
    OVERRIDE_HANDLED_KEY,
    ManualRequest,
    Measurement,
    Observations,
    RequestKind,
)
from rollwise.core.phases import Phase
from rollwise.core.querycheck import (
    canary_metrics,
    condition_of,
    queries_digest,
    recheck_at,
    refusals,
    verification,
)
from rollwise.core.reasons import Reason, clip
from rollwise.core.rollout import reasons as R
from rollwise.core.rollout.analysis import active_run, due_metrics, soonest_due
from rollwise.core.rollout.status import (
    ConditionType,
    PauseReason,
    RetiredRevision,
    RolloutStatus,
    step_text,
)
from rollwise.core.runs import AnalysisRun, MetricRun, Verdict
from rollwise.core.spec import Metric, PauseStep, RolloutSpec, Step
from rollwise.core.traffic import expected_weight, split
from rollwise.core.validation import load_rollout_spec, selector_string

#: How often to look again while waiting on the cluster (pods, router) without a watch event.
POLL_SECONDS = 5.0

#: Kubernetes caps event messages; the status message is kept to the same size.

# --------------------------------------------------------------------------------------------
# Decision, actions, events


@dataclass(frozen=True)
class EnsureRevision:
    """Create the revision's Deployment from ``template`` if missing, and scale it."""

    revision: str
    replicas: int
    template: Mapping[str, Any] = field(compare=True, hash=False)


@dataclass(frozen=True)
class ScaleRevision:
    """Scale an existing revision's Deployment (never creates one)."""

    revision: str
    replicas: int


@dataclass(frozen=True)
class DeleteRevision:
    """Delete a revision's Deployment the rollout no longer references."""

    revision: str


@dataclass(frozen=True)
class SetWeight:
    """Send ``weight`` percent to the canary revision, the rest to stable (router adapters;
    the replica-ratio router has nothing to write: the scale actions carry the weight)."""

    canary_revision: str
    stable_revision: str
    weight: int


@dataclass(frozen=True)
class PointStableService:
    """Point the stable Service's selector at ``revision``'s pods."""

    service: str
    revision: str


@dataclass(frozen=True)
class PointCanaryService:
    """Point the canary Service's selector at ``revision``'s pods."""

    service: str
    revision: str


Action = (
    EnsureRevision
    | ScaleRevision
    | DeleteRevision
    | SetWeight
    | PointStableService
    | PointCanaryService
)


@dataclass(frozen=True)
class Decision:
    """The outcome of one pass."""

    status: RolloutStatus
    actions: tuple[Action, ...]
    events: tuple[Event, ...]
    requeue_after: float | None


# --------------------------------------------------------------------------------------------
# Entry point


def decide(
    spec: RolloutSpec | dict[str, Any],
    status: RolloutStatus | None,
    obs: Observations,
    now: datetime,
) -> Decision:
    """Decide the next status, actions, events and requeue of a Rollout.

    ``spec`` may be the wire form (a dict, parsed and validated here) or a parsed spec
    (validated here). ``status`` None means the object has no status yet. ``now`` should be
    timezone-aware; a naive one is taken as UTC. Never raises on well-typed input.
    """
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    previous = status if status is not None else RolloutStatus()
    loaded, errors = load_rollout_spec(spec)
    digest = ""
    if loaded is not None:
        digest = queries_digest(rollout_metrics(loaded))
        queries = verification(digest, previous.queries, obs.query_check, now)
        if queries != previous.queries:
            previous = previous.model_copy(update={"queries": queries})
        errors = [*errors, *refusals(queries, digest)]
    if loaded is None or errors or obs.missing_references:
        decision = _invalid(previous, [*errors, *obs.missing_references], obs, now)
    else:
        decision = _Pass(loaded, previous, obs, now).run()
    return _logged(_with_queries(decision, digest, obs.generation, now), status, obs, now)


def rollout_metrics(spec: RolloutSpec) -> list[tuple[str, Metric]]:
    """Every metric the Rollout's canary can measure, with its spec path."""
    canary = spec.strategy.canary
    return canary_metrics(canary.steps, canary.analysis, "spec.strategy.canary")


def _with_queries(decision: Decision, digest: str, generation: int, now: datetime) -> Decision:
    """The ``QueriesVerified`` condition, and a look again when the queries are unverified."""
    status = decision.status
    condition = condition_of(status.queries, digest)
    if condition is None:
        return _replace(decision, status=status.without_condition(ConditionType.QUERIES_VERIFIED))
    value, reason, message = condition
    status = status.with_condition(
        ConditionType.QUERIES_VERIFIED,
        ConditionStatus(value),
        reason=reason,
        message=clip(message),
        now=now,
        generation=generation,
    )
    return _replace(
        decision,
        status=status,
        requeue_after=_sooner(decision.requeue_after, recheck_at(status.queries), now),
    )


def _sooner(requeue: float | None, at: datetime | None, now: datetime) -> float | None:
    if at is None:
        return requeue
    wait = max((at - now).total_seconds(), 0.0)
    return wait if requeue is None else min(requeue, wait)


def _logged(
    decision: Decision, read: RolloutStatus | None, obs: Observations, now: datetime
) -> Decision:
    """The decision's events appended to ``status.eventLog``; when the status is written
    anyway, ``posted`` catches up with what the runtime has posted (never a write of its own)."""
    status = decision.status
    log = log_events(status.event_log, decision.events, now)
    if log is not status.event_log:
        status = status.model_copy(update={"event_log": log})
    if read is None or status != read:
        status = status.model_copy(
            update={"event_log": mark_posted(status.event_log, obs.events_posted)}
        )
    return _replace(decision, status=status)


def _replace(decision: Decision, **fields: Any) -> Decision:
    return dataclasses.replace(decision, **fields)


def _invalid(
    previous: RolloutStatus, errors: list[str], obs: Observations, now: datetime
) -> Decision:
    shown = errors[:10] + ([f"... and {len(errors) - 10} more"] if len(errors) > 10 else [])
    message = clip(R.INVALID_SPEC.format(errors="; ".join(shown)))
    before = previous.condition(ConditionType.INVALID_SPEC)
    unchanged = before is not None and before.status is ConditionStatus.TRUE
    unchanged = unchanged and before is not None and before.message == message
    events = () if unchanged else (Event(R.INVALID_SPEC.type, R.INVALID_SPEC, message),)
    gen = obs.generation
    status = previous.model_copy(
        update={
            "phase": Phase.DEGRADED,
            "message": message,
            "observed_generation": gen,
            "canary_weight": min(max(previous.canary_weight, 0), 100),
        }
    )
    for type_, value in (
        (ConditionType.READY, ConditionStatus.FALSE),
        (ConditionType.DEGRADED, ConditionStatus.TRUE),
        (ConditionType.INVALID_SPEC, ConditionStatus.TRUE),
    ):
        status = status.with_condition(
            type_, value, reason=R.INVALID_SPEC.name, message=message, now=now, generation=gen
        )
    return Decision(status=status, actions=(), events=events, requeue_after=None)


# --------------------------------------------------------------------------------------------
# One pass


def _step_what(step: Step) -> str:
    if step.set_weight is not None:
        return f"setWeight {step.set_weight}%"
    if step.pause is not None:
        return f"pause {step.pause.duration}" if step.pause.duration else "pause"
    return "analysis"


def _sanitize(status: RolloutStatus, steps: int) -> RolloutStatus:
    """Repair impossible combinations (a hand-edited or corrupted status) instead of failing."""
    update: dict[str, Any] = {}
    if status.pause_reason is PauseReason.OVERRIDE_HOLD:
        # A hold lives in the override record, never in status: observed, not remembered.
        update["pause_reason"] = None
    canary = status.canary_revision
    if canary is not None and canary == status.stable_revision:
        canary = None
        update["canary_revision"] = None
    if canary is None:
        if status.current_step_index is not None:
            update["current_step_index"] = None
        if status.canary_weight != 0:
            update["canary_weight"] = 0
        if status.pause_reason is not None:
            update["pause_reason"] = None
    else:
        index = status.current_step_index
        clamped = min(max(index if index is not None else 0, 0), steps)
        if clamped != index:
            update["current_step_index"] = clamped
        weight = min(max(status.canary_weight, 0), 100)
        if weight != status.canary_weight:
            update["canary_weight"] = weight
    index = update.get("current_step_index", status.current_step_index)
    shown = step_text(index if canary is not None else None, steps)
    if shown != status.step:
        update["step"] = shown
    return status.model_copy(update=update) if update else status


class _Pass:
    """The mutable scratchpad of one ``decide`` call; ``run`` returns the frozen decision."""

    def __init__(
        self, spec: RolloutSpec, previous: RolloutStatus, obs: Observations, now: datetime
    ) -> None:
        self.spec = spec
        self.canary_spec = spec.strategy.canary
        self.steps = self.canary_spec.steps
        self.n = len(self.steps)
        self.router = self.canary_spec.traffic_routing is not None
        self.prev = previous
        self.obs = obs
        self.now = now
        self.events: list[Event] = []
        self.wakes: list[datetime] = []
        self.message = ""
        self.cluster_wait = False
        self.pending: dict[RequestKind, ManualRequest] = {
            r.kind: r for r in obs.requests if previous.handled_requests.get(r.kind.value) != r.id
        }
        # An override's requests are remembered under their own key: it stays recorded after
        # it acted, while the annotation requests of the same kinds come and go.
        self.from_override: list[ManualRequest] = []
        applied = previous.handled_requests.get(OVERRIDE_HANDLED_KEY)
        for request in obs.override_requests:
            if request.id != applied:
                self.pending[request.kind] = request
                self.from_override.append(request)
        self.held = spec.paused or obs.hold is not None
        self.s = _sanitize(previous, self.n).model_copy(
            update={
                "observed_generation": obs.generation,
                "selector": selector_string(spec.selector),
            }
        )

    # ---------------------------------------------------------------- helpers

    def update(self, **fields: Any) -> None:
        self.s = self.s.model_copy(update=fields)

    def emit(self, reason: Reason, **fields: object) -> None:
        self.events.append(Event.of(reason, **fields))

    def wake(self, at: datetime | None) -> None:
        if at is not None:
            self.wakes.append(at)

    def take(self, kind: RequestKind) -> ManualRequest | None:
        request = self.pending.pop(kind, None)
        if request is not None:
            handled = dict(self.s.handled_requests)
            override = any(request is r for r in self.from_override)
            handled[OVERRIDE_HANDLED_KEY if override else kind.value] = request.id
            self.update(handled_requests=handled)
        return request

    def hold_text(self) -> str:
        hold = self.obs.hold
        if hold is None:
            return ""
        return f"held by {hold.user} (override {hold.id}): {hold.reason}"

    def ignore(self, request: ManualRequest, why: str) -> None:
        self.emit(R.REQUEST_IGNORED, kind=request.kind.value, request=request.id, why=why)

    def step_no(self, index: int | None = None) -> int:
        i = self.s.current_step_index if index is None else index
        return min((i or 0) + 1, max(self.n, 1))

    @property
    def canary_active(self) -> bool:
        return self.s.canary_revision is not None

    # ---------------------------------------------------------------- the pass

    def run(self) -> Decision:
        self._spec_corrected()
        self._track_revision()
        self._abort()
        if self.canary_active:
            self._record_measurements()
        if self.canary_active:
            self._requests()
        if self.canary_active:
            if self.spec.paused:
                self.message = f"paused by spec.paused at step {self.step_no()}/{self.n}"
            elif self.obs.hold is not None:
                self.message = f"{self.hold_text()}; at step {self.step_no()}/{self.n}"
            else:
                self._progress()
        if not self.canary_active:
            # Also when the canary ended in this pass (promoted, rolled back, aborted): the
            # stable revision is checked now, as the next pass would check it, so that deciding
            # again changes nothing.
            self._stable_only()
        self._retire()
        self._ignore_leftover_requests()
        # The pass leaves the status in the shape the next pass expects, so that deciding
        # again changes nothing.
        self.s = _sanitize(self.s, self.n)
        self._finish()
        return Decision(
            status=self.s,
            actions=tuple(self._actions()),
            events=tuple(self.events),
            requeue_after=self._requeue(),
        )

    def _spec_corrected(self) -> None:
        if self.prev.is_true(ConditionType.INVALID_SPEC):
            self.emit(R.SPEC_CORRECTED)

    def _track_revision(self) -> None:
        rev = self.obs.template_hash
        if self.s.rolled_back_revision is not None and rev != self.s.rolled_back_revision:
            self.update(rolled_back_revision=None, aborted=False)
        s = self.s
        if s.stable_revision is None:
            self._clear_canary()
            self.update(stable_revision=rev)
            return
        if rev == s.stable_revision:
            if s.canary_revision is not None:
                self.emit(R.CANARY_CANCELLED, stable=rev, canary=s.canary_revision)
                self._clear_canary()
            return
        if rev == s.rolled_back_revision:
            retry = self.take(RequestKind.RETRY)
            if retry is not None:
                self.emit(R.RETRY_REQUESTED, revision=rev, request=retry.id, steps=self.n)
                self.update(rolled_back_revision=None, aborted=False)
                self._start_canary(rev)
                return
            dropped = ""
            if s.canary_revision is not None:
                # The template went back to a rolled-back revision while another canary ran:
                # that canary is no longer asked for, and the rolled-back one is not retried.
                dropped = f"; canary {s.canary_revision} dropped, stable {s.stable_revision} serves"
                self._clear_canary()
            changed = (
                self.prev.observed_generation is not None
                and self.prev.observed_generation != self.obs.generation
            )
            if changed or dropped:
                how = "aborted" if s.aborted else "rolled back"
                self.emit(R.REVISION_SKIPPED, revision=rev, how=how, dropped=dropped)
            return
        if rev == s.canary_revision:
            return
        if s.canary_revision is not None:
            self.emit(
                R.REVISION_REPLACED,
                revision=rev,
                previous=s.canary_revision,
                step=self.step_no(),
                steps=self.n,
            )
        else:
            self.emit(R.REVISION_DETECTED, revision=rev, stable=s.stable_revision, steps=self.n)
        self._start_canary(rev)

    def _clear_canary(self) -> None:
        self.update(
            canary_revision=None,
            current_step_index=None,
            canary_weight=0,
            step_started_at=None,
            pause_started_at=None,
            pause_reason=None,
            deadline_exceeded=False,
            progress_started_at=self.now,
        )

    def _start_canary(self, rev: str) -> None:
        self.update(
            canary_revision=rev,
            canary_weight=0,
            analysis=None,
            deadline_exceeded=False,
            retired_revisions=[r for r in self.s.retired_revisions if r.revision != rev],
        )
        self._enter_step(0)

    def _enter_step(self, index: int) -> None:
        self.update(
            current_step_index=index,
            step_started_at=self.now,
            progress_started_at=self.now,
            pause_started_at=None,
            pause_reason=None,
        )
        if index >= self.n:
            return
        step = self.steps[index]
        if step.pause is not None:
            self.update(pause_started_at=self.now, pause_reason=PauseReason.PAUSE_STEP)
            if step.pause.duration:
                what = f"step {index + 1}/{self.n}: paused for {step.pause.duration}"
            else:
                what = f"step {index + 1}/{self.n}: paused until promoted (rollwise.dev/promote)"
            self.emit(R.PAUSED, what=what)
        elif step.analysis is not None:
            checks = checks_for_step(self.spec, index)
            if checks is not None and self.s.canary_revision is not None:
                self.update(analysis=new_run(index, self.s.canary_revision, checks, self.now))

    # ---------------------------------------------------------------- rollback and requests

    def _rollback(self, *, cause: str = "", request: ManualRequest | None = None) -> None:
        s = self.s
        canary = s.canary_revision
        if canary is None or s.stable_revision is None:
            return
        if request is not None:
            self.emit(
                R.ABORTED,
                revision=canary,
                request=request.id,
                step=self.step_no(),
                steps=self.n,
                stable=s.stable_revision,
            )
        else:
            self.emit(
                R.ROLLED_BACK,
                revision=canary,
                stable=s.stable_revision,
                step=self.step_no(),
                steps=self.n,
                cause=cause,
            )
        self._clear_canary()
        self.update(rolled_back_revision=canary, aborted=request is not None)

    def _abort(self) -> None:
        request = self.take(RequestKind.ABORT)
        if request is None:
            return
        if self.canary_active:
            self._rollback(request=request)
        else:
            self.ignore(request, "no canary in progress")

    def _requests(self) -> None:
        s = self.s
        retry = self.pending.get(RequestKind.RETRY)
        if retry is not None and s.pause_reason is PauseReason.ANALYSIS_INCONCLUSIVE:
            self.take(RequestKind.RETRY)
            self._restart_analysis(retry)
        full = self.take(RequestKind.PROMOTE_FULL)
        if full is not None:
            self.emit(
                R.PROMOTED_FULL,
                revision=s.canary_revision,
                request=full.id,
                step=self.step_no(),
                steps=self.n,
            )
            self._enter_step(self.n)
            promote = self.take(RequestKind.PROMOTE)
            if promote is not None:
                self.ignore(promote, "superseded by promote-full")
            return
        promote = self.take(RequestKind.PROMOTE)
        if promote is None:
            return
        index = self.s.current_step_index or 0
        if index >= self.n:
            self.ignore(promote, "all steps are done; waiting for the canary to be available")
            return
        self.emit(
            R.PROMOTED,
            step=index + 1,
            steps=self.n,
            what=_step_what(self.steps[index]),
            request=promote.id,
        )
        self._enter_step(index + 1)

    def _restart_analysis(self, request: ManualRequest) -> None:
        index = self.s.current_step_index or 0
        checks = checks_for_step(self.spec, index)
        canary = self.s.canary_revision
        run = new_run(index, canary, checks, self.now) if checks and canary else None
        self.update(analysis=run, pause_reason=None, pause_started_at=None)
        self.emit(R.ANALYSIS_RETRIED, step=index + 1, steps=self.n, request=request.id)

    def _ignore_leftover_requests(self) -> None:
        for kind in list(self.pending):
            request = self.take(kind)
            if request is None:
                continue
            if kind is RequestKind.RETRY:
                why = "nothing was rolled back and no analysis is inconclusive"
            elif self.s.rolled_back_revision is not None:
                why = f"revision {self.s.rolled_back_revision} was rolled back; no canary runs"
            else:
                why = "no canary in progress"
            self.ignore(request, why)

    # ---------------------------------------------------------------- analysis

    def _record_measurements(self) -> None:
        active = active_run(self.spec, self.s, held=self.held)
        if active is None or not self.obs.measurements:
            return
        checks, run = active
        due = {d.metric.name for d in due_metrics(self.spec, self.s, self.now, held=self.held)}
        metrics: list[MetricRun] = []
        failure = ""
        index = run.step_index
        for metric in checks.metrics:
            metric_run = run.metric(metric.name) or MetricRun(name=metric.name)
            measurement = self.obs.measurements.get(metric.name)
            if metric.name not in due or measurement is None:
                metrics.append(metric_run)
                continue
            # Recorded at ``now``: the schedule (and so idempotence) depends on the decision's
            # clock only, never on the runtime's notion of when the query ran.
            measurement = Measurement(value=measurement.value, at=self.now, error=measurement.error)
            rec = record(checks, metric, metric_run, measurement)
            metrics.append(rec.run)
            failure = self._measurement_event(index, checks, rec.run, rec) or failure
        updated = run.model_copy(update={"metrics": metrics})
        verdict = run_verdict(checks, updated)
        updated = updated.model_copy(
            update={"verdict": verdict, "message": failure if verdict is Verdict.FAIL else ""}
        )
        self.update(analysis=updated)
        if verdict is Verdict.FAIL:
            self._rollback(cause=failure or "analysis failed")
            return
        if (
            any_inconclusive(updated)
            and self.s.pause_reason is not PauseReason.ANALYSIS_INCONCLUSIVE
        ):
            self.update(pause_reason=PauseReason.ANALYSIS_INCONCLUSIVE, pause_started_at=self.now)

    def _measurement_event(
        self, index: int, checks: StepChecks, run: MetricRun, rec: Recorded
    ) -> str | None:
        step, steps = index + 1, self.n
        assessment = rec.assessment
        detail = assessment.message
        if assessment.error:
            error = rec.metric.name
            last = assessment.message.split("query failed: ", 1)[-1]
            if rec.decided:
                self.emit(
                    R.ANALYSIS_ERROR,
                    step=step,
                    steps=steps,
                    metric=error,
                    errors=run.consecutive_errors,
                    limit=checks.consecutive_error_limit,
                    error=last,
                )
            else:
                self.emit(
                    R.MEASUREMENT_ERROR,
                    step=step,
                    steps=steps,
                    metric=error,
                    error=last,
                    errors=run.consecutive_errors,
                    limit=checks.consecutive_error_limit,
                )
            return None
        if assessment.verdict is Verdict.FAIL:
            if run.verdict is Verdict.FAIL:
                self.emit(
                    R.ANALYSIS_FAILED,
                    step=step,
                    steps=steps,
                    detail=detail,
                    failed=run.failed,
                    limit=checks.failure_limit,
                )
                return f"{detail} (failures {run.failed} > failureLimit {checks.failure_limit})"
            self.emit(
                R.MEASUREMENT_FAILED,
                step=step,
                steps=steps,
                detail=detail,
                failed=run.failed,
                limit=checks.failure_limit,
            )
            return None
        if assessment.verdict is Verdict.INCONCLUSIVE:
            reason = (
                R.ANALYSIS_INCONCLUSIVE
                if run.verdict is Verdict.INCONCLUSIVE
                else R.MEASUREMENT_INCONCLUSIVE
            )
            self.emit(
                reason,
                step=step,
                steps=steps,
                detail=detail,
                inconclusive=run.inconclusive,
                limit=checks.inconclusive_limit,
            )
            return None
        self.emit(
            R.ANALYSIS_MEASURED,
            step=step,
            steps=steps,
            detail=detail,
            taken=run.taken,
            count=rec.metric.count,
        )
        return None

    def _analysis_summary(self, checks: StepChecks, run: AnalysisRun) -> str:
        parts = []
        for metric in checks.metrics:
            metric_run = run.metric(metric.name) or MetricRun(name=metric.name)
            last = metric_run.measurements[-1] if metric_run.measurements else None
            shown = f" (last {measured_text(last)})" if last is not None else ""
            parts.append(f"{metric.name} {metric_run.taken}/{metric.count}{shown}")
        return ", ".join(parts)

    def _run_gate(self, index: int, checks: StepChecks, head: str) -> bool:
        """Whether the step's analysis passed; starts it when it has not started."""
        canary = self.s.canary_revision
        run = self.s.analysis
        if canary is None:
            return False
        if run is None or run.step_index != index or run.revision != canary:
            run = new_run(index, canary, checks, self.now)
            self.update(analysis=run)
        verdict = run.verdict
        if verdict is Verdict.PASS:
            self.emit(
                R.ANALYSIS_PASSED,
                step=index + 1,
                steps=self.n,
                summary=self._analysis_summary(checks, run),
            )
            return True
        if verdict is Verdict.FAIL:
            self._rollback(cause=run.message or "analysis failed")
            return False
        self.message = f"{head}: analysis running ({self._analysis_summary(checks, run)})"
        return False

    # ---------------------------------------------------------------- steps

    def _progress(self) -> None:
        if self.s.pause_reason is PauseReason.ANALYSIS_INCONCLUSIVE:
            index = self.step_no()
            self.message = (
                f"step {index}/{self.n}: analysis inconclusive; paused (rollwise.dev/retry "
                "re-runs the analysis, rollwise.dev/promote skips the step, "
                "rollwise.dev/abort rolls back)"
            )
            return
        for _ in range(self.n + 2):
            if not self.canary_active:
                return
            index = self.s.current_step_index or 0
            if index >= self.n:
                self._complete()
                return
            step = self.steps[index]
            if step.set_weight is not None:
                done = self._weight_step(index, step.set_weight)
            elif step.pause is not None:
                done = self._pause_step(index, step.pause)
            else:
                done = self._analysis_step(index)
            if not done or not self.canary_active:
                return
            following = (
                f"now at step {index + 2}/{self.n}" if index + 1 < self.n else "all steps done"
            )
            self.emit(
                R.STEP_ADVANCED,
                step=index + 1,
                steps=self.n,
                what=_step_what(step),
                next=following,
            )
            self._enter_step(index + 1)

    def _weight_step(self, index: int, weight: int) -> bool:
        s = self.s
        canary = s.canary_revision
        if canary is None:
            return False
        head = f"step {index + 1}/{self.n} (setWeight {weight}%)"
        if s.canary_weight < weight:
            missing = self._missing_services()
            if missing:
                self._cluster_wait(f"{head}: waiting for Service {missing}")
                return False
            need = split(self.spec.replicas, weight, router=self.router).canary
            state = self.obs.revisions.get(canary)
            if state is None or not state.ready_for(need):
                have = state.available_replicas if state is not None else 0
                self._cluster_wait(f"{head}: waiting for canary {canary}: {have}/{need} available")
                return False
            self.update(canary_weight=weight, progress_started_at=self.now)
            self._progressed()
            self.emit(
                R.WEIGHT_SET,
                step=index + 1,
                steps=self.n,
                weight=weight,
                split=self._split_text(weight),
            )
        expected = expected_weight(self.spec.replicas, self.s.canary_weight, router=self.router)
        actual = self.obs.actual_weight
        if actual != expected:
            shown = "unknown" if actual is None else f"{actual}%"
            self._cluster_wait(f"{head}: waiting for the router to report {expected}% ({shown})")
            return False
        self._progressed()
        checks = checks_for_step(self.spec, index)
        if checks is None:
            return True
        return self._run_gate(index, checks, head)

    def _split_text(self, weight: int) -> str:
        if self.router:
            return f"stable {100 - weight}%"
        parts = split(self.spec.replicas, weight, router=False)
        approx = expected_weight(self.spec.replicas, weight, router=False)
        return (
            f"replica-ratio: {parts.canary} canary and {parts.stable} stable pods, "
            f"about {approx}% to the canary"
        )

    def _pause_step(self, index: int, pause: PauseStep) -> bool:
        head = f"step {index + 1}/{self.n}"
        if pause.duration is None:
            self.message = f"{head}: paused until promoted (rollwise.dev/promote)"
            return False
        try:
            seconds = parse_seconds(pause.duration)
        except InvalidDuration:
            seconds = 0.0
        started = self.s.pause_started_at
        if started is None:
            started = self.now
            self.update(pause_started_at=started, pause_reason=PauseReason.PAUSE_STEP)
        end = add_seconds(started, seconds)
        if self.now >= end:
            self.emit(R.PAUSE_EXPIRED, step=index + 1, steps=self.n, duration=pause.duration)
            return True
        self.wake(end)
        left = format_seconds((end - self.now).total_seconds())
        self.message = f"{head}: paused for {pause.duration}, {left} left"
        return False

    def _analysis_step(self, index: int) -> bool:
        checks = checks_for_step(self.spec, index)
        if checks is None:
            return True
        return self._run_gate(index, checks, f"step {index + 1}/{self.n} (analysis)")

    def _complete(self) -> None:
        s = self.s
        canary, old = s.canary_revision, s.stable_revision
        if canary is None or old is None:
            return
        replicas = self.spec.replicas
        state = self.obs.revisions.get(canary)
        if state is None or not state.ready_for(replicas):
            have = state.available_replicas if state is not None else 0
            self._cluster_wait(
                f"all steps done: waiting for canary {canary} to be fully available "
                f"({have}/{replicas}) before promotion"
            )
            return
        delay = self.canary_spec.scale_down_delay_seconds
        retired = [r for r in s.retired_revisions if r.revision not in (canary, old)]
        retired.append(RetiredRevision(revision=old, remove_at=add_seconds(self.now, delay)))
        self._progressed()
        self._clear_canary()
        self.update(stable_revision=canary, retired_revisions=retired)
        self.emit(R.ROLLOUT_COMPLETED, revision=canary, previous=old, delay=format_seconds(delay))

    # ---------------------------------------------------------------- waiting on the cluster

    def _missing_services(self) -> str | None:
        if not self.obs.stable_service_exists:
            return self.canary_spec.stable_service
        if not self.obs.canary_service_exists:
            return self.canary_spec.canary_service
        return None

    def _cluster_wait(self, message: str) -> None:
        """Waiting on pods or the router: the progress deadline applies."""
        self.cluster_wait = True
        self.message = message
        started = self.s.progress_started_at
        if started is None:
            started = self.now
            self.update(progress_started_at=started)
        limit = self.spec.progress_deadline_seconds
        deadline = add_seconds(started, limit)
        if self.now >= deadline:
            if not self.s.deadline_exceeded:
                self.update(deadline_exceeded=True)
                self.emit(
                    R.PROGRESS_DEADLINE_EXCEEDED,
                    what=message,
                    elapsed=format_seconds((self.now - started).total_seconds()),
                    deadline=limit,
                )
        else:
            self.wake(deadline)
        self.wake(add_seconds(self.now, POLL_SECONDS))

    def _progressed(self) -> None:
        if self.s.deadline_exceeded:
            self.update(deadline_exceeded=False)
            self.emit(R.PROGRESS_RESUMED, what=self.message or "the rollout moved on")

    def _stable_only(self) -> None:
        stable = self.s.stable_revision
        if stable is None:
            return
        if (
            self.s.rolled_back_revision is not None
            and self.s.rolled_back_revision == self.obs.template_hash
        ):
            return
        replicas = self.spec.replicas
        state = self.obs.revisions.get(stable)
        missing = None if self.obs.stable_service_exists else self.canary_spec.stable_service
        if state is not None and state.ready_for(replicas) and missing is None:
            actual = self.obs.actual_weight
            if self.router and actual is not None and actual != 0:
                # Decided (and recorded first), not yet done: Healthy and Ready only once the
                # router shows every request going to the stable Service.
                self._cluster_wait(
                    f"revision {stable} is stable: waiting for the router to report 0% to the "
                    f"canary ({actual}%)"
                )
                return
            self._progressed()
            return
        if self.prev.phase is Phase.HEALTHY:
            self.update(progress_started_at=self.now)
        if missing is not None:
            self._cluster_wait(f"waiting for Service {missing}")
            return
        have = state.available_replicas if state is not None else 0
        self._cluster_wait(f"waiting for stable revision {stable}: {have}/{replicas} available")

    def _retire(self) -> None:
        keep: list[RetiredRevision] = []
        in_use = {self.s.stable_revision, self.s.canary_revision}
        for retired in self.s.retired_revisions:
            if retired.revision in in_use:
                continue
            if self.now >= retired.remove_at:
                self.emit(R.REVISION_RETIRED, revision=retired.revision)
                continue
            keep.append(retired)
            self.wake(retired.remove_at)
        if keep != self.s.retired_revisions:
            self.update(retired_revisions=keep)

    # ---------------------------------------------------------------- phase and conditions

    def _finish(self) -> None:
        s = self.s
        stable = s.stable_revision or ""
        holding = (
            not self.canary_active
            and s.rolled_back_revision is not None
            and s.rolled_back_revision == self.obs.template_hash
        )
        pause: PauseReason | None = None
        if self.spec.paused:
            pause = PauseReason.SPEC_PAUSED
        elif self.obs.hold is not None:
            pause = PauseReason.OVERRIDE_HOLD
        elif self.canary_active:
            pause = s.pause_reason
        if holding:
            how = "aborted" if s.aborted else "rolled back"
            phase = Phase.DEGRADED
            degraded_reason = R.ABORTED.name if s.aborted else R.ROLLED_BACK.name
            run = s.analysis
            cause = ""
            if (
                not s.aborted
                and run is not None
                and run.revision == s.rolled_back_revision
                and run.message
            ):
                cause = f" ({run.message})"
            message = (
                f"revision {s.rolled_back_revision} was {how}{cause}; stable {stable} serves "
                "all traffic; change the template or set rollwise.dev/retry to try again"
            )
        elif s.deadline_exceeded:
            phase = Phase.DEGRADED
            degraded_reason = R.PROGRESS_DEADLINE_EXCEEDED.name
            message = f"progress deadline exceeded: {self.message}"
        elif pause is not None:
            phase = Phase.PAUSED
            degraded_reason = ""
            message = self.message or self.hold_text() or f"paused ({pause.value})"
        elif self.canary_active or self.cluster_wait:
            phase = Phase.PROGRESSING
            degraded_reason = ""
            message = self.message or "progressing"
        else:
            phase = Phase.HEALTHY
            degraded_reason = ""
            state = self.obs.revisions.get(stable)
            available = state.available_replicas if state is not None else 0
            message = (
                f"revision {stable} is stable at 100% ({available}/{self.spec.replicas} available)"
            )
        if self.obs.override_waiting:
            message = f"{message}; {self.obs.override_waiting}"
        message = clip(message)
        self._pause_events(pause)
        self._ready_events(phase, stable)
        self._set_conditions(phase, message, pause, degraded_reason, holding)
        counted = [r for r in (s.stable_revision, s.canary_revision) if r is not None]
        states = [self.obs.revisions[r] for r in counted if r in self.obs.revisions]
        self.update(
            phase=phase,
            message=message,
            replicas=sum(st.desired_replicas for st in states),
            available_replicas=sum(st.available_replicas for st in states),
        )
        self.wake(soonest_due(self.spec, self.s, held=self.held))

    def _pause_events(self, pause: PauseReason | None) -> None:
        """Paused and Resumed events for the pauses a person sets outside the steps:
        spec.paused and a hold override."""
        before = self.prev.condition(ConditionType.PAUSED)
        was = (
            before.reason if before is not None and before.status is ConditionStatus.TRUE else None
        )
        outside = {PauseReason.SPEC_PAUSED.value: "spec.paused cleared"}
        outside[PauseReason.OVERRIDE_HOLD.value] = "hold override ended"
        if pause is not None and pause.value in outside and was != pause.value:
            what = "paused by spec.paused" if pause is PauseReason.SPEC_PAUSED else self.hold_text()
            self.emit(R.PAUSED, what=what)
        elif (pause is None or pause.value not in outside) and was in outside:
            where = f"step {self.step_no()}/{self.n}" if self.canary_active else "stable"
            self.emit(R.RESUMED, what=outside[str(was)], where=where)

    def _ready_events(self, phase: Phase, stable: str) -> None:
        before = self.prev.condition(ConditionType.READY)
        initializing = before is None or before.reason == "Initializing"
        if phase is Phase.HEALTHY and initializing:
            state = self.obs.revisions.get(stable)
            self.emit(
                R.INITIALIZED,
                revision=stable,
                available=state.available_replicas if state is not None else 0,
                replicas=self.spec.replicas,
            )

    def _set_conditions(
        self,
        phase: Phase,
        message: str,
        pause: PauseReason | None,
        degraded_reason: str,
        holding: bool,
    ) -> None:
        gen = self.obs.generation
        before = self.prev.condition(ConditionType.READY)
        initializing = (before is None or before.reason == "Initializing") and not (
            self.canary_active or holding
        )
        true, false, unknown = ConditionStatus.TRUE, ConditionStatus.FALSE, ConditionStatus.UNKNOWN
        if phase is Phase.HEALTHY:
            ready = (true, "Healthy")
            progressing = (false, "Completed")
        else:
            ready = (false, "Initializing" if initializing else phase.value)
            if phase is Phase.PROGRESSING:
                progressing = (true, "Progressing")
            elif phase is Phase.PAUSED:
                progressing = (unknown, "Paused")
            else:
                progressing = (false, degraded_reason)
        conditions: list[tuple[ConditionType, ConditionStatus, str, str]] = [
            (ConditionType.READY, *ready, message),
            (ConditionType.AVAILABLE, *self._available()),
            (ConditionType.PROGRESSING, *progressing, message),
            (
                ConditionType.PAUSED,
                true if pause is not None else false,
                pause.value if pause is not None else "NotPaused",
                message if pause is not None else "",
            ),
            (
                ConditionType.DEGRADED,
                true if phase is Phase.DEGRADED else false,
                degraded_reason or "NotDegraded",
                message if phase is Phase.DEGRADED else "",
            ),
            (ConditionType.INVALID_SPEC, false, "Valid", ""),
        ]
        for type_, value, reason, text in conditions:
            self.s = self.s.with_condition(
                type_, value, reason=reason, message=text, now=self.now, generation=gen
            )

    def _available(self) -> tuple[ConditionStatus, str, str]:
        revisions = [r for r in (self.s.stable_revision, self.s.canary_revision) if r is not None]
        available = sum(
            self.obs.revisions[r].available_replicas for r in revisions if r in self.obs.revisions
        )
        text = f"{available}/{self.spec.replicas} pods available"
        if available >= self.spec.replicas:
            return ConditionStatus.TRUE, "MinimumReplicasAvailable", text
        return ConditionStatus.FALSE, "MinimumReplicasUnavailable", text

    # ---------------------------------------------------------------- actions and requeue

    def _actions(self) -> list[Action]:
        s = self.s
        stable = s.stable_revision
        if stable is None:
            return []
        canary = s.canary_revision
        replicas = self.spec.replicas
        rev = self.obs.template_hash
        rolled_back = s.rolled_back_revision if canary is None else None
        weight = s.canary_weight if canary is not None else 0
        targets: list[tuple[str, int]] = []
        if canary is not None:
            index = s.current_step_index or 0
            ahead = weight
            if index < self.n and not self.held:
                step_weight = self.steps[index].set_weight
                if step_weight is not None:
                    ahead = max(ahead, step_weight)
            canary_replicas = (
                replicas if index >= self.n else split(replicas, ahead, router=self.router).canary
            )
            stable_replicas = split(replicas, weight, router=self.router).stable
            targets = [(stable, stable_replicas), (canary, canary_replicas)]
        else:
            targets = [(stable, replicas)]
        if rolled_back is not None and rolled_back not in (stable, canary):
            targets.append((rolled_back, 0))

        ups: list[Action] = []
        downs: list[Action] = []
        for revision, count in targets:
            state = self.obs.revisions.get(revision)
            action: Action
            if revision == rev and revision != rolled_back:
                action = EnsureRevision(revision, count, self.spec.template)
            elif state is None:
                continue
            else:
                action = ScaleRevision(revision, count)
            if state is None or count >= state.desired_replicas:
                ups.append(action)
            else:
                downs.append(action)

        set_weight = SetWeight(canary or stable, stable, weight)
        actual = self.obs.actual_weight
        # Less traffic to the canary than now: move it before re-pointing the canary Service,
        # so a replaced canary's share goes back to stable, never to the unready newcomer.
        decreasing = actual is None or (
            expected_weight(replicas, weight, router=self.router) < actual
        )
        actions: list[Action] = [*ups, PointStableService(self.canary_spec.stable_service, stable)]
        if decreasing:
            actions.append(set_weight)
        actions.append(PointCanaryService(self.canary_spec.canary_service, canary or stable))
        if not decreasing:
            actions.append(set_weight)
        actions.extend(downs)
        referenced = {stable, canary, rolled_back} | {r.revision for r in s.retired_revisions}
        actions.extend(DeleteRevision(r) for r in sorted(self.obs.revisions) if r not in referenced)
        return actions

    def _requeue(self) -> float | None:
        if not self.wakes:
            return None
        soonest = min(self.wakes)
        return max((soonest - self.now).total_seconds(), 0.0)


__all__ = [
    "Action",
    "Decision",
    "DeleteRevision",
    "EnsureRevision",
    "Event",
    "PointCanaryService",
    "PointStableService",
    "ScaleRevision",
    "SetWeight",
    "decide",
]
