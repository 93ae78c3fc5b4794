"""What one Rollout pass decides: the actions, in order, and the decision that carries them.

Each action is idempotent for the status persisted before it runs (DESIGN §2): re-asserting
the actions of a recorded status never moves traffic or selectors back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rollwise.core.events import Event
from rollwise.core.rollout.status import (
    RolloutStatus,
)
from rollwise.core.traffic import HeaderRoute, MirrorRoute, TrafficSplit

#: How often to look again while waiting on the cluster (pods, router) without a watch event.
POLL_SECONDS = 5.0


@dataclass(frozen=True)
class EnsureRevision:
    """Create the revision's Deployment from ``template`` if missing, and scale it."""

    revision: str
    replicas: int
    template: Mapping[str, Any] = field(compare=True, hash=False)


@dataclass(frozen=True)
class EnsureBaseline:
    """Create the baseline's Deployment if missing (the pod template of ``stable_revision``'s
    Deployment, under the baseline's own revision id), and scale it."""

    revision: str
    stable_revision: str
    replicas: int


@dataclass(frozen=True)
class ScaleRevision:
    """Scale an existing revision's Deployment (never creates one)."""

    revision: str
    replicas: int


@dataclass(frozen=True)
class DeleteRevision:
    """Delete a revision's Deployment the rollout no longer references."""

    revision: str


@dataclass(frozen=True)
class SetWeight:
    """Send ``weight`` percent to the canary revision, ``baseline_weight`` to the baseline and
    the rest to stable (router adapters; the replica-ratio router has nothing to write: the
    scale actions carry the weight)."""

    canary_revision: str
    stable_revision: str
    weight: int
    baseline_weight: int = 0

    def split(self) -> TrafficSplit:
        """The weights the router writes (all to stable when there is no canary)."""
        if self.canary_revision == self.stable_revision:
            return TrafficSplit(canary=0, stable=100)
        stable = 100 - self.weight - self.baseline_weight
        return TrafficSplit(canary=self.weight, stable=stable, baseline=self.baseline_weight)


@dataclass(frozen=True)
class SetHeaderRoutes:
    """Make ``routes`` the header routes the operator keeps on the router, each sending its
    matching requests to the canary Service: routes of other names the operator added before
    are removed, routes of people are left alone (an empty tuple removes all of the
    operator's)."""

    routes: tuple[HeaderRoute, ...]


@dataclass(frozen=True)
class SetMirrorRoutes:
    """Make ``routes`` the mirrors the operator keeps on the router, each copying its share of
    the routed requests to the canary Service (an empty tuple removes the operator's; mirrors
    people wrote are left alone)."""

    routes: tuple[MirrorRoute, ...]


@dataclass(frozen=True)
class PointStableService:
    """Point the stable Service's selector at ``revision``'s pods."""

    service: str
    revision: str


@dataclass(frozen=True)
class PointCanaryService:
    """Point the canary Service's selector at ``revision``'s pods."""

    service: str
    revision: str


@dataclass(frozen=True)
class PointBaselineService:
    """Point the baseline Service's selector at ``revision``'s pods."""

    service: str
    revision: str


Action = (
    EnsureRevision
    | EnsureBaseline
    | ScaleRevision
    | DeleteRevision
    | SetWeight
    | SetHeaderRoutes
    | SetMirrorRoutes
    | PointStableService
    | PointCanaryService
    | PointBaselineService
)


@dataclass(frozen=True)
class Decision:
    """The outcome of one pass."""

    status: RolloutStatus
    actions: tuple[Action, ...]
    events: tuple[Event, ...]
    requeue_after: float | None
