"""Replica-ratio router: no mesh, no gateway; weights approximated by replica counts.

One Service selects the pods of both revisions (its selector has no ``rollwise.dev/revision``),
so each ready pod takes an equal share and the canary's weight *is* its share of the ready
pods. The arithmetic is the core's (:mod:`rollwise.core.traffic`): ``set_weight(w)`` scales the
canary Deployment to ``split(replicas, w).canary`` and the stable one to the rest (scale-ups
before scale-downs, so capacity never dips), and ``get_weight`` reports
``replica_ratio_weight`` of the ready pods (``min(spec.replicas, status.readyReplicas)``: a pod
being scaled away is no longer an endpoint) — the coarse share actually achieved, which the
core compares with ``expected_weight``.

Within a reconcile the core's scale actions already carry the weight, so the runtime does not
call ``set_weight`` for this router (``scales_revisions`` is True); it reads ``get_weight``.
The "route" of this router is the stable Deployment: without it, ``RouteNotFound``.

With a baseline (``RouterContext.baseline_deployment``) the Service selects its pods too (they
carry the Rollout's labels): the replicas split three ways (``split(..., baseline=True)``), and
the canary's share counts the baseline's ready pods in the total.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rollwise.adapters.errors import NotFound, RouteMisconfigured, RouteNotFound
from rollwise.adapters.kube import DEPLOYMENTS, KubeAPI
from rollwise.adapters.traffic.base import RouterContext, Weights, as_split
from rollwise.core.traffic import (
    HeaderRoute,
    MirrorRoute,
    expected_weight,
    replica_ratio_weight,
    split,
)


def ready_pods(deployment: dict[str, Any] | None) -> int:
    """Pods of a Deployment that receive traffic: ready, and not being scaled away."""
    if deployment is None:
        return 0
    desired = int((deployment.get("spec") or {}).get("replicas", 1))
    ready = int((deployment.get("status") or {}).get("readyReplicas") or 0)
    return max(0, min(desired, ready))


class ReplicaRatioRouter:
    """Carries the weight by the replica counts of the two revision Deployments."""

    scales_revisions = True

    def __init__(self, kube: KubeAPI, ctx: RouterContext) -> None:
        self.kube = kube
        self.ctx = ctx

    @classmethod
    def from_spec(cls, spec: None, ctx: RouterContext, kube: KubeAPI) -> ReplicaRatioRouter:
        return cls(kube, ctx)

    @property
    def _canary_name(self) -> str | None:
        canary = self.ctx.canary_deployment
        return canary if canary and canary != self.ctx.stable_deployment else None

    def _stable(self) -> dict[str, Any]:
        name = self.ctx.stable_deployment
        found = self.kube.get_or_none(DEPLOYMENTS, self.ctx.namespace, name) if name else None
        if found is None:
            raise RouteNotFound(
                f"stable Deployment {self.ctx.namespace}/{name or '<unknown>'} not found: "
                "the replica ratio has nothing to split"
            )
        return found

    def _baseline(self) -> dict[str, Any] | None:
        name = self.ctx.baseline_deployment
        return self.kube.get_or_none(DEPLOYMENTS, self.ctx.namespace, name) if name else None

    def _canary(self, *, required: bool) -> dict[str, Any] | None:
        name = self._canary_name
        if name is None:
            return None
        found = self.kube.get_or_none(DEPLOYMENTS, self.ctx.namespace, name)
        if found is None and required:
            raise RouteNotFound(f"canary Deployment {self.ctx.namespace}/{name} not found")
        return found

    def _scale(self, deployment: dict[str, Any], replicas: int) -> None:
        if (deployment.get("spec") or {}).get("replicas") == replicas:
            return
        name = deployment["metadata"]["name"]
        try:
            self.kube.merge_patch(
                DEPLOYMENTS, self.ctx.namespace, name, {"spec": {"replicas": replicas}}
            )
        except NotFound as exc:
            raise RouteNotFound(f"Deployment {self.ctx.namespace}/{name} vanished") from exc

    def set_weight(self, canary_weight: Weights) -> None:
        weight = as_split(canary_weight).canary
        stable = self._stable()
        canary = self._canary(required=weight > 0)
        if canary is None:
            self._scale(stable, self.ctx.replicas)
            return
        baseline = self._baseline()
        parts = split(self.ctx.replicas, weight, router=False, baseline=baseline is not None)
        moves = [(canary, parts.canary), (stable, parts.stable)]
        if baseline is not None:
            moves.append((baseline, parts.baseline))
        current = {id(d): int((d.get("spec") or {}).get("replicas", 1)) for d, _ in moves}
        moves.sort(key=lambda move: move[1] <= current[id(move[0])])
        for deployment, replicas in moves:
            self._scale(deployment, replicas)

    def get_weight(self) -> int | None:
        stable = self._stable()
        canary = self._canary(required=False)
        baseline = ready_pods(self._baseline()) if self._canary_name is not None else 0
        return replica_ratio_weight(ready_pods(canary), ready_pods(stable), baseline)

    def get_baseline_weight(self) -> int | None:
        if self._canary_name is None:
            return 0
        stable = ready_pods(self._stable())
        canary = ready_pods(self._canary(required=False))
        baseline = ready_pods(self._baseline())
        return replica_ratio_weight(baseline, stable, canary)

    def verify(self, weight: Weights) -> bool:
        expected = expected_weight(
            self.ctx.replicas,
            as_split(weight).canary,
            router=False,
            baseline=self.ctx.baseline_deployment is not None,
        )
        if self._canary_name is None:
            expected = 0
        return self.get_weight() == expected

    def reset(self) -> None:
        self.set_weight(0)

    def set_header_routes(self, routes: Sequence[HeaderRoute]) -> None:
        """Removing routes is a no-op (there are none); adding one is refused: one Service
        over both revisions cannot send a request to a revision by its headers."""
        if routes:
            raise RouteMisconfigured(
                "the replica-ratio router cannot route by header: setHeaderRoute needs "
                "trafficRouting (gatewayAPI or istio)"
            )

    def get_header_routes(self) -> tuple[HeaderRoute, ...] | None:
        return ()

    def set_mirror_routes(self, routes: Sequence[MirrorRoute]) -> None:
        """Removing mirrors is a no-op (there are none); adding one is refused: one Service
        over both revisions cannot copy a request to the canary."""
        if routes:
            raise RouteMisconfigured(
                "the replica-ratio router cannot mirror requests: setMirrorRoute needs "
                "trafficRouting (gatewayAPI or istio)"
            )

    def get_mirror_routes(self) -> tuple[MirrorRoute, ...] | None:
        return ()


__all__ = ["ReplicaRatioRouter", "ready_pods"]
