"""The traffic router interface, the context a router is built with, and ``NopRouter``.

A router moves a share of a Rollout's traffic between its stable and canary revisions and
reads back the share actually in effect. Every method is idempotent; ``get_weight`` reads the
routing object on every call (never a remembered value), so an edit made behind the
operator's back is seen on the next pass.

Errors: ``RouteNotFound`` / ``RouteMisconfigured`` for what the routing object says, and the
``KubeError`` subclasses (``Conflict``, ``Unavailable``, ...) for the API calls themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class RouterContext:
    """What a router knows of its Rollout.

    ``stable_deployment`` / ``canary_deployment`` name the revision Deployments (only the
    replica-ratio router uses them; the canary is None when there is no canary), and
    ``replicas`` is the Rollout's ``spec.replicas``.
    """

    namespace: str
    rollout: str
    stable_service: str
    canary_service: str
    replicas: int = 1
    stable_deployment: str | None = None
    canary_deployment: str | None = None


@runtime_checkable
class TrafficRouter(Protocol):
    """Sends ``canary_weight`` percent of the traffic to the canary, the rest to stable.

    ``scales_revisions`` is True for a router that carries the weight by scaling the revision
    Deployments (replica ratio): the core's scale actions already do that, so the runtime must
    not also call ``set_weight`` for a ``SetWeight`` action (it would undo the core's early
    scale-up of the canary for the next step).
    """

    scales_revisions: bool

    def set_weight(self, canary_weight: int) -> None:
        """Writes the split (no write when it is already in effect)."""
        ...

    def get_weight(self) -> int | None:
        """The canary weight the routing object carries now; None when it cannot be told
        (e.g. two rules disagree)."""
        ...

    def verify(self, weight: int) -> bool:
        """Whether ``weight`` is in effect and the routing object is accepted."""
        ...

    def reset(self) -> None:
        """All traffic to stable."""
        ...


class NopRouter:
    """Routes nothing; reports the weight last set (dry runs and tests)."""

    scales_revisions = False

    def __init__(self, weight: int = 0) -> None:
        self.weight = weight
        self.writes = 0

    def set_weight(self, canary_weight: int) -> None:
        check_weight(canary_weight)
        if canary_weight != self.weight:
            self.writes += 1
        self.weight = canary_weight

    def get_weight(self) -> int | None:
        return self.weight

    def verify(self, weight: int) -> bool:
        return self.weight == weight

    def reset(self) -> None:
        self.set_weight(0)


def check_weight(weight: int) -> None:
    """Refuses a weight outside 0-100: a programming error, not an adapter failure."""
    if not 0 <= weight <= 100:
        raise ValueError(f"canary weight must be within 0-100, got {weight}")


def canary_share(stable: float, canary: float) -> int | None:
    """The canary's percentage of a stable/canary pair of weights (None when both are 0)."""
    total = stable + canary
    if total <= 0:
        return None
    return round(100 * canary / total)


def agreed(shares: Iterable[int | None]) -> int | None:
    """The one share every rule carries; None when they differ or one is unknown."""
    values = set(shares)
    if len(values) != 1:
        return None
    return values.pop()


def conditions_ok(
    obj: Mapping[str, Any], conditions: Iterable[Mapping[str, Any]], types: set[str]
) -> bool:
    """False when a current condition of one of ``types`` is ``False``. Absent conditions pass
    (no controller wrote them: the lab, or a controller that does not report), and so do
    conditions of an older generation: they describe a spec that is gone."""
    generation = (obj.get("metadata") or {}).get("generation")
    for condition in conditions:
        if condition.get("type") not in types or condition.get("status") != "False":
            continue
        observed = condition.get("observedGeneration")
        if observed is None or generation is None or observed >= generation:
            return False
    return True


__all__ = [
    "NopRouter",
    "RouterContext",
    "TrafficRouter",
    "agreed",
    "canary_share",
    "check_weight",
    "conditions_ok",
]
