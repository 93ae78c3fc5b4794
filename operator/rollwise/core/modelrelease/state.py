"""The state of one ModelRelease pass, shared by its concerns.

:class:`PassState` is the mutable scratchpad of one
:func:`rollwise.core.modelrelease.release.decide_release` call: the spec, the previous status,
the observations, ``now``, and the status, events and wake-ups built so far, with the moves
every concern makes (emit, wait, poll, move to a stage). The concerns build on it: gates
(:mod:`.gates`), the canary (:mod:`.canary`), the alias and terminal stages (:mod:`.alias`),
the stages (:mod:`.stages`) and completion (:mod:`.completion`).

Pure: no clock (``now`` is an argument), no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rollwise.core.durations import add_seconds
from rollwise.core.events import Event
from rollwise.core.modelrelease import reasons as R
from rollwise.core.modelrelease.actions import (
    release_event,
)
from rollwise.core.modelrelease.observations import (
    GATE_POLL_SECONDS,
    POLL_SECONDS,
    ReleaseObservations,
)
from rollwise.core.modelrelease.policy import ReleaseRules
from rollwise.core.modelrelease.spec import (
    _backend,
    release_content,
)
from rollwise.core.modelrelease.status import (
    MAX_HISTORY,
    AliasStatus,
    GateRecord,
    HistoryEntry,
    ModelReleaseStatus,
    Stage,
)
from rollwise.core.reasons import Reason
from rollwise.core.spec_release import ModelReleaseSpec


class PassState:
    """The mutable scratchpad of one ModelRelease pass, and the moves every concern makes."""

    def __init__(
        self,
        spec: ModelReleaseSpec,
        previous: ModelReleaseStatus,
        obs: ReleaseObservations,
        now: datetime,
        rules: ReleaseRules,
    ) -> None:
        self.spec = spec
        self.prev = previous
        self.obs = obs
        self.now = now
        self.rules = rules
        self.content = release_content(spec)
        #: Fields changed since the release was approved: nothing of the change is applied.
        self.changed_since_approval: tuple[str, ...] = ()
        self.ticket = spec.change.ticket
        self.backend = _backend(spec)
        self.steps = spec.canary.steps
        self.n = len(self.steps)
        self.events: list[Event] = []
        self.wakes: list[datetime] = []
        self.message = ""
        self.waiting = False
        self.refused = False
        self.flip_allowed = False
        self.superseded = False
        self.held = False
        #: Why a promote override does not act yet (it waits for a confirmation), or what it
        #: cannot override; added to the status message.
        self.override_note = ""
        self.gates: dict[str, GateState] = {}
        self.s = previous.model_copy(
            update={
                "observed_generation": obs.generation,
                "overrides_seq": max(previous.overrides_seq, obs.overrides_seq),
            }
        )

    def update(self, **fields: Any) -> None:
        self.s = self.s.model_copy(update=fields)

    def serving(self, **fields: Any) -> None:
        if self.s.serving is not None:
            self.update(serving=self.s.serving.model_copy(update=fields))

    def alias(self, **fields: Any) -> None:
        current = self.s.alias or AliasStatus(name=self.spec.alias.name)
        self.update(alias=current.model_copy(update=fields))

    def emit(self, reason: Reason, **fields: object) -> None:
        self.events.append(release_event(reason, self.ticket, **fields))

    def wake(self, at: datetime | None) -> None:
        if at is not None:
            self.wakes.append(at)

    def poll(self, seconds: float) -> None:
        self.wake(add_seconds(self.now, seconds))

    def wait(self, message: str, seconds: float = GATE_POLL_SECONDS) -> None:
        """Held by a gate, approvals, a freeze window or the queue."""
        self.waiting = True
        self.message = message
        self.poll(seconds)

    def cluster_wait(self, message: str) -> None:
        """Waiting on the cluster or the alias store to catch up."""
        self.message = message
        self.poll(POLL_SECONDS)

    @property
    def stage(self) -> Stage:
        return self.s.stage or Stage.CANDIDATE

    def transition(
        self, to: Stage, reason: Reason, user: str | None = None, **fields: object
    ) -> None:
        event = release_event(reason, self.ticket, **fields)
        self.events.append(event)
        entry = HistoryEntry(
            from_stage=self.s.stage,
            stage=to,
            time=self.now,
            reason=reason.name,
            message=event.message,
            user=user,
        )
        self.update(stage=to, history=[*self.s.history, entry][-MAX_HISTORY:])
        if to.terminal:
            # What the pass asked to be woken for so far (a waiver's expiry, a gate's poll)
            # belonged to the stage it leaves: an ended release is woken only for what its
            # terminal stage still does, as any later pass of it would be.
            self.wakes.clear()

    def _alias_shows(self, version: str | None) -> bool:
        reading = self.obs.alias
        return reading is not None and reading.error is None and reading.version == version

    def _blocking(self, names: tuple[str, ...]) -> list[str]:
        out = []
        for name in names:
            gate = self.gates.get(name)
            if gate is None or not gate.passing:
                status = gate.record.status.value if gate is not None else "Pending"
                text = gate.record.message if gate is not None else ""
                out.append(f"{name} {status}" + (f" ({text})" if text else ""))
        return out

    def _rolled_back(self, cause: str) -> None:
        self.transition(
            Stage.ROLLED_BACK,
            R.ROLLED_BACK,
            version=self.spec.version,
            stage=self.stage.value,
            cause=cause,
        )

    def _held_alias(self) -> bool:
        """Whether this version holds (or may hold) the alias: a flip was issued or the
        alias was seen on it."""
        alias = self.s.alias
        if alias is not None and (alias.flip_requested or alias.held):
            return True
        return self._alias_shows(self.spec.version)

    def _needs_flip_back(self) -> bool:
        """This version may hold the alias, it is not restored yet, and there is a rollback
        target other than this version (a status claiming this version as its own previous
        one is corrupt: nothing sensible to flip back to)."""
        alias = self.s.alias
        if alias is not None and alias.previous_version == self.spec.version:
            return False
        return self._held_alias() and not (alias is not None and alias.restored)


@dataclass(frozen=True)
class GateState:
    record: GateRecord
    passing: bool
