"""The Rollout's analysis: the run of the step in progress, what is due now, and the query
placeholders' values (the run rules themselves: :mod:`rollwise.core.analysis`).

Pure: no clock (``now`` is an argument), no I/O.
"""

from __future__ import annotations

from datetime import datetime

from rollwise.core.analysis import (
    MetricDue,
    Recorded,
    StepChecks,
    any_inconclusive,
    checks_for_step,
    due_now,
    measured_text,
    new_run,
    next_due,
)
from rollwise.core.decision import Action, Mode, settle
from rollwise.core.judging import record_due, step_decision
from rollwise.core.rollout import reasons as R
from rollwise.core.rollout.state import PassState
from rollwise.core.rollout.status import (
    PauseReason,
    RolloutStatus,
)
from rollwise.core.runs import AnalysisRun, MetricRun, Verdict
from rollwise.core.spec import RolloutSpec


def active_run(
    spec: RolloutSpec, status: RolloutStatus | None, *, held: bool = False
) -> tuple[StepChecks, AnalysisRun] | None:
    """The analysis being measured now, if any: a canary at a step with checks, whose run
    belongs to that step and revision, not stopped by spec.paused nor by a hold override
    (``held``)."""
    if status is None or status.canary_revision is None or status.current_step_index is None:
        return None
    if spec.paused or held or status.rolled_back_revision == status.canary_revision:
        return None
    run = status.analysis
    if run is None or run.step_index != status.current_step_index:
        return None
    if run.revision != status.canary_revision or run.verdict is not None:
        return None
    checks = checks_for_step(spec, status.current_step_index)
    if checks is None:
        return None
    return checks, run


def due_metrics(
    spec: RolloutSpec, status: RolloutStatus | None, now: datetime, *, held: bool = False
) -> list[MetricDue]:
    """The metrics to query now, in spec order (none while ``held`` by a hold override)."""
    active = active_run(spec, status, held=held)
    if active is None:
        return []
    checks, run = active
    return due_now(checks, run, now)


def soonest_due(
    spec: RolloutSpec, status: RolloutStatus | None, *, held: bool = False
) -> datetime | None:
    """When the next metric of the active analysis is due; None when none is pending."""
    active = active_run(spec, status, held=held)
    if active is None:
        return None
    checks, run = active
    times = [t for m in checks.metrics if (t := next_due(checks, m, run)) is not None]
    return min(times) if times else None


def query_context(
    namespace: str, name: str, spec: RolloutSpec, status: RolloutStatus | None
) -> dict[str, str]:
    """The values of the query placeholders for a rollout in ``status``.

    ``baselineRevision`` is the baseline's revision while one runs (``status.baseline``), else
    the stable revision: the control a canary is compared with either way."""
    stable = status.stable_revision if status is not None else None
    canary = status.canary_revision if status is not None else None
    baseline = status.baseline.revision if status is not None and status.baseline else None
    return {
        "namespace": namespace,
        "name": name,
        "stableRevision": stable or "",
        "canaryRevision": canary or stable or "",
        "baselineRevision": baseline or stable or "",
        "stableService": spec.strategy.canary.stable_service,
        "canaryService": spec.strategy.canary.canary_service,
    }


class Analysis(PassState):
    """The step analysis inside a pass: measurements recorded with their events, and the gate a step
    with checks passes, holds at or rolls back on."""

    def _record_measurements(self) -> None:
        active = active_run(self.spec, self.s, held=self.held)
        if active is None or not self.obs.measurements:
            return
        checks, run = active
        due = {d.metric.name for d in due_metrics(self.spec, self.s, self.now, held=self.held)}
        index = run.step_index
        updated = record_due(
            checks,
            run,
            self.obs.measurements,
            due,
            now=self.now,
            recorded=lambda rec: self._measurement_event(index, checks, rec.run, rec),
        )
        verdict, failure = updated.verdict, updated.message
        self.update(analysis=updated)
        if verdict is Verdict.FAIL:
            if self.advisory:
                # Advisory mode never acts on its own: the gate holds and the decision asks
                # a human to abort.
                return
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
            if self.s.pause_reason is not PauseReason.AWAITING_DECISION:
                self.emit(
                    R.ANALYSIS_PASSED,
                    step=index + 1,
                    steps=self.n,
                    summary=self._analysis_summary(checks, run),
                )
            return self._gate_open(index, head, Action.EXPAND)
        if verdict is Verdict.FAIL:
            if self.advisory:
                return self._gate_open(index, head, Action.ROLLBACK)
            self._rollback(cause=run.message or "analysis failed")
            return False
        self.message = f"{head}: analysis running ({self._analysis_summary(checks, run)})"
        return False

    @property
    def advisory(self) -> bool:
        return self.canary_spec.decision_mode is Mode.ADVISORY

    def _gate_open(self, index: int, head: str, recommended: Action) -> bool:
        """Whether the step may move on now that its gate is reached: at once in auto mode;
        in advisory mode never by itself (a promote request moves on, an abort rolls back)."""
        if not self.advisory:
            return True
        if self.s.pause_reason is not PauseReason.AWAITING_DECISION:
            self.update(pause_reason=PauseReason.AWAITING_DECISION, pause_started_at=self.now)
            verb = "roll back" if recommended is Action.ROLLBACK else "move on"
            self.emit(R.AWAITING_DECISION, step=index + 1, steps=self.n, recommended=verb)
        self.message = (
            f"{head}: advisory mode: waiting for a human to promote (rollwise.dev/promote) or "
            "abort (rollwise.dev/abort); see status.decision"
        )
        return False

    def _decide_step(self) -> None:
        """``status.decision``: the judgement of the canary's current step, every pass of an
        active canary (settled, so that it changes only when its content does), with one
        DecisionChanged event per change. The pass that rolls a canary back records the
        rollback decision of the failed step; otherwise the last decision stays once the
        canary ended (promoted, cancelled), for the record."""
        s = self.s
        ended = self.prev.canary_revision if not self.canary_active else None
        final = (
            ended is not None
            and s.analysis is not None
            and s.analysis.revision == ended
            and s.analysis.verdict is not None
        )
        if final and s.analysis is not None:
            # The canary ended in this pass (rolled back, or promoted after its last
            # analysis): the decision of that analysis is the one that acted.
            index: int | None = s.analysis.step_index
            revision = ended
        else:
            index, revision = s.current_step_index, s.canary_revision
        if not (self.canary_active or final) or index is None or revision is None:
            return
        checks = checks_for_step(self.spec, index) if index < self.n else None
        run = s.analysis
        if run is None or run.step_index != index or run.revision != revision:
            # Not measuring yet (the weight is not served): the checks are pending.
            run = new_run(index, revision, checks, self.now) if checks is not None else None
        started = run.started_at if run is not None else (s.step_started_at or self.now)
        mode = self.canary_spec.decision_mode
        new = step_decision(
            checks,
            run,
            now=self.now,
            observed=self.now - started,
            mode=mode,
        )
        decision = settle(s.decision, new)
        if decision is s.decision:
            return
        self.update(decision=decision)
        previous = s.decision
        if previous is not None and (
            previous.action,
            previous.recommended,
            previous.confidence,
            [r.code for r in previous.reasons],
        ) == (
            decision.action,
            decision.recommended,
            decision.confidence,
            [r.code for r in decision.reasons],
        ):
            return  # only the numbers moved: the status shows them, no event
        self.emit(
            R.DECISION_CHANGED,
            step=self.step_no(index),
            steps=self.n,
            action=decision.action.value,
            confidence=decision.confidence.value,
            codes=", ".join(r.code for r in decision.reasons),
            message=decision.message,
        )
