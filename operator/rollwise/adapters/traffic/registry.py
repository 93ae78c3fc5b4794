"""Which router a Rollout uses: ``router_for(routing, context, api)``.

``ROUTERS`` maps the field of ``spec.strategy.canary.trafficRouting`` that is set (snake_case
name of :class:`rollwise.core.spec.TrafficRouting`) to a factory taking that field's model;
no field set means the replica-ratio router. Adding a router is one module, one entry here and
one parameter of the shared contract test (``tests/lab/test_router_contract.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rollwise.adapters.kube import KubeAPI
from rollwise.adapters.traffic.base import RouterContext, TrafficRouter
from rollwise.adapters.traffic.gateway import GatewayAPIRouter
from rollwise.adapters.traffic.istio import IstioRouter
from rollwise.adapters.traffic.replica_ratio import ReplicaRatioRouter
from rollwise.core.spec import TrafficRouting

RouterFactory = Callable[[Any, RouterContext, KubeAPI], TrafficRouter]

ROUTERS: dict[str, RouterFactory] = {
    "gateway_api": GatewayAPIRouter.from_spec,
    "istio": IstioRouter.from_spec,
}


def router_for(
    routing: TrafficRouting | None, context: RouterContext, api: KubeAPI | Any
) -> TrafficRouter:
    """The router for a Rollout's ``trafficRouting`` (``api``: a ``KubeAPI`` or a
    ``kubernetes.client.ApiClient``). The spec allows at most one router; the first set field
    in ``ROUTERS`` order wins should a spec that skipped validation set several."""
    kube = api if isinstance(api, KubeAPI) else KubeAPI(api)
    if routing is not None:
        for field_name, factory in ROUTERS.items():
            part = getattr(routing, field_name)
            if part is not None:
                return factory(part, context, kube)
    return ReplicaRatioRouter(kube, context)


__all__ = ["ROUTERS", "RouterFactory", "router_for"]
