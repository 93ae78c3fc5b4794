"""Gateway API ``HTTPRoute`` router (``gateway.networking.k8s.io/v1``).

Which rules carry the split: the rule at ``ruleIndex`` when the Rollout names one, else every
rule with a ``backendRef`` to the stable Service. In each, the stable Service's backendRef gets
weight ``100 - w`` and the canary Service's ``w``. A rule without a canary backendRef gets one,
copied from the stable backendRef (same port) right after it, the first time a non-zero weight
is set; the operator never removes it afterwards (weight 0 sends it nothing).

Writes are one merge patch of ``spec.rules`` carrying the ``metadata.resourceVersion`` that was
read: a concurrent edit makes it fail with ``Conflict`` (retryable) instead of overwriting the
other writer's change. Nothing is written when the rules already carry the weight.

``verify`` also looks at ``status.parents[].conditions``: an ``Accepted`` or ``ResolvedRefs``
condition that is ``False`` (for the current generation) means the gateway refused the route.
A route without status (no gateway controller, as in the lab) is not a failure.
"""

from __future__ import annotations

import copy
from typing import Any

from rollwise.adapters.errors import NotFound, RouteMisconfigured, RouteNotFound
from rollwise.adapters.kube import HTTPROUTES, KubeAPI
from rollwise.adapters.traffic.base import (
    RouterContext,
    agreed,
    canary_share,
    check_weight,
    conditions_ok,
)
from rollwise.core.spec import GatewayAPIRouting

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


def rule_weight(rule: dict[str, Any], ctx: RouterContext) -> int | None:
    refs = rule.get("backendRefs") or []
    stable = _find(refs, ctx.stable_service, ctx.namespace)
    canary = _find(refs, ctx.canary_service, ctx.namespace)
    if stable is None:
        return None
    stable_weight = refs[stable].get("weight", DEFAULT_WEIGHT)
    canary_weight = 0 if canary is None else refs[canary].get("weight", DEFAULT_WEIGHT)
    return canary_share(stable_weight, canary_weight)


def route_weight(route: dict[str, Any], ctx: RouterContext, rule_index: int | None) -> int | None:
    """The canary weight the route's target rules agree on (None if they differ)."""
    rules = (route.get("spec") or {}).get("rules") or []
    return agreed(rule_weight(rules[i], ctx) for i in target_rules(route, ctx, rule_index))


def rules_with_weight(
    route: dict[str, Any], ctx: RouterContext, rule_index: int | None, weight: int
) -> list[dict[str, Any]]:
    """The route's rules with ``weight`` applied (pure; the input is not modified)."""
    rules: list[dict[str, Any]] = copy.deepcopy((route.get("spec") or {}).get("rules") or [])
    for index in target_rules(route, ctx, rule_index):
        refs: list[dict[str, Any]] = rules[index].setdefault("backendRefs", [])
        stable = _find(refs, ctx.stable_service, ctx.namespace)
        assert stable is not None  # target_rules only returns rules with a stable backendRef
        canary = _find(refs, ctx.canary_service, ctx.namespace)
        if canary is None:
            if weight == 0:
                continue
            added = {k: v for k, v in refs[stable].items() if k not in ("name", "weight")}
            refs.insert(stable + 1, {"name": ctx.canary_service, **added})
            canary = stable + 1
        refs[stable]["weight"] = 100 - weight
        refs[canary]["weight"] = weight
    return rules


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

    def set_weight(self, canary_weight: int) -> None:
        check_weight(canary_weight)
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

    def verify(self, weight: int) -> bool:
        route = self._read()
        if route_weight(route, self.ctx, self.rule_index) != weight:
            return False
        parents = (route.get("status") or {}).get("parents") or []
        return all(
            conditions_ok(route, parent.get("conditions") or [], {"Accepted", "ResolvedRefs"})
            for parent in parents
        )

    def reset(self) -> None:
        self.set_weight(0)


__all__ = ["GatewayAPIRouter", "route_weight", "rules_with_weight", "target_rules"]
