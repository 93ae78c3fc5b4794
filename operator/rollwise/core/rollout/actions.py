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

#: How often to look again while waiting on the cluster (pods, router) without a watch event.
POLL_SECONDS = 5.0


@dataclass(frozen=True)
class EnsureRevision:
    """Create the revision's Deployment from ``template`` if missing, and scale it."""

    revision: str
    replicas: int
    template: Mapping[str, Any] = field(compare=True, hash=False)


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
    """Send ``weight`` percent to the canary revision, the rest to stable (router adapters;
    the replica-ratio router has nothing to write: the scale actions carry the weight)."""

    canary_revision: str
    stable_revision: str
    weight: int


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


Action = (
    EnsureRevision
    | ScaleRevision
    | DeleteRevision
    | SetWeight
    | PointStableService
    | PointCanaryService
)


@dataclass(frozen=True)
class Decision:
    """The outcome of one pass."""

    status: RolloutStatus
    actions: tuple[Action, ...]
    events: tuple[Event, ...]
    requeue_after: float | None
