"""The canary's steps in a Rollout pass: weight, pause and analysis steps, in order, each
entered once, until the last one promotes.

Pure: no clock (``now`` is an argument), no I/O.
"""

from __future__ import annotations

from rollwise.core.analysis import (
    checks_for_step,
)
from rollwise.core.decision import Action
from rollwise.core.durations import InvalidDuration, add_seconds, format_seconds, parse_seconds
from rollwise.core.rollout import reasons as R
from rollwise.core.rollout.analysis import Analysis
from rollwise.core.rollout.approvals import approve_hint, count_approvals
from rollwise.core.rollout.completion import Completion
from rollwise.core.rollout.segments import mirror_of, route_of
from rollwise.core.rollout.status import (
    GivenApproval,
    PauseReason,
)
from rollwise.core.spec import (
    ApprovalStep,
    HeaderRouteStep,
    MirrorRouteStep,
    PauseStep,
    WebhookType,
    step_what,
)
from rollwise.core.status_model import format_time
from rollwise.core.traffic import expected_weight, split, weights


class Steps(Analysis, Completion):
    """The canary's steps: weight, pause and analysis steps in order, each entered once, until the
    last one promotes."""

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
                if self._confirmed(
                    WebhookType.CONFIRM_PROMOTION, self.s.canary_revision or "", "promotion"
                ):
                    self._complete()
                return
            step = self.steps[index]
            if step.set_weight is not None:
                done = self._weight_step(index, step.set_weight)
            elif step.pause is not None:
                done = self._pause_step(index, step.pause)
            elif step.set_header_route is not None:
                done = self._header_route_step(index, step.set_header_route)
            elif step.set_mirror_route is not None:
                done = self._mirror_route_step(index, step.set_mirror_route)
            elif step.approval is not None:
                done = self._approval_step(index, step.approval)
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
                what=step_what(step),
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
            baseline = self.baseline_revision
            if baseline is not None:
                parts = split(self.spec.replicas, weight, router=self.router, baseline=True)
                state = self.obs.revisions.get(baseline)
                if parts.baseline > 0 and (state is None or not state.ready_for(parts.baseline)):
                    have = state.available_replicas if state is not None else 0
                    self._cluster_wait(
                        f"{head}: waiting for baseline {baseline}: "
                        f"{have}/{parts.baseline} available"
                    )
                    return False
            if self.s.canary_weight == 0 and not self._pre_rollout_open(head):
                return False
            if weight >= 100 and not self._confirmed(
                WebhookType.CONFIRM_PROMOTION, canary, f"{head}: 100% to the canary"
            ):
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
        expected = expected_weight(
            self.spec.replicas,
            self.s.canary_weight,
            router=self.router,
            baseline=self.baseline_revision is not None,
        )
        actual = self.obs.actual_weight
        if actual != expected:
            shown = "unknown" if actual is None else f"{actual}%"
            self._cluster_wait(f"{head}: waiting for the router to report {expected}% ({shown})")
            return False
        if self.router and self.baseline_revision is not None:
            # Read back like the canary's: a route edited behind the operator's back (or a
            # write not yet visible) must not let analysis judge against a starved baseline.
            want = weights(self.s.canary_weight, baseline=True).baseline
            got = self.obs.actual_baseline_weight
            if got != want:
                shown = "unknown" if got is None else f"{got}%"
                self._cluster_wait(
                    f"{head}: waiting for the router to report {want}% to the baseline ({shown})"
                )
                return False
        self._progressed()
        checks = checks_for_step(self.spec, index)
        if checks is None:
            return self._gate_open(index, head, Action.EXPAND)
        return self._run_gate(index, checks, head)

    def _split_text(self, weight: int) -> str:
        with_baseline = self.baseline_revision is not None
        if self.router:
            if with_baseline:
                shares = weights(weight, baseline=True)
                return f"stable {shares.stable}%, baseline {shares.baseline}%"
            return f"stable {100 - weight}%"
        parts = split(self.spec.replicas, weight, router=False, baseline=with_baseline)
        approx = expected_weight(self.spec.replicas, weight, router=False, baseline=with_baseline)
        if with_baseline:
            return (
                f"replica-ratio: {parts.canary} canary, {parts.baseline} baseline and "
                f"{parts.stable} stable pods, about {approx}% to the canary"
            )
        return (
            f"replica-ratio: {parts.canary} canary and {parts.stable} stable pods, "
            f"about {approx}% to the canary"
        )

    def _header_route_step(self, index: int, step: HeaderRouteStep) -> bool:
        """Done once the router reports exactly the routes wanted, this step's included."""
        head = f"step {index + 1}/{self.n} (setHeaderRoute {step.name})"
        canary = self.s.canary_revision
        state = self.obs.revisions.get(canary) if canary is not None else None
        if state is None or state.available_replicas < 1:
            self._cluster_wait(f"{head}: waiting for a canary pod to serve the route")
            return False
        missing = self._missing_services()
        if missing:
            self._cluster_wait(f"{head}: waiting for Service {missing}")
            return False
        if not self._pre_rollout_open(head):
            return False
        want = self.wanted_header_routes()
        if self.obs.actual_header_routes != want:
            self._cluster_wait(f"{head}: waiting for the router to report the header routes")
            return False
        route = route_of(step)
        self.emit(
            R.HEADER_ROUTE_SET,
            step=index + 1,
            steps=self.n,
            route=(
                f"{route.text()} sends matching requests to the canary"
                if route is not None
                else f"{step.name} removed"
            ),
        )
        self._progressed()
        return True

    def _mirror_route_step(self, index: int, step: MirrorRouteStep) -> bool:
        """Done once the router reports exactly the mirrors wanted, this step's included."""
        head = f"step {index + 1}/{self.n} (setMirrorRoute {step.name})"
        canary = self.s.canary_revision
        state = self.obs.revisions.get(canary) if canary is not None else None
        if state is None or state.available_replicas < 1:
            self._cluster_wait(f"{head}: waiting for a canary pod to receive the copies")
            return False
        missing = self._missing_services()
        if missing:
            self._cluster_wait(f"{head}: waiting for Service {missing}")
            return False
        if not self._pre_rollout_open(head):
            return False
        if self.obs.actual_mirror_routes != self.wanted_mirror_routes():
            self._cluster_wait(f"{head}: waiting for the router to report the mirror")
            return False
        route = mirror_of(step)
        self.emit(
            R.MIRROR_ROUTE_SET,
            step=index + 1,
            steps=self.n,
            route=route.text() if route is not None else f"{step.name} removed",
        )
        self._progressed()
        return True

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

    def _approval_step(self, index: int, step: ApprovalStep) -> bool:
        """Done once every role approved the canary revision (distinct people, none of them
        the template's author); past the timeout it keeps holding, with a Warning."""
        canary = self.s.canary_revision
        if canary is None:
            return False
        st = self.s.approvals
        if st is None or st.step_index != index or st.revision != canary:
            self._request_approval(index, step)
            st = self.s.approvals
            if st is None:
                return False
        head = f"step {index + 1}/{self.n} (approval)"
        counted = count_approvals(
            self.obs.approvals,
            self.obs.template_author,
            roles=step.roles,
            revision=canary,
            step=index,
        )
        granted = [
            GivenApproval(role=role, user=a.user, at=a.at)
            for role in step.roles
            if (a := counted.granted.get(role)) is not None
        ]
        pending = [role for role in step.roles if role not in counted.granted]
        before = {(g.role, g.user) for g in st.granted}
        for given in granted:
            if (given.role, given.user) not in before:
                left = (
                    f"waiting for {', '.join(pending)}"
                    if pending
                    else "every role approved; going on"
                )
                self.emit(
                    R.APPROVAL_GRANTED,
                    step=index + 1,
                    steps=self.n,
                    user=given.user,
                    revision=canary,
                    role=given.role,
                    left=left,
                )
        for refused in counted.refused:
            if refused not in st.refused:
                self.emit(
                    R.APPROVAL_REFUSED,
                    detail=f"{head}: approval by {refused}; it does not count",
                )
        st = st.model_copy(
            update={
                "granted": granted,
                "pending": pending,
                "refused": list(counted.refused),
                "template_changed_by": counted.author,
            }
        )
        if not pending:
            self.update(approvals=st.model_copy(update={"approved_at": self.now}))
            self._progressed()
            return True
        waiting = f"{head}: waiting for approval by {', '.join(pending)}"
        if granted:
            waiting += " (" + ", ".join(f"{g.role}: {g.user}" for g in granted) + ")"
        if counted.author is None:
            waiting += (
                f"; who changed the template to revision {canary} is not recorded, so no "
                "approval can count"
            )
        hint = approve_hint(self.obs.name or "NAME", pending[0])
        deadline = st.deadline
        if deadline is not None and self.now >= deadline:
            if not st.timed_out:
                self.emit(
                    R.APPROVAL_TIMED_OUT,
                    step=index + 1,
                    steps=self.n,
                    revision=canary,
                    pending=", ".join(pending),
                    timeout=step.timeout or "",
                )
            st = st.model_copy(update={"timed_out": True})
            self.update(approvals=st, pause_reason=PauseReason.APPROVAL_TIMED_OUT)
            self.message = f"{waiting}; timed out at {format_time(deadline)}, holding ({hint})"
            return False
        if deadline is not None:
            self.wake(deadline)
            left = format_seconds((deadline - self.now).total_seconds())
            waiting += f"; {left} left"
        self.update(approvals=st, pause_reason=PauseReason.AWAITING_APPROVAL)
        if self.s.pause_started_at is None:
            self.update(pause_started_at=self.now)
        self.message = f"{waiting} ({hint})"
        return False

    def _analysis_step(self, index: int) -> bool:
        checks = checks_for_step(self.spec, index)
        if checks is None:
            return True
        return self._run_gate(index, checks, f"step {index + 1}/{self.n} (analysis)")
