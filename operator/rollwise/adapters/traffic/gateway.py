"""Gateway API ``HTTPRoute`` router (``gateway.networking.k8s.io/v1``).

Which rules carry the split: the rule at ``ruleIndex`` when the Rollout names one, else every
rule with a ``backendRef`` to the stable Service. In each, the stable Service's backendRef gets
weight ``100 - w`` and the canary Service's ``w``. A rule without a canary backendRef gets one,
copied from the stable backendRef (same port) right after it, the first time a non-zero weight
is set; the operator never removes it afterwards (weight 0 sends it nothing). With a baseline
(``RouterContext.baseline_service``) the split has three parts: the baseline Service's
backendRef (added after the canary's the same way) gets the baseline's weight and the stable's
is what is left; the canary weight read back is the canary's share of all three.

Writes are one merge patch of ``spec.rules`` carrying the ``metadata.resourceVersion`` that was
read: a concurrent edit makes it fail with ``Conflict`` (retryable) instead of overwriting the
other writer's change. Nothing is written when the rules already carry the weight.

``verify`` also looks at ``status.parents[].conditions``: an ``Accepted`` or ``ResolvedRefs``
condition that is ``False`` (for the current generation) means the gateway refused the route.
A route without status (no gateway controller, as in the lab) is not a failure.

Header routes (``set_header_routes``): each is one rule appended to ``spec.rules``, with the
target rules' matches plus the route's headers, sending everything it matches to the canary
Service; the operator's rules are recorded in the route's annotation (``headers``).

Mirrors (``set_mirror_routes``): a ``RequestMirror`` filter on each rule carrying the split,
its ``backendRef`` the canary Service (the stable backendRef's port) and ``percent`` the share
of requests copied (Gateway API's percentage-based mirroring); the gateway discards the
mirror's responses. Filters people wrote stay; the operator's are recorded in the route's
annotation (``mirrors``).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import Any

from rollwise.adapters.errors import NotFound, RouteMisconfigured, RouteNotFound
from rollwise.adapters.kube import HTTPROUTES, KubeAPI
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
from rollwise.core.spec import GatewayAPIRouting
from rollwise.core.traffic import HeaderMatch, HeaderRoute, MatchKind, MirrorRoute, TrafficSplit

#: A backendRef without ``weight`` has weight 1 (Gateway API default).
DEFAULT_WEIGHT = 1


def _is_service_ref(ref: dict[str, Any], service: str, namespace: str) -> bool:
    return (
        ref.get("name") == service
        and ref.get("kind", "Service") == "Service"
        and ref.get("group", "") == ""
        and ref.get("namespace", namespace) == namespace
    )


def _find(refs: list[dict[str, Any]], service: str, namespace: str) -> int | None:
    for index, ref in enumerate(refs):
        if _is_service_ref(ref, service, namespace):
            return index
    return None


def target_rules(route: dict[str, Any], ctx: RouterContext, rule_index: int | None) -> list[int]:
    """Indexes of the rules that carry the split (``RouteMisconfigured`` when none)."""
    rules = (route.get("spec") or {}).get("rules") or []
    name = (route.get("metadata") or {}).get("name", "?")
    if rule_index is not None:
        if rule_index >= len(rules):
            raise RouteMisconfigured(
                f"HTTPRoute {ctx.namespace}/{name} has {len(rules)} rule(s); "
                f"ruleIndex {rule_index} does not exist"
            )
        refs = rules[rule_index].get("backendRefs") or []
        if _find(refs, ctx.stable_service, ctx.namespace) is None:
            raise RouteMisconfigured(
                f"rule {rule_index} of HTTPRoute {ctx.namespace}/{name} has no backendRef "
                f"to the stable Service {ctx.stable_service}"
            )
        return [rule_index]
    found = [
        index
        for index, rule in enumerate(rules)
        if _find(rule.get("backendRefs") or [], ctx.stable_service, ctx.namespace) is not None
    ]
    if not found:
        raise RouteMisconfigured(
            f"no rule of HTTPRoute {ctx.namespace}/{name} has a backendRef to the stable "
            f"Service {ctx.stable_service}"
        )
    return found


def _ref_weight(refs: list[dict[str, Any]], service: str | None, namespace: str) -> float:
    index = None if service is None else _find(refs, service, namespace)
    return 0 if index is None else float(refs[index].get("weight", DEFAULT_WEIGHT))


def rule_weight(rule: dict[str, Any], ctx: RouterContext) -> int | None:
    refs = rule.get("backendRefs") or []
    if _find(refs, ctx.stable_service, ctx.namespace) is None:
        return None
    return canary_share(
        _ref_weight(refs, ctx.stable_service, ctx.namespace),
        _ref_weight(refs, ctx.canary_service, ctx.namespace),
        _ref_weight(refs, ctx.baseline_service, ctx.namespace),
    )


def rule_baseline_weight(rule: dict[str, Any], ctx: RouterContext) -> int | None:
    """The baseline Service's percentage of the rule's stable/canary/baseline weights."""
    refs = rule.get("backendRefs") or []
    if _find(refs, ctx.stable_service, ctx.namespace) is None:
        return None
    return canary_share(
        _ref_weight(refs, ctx.stable_service, ctx.namespace),
        _ref_weight(refs, ctx.baseline_service, ctx.namespace),
        _ref_weight(refs, ctx.canary_service, ctx.namespace),
    )


def route_weight(route: dict[str, Any], ctx: RouterContext, rule_index: int | None) -> int | None:
    """The canary weight the route's target rules agree on (None if they differ)."""
    rules = (route.get("spec") or {}).get("rules") or []
    return agreed(rule_weight(rules[i], ctx) for i in target_rules(route, ctx, rule_index))


def route_baseline_weight(
    route: dict[str, Any], ctx: RouterContext, rule_index: int | None
) -> int | None:
    """The baseline weight the route's target rules agree on (None if they differ)."""
    rules = (route.get("spec") or {}).get("rules") or []
    indexes = target_rules(route, ctx, rule_index)
    return agreed(rule_baseline_weight(rules[i], ctx) for i in indexes)


def _ensure_ref(refs: list[dict[str, Any]], stable: int, after: int, service: str) -> None:
    """Adds a backendRef to ``service`` after index ``after``, copied from the stable one."""
    added = {k: v for k, v in refs[stable].items() if k not in ("name", "weight")}
    refs.insert(after + 1, {"name": service, **added})


def rules_with_weight(
    route: dict[str, Any], ctx: RouterContext, rule_index: int | None, weight: Weights
) -> list[dict[str, Any]]:
    """The route's rules with ``weight`` applied (pure; the input is not modified)."""
    split = as_split(weight)
    rules: list[dict[str, Any]] = copy.deepcopy((route.get("spec") or {}).get("rules") or [])
    for index in target_rules(route, ctx, rule_index):
        refs: list[dict[str, Any]] = rules[index].setdefault("backendRefs", [])
        place_split(refs, split, ctx, _find, _ensure_ref)
    return rules


_GATEWAY_MATCH_TYPES = {MatchKind.EXACT: "Exact", MatchKind.REGEX: "RegularExpression"}


def _header_match(match: HeaderMatch) -> dict[str, Any]:
    """A Gateway API header match (a prefix is a regular expression: HTTPRoute has no prefix
    type for headers)."""
    if match.kind is MatchKind.PREFIX:
        return {
            "type": "RegularExpression",
            "name": match.header,
            "value": f"^{re.escape(match.value)}.*",
        }
    return {"type": _GATEWAY_MATCH_TYPES[match.kind], "name": match.header, "value": match.value}


def header_rule_renderer(
    route: dict[str, Any], ctx: RouterContext, rule_index: int | None
) -> Render:
    """Renders a header route as an HTTPRoute rule: the target rules' matches (path, method,
    query), each with the route's headers added, to the canary Service alone. Written in the
    form the Gateway API CRD defaults to (path ``PathPrefix /``, header type, ``weight: 1``),
    so what is read back equals what was written."""
    rules = (route.get("spec") or {}).get("rules") or []
    targets = target_rules(route, ctx, rule_index)
    base: list[dict[str, Any]] = []
    for index in targets:
        for match in rules[index].get("matches") or [{}]:
            full = {"path": {"type": "PathPrefix", "value": "/"}, **copy.deepcopy(match)}
            if full not in base:
                base.append(full)
    refs = rules[targets[0]].get("backendRefs") or []
    stable = refs[_find(refs, ctx.stable_service, ctx.namespace) or 0]
    canary_ref = {
        **{k: v for k, v in stable.items() if k not in ("name", "weight")},
        "name": ctx.canary_service,
        "weight": 1,
    }

    def render(header_route: HeaderRoute) -> dict[str, Any]:
        matches = []
        for match in base:
            full = copy.deepcopy(match)
            headers = [*(match.get("headers") or [])]
            headers.extend(_header_match(m) for m in header_route.matches)
            full["headers"] = headers
            matches.append(full)
        return {"matches": matches, "backendRefs": [copy.deepcopy(canary_ref)]}

    return render


def rules_with_header_routes(
    route: dict[str, Any], ctx: RouterContext, rule_index: int | None, routes: Sequence[HeaderRoute]
) -> tuple[list[dict[str, Any]], str | None]:
    """The route's rules with the operator's header routes replaced by ``routes`` (appended:
    a rule with more header matches takes precedence in Gateway API whatever its place, and
    appending keeps ``ruleIndex`` pointing at the same rule), and the annotation's value."""
    rules: list[dict[str, Any]] = copy.deepcopy((route.get("spec") or {}).get("rules") or [])
    render = header_rule_renderer(route, ctx, rule_index)
    return replaced(route, rules, routes, render, first=False)


def mirror_filter_renderer(
    route: dict[str, Any], ctx: RouterContext, rule_index: int | None
) -> mirrors.RenderMirror:
    """Renders a mirror as the ``RequestMirror`` filter of the rules carrying the split."""
    rules = (route.get("spec") or {}).get("rules") or []
    targets = target_rules(route, ctx, rule_index)
    refs = rules[targets[0]].get("backendRefs") or []
    stable = refs[_find(refs, ctx.stable_service, ctx.namespace) or 0]
    backend = {k: v for k, v in stable.items() if k not in ("name", "weight", "filters")}
    backend["name"] = ctx.canary_service

    def render(mirror: MirrorRoute) -> dict[str, Any]:
        return {
            "type": "RequestMirror",
            "requestMirror": {"backendRef": copy.deepcopy(backend), "percent": mirror.percentage},
        }

    return render


def rules_with_mirror_routes(
    route: dict[str, Any],
    ctx: RouterContext,
    rule_index: int | None,
    routes: Sequence[MirrorRoute],
) -> tuple[list[dict[str, Any]], str | None]:
    """The route's rules with the operator's mirror filters replaced by ``routes`` (a filter
    already in place keeps its place; other filters are untouched), and the annotation's
    value."""
    rules: list[dict[str, Any]] = copy.deepcopy((route.get("spec") or {}).get("rules") or [])
    render = mirror_filter_renderer(route, ctx, rule_index)
    old = [render(m) for m in mirrors.recorded(route)]
    new = [render(m) for m in routes]
    for index in target_rules(route, ctx, rule_index):
        filters = [f for f in rules[index].get("filters") or [] if f not in old or f in new]
        filters.extend(f for f in new if f not in filters)
        if filters:
            rules[index]["filters"] = filters
        else:
            rules[index].pop("filters", None)
    return rules, mirrors.annotation_value(routes)


def mirrors_in_effect(
    route: dict[str, Any], ctx: RouterContext, rule_index: int | None
) -> tuple[MirrorRoute, ...]:
    """The recorded mirrors whose filter every rule carrying the split has."""
    rules = (route.get("spec") or {}).get("rules") or []
    render = mirror_filter_renderer(route, ctx, rule_index)
    targets = target_rules(route, ctx, rule_index)
    return tuple(
        m
        for m in mirrors.recorded(route)
        if all(render(m) in (rules[i].get("filters") or []) for i in targets)
    )


class GatewayAPIRouter:
    """Splits traffic through the backendRef weights of one HTTPRoute."""

    scales_revisions = False

    def __init__(
        self, kube: KubeAPI, ctx: RouterContext, name: str, rule_index: int | None = None
    ) -> None:
        self.kube = kube
        self.ctx = ctx
        self.name = name
        self.rule_index = rule_index

    @classmethod
    def from_spec(
        cls, spec: GatewayAPIRouting, ctx: RouterContext, kube: KubeAPI
    ) -> GatewayAPIRouter:
        return cls(kube, ctx, spec.http_route.name, spec.http_route.rule_index)

    def _read(self) -> dict[str, Any]:
        try:
            return self.kube.get(HTTPROUTES, self.ctx.namespace, self.name)
        except NotFound as exc:
            raise RouteNotFound(
                f"HTTPRoute {self.ctx.namespace}/{self.name} not found ({exc.message})"
            ) from exc

    def set_weight(self, canary_weight: Weights) -> None:
        as_split(canary_weight)
        route = self._read()
        rules = rules_with_weight(route, self.ctx, self.rule_index, canary_weight)
        if rules == (route.get("spec") or {}).get("rules"):
            return
        patch = {
            "metadata": {"resourceVersion": route["metadata"]["resourceVersion"]},
            "spec": {"rules": rules},
        }
        try:
            self.kube.merge_patch(HTTPROUTES, self.ctx.namespace, self.name, patch)
        except NotFound as exc:
            raise RouteNotFound(f"HTTPRoute {self.ctx.namespace}/{self.name} vanished") from exc

    def get_weight(self) -> int | None:
        return route_weight(self._read(), self.ctx, self.rule_index)

    def get_baseline_weight(self) -> int | None:
        if self.ctx.baseline_service is None:
            return 0
        return route_baseline_weight(self._read(), self.ctx, self.rule_index)

    def verify(self, weight: Weights) -> bool:
        route = self._read()
        split = as_split(weight)
        if route_weight(route, self.ctx, self.rule_index) != split.canary:
            return False
        if (
            isinstance(weight, TrafficSplit)
            and self.ctx.baseline_service is not None
            and route_baseline_weight(route, self.ctx, self.rule_index) != split.baseline
        ):
            return False
        parents = (route.get("status") or {}).get("parents") or []
        return all(
            conditions_ok(route, parent.get("conditions") or [], {"Accepted", "ResolvedRefs"})
            for parent in parents
        )

    def reset(self) -> None:
        self.set_weight(0)

    def set_header_routes(self, routes: Sequence[HeaderRoute]) -> None:
        route = self._read()
        rules, annotation = rules_with_header_routes(route, self.ctx, self.rule_index, routes)
        annotations = (route.get("metadata") or {}).get("annotations") or {}
        if (
            rules == (route.get("spec") or {}).get("rules")
            and annotations.get(ANNOTATION) == annotation
        ):
            return
        patch = {
            "metadata": {
                "resourceVersion": route["metadata"]["resourceVersion"],
                "annotations": {ANNOTATION: annotation},
            },
            "spec": {"rules": rules},
        }
        try:
            self.kube.merge_patch(HTTPROUTES, self.ctx.namespace, self.name, patch)
        except NotFound as exc:
            raise RouteNotFound(f"HTTPRoute {self.ctx.namespace}/{self.name} vanished") from exc

    def get_header_routes(self) -> tuple[HeaderRoute, ...] | None:
        route = self._read()
        rules = (route.get("spec") or {}).get("rules") or []
        return in_effect(route, rules, header_rule_renderer(route, self.ctx, self.rule_index))

    def set_mirror_routes(self, routes: Sequence[MirrorRoute]) -> None:
        route = self._read()
        rules, annotation = rules_with_mirror_routes(route, self.ctx, self.rule_index, routes)
        annotations = (route.get("metadata") or {}).get("annotations") or {}
        if (
            rules == (route.get("spec") or {}).get("rules")
            and annotations.get(mirrors.ANNOTATION) == annotation
        ):
            return
        patch = {
            "metadata": {
                "resourceVersion": route["metadata"]["resourceVersion"],
                "annotations": {mirrors.ANNOTATION: annotation},
            },
            "spec": {"rules": rules},
        }
        try:
            self.kube.merge_patch(HTTPROUTES, self.ctx.namespace, self.name, patch)
        except NotFound as exc:
            raise RouteNotFound(f"HTTPRoute {self.ctx.namespace}/{self.name} vanished") from exc

    def get_mirror_routes(self) -> tuple[MirrorRoute, ...] | None:
        return mirrors_in_effect(self._read(), self.ctx, self.rule_index)


__all__ = [
    "GatewayAPIRouter",
    "header_rule_renderer",
    "mirror_filter_renderer",
    "mirrors_in_effect",
    "route_baseline_weight",
    "route_weight",
    "rules_with_header_routes",
    "rules_with_mirror_routes",
    "rules_with_weight",
    "target_rules",
]
