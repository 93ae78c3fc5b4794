"""The ModelRelease decision: ``decide_release(spec, status, obs, now) -> ReleaseDecision``.

A pure function of its arguments, shaped like :func:`rollwise.core.rollout.canary.decide`. The
runtime observes (gate results from the gate adapters, approvals and the revoke request
recorded by the admission webhook with the API server's identities, the alias read back from
its store, the child Rollout or the KServe InferenceService, the metrics
:func:`release_due_metrics` asked for, whether another release holds the (model, alias) slot),
calls :func:`decide_release`, applies the actions in order, patches the status once, emits the
events and looks again after ``requeue_after`` seconds.

Lifecycle (``status.stage``):

* **Candidate → Staging** when the gates that apply before Staging pass: ``artifact-digest``
  always, ``sbom`` when ``spec.gates.sbom`` is set, ``policy-digest`` when ``spec.policyDigest``
  is set. A gate is an observation (:class:`GateResult`); a gate with no result is *Pending*,
  never Passed. A Waived gate passes until its waiver expires, then counts as its own
  (``underlying``) result again. Only one release per (model, alias) runs: while
  ``blocking_release`` is set the release stays Candidate, ``Queued``.
* **Staging**: the canary. With ``serving.template`` the release owns a child Rollout
  (:func:`child_rollout_spec`, action :class:`EnsureChildRollout`) and follows its status: it
  passed when the child is Healthy with this release's revision stable; a rollback of that
  revision makes the release RolledBack. With ``serving.inferenceServiceRef`` the core steps
  ``canaryTrafficPercent`` itself (``spec.canary.steps``, default 5 → 25 → 100) with the
  Rollout's analysis semantics (:mod:`rollwise.core.analysis`), removes it at the end
  (KServe then rolls the new revision out), and on FAIL sets it to 0, which per KServe pins
  all traffic to the previously rolled-out revision.
* **Staging → Approved** when the canary passed, the earlier gates still pass, and the
  ``approvals`` gate passes: each ``approvals.requiredRoles`` role approved this version, by
  distinct people, none of them the person who set the version (re-checked here though the
  webhook refuses such approvals). A ``standard`` change whose digest was Approved before needs
  no approvals. Entering Approved writes the release manifest (:class:`WriteReleaseManifest`).
* **Approved → Production**: outside a freeze window (``freeze-window`` gate; an
  ``emergency`` change passes it only with an ``executive`` approval) the alias is flipped
  (:class:`FlipAlias`); the stage becomes Production only when the alias is *read back*
  pointing at this version, so a flip that did not happen never shows as done.
* **Production**, with ``canary.postPromotion``: the version is watched for regressions
  against the previous version (:mod:`rollwise.core.modelrelease.watch`); a confirmed one
  rolls back (the alias and the serving traffic move back, stage ``RolledBack``), holds the
  (model, alias) slot, or alerts, per severity.
* **Revoked** at any stage on a revoke request: traffic off the version, the alias back to
  the previous version if this one held it (verified by read-back too), terminal. A version
  revoked before is refused at Candidate (``InvalidSpec`` condition, no action).

Every transition is an event whose message carries the change ticket (every event of the
release does), a condition and an entry in the bounded ``status.history``. Events come from
transitions only: deciding again with the returned status, the same observations and ``now``
gives the same status, no events and the same (idempotent) actions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from rollwise.core.conditions import ConditionStatus
from rollwise.core.durations import sooner
from rollwise.core.events import with_events
from rollwise.core.modelrelease import reasons as R
from rollwise.core.modelrelease.actions import (
    ReleaseDecision,
    release_event,
)
from rollwise.core.modelrelease.completion import Completion
from rollwise.core.modelrelease.observations import (
    OVERRIDE_HOLD,
    OVERRIDE_ROLLBACK,
    ReleaseObservations,
)
from rollwise.core.modelrelease.policy import ReleaseRules
from rollwise.core.modelrelease.spec import (
    STRICT_RULES,
    load_release_spec,
)
from rollwise.core.modelrelease.stages import Stages
from rollwise.core.modelrelease.status import (
    ModelReleaseStatus,
    ReleaseConditionType,
    ReleasePhase,
    Stage,
)
from rollwise.core.modelrelease.watch import watch_errors
from rollwise.core.querycheck import (
    canary_metrics,
    record_check,
    with_queries_condition,
)
from rollwise.core.spec import Metric
from rollwise.core.spec_release import ChangeType, ModelReleaseSpec
from rollwise.core.status_model import invalid_spec_status
from rollwise.core.templates import (
    TEMPLATE_RECHECK_SECONDS,
    any_missing,
    release_template_keys,
    resolve_release,
)

#: Kubernetes caps event messages; the status message is kept to the same size.


# --------------------------------------------------------------------------------------------
# Entry point


def decide_release(
    spec: ModelReleaseSpec | Mapping[str, Any],
    status: ModelReleaseStatus | None,
    obs: ReleaseObservations,
    now: datetime,
    rules: ReleaseRules = STRICT_RULES,
    *,
    spec_errors: Sequence[str] | None = None,
) -> ReleaseDecision:
    """Decide the next status, actions, events and requeue of a ModelRelease.

    ``spec`` may be the wire form or a parsed spec, parsed and validated here (against
    ``rules`` too). A caller that parsed and validated it already
    (:func:`rollwise.core.modelrelease.spec.load_release_spec` with the same ``rules``)
    passes what that found as ``spec_errors``: the spec is then taken as it is, not parsed or
    validated again. ``status`` None means the object has no status yet. A naive ``now`` is
    taken as UTC. ``rules``: the cluster policy for this release (its defaults know no
    registry and no model owner). Never raises on well-typed input.
    """
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    previous = status if status is not None else ModelReleaseStatus()
    if spec_errors is None:
        loaded, errors = load_release_spec(spec, rules)
    else:
        loaded = spec if isinstance(spec, ModelReleaseSpec) and not spec_errors else None
        errors = list(spec_errors)
    digest = ""
    recheck = False
    if loaded is not None and not errors:
        keys = release_template_keys(loaded)
        loaded, template_errors = resolve_release(loaded, obs.templates)
        errors = template_errors or watch_errors(loaded, obs.templates)
        recheck = bool(errors) and any_missing(keys, obs.templates)
    if loaded is not None:
        previous, digest, refused = record_check(
            previous, release_metrics(loaded), obs.query_check, now
        )
        errors = [*errors, *refused, *obs.reference_errors]
    if loaded is None or errors:
        decision = _invalid(previous, errors, _raw_ticket(spec), obs, now)
        if recheck:
            # A template named but not there: look again, it may be created any moment.
            decision = dataclasses.replace(decision, requeue_after=TEMPLATE_RECHECK_SECONDS)
    else:
        decision = _Pass(loaded, previous, obs, now, rules).run()
    return _release_logged(_release_queries(decision, digest, obs, now), status, obs, now)


def release_metrics(spec: ModelReleaseSpec) -> list[tuple[str, Metric]]:
    """Every metric the release's canary can measure, with its spec path."""
    return canary_metrics(spec.canary.steps, spec.canary.analysis, "spec.canary")


def _release_queries(
    decision: ReleaseDecision, digest: str, obs: ReleaseObservations, now: datetime
) -> ReleaseDecision:
    """The ``QueriesVerified`` condition, and a look again when the queries are unverified."""
    status, recheck = with_queries_condition(
        decision.status,
        ReleaseConditionType.QUERIES_VERIFIED,
        digest,
        generation=obs.generation,
        now=now,
    )
    return dataclasses.replace(
        decision, status=status, requeue_after=sooner(decision.requeue_after, recheck, now)
    )


def _release_logged(
    decision: ReleaseDecision,
    read: ModelReleaseStatus | None,
    obs: ReleaseObservations,
    now: datetime,
) -> ReleaseDecision:
    """The decision's events appended to ``status.eventLog`` (:func:`with_events`)."""
    status = with_events(decision.status, decision.events, read, obs.events_posted, now)
    return dataclasses.replace(decision, status=status)


def _raw_ticket(spec: ModelReleaseSpec | Mapping[str, Any]) -> str:
    if isinstance(spec, ModelReleaseSpec):
        return spec.change.ticket
    change = spec.get("change")
    ticket = change.get("ticket") if isinstance(change, Mapping) else None
    return ticket if isinstance(ticket, str) and ticket else "unknown"


def _invalid(
    previous: ModelReleaseStatus,
    errors: list[str],
    ticket: str,
    obs: ReleaseObservations,
    now: datetime,
) -> ReleaseDecision:
    status, shown, unchanged = invalid_spec_status(
        previous,
        errors,
        reason=R.INVALID_SPEC,
        ready=ReleaseConditionType.READY,
        degraded=ReleaseConditionType.DEGRADED,
        invalid_spec=ReleaseConditionType.INVALID_SPEC,
        generation=obs.generation,
        now=now,
        update={"stage": previous.stage or Stage.CANDIDATE, "phase": ReleasePhase.DEGRADED},
    )
    events = () if unchanged else (release_event(R.INVALID_SPEC, ticket, errors=shown),)
    return ReleaseDecision(status=status, actions=(), events=events, requeue_after=None)


# --------------------------------------------------------------------------------------------
# One pass


class _Pass(Stages, Completion):
    """The mutable scratchpad of one ``decide_release`` call."""

    # ---------------------------------------------------------------- the pass

    def run(self) -> ReleaseDecision:
        invalid = self.prev.condition(ReleaseConditionType.INVALID_SPEC)
        if (
            invalid is not None
            and invalid.status is ConditionStatus.TRUE
            and invalid.reason == R.INVALID_SPEC.name
        ):
            self.emit(R.SPEC_CORRECTED)
        if self.s.stage is None:
            self.transition(
                Stage.CANDIDATE,
                R.RELEASE_CREATED,
                self.obs.version_set_by,
                model=self.spec.model,
                version=self.spec.version,
                change_type=self.spec.change.type.value,
            )
        if self.spec.change.type is ChangeType.EMERGENCY and not self.s.emergency_announced:
            self.emit(R.EMERGENCY_CHANGE, model=self.spec.model, version=self.spec.version)
            self.update(emergency_announced=True)
        self._read_alias()
        if self.obs.revoke is not None and self.stage is not Stage.REVOKED:
            self._revoke()
        if self.stage.terminal:
            self._terminal()
        elif self.stage is Stage.CANDIDATE and self.obs.version_revoked_before:
            self._refuse()
        else:
            self._evaluate_gates()
            override = self.obs.override
            if override is not None and override.decision == OVERRIDE_ROLLBACK:
                self._override_rollback(override)
                self._terminal()
            elif override is not None and override.decision == OVERRIDE_HOLD:
                self.held = True
                self.wait(
                    f"held at stage {self.stage.value} by {override.user} "
                    f"(override {override.id}): {override.reason}"
                )
            else:
                self._advance()
        self._decide_canary()
        self._finish()
        return ReleaseDecision(
            status=self.s,
            actions=tuple(self._actions()),
            events=tuple(self.events),
            requeue_after=self._requeue(),
        )

    # ---------------------------------------------------------------- conditions and phase

    # ---------------------------------------------------------------- actions and requeue


__all__ = ["decide_release", "release_metrics"]
