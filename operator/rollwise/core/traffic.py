"""Replica and weight arithmetic of a canary, shared by the decision core and the routers.

With a traffic router (Gateway API, Istio) the weight is exact: the stable revision keeps its
full replica count and the canary gets ``ceil(replicas * weight / 100)`` replicas, at least one
while a canary exists, so the router never sends a share to an empty backend and the canary is
warm before it receives traffic.

Without a router (replica-ratio: one Service over both revisions) the replica counts *are*
the weight: the canary gets ``ceil(replicas * weight / 100)``, the stable the rest, and below
100% the stable keeps at least one pod. The achieved share is therefore coarse with few
replicas (1 replica at 5% runs one pod of each, i.e. 50%); the router reports the share it
achieves (:func:`replica_ratio_weight`) and the core verifies against the same formula.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Split:
    """Replicas of the canary and stable revisions for one weight."""

    canary: int
    stable: int


def split(replicas: int, weight: int, *, router: bool) -> Split:
    """The replica split for ``weight`` (0-100) of ``replicas``."""
    weight = min(max(weight, 0), 100)
    share = math.ceil(replicas * weight / 100)
    if router:
        return Split(canary=max(1, share) if replicas > 0 else 0, stable=replicas)
    if weight >= 100:
        return Split(canary=replicas, stable=0)
    stable = replicas - share
    if stable == 0 and replicas > 0:
        stable = 1
    return Split(canary=share, stable=stable)


def replica_ratio_weight(canary_pods: int, stable_pods: int) -> int:
    """The share of traffic (percent) one Service over both revisions gives the canary."""
    total = canary_pods + stable_pods
    if total <= 0:
        return 0
    return round(100 * canary_pods / total)


def expected_weight(replicas: int, weight: int, *, router: bool) -> int:
    """The weight the router should report once ``weight`` is applied."""
    if router:
        return weight
    parts = split(replicas, weight, router=False)
    return replica_ratio_weight(parts.canary, parts.stable)
