"""The traffic router interface, the context a router is built with, and ``NopRouter``.

A router moves a share of a Rollout's traffic between its stable and canary revisions (and,
with ``strategy.canary.baseline``, its baseline) and reads back the share actually in effect.
The split it writes is the core's :class:`rollwise.core.traffic.TrafficSplit`; a bare canary
weight ``w`` stands for the two-way split ``canary w, stable 100 - w``. Every method is
idempotent; ``get_weight`` reads the routing object on every call (never a remembered value),
so an edit made behind the operator's back is seen on the next pass.

Errors: ``RouteNotFound`` / ``RouteMisconfigured`` for what the routing object says, and the
``KubeError`` subclasses (``Conflict``, ``Unavailable``, ...) for the API calls themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from rollwise.core.traffic import HeaderRoute, MirrorRoute, TrafficSplit


@dataclass(frozen=True)
class RouterContext:
    """What a router knows of its Rollout.

    ``stable_deployment`` / ``canary_deployment`` name the revision Deployments (only the
    replica-ratio router uses them; the canary is None when there is no canary), and
    ``replicas`` is the Rollout's ``spec.replicas``. ``baseline_service`` is set when the
    Rollout runs with a baseline (a router then manages that Service's share too, 0 when no
    baseline runs); ``baseline_deployment`` names the baseline's Deployment while one runs.
    """

    namespace: str
    rollout: str
    stable_service: str
    canary_service: str
    replicas: int = 1
    stable_deployment: str | None = None
    canary_deployment: str | None = None
    baseline_service: str | None = None
    baseline_deployment: str | None = None


Weights = int | TrafficSplit
"""What ``set_weight`` and ``verify`` take: the canary weight alone (two-way) or a split."""


def as_split(weights: Weights) -> TrafficSplit:
    """``weights`` as a split (``ValueError`` for a canary weight outside 0-100)."""
    if isinstance(weights, TrafficSplit):
        return weights
    check_weight(weights)
    return TrafficSplit(canary=weights, stable=100 - weights)


@runtime_checkable
class TrafficRouter(Protocol):
    """Sends ``canary_weight`` percent of the traffic to the canary, the rest to stable.

    ``scales_revisions`` is True for a router that carries the weight by scaling the revision
    Deployments (replica ratio): the core's scale actions already do that, so the runtime must
    not also call ``set_weight`` for a ``SetWeight`` action (it would undo the core's early
    scale-up of the canary for the next step).
    """

    scales_revisions: bool

    def set_weight(self, canary_weight: Weights) -> None:
        """Writes the split (no write when it is already in effect)."""
        ...

    def get_weight(self) -> int | None:
        """The canary weight (its percentage of all the traffic) the routing object carries
        now; None when it cannot be told (e.g. two rules disagree)."""
        ...

    def get_baseline_weight(self) -> int | None:
        """The baseline's percentage of all the traffic the routing object carries now (0
        when the context names no baseline); None when it cannot be told."""
        ...

    def verify(self, weight: Weights) -> bool:
        """Whether ``weight`` is in effect and the routing object is accepted. A bare canary
        weight checks the canary's share; a split checks the baseline's share too."""
        ...

    def reset(self) -> None:
        """All traffic to stable."""
        ...

    def set_header_routes(self, routes: Sequence[HeaderRoute]) -> None:
        """Makes ``routes`` the header routes the operator keeps on the routing object, each
        sending its matching requests to the canary Service (an empty sequence removes the
        operator's routes; routes people wrote are left alone). ``RouteMisconfigured`` from a
        router that cannot route by header."""
        ...

    def get_header_routes(self) -> tuple[HeaderRoute, ...] | None:
        """The operator's header routes in effect now (read from the routing object)."""
        ...

    def set_mirror_routes(self, routes: Sequence[MirrorRoute]) -> None:
        """Makes ``routes`` the mirrors the operator keeps on the routing object, each copying
        its share of the routed requests to the canary Service, responses discarded (an empty
        sequence removes the operator's; mirrors people wrote are left alone).
        ``RouteMisconfigured`` from a router that cannot mirror."""
        ...

    def get_mirror_routes(self) -> tuple[MirrorRoute, ...] | None:
        """The operator's mirrors in effect now (read from the routing object)."""
        ...


class NopRouter:
    """Routes nothing; reports the weight last set (dry runs and tests)."""

    scales_revisions = False

    def __init__(self, weight: int = 0) -> None:
        self.weight = weight
        self.baseline = 0
        self.writes = 0
        self.header_routes: tuple[HeaderRoute, ...] = ()
        self.mirror_routes: tuple[MirrorRoute, ...] = ()

    def set_weight(self, canary_weight: Weights) -> None:
        split = as_split(canary_weight)
        if (split.canary, split.baseline) != (self.weight, self.baseline):
            self.writes += 1
        self.weight = split.canary
        self.baseline = split.baseline

    def get_weight(self) -> int | None:
        return self.weight

    def get_baseline_weight(self) -> int | None:
        return self.baseline

    def verify(self, weight: Weights) -> bool:
        if isinstance(weight, TrafficSplit):
            return (self.weight, self.baseline) == (weight.canary, weight.baseline)
        return self.weight == weight

    def reset(self) -> None:
        self.set_weight(0)

    def set_header_routes(self, routes: Sequence[HeaderRoute]) -> None:
        if tuple(routes) != self.header_routes:
            self.writes += 1
        self.header_routes = tuple(routes)

    def get_header_routes(self) -> tuple[HeaderRoute, ...] | None:
        return self.header_routes

    def set_mirror_routes(self, routes: Sequence[MirrorRoute]) -> None:
        if tuple(routes) != self.mirror_routes:
            self.writes += 1
        self.mirror_routes = tuple(routes)

    def get_mirror_routes(self) -> tuple[MirrorRoute, ...] | None:
        return self.mirror_routes


def check_weight(weight: int) -> None:
    """Refuses a weight outside 0-100: a programming error, not an adapter failure."""
    if not 0 <= weight <= 100:
        raise ValueError(f"canary weight must be within 0-100, got {weight}")


def canary_share(stable: float, canary: float, baseline: float = 0) -> int | None:
    """The canary's percentage of a stable/canary(/baseline) set of weights (None when all
    are 0)."""
    total = stable + canary + baseline
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


Backends = list[dict[str, Any]]


def place_split(
    backends: Backends,
    split: TrafficSplit,
    ctx: RouterContext,
    find: Callable[[Backends, str, str], int | None],
    add: Callable[[Backends, int, int, str], None],
) -> bool:
    """Writes ``split`` into one route's weighted backends, in place: the stable one (which
    must be there), the canary and the baseline, each added after the stable one (by ``add``,
    copied from it) when it carries a share and is missing. ``find`` locates a Service's
    backend by name and namespace. False when the route has neither a canary nor a baseline
    backend to weigh (left as it is)."""
    ns = ctx.namespace
    stable = find(backends, ctx.stable_service, ns)
    assert stable is not None  # the routers only pass routes with a stable backend
    canary = find(backends, ctx.canary_service, ns)
    if canary is None and split.canary > 0:
        add(backends, stable, stable, ctx.canary_service)
        canary = stable + 1
    baseline = None
    if ctx.baseline_service is not None:
        baseline = find(backends, ctx.baseline_service, ns)
        if baseline is None and split.baseline > 0:
            add(backends, stable, canary if canary is not None else stable, ctx.baseline_service)
            baseline = find(backends, ctx.baseline_service, ns)
    if canary is None and baseline is None:
        return False
    backends[stable]["weight"] = split.stable
    if canary is not None:
        backends[canary]["weight"] = split.canary
    if baseline is not None:
        backends[baseline]["weight"] = split.baseline
    return True


__all__ = [
    "Backends",
    "NopRouter",
    "RouterContext",
    "TrafficRouter",
    "Weights",
    "agreed",
    "as_split",
    "canary_share",
    "check_weight",
    "conditions_ok",
    "place_split",
]
