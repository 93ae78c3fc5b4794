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
* **Analysis templates**: the references of ``analysis.templates`` (background and steps) are
  resolved first, from the templates the runtime read this pass (``Observations.templates``,
  :mod:`rollwise.core.templates`); everything after sees their metrics as inline ones. A
  template missing or not taking the args given makes the spec invalid as above; a missing one
  is looked for again after ``TEMPLATE_RECHECK_SECONDS``.
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
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from rollwise.core.conditions import ConditionStatus
from rollwise.core.durations import sooner
from rollwise.core.events import Event, with_events
from rollwise.core.observations import (
    Observations,
)
from rollwise.core.phases import Phase
from rollwise.core.querycheck import (
    canary_metrics,
    record_check,
    with_queries_condition,
)
from rollwise.core.reasons import clip
from rollwise.core.rollout import reasons as R
from rollwise.core.rollout.actions import (
    Decision,
)
from rollwise.core.rollout.bluegreen import BlueGreen
from rollwise.core.rollout.requests import Requests
from rollwise.core.rollout.state import sanitize
from rollwise.core.rollout.status import (
    ConditionType,
    RolloutStatus,
)
from rollwise.core.rollout.watch import watch_errors
from rollwise.core.spec import Metric, RolloutSpec
from rollwise.core.status_model import invalid_spec_status
from rollwise.core.templates import (
    TEMPLATE_RECHECK_SECONDS,
    any_missing,
    resolve_rollout,
    rollout_template_keys,
)
from rollwise.core.validation import load_rollout_spec

# --------------------------------------------------------------------------------------------
# Entry point


def decide(
    spec: RolloutSpec | dict[str, Any],
    status: RolloutStatus | None,
    obs: Observations,
    now: datetime,
    *,
    spec_errors: Sequence[str] | None = None,
) -> Decision:
    """Decide the next status, actions, events and requeue of a Rollout.

    ``spec`` may be the wire form (a dict, parsed and validated here) or a parsed spec
    (validated here). A caller that parsed and validated it already
    (:func:`rollwise.core.validation.load_rollout_spec`) passes what that found as
    ``spec_errors``: the spec is then taken as it is, not parsed or validated again. ``status``
    None means the object has no status yet. ``now`` should be timezone-aware; a naive one is
    taken as UTC. Never raises on well-typed input.
    """
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    previous = status if status is not None else RolloutStatus()
    if spec_errors is None:
        loaded, errors = load_rollout_spec(spec)
    else:
        loaded = spec if isinstance(spec, RolloutSpec) and not spec_errors else None
        errors = list(spec_errors)
    digest = ""
    recheck = False
    if loaded is not None and not errors:
        keys = rollout_template_keys(loaded)
        loaded, template_errors = resolve_rollout(loaded, obs.templates)
        errors = [*errors, *template_errors]
        errors = [*errors, *([] if template_errors else watch_errors(loaded, obs.templates))]
        recheck = bool(template_errors) and any_missing(keys, obs.templates)
    if loaded is not None:
        previous, digest, refused = record_check(
            previous, rollout_metrics(loaded), obs.query_check, now
        )
        errors = [*errors, *refused]
    if loaded is None or errors or obs.missing_references:
        decision = _invalid(previous, [*errors, *obs.missing_references], obs, now)
        if recheck:
            # A template named but not there: look again, it may be created any moment.
            decision = _replace(decision, requeue_after=TEMPLATE_RECHECK_SECONDS)
    else:
        decision = _Pass(loaded, previous, obs, now).run()
    decision = _with_route(_with_queries(decision, digest, obs.generation, now), obs, now)
    return _logged(decision, status, obs, now)


def rollout_metrics(spec: RolloutSpec) -> list[tuple[str, Metric]]:
    """Every metric the Rollout's canary can measure, with its spec path (a blue-green
    Rollout's under ``spec.strategy.blueGreen``, where its analyses are written)."""
    blue_green = spec.strategy.blue_green
    if blue_green is not None:
        base = "spec.strategy.blueGreen"
        found: list[tuple[str, Metric]] = []
        for field, analysis in (
            ("prePromotionAnalysis", blue_green.pre_promotion_analysis),
            ("postPromotionAnalysis", blue_green.post_promotion_analysis),
        ):
            for i, metric in enumerate((analysis.metrics or []) if analysis is not None else []):
                found.append((f"{base}.{field}.metrics[{i}]", metric))
        return found
    canary = spec.strategy.canary
    return canary_metrics(canary.steps, canary.analysis, "spec.strategy.canary")


def _with_queries(decision: Decision, digest: str, generation: int, now: datetime) -> Decision:
    """The ``QueriesVerified`` condition, and a look again when the queries are unverified."""
    status, recheck = with_queries_condition(
        decision.status, ConditionType.QUERIES_VERIFIED, digest, generation=generation, now=now
    )
    return _replace(
        decision, status=status, requeue_after=sooner(decision.requeue_after, recheck, now)
    )


def _with_route(decision: Decision, obs: Observations, now: datetime) -> Decision:
    """The ``RouteAccepted`` condition, False while the router says the routing object does
    not carry the weight as accepted (a Warning event when that starts or its reason changes);
    absent otherwise."""
    status = decision.status
    if not obs.route_rejected:
        return _replace(decision, status=status.without_condition(ConditionType.ROUTE_ACCEPTED))
    message = clip(R.ROUTE_NOT_ACCEPTED.format(detail=obs.route_rejected))
    before = status.condition(ConditionType.ROUTE_ACCEPTED)
    status = status.with_condition(
        ConditionType.ROUTE_ACCEPTED,
        ConditionStatus.FALSE,
        reason=R.ROUTE_NOT_ACCEPTED.name,
        message=message,
        now=now,
        generation=obs.generation,
    )
    events = decision.events
    if before is None or before.status is not ConditionStatus.FALSE or before.message != message:
        events = (*events, Event.of(R.ROUTE_NOT_ACCEPTED, detail=obs.route_rejected))
    return _replace(decision, status=status, events=events)


def _logged(
    decision: Decision, read: RolloutStatus | None, obs: Observations, now: datetime
) -> Decision:
    """The decision's events appended to ``status.eventLog`` (:func:`with_events`)."""
    status = with_events(decision.status, decision.events, read, obs.events_posted, now)
    return _replace(decision, status=status)


def _replace(decision: Decision, **fields: Any) -> Decision:
    return dataclasses.replace(decision, **fields)


def _invalid(
    previous: RolloutStatus, errors: list[str], obs: Observations, now: datetime
) -> Decision:
    status, _, unchanged = invalid_spec_status(
        previous,
        errors,
        reason=R.INVALID_SPEC,
        ready=ConditionType.READY,
        degraded=ConditionType.DEGRADED,
        invalid_spec=ConditionType.INVALID_SPEC,
        generation=obs.generation,
        now=now,
        update={
            "phase": Phase.DEGRADED,
            "canary_weight": min(max(previous.canary_weight, 0), 100),
        },
    )
    events = () if unchanged else (Event(R.INVALID_SPEC.type, R.INVALID_SPEC, status.message),)
    return Decision(status=status, actions=(), events=events, requeue_after=None)


# --------------------------------------------------------------------------------------------
# One pass


class _Pass(BlueGreen, Requests):
    """One ``decide`` call: the concerns (requests, analysis, steps, completion) run in
    order on the shared :class:`~rollwise.core.rollout.state.PassState`; ``run`` returns the
    frozen decision."""

    def run(self) -> Decision:
        self._spec_corrected()
        self._record_webhooks()
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
            self._watch()
        if not self.canary_active:
            # Also when the canary ended in this pass (promoted, rolled back, aborted): the
            # stable revision is checked now, as the next pass would check it, so that deciding
            # again changes nothing.
            self._stable_only()
        self._decide_step()
        self._retire()
        self._ignore_leftover_requests()
        # The pass leaves the status in the shape the next pass expects, so that deciding
        # again changes nothing.
        self.s = sanitize(self.s, self.n)
        self._finish()
        return Decision(
            status=self.s,
            actions=tuple(self._actions()),
            events=tuple(self.events),
            requeue_after=self._requeue(),
        )


__all__ = ["decide", "rollout_metrics"]
