"""The state of one Rollout pass, shared by its concerns.

:class:`PassState` is the mutable scratchpad of one :func:`rollwise.core.rollout.canary.decide`
call: the spec, the previous status, the observations, ``now``, and the status, events and
wake-ups built so far, with the moves every concern makes (emit an event, take a request,
enter a step, roll back, wait on the cluster). The concerns build on it: requests
(:mod:`.requests`), analysis (:mod:`.analysis`), steps (:mod:`.steps`) and completion
(:mod:`.completion`); :class:`rollwise.core.rollout.canary._Pass` runs them in order.

Pure: no clock (``now`` is an argument), no I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rollwise.core.analysis import (
    checks_for_step,
    new_run,
)
from rollwise.core.durations import InvalidDuration, add_seconds, format_seconds, parse_seconds
from rollwise.core.events import Event
from rollwise.core.observations import (
    OVERRIDE_HANDLED_KEY,
    ManualRequest,
    Observations,
    RequestKind,
    baseline_revision_of,
)
from rollwise.core.reasons import Reason
from rollwise.core.rollout import reasons as R
from rollwise.core.rollout.actions import (
    POLL_SECONDS,
)
from rollwise.core.rollout.segments import (
    header_routes,
    mirror_routes,
    uses_header_routes,
    uses_mirror_routes,
)
from rollwise.core.rollout.status import (
    ApprovalStatus,
    PauseReason,
    RolloutStatus,
    step_text,
)
from rollwise.core.spec import ApprovalStep, RolloutSpec
from rollwise.core.status_model import format_time
from rollwise.core.traffic import HeaderRoute, MirrorRoute
from rollwise.core.validation import selector_string


class PassState:
    """The mutable scratchpad of one Rollout pass: what it read, what it has written so far,
    and the moves every concern makes (emit, wake, take a request, enter a step, roll back,
    wait on the cluster)."""

    def __init__(
        self, spec: RolloutSpec, previous: RolloutStatus, obs: Observations, now: datetime
    ) -> None:
        self.spec = spec
        self.canary_spec = spec.strategy.canary
        self.steps = self.canary_spec.steps
        self.n = len(self.steps)
        self.router = self.canary_spec.traffic_routing is not None
        #: Blue-green (:mod:`.bluegreen`): the canary revision is the preview, the stable one
        #: the active, and the promotion the switch of the active Service.
        self.blue_green = spec.strategy.blue_green
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
        self.s = sanitize(previous, self.n).model_copy(
            update={
                "observed_generation": obs.generation,
                "selector": selector_string(spec.selector),
            }
        )

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

    @property
    def baseline_revision(self) -> str | None:
        """The baseline's revision while a canary runs with ``baseline: true``; else None."""
        canary, stable = self.s.canary_revision, self.s.stable_revision
        if not self.canary_spec.baseline or canary is None or stable is None or canary == stable:
            return None
        return baseline_revision_of(stable)

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
            approvals=None,
        )

    def _start_canary(self, rev: str) -> None:
        self.update(
            canary_revision=rev,
            canary_weight=0,
            analysis=None,
            deadline_exceeded=False,
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
            self._pause_entered(index, step.pause.duration)
        elif step.analysis is not None:
            checks = checks_for_step(self.spec, index)
            if checks is not None and self.s.canary_revision is not None:
                self.update(analysis=new_run(index, self.s.canary_revision, checks, self.now))
        elif step.approval is not None:
            self._request_approval(index, step.approval)

    def _request_approval(self, index: int, step: ApprovalStep) -> None:
        """The approval step ``index`` begins: recorded in ``status.approvals`` (its deadline
        from now), the rollout pauses, ``ApprovalRequested``."""
        canary = self.s.canary_revision
        if canary is None:
            return
        deadline = None
        if step.timeout is not None:
            try:
                deadline = add_seconds(self.now, parse_seconds(step.timeout))
            except InvalidDuration:
                deadline = None
        self.update(
            pause_started_at=self.now,
            pause_reason=PauseReason.AWAITING_APPROVAL,
            approvals=ApprovalStatus(
                step_index=index,
                revision=canary,
                roles=list(step.roles),
                pending=list(step.roles),
                requested_at=self.now,
                deadline=deadline,
            ),
        )
        self.emit(
            R.APPROVAL_REQUESTED,
            step=index + 1,
            steps=self.n,
            revision=canary,
            roles=", ".join(step.roles),
            deadline=f" until {format_time(deadline)}" if deadline is not None else "",
        )

    def approval_pending(self, index: int) -> str:
        """The roles an approval step at ``index`` still waits for (empty: it is not an
        approval step, or it is approved)."""
        step = self.steps[index].approval if index < self.n else None
        if step is None:
            return ""
        st = self.s.approvals
        if st is not None and st.step_index == index and st.approved_at is not None:
            return ""
        if st is not None and st.step_index == index and st.revision == self.s.canary_revision:
            return ", ".join(st.pending)
        return ", ".join(step.roles)

    def _pause_entered(self, index: int, duration: str | None) -> None:
        """A pause step begins: its start and reason recorded, its Paused event."""
        self.update(pause_started_at=self.now, pause_reason=PauseReason.PAUSE_STEP)
        if duration:
            what = f"step {index + 1}/{self.n}: paused for {duration}"
        else:
            what = f"step {index + 1}/{self.n}: paused until promoted (rollwise.dev/promote)"
        self.emit(R.PAUSED, what=what)

    def preview_replicas(self) -> int:
        """Blue-green: the preview's pod count before the switch (``previewReplicaCount``,
        else ``spec.replicas``)."""
        blue_green = self.blue_green
        if blue_green is None or blue_green.preview_replica_count is None:
            return self.spec.replicas
        return min(blue_green.preview_replica_count, max(self.spec.replicas, 1))

    def preview_ready(self) -> bool:
        """Blue-green: whether the preview of the current canary revision was found ready
        (recorded once, so that a preview pod restarting later does not undo the stages)."""
        recorded = self.s.blue_green
        return (
            recorded is not None
            and recorded.preview_revision == self.s.canary_revision
            and recorded.preview_ready_at is not None
        )

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

    def wanted_header_routes(self) -> tuple[HeaderRoute, ...]:
        """The header routes the router should carry now: those of the steps already run, and
        the current setHeaderRoute step's once the canary has a pod to serve it; none without
        a canary (completion, rollback and abort remove them) or without a router."""
        canary = self.s.canary_revision
        if canary is None or not self.router:
            return ()
        index = self.s.current_step_index or 0
        upto = index
        if index < self.n and self.steps[index].set_header_route is not None:
            state = self.obs.revisions.get(canary)
            if state is not None and state.available_replicas >= 1:
                upto = index + 1
        return header_routes(self.steps, upto)

    def manages_header_routes(self) -> bool:
        """Whether this pass looks after header routes: the steps set some, or some are
        recorded or still found on the router (a spec edited since)."""
        return (
            uses_header_routes(self.steps)
            or bool(self.prev.header_routes)
            or bool(self.obs.actual_header_routes)
        )

    def wanted_mirror_routes(self) -> tuple[MirrorRoute, ...]:
        """The mirrors the router should carry now: those of the steps already run, and the
        current setMirrorRoute step's once the canary has a pod to receive the copies; none
        without a canary (completion, rollback and abort remove them) or without a router."""
        canary = self.s.canary_revision
        if canary is None or not self.router:
            return ()
        index = self.s.current_step_index or 0
        upto = index
        if index < self.n and self.steps[index].set_mirror_route is not None:
            state = self.obs.revisions.get(canary)
            if state is not None and state.available_replicas >= 1:
                upto = index + 1
        return mirror_routes(self.steps, upto)

    def manages_mirror_routes(self) -> bool:
        """Whether this pass looks after mirrors: the steps set some, or some are recorded or
        still found on the router (a spec edited since)."""
        return (
            uses_mirror_routes(self.steps)
            or bool(self.prev.mirror_routes)
            or bool(self.obs.actual_mirror_routes)
        )

    def _missing_services(self) -> str | None:
        if not self.obs.stable_service_exists:
            return self.canary_spec.stable_service
        if not self.obs.canary_service_exists:
            return self.canary_spec.canary_service
        if not self.obs.baseline_service_exists and self.canary_spec.baseline_service:
            return self.canary_spec.baseline_service
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


def sanitize(status: RolloutStatus, steps: int) -> RolloutStatus:
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
