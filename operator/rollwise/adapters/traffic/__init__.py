"""Traffic routers: one interface (:class:`TrafficRouter`), one module per implementation
(Gateway API HTTPRoute, Istio VirtualService, replica ratio, and ``NopRouter``), and the
registry that picks one for a Rollout (:func:`router_for`)."""

from rollwise.adapters.traffic.base import NopRouter, RouterContext, TrafficRouter
from rollwise.adapters.traffic.gateway import GatewayAPIRouter
from rollwise.adapters.traffic.istio import IstioRouter
from rollwise.adapters.traffic.registry import ROUTERS, router_for
from rollwise.adapters.traffic.replica_ratio import ReplicaRatioRouter

__all__ = [
    "ROUTERS",
    "GatewayAPIRouter",
    "IstioRouter",
    "NopRouter",
    "ReplicaRatioRouter",
    "RouterContext",
    "TrafficRouter",
    "router_for",
]
