"""``kubectl rollwise status``: a Rollout's state as one line and an exit code for scripts.

The line is ``PHASE - MESSAGE`` (the operator's phase and message). The exit codes:

====  =====================================================================================
0     Healthy: the template's revision is stable and serves all traffic.
1     Degraded: rolled back, aborted, past its progress deadline, or its spec is invalid
      (and, as for every command, when the plugin could not ask: no such rollout, no server).
2     bad arguments (argparse's usage error).
3     not finished: Progressing or Paused; with ``--watch``, still so when ``--timeout`` ran
      out.
====  =====================================================================================

A status the operator wrote for an older generation of the spec says nothing about the
current one: until the operator has observed the spec (``status.observedGeneration`` reaches
``metadata.generation``), the line says it waits for that and the code is 3, so a script that
runs ``set image`` then ``status --watch`` never reads the old revision's Healthy as the new
one's. Paused is not final: a timed pause ends on its own and an indefinite one when a person
promotes, so ``--watch`` keeps watching (as ``kubectl argo rollouts status`` does) and the
line shows what the Rollout waits for.

Pure: from the Rollout as the API server returned it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rollwise.cli.colour import PLAIN, Palette

HEALTHY = 0
DEGRADED = 1
NOT_DONE = 3


@dataclass(frozen=True)
class RolloutState:
    """What ``status`` prints and returns for one version of a Rollout."""

    phase: str
    message: str
    code: int

    @property
    def final(self) -> bool:
        """Whether watching can stop: Healthy or Degraded."""
        return self.code in (HEALTHY, DEGRADED)

    def line(self, palette: Palette = PLAIN) -> str:
        message = " ".join(self.message.split())
        phase = palette.word(self.phase)
        return f"{phase} - {message}" if message else phase


def _as_dict(value: object) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()} if isinstance(value, Mapping) else {}


def rollout_state(rollout: Mapping[str, Any]) -> RolloutState:
    """The state ``status`` reports for ``rollout`` (see the module docstring)."""
    meta = _as_dict(rollout.get("metadata"))
    status = _as_dict(rollout.get("status"))
    if not status or not status.get("phase"):
        return RolloutState(
            "Progressing",
            "waiting for the Rollwise operator: the rollout has no status yet",
            NOT_DONE,
        )
    generation = meta.get("generation")
    observed = status.get("observedGeneration")
    if isinstance(generation, int) and (not isinstance(observed, int) or observed < generation):
        return RolloutState(
            "Progressing",
            f"waiting for the operator to observe generation {generation} of the spec "
            f"(status is of generation {observed if observed is not None else 'none'})",
            NOT_DONE,
        )
    phase = str(status["phase"])
    message = str(status.get("message") or "")
    if phase == "Healthy":
        return RolloutState(phase, message, HEALTHY)
    if phase == "Degraded":
        return RolloutState(phase, message, DEGRADED)
    spec = _as_dict(rollout.get("spec"))
    if spec.get("paused") and "spec.paused" not in message:
        message = f"{message} (spec.paused: kubectl rollwise resume {meta.get('name', '')})"
    return RolloutState(phase, message.strip(), NOT_DONE)


__all__ = ["DEGRADED", "HEALTHY", "NOT_DONE", "RolloutState", "rollout_state"]
