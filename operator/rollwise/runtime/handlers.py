"""kopf handlers for ``rollouts.rollwise.dev/v1alpha1``: one reconcile loop per Rollout.

Design: a ``@kopf.daemon`` per Rollout runs :func:`rollwise.runtime.reconcile.reconcile`, then
sleeps until the first of

* the pass's ``requeue_after`` (a pause ending, a measurement falling due, a retry), capped by
  ``resync_seconds`` so a missed watch event is never fatal;
* a *wake-up*: a watch event that changes what the Rollout asks for — its
  ``metadata.generation`` (spec), a manual-request annotation (``rollwise.dev/promote`` ...) or
  its deletion — or one of its revision Deployments changing replicas or readiness;
* the daemon being stopped (Rollout deleted, operator exiting).

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
never writes ``status.kopf``. All progress lives in the Rollout's status: a restarted operator
continues where the last one stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from rollwise.adapters.workloads import ROLLOUT_LABEL
from rollwise.core.observations import RequestKind
from rollwise.runtime.cluster import GROUP, PLURAL, VERSION
from rollwise.runtime.logging import rollout_logger
from rollwise.runtime.metrics import OperatorMetrics
from rollwise.runtime.reconcile import Memory, Ports, reconcile

#: Seconds a stopping daemon gets to finish its pass before kopf cancels it.
CANCELLATION_TIMEOUT = 10.0

#: Prefix of kopf's own annotations and of the finalizer.
KOPF_PREFIX = "rollwise.dev"

_REQUEST_ANNOTATIONS = tuple(kind.annotation for kind in RequestKind)

Key = tuple[str, str]


def rollout_fingerprint(body: Mapping[str, Any]) -> Hashable:
    """What, when it changes, must wake a Rollout's loop: the spec (generation), the manual
    requests and deletion. Status-only writes keep it unchanged."""
    meta = body.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    return (
        meta.get("generation"),
        tuple(annotations.get(a) for a in _REQUEST_ANNOTATIONS),
        meta.get("deletionTimestamp") is not None,
    )


def deployment_fingerprint(body: Mapping[str, Any]) -> Hashable:
    """What of a revision Deployment the reconcile observes (replicas and readiness)."""
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    return (
        meta.get("generation"),
        spec.get("replicas"),
        status.get("observedGeneration"),
        status.get("updatedReplicas"),
        status.get("readyReplicas"),
        status.get("availableReplicas"),
    )


@dataclass
class Runtime:
    """The state the handlers share: the ports of a pass, the wake-up events, the metrics."""

    ports: Ports
    metrics: OperatorMetrics | None = None
    resync_seconds: float = 300.0
    wakers: dict[Key, asyncio.Event] = field(default_factory=dict)
    fingerprints: dict[tuple[str, str, str], Hashable] = field(default_factory=dict)

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


async def rollout_loop(
    runtime: Runtime, namespace: str, name: str, stopped: kopf.DaemonStopped
) -> None:
    """The reconcile loop of one Rollout (the body of its daemon)."""
    key = (namespace, name)
    wake = runtime.waker(key)
    memory = Memory()
    log = rollout_logger(namespace, name, None)
    log.debug("reconcile loop started")
    while not stopped:
        wake.clear()
        try:
            result = await reconcile(namespace, name, runtime.ports, memory)
        except Exception:
            # A bug, not a cluster failure (those come back in the result): keep the loop
            # alive and look again later rather than dropping the Rollout.
            log.exception("reconcile pass crashed")
            memory.failures += 1
            await sleep_until_woken(wake, stopped, min(2.0**memory.failures, 300.0))
            continue
        if result.gone:
            break
        delay = result.requeue_after
        delay = runtime.resync_seconds if delay is None else min(delay, runtime.resync_seconds)
        await sleep_until_woken(wake, stopped, delay)
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
    def rollout_changed(
        *, type: str, body: kopf.Body, name: str, namespace: str | None, **_: Any
    ) -> None:
        if namespace is None:
            return
        key = (namespace, name)
        if type == "DELETED":
            runtime.wake(key)
            runtime.forget("rollout", key)
            return
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
    def revision_changed(
        *, type: str, body: kopf.Body, name: str, namespace: str | None, **_: Any
    ) -> None:
        rollout = (body.get("metadata") or {}).get("labels", {}).get(ROLLOUT_LABEL)
        if not rollout or namespace is None:
            return
        if type == "DELETED":
            runtime.forget("deployment", (namespace, name))
            if (namespace, rollout) in runtime.wakers:
                runtime.wake((namespace, rollout))
            return
        changed = runtime.changed("deployment", (namespace, name), deployment_fingerprint(body))
        if changed and (namespace, rollout) in runtime.wakers:
            runtime.wake((namespace, rollout))


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
    "Runtime",
    "deployment_fingerprint",
    "operator_settings",
    "register",
    "rollout_fingerprint",
    "rollout_loop",
    "sleep_until_woken",
]
