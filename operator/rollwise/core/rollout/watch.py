"""The Rollout's post-promotion regression watch (``strategy.canary.postPromotion``): started
at promotion, evaluated on the passes the kernel's watch asks for
(:mod:`rollwise.core.postpromotion`), and what a confirmed regression does.

* **Start**: the promotion that completes a canary starts the watch of the new stable
  revision; the previous revision stays (a retired revision removed when the watch ends, not
  after ``scaleDownDelaySeconds``), scaled to ``previousRevisionReplicas`` percent.
* **Each evaluation**: one event per transition of a KPI's episode (``RegressionDetected``,
  ``RegressionConfirmed``, ``RegressionCleared``), and on a confirmation one decision
  (``status.decision``).
* **rollback** (the fast track): the previous revision becomes stable again in one write of
  the stable Service and the route (no steps), at full size; the regressed revision is
  remembered as rolled back (not retried until the template changes or a retry), phase
  Degraded with reason ``RegressionRollback``.
* **hold**: a new revision waits (``RegressionHold``) while the regression stays confirmed; a
  promote request, or a promote override of the held revision confirmed by a second person
  (:func:`rollwise.core.rollout.overrides.rollout_effect`), lifts the hold
  (``RegressionHoldLifted``, ``status.postPromotion.holdLifted``) and the revision goes
  through its canary.
* **alert**: the events, the decision and the counters only.

Pure: no clock (``now`` is an argument), no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime

from rollwise.core.observations import ManualRequest, RequestKind, TemplateKey, TemplateRead
from rollwise.core.postpromotion import (
    EpisodeReasons,
    HoldLift,
    PostPromotionStatus,
    confirmed_reasons,
    episode_events,
    evaluate,
    holding,
    next_due,
    resolved_metrics,
    start,
    watch_problems,
    watch_queries,
    watching,
)
from rollwise.core.rollout import reasons as R
from rollwise.core.rollout.status import RolloutStatus
from rollwise.core.rollout.webhooks import Hooks
from rollwise.core.spec import Metric, PostPromotion, RegressionAction, RolloutSpec

WHERE = "spec.strategy.canary"
EPISODE_REASONS = EpisodeReasons(
    detected=R.REGRESSION_DETECTED, confirmed=R.REGRESSION_CONFIRMED, cleared=R.REGRESSION_CLEARED
)


def watch_of(spec: RolloutSpec) -> PostPromotion | None:
    return spec.strategy.canary.post_promotion


def watch_errors(spec: RolloutSpec, reads: Mapping[TemplateKey, TemplateRead | None]) -> list[str]:
    """Problems of the Rollout's watch (its templates' first, then its own); none without
    one."""
    return watch_problems(WHERE, watch_of(spec), reads)


def watch_due(
    spec: RolloutSpec,
    status: RolloutStatus | None,
    reads: Mapping[TemplateKey, TemplateRead | None],
    now: datetime,
) -> list[Metric]:
    """The watch's measurements to take now (none without a watch, or while a canary
    runs), each named by its measurement key."""
    watch = watch_of(spec)
    if watch is None or status is None or status.canary_revision is not None:
        return []
    pp = status.post_promotion
    if pp is None or status.stable_revision != pp.revision:
        return []
    return watch_queries(watch, resolved_metrics(WHERE, watch, reads), pp, now)


def kept_replicas(replicas: int, percent: int) -> int:
    """``percent`` of ``replicas``, rounded up: what a kept revision runs."""
    return math.ceil(replicas * percent / 100)


def warm_replicas(spec: RolloutSpec) -> int:
    """Replicas the previous revision keeps during the watch."""
    watch = watch_of(spec)
    share = watch.previous_revision_replicas if watch is not None else 0
    return kept_replicas(spec.replicas, share)


class Watch(Hooks):
    """The post-promotion watch inside a pass."""

    #: Why a new revision waits on a confirmed regression (empty: it does not).
    regression_hold: str = ""
    #: Why a new revision waits for its upstream Rollouts (empty: it does not).
    upstream_wait: str = ""

    @property
    def watch_metrics(self) -> list[Metric]:
        return resolved_metrics(WHERE, watch_of(self.spec), self.obs.templates)

    def _start_watch(self, revision: str, previous: str) -> None:
        """Called by the promotion: the watch of ``revision``, ``previous`` kept warm."""
        watch = watch_of(self.spec)
        if watch is None:
            self.update(post_promotion=None)
            return
        status = start(
            watch, self.watch_metrics, revision=revision, previous=previous, now=self.now
        )
        retired = [
            r.model_copy(update={"remove_at": max(r.remove_at, status.ends_at)})
            if r.revision == previous
            else r
            for r in self.s.retired_revisions
        ]
        self.update(post_promotion=status, retired_revisions=retired)
        self.emit(
            R.WATCH_STARTED,
            revision=revision,
            duration=watch.duration,
            interval=watch.interval,
            short=watch.windows.short,
            long=watch.windows.long,
            previous=previous,
            warm=watch.previous_revision_replicas,
        )
        self.wake(self.now)

    def _watch(self) -> None:
        """One evaluation of the watch when it is due (nothing while a canary runs)."""
        watch, status = watch_of(self.spec), self.s.post_promotion
        if watch is None or status is None or not watching(status) or self.canary_active:
            return
        if self.s.stable_revision != status.revision:
            return
        outcome = evaluate(watch, self.watch_metrics, status, self.obs.measurements, self.now)
        new = outcome.status
        for reason, fields in episode_events(
            EPISODE_REASONS, {"revision": new.revision}, watch, outcome.changes
        ):
            self.emit(reason, **fields)
        self.update(post_promotion=new)
        if outcome.ended:
            self.emit(
                R.WATCH_PASSED,
                revision=new.revision,
                outcome="regressed" if new.action is not None else "passed",
                previous=new.previous_revision,
            )
            self.update(
                retired_revisions=[
                    r.model_copy(update={"remove_at": self.now})
                    if r.revision == new.previous_revision
                    else r
                    for r in self.s.retired_revisions
                ]
            )
        decision = outcome.decision(self.canary_spec.decision_mode, self.now)
        if decision is not None:
            self.update(decision=decision)
            if outcome.action is RegressionAction.ROLLBACK:
                if new.previous_revision in self.obs.revisions:
                    self._fast_track(new)
                else:
                    # Nothing to go back to (its Deployment was deleted by hand): the
                    # regression stays confirmed, on record, and the revision keeps serving.
                    self.emit(
                        R.ROLLBACK_UNAVAILABLE,
                        revision=new.revision,
                        previous=new.previous_revision,
                    )
        self.wake(next_due(watch, self.s.post_promotion or new))

    def _fast_track(self, status: PostPromotionStatus) -> None:
        """All traffic back to the previous revision in one write, at full size."""
        previous, regressed = status.previous_revision, status.revision
        reasons = confirmed_reasons(status)
        self.update(
            stable_revision=previous,
            rolled_back_revision=regressed,
            aborted=False,
            progress_started_at=self.now,
            retired_revisions=[
                r for r in self.s.retired_revisions if r.revision not in (previous, regressed)
            ],
        )
        self.emit(R.REGRESSION_ROLLBACK, revision=regressed, previous=previous, reasons=reasons)
        self._queue_rollback_hooks(regressed)

    def _regression_holds(self) -> bool:
        """Whether a confirmed regression with action hold keeps a new revision waiting; a
        promote request, or a confirmed promote override of the held revision, lifts the hold
        (the watch ends, on record as regressed, with who lifted it)."""
        status = self.s.post_promotion
        if status is None or not holding(status):
            return False
        revision = self.obs.template_hash
        request = self.take(RequestKind.PROMOTE)
        if request is not None:
            self._lift_hold(status, revision, request)
            return False
        self.regression_hold = (
            f"new revision {revision} waits: the regression of revision {status.revision} "
            "was confirmed with action hold (until it clears, a promote override confirmed by "
            "a second person, or rollwise.dev/promote)"
        )
        if status.held_revision != revision:
            self.update(post_promotion=status.model_copy(update={"held_revision": revision}))
            self.emit(R.REGRESSION_HOLD, revision=revision, why=self.regression_hold)
        return True

    def _lift_hold(
        self, status: PostPromotionStatus, revision: str, request: ManualRequest
    ) -> None:
        override = any(request is r for r in self.from_override)
        lift = HoldLift(
            revision=revision,
            request=request.id,
            override=override,
            user=request.user or None,
            confirmed_by=request.confirmed_by or None,
            at=self.now,
        )
        self.update(
            post_promotion=status.model_copy(update={"ended_at": self.now, "hold_lifted": lift})
        )
        if override:
            by = f"promote override {request.id} by {request.user or 'unknown'}"
            if request.confirmed_by:
                by += f", confirmed by {request.confirmed_by}"
        else:
            by = f"promote request {request.id} (rollwise.dev/promote)"
        self.emit(R.REGRESSION_HOLD_LIFTED, revision=revision, regressed=status.revision, by=by)


__all__ = ["Watch", "kept_replicas", "warm_replicas", "watch_due", "watch_errors", "watch_of"]
