"""kopf handlers for ``rollouts.rollwise.dev/v1alpha1``: one reconcile loop per Rollout.

Design: a ``@kopf.daemon`` per Rollout runs
:func:`rollwise.runtime.rollout.reconcile.reconcile` (through
:func:`rollwise.runtime.loops.pass_loop`), then sleeps until the first of

* the pass's ``requeue_after`` (a pause ending, a measurement falling due, a retry), capped by
  ``resync_seconds`` so a missed watch event is never fatal;
* a *wake-up*: a watch event that changes what the Rollout asks for — its
  ``metadata.generation`` (spec), a manual-request annotation (``rollwise.dev/promote`` ...) or
  its deletion — or a revision Deployment's controller reporting progress (observed
  generation, replica counts in status);
* the daemon being stopped (Rollout deleted, operator exiting).

The watches kopf already runs (Rollouts, revision Deployments, and Services) also feed a
:class:`rollwise.adapters.kube.WatchCache`; each loop hands it to its passes as their read
cache (from the second pass on), so a pass reads what the watches delivered instead of asking
the API server again. ``WatchCache`` explains why that is as safe as a fresh read: bodies at a known
resourceVersion, never older than the operator's own writes, and the status patch conditional
on the version read. The event handlers are coroutines: they only update dicts, and a plain
function would cost a hop through kopf's thread pool for every watch event.

Why a daemon and not create/update/resume handlers plus a timer: there is one code path for
all causes (DESIGN §2: driven by state, never by "what changed"), passes of one Rollout never
overlap, and the wait follows the core's ``requeue_after`` exactly instead of a fixed timer
period. Why the wake-up filter: the operator's own status writes arrive as watch events too;
waking on them would make every write cause another pass (a busy loop). A Rollout that is
Healthy with nothing pending sleeps for ``resync_seconds`` and costs no CPU in between.

kopf itself stores nothing on the object but its finalizer (``rollwise.dev/finalizer``,
which daemons need so that deletion waits for the loop to stop): there are no change
handlers, so no progress or diff-base records, and the storages are set to annotations with
the ``rollwise.dev`` prefix anyway so that the structural schema could never prune them; kopf
never writes ``status.kopf``. Without change handlers kopf's per-event "essence" (a deep copy
of every watched body, compared with the last handled one) has no reader either:
:func:`rollwise.runtime.loops.diffbase_storage` then picks a storage that builds an empty
one, and the regular one as soon as any change handler is registered. All progress lives in
the Rollout's status: a restarted operator continues where the last one stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from rollwise import GROUP, VERSION
from rollwise import ROLLOUTS as PLURAL
from rollwise.adapters.kube import DEPLOYMENTS, ROLLOUTS, SERVICES
from rollwise.adapters.watch_cache import WatchCache
from rollwise.adapters.workloads import ROLLOUT_LABEL
from rollwise.core.observations import RequestKind
from rollwise.core.overrides import OVERRIDES
from rollwise.runtime.logging import rollout_logger
from rollwise.runtime.loops import CANCELLATION_TIMEOUT, PassSlots, pass_loop
from rollwise.runtime.metrics import OperatorMetrics
from rollwise.runtime.rollout.ports import Ports
from rollwise.runtime.rollout.reconcile import reconcile
from rollwise.runtime.skeleton import Memory

#: Annotations whose change wakes a Rollout's loop: the manual requests, and the override
#: records the admission webhook writes (``core.overrides``).
_REQUEST_ANNOTATIONS = (*(kind.annotation for kind in RequestKind), OVERRIDES)

Key = tuple[str, str]


def rollout_fingerprint(body: Mapping[str, Any]) -> Hashable:
    """What, when it changes, must wake a Rollout's loop: the spec (generation), the manual
    requests and override records, and deletion. Status-only writes keep it unchanged."""
    meta = body.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    return (
        meta.get("generation"),
        tuple(annotations.get(a) for a in _REQUEST_ANNOTATIONS),
        meta.get("deletionTimestamp") is not None,
    )


def deployment_fingerprint(body: Mapping[str, Any]) -> Hashable:
    """What of a revision Deployment the reconcile waits for: its controller's progress
    (observed generation, replica counts in status).

    Its spec is left out: the operator itself writes it (scaling), and waking on the watch
    event of its own write only made a pass observe a half-done step (and write status for
    it); any spec change is followed by the controller's status update, which wakes."""
    status = body.get("status") or {}
    return (
        status.get("observedGeneration"),
        status.get("updatedReplicas"),
        status.get("readyReplicas"),
        status.get("availableReplicas"),
    )


def watch_cache(max_age: float = 60.0) -> WatchCache:
    """The read cache the handlers' watches feed: Rollouts, revision Deployments (those with
    the ``rollwise.dev/rollout`` label, as the watch selects them) and Services. ``max_age``
    bounds how long an entry or a listing nothing confirmed is served (``WatchCache``)."""
    cache = WatchCache(max_age=max_age)
    cache.watch(ROLLOUTS)
    cache.watch(DEPLOYMENTS, required_label=ROLLOUT_LABEL)
    cache.watch(SERVICES)
    return cache


@dataclass
class Runtime:
    """The state the handlers share: the ports of a pass, the wake-up events, the metrics and
    the watch-fed read cache (None: every pass reads from the API server)."""

    ports: Ports
    metrics: OperatorMetrics | None = None
    resync_seconds: float = 300.0
    wakers: dict[Key, asyncio.Event] = field(default_factory=dict)
    fingerprints: dict[tuple[str, str, str], Hashable] = field(default_factory=dict)
    cache: WatchCache | None = field(default_factory=watch_cache)
    slots: PassSlots | None = None

    def waker(self, key: Key) -> asyncio.Event:
        event = self.wakers.get(key)
        if event is None:
            event = self.wakers[key] = asyncio.Event()
        return event

    def wake(self, key: Key) -> None:
        self.waker(key).set()

    def changed(self, kind: str, key: Key, fingerprint: Hashable) -> bool:
        """Records ``fingerprint``; True when it differs from the last one seen."""
        slot = (kind, *key)
        if self.fingerprints.get(slot) == fingerprint:
            return False
        self.fingerprints[slot] = fingerprint
        return True

    def forget(self, kind: str, key: Key) -> None:
        self.fingerprints.pop((kind, *key), None)
        if kind == "rollout":
            self.wakers.pop(key, None)
            if self.metrics is not None:
                self.metrics.forget(*key)


async def rollout_loop(
    runtime: Runtime, namespace: str, name: str, stopped: kopf.DaemonStopped
) -> None:
    """The reconcile loop of one Rollout (the body of its daemon)."""
    key = (namespace, name)
    wake = runtime.waker(key)
    memory = Memory()
    log = rollout_logger(namespace, name, None)
    log.debug("reconcile loop started")
    # The first pass reads from the API server: kopf adds its finalizer to a new Rollout right
    # after starting this loop, so the body its watch delivered is about to be outdated (a
    # status patch conditional on it would only conflict). Later passes read the watch cache.
    cache: WatchCache | None = None

    def read_the_cache() -> None:
        nonlocal cache
        cache = runtime.cache

    await pass_loop(
        lambda: reconcile(namespace, name, runtime.ports, memory, cache),
        memory,
        wake,
        stopped,
        resync_seconds=runtime.resync_seconds,
        log=log,
        after_pass=read_the_cache,
        slots=runtime.slots,
        namespace=namespace,
    )
    log.debug("reconcile loop stopped")


def register(registry: kopf.OperatorRegistry, runtime: Runtime) -> None:
    """Register the Rollout handlers (and the login) in ``registry``."""

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # In-cluster service account first, else the kubeconfig (KUBECONFIG or ~/.kube).
        info = kopf.login_with_service_account(**kwargs)
        return info if info is not None else kopf.login_with_kubeconfig(**kwargs)

    @kopf.daemon(
        GROUP,
        VERSION,
        PLURAL,
        id="reconcile",
        registry=registry,
        cancellation_timeout=CANCELLATION_TIMEOUT,
    )
    async def reconcile_rollout(
        *, name: str, namespace: str | None, stopped: kopf.DaemonStopped, **_: Any
    ) -> None:
        if namespace is None:
            return
        try:
            await rollout_loop(runtime, namespace, name, stopped)
        finally:
            deleted = kopf.DaemonStoppingReason.RESOURCE_DELETED
            if stopped.reason is not None and stopped.reason & deleted:
                runtime.forget("rollout", (namespace, name))

    @kopf.on.event(GROUP, VERSION, PLURAL, id="rollout-changed", registry=registry)
    async def rollout_changed(
        *, type: str, event: Mapping[str, Any], name: str, namespace: str | None, **_: Any
    ) -> None:
        if namespace is None:
            return
        key = (namespace, name)
        body = event.get("object") or {}
        if type == "DELETED":
            if runtime.cache is not None:
                runtime.cache.observe_deleted(ROLLOUTS, body)
            runtime.wake(key)
            runtime.forget("rollout", key)
            return
        if runtime.cache is not None:
            runtime.cache.observe(ROLLOUTS, body)
        if runtime.changed("rollout", key, rollout_fingerprint(body)):
            runtime.wake(key)

    @kopf.on.event(
        "apps",
        "v1",
        "deployments",
        id="revision-changed",
        labels={ROLLOUT_LABEL: kopf.PRESENT},
        registry=registry,
    )
    async def revision_changed(
        *, type: str, event: Mapping[str, Any], name: str, namespace: str | None, **_: Any
    ) -> None:
        body = event.get("object") or {}
        rollout = (body.get("metadata") or {}).get("labels", {}).get(ROLLOUT_LABEL)
        if not rollout or namespace is None:
            return
        if type == "DELETED":
            if runtime.cache is not None:
                runtime.cache.observe_deleted(DEPLOYMENTS, body)
            runtime.forget("deployment", (namespace, name))
            if (namespace, rollout) in runtime.wakers:
                runtime.wake((namespace, rollout))
            return
        if runtime.cache is not None:
            runtime.cache.observe(DEPLOYMENTS, body)
        changed = runtime.changed("deployment", (namespace, name), deployment_fingerprint(body))
        if changed and (namespace, rollout) in runtime.wakers:
            runtime.wake((namespace, rollout))

    if runtime.cache is not None:
        cache = runtime.cache

        @kopf.on.event("", "v1", "services", id="service-seen", registry=registry)
        async def service_seen(*, type: str, event: Mapping[str, Any], **_: Any) -> None:
            # Only the cache needs Services: a pass checks the ones its Rollout names.
            body = event.get("object") or {}
            if type == "DELETED":
                cache.observe_deleted(SERVICES, body)
            else:
                cache.observe(SERVICES, body)


__all__ = [
    "Runtime",
    "deployment_fingerprint",
    "register",
    "rollout_fingerprint",
    "rollout_loop",
    "watch_cache",
]
