"""Blue-green (``strategy.blueGreen``) in a Rollout pass.

A blue-green Rollout runs through the same pass as a canary, without traffic weights: the
canary revision is the *preview*, the stable revision the *active* one, and the stages before
the switch are the steps of :func:`rollwise.core.spec.blue_green_steps` (the pre-promotion
analysis, then the wait for promotion). What differs is said here:

* **Preview**: a new revision's Deployment runs ``previewReplicaCount`` pods (``spec.replicas``
  without it) beside the active revision, which keeps its full count; the preview Service
  selects them. No stage starts before they are available (``PreviewReady``): the analysis
  judges a preview that serves, and ``autoPromotionSeconds`` counts from then.
* **Wait for promotion**: with ``autoPromotionEnabled: false`` the Rollout is Paused (reason
  ``AwaitingPromotion``, Argo CD health Suspended) until promoted; ``autoPromotionSeconds``
  waits that long instead.
* **Switch**: the preview is scaled to ``spec.replicas``; once every pod is available the active
  Service's selector moves to its revision in one write (``ActiveSwitched``; no pod restarts),
  and the previous revision keeps running for ``scaleDownDelaySeconds`` before it is removed.
* **Abort** before the switch (``rollwise.dev/abort``, ``kubectl rollwise abort``): the
  preview is dropped (scaled to 0, the preview Service back on the active revision), the active
  Service untouched, the Rollout Degraded (reason Aborted).

Pure: no clock (``now`` is an argument), no I/O.
"""

from __future__ import annotations

from typing import Any

from rollwise.core.durations import add_seconds
from rollwise.core.observations import ManualRequest
from rollwise.core.rollout import reasons as R
from rollwise.core.rollout.status import BlueGreenStatus, PauseReason
from rollwise.core.rollout.steps import Steps
from rollwise.core.spec import PauseStep


class BlueGreen(Steps):
    """The blue-green stages of a pass: the preview gate, the wait for promotion, the switch,
    and ``status.blueGreen``; a canary's pass goes straight through to :class:`Steps`."""

    #: Whether this pass switched the active Service to the new revision.
    switched_now: bool = False

    def _bg(self, **fields: Any) -> None:
        recorded = self.s.blue_green or BlueGreenStatus()
        self.update(blue_green=recorded.model_copy(update=fields))

    def _start_canary(self, rev: str) -> None:
        if self.blue_green is not None:
            self._bg(preview_revision=rev, preview_ready_at=None)
        super()._start_canary(rev)

    def _enter_step(self, index: int) -> None:
        if self.blue_green is None or self.preview_ready():
            super()._enter_step(index)
            return
        # The stage is entered once the preview is ready (_progress enters it again then):
        # until then no pause counts down and no analysis measures.
        self.update(
            current_step_index=index,
            step_started_at=self.now,
            progress_started_at=self.now,
            pause_started_at=None,
            pause_reason=None,
        )

    def _pause_entered(self, index: int, duration: str | None) -> None:
        if self.blue_green is None:
            super()._pause_entered(index, duration)
            return
        self.update(pause_started_at=self.now, pause_reason=PauseReason.AWAITING_PROMOTION)
        how = (
            f"promoted automatically after {duration}"
            if duration
            else f"{self._promote_hint()} switches the active Service"
        )
        self.emit(
            R.AWAITING_PROMOTION,
            revision=self.s.canary_revision,
            how=how,
            active=self.s.stable_revision,
        )

    def _promote_hint(self) -> str:
        return "kubectl rollwise promote (or the rollwise.dev/promote annotation)"

    def _progress(self) -> None:
        if self.blue_green is not None and self.canary_active and not self._preview_gate():
            return
        super()._progress()

    def _preview_gate(self) -> bool:
        """Whether the preview is ready; the first pass that finds it so records it, says so
        and enters the current stage for real."""
        if self.preview_ready():
            return True
        blue_green = self.blue_green
        canary = self.s.canary_revision
        if blue_green is None or canary is None:
            return False
        missing = self._missing_services()
        if missing:
            self._cluster_wait(f"preview {canary}: waiting for Service {missing}")
            return False
        want = self.preview_replicas()
        state = self.obs.revisions.get(canary)
        if state is None or not state.ready_for(want):
            have = state.available_replicas if state is not None else 0
            self._cluster_wait(f"preview {canary}: waiting for its pods: {have}/{want} available")
            return False
        self._bg(preview_revision=canary, preview_ready_at=self.now)
        self._progressed()
        service = blue_green.preview_service
        self.emit(
            R.PREVIEW_READY,
            revision=canary,
            available=state.available_replicas,
            replicas=want,
            service=f" behind Service {service}" if service else "",
            active=self.s.stable_revision,
        )
        self._enter_step(self.s.current_step_index or 0)
        return True

    def _pause_step(self, index: int, pause: PauseStep) -> bool:
        if self.blue_green is None:
            return super()._pause_step(index, pause)
        done = super()._pause_step(index, pause)
        if not done:
            preview, active = self.s.canary_revision, self.s.stable_revision
            if pause.duration is None:
                self.message = (
                    f"preview {preview} awaits promotion: {self._promote_hint()} switches the "
                    f"active Service from {active}"
                )
            else:
                self.message = f"preview {preview} awaits promotion: {self.message}"
        return done

    def _weight_step(self, index: int, weight: int) -> bool:
        """Blue-green's one weight step is the switch: once the new revision runs every pod,
        the active Service selects it (weight 100 in status; the action re-points the
        Service in one write)."""
        blue_green = self.blue_green
        if blue_green is None:
            return super()._weight_step(index, weight)
        canary, active = self.s.canary_revision, self.s.stable_revision
        if canary is None or active is None:
            return False
        if self.s.canary_weight < 100:
            replicas = self.spec.replicas
            state = self.obs.revisions.get(canary)
            if state is None or not state.ready_for(replicas):
                have = state.available_replicas if state is not None else 0
                self._cluster_wait(
                    f"preview {canary} scaling up for the switch: {have}/{replicas} available"
                )
                return False
            self.update(canary_weight=100, progress_started_at=self.now)
            self._bg(switched_at=self.now, previous_revision=active)
            self.switched_now = True
            self._progressed()
            after = (
                "its postPromotionAnalysis runs"
                if blue_green.post_promotion_analysis is not None
                else "the switch is complete"
            )
            self.emit(
                R.ACTIVE_SWITCHED,
                service=blue_green.active_service,
                previous=active,
                revision=canary,
                after=after,
            )
        return True

    def _rollback(self, *, cause: str = "", request: ManualRequest | None = None) -> None:
        blue_green = self.blue_green
        canary, active = self.s.canary_revision, self.s.stable_revision
        switched = blue_green is not None and self.s.canary_weight >= 100
        super()._rollback(cause=cause, request=request)
        if blue_green is None or not switched or canary is None or active is None:
            return
        # After the switch: the active Service goes back to the previous revision, which
        # still runs every pod (the action re-points it in one write).
        self._bg(switched_at=self.now, previous_revision=canary)
        self.emit(
            R.SWITCHED_BACK,
            service=blue_green.active_service,
            revision=canary,
            previous=active,
        )

    def _promoted(self, revision: str, previous: str, delay: int) -> None:
        blue_green = self.blue_green
        if blue_green is not None:
            recorded = self.s.blue_green
            switched = self.switched_now or (
                recorded is not None and recorded.active_revision == revision
            )
            if not switched:
                # Past the switch step (promote-full): the completion is the switch.
                self.emit(
                    R.ACTIVE_SWITCHED,
                    service=blue_green.active_service,
                    previous=previous,
                    revision=revision,
                    after="the switch is complete",
                )
                self._bg(switched_at=self.now)
            self._bg(previous_revision=previous, scale_down_at=add_seconds(self.now, delay))
        super()._promoted(revision, previous, delay)

    def active_revision(self) -> str | None:
        """The revision the active Service selects: the new one once switched."""
        canary = self.s.canary_revision
        if self.blue_green is not None and canary is not None and self.s.canary_weight >= 100:
            return canary
        return self.s.stable_revision

    def _finish(self) -> None:
        super()._finish()
        if self.blue_green is None:
            if self.s.blue_green is not None:
                self.update(blue_green=None)
            return
        recorded = self.s.blue_green or BlueGreenStatus()
        preview = self.s.canary_revision
        previous = recorded.previous_revision
        retired = {r.revision for r in self.s.retired_revisions}
        self.update(
            blue_green=recorded.model_copy(
                update={
                    "active_revision": self.active_revision(),
                    "preview_revision": preview,
                    "preview_ready_at": recorded.preview_ready_at if preview else None,
                    "scale_down_at": recorded.scale_down_at if previous in retired else None,
                }
            )
        )
