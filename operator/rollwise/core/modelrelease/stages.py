"""The stages of a pass: Candidate, Staging, Approved and Production, each moving on when
its gates, canary and approvals allow.

Pure: no clock (``now`` is an argument), no I/O.
"""

from __future__ import annotations

from rollwise.core.modelrelease import reasons as R
from rollwise.core.modelrelease.canary import Canary
from rollwise.core.modelrelease.gates import Gates
from rollwise.core.modelrelease.observations import (
    BACKEND_TEMPLATE,
    GATE_APPROVALS,
    GATE_FREEZE,
    GATE_POLICY_CANARY,
    GATE_POLL_SECONDS,
)
from rollwise.core.modelrelease.spec import (
    canary_gates,
    changed_fields,
    pre_staging_gates,
    promote_gates,
    required_roles,
)
from rollwise.core.modelrelease.status import (
    AliasStatus,
    ApprovalRecord,
    GateStatus,
    Stage,
)
from rollwise.core.modelrelease.watch import Watch
from rollwise.core.spec_release import ChangeType


class Stages(Gates, Canary, Watch):
    """The stages: Candidate, Staging, Approved and Production, each moving on when its gates,
    canary and approvals allow."""

    def _advance(self) -> None:
        for _ in range(4):
            before = self.stage
            if before is Stage.CANDIDATE:
                self._candidate()
            elif before is Stage.STAGING:
                self._staging()
            elif before is Stage.APPROVED:
                self._approved()
            elif before is Stage.PRODUCTION:
                self._production()
            if self.stage.terminal:
                self._terminal()
                return
            if self.stage is before:
                return

    def _candidate(self) -> None:
        blocker = self.obs.blocking_release
        model, alias = self.spec.model, self.spec.alias.name
        if blocker:
            if self.s.queued_behind != blocker:
                self.emit(R.QUEUED, blocker=blocker, model=model, alias=alias)
            self.update(queued_behind=blocker)
            self.wait(f"Queued behind {blocker}")
            return
        if self.s.queued_behind is not None:
            self.emit(R.UNQUEUED, model=model, alias=alias)
            self.update(queued_behind=None)
        blocking = self._blocking(pre_staging_gates(self.spec, self.rules))
        if blocking:
            self.wait("waiting for gates before Staging: " + "; ".join(blocking))
            return
        gates = ", ".join(pre_staging_gates(self.spec, self.rules))
        self.transition(
            Stage.STAGING,
            R.STAGED,
            version=self.spec.version,
            why=f"gates passed ({gates}); canary starting",
        )
        self._start_serving()

    def _staging(self) -> None:
        sv = self.s.serving
        if sv is None:
            self._start_serving()
            sv = self.s.serving
        if sv is not None and sv.failure is None and self._policy_halts_canary():
            return
        if sv is not None and not sv.passed:
            if self.backend == BACKEND_TEMPLATE:
                self._follow_child()
            else:
                self._kserve()
        sv = self.s.serving
        if sv is None or self.stage is not Stage.STAGING:
            return
        if sv.failure is not None:
            return
        if not sv.passed:
            return
        needed = (
            *pre_staging_gates(self.spec, self.rules),
            GATE_APPROVALS,
            *promote_gates(self.spec, self.rules),
            *canary_gates(self.spec, self.rules),
        )
        blocking = self._blocking(needed)
        if blocking:
            self.wait("canary passed; waiting for " + "; ".join(blocking))
            return
        filled, _ = self._valid_approvals()
        approvals = [
            ApprovalRecord(role=r, user=filled[r].user, at=filled[r].at)
            for r in required_roles(self.spec, self.rules)
            if r in filled
        ]
        self.update(approvals=approvals)
        approvals_gate = self.gates.get(GATE_APPROVALS)
        why = approvals_gate.record.message if approvals_gate is not None else ""
        users = sorted({a.user for a in approvals})
        self.update(approved_content=self.content)
        self.transition(
            Stage.APPROVED,
            R.APPROVED,
            ", ".join(users) if users else None,
            version=self.spec.version,
            why=f"canary passed; {why}",
        )

    def _policy_halts_canary(self) -> bool:
        """A canary in Staging (running, or passed and waiting for its promotion) that the Rego
        policy's canary point denies (``policy-canary`` Failed) is rolled back in this pass,
        the policy's words as the cause, its traffic off as for any rollback in Staging.
        Pending holds nothing here: the canary steps on, and is promoted only once the gate
        passes."""
        if not canary_gates(self.spec, self.rules):
            return False
        gate = self.gates.get(GATE_POLICY_CANARY)
        if gate is None or gate.passing or gate.record.status is not GateStatus.FAILED:
            return False
        cause = f"{GATE_POLICY_CANARY}: {gate.record.message}"
        self.serving(traffic_off=self._traffic_off_mode(self.stage), failure=cause, weight=0)
        self._rolled_back(cause)
        return True

    def _content_changed(self) -> bool:
        """Whether what decides what runs changed since the release was approved; reported
        once per distinct set of fields. A release approved before approvals were bound to
        content records its content now."""
        approved = self.s.approved_content
        if approved is None:
            self.update(approved_content=self.content)
            return False
        fields = changed_fields(approved, self.content)
        if list(fields) != self.s.content_changed:
            if fields:
                self.emit(R.CONTENT_CHANGED, fields=", ".join(fields), version=self.spec.version)
            self.update(content_changed=list(fields))
        self.changed_since_approval = fields
        return bool(fields)

    def _approved(self) -> None:
        if self._content_changed():
            self.wait(
                f"approved; {', '.join(self.changed_since_approval)} changed after approval: "
                "promotion held and the approved content keeps serving; revert the change or "
                "release it as a new ModelRelease"
            )
            return
        blocking = self._blocking(
            (
                *pre_staging_gates(self.spec, self.rules),
                GATE_APPROVALS,
                *promote_gates(self.spec, self.rules),
            )
        )
        if blocking:
            self.wait("approved; promotion to Production blocked by " + "; ".join(blocking))
            return
        freeze = self.gates.get(GATE_FREEZE)
        bypass_by: str | None = None
        if freeze is None or not freeze.passing:
            executive = self._executive()
            frozen = freeze is not None and freeze.record.status is GateStatus.FAILED
            detail = freeze.record.message if freeze is not None else "no result"
            if frozen and self.spec.change.type is ChangeType.EMERGENCY and executive is not None:
                bypass_by = executive.user
            else:
                if frozen:
                    old = self.prev.gate(GATE_FREEZE)
                    was_frozen = (
                        self.prev.stage is Stage.APPROVED
                        and old is not None
                        and old.status is GateStatus.FAILED
                    )
                    if not was_frozen:
                        self.emit(R.PROMOTION_FROZEN, detail=detail)
                    self.wait(f"approved; promotion to Production held by freeze window: {detail}")
                else:
                    self.wait(f"approved; waiting for the freeze-window gate ({detail})")
                return
        version = self.spec.version
        alias = self.s.alias or AliasStatus(name=self.spec.alias.name)
        if self._alias_shows(version):
            self.alias(last_error=None, flip_requested=True)
            self.transition(
                Stage.PRODUCTION,
                R.PROMOTED_TO_PRODUCTION,
                alias=self.spec.alias.name,
                model=self.spec.model,
                version=version,
                previous=alias.previous_version or "none",
            )
            return
        self.flip_allowed = True
        if not alias.flip_requested:
            if bypass_by is not None:
                detail = self.gates[GATE_FREEZE].record.message
                self.emit(R.FREEZE_BYPASSED, detail=detail, user=bypass_by)
            self.alias(flip_requested=True)
        reading = self.obs.alias
        error = reading.error if reading is not None else None
        if error is not None and alias.last_error != error:
            self.emit(
                R.ALIAS_FLIP_PENDING,
                alias=self.spec.alias.name,
                model=self.spec.model,
                version=version,
                detail=error,
            )
        self.alias(last_error=error)
        if reading is None:
            shown = "not read yet"
        elif error is not None:
            shown = f"store error: {error}"
        else:
            shown = f"reads {reading.version or 'nothing'}"
        self.cluster_wait(
            f"approved; flipping alias {self.spec.alias.name} to {version} ({shown}); "
            "Production once the alias reads back this version"
        )

    def _production(self) -> None:
        version = self.spec.version
        if self._alias_shows(version):
            self.message = (
                f"version {version} in Production: alias {self.spec.alias.name} points at it"
            )
            self._watch()
        else:
            reading = self.obs.alias
            alias = self.s.alias
            if (
                reading is not None
                and reading.error is None
                and reading.version is not None
                and alias is not None
                and alias.held
            ):
                # The alias held this version and has since moved on (a later release):
                # this release is done, and it never flips the alias back by itself.
                self.superseded = True
                self._end_watch()
                self.message = (
                    f"version {version} was superseded: alias {self.spec.alias.name} now "
                    f"points at version {reading.version}"
                )
                return
            shown = "unreadable" if reading is None or reading.error else reading.version
            self.message = (
                f"version {version} in Production; alias {self.spec.alias.name} reads {shown}"
            )
            self.poll(GATE_POLL_SECONDS)
