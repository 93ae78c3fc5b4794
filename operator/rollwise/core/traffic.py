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

With a baseline (``strategy.canary.baseline``) the traffic splits three ways
(:func:`weights`): the canary gets ``w``, the baseline (the stable template in fresh pods) the
same ``w`` while the stable keeps the rest, so the canary is compared with pods of equal age and
load. Above 50% there is not enough traffic for two equal shares: the baseline gets what is
left (``100 - w``) and the stable none; at 100% the baseline gets nothing. With a router the
baseline runs as many pods as the canary; with replica ratio its pods come out of the stable's
count (and, with too few replicas to keep one stable pod, there is no baseline pod).

Header routes (:class:`HeaderRoute`) send the requests that carry given headers to the canary
whatever the weight; the routers render them (``rollwise.core.rollout.segments`` decides which
are wanted).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


@dataclass(frozen=True)
class TrafficSplit:
    """Percent of the traffic each revision receives; the three always sum to 100.

    The value a router is handed: it writes these weights as they are (no arithmetic of its
    own). ``baseline`` is 0 when the Rollout runs no baseline."""

    canary: int
    stable: int
    baseline: int = 0

    def __post_init__(self) -> None:
        parts = (self.canary, self.stable, self.baseline)
        if any(not 0 <= part <= 100 for part in parts) or sum(parts) != 100:
            raise ValueError(
                f"a traffic split needs weights within 0-100 summing to 100, got canary "
                f"{self.canary}, stable {self.stable}, baseline {self.baseline}"
            )


def weights(canary_weight: int, *, baseline: bool) -> TrafficSplit:
    """The split for a canary weight (0-100), with or without a baseline (see the module)."""
    canary = min(max(canary_weight, 0), 100)
    share = min(canary, 100 - canary) if baseline else 0
    return TrafficSplit(canary=canary, stable=100 - canary - share, baseline=share)


@dataclass(frozen=True)
class Split:
    """Replicas of the canary, stable and baseline revisions for one weight."""

    canary: int
    stable: int
    baseline: int = 0


def split(replicas: int, weight: int, *, router: bool, baseline: bool = False) -> Split:
    """The replica split for ``weight`` (0-100) of ``replicas``."""
    weight = min(max(weight, 0), 100)
    share = math.ceil(replicas * weight / 100)
    with_baseline = weights(weight, baseline=baseline).baseline > 0
    if router:
        canary = max(1, share) if replicas > 0 else 0
        return Split(canary=canary, stable=replicas, baseline=canary if with_baseline else 0)
    if weight >= 100:
        return Split(canary=replicas, stable=0)
    extra = min(share, max(replicas - share - 1, 0)) if with_baseline else 0
    stable = replicas - share - extra
    if stable == 0 and replicas > 0:
        stable = 1
    return Split(canary=share, stable=stable, baseline=extra)


def replica_ratio_weight(canary_pods: int, stable_pods: int, baseline_pods: int = 0) -> int:
    """The share of traffic (percent) one Service over the revisions gives the canary."""
    total = canary_pods + stable_pods + baseline_pods
    if total <= 0:
        return 0
    return round(100 * canary_pods / total)


def expected_weight(replicas: int, weight: int, *, router: bool, baseline: bool = False) -> int:
    """The weight the router should report once ``weight`` is applied."""
    if router:
        return weight
    parts = split(replicas, weight, router=False, baseline=baseline)
    return replica_ratio_weight(parts.canary, parts.stable, parts.baseline)


def baseline_replica_weight(replicas: int, weight: int) -> int:
    """The baseline's share of the pods (percent) under replica ratio at ``weight``."""
    parts = split(replicas, weight, router=False, baseline=True)
    total = parts.canary + parts.stable + parts.baseline
    return round(100 * parts.baseline / total) if total > 0 else 0


# ------------------------------------------------------------------ header-routed segments


class MatchKind(StrEnum):
    """How a header's value is compared (Gateway API ``type``, Istio's ``StringMatch`` key)."""

    EXACT = "exact"
    PREFIX = "prefix"
    REGEX = "regex"


@dataclass(frozen=True)
class HeaderMatch:
    """One request header condition: ``header`` (case-insensitive name) compared with
    ``value`` by ``kind``."""

    header: str
    kind: MatchKind
    value: str

    def text(self) -> str:
        return f"{self.header} {self.kind.value} {self.value!r}"


@dataclass(frozen=True)
class HeaderRoute:
    """A segment the canary receives whatever the weight: requests carrying every header of
    ``matches`` (all must hold) go to the canary. ``name`` identifies it within the Rollout."""

    name: str
    matches: tuple[HeaderMatch, ...]

    def text(self) -> str:
        return f"{self.name} ({' and '.join(m.text() for m in self.matches)})"

    def to_wire(self) -> dict[str, Any]:
        """The JSON form the routers keep on their routing object and status shows."""
        return {
            "name": self.name,
            "match": [
                {"headerName": m.header, "headerValue": {m.kind.value: m.value}}
                for m in self.matches
            ],
        }

    @classmethod
    def from_wire(cls, raw: Any) -> HeaderRoute:
        """The route ``to_wire`` wrote (``ValueError`` for anything else)."""
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            raise ValueError(f"not a header route: {raw!r}")
        matches: list[HeaderMatch] = []
        for entry in raw.get("match") or []:
            value = entry.get("headerValue") if isinstance(entry, dict) else None
            if not isinstance(value, dict) or len(value) != 1:
                raise ValueError(f"not a header match: {entry!r}")
            ((kind, text),) = value.items()
            matches.append(HeaderMatch(str(entry["headerName"]), MatchKind(kind), str(text)))
        return cls(raw["name"], tuple(matches))


def cookie_pattern(name: str, value: str) -> str:
    """A regular expression matching a ``Cookie`` header that carries ``name=value`` among its
    cookies (RE2 and Python ``re`` alike: no look-around)."""
    return f"^(.*;\\s*)?{re.escape(name)}={re.escape(value)}(;.*)?$"


# ------------------------------------------------------------------ mirroring (shadow traffic)


@dataclass(frozen=True)
class MirrorRoute:
    """Shadow traffic: ``percentage`` of the requests the routed entries receive are copied to
    the canary, whose responses are discarded (clients get only the answer of the backend the
    weights chose). ``name`` identifies it within the Rollout."""

    name: str
    percentage: int

    def text(self) -> str:
        return f"{self.name} ({self.percentage}% of requests copied to the canary)"

    def to_wire(self) -> dict[str, Any]:
        """The JSON form the routers keep on their routing object."""
        return {"name": self.name, "percentage": self.percentage}

    @classmethod
    def from_wire(cls, raw: Any) -> MirrorRoute:
        """The route ``to_wire`` wrote (``ValueError`` for anything else)."""
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            raise ValueError(f"not a mirror route: {raw!r}")
        percentage = raw.get("percentage")
        if not isinstance(percentage, int) or isinstance(percentage, bool):
            raise ValueError(f"not a mirror percentage: {raw!r}")
        if not 1 <= percentage <= 100:
            raise ValueError(f"mirror percentage out of 1-100: {raw!r}")
        return cls(raw["name"], percentage)
