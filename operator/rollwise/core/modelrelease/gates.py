"""The gates of a ModelRelease pass: artifact digest, SBOM, policy, freeze window and
approvals, with waivers and a confirmed promote override, recorded in ``status.gates`` with
an event on each change.

Pure: no clock, no I/O.
"""

from __future__ import annotations

from datetime import datetime

from rollwise.core.modelrelease import reasons as R
from rollwise.core.modelrelease.observations import (
    EXECUTIVE_ROLE,
    GATE_APPROVALS,
    GATE_FREEZE,
    GATE_REVALIDATE,
    OVERRIDDEN,
    OVERRIDE_PROMOTE,
    Approval,
    GateResult,
)
from rollwise.core.modelrelease.spec import (
    all_gates,
    required_roles,
    revalidate_by_time,
)
from rollwise.core.modelrelease.state import GateState, PassState
from rollwise.core.modelrelease.status import (
    GateRecord,
    GateStatus,
    Stage,
)
from rollwise.core.reasons import clip
from rollwise.core.spec_release import ChangeType
from rollwise.core.status_model import format_time


class Gates(PassState):
    """The gates of a pass: gate results, approvals (four eyes, voided ones reported), the
    override's gate, and their records and events."""

    def _gate_from_result(self, name: str) -> tuple[GateStatus, str, str, GateResult | None]:
        result = next((g for g in self.obs.gates if g.name == name), None)
        if result is None:
            return GateStatus.PENDING, "NotReported", "no result reported yet", None
        if result.status is GateStatus.WAIVED:
            expires = result.waiver_expires_at
            if expires is None or self.now < expires:
                self.wake(expires)
                return GateStatus.WAIVED, "Waived", result.message, result
            underlying = result.underlying or GateStatus.PENDING
            if underlying is GateStatus.WAIVED:
                underlying = GateStatus.PENDING
            return underlying, "WaiverExpired", result.message, result
        if result.recheck_at is not None and result.recheck_at > self.now:
            self.wake(result.recheck_at)
        return result.status, result.status.value, result.message, result

    def _approvals_gate(self) -> tuple[GateStatus, str, str, datetime | None]:
        spec = self.spec
        if spec.change.type is ChangeType.STANDARD and self.obs.digest_previously_approved:
            return (
                GateStatus.PASSED,
                "PreApproved",
                "standard change: this artifact digest was approved before; no approvals needed",
                None,
            )
        filled, notes = self._valid_approvals()
        required = list(required_roles(spec, self.rules))
        missing = [r for r in required if r not in filled]
        given = ", ".join(f"{r}: {filled[r].user}" for r in required if r in filled)
        if missing:
            message = "waiting for approval by " + ", ".join(missing)
            if given:
                message += f" (approved by {given})"
            status, reason = GateStatus.PENDING, "AwaitingApproval"
        else:
            message = f"approved by {given}" if given else "no approvals required"
            status, reason = GateStatus.PASSED, "Approved"
        notes.extend(v.describe() for v in self.obs.voided_approvals if v.role in required)
        if notes:
            message += "; ignored: " + "; ".join(notes)
        times = [filled[r].at for r in required if r in filled]
        return status, reason, message, max(times) if times else None

    def _voided_events(self) -> None:
        """One ``ApprovalVoided`` Warning per approval found void (remembered in status)."""
        voided = {v.key: v for v in self.obs.voided_approvals}
        for key in sorted(set(voided) - set(self.prev.voided_approvals)):
            found = voided[key]
            self.emit(
                R.APPROVAL_VOIDED,
                role=found.role,
                user=found.user,
                fields=", ".join(found.fields) or "the release's content (recorded unbound)",
            )
        self.update(voided_approvals=sorted(voided))

    def _valid_approvals(self) -> tuple[dict[str, Approval], list[str]]:
        """Approvals that count, by role: for this version, not by who set the version, one
        role per person (earliest first), plus why the others do not count."""
        required = set(required_roles(self.spec, self.rules))
        filled: dict[str, Approval] = {}
        users: set[str] = set()
        notes: list[str] = []
        for a in sorted(self.obs.approvals, key=lambda a: (a.at, a.role, a.user)):
            if a.role not in required:
                continue
            if a.version != self.spec.version:
                notes.append(f"{a.role} by {a.user} is for version {a.version}")
            elif self.obs.version_set_by is not None and a.user == self.obs.version_set_by:
                notes.append(f"{a.role} by {a.user} who set the version")
            elif a.role in filled:
                continue
            elif a.user in users:
                notes.append(f"{a.role} by {a.user} who already approved another role")
            else:
                filled[a.role] = a
                users.add(a.user)
        return filled, notes

    def _executive(self) -> Approval | None:
        for a in sorted(self.obs.approvals, key=lambda a: (a.at, a.user)):
            if (
                a.role == EXECUTIVE_ROLE
                and a.version == self.spec.version
                and a.user != self.obs.version_set_by
            ):
                return a
        return None

    def _evaluate_gates(self) -> None:
        records: list[GateRecord] = []
        for name in all_gates(self.spec, self.rules):
            result: GateResult | None = None
            if name == GATE_APPROVALS:
                status, reason, message, checked = self._approvals_gate()
                expires = None
            else:
                status, reason, message, result = self._gate_from_result(name)
                checked = result.checked_at if result is not None else None
                expires = result.waiver_expires_at if result is not None else None
                if status is GateStatus.FAILED:
                    status, reason, message = self._override_gate(reason, message)
            old = self.prev.gate(name)
            since = (
                old.last_transition_time
                if old is not None and old.status is status and old.reason == reason
                else self.now
            )
            rec = GateRecord(
                name=name,
                status=status,
                reason=reason,
                message=clip(message),
                checked_at=checked,
                waiver_expires_at=expires,
                last_transition_time=since,
            )
            records.append(rec)
            passing = status in (GateStatus.PASSED, GateStatus.WAIVED)
            self.gates[name] = GateState(rec, passing)
            self._gate_events(name, rec, old)
        self.update(gates=records)
        self._voided_events()

    def _override_gate(self, reason: str, message: str) -> tuple[GateStatus, str, str]:
        """A failed gate under a promote override: Waived (``Overridden``) once a second
        person confirmed it, else unchanged (still Failed) and the override waits."""
        override = self.obs.override
        if override is None or override.decision != OVERRIDE_PROMOTE:
            return GateStatus.FAILED, reason, message
        if not override.confirmed:
            self.override_note = (
                f"promote override by {override.user} waits for a second person's "
                f"confirmation: {override.confirm_hint}"
            )
            return GateStatus.FAILED, reason, message
        text = (
            f"overridden by {override.user}, confirmed by {override.confirmed_by} "
            f"(override {override.id}): {override.reason}; gate's own result: Failed"
            + (f": {message}" if message else "")
        )
        return GateStatus.WAIVED, OVERRIDDEN, text

    def _gate_events(self, name: str, rec: GateRecord, old: GateRecord | None) -> None:
        old_status = old.status if old is not None else None
        old_reason = old.reason if old is not None else None
        detail = rec.message or rec.status.value
        if rec.reason == "WaiverExpired" and old_reason != "WaiverExpired":
            expires = format_time(rec.waiver_expires_at) if rec.waiver_expires_at else "?"
            self.emit(
                R.WAIVER_EXPIRED,
                gate=name,
                expires=expires,
                status=rec.status.value,
                detail=detail,
            )
            return
        if rec.reason == OVERRIDDEN and old_reason != OVERRIDDEN:
            self.emit(R.GATE_OVERRIDDEN, gate=name, detail=detail)
            return
        if rec.status is GateStatus.WAIVED and old_status is not GateStatus.WAIVED:
            expires = format_time(rec.waiver_expires_at) if rec.waiver_expires_at else "never"
            self.emit(R.GATE_WAIVED, gate=name, expires=expires, detail=detail)
            return
        if name == GATE_FREEZE:
            return
        if name == GATE_REVALIDATE:
            if rec.status is GateStatus.FAILED and old_status is not GateStatus.FAILED:
                due = revalidate_by_time(self.spec)
                self.emit(
                    R.REVALIDATION_DUE,
                    version=self.spec.version,
                    stage=self.stage.value,
                    due=format_time(due) if due is not None else "?",
                    detail=detail,
                )
            return
        if rec.status is GateStatus.FAILED and old_status is not GateStatus.FAILED:
            if self.stage is Stage.PRODUCTION:
                self.emit(
                    R.GATE_REGRESSED,
                    version=self.spec.version,
                    gate=name,
                    status=rec.status.value,
                    detail=detail,
                )
            else:
                self.emit(R.GATE_FAILED, gate=name, detail=detail)
