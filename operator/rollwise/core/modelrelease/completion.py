"""How a ModelRelease pass ends: phase and conditions, then the actions in order and when to
look again.

Pure: no clock (``now`` is an argument), no I/O.
"""

from __future__ import annotations

from rollwise.core.conditions import ConditionStatus
from rollwise.core.modelrelease import reasons as R
from rollwise.core.modelrelease.actions import (
    EnsureChildRollout,
    FlipAlias,
    ReleaseAction,
    RemoveCanaryTrafficPercent,
    RevertChildRollout,
    SetCanaryTrafficPercent,
    SetPredictorStorageUri,
    WriteReleaseManifest,
)
from rollwise.core.modelrelease.canary import Canary
from rollwise.core.modelrelease.observations import (
    BACKEND_TEMPLATE,
    GATE_APPROVALS,
    OVERRIDE_PROMOTE,
)
from rollwise.core.modelrelease.spec import (
    all_gates,
    changed_fields,
    child_rollout_spec,
    pre_staging_gates,
    promote_gates,
    release_manifest,
    revalidate_by_time,
)
from rollwise.core.modelrelease.status import (
    MAX_HISTORY,
    ReleaseConditionType,
    ReleasePhase,
    Stage,
)
from rollwise.core.reasons import clip
from rollwise.core.status_model import format_time


class Completion(Canary):
    """The end of a pass: phase and conditions, then the actions in order and when to look again."""

    def _required_so_far(self) -> tuple[str, ...]:
        stage = self.stage
        if stage is Stage.CANDIDATE:
            return pre_staging_gates(self.spec, self.rules)
        if stage is Stage.STAGING:
            return (
                *pre_staging_gates(self.spec, self.rules),
                GATE_APPROVALS,
                *promote_gates(self.spec, self.rules),
            )
        return all_gates(self.spec, self.rules)

    def _finish(self) -> None:
        stage = self.stage
        gen = self.obs.generation
        true, false = ConditionStatus.TRUE, ConditionStatus.FALSE
        ready = stage is Stage.PRODUCTION and self._alias_shows(self.spec.version)
        if self.refused or stage.terminal:
            phase = ReleasePhase.DEGRADED
        elif stage is Stage.PRODUCTION:
            phase = ReleasePhase.HEALTHY if ready or self.superseded else ReleasePhase.PROGRESSING
        elif self.s.queued_behind is not None and stage is Stage.CANDIDATE:
            phase = ReleasePhase.QUEUED
        elif self.waiting:
            phase = ReleasePhase.WAITING
        else:
            phase = ReleasePhase.PROGRESSING
        message = self.message or f"stage {stage.value}"
        override = self.obs.override
        if (
            override is not None
            and override.decision == OVERRIDE_PROMOTE
            and not stage.terminal
            and stage is not Stage.PRODUCTION
        ):
            approvals = self.gates.get(GATE_APPROVALS)
            if approvals is not None and not approvals.passing:
                note = "approvals cannot be overridden (four eyes)"
                self.override_note = f"{self.override_note}; {note}" if self.override_note else note
        if self.override_note:
            message = f"{message}; {self.override_note}"
        message = clip(message)
        invalid = (true, R.VERSION_REVOKED.name, message) if self.refused else (false, "Valid", "")
        if stage.terminal or self.refused:
            progressing = (false, stage.value if not self.refused else "Refused", message)
        elif stage is Stage.PRODUCTION:
            done = "Completed" if ready else "Superseded" if self.superseded else "VerifyingAlias"
            progressing = (false, done, message)
        else:
            progressing = (
                true,
                phase.value if phase is not ReleasePhase.PROGRESSING else stage.value,
                message,
            )
        if self.gates:
            blocking = self._blocking(self._required_so_far())
            gates_passed = (
                (false, "GatesBlocking", "; ".join(blocking))
                if blocking
                else (true, "AllPassed", "")
            )
        else:
            old = self.prev.condition(ReleaseConditionType.GATES_PASSED)
            gates_passed = (
                (old.status, old.reason, old.message)
                if old is not None
                else (ConditionStatus.UNKNOWN, "NotEvaluated", "")
            )
        queued = self.s.queued_behind is not None and stage is Stage.CANDIDATE
        degraded_reason = (
            R.VERSION_REVOKED.name if self.refused else stage.value if stage.terminal else ""
        )
        conditions = [
            (
                ReleaseConditionType.READY,
                true if ready else false,
                "InProduction" if ready else "Superseded" if self.superseded else stage.value,
                message,
            ),
            (ReleaseConditionType.PROGRESSING, *progressing),
            (ReleaseConditionType.GATES_PASSED, *gates_passed),
            (
                ReleaseConditionType.QUEUED,
                true if queued else false,
                "QueuedBehind" if queued else "NotQueued",
                f"Queued behind {self.s.queued_behind}" if queued else "",
            ),
            (
                ReleaseConditionType.DEGRADED,
                true if degraded_reason else false,
                degraded_reason or "NotDegraded",
                message if degraded_reason else "",
            ),
            (ReleaseConditionType.INVALID_SPEC, *invalid),
        ]
        due = revalidate_by_time(self.spec)
        if due is not None:
            overdue = self.now >= due
            conditions.append(
                (
                    ReleaseConditionType.REVALIDATION_DUE,
                    true if overdue else false,
                    "Overdue" if overdue else "Scheduled",
                    (
                        f"version {self.spec.version} was due for revalidation at "
                        f"{format_time(due)}: no further promotion until spec.revalidateBy "
                        "is moved forward"
                        if overdue
                        else f"revalidate by {format_time(due)}"
                    ),
                )
            )
        for type_, value, reason, text in conditions:
            self.s = self.s.with_condition(
                type_, value, reason=reason, message=clip(text), now=self.now, generation=gen
            )
        self.update(phase=phase, message=message, history=self.s.history[-MAX_HISTORY:])
        self._wake_analysis()

    def _actions(self) -> list[ReleaseAction]:
        if self.refused:
            return []
        stage = self.stage
        actions: list[ReleaseAction] = []
        if stage.terminal:
            actions.extend(self._traffic_off_actions())
            actions.extend(self._flip_back_actions())
            return actions
        if self.changed_since_approval or (
            stage is Stage.PRODUCTION
            and self.s.approved_content is not None
            and changed_fields(self.s.approved_content, self.content)
        ):
            # Nothing of a change made after approval is ever applied, nor written into the
            # release manifest as if it had been approved.
            return actions
        # Serving is asserted until Production only: from then on the next release of the
        # same model and alias owns the child Rollout or the InferenceService.
        if stage in (Stage.STAGING, Stage.APPROVED):
            actions.extend(self._serving_actions())
        if stage in (Stage.APPROVED, Stage.PRODUCTION) and not self.obs.manifest_written:
            actions.append(self._manifest())
        alias = self.s.alias
        # Only while nothing blocks the promotion: a gate that regresses or a freeze window
        # that opens after the first attempt stops the retries too.
        if (
            stage is Stage.APPROVED
            and self.flip_allowed
            and alias is not None
            and not self._alias_shows(self.spec.version)
        ):
            actions.append(
                FlipAlias(
                    model=self.spec.model,
                    alias=self.spec.alias.name,
                    version=self.spec.version,
                    uri=self.spec.artifact.uri,
                    digest=self.spec.artifact.digest,
                    expected_current=alias.previous_version,
                )
            )
        return actions

    def _serving_actions(self) -> list[ReleaseAction]:
        sv = self.s.serving
        if sv is None:
            return []
        if sv.backend == BACKEND_TEMPLATE:
            child = child_rollout_spec(self.spec)
            if self.held:
                # Held: the child Rollout pauses too (no step advances, nothing measured).
                child["paused"] = True
            return [EnsureChildRollout(sv.name, child)]
        uri = SetPredictorStorageUri(sv.name, self.spec.artifact.uri)
        if sv.step_index >= self.n or sv.passed:
            return [uri, RemoveCanaryTrafficPercent(sv.name)]
        return [SetCanaryTrafficPercent(sv.name, sv.weight), uri]

    def _traffic_off_actions(self) -> list[ReleaseAction]:
        sv = self.s.serving
        if sv is None or sv.traffic_off in (None, "none"):
            return []
        if sv.backend == BACKEND_TEMPLATE:
            return [RevertChildRollout(sv.name, sv.previous_template)]
        if sv.traffic_off == "pin" or sv.previous_storage_uri is None:
            return [SetCanaryTrafficPercent(sv.name, 0)]
        return [
            RemoveCanaryTrafficPercent(sv.name),
            SetPredictorStorageUri(sv.name, sv.previous_storage_uri),
        ]

    def _flip_back_actions(self) -> list[ReleaseAction]:
        alias = self.s.alias
        if alias is None or not self._needs_flip_back():
            return []
        return [
            FlipAlias(
                model=self.spec.model,
                alias=self.spec.alias.name,
                version=alias.previous_version,
                uri=alias.previous_uri,
                digest=alias.previous_digest,
                expected_current=self.spec.version,
            )
        ]

    def _manifest(self) -> WriteReleaseManifest:
        return WriteReleaseManifest(
            name=f"{self.obs.name}-manifest", content=release_manifest(self.spec, self.s)
        )

    def _requeue(self) -> float | None:
        if not self.wakes:
            return None
        return max((min(self.wakes) - self.now).total_seconds(), 0.0)
