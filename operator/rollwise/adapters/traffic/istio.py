"""Istio ``VirtualService`` router (``networking.istio.io/v1``).

Which HTTP routes carry the split: the ones named in ``routes`` (each must exist and have a
destination to the stable Service), else every ``http`` route with a destination to the stable
Service. A destination matches a Service by its ``host``: the short name (``web``), or a
qualified name in the Rollout's namespace (``web.shop``, ``web.shop.svc``,
``web.shop.svc.cluster.local``, any cluster domain). The stable destination gets weight
``100 - w``, the canary's ``w``; a route without a canary destination gets one, copied from the
stable one (host in the same form, port kept, subset dropped: subsets belong to the stable
host's DestinationRule) the first time a non-zero weight is set. With a baseline
(``RouterContext.baseline_service``) the split has three parts: the baseline Service's
destination (added after the canary's the same way) gets the baseline's weight and the stable's
what is left; the canary weight read back is the canary's share of all three.

A lone destination without ``weight`` takes all traffic (Istio's rule); with several, a missing
weight counts as 0. Writes are a merge patch of ``spec.http`` carrying the resourceVersion that
was read (``Conflict`` on a concurrent edit), and nothing is written when the weights are
already in effect. ``verify`` fails on a current ``Reconciled`` condition that is ``False``
(Istio writes it when status reporting is on); no status is not a failure.

Header routes (``set_header_routes``): each is an http route named ``rollwise-<name>`` put
before the others (Istio takes the first that matches), with the target routes' matches plus
the route's headers and the canary Service as its only destination; the operator's routes are
recorded in the VirtualService's annotation (``headers``).

Mirrors (``set_mirror_routes``): ``mirror`` (the canary Service's host in the stable
destination's form and port) and ``mirrorPercentage`` on each http route carrying the split;
Envoy discards the mirror's responses. A route carries a single mirror: one people wrote is
never replaced (``RouteMisconfigured``); the operator's are recorded in the annotation
(``mirrors``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from rollwise.adapters.errors import NotFound, RouteMisconfigured, RouteNotFound
from rollwise.adapters.kube import VIRTUALSERVICES, KubeAPI
from rollwise.adapters.traffic import mirrors
from rollwise.adapters.traffic.base import (
    RouterContext,
    Weights,
    agreed,
    as_split,
    canary_share,
    conditions_ok,
    place_split,
)
from rollwise.adapters.traffic.headers import ANNOTATION, Render, in_effect, replaced
from rollwise.core.spec import IstioRouting
from rollwise.core.traffic import HeaderRoute, MirrorRoute, TrafficSplit


def host_matches(host: str, service: str, namespace: str) -> bool:
    parts = host.split(".")
    if parts[0] != service:
        return False
    return len(parts) == 1 or (parts[1] == namespace and (len(parts) == 2 or parts[2] == "svc"))


def _find(destinations: list[dict[str, Any]], service: str, namespace: str) -> int | None:
    for index, entry in enumerate(destinations):
        host = str((entry.get("destination") or {}).get("host", ""))
        if host_matches(host, service, namespace):
            return index
    return None


def _weight_of(destinations: list[dict[str, Any]], index: int | None) -> float:
    if index is None:
        return 0
    default = 100 if len(destinations) == 1 else 0
    return float(destinations[index].get("weight", default))


def target_routes(vs: dict[str, Any], ctx: RouterContext, names: list[str] | None) -> list[int]:
    """Indexes of the ``http`` routes that carry the split (``RouteMisconfigured`` if none)."""
    routes = (vs.get("spec") or {}).get("http") or []
    vs_name = (vs.get("metadata") or {}).get("name", "?")
    has_stable = [
        _find(route.get("route") or [], ctx.stable_service, ctx.namespace) is not None
        for route in routes
    ]
    if names:
        by_name = {route.get("name"): index for index, route in enumerate(routes)}
        chosen: list[int] = []
        for name in names:
            index = by_name.get(name)
            if index is None:
                raise RouteMisconfigured(
                    f"VirtualService {ctx.namespace}/{vs_name} has no http route named {name!r}"
                )
            if not has_stable[index]:
                raise RouteMisconfigured(
                    f"http route {name!r} of VirtualService {ctx.namespace}/{vs_name} has no "
                    f"destination to the stable Service {ctx.stable_service}"
                )
            chosen.append(index)
        return chosen
    chosen = [index for index, ok in enumerate(has_stable) if ok]
    if not chosen:
        raise RouteMisconfigured(
            f"no http route of VirtualService {ctx.namespace}/{vs_name} has a destination to "
            f"the stable Service {ctx.stable_service}"
        )
    return chosen


def _share(route: dict[str, Any], ctx: RouterContext, of: str | None) -> int | None:
    destinations = route.get("route") or []
    stable = _find(destinations, ctx.stable_service, ctx.namespace)
    if stable is None:
        return None

    def weight(service: str | None) -> float:
        index = None if service is None else _find(destinations, service, ctx.namespace)
        return _weight_of(destinations, index)

    parts = [weight(ctx.canary_service), weight(ctx.baseline_service)]
    mine = parts[0] if of == ctx.canary_service else parts[1]
    return canary_share(_weight_of(destinations, stable) + sum(parts) - mine, mine)


def route_weight(route: dict[str, Any], ctx: RouterContext) -> int | None:
    """The canary's percentage of one route's stable/canary(/baseline) destinations."""
    return _share(route, ctx, ctx.canary_service)


def route_baseline_weight(route: dict[str, Any], ctx: RouterContext) -> int | None:
    """The baseline's percentage of one route's stable/canary/baseline destinations."""
    return _share(route, ctx, ctx.baseline_service)


def vs_weight(vs: dict[str, Any], ctx: RouterContext, names: list[str] | None) -> int | None:
    """The canary weight the target routes agree on (None if they differ)."""
    routes = (vs.get("spec") or {}).get("http") or []
    return agreed(route_weight(routes[i], ctx) for i in target_routes(vs, ctx, names))


def vs_baseline_weight(
    vs: dict[str, Any], ctx: RouterContext, names: list[str] | None
) -> int | None:
    """The baseline weight the target routes agree on (None if they differ)."""
    routes = (vs.get("spec") or {}).get("http") or []
    return agreed(route_baseline_weight(routes[i], ctx) for i in target_routes(vs, ctx, names))


def _host_like(stable_host: str, service: str) -> str:
    rest = stable_host.split(".", 1)
    return service if len(rest) == 1 else f"{service}.{rest[1]}"


def _add_destination(
    destinations: list[dict[str, Any]], stable: int, after: int, service: str
) -> None:
    entry = copy.deepcopy(destinations[stable])
    destination = entry["destination"]
    destination["host"] = _host_like(str(destination["host"]), service)
    destination.pop("subset", None)
    destinations.insert(after + 1, entry)


def http_with_weight(
    vs: dict[str, Any], ctx: RouterContext, names: list[str] | None, weight: Weights
) -> list[dict[str, Any]]:
    """The VirtualService's ``http`` routes with ``weight`` applied (pure)."""
    split = as_split(weight)
    routes: list[dict[str, Any]] = copy.deepcopy((vs.get("spec") or {}).get("http") or [])
    for index in target_routes(vs, ctx, names):
        destinations: list[dict[str, Any]] = routes[index].setdefault("route", [])
        place_split(destinations, split, ctx, _find, _add_destination)
    return routes


def header_route_renderer(
    vs: dict[str, Any], ctx: RouterContext, names: list[str] | None
) -> Render:
    """Renders a header route as a VirtualService http route named ``rollwise-<name>``: the
    target routes' matches, each with the route's headers added (Istio header names are
    lower case), to the canary Service alone (destination copied from the stable one, subset
    dropped)."""
    routes = (vs.get("spec") or {}).get("http") or []
    targets = target_routes(vs, ctx, names)
    base: list[dict[str, Any]] = []
    for index in targets:
        for match in routes[index].get("match") or [{}]:
            if match not in base:
                base.append(copy.deepcopy(match))
    destinations = routes[targets[0]].get("route") or []
    stable = destinations[_find(destinations, ctx.stable_service, ctx.namespace) or 0]
    destination = copy.deepcopy(stable.get("destination") or {})
    destination["host"] = _host_like(str(destination.get("host", "")), ctx.canary_service)
    destination.pop("subset", None)

    def render(header_route: HeaderRoute) -> dict[str, Any]:
        matches = []
        for match in base:
            full = copy.deepcopy(match)
            headers = dict(match.get("headers") or {})
            for m in header_route.matches:
                headers[m.header.lower()] = {m.kind.value: m.value}
            full["headers"] = headers
            matches.append(full)
        return {
            "name": f"rollwise-{header_route.name}",
            "match": matches,
            "route": [{"destination": copy.deepcopy(destination), "weight": 100}],
        }

    return render


def http_with_header_routes(
    vs: dict[str, Any], ctx: RouterContext, names: list[str] | None, routes: Sequence[HeaderRoute]
) -> tuple[list[dict[str, Any]], str | None]:
    """The VirtualService's ``http`` routes with the operator's header routes replaced by
    ``routes`` (first: Istio takes the first http route that matches), and the annotation's
    value."""
    http: list[dict[str, Any]] = copy.deepcopy((vs.get("spec") or {}).get("http") or [])
    return replaced(vs, http, routes, header_route_renderer(vs, ctx, names), first=True)


_MIRROR_KEYS = ("mirror", "mirrorPercentage")


def mirror_renderer(
    vs: dict[str, Any], ctx: RouterContext, names: list[str] | None
) -> mirrors.RenderMirror:
    """Renders a mirror as the ``mirror``/``mirrorPercentage`` of the routes carrying the
    split."""
    routes = (vs.get("spec") or {}).get("http") or []
    targets = target_routes(vs, ctx, names)
    destinations = routes[targets[0]].get("route") or []
    stable = destinations[_find(destinations, ctx.stable_service, ctx.namespace) or 0]
    destination = copy.deepcopy(stable.get("destination") or {})
    destination["host"] = _host_like(str(destination.get("host", "")), ctx.canary_service)
    destination.pop("subset", None)

    def render(mirror: MirrorRoute) -> dict[str, Any]:
        return {
            "mirror": copy.deepcopy(destination),
            "mirrorPercentage": {"value": mirror.percentage},
        }

    return render


def _mirror_of(entry: dict[str, Any]) -> dict[str, Any]:
    return {key: entry[key] for key in _MIRROR_KEYS if key in entry}


def http_with_mirror_routes(
    vs: dict[str, Any], ctx: RouterContext, names: list[str] | None, routes: Sequence[MirrorRoute]
) -> tuple[list[dict[str, Any]], str | None]:
    """The VirtualService's ``http`` routes with the operator's mirror replaced by ``routes``
    (at most one: ``RouteMisconfigured`` for more, or where a route carries a mirror people
    wrote), and the annotation's value."""
    where = f"VirtualService {ctx.namespace}/{(vs.get('metadata') or {}).get('name', '?')}"
    if len(routes) > 1:
        raise RouteMisconfigured(f"{where}: an http route carries a single mirror")
    http: list[dict[str, Any]] = copy.deepcopy((vs.get("spec") or {}).get("http") or [])
    render = mirror_renderer(vs, ctx, names)
    old = [render(m) for m in mirrors.recorded(vs)]
    new = [render(m) for m in routes]
    for index in target_routes(vs, ctx, names):
        entry = http[index]
        current = _mirror_of(entry)
        if current and current not in old and current not in new:
            if new:
                name = entry.get("name") or f"#{index}"
                raise RouteMisconfigured(
                    f"{where}: http route {name} already mirrors to "
                    f"{(current.get('mirror') or {}).get('host', '?')}; the operator does not "
                    "replace a mirror it did not add"
                )
            continue
        for key in _MIRROR_KEYS:
            entry.pop(key, None)
        for mirror in new:
            entry.update(copy.deepcopy(mirror))
    return http, mirrors.annotation_value(routes)


def mirrors_in_effect(
    vs: dict[str, Any], ctx: RouterContext, names: list[str] | None
) -> tuple[MirrorRoute, ...]:
    """The recorded mirrors every route carrying the split has, as rendered."""
    http = (vs.get("spec") or {}).get("http") or []
    render = mirror_renderer(vs, ctx, names)
    targets = target_routes(vs, ctx, names)
    return tuple(
        m for m in mirrors.recorded(vs) if all(_mirror_of(http[i]) == render(m) for i in targets)
    )


class IstioRouter:
    """Splits traffic through destination weights of one VirtualService."""

    scales_revisions = False

    def __init__(
        self, kube: KubeAPI, ctx: RouterContext, name: str, routes: list[str] | None = None
    ) -> None:
        self.kube = kube
        self.ctx = ctx
        self.name = name
        self.routes = list(routes) if routes else None

    @classmethod
    def from_spec(cls, spec: IstioRouting, ctx: RouterContext, kube: KubeAPI) -> IstioRouter:
        return cls(kube, ctx, spec.virtual_service.name, spec.virtual_service.routes)

    def _read(self) -> dict[str, Any]:
        try:
            return self.kube.get(VIRTUALSERVICES, self.ctx.namespace, self.name)
        except NotFound as exc:
            raise RouteNotFound(
                f"VirtualService {self.ctx.namespace}/{self.name} not found ({exc.message})"
            ) from exc

    def set_weight(self, canary_weight: Weights) -> None:
        as_split(canary_weight)
        vs = self._read()
        http = http_with_weight(vs, self.ctx, self.routes, canary_weight)
        if http == (vs.get("spec") or {}).get("http"):
            return
        patch = {
            "metadata": {"resourceVersion": vs["metadata"]["resourceVersion"]},
            "spec": {"http": http},
        }
        try:
            self.kube.merge_patch(VIRTUALSERVICES, self.ctx.namespace, self.name, patch)
        except NotFound as exc:
            raise RouteNotFound(
                f"VirtualService {self.ctx.namespace}/{self.name} vanished"
            ) from exc

    def get_weight(self) -> int | None:
        return vs_weight(self._read(), self.ctx, self.routes)

    def get_baseline_weight(self) -> int | None:
        if self.ctx.baseline_service is None:
            return 0
        return vs_baseline_weight(self._read(), self.ctx, self.routes)

    def verify(self, weight: Weights) -> bool:
        vs = self._read()
        split = as_split(weight)
        if vs_weight(vs, self.ctx, self.routes) != split.canary:
            return False
        if (
            isinstance(weight, TrafficSplit)
            and self.ctx.baseline_service is not None
            and vs_baseline_weight(vs, self.ctx, self.routes) != split.baseline
        ):
            return False
        conditions = (vs.get("status") or {}).get("conditions") or []
        return conditions_ok(vs, conditions, {"Reconciled"})

    def reset(self) -> None:
        self.set_weight(0)

    def set_header_routes(self, routes: Sequence[HeaderRoute]) -> None:
        vs = self._read()
        http, annotation = http_with_header_routes(vs, self.ctx, self.routes, routes)
        annotations = (vs.get("metadata") or {}).get("annotations") or {}
        if http == (vs.get("spec") or {}).get("http") and annotations.get(ANNOTATION) == annotation:
            return
        patch = {
            "metadata": {
                "resourceVersion": vs["metadata"]["resourceVersion"],
                "annotations": {ANNOTATION: annotation},
            },
            "spec": {"http": http},
        }
        try:
            self.kube.merge_patch(VIRTUALSERVICES, self.ctx.namespace, self.name, patch)
        except NotFound as exc:
            raise RouteNotFound(
                f"VirtualService {self.ctx.namespace}/{self.name} vanished"
            ) from exc

    def get_header_routes(self) -> tuple[HeaderRoute, ...] | None:
        vs = self._read()
        http = (vs.get("spec") or {}).get("http") or []
        return in_effect(vs, http, header_route_renderer(vs, self.ctx, self.routes))

    def set_mirror_routes(self, routes: Sequence[MirrorRoute]) -> None:
        vs = self._read()
        http, annotation = http_with_mirror_routes(vs, self.ctx, self.routes, routes)
        annotations = (vs.get("metadata") or {}).get("annotations") or {}
        if (
            http == (vs.get("spec") or {}).get("http")
            and annotations.get(mirrors.ANNOTATION) == annotation
        ):
            return
        patch = {
            "metadata": {
                "resourceVersion": vs["metadata"]["resourceVersion"],
                "annotations": {mirrors.ANNOTATION: annotation},
            },
            "spec": {"http": http},
        }
        try:
            self.kube.merge_patch(VIRTUALSERVICES, self.ctx.namespace, self.name, patch)
        except NotFound as exc:
            raise RouteNotFound(
                f"VirtualService {self.ctx.namespace}/{self.name} vanished"
            ) from exc

    def get_mirror_routes(self) -> tuple[MirrorRoute, ...] | None:
        return mirrors_in_effect(self._read(), self.ctx, self.routes)


__all__ = [
    "IstioRouter",
    "header_route_renderer",
    "host_matches",
    "http_with_header_routes",
    "http_with_mirror_routes",
    "http_with_weight",
    "mirror_renderer",
    "mirrors_in_effect",
    "route_baseline_weight",
    "route_weight",
    "target_routes",
    "vs_baseline_weight",
    "vs_weight",
]
