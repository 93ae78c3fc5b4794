"""The kopf wiring both kinds share: one loop per object, its wake-ups, and kopf's settings.

One :class:`Loops` serves every kind: the wake-up events of the running loops, the
fingerprints of what was last seen of each watched object, the watch-fed read cache and the
pass slots. Each kind describes itself as a :class:`Kind` (its resource, what of its body
wakes its loop, its pass) and :func:`register_kind` registers, for it, a ``@kopf.daemon`` per
object whose body is :func:`pass_loop` (run a pass, then sleep until the first of the pass's
``requeue_after`` capped by the resync period, a wake-up, or the daemon being stopped:
:func:`sleep_until_woken`) and the watch of the kind itself, which feeds the cache and wakes
the object's loop. :class:`PassSlots` bounds how many passes run at once.

The first pass of a loop reads from the API server: kopf adds its finalizer to a new object
right after starting the loop, so the body its watch delivered is about to be outdated (a
status patch conditional on it would only conflict). Later passes read the watch cache
(``adapters.watch_cache.WatchCache`` says why that is as safe as a fresh read). The event
handlers are coroutines: they only update dicts, and a plain function would cost a hop
through kopf's thread pool for every watch event.

kopf itself stores nothing on the objects but its finalizer: there are no change handlers,
so no progress or diff-base records (:func:`diffbase_storage`,
:class:`EssenceFreeDiffBaseStorage`), and :func:`operator_settings` sets the storages to
annotations with the ``rollwise.dev`` prefix anyway so that the structural schema could never
prune them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import kopf

from rollwise import GROUP
from rollwise.adapters.resources import Resource
from rollwise.adapters.watch_cache import WatchCache
from rollwise.runtime.measuring import NamespaceShares
from rollwise.runtime.skeleton import Memory

#: Seconds a stopping daemon gets to finish its pass before kopf cancels it.
CANCELLATION_TIMEOUT = 10.0


#: Prefix of kopf's own annotations and of the finalizer.
KOPF_PREFIX = GROUP


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


Key = tuple[str, str]


@dataclass
class Loops:
    """The state the handlers of every kind share: the wake-up event of each running loop
    (by kind, namespace and name), the fingerprint of what was last seen of each watched
    object, the watch-fed read cache (None: every pass reads from the API server), the pass
    slots and the resync period."""

    resync_seconds: float = 300.0
    cache: WatchCache | None = None
    slots: PassSlots | None = None
    wakers: dict[tuple[str, str, str], asyncio.Event] = field(default_factory=dict)
    fingerprints: dict[tuple[str, str, str], Hashable] = field(default_factory=dict)

    def waker(self, kind: str, key: Key) -> asyncio.Event:
        slot = (kind, *key)
        event = self.wakers.get(slot)
        if event is None:
            event = self.wakers[slot] = asyncio.Event()
        return event

    def running(self, kind: str, key: Key) -> bool:
        return (kind, *key) in self.wakers

    def wake(self, kind: str, key: Key) -> None:
        """Wakes the loop of ``kind`` ``key`` when one runs."""
        event = self.wakers.get((kind, *key))
        if event is not None:
            event.set()

    def wake_namespace(self, kind: str, namespace: str, but: str) -> None:
        """Wakes every loop of ``kind`` in ``namespace`` but ``but``'s."""
        for k, ns, name in list(self.wakers):
            if k == kind and ns == namespace and name != but:
                self.wakers[(k, ns, name)].set()

    def changed(self, what: str, key: Key, fingerprint: Hashable) -> bool:
        """Records ``fingerprint`` of ``what`` ``key``; True when it differs from the last."""
        slot = (what, *key)
        if self.fingerprints.get(slot) == fingerprint:
            return False
        self.fingerprints[slot] = fingerprint
        return True

    def forget_seen(self, what: str, key: Key) -> None:
        self.fingerprints.pop((what, *key), None)

    def forget(self, kind: str, key: Key) -> None:
        """The object is gone: its fingerprint and its loop's wake-up event."""
        self.forget_seen(kind, key)
        self.wakers.pop((kind, *key), None)

    def observe(self, resource: Resource, event_type: str, body: Mapping[str, Any]) -> None:
        """Feeds one watch event into the cache (when there is one)."""
        if self.cache is None:
            return
        if event_type == "DELETED":
            self.cache.observe_deleted(resource, body)
        else:
            self.cache.observe(resource, body)


#: One pass over ``namespace/name`` with the loop's memory and read cache.
RunPass = Callable[[str, str, Memory, WatchCache | None], Awaitable[_Outcome]]


@dataclass(frozen=True)
class Kind:
    """What :func:`register_kind` needs of a kind: its ``name`` (the key of its loops and
    fingerprints, and the ids of its handlers), its ``resource``, what of a body must wake
    its loop (``fingerprint``: spec, requests, deletion; never its status alone, or each of
    the operator's own status writes would cause another pass), its pass, the logger of its
    loop, and what to drop when an object is gone (``gone``: metrics). ``seen`` is called
    after each watch event of the kind (a kind whose objects wait on each other's)."""

    name: str
    resource: Resource
    fingerprint: Callable[[Mapping[str, Any]], Hashable]
    run_pass: RunPass
    logger: Callable[[str, str], Any]
    daemon_id: str
    event_id: str
    gone: Callable[[Key], None] | None = None
    seen: Callable[[str, Key, Mapping[str, Any]], None] | None = None


async def object_loop(loops: Loops, kind: Kind, key: Key, stopped: kopf.DaemonStopped) -> None:
    """The reconcile loop of one object (the body of its daemon)."""
    namespace, name = key
    wake = loops.waker(kind.name, key)
    memory = Memory()
    log = kind.logger(namespace, name)
    log.debug("reconcile loop started")
    # The first pass reads from the API server (see the module's docstring).
    cache: WatchCache | None = None

    def read_the_cache() -> None:
        nonlocal cache
        cache = loops.cache

    await pass_loop(
        lambda: kind.run_pass(namespace, name, memory, cache),
        memory,
        wake,
        stopped,
        resync_seconds=loops.resync_seconds,
        log=log,
        after_pass=read_the_cache,
        slots=loops.slots,
        namespace=namespace,
    )
    log.debug("reconcile loop stopped")


def _forget(loops: Loops, kind: Kind, key: Key) -> None:
    loops.forget(kind.name, key)
    if kind.gone is not None:
        kind.gone(key)


def register_kind(registry: kopf.OperatorRegistry, loops: Loops, kind: Kind) -> None:
    """Registers ``kind``'s daemon (one loop per object) and the watch of the kind itself,
    which feeds the cache and wakes an object's loop when its fingerprint changes."""
    resource = kind.resource
    if loops.cache is not None:
        loops.cache.watch(resource)

    @kopf.daemon(
        resource.group,
        resource.version,
        resource.plural,
        id=kind.daemon_id,
        registry=registry,
        cancellation_timeout=CANCELLATION_TIMEOUT,
    )
    async def reconcile_object(
        *, name: str, namespace: str | None, stopped: kopf.DaemonStopped, **_: Any
    ) -> None:
        if namespace is None:
            return
        try:
            await object_loop(loops, kind, (namespace, name), stopped)
        finally:
            deleted = kopf.DaemonStoppingReason.RESOURCE_DELETED
            if stopped.reason is not None and stopped.reason & deleted:
                _forget(loops, kind, (namespace, name))

    @kopf.on.event(
        resource.group, resource.version, resource.plural, id=kind.event_id, registry=registry
    )
    async def object_changed(
        *, type: str, event: Mapping[str, Any], name: str, namespace: str | None, **_: Any
    ) -> None:
        if namespace is None:
            return
        key = (namespace, name)
        body = event.get("object") or {}
        loops.observe(resource, type, body)
        if type == "DELETED":
            loops.wake(kind.name, key)
            _forget(loops, kind, key)
        elif loops.changed(kind.name, key, kind.fingerprint(body)):
            loops.wake(kind.name, key)
        if kind.seen is not None:
            kind.seen(type, key, body)


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
