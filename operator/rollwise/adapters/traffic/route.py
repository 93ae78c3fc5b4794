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

from dataclasses import dataclass

from rollwise.adapters.errors import RouteMisconfigured, RouteNotFound
from rollwise.adapters.traffic.base import TrafficRouter


@dataclass(frozen=True)
class RouteReading:
    """The route as a pass observes it: the canary ``weight`` in effect (None: cannot be
    told), the ``problem`` with a routing object the spec names (missing, or unable to carry
    the split; None: none), and whether the routing object carries ``weight`` without being
    accepted by its Gateway or mesh (``rejected``)."""

    weight: int | None
    problem: str | None = None
    rejected: bool = False


def read_route(router: TrafficRouter) -> RouteReading:
    """Reads the weight in effect and whether the routing object is accepted (the second read
    is the same object: a pass's read view serves it again)."""
    try:
        weight = router.get_weight()
    except (RouteNotFound, RouteMisconfigured) as exc:
        if router.scales_revisions:
            # The replica-ratio "route" is the stable Deployment, created by this very pass
            # for a new Rollout: not a spec error.
            return RouteReading(weight=None)
        return RouteReading(weight=None, problem=exc.message)
    if weight is None or router.scales_revisions:
        return RouteReading(weight=weight)
    return RouteReading(weight=weight, rejected=not router.verify(weight))


def write_weight(router: TrafficRouter, weight: int) -> bool:
    """Puts ``weight`` percent of the traffic on the canary (0: all of it back on stable,
    the router's ``reset``); False when the router carries the weight by the revisions'
    replica counts, which the scale actions already set."""
    if router.scales_revisions:
        return False
    if weight == 0:
        router.reset()
    else:
        router.set_weight(weight)
    return True


__all__ = ["RouteReading", "read_route", "write_weight"]
