"""The registry alias and the terminal stages of a pass: the alias read back, a revoke, a
rollback by override, the flip back to the previous version, a refused version.

Pure: no clock, no I/O.
"""

from __future__ import annotations

from rollwise.core.conditions import ConditionStatus
from rollwise.core.modelrelease import reasons as R
from rollwise.core.modelrelease.observations import (
    BACKEND_KSERVE,
    BACKEND_TEMPLATE,
)
from rollwise.core.modelrelease.overrides import ReleaseOverride
from rollwise.core.modelrelease.state import PassState
from rollwise.core.modelrelease.status import (
    AliasStatus,
    ReleaseConditionType,
    RevokeRecord,
    Stage,
)


class Alias(PassState):
    """The alias and the terminal stages: the alias read back, revoke, rollback by override, the
    flip back, and a refused version."""

    def _read_alias(self) -> None:
        reading = self.obs.alias
        if self.s.alias is None:
            self.alias(name=self.spec.alias.name)
        if reading is None:
            return
        if reading.error is not None:
            return
        self.alias(current_version=reading.version)
        if reading.version == self.spec.version:
            self.alias(held=True)
        # Until the alias shows this version, what it shows is the rollback target: recorded
        # from every reading before Production, so a crash between the flip and the status
        # patch never loses it.
        before_flip = self.stage in (Stage.CANDIDATE, Stage.STAGING, Stage.APPROVED)
        if before_flip and reading.version != self.spec.version:
            self.alias(
                previous_version=reading.version,
                previous_uri=reading.uri,
                previous_digest=reading.digest,
            )

    def _override_rollback(self, override: ReleaseOverride) -> None:
        """Traffic off this version and the alias back as for a revoke, but RolledBack: the
        version is not entered in the revocation ledger and may be released again."""
        stage = self.stage
        cause = f"override {override.id} by {override.user}: {override.reason}"
        self.serving(traffic_off=self._traffic_off_mode(stage), failure=cause)
        self.transition(
            Stage.ROLLED_BACK,
            R.ROLLED_BACK,
            override.user,
            version=self.spec.version,
            stage=stage.value,
            cause=cause,
        )

    def _revoke(self) -> None:
        request = self.obs.revoke
        if request is None:
            return
        stage = self.stage
        traffic_off = self._traffic_off_mode(stage)
        self.serving(traffic_off=traffic_off)
        self.update(
            revoked=RevokeRecord(
                request=request.id,
                reason=request.reason,
                user=request.user,
                at=request.at,
                from_stage=stage,
            )
        )
        self.transition(
            Stage.REVOKED,
            R.REVOKED,
            request.user,
            version=self.spec.version,
            stage=stage.value,
            by=request.user or "unknown",
            why=request.reason or "no reason given",
        )

    def _traffic_off_mode(self, stage: Stage) -> str:
        sv = self.s.serving
        if stage is Stage.ROLLED_BACK and sv is not None and sv.traffic_off is not None:
            return sv.traffic_off
        if stage is Stage.CANDIDATE or sv is None:
            return "none"
        if sv.backend == BACKEND_TEMPLATE:
            return "revert"
        isvc = self.obs.inference_service
        rolled_out = sv.passed or (
            isvc is not None
            and sv.revision is not None
            and isvc.latest_rolledout_revision == sv.revision
        )
        if not rolled_out:
            return "pin"
        return "revert" if sv.previous_storage_uri is not None else "none"

    def _terminal(self) -> None:
        alias = self.s.alias or AliasStatus(name=self.spec.alias.name)
        what = "revoked" if self.stage is Stage.REVOKED else "rolled back"
        base = f"version {self.spec.version} {what}"
        if self.stage is Stage.REVOKED and self.s.revoked is not None:
            base += f" by {self.s.revoked.user or 'unknown'}: {self.s.revoked.reason}"
        elif self.s.serving is not None and self.s.serving.failure:
            base += f": {self.s.serving.failure}"
        if self._needs_flip_back():
            previous = alias.previous_version
            if self._alias_shows(previous):
                self.alias(restored=True)
                # Only news when the alias had moved to this version; a flip that never took
                # effect leaves nothing to restore.
                if alias.held:
                    self.emit(
                        R.ALIAS_RESTORED,
                        alias=self.spec.alias.name,
                        model=self.spec.model,
                        previous=previous or "nothing",
                    )
            else:
                self.cluster_wait(
                    f"{base}; restoring alias {self.spec.alias.name} to {previous or 'nothing'}"
                )
                return
        sv = self.s.serving
        if (
            sv is not None
            and sv.traffic_off == "none"
            and self.stage is Stage.REVOKED
            and sv.backend == BACKEND_KSERVE
            and sv.passed
        ):
            base += "; no previous model to serve: the InferenceService still serves it"
        self.message = base

    def _refuse(self) -> None:
        self.refused = True
        cond = self.prev.condition(ReleaseConditionType.INVALID_SPEC)
        if (
            cond is None
            or cond.status is not ConditionStatus.TRUE
            or cond.reason != (R.VERSION_REVOKED.name)
        ):
            self.emit(R.VERSION_REVOKED, model=self.spec.model, version=self.spec.version)
        self.message = R.VERSION_REVOKED.format(model=self.spec.model, version=self.spec.version)
