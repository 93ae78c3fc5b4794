"""In-memory stand-ins for the ports of a reconcile pass: the Rollout in a dict, an ideal
cluster whose Deployments are ready as soon as they are scaled, the adapters' ``NopRouter`` and
``NopProvider``, and a clock the test moves."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from rollwise.adapters.errors import AdapterError, Conflict, NotFound
from rollwise.adapters.metrics.base import MetricProvider, NopProvider
from rollwise.adapters.traffic.base import NopRouter, RouterContext, TrafficRouter
from rollwise.adapters.watch_cache import WatchCache
from rollwise.adapters.workloads import RolloutRef
from rollwise.core.events import Event, LoggedEvent, event_name
from rollwise.core.modelrelease.reasons import ALL_RELEASE_REASONS
from rollwise.core.observations import RevisionState
from rollwise.core.reasons import EventType
from rollwise.core.rollout.reasons import ALL_REASONS
from rollwise.core.spec import TrafficRouting
from rollwise.runtime.metrics import OperatorMetrics
from rollwise.runtime.rollout.ports import Ports, RolloutObject
from rollwise.runtime.rollout.reconcile import reconcile
from rollwise.runtime.skeleton import Memory, PassResult

NAMESPACE, NAME = "shop", "demo"
START = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)

QUERY = 'error_ratio{revision="{{canaryRevision}}"}'


def rollout_body(image: str = "demo:1", **canary: Any) -> dict[str, Any]:
    strategy: dict[str, Any] = {
        "stableService": "demo-stable",
        "canaryService": "demo-canary",
        "trafficRouting": {"gatewayAPI": {"httpRoute": {"name": "demo"}}},
        "steps": [{"setWeight": 5}, {"setWeight": 100}],
        "scaleDownDelaySeconds": 0,
        "analysis": {
            "interval": "10s",
            "metrics": [
                {
                    "name": "error-ratio",
                    "count": 1,
                    "successCondition": "result < 0.05",
                    "provider": {"prometheus": {"query": QUERY}},
                }
            ],
        },
    }
    strategy.update(canary)
    return {
        "apiVersion": "rollwise.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {
            "name": NAME,
            "namespace": NAMESPACE,
            "uid": "uid-1",
            "generation": 1,
            "resourceVersion": "1",
            "annotations": {},
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "demo"}},
            "template": {
                "metadata": {"labels": {"app": "demo"}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
            "strategy": {"canary": strategy},
        },
    }


_REASONS = {reason.name: reason for reason in (*ALL_REASONS, *ALL_RELEASE_REASONS)}


def as_event(entry: LoggedEvent) -> Event:
    """The core event a logged entry stands for."""
    return Event(EventType(entry.type), _REASONS[entry.reason], entry.message)


def _merge(target: dict[str, Any], patch: Mapping[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


@dataclass
class FakeCluster:
    """The Rollout object and the events posted about it."""

    body: dict[str, Any] | None
    patches: list[dict[str, Any]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    conflict_next_patch: bool = False
    #: An error the next status patch raises (then patches work again).
    fail_next_patch: AdapterError | None = None
    reads: int = 0
    #: Names of the logged events posted (a second post of one is refused, as AlreadyExists).
    event_names: set[str] = field(default_factory=set)

    def read_rollout(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.reads += 1
        return copy.deepcopy(self.body)

    def patch_status(
        self, namespace: str, name: str, patch: dict[str, Any], resource_version: str | None
    ) -> dict[str, Any]:
        if self.body is None:
            raise NotFound("gone", status=404)
        if self.fail_next_patch is not None:
            error, self.fail_next_patch = self.fail_next_patch, None
            raise error
        current = self.body["metadata"]["resourceVersion"]
        if self.conflict_next_patch or (resource_version and resource_version != current):
            self.conflict_next_patch = False
            raise Conflict("the object has been modified", status=409)
        self.patches.append(copy.deepcopy(patch))
        status = self.body.setdefault("status", {})
        _merge(status, patch)
        self.bump()
        return copy.deepcopy(self.body)

    def post_event(self, rollout: RolloutObject, event: Event) -> None:
        self.events.append(event)

    def post_logged(self, rollout: RolloutObject, entry: LoggedEvent) -> bool:
        name = event_name(rollout.name, rollout.uid, entry.seq)
        if name in self.event_names:
            return False
        self.event_names.add(name)
        self.events.append(as_event(entry))
        return True

    def bump(self) -> None:
        assert self.body is not None
        meta = self.body["metadata"]
        meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)

    def edit_image(self, image: str) -> None:
        assert self.body is not None
        self.body["spec"]["template"]["spec"]["containers"][0]["image"] = image
        self.body["metadata"]["generation"] += 1
        self.bump()

    @property
    def reasons(self) -> list[str]:
        return [e.reason.name for e in self.events]


@dataclass
class FakeWorkloads:
    """An ideal cluster: a revision is ready the moment it is created or scaled."""

    services: set[str] = field(default_factory=lambda: {"demo-stable", "demo-canary"})
    deployments: dict[str, RevisionState] = field(default_factory=dict)
    selectors: dict[str, str | None] = field(default_factory=dict)
    fail_with: AdapterError | None = None
    writes: int = 0

    def revisions(self, rollout: RolloutRef) -> dict[str, RevisionState]:
        return dict(self.deployments)

    def service_exists(self, namespace: str, name: str) -> bool:
        return name in self.services

    def _ready(self, revision: str, replicas: int) -> RevisionState:
        state = RevisionState(replicas, replicas, replicas, replicas)
        if self.deployments.get(revision) != state:
            self.writes += 1
        self.deployments[revision] = state
        return state

    def ensure_revision(
        self, rollout: RolloutRef, revision: str, replicas: int, template: Mapping[str, Any]
    ) -> RevisionState:
        if self.fail_with is not None:
            raise self.fail_with
        return self._ready(revision, replicas)

    def ensure_baseline(
        self, rollout: RolloutRef, revision: str, stable_revision: str, replicas: int
    ) -> RevisionState:
        if self.fail_with is not None:
            raise self.fail_with
        if revision not in self.deployments and stable_revision not in self.deployments:
            raise NotFound(f"Deployment {stable_revision} not found", status=404)
        return self._ready(revision, replicas)

    def scale_revision(self, rollout: RolloutRef, revision: str, replicas: int) -> RevisionState:
        if revision not in self.deployments:
            raise NotFound(f"Deployment {revision} not found", status=404)
        return self._ready(revision, replicas)

    def delete_revision(self, rollout: RolloutRef, revision: str) -> bool:
        if self.deployments.pop(revision, None) is None:
            return False
        self.writes += 1
        return True

    def point_service(self, namespace: str, name: str, revision: str | None) -> bool:
        if name not in self.services:
            raise NotFound(f"Service {name} not found", status=404)
        if self.selectors.get(name) == revision:
            return False
        self.selectors[name] = revision
        self.writes += 1
        return True


class Clock:
    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class World:
    """A Rollout, its fake cluster and the ports over them."""

    cluster: FakeCluster
    workloads: FakeWorkloads
    router: NopRouter
    providers: dict[str, NopProvider]
    clock: Clock
    metrics: OperatorMetrics
    ports: Ports
    memory: Memory = field(default_factory=Memory)
    contexts: list[RouterContext] = field(default_factory=list)

    def run(self) -> PassResult:
        return asyncio.run(reconcile(NAMESPACE, NAME, self.ports, self.memory))

    def run_cached(self, cache: WatchCache) -> PassResult:
        """A pass with ``cache`` as its read cache (as each Rollout's loop sets it)."""
        return asyncio.run(reconcile(NAMESPACE, NAME, self.ports, self.memory, cache))

    def settle(self, until: Callable[[PassResult], bool], passes: int = 12) -> PassResult:
        """Run passes (the clock following each pass's requeue) until ``until`` holds."""
        for _ in range(passes):
            result = self.run()
            if until(result):
                return result
            self.clock.advance(result.requeue_after if result.requeue_after is not None else 1)
        raise AssertionError(f"not settled after {passes} passes: {self.status}")

    @property
    def status(self) -> dict[str, Any]:
        assert self.cluster.body is not None
        return dict(self.cluster.body.get("status") or {})

    def provider(self, address: str = "http://prometheus:9090") -> NopProvider:
        return self.providers.setdefault(address, NopProvider(default=0.0))


def world(
    body: dict[str, Any] | None = None, *, default_prometheus: str | None = "http://prometheus:9090"
) -> World:
    cluster = FakeCluster(body if body is not None else rollout_body())
    workloads = FakeWorkloads()
    router = NopRouter()
    providers: dict[str, NopProvider] = {}
    clock = Clock()
    metrics = OperatorMetrics()
    contexts: list[RouterContext] = []

    def routers(routing: TrafficRouting | None, ctx: RouterContext) -> TrafficRouter:
        contexts.append(ctx)
        return router

    def provider_for(address: str) -> MetricProvider:
        return providers.setdefault(address, NopProvider(default=0.0))

    ports = Ports(
        cluster=cluster,
        workloads=workloads,
        router_for=routers,
        provider_for=provider_for,
        default_prometheus=default_prometheus,
        metrics=metrics,
        clock=clock,
    )
    return World(cluster, workloads, router, providers, clock, metrics, ports, contexts=contexts)
