"""How a Rollout pass ends: promotion, the stable-only state, retired revisions, then the
phase, conditions and their events, the actions in order and when to look again.

Pure: no clock (``now`` is an argument), no I/O.
"""

from __future__ import annotations

from rollwise.core.conditions import ConditionStatus
from rollwise.core.durations import add_seconds, format_seconds
from rollwise.core.phases import Phase
from rollwise.core.reasons import clip
from rollwise.core.rollout import reasons as R
from rollwise.core.rollout.actions import (
    Action,
    DeleteRevision,
    EnsureBaseline,
    EnsureRevision,
    PointBaselineService,
    PointCanaryService,
    PointStableService,
    ScaleRevision,
    SetHeaderRoutes,
    SetMirrorRoutes,
    SetWeight,
)
from rollwise.core.rollout.analysis import soonest_due
from rollwise.core.rollout.status import (
    ActiveHeaderRoute,
    ActiveMirrorRoute,
    BaselineStatus,
    ConditionType,
    PauseReason,
    RetiredRevision,
)
from rollwise.core.rollout.watch import Watch, kept_replicas, warm_replicas
from rollwise.core.rollout.webhooks import failed_pre_rollout
from rollwise.core.traffic import baseline_replica_weight, expected_weight, split, weights


class Completion(Watch):
    """The end of a pass: promotion, the stable-only state, retired revisions, phase, conditions and
    their events, then the actions and when to look again."""

    def _complete(self) -> None:
        s = self.s
        canary, old = s.canary_revision, s.stable_revision
        if canary is None or old is None:
            return
        replicas = self.spec.replicas
        state = self.obs.revisions.get(canary)
        if state is None or not (state.ready_for(replicas) or self._warm_return(canary)):
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
        self._promoted(canary, old, delay)

    def _promoted(self, revision: str, previous: str, delay: int) -> None:
        """The canary ``revision`` became stable in this pass; ``previous`` goes in ``delay``
        seconds."""
        self.emit(
            R.ROLLOUT_COMPLETED, revision=revision, previous=previous, delay=format_seconds(delay)
        )
        self._start_watch(revision, previous)

    def _warm_return(self, canary: str) -> bool:
        """Whether ``canary`` is a replaced stable revision still kept at its
        ``scaleDownDelayReplicas`` share, with that share available: going back to it moves
        the traffic at once, as the post-promotion fast track does, while it scales back to
        full size (a ModelRelease's rollback of its child Rollout)."""
        share = self.canary_spec.scale_down_delay_replicas
        state = self.obs.revisions.get(canary)
        if share is None or state is None or not state.current:
            return False
        retired = self.s.retired_revisions
        kept = any(r.revision == canary and self.now < r.remove_at for r in retired)
        needed = max(kept_replicas(self.spec.replicas, share), 1)
        return kept and state.available_replicas >= needed

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
        for retired in self.s.retired_revisions:
            if retired.revision in (self.s.stable_revision, self.s.rolled_back_revision):
                continue
            if retired.revision == self.s.canary_revision:
                # A canary going back to a kept revision: on record until it completes.
                keep.append(retired)
                continue
            if self.now >= retired.remove_at:
                self.emit(R.REVISION_RETIRED, revision=retired.revision)
                continue
            keep.append(retired)
            self.wake(retired.remove_at)
        if keep != self.s.retired_revisions:
            self.update(retired_revisions=keep)

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
        elif self.confirm_wait:
            pause = PauseReason.AWAITING_CONFIRMATION
            self.message = self.confirm_wait
        elif self.canary_active:
            pause = s.pause_reason
        elif self.regression_hold:
            pause = PauseReason.REGRESSION_HOLD
            self.message = self.regression_hold
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
            failed = failed_pre_rollout(s, s.rolled_back_revision)
            if not s.aborted and failed is not None:
                degraded_reason = R.PRE_ROLLOUT_HOOK_FAILED.name
                cause = f" (pre-rollout webhook {failed.name}: {failed.message})"
            watch = s.post_promotion
            if watch is not None and watch.revision == s.rolled_back_revision and watch.action:
                degraded_reason = R.REGRESSION_ROLLBACK.name
                how, cause = "rolled back after promotion", " (post-promotion regression)"
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
            if self.upstream_wait:
                message = f"{message}; {self.upstream_wait}"
        elif self.upstream_wait:
            phase = Phase.WAITING
            degraded_reason = ""
            message = f"{self.upstream_wait}; stable {stable} serves all traffic"
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
        healthy_since = None
        if phase is Phase.HEALTHY:
            before = self.prev
            kept = before.phase is Phase.HEALTHY and before.stable_revision == s.stable_revision
            healthy_since = before.healthy_since if kept and before.healthy_since else self.now
        self.update(
            phase=phase,
            message=message,
            healthy_since=healthy_since,
            replicas=sum(st.desired_replicas for st in states),
            available_replicas=sum(st.available_replicas for st in states),
            baseline=self._baseline_status(),
            header_routes=[
                ActiveHeaderRoute(name=r.name, match=[m.text() for m in r.matches])
                for r in self.wanted_header_routes()
            ]
            or None,
            mirror_routes=[
                ActiveMirrorRoute(name=r.name, percentage=r.percentage)
                for r in self.wanted_mirror_routes()
            ]
            or None,
        )
        self.wake(soonest_due(self.spec, self.s, held=self.held))

    def _baseline_status(self) -> BaselineStatus | None:
        baseline, stable = self.baseline_revision, self.s.stable_revision
        if baseline is None or stable is None:
            return None
        state = self.obs.revisions.get(baseline)
        weight = self.s.canary_weight
        share = (
            weights(weight, baseline=True).baseline
            if self.router
            else baseline_replica_weight(self.spec.replicas, weight)
        )
        return BaselineStatus(
            revision=baseline,
            stable_revision=stable,
            weight=share,
            replicas=state.desired_replicas if state is not None else 0,
            available_replicas=state.available_replicas if state is not None else 0,
        )

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
            elif phase is Phase.WAITING:
                progressing = (unknown, R.AWAITING_UPSTREAM.name)
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
        baseline = self.baseline_revision
        with_baseline = baseline is not None
        targets: list[tuple[str, int]] = []
        baseline_replicas = 0
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
            now = split(replicas, weight, router=self.router, baseline=with_baseline)
            stable_replicas = now.stable
            if self.blue_green is not None:
                # The previous revision keeps every pod until the end (the switch back needs
                # them); the preview runs its own count until it is ready and the switch is
                # next (a setWeight step), then every pod.
                switching = index < self.n and self.steps[index].set_weight is not None
                full = self.preview_ready() and (
                    index >= self.n or switching or s.canary_weight >= 100
                )
                canary_replicas = replicas if full else self.preview_replicas()
                stable_replicas = replicas
            if with_baseline and index < self.n:
                # Ready for the next step's share before it is routed, and still sized for the
                # share it has now until the weight moves on.
                later = split(replicas, ahead, router=self.router, baseline=True)
                baseline_replicas = max(now.baseline, later.baseline)
            targets = [(stable, stable_replicas), (canary, canary_replicas)]
        else:
            targets = [(stable, replicas)]
            watch = s.post_promotion
            if watch is not None and watch.ended_at is None and watch.revision == stable:
                # The previous revision stays warm for the watch (removed when it ends).
                targets.append((watch.previous_revision, warm_replicas(self.spec)))
        if rolled_back is not None and rolled_back not in (stable, canary):
            targets.append((rolled_back, 0))
        share = self.canary_spec.scale_down_delay_replicas
        if share is not None:
            # Replaced stable revisions keep their share until scaleDownDelaySeconds ends.
            placed = {revision for revision, _ in targets} | {baseline}
            for retired in s.retired_revisions:
                if retired.revision not in placed and self.now < retired.remove_at:
                    targets.append((retired.revision, kept_replicas(replicas, share)))

        ups: list[Action] = []
        downs: list[Action] = []

        def place(action: Action, state_replicas: int | None, count: int) -> None:
            if state_replicas is None or count >= state_replicas:
                ups.append(action)
            else:
                downs.append(action)

        for revision, count in targets:
            state = self.obs.revisions.get(revision)
            action: Action
            if revision == rev and revision != rolled_back:
                action = EnsureRevision(revision, count, self.spec.template)
            elif state is None:
                continue
            else:
                action = ScaleRevision(revision, count)
            place(action, state.desired_replicas if state is not None else None, count)
        if baseline is not None:
            state = self.obs.revisions.get(baseline)
            place(
                EnsureBaseline(baseline, stable, baseline_replicas),
                state.desired_replicas if state is not None else None,
                baseline_replicas,
            )

        baseline_weight = 0
        if baseline is not None and self.router:
            baseline_weight = weights(weight, baseline=True).baseline
        set_weight = SetWeight(canary or stable, stable, weight, baseline_weight)
        actual = self.obs.actual_weight
        # Less traffic to the canary than now: move it before re-pointing the canary Service,
        # so a replaced canary's share goes back to stable, never to the unready newcomer.
        decreasing = actual is None or (
            expected_weight(replicas, weight, router=self.router, baseline=with_baseline) < actual
        )
        active = stable
        if self.blue_green is not None and canary is not None and weight >= 100:
            # Switched: the active Service selects the new revision.
            active = canary
        actions: list[Action] = [*ups, PointStableService(self.canary_spec.stable_service, active)]
        baseline_service = self.canary_spec.baseline_service if self.router else None
        if decreasing:
            actions.append(set_weight)
        routes: SetHeaderRoutes | None = None
        if self.router and self.manages_header_routes():
            routes = SetHeaderRoutes(self.wanted_header_routes())
            found = self.obs.actual_header_routes
            if found is None or not set(found) <= set(routes.routes):
                # Fewer routes: removed before the canary Service is re-pointed, so a segment
                # never reaches a replaced canary's unready newcomer.
                actions.append(routes)
                routes = None
        mirrors: SetMirrorRoutes | None = None
        if self.router and self.manages_mirror_routes():
            mirrors = SetMirrorRoutes(self.wanted_mirror_routes())
            seen = self.obs.actual_mirror_routes
            if seen is None or not set(seen) <= set(mirrors.routes):
                # Fewer mirrors: removed before the canary Service is re-pointed, so no copy
                # reaches a replaced canary's unready newcomer.
                actions.append(mirrors)
                mirrors = None
        if self.blue_green is None or self.blue_green.preview_service is not None:
            actions.append(PointCanaryService(self.canary_spec.canary_service, canary or stable))
        if baseline_service is not None:
            # Without a baseline the Service selects the stable pods, as the canary Service
            # does without a canary: whatever weight it still carries reaches a ready fleet.
            actions.append(PointBaselineService(baseline_service, baseline or stable))
        if not decreasing:
            actions.append(set_weight)
        if routes is not None:
            actions.append(routes)
        if mirrors is not None:
            actions.append(mirrors)
        actions.extend(downs)
        referenced = {stable, canary, rolled_back, baseline} | {
            r.revision for r in s.retired_revisions
        }
        actions.extend(DeleteRevision(r) for r in sorted(self.obs.revisions) if r not in referenced)
        return actions

    def _requeue(self) -> float | None:
        if not self.wakes:
            return None
        soonest = min(self.wakes)
        return max((soonest - self.now).total_seconds(), 0.0)
