"""The release's canary in a pass: the child Rollout that serves a template (followed), a
first release analysed alone, or a KServe InferenceService stepped through its weights.

Pure: no clock (``now`` is an argument), no I/O.
"""

from __future__ import annotations

from typing import Any

from rollwise.core.analysis import (
    Recorded,
    any_inconclusive,
    checks_for,
    measured_text,
    new_run,
    next_due,
)
from rollwise.core.decision import settle
from rollwise.core.durations import InvalidDuration, add_seconds, format_seconds, parse_seconds
from rollwise.core.judging import record_due, step_decision
from rollwise.core.modelrelease import reasons as R
from rollwise.core.modelrelease.analysis import (
    _active_run,
    release_due_metrics,
)
from rollwise.core.modelrelease.observations import (
    BACKEND_KSERVE,
    BACKEND_TEMPLATE,
    ChildRolloutState,
    InferenceServiceState,
)
from rollwise.core.modelrelease.spec import (
    child_revision,
    child_rollout_name,
)
from rollwise.core.modelrelease.state import PassState
from rollwise.core.modelrelease.status import (
    ServingStatus,
    Stage,
)
from rollwise.core.observations import revision_of
from rollwise.core.phases import Phase
from rollwise.core.runs import AnalysisRun, MetricRun, Verdict
from rollwise.core.spec import step_what


def _failure_message(rec: Recorded) -> str | None:
    """What a measurement that decided its metric's failure says of it."""
    if rec.run.verdict is Verdict.FAIL and rec.decided:
        return f"{rec.assessment.message} ({rec.run.message})"
    return None


class Canary(PassState):
    """The release's canary: a child Rollout followed, a first release analysed alone, or a KServe
    canary stepped through its weights."""

    def _start_serving(self) -> None:
        if self.backend == BACKEND_TEMPLATE:
            child = self.obs.child
            rev = child_revision(self.spec)
            previous = None
            if (
                child is not None
                and child.exists
                and child.template is not None
                and revision_of(child.template) != rev
            ):
                previous = dict(child.template)
            self.update(
                serving=ServingStatus(
                    backend=BACKEND_TEMPLATE,
                    name=child_rollout_name(self.spec),
                    revision=rev,
                    step_started_at=self.now,
                    previous_template=previous,
                    # A new child Rollout serves this version alone from its first pass:
                    # nothing to canary against, so the release analyses it by itself.
                    solo=child is None or not child.exists,
                )
            )
            return
        ref = self.spec.serving.inference_service_ref
        isvc = self.obs.inference_service
        previous_uri = None
        if isvc is not None and isvc.exists and isvc.storage_uri != self.spec.artifact.uri:
            previous_uri = isvc.storage_uri
        self.update(
            serving=ServingStatus(
                backend=BACKEND_KSERVE,
                name=ref.name if ref is not None else "",
                step_started_at=self.now,
                previous_storage_uri=previous_uri,
            )
        )
        self._enter_step(0)

    def _follow_child(self) -> None:
        sv = self.s.serving
        if sv is None:
            return
        rev = sv.revision
        child = self.obs.child
        if child is None or not child.exists:
            self.cluster_wait(f"waiting for child Rollout {sv.name}")
            return
        if rev is not None and child.rolled_back_revision == rev:
            self._mirror_decision(child)
            cause = child.message or "the child Rollout rolled the canary back"
            self.serving(failure=cause, traffic_off="none", weight=0)
            self._rolled_back(cause)
            return
        if (
            child.phase is Phase.HEALTHY
            and child.stable_revision == rev
            and child.canary_revision is None
        ):
            if sv.solo and self._has_checks():
                self._solo()
                return
            if not sv.solo:
                self._mirror_decision(child)
            detail = f"child Rollout {sv.name} serves revision {rev} at 100%"
            if sv.solo:
                detail += "; first release: nothing to compare with, and the canary has no analysis"
            self.serving(passed=True, weight=100, step_index=self.n)
            self.emit(R.CANARY_PASSED, version=self.spec.version, detail=detail)
            return
        if child.canary_revision == rev:
            self._mirror_decision(child)
            step = (child.current_step_index or 0) + 1
            self.serving(weight=child.canary_weight, step_index=child.current_step_index or 0)
            self.cluster_wait(
                f"canary running in child Rollout {sv.name}: step {min(step, self.n)}/{self.n}, "
                f"weight {child.canary_weight}%"
            )
            return
        self.cluster_wait(f"waiting for child Rollout {sv.name} to pick up revision {rev}")

    def _mirror_decision(self, child: ChildRolloutState) -> None:
        """The child Rollout's ``status.decision`` copied into the release's while the child
        runs this release's canary, and in the pass that sees it end (rolled back or
        promoted): the last one then stays, as in the child. The child already posted its
        DecisionChanged event and counted it, so the copy posts no event of its own (the
        release's DecisionChanged is for its own canary); none or an unreadable one in the
        child leaves the release's as it was."""
        if child.decision is not None and child.decision != self.s.decision:
            self.update(decision=child.decision)

    def _has_checks(self) -> bool:
        return any(
            checks_for(self.steps, self.spec.canary.analysis, i) is not None for i in range(self.n)
        )

    def _solo(self) -> None:
        """The first release through a new child Rollout: it serves the new version alone at
        100%, so the canary's steps run without moving traffic: each step's analysis measures
        the new version by itself (pauses are kept as bake time), and any failure rolls the
        release back (the child Rollout is scaled to zero: nothing served before it)."""
        sv = self.s.serving
        if sv is None:
            return
        if sv.solo_started_at is None:
            self.emit(
                R.CANARY_WITHOUT_BASELINE, version=self.spec.version, name=sv.name, steps=self.n
            )
            self.serving(solo_started_at=self.now)
            self._enter_step(0)
            self.serving(weight=100)
        self._record_measurements()
        for _ in range(self.n + 2):
            sv = self.s.serving
            if sv is None or sv.failure is not None or self.stage is not Stage.STAGING:
                return
            index = sv.step_index
            if index >= self.n:
                self.serving(passed=True, weight=100)
                self.emit(
                    R.CANARY_PASSED,
                    version=self.spec.version,
                    detail=(
                        f"child Rollout {sv.name} serves revision {sv.revision} at 100%; "
                        "first release: its analysis ran on this version alone"
                    ),
                )
                return
            step = self.steps[index]
            head = f"canary step {index + 1}/{self.n} ({step_what(step)}; no baseline)"
            if step.pause is not None:
                done = self._pause(step.pause.duration or "0s", head)
            else:
                done = self._analysis_gate(index, head)
            if not done:
                return
            following = (
                f"now at step {index + 2}/{self.n}" if index + 1 < self.n else "all steps done"
            )
            self.emit(
                R.CANARY_STEP,
                step=index + 1,
                steps=self.n,
                what=f"{step_what(step)} complete (no baseline); {following}",
            )
            self._enter_step(index + 1)
            self.serving(weight=100)

    def _enter_step(self, index: int) -> None:
        sv = self.s.serving
        if sv is None:
            return
        weight = sv.weight
        run: AnalysisRun | None = None
        if index < self.n:
            step = self.steps[index]
            if step.set_weight is not None:
                weight = step.set_weight
            elif step.analysis is not None:
                checks = checks_for(self.steps, self.spec.canary.analysis, index)
                if checks is not None:
                    run = new_run(index, sv.revision or "", checks, self.now)
        # The previous step's finished run stays visible until this step starts its own.
        update: dict[str, Any] = {
            "step_index": index,
            "weight": weight,
            "step_started_at": self.now,
        }
        if run is not None:
            update["analysis"] = run
        self.serving(**update)

    def _kserve(self) -> None:
        self._record_measurements()
        sv = self.s.serving
        if sv is None or sv.failure is not None:
            return
        isvc = self.obs.inference_service
        if isvc is None or not isvc.exists:
            self.cluster_wait(f"waiting for InferenceService {sv.name}")
            return
        for _ in range(self.n + 2):
            sv = self.s.serving
            if sv is None or sv.failure is not None or self.stage is not Stage.STAGING:
                return
            index = sv.step_index
            if index >= self.n:
                self._kserve_complete(isvc)
                return
            step = self.steps[index]
            head = f"canary step {index + 1}/{self.n} ({step_what(step)})"
            if step.set_weight is not None:
                done = self._kserve_weight(isvc, index, step.set_weight, head)
            elif step.pause is not None:
                done = self._pause(step.pause.duration or "0s", head)
            else:
                done = self._analysis_gate(index, head)
            if not done:
                return
            following = (
                f"now at step {index + 2}/{self.n}" if index + 1 < self.n else "all steps done"
            )
            self.emit(
                R.CANARY_STEP,
                step=index + 1,
                steps=self.n,
                what=f"{step_what(step)} complete; {following}",
            )
            self._enter_step(index + 1)

    def _revision_ready(self, isvc: InferenceServiceState) -> str | None:
        if not isvc.observed_current or isvc.storage_uri != self.spec.artifact.uri:
            return None
        ready = isvc.latest_ready_revision
        if ready is None or ready != isvc.latest_created_revision:
            return None
        return ready

    def _kserve_weight(
        self, isvc: InferenceServiceState, index: int, weight: int, head: str
    ) -> bool:
        sv = self.s.serving
        if sv is None:
            return False
        ready = self._revision_ready(isvc)
        if ready is None:
            self.cluster_wait(f"{head}: waiting for the new revision of {sv.name} to be ready")
            return False
        if sv.revision != ready:
            stable = isvc.latest_rolledout_revision
            self.serving(revision=ready, stable_revision=stable if stable != ready else None)
            run = sv.analysis
            if run is not None and run.revision != ready:
                self.serving(analysis=run.model_copy(update={"revision": ready}))
        first = sv.previous_storage_uri is None
        if isvc.latest_percent != weight and not (first and isvc.latest_percent == 100):
            shown = "unknown" if isvc.latest_percent is None else f"{isvc.latest_percent}%"
            self.cluster_wait(f"{head}: waiting for KServe to report {weight}% ({shown})")
            return False
        return self._analysis_gate(index, head)

    def _pause(self, duration: str, head: str) -> bool:
        sv = self.s.serving
        if sv is None:
            return False
        try:
            seconds = parse_seconds(duration)
        except InvalidDuration:
            seconds = 0.0
        started = sv.step_started_at or self.now
        end = add_seconds(started, seconds)
        if self.now >= end:
            return True
        self.wake(end)
        left = format_seconds((end - self.now).total_seconds())
        self.message = f"{head}: paused, {left} left"
        return False

    def _analysis_gate(self, index: int, head: str) -> bool:
        checks = checks_for(self.steps, self.spec.canary.analysis, index)
        sv = self.s.serving
        if checks is None or sv is None:
            return True
        run = sv.analysis
        if run is None or run.step_index != index:
            run = new_run(index, sv.revision or "", checks, self.now)
            self.serving(analysis=run)
        if run.verdict is Verdict.PASS:
            return True
        if run.verdict is Verdict.INCONCLUSIVE or any_inconclusive(run):
            self.wait(
                f"{head}: analysis inconclusive; held (never promoted nor rolled back on "
                "missing data; revoke to stop)"
            )
            return False
        summary = ", ".join(
            f"{m.name} {(run.metric(m.name) or MetricRun(name=m.name)).taken}/{m.count}"
            for m in checks.metrics
        )
        self.message = f"{head}: analysis running ({summary})"
        return False

    def _record_measurements(self) -> None:
        active = _active_run(self.spec, self.s)
        if active is None or not self.obs.measurements:
            return
        checks, run = active
        due = {d.metric.name for d in release_due_metrics(self.spec, self.s, self.now)}
        updated = record_due(
            checks, run, self.obs.measurements, due, now=self.now, recorded=_failure_message
        )
        verdict, failure = updated.verdict, updated.message
        self.serving(analysis=updated)
        if verdict is Verdict.FAIL:
            step = run.step_index + 1
            cause = f"canary step {step}/{self.n}: {failure or 'analysis failed'}"
            off = "pin" if self.backend == BACKEND_KSERVE else "revert"
            self.serving(failure=cause, traffic_off=off, weight=0)
            self._rolled_back(cause)

    def _kserve_complete(self, isvc: InferenceServiceState) -> None:
        sv = self.s.serving
        if sv is None:
            return
        if sv.revision is None:
            ready = self._revision_ready(isvc)
            if ready is not None:
                self.serving(revision=ready)
                sv = self.s.serving
                if sv is None:
                    return
        rolled_out = (
            isvc.observed_current
            and isvc.canary_traffic_percent is None
            and isvc.storage_uri == self.spec.artifact.uri
            and sv.revision is not None
            and isvc.latest_rolledout_revision == sv.revision
        )
        if not rolled_out:
            self.cluster_wait(
                f"all canary steps done: waiting for KServe to roll revision "
                f"{sv.revision or '?'} of {sv.name} out to 100%"
            )
            return
        self.serving(passed=True, weight=100)
        last = sv.analysis
        detail = f"InferenceService {sv.name} serves revision {sv.revision} at 100%"
        if last is not None and last.metrics:
            values = []
            for m in last.metrics:
                shown = measured_text(m.measurements[-1]) if m.measurements else "not measured"
                values.append(f"{m.name} {shown}")
            detail += " (last analysis: " + ", ".join(values) + ")"
        self.emit(R.CANARY_PASSED, version=self.spec.version, detail=detail)

    def _wake_analysis(self) -> None:
        active = _active_run(self.spec, self.s)
        if active is None:
            return
        checks, run = active
        times = [t for m in checks.metrics if (t := next_due(checks, m, run)) is not None]
        if times:
            self.wake(min(times))

    def _decide_canary(self) -> None:
        """``status.decision`` for the release's own canary analysis (a KServe canary, or a
        first release analysed alone), every pass while it runs and in the pass that ends it;
        settled, with one DecisionChanged event per change. A child Rollout's canary carries
        its decision in the child's status, mirrored by :meth:`_mirror_decision`."""
        sv = self.s.serving
        if sv is None or sv.analysis is None:
            return
        own = sv.backend == BACKEND_KSERVE or sv.solo
        previous = self.prev.serving
        ended_now = sv.analysis.verdict is not None and (
            previous is None or previous.analysis is None or previous.analysis.verdict is None
        )
        if not own or (sv.analysis.verdict is not None and not ended_now):
            return
        run = sv.analysis
        checks = checks_for(self.steps, self.spec.canary.analysis, run.step_index)
        new = step_decision(
            checks,
            run,
            now=self.now,
            observed=self.now - run.started_at,
            mode=self.spec.canary.decision_mode,
        )
        before = self.s.decision
        decision = settle(before, new)
        if decision is before:
            return
        self.update(decision=decision)
        key = (decision.action, decision.confidence, [r.code for r in decision.reasons])
        if (
            before is not None
            and (
                before.action,
                before.confidence,
                [r.code for r in before.reasons],
            )
            == key
        ):
            return
        self.emit(
            R.DECISION_CHANGED,
            step=run.step_index + 1,
            steps=self.n,
            action=decision.action.value,
            confidence=decision.confidence.value,
            codes=", ".join(r.code for r in decision.reasons),
            message=decision.message,
        )
