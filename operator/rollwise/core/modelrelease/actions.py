"""What one ModelRelease pass decides: the actions, in order, the decision that carries them,
and the release's events (the change ticket appended to every message).

Each action is idempotent for the status persisted before it runs (DESIGN §2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rollwise.core.events import Event
from rollwise.core.modelrelease.status import (
    ModelReleaseStatus,
)
from rollwise.core.reasons import MAX_MESSAGE, Reason


@dataclass(frozen=True)
class EnsureChildRollout:
    """Create or update the child Rollout ``name`` with ``spec`` (owned by the release)."""

    name: str
    spec: Mapping[str, Any] = field(compare=True, hash=False)


@dataclass(frozen=True)
class RevertChildRollout:
    """Take traffic off the release's revision: set the child Rollout's template back to
    ``template`` and request full promotion (``rollwise.dev/promote-full``) so the previous
    version serves everything at once; ``template`` None (nothing served before) scales the
    child Rollout to zero replicas."""

    name: str
    template: Mapping[str, Any] | None = field(compare=True, hash=False)


@dataclass(frozen=True)
class SetPredictorStorageUri:
    """Set the InferenceService predictor's ``storageUri`` (KServe starts a new revision)."""

    name: str
    uri: str


@dataclass(frozen=True)
class SetCanaryTrafficPercent:
    """Set the predictor's ``canaryTrafficPercent``; applied before a storage URI change of
    the same pass (or in the same patch) so the new revision never gets 100% by default."""

    name: str
    percent: int


@dataclass(frozen=True)
class RemoveCanaryTrafficPercent:
    """Remove ``canaryTrafficPercent``: KServe rolls the latest revision out to 100%."""

    name: str


@dataclass(frozen=True)
class FlipAlias:
    """Point ``model``/``alias`` at ``version`` (``uri``, ``digest``) if it still points at
    ``expected_current`` (optimistic concurrency); ``version`` None removes the alias."""

    model: str
    alias: str
    version: str | None
    uri: str | None
    digest: str | None
    expected_current: str | None


@dataclass(frozen=True)
class WriteReleaseManifest:
    """Write ConfigMap ``name`` with ``release_manifest.json`` = ``content``; the runtime
    refuses to overwrite an existing manifest."""

    name: str
    content: Mapping[str, Any] = field(compare=True, hash=False)


ReleaseAction = (
    EnsureChildRollout
    | RevertChildRollout
    | SetPredictorStorageUri
    | SetCanaryTrafficPercent
    | RemoveCanaryTrafficPercent
    | FlipAlias
    | WriteReleaseManifest
)


@dataclass(frozen=True)
class ReleaseDecision:
    status: ModelReleaseStatus
    actions: tuple[ReleaseAction, ...]
    events: tuple[Event, ...]
    requeue_after: float | None


def release_event(reason: Reason, ticket: str, **fields: object) -> Event:
    """An event of a release: ``reason``'s message with the change ticket appended."""
    suffix = f" [change {ticket}]"
    body = reason.format(**fields)
    if len(body) + len(suffix) > MAX_MESSAGE:
        body = body[: MAX_MESSAGE - len(suffix) - 3] + "..."
    return Event(reason.type, reason, body + suffix)
