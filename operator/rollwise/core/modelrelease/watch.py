"""The ModelRelease's post-promotion regression watch (``canary.postPromotion``): started
when the version is in Production (the alias read back on it), evaluated on the passes the
kernel's watch asks for (:mod:`rollwise.core.postpromotion`), and what a confirmed regression
does.

* **Start**: the first pass that sees the alias on this version in Production starts the
  watch of the version (``{{revision}}`` in a watched query is the version) against the
  version the alias pointed at before (``previousRevision``), whose values are measured once
  over the long window. Without a previous version there is nothing to compare with or to
  go back to: the KPIs are judged against their checks and targets only.
* **Each evaluation**: one event per transition of a KPI's episode (``RegressionDetected``,
  ``RegressionConfirmed``, ``RegressionCleared``), and on a confirmation one decision
  (``status.decision``).
* **rollback** (the fast track): the release's own rollback, as an override's: the serving
  traffic goes back (the child Rollout to the template that served before, or the
  InferenceService to the previous storage URI) and the alias is flipped back to the
  previous version, verified by read-back; stage ``RolledBack`` (the version is not entered
  in the revocation ledger).
* **hold**: while the regression stays confirmed, the release keeps the (model, alias) slot:
  the next release of the model and alias waits in Candidate, Queued behind this one
  (the runtime's slot, :mod:`rollwise.runtime.release.slots`).
* **alert**: the events, the decision and the counters only.
* **End**: after ``duration``, or when a later release took the alias.

Template-served releases run the watch here, on the release, not on the child Rollout (the
child's own ``postPromotion`` is never set); the child keeps the revision it replaced warm for
the watch (its ``scaleDownDelaySeconds`` and ``scaleDownDelayReplicas``, from the watch's
duration and ``previousRevisionReplicas``, see
:func:`rollwise.core.modelrelease.spec.child_rollout_spec`), and a rollback promotes the
previous template on the child at once.

Pure: no clock (``now`` is an argument), no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from rollwise.core.modelrelease import reasons as R
from rollwise.core.modelrelease.alias import Alias
from rollwise.core.modelrelease.status import ModelReleaseStatus, Stage
from rollwise.core.observations import TemplateKey, TemplateRead
from rollwise.core.postpromotion import (
    EpisodeReasons,
    PostPromotionStatus,
    WatchPhase,
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
from rollwise.core.spec import Metric, PostPromotion, RegressionAction
from rollwise.core.spec_release import ModelReleaseSpec

WHERE = "spec.canary"
EPISODE_REASONS = EpisodeReasons(
    detected=R.REGRESSION_DETECTED, confirmed=R.REGRESSION_CONFIRMED, cleared=R.REGRESSION_CLEARED
)


def watch_of(spec: ModelReleaseSpec) -> PostPromotion | None:
    return spec.canary.post_promotion


def watch_errors(
    spec: ModelReleaseSpec, reads: Mapping[TemplateKey, TemplateRead | None]
) -> list[str]:
    """Problems of the release's watch (its templates' first, then its own); none without
    one."""
    return watch_problems(WHERE, watch_of(spec), reads)


def watch_due(
    spec: ModelReleaseSpec,
    status: ModelReleaseStatus | None,
    reads: Mapping[TemplateKey, TemplateRead | None],
    now: datetime,
) -> list[Metric]:
    """The watch's measurements to take now (none without a watch, or outside Production),
    each named by its measurement key."""
    watch = watch_of(spec)
    if watch is None or status is None or status.stage is not Stage.PRODUCTION:
        return []
    pp = status.post_promotion
    if pp is None or pp.revision != spec.version:
        return []
    return watch_queries(watch, resolved_metrics(WHERE, watch, reads), pp, now)


def regression_holds(status: ModelReleaseStatus | None) -> bool:
    """Whether a release in Production keeps its (model, alias) slot: a confirmed regression
    whose action is hold, not cleared."""
    return (
        status is not None and status.stage is Stage.PRODUCTION and holding(status.post_promotion)
    )


class Watch(Alias):
    """The post-promotion watch inside a pass (Production only); a rollback is the alias
    concern's (:class:`rollwise.core.modelrelease.alias.Alias`)."""

    @property
    def watch_metrics(self) -> list[Metric]:
        return resolved_metrics(WHERE, watch_of(self.spec), self.obs.templates)

    def _watch(self) -> None:
        """Called in Production while the alias shows this version: start the watch, or
        evaluate it when it is due."""
        watch, status = watch_of(self.spec), self.s.post_promotion
        if watch is None:
            return
        if status is None or status.revision != self.spec.version:
            self._start_watch(watch)
            return
        if not watching(status):
            return
        outcome = evaluate(watch, self.watch_metrics, status, self.obs.measurements, self.now)
        new = outcome.status
        for reason, fields in episode_events(
            EPISODE_REASONS, {"version": new.revision}, watch, outcome.changes
        ):
            self.emit(reason, **fields)
        self.update(post_promotion=new)
        if outcome.ended:
            self.emit(
                R.WATCH_PASSED,
                version=new.revision,
                outcome="regressed" if new.action is not None else "passed",
            )
        decision = outcome.decision(self.spec.canary.decision_mode, self.now)
        if decision is not None:
            self.update(decision=decision)
            if outcome.action is RegressionAction.ROLLBACK:
                self._fast_track(new)
                return
        if holding(new):
            self.message = (
                f"version {self.spec.version} in Production; regression confirmed with "
                "action hold: the next release of the model and alias waits"
            )
        self.wake(next_due(watch, new))

    def _start_watch(self, watch: PostPromotion) -> None:
        alias = self.s.alias
        previous = alias.previous_version if alias is not None else None
        status = start(
            watch,
            self.watch_metrics,
            revision=self.spec.version,
            previous=previous or "",
            now=self.now,
        )
        if previous is None:
            # Nothing served before: no previous values to capture.
            status = status.model_copy(update={"previous_captured": True})
        self.update(post_promotion=status)
        self.emit(
            R.WATCH_STARTED,
            version=self.spec.version,
            duration=watch.duration,
            interval=watch.interval,
            short=watch.windows.short,
            long=watch.windows.long,
            previous=previous or "none",
        )
        self.wake(self.now)

    def _end_watch(self) -> None:
        """A later release took the alias: this version is no longer watched."""
        status = self.s.post_promotion
        if status is None or not watching(status):
            return
        phase = WatchPhase.REGRESSED if status.action is not None else WatchPhase.PASSED
        self.update(post_promotion=status.model_copy(update={"phase": phase, "ended_at": self.now}))
        self.emit(
            R.WATCH_PASSED,
            version=status.revision,
            outcome=f"superseded, {'regressed' if status.action is not None else 'passed'}",
        )

    def _fast_track(self, status: PostPromotionStatus) -> None:
        """The alias and the serving traffic back to the previous version: the release's own
        rollback (the flip back and the traffic-off actions of a terminal stage)."""
        alias = self.s.alias
        previous = alias.previous_version if alias is not None else None
        if not previous or previous == self.spec.version:
            self.emit(R.ROLLBACK_UNAVAILABLE, version=status.revision, alias=self.spec.alias.name)
            return
        reasons = confirmed_reasons(status)
        cause = f"post-promotion regression confirmed ({reasons})"
        self.serving(traffic_off=self._traffic_off_mode(Stage.PRODUCTION), failure=cause)
        self.emit(
            R.REGRESSION_ROLLBACK,
            version=status.revision,
            previous=previous,
            reasons=reasons,
            alias=self.spec.alias.name,
        )
        self._rolled_back(cause)


__all__ = ["Watch", "regression_holds", "watch_due", "watch_errors", "watch_of"]
