"""The manual requests and revision changes of a Rollout pass.

A new template starts a canary (or, with nothing to canary against, becomes stable); retry,
promote, promote-full and abort each act once (``status.handledRequests``), and a request
that cannot act now is reported as ignored.

Pure: no clock, no I/O.
"""

from __future__ import annotations

from rollwise.core.analysis import (
    checks_for_step,
    new_run,
)
from rollwise.core.durations import add_seconds
from rollwise.core.observations import (
    ManualRequest,
    RequestKind,
)
from rollwise.core.rollout import reasons as R
from rollwise.core.rollout.status import (
    ConditionType,
    PauseReason,
)
from rollwise.core.rollout.upstream import describe, standings
from rollwise.core.rollout.watch import Watch
from rollwise.core.spec import WebhookType, step_what

#: How often a revision waiting for its upstream Rollouts reads them again (they live in
#: other namespaces, outside the Rollout's own watch); a soak's end wakes it at once.
UPSTREAM_POLL_SECONDS = 10.0


class Requests(Watch):
    """Manual requests and revision changes: a new template starts a canary (once its upstream
    Rollouts soaked it), retry, promote, promote-full and abort act once each, leftovers are
    reported as ignored."""

    def _spec_corrected(self) -> None:
        if self.prev.is_true(ConditionType.INVALID_SPEC):
            self.emit(R.SPEC_CORRECTED)

    def _track_revision(self) -> None:
        rev = self.obs.template_hash
        if self.s.awaiting_upstream is not None:
            # Set again below while the revision still waits.
            self.update(awaiting_upstream=None)
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
        if s.canary_revision is None and self._regression_holds():
            return
        if self._awaits_upstream(rev):
            return
        if self._awaits_confirmation(rev):
            return
        s = self.s
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

    def _awaits_upstream(self, rev: str) -> bool:
        """Whether the new revision ``rev`` waits for the upstream Rollouts of
        ``spec.promotion.after``; a canary of an earlier revision is then dropped. A confirmed
        promote override (two persons) lets it through: its promote-full starts the canary and
        completes it in this pass."""
        promotion = self.spec.promotion
        if promotion is None or not promotion.after:
            return False
        found = standings(promotion.after, self.obs.upstreams, rev, self.now)
        if all(standing.ready for standing in found):
            if self.prev.awaiting_upstream == rev:
                self.emit(R.UPSTREAM_SOAKED, revision=rev, detail=describe(found, ready=True))
            return False
        full = self.pending.get(RequestKind.PROMOTE_FULL)
        if full is not None and any(full is r for r in self.from_override):
            if self.prev.awaiting_upstream == rev:
                # Read against a status that records the wait: confirmed by a second person.
                return False
            # Read before the revision was recorded as waiting, so nothing asked for its
            # confirmation: left for the next pass, which does.
            del self.pending[RequestKind.PROMOTE_FULL]
        detail = describe(found, ready=False)
        self.upstream_wait = f"new revision {rev} waits for upstream: {detail}"
        dropped = ""
        canary = self.s.canary_revision
        if canary is not None:
            dropped = f"; canary {canary} dropped, stable {self.s.stable_revision} serves"
            self._clear_canary()
        if self.prev.awaiting_upstream != rev or dropped:
            self.emit(R.AWAITING_UPSTREAM, revision=rev, detail=detail, dropped=dropped)
        self.update(awaiting_upstream=rev)
        for standing in found:
            if not standing.ready and standing.until is not None:
                self.wake(standing.until)
        # Upstream Rollouts live in other namespaces, outside this Rollout's watch: polled.
        self.wake(add_seconds(self.now, UPSTREAM_POLL_SECONDS))
        return True

    def _awaits_confirmation(self, rev: str) -> bool:
        """Whether the new revision ``rev`` waits for its confirm-rollout webhooks (nothing of
        it is scaled or routed meanwhile); a canary of an earlier revision is then dropped."""
        if self._confirmed(WebhookType.CONFIRM_ROLLOUT, rev, f"new revision {rev}"):
            return False
        canary = self.s.canary_revision
        if canary is not None:
            self.confirm_wait += (
                f"; canary {canary} dropped, stable {self.s.stable_revision} serves"
            )
            self._clear_canary()
        return True

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
        index = self.s.current_step_index or 0
        gate = next(
            (i for i in range(index, self.n) if self.approval_pending(i)),
            None,
        )
        if full is not None and gate is not None:
            self.ignore(full, self._approval_gate(gate, "promote-full"))
            full = None
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
        if gate == index:
            self.ignore(promote, self._approval_gate(index, "promote"))
            return
        if index >= self.n:
            self.ignore(promote, "all steps are done; waiting for the canary to be available")
            return
        self.emit(
            R.PROMOTED,
            step=index + 1,
            steps=self.n,
            what=step_what(self.steps[index]),
            request=promote.id,
        )
        self._enter_step(index + 1)

    def _approval_gate(self, index: int, what: str) -> str:
        """Why a promote does not go past the approval step ``index``."""
        return (
            f"step {index + 1}/{self.n} is an approval step waiting for "
            f"{self.approval_pending(index)}; {what} does not skip it (kubectl rollwise approve, "
            "or abort to roll back)"
        )

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
            elif self.upstream_wait:
                why = (
                    f"revision {self.obs.template_hash} waits for its upstream Rollouts; going "
                    "past them takes a promote override confirmed by a second person"
                )
            elif self.s.rolled_back_revision is not None:
                why = f"revision {self.s.rolled_back_revision} was rolled back; no canary runs"
            else:
                why = "no canary in progress"
            self.ignore(request, why)
