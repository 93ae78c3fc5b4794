"""What a Rollout pass talks to: the ports (the adapters' narrow interfaces, the clock, the
metrics and the settings a pass needs), the Rollout as a pass reads it, and how messages
name an action.

The production ports are built in :mod:`rollwise.runtime.cluster`; the unit tests build them
over in-memory fakes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from rollwise.adapters.traffic.base import RouterContext, TrafficRouter
from rollwise.adapters.watch_cache import WatchCache
from rollwise.adapters.workloads import RolloutRef
from rollwise.core.events import Event, LoggedEvent
from rollwise.core.observations import (
    RevisionState,
)
from rollwise.core.rollout.actions import (
    Action,
    DeleteRevision,
    EnsureBaseline,
    EnsureRevision,
    PointBaselineService,
    PointCanaryService,
    PointStableService,
    ScaleRevision,
    SetHeaderRoutes,
    SetMirrorRoutes,
)
from rollwise.core.spec import TrafficRouting
from rollwise.runtime.skeleton import CommonPorts, ObjectHeader


class WorkloadsPort(Protocol):
    """The part of :class:`rollwise.adapters.workloads.Workloads` a pass uses."""

    def revisions(self, rollout: RolloutRef) -> dict[str, RevisionState]: ...

    def service_exists(self, namespace: str, name: str) -> bool: ...

    def ensure_revision(
        self, rollout: RolloutRef, revision: str, replicas: int, template: Mapping[str, Any]
    ) -> RevisionState: ...

    def ensure_baseline(
        self, rollout: RolloutRef, revision: str, stable_revision: str, replicas: int
    ) -> RevisionState: ...

    def scale_revision(
        self, rollout: RolloutRef, revision: str, replicas: int
    ) -> RevisionState: ...

    def delete_revision(self, rollout: RolloutRef, revision: str) -> bool: ...

    def point_service(self, namespace: str, name: str, revision: str | None) -> bool: ...


class ClusterPort(Protocol):
    """The Rollout object itself and its events."""

    def read_rollout(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Rollout as the API server has it now; None when it is gone."""
        ...

    def patch_status(
        self, namespace: str, name: str, patch: dict[str, Any], resource_version: str | None
    ) -> dict[str, Any]:
        """Merge-patch ``/status`` (``Conflict`` when ``resource_version`` is stale)."""
        ...

    def post_event(self, rollout: RolloutObject, event: Event) -> None:
        """Post one core/v1 Event about the Rollout (a report of this process)."""
        ...

    def post_logged(self, rollout: RolloutObject, entry: LoggedEvent) -> bool:
        """Post the Event of a logged transition under its deterministic name; False when it
        exists already."""
        ...


class GateHooksPort(Protocol):
    """What a pass calls gating webhooks through
    (:class:`rollwise.adapters.gate_hooks.GateHooks`)."""

    def refusal(self, url: str) -> str | None:
        """Why the operator's host policy refuses ``url`` (None: it may be called)."""
        ...

    def call(
        self, name: str, url: str, body: dict[str, Any], timeout: float
    ) -> tuple[int | None, str]:
        """POST ``body`` to ``url`` within ``timeout`` seconds: the HTTP status it answered
        (None: no answer) and what went wrong; never raises."""
        ...


RouterFactory = Callable[[TrafficRouting | None, RouterContext], TrafficRouter]


@dataclass
class Ports(CommonPorts):
    """Everything a Rollout pass does I/O through (beside the ports every kind has: the
    providers, the clock, the operator's metrics, ... :class:`CommonPorts`)."""

    cluster: ClusterPort
    workloads: WorkloadsPort
    router_for: RouterFactory
    #: Where gating webhooks are called (None: a spec naming one is invalid).
    gate_hooks: GateHooksPort | None = None
    #: Ports for one pass (``reconcile`` calls it first): the production ports read each object
    #: at most once per pass (``adapters.kube.PassView``). None: use these ports as they are.
    for_pass: Callable[[WatchCache | None], Ports] | None = None


@dataclass(frozen=True)
class RolloutObject(ObjectHeader):
    """The fields of a Rollout a pass works with (wire form)."""

    @property
    def ref(self) -> RolloutRef:
        return RolloutRef(
            namespace=self.namespace,
            name=self.name,
            uid=self.uid,
            selector=dict(self.spec.get("selector") or {}),
        )


def describe(action: Action) -> str:
    """An action as messages name it."""
    if isinstance(action, EnsureRevision):
        return f"ensure revision {action.revision} at {action.replicas} replica(s)"
    if isinstance(action, ScaleRevision):
        return f"scale revision {action.revision} to {action.replicas} replica(s)"
    if isinstance(action, DeleteRevision):
        return f"delete revision {action.revision}"
    if isinstance(action, PointStableService):
        return f"point Service {action.service} at revision {action.revision}"
    if isinstance(action, PointCanaryService | PointBaselineService):
        return f"point Service {action.service} at revision {action.revision}"
    if isinstance(action, EnsureBaseline):
        return (
            f"ensure baseline {action.revision} (template of {action.stable_revision}) at "
            f"{action.replicas} replica(s)"
        )
    if isinstance(action, SetHeaderRoutes):
        names = ", ".join(route.name for route in action.routes) or "none"
        return f"set header routes to the canary ({names})"
    if isinstance(action, SetMirrorRoutes):
        names = ", ".join(route.text() for route in action.routes) or "none"
        return f"set mirrors to the canary ({names})"
    if action.baseline_weight:
        return (
            f"set canary weight {action.weight}% and baseline weight {action.baseline_weight}% "
            f"(canary {action.canary_revision})"
        )
    return f"set canary weight {action.weight}% (canary {action.canary_revision})"
