"""What a reconcile pass does with a Rollout's router, whichever router it is.

A pass reads the route once (:func:`read_route`: the weight in effect, a routing object the
spec names but the cluster lacks or cannot carry, whether the mesh or Gateway accepted it)
and writes the weight a ``SetWeight`` action asks for (:func:`write_weight`). How a router
carries the weight stays here, next to the routers: a router that carries it by scaling the
revision Deployments (``TrafficRouter.scales_revisions``, the replica ratio) has no routing
object to be missing or to accept, and its weight follows the scale actions, so nothing is
written for it; all traffic back to stable is the router's ``reset``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rollwise.adapters.errors import RouteMisconfigured, RouteNotFound
from rollwise.adapters.traffic.base import TrafficRouter, Weights
from rollwise.core.traffic import HeaderRoute, MirrorRoute, TrafficSplit


@dataclass(frozen=True)
class RouteReading:
    """The route as a pass observes it: the canary ``weight`` in effect (None: cannot be
    told), the ``problem`` with a routing object the spec names (missing, or unable to carry
    the split; None: none), and whether the routing object carries ``weight`` without being
    accepted by its Gateway or mesh (``rejected``)."""

    weight: int | None
    problem: str | None = None
    rejected: bool = False
    #: The baseline's weight in effect, read only for a canary with a baseline (None: not read,
    #: or cannot be told).
    baseline_weight: int | None = None
    #: The operator's header routes in effect, read only when asked (None: not read).
    header_routes: tuple[HeaderRoute, ...] | None = None
    #: The operator's mirrors in effect, read only when asked (None: not read).
    mirror_routes: tuple[MirrorRoute, ...] | None = None


def read_route(
    router: TrafficRouter,
    *,
    baseline: bool = False,
    header_routes: bool = False,
    mirror_routes: bool = False,
) -> RouteReading:
    """Reads the weight in effect, the baseline's when the canary has one (once the canary's
    could be read: the same routing object, its problems are the canary weight's), and whether
    the routing object is accepted (the later reads are the same object: a pass's read view
    serves it again)."""
    try:
        weight = router.get_weight()
    except (RouteNotFound, RouteMisconfigured) as exc:
        if router.scales_revisions:
            # The replica-ratio "route" is the stable Deployment, created by this very pass
            # for a new Rollout: not a spec error.
            return RouteReading(weight=None)
        return RouteReading(weight=None, problem=exc.message)
    baseline_weight = router.get_baseline_weight() if baseline and weight is not None else None
    routes = router.get_header_routes() if header_routes else None
    mirrors = router.get_mirror_routes() if mirror_routes else None
    if weight is None or router.scales_revisions:
        return RouteReading(
            weight=weight,
            baseline_weight=baseline_weight,
            header_routes=routes,
            mirror_routes=mirrors,
        )
    return RouteReading(
        weight=weight,
        rejected=not router.verify(weight),
        baseline_weight=baseline_weight,
        header_routes=routes,
        mirror_routes=mirrors,
    )


def write_header_routes(router: TrafficRouter, routes: Sequence[HeaderRoute]) -> None:
    """Makes ``routes`` the operator's header routes on the router."""
    router.set_header_routes(routes)


def write_mirror_routes(router: TrafficRouter, routes: Sequence[MirrorRoute]) -> None:
    """Makes ``routes`` the operator's mirrors on the router."""
    router.set_mirror_routes(routes)


def write_weight(router: TrafficRouter, weight: Weights) -> bool:
    """Writes ``weight``, a canary percentage or a whole split (0 on the canary and no
    baseline: all of it back on stable, the router's ``reset``); False when the router carries
    the weight by the revisions' replica counts, which the scale actions already set. A split
    without a baseline share is written as the bare canary weight (the routers read both
    alike)."""
    if router.scales_revisions:
        return False
    if isinstance(weight, TrafficSplit) and weight.baseline:
        router.set_weight(weight)
        return True
    canary = weight.canary if isinstance(weight, TrafficSplit) else weight
    if canary == 0:
        router.reset()
    else:
        router.set_weight(canary)
    return True


__all__ = [
    "RouteReading",
    "read_route",
    "write_header_routes",
    "write_mirror_routes",
    "write_weight",
]
