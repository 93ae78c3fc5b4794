"""What a ModelRelease pass talks to: the ports (the adapters' narrow interfaces, the clock,
the metrics, the cluster policy), the release as a pass reads it, how notifications describe
it and how messages name an action.

The production ports are built in :mod:`rollwise.runtime.cluster`; the unit tests build them
over in-memory fakes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from rollwise import MODELRELEASES
from rollwise.adapters.registry.base import AliasStore
from rollwise.adapters.releases import ReleaseRef
from rollwise.adapters.watch_cache import WatchCache
from rollwise.core.events import Event, LoggedEvent
from rollwise.core.modelrelease.actions import (
    EnsureChildRollout,
    FlipAlias,
    ReleaseAction,
    RemoveCanaryTrafficPercent,
    RevertChildRollout,
    SetCanaryTrafficPercent,
    SetPredictorStorageUri,
)
from rollwise.core.modelrelease.observations import (
    Approval,
    GateResult,
    InferenceServiceState,
)
from rollwise.core.modelrelease.policy import ClusterPolicy
from rollwise.core.modelrelease.status import ModelReleaseStatus
from rollwise.core.notification_bodies import Subject
from rollwise.core.spec_release import ModelReleaseSpec
from rollwise.runtime.skeleton import CommonPorts, ObjectHeader


class ReleaseClusterPort(Protocol):
    """The ModelRelease object itself and its events."""

    def read_release(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    def patch_release_status(
        self, namespace: str, name: str, patch: dict[str, Any], resource_version: str | None
    ) -> dict[str, Any]: ...

    def post_release_event(self, release: ReleaseRef, event: Event) -> None: ...

    def post_release_logged(self, release: ReleaseRef, entry: LoggedEvent) -> bool: ...


class ReleaseObjectsPort(Protocol):
    """``adapters.releases.ReleaseObjects``."""

    def list_releases(self, namespace: str) -> list[dict[str, Any]]: ...

    def read_child(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    def ensure_child(
        self,
        release: ReleaseRef,
        name: str,
        spec: Mapping[str, Any],
        *,
        annotations: Mapping[str, str] | None = None,
    ) -> bool: ...

    def read_manifest(self, namespace: str, release: str) -> dict[str, Any] | None: ...

    def write_manifest(
        self, release: ReleaseRef, name: str, content: Mapping[str, Any]
    ) -> bool: ...

    def revoked(
        self, namespace: str, model: str, version: str, scope: str = ""
    ) -> dict[str, Any] | None: ...

    def record_revocation(
        self, namespace: str, record: Mapping[str, Any], scope: str = ""
    ) -> bool: ...


class ServingPort(Protocol):
    """``adapters.serving.InferenceServices``."""

    def read(self, namespace: str, name: str) -> InferenceServiceState | None: ...

    def set_storage_uri(
        self, namespace: str, name: str, uri: str, canary_percent: int | None
    ) -> bool: ...

    def set_canary_percent(self, namespace: str, name: str, percent: int) -> bool: ...

    def remove_canary_percent(self, namespace: str, name: str) -> bool: ...


class GatesPort(Protocol):
    """``adapters.gates.GateEvaluator``."""

    def evaluate(
        self,
        namespace: str,
        spec: ModelReleaseSpec,
        now: datetime,
        required: tuple[str, ...] = (),
    ) -> tuple[GateResult, ...]: ...

    def evaluate_policies(
        self,
        namespace: str,
        name: str,
        spec: ModelReleaseSpec,
        *,
        status: ModelReleaseStatus | None,
        gates: Sequence[GateResult],
        approvals: Sequence[Approval],
        now: datetime,
    ) -> tuple[GateResult, ...]: ...


AliasStoreFactory = Callable[[ModelReleaseSpec, str], AliasStore]


@dataclass
class ReleasePorts(CommonPorts):
    """Everything a ModelRelease pass does I/O through (beside the ports every kind has: the
    providers, the clock, the operator's metrics, ... :class:`CommonPorts`; its ``templates``
    serve a KServe release's own canary), and the cluster policy."""

    cluster: ReleaseClusterPort
    objects: ReleaseObjectsPort
    serving: ServingPort
    alias_store_for: AliasStoreFactory
    gates: GatesPort
    #: The operator's cluster policy (its defaults know no registry and no model owner).
    policy: ClusterPolicy = field(default_factory=ClusterPolicy)
    #: Ports for one pass (a read view over the API, through the loop's watch cache when it
    #: hands one: ``adapters.kube.PassView``); None: use these ports as they are.
    for_pass: Callable[[WatchCache | None], ReleasePorts] | None = None


@dataclass(frozen=True)
class ReleaseObject(ObjectHeader):
    """The fields of a ModelRelease a pass works with (wire form)."""

    @property
    def ref(self) -> ReleaseRef:
        return ReleaseRef(namespace=self.namespace, name=self.name, uid=self.uid)


def release_subject(obj: ReleaseObject, status: ModelReleaseStatus, ticket: str) -> Subject:
    """The ModelRelease as notifications describe it, with the status of this pass."""
    return Subject(
        kind="ModelRelease",
        plural=MODELRELEASES,
        namespace=obj.namespace,
        name=obj.name,
        uid=obj.uid,
        labels=obj.labels,
        details={
            "model": str(obj.spec.get("model") or ""),
            "version": str(obj.spec.get("version") or ""),
            "stage": status.stage.value if status.stage else "",
            "changeTicket": ticket,
        },
    )


def describe_release_action(action: ReleaseAction) -> str:
    """An action as messages name it."""
    if isinstance(action, EnsureChildRollout):
        return f"update child Rollout {action.name}"
    if isinstance(action, RevertChildRollout):
        what = "the previous template" if action.template is not None else "zero replicas"
        return f"revert child Rollout {action.name} to {what}"
    if isinstance(action, SetPredictorStorageUri):
        return f"set InferenceService {action.name} storageUri to {action.uri}"
    if isinstance(action, SetCanaryTrafficPercent):
        return f"set InferenceService {action.name} canaryTrafficPercent to {action.percent}"
    if isinstance(action, RemoveCanaryTrafficPercent):
        return f"remove InferenceService {action.name} canaryTrafficPercent"
    if isinstance(action, FlipAlias):
        target = action.version if action.version is not None else "(unset)"
        return f"point alias {action.alias} of model {action.model} at version {target}"
    return f"write release manifest {action.name}"
