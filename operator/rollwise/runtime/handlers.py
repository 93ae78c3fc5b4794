"""kopf handlers for ``rollouts.rollwise.dev/v1alpha1``: one reconcile loop per Rollout.

Design: a ``@kopf.daemon`` per Rollout runs :func:`rollwise.runtime.reconcile.reconcile`, then
sleeps until the first of

* the pass's ``requeue_after`` (a pause ending, a measurement falling due, a retry), capped by
  ``resync_seconds`` so a missed watch event is never fatal;
* a *wake-up*: a watch event that changes what the Rollout asks for — its
  ``metadata.generation`` (spec), a manual-request annotation (``rollwise.dev/promote`` ...) or
  its deletion — or a revision Deployment's controller reporting progress (observed
  generation, replica counts in status);
* the daemon being stopped (Rollout deleted, operator exiting).

The watches kopf already runs (Rollouts, revision Deployments, and Services) also feed a
:class:`rollwise.adapters.kube.WatchCache`; each loop sets it as its passes' read cache
(``PASS_CACHE``), so a pass reads what the watches delivered instead of asking the API server
again. ``WatchCache`` explains why that is as safe as a fresh read: bodies at a known
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
:func:`diffbase_storage` then picks a storage that builds an empty one, and the regular one
as soon as any change handler is registered. All progress lives in the Rollout's status: a
restarted operator continues where the last one stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import kopf

from rollwise.adapters.kube import DEPLOYMENTS, PASS_CACHE, ROLLOUTS, SERVICES, WatchCache
from rollwise.adapters.workloads import ROLLOUT_LABEL
from rollwise.core.observations import RequestKind
from rollwise.core.overrides import OVERRIDES
from rollwise.runtime.cluster import GROUP, PLURAL, VERSION
from rollwise.runtime.logging import rollout_logger
from rollwise.runtime.metrics import OperatorMetrics
from rollwise.runtime.passes import NamespaceShares
from rollwise.runtime.reconcile import Ports, reconcile
from rollwise.runtime.skeleton import Memory

#: Seconds a stopping daemon gets to finish its pass before kopf cancels it.
CANCELLATION_TIMEOUT = 10.0

#: Prefix of kopf's own annotations and of the finalizer.
KOPF_PREFIX = "rollwise.dev"

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


async def sleep_until_woken(wake: asyncio.Event, stopped: kopf.DaemonStopped, delay: float) -> None:
    """Returns after ``delay`` seconds, when ``wake`` is set, or when the daemon stops."""

    async def stopping() -> None:
        await stopped.wait()

    waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stopping())]
    try:
        await asyncio.wait(waiters, timeout=max(delay, 0.0), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        for waiter in waiters:
            with contextlib.suppress(asyncio.CancelledError):
                await waiter


class PassSlots:
    """At most ``limit`` reconcile passes in flight at once, Rollouts and ModelReleases alike,
    and at most ``per_namespace`` of them from any one namespace; the others wait, in order
    of arrival, before they read anything.

    Without a bound, a burst (a thousand Rollouts woken in the same second) puts every pass in
    the worker pool's queue at once, and each of a pass's worker-thread hops waits behind all
    the others' again: a pass then acts on what it observed long before, and holds its copies
    of the bodies all that time. With the bound a pass waits once, then runs through.

    The namespace bound is a tenant's budget: passes that wait on a slow or hostile endpoint
    named by one namespace's specs hold at most ``per_namespace`` of the ``limit`` slots, so
    the other namespaces' passes keep running. A pass takes its namespace's slot first, so
    that its waiting never holds a shared one."""

    def __init__(self, limit: int, per_namespace: int | None = None) -> None:
        if limit < 1:
            raise ValueError(f"at least one pass must be able to run, not {limit}")
        if per_namespace is not None and per_namespace < 1:
            raise ValueError(f"a namespace must be able to run a pass, not {per_namespace}")
        self.limit = limit
        self.per_namespace = per_namespace
        self._semaphore: asyncio.Semaphore | None = None  # made on the loop that uses it
        self._namespaces = NamespaceShares(per_namespace)

    @contextlib.asynccontextmanager
    async def slot(self, namespace: str | None = None) -> AsyncIterator[None]:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.limit)
        async with self._namespaces.share(namespace), self._semaphore:
            yield


class _Failures(Protocol):
    failures: int


class _Outcome(Protocol):
    @property
    def gone(self) -> bool: ...

    @property
    def requeue_after(self) -> float | None: ...


async def pass_loop(
    run_pass: Callable[[], Awaitable[_Outcome]],
    memory: _Failures,
    wake: asyncio.Event,
    stopped: kopf.DaemonStopped,
    *,
    resync_seconds: float,
    log: Any,
    after_pass: Callable[[], object] | None = None,
    slots: PassSlots | None = None,
    namespace: str | None = None,
) -> None:
    """Runs ``run_pass`` until the object is gone or the daemon stops, sleeping between passes
    for the pass's ``requeue_after`` (capped by ``resync_seconds``) or until woken; each pass
    in one of ``slots`` (``namespace``'s share of them) when given. A pass that raises is a
    bug, not a cluster failure (those come back in its result): the loop stays alive and looks
    again after a growing delay rather than dropping the object."""
    while not stopped:
        try:
            if slots is None:
                wake.clear()
                result = await run_pass()
            else:
                async with slots.slot(namespace):
                    # Cleared once the pass may start: a wake-up while it waited for its slot
                    # is covered by what the pass is about to read.
                    wake.clear()
                    result = await run_pass()
        except Exception:
            log.exception("reconcile pass crashed")
            memory.failures += 1
            await sleep_until_woken(wake, stopped, min(2.0**memory.failures, 300.0))
            continue
        finally:
            if after_pass is not None:
                after_pass()
        if result.gone:
            break
        delay = result.requeue_after
        delay = resync_seconds if delay is None else min(delay, resync_seconds)
        await sleep_until_woken(wake, stopped, delay)


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
    # This loop is its own task: the setting stays in its context (and the worker threads'
    # that ``asyncio.to_thread`` starts from it).
    PASS_CACHE.set(None)
    await pass_loop(
        lambda: reconcile(namespace, name, runtime.ports, memory),
        memory,
        wake,
        stopped,
        resync_seconds=runtime.resync_seconds,
        log=log,
        after_pass=lambda: PASS_CACHE.set(runtime.cache),
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


class EssenceFreeDiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    """kopf's annotation diff-base storage whose essence of a body is empty.

    kopf builds the essence of every watched body on every event (a deep copy without status
    and kopf's own fields) to detect changes for ``on.create``/``on.update``/``on.field``
    handlers, and to decide whether an idle daemon's ``idle`` timer restarts. This operator
    has neither, so the copy is pure cost: 6-7% of the event loop's busy time with 1,000
    Rollouts stepping (``docs/benchmarks.md``). Never use it with change handlers: they would
    see no changes; :func:`diffbase_storage` guards that."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()


def diffbase_storage(registry: kopf.OperatorRegistry) -> kopf.DiffBaseStorage:
    """The diff-base storage for ``registry``: essence-free while it has no change handlers
    (``on.create``, ``on.update``, ``on.delete``, ``on.resume``, ``on.field``), else kopf's."""
    # kopf has no public way to list the change handlers of a registry.
    changing = registry._changing.get_all_handlers()
    storage = kopf.AnnotationsDiffBaseStorage if changing else EssenceFreeDiffBaseStorage
    return storage(prefix=KOPF_PREFIX, key="last-handled-configuration")


def operator_settings(instance: str | None = None) -> kopf.OperatorSettings:
    """kopf's settings for this operator."""
    settings = kopf.OperatorSettings()
    # Our events are posted by the reconcile with reason constants; kopf turns only its own
    # warnings and errors (a crashed handler) into events.
    settings.posting.level = logging.WARNING
    settings.posting.reporting_component = "rollwise-operator"
    settings.posting.reporting_instance = instance or "rollwise-operator"
    settings.posting.event_name_prefix = "rollwise-"
    # Long-polling watches the server ends every minute; the client gives up a bit later.
    settings.watching.server_timeout = 60
    settings.watching.client_timeout = 70
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 30
    settings.networking.connect_timeout = 10
    # A per-object watch worker idles this long before it is released.
    settings.queueing.idle_timeout = 30
    settings.persistence.finalizer = f"{KOPF_PREFIX}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=KOPF_PREFIX, key="last-handled-configuration"
    )
    settings.background.cancellation_polling = 5
    return settings


__all__ = [
    "CANCELLATION_TIMEOUT",
    "EssenceFreeDiffBaseStorage",
    "PassSlots",
    "Runtime",
    "deployment_fingerprint",
    "diffbase_storage",
    "operator_settings",
    "pass_loop",
    "register",
    "rollout_fingerprint",
    "rollout_loop",
    "sleep_until_woken",
    "watch_cache",
]
