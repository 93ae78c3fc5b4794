"""kopf handlers for ``modelreleases.rollwise.dev/v1alpha1``: one reconcile loop per release.

The same design as the Rollout's handlers (:mod:`rollwise.runtime.loops`): a ``@kopf.daemon``
per ModelRelease runs :func:`rollwise.runtime.release.reconcile.reconcile_release`, then sleeps
until the pass's ``requeue_after`` (capped by the resync period) or a wake-up:

* the release's spec (generation), its annotations (a request or a record the admission
  webhook wrote: approval, waiver, revoke) or its deletion changed;
* its child Rollout's status moved (phase, weight, step, revisions): the label
  ``rollwise.dev/model-release`` names the release to wake;
* another release of the namespace changed stage: a release queued behind it may go now.

Status-only writes of the release itself do not wake it (no busy loop).
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from rollwise import GROUP, VERSION
from rollwise import MODELRELEASES as RELEASE_PLURAL
from rollwise import ROLLOUTS as PLURAL
from rollwise.adapters.releases import RELEASE_LABEL
from rollwise.runtime.logging import release_logger
from rollwise.runtime.loops import CANCELLATION_TIMEOUT, PassSlots, pass_loop
from rollwise.runtime.release.ports import ReleasePorts
from rollwise.runtime.release.reconcile import reconcile_release
from rollwise.runtime.skeleton import Memory

Key = tuple[str, str]


def release_fingerprint(body: Mapping[str, Any]) -> Hashable:
    """What, when it changes, must wake a release's own loop: spec, annotations, deletion."""
    meta = body.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    return (
        meta.get("generation"),
        tuple(sorted((str(k), str(v)) for k, v in annotations.items())),
        meta.get("deletionTimestamp") is not None,
    )


def child_fingerprint(body: Mapping[str, Any]) -> Hashable:
    """What of a child Rollout's status the release follows."""
    status = body.get("status") or {}
    return (
        status.get("phase"),
        status.get("canaryWeight"),
        status.get("currentStepIndex"),
        status.get("stableRevision"),
        status.get("canaryRevision"),
        status.get("rolledBackRevision"),
        status.get("observedGeneration"),
    )


@dataclass
class ReleaseRuntime:
    """The state the ModelRelease handlers share."""

    ports: ReleasePorts
    resync_seconds: float = 300.0
    wakers: dict[Key, asyncio.Event] = field(default_factory=dict)
    fingerprints: dict[tuple[str, str, str], Hashable] = field(default_factory=dict)
    stages: dict[Key, str | None] = field(default_factory=dict)
    slots: PassSlots | None = None

    def waker(self, key: Key) -> asyncio.Event:
        event = self.wakers.get(key)
        if event is None:
            event = self.wakers[key] = asyncio.Event()
        return event

    def wake(self, key: Key) -> None:
        if key in self.wakers:
            self.wakers[key].set()

    def wake_namespace(self, namespace: str, but: str) -> None:
        for ns, name in list(self.wakers):
            if ns == namespace and name != but:
                self.wakers[(ns, name)].set()

    def changed(self, kind: str, key: Key, fingerprint: Hashable) -> bool:
        slot = (kind, *key)
        if self.fingerprints.get(slot) == fingerprint:
            return False
        self.fingerprints[slot] = fingerprint
        return True

    def forget(self, key: Key) -> None:
        self.fingerprints.pop(("release", *key), None)
        self.stages.pop(key, None)
        self.wakers.pop(key, None)
        if self.ports.metrics is not None:
            self.ports.metrics.observe_release(key[0], key[1], None)


async def release_loop(
    runtime: ReleaseRuntime, namespace: str, name: str, stopped: kopf.DaemonStopped
) -> None:
    """The reconcile loop of one ModelRelease (the body of its daemon)."""
    key = (namespace, name)
    wake = runtime.waker(key)
    memory = Memory()
    log = release_logger(namespace, name, None, None)
    log.debug("reconcile loop started")
    await pass_loop(
        lambda: reconcile_release(namespace, name, runtime.ports, memory),
        memory,
        wake,
        stopped,
        resync_seconds=runtime.resync_seconds,
        log=log,
        slots=runtime.slots,
        namespace=namespace,
    )
    log.debug("reconcile loop stopped")


def register_releases(registry: kopf.OperatorRegistry, runtime: ReleaseRuntime) -> None:
    """Register the ModelRelease handlers in ``registry`` (the login is registered with the
    Rollout handlers)."""

    @kopf.daemon(
        GROUP,
        VERSION,
        RELEASE_PLURAL,
        id="reconcile-release",
        registry=registry,
        cancellation_timeout=CANCELLATION_TIMEOUT,
    )
    async def reconcile_modelrelease(
        *, name: str, namespace: str | None, stopped: kopf.DaemonStopped, **_: Any
    ) -> None:
        if namespace is None:
            return
        try:
            await release_loop(runtime, namespace, name, stopped)
        finally:
            deleted = kopf.DaemonStoppingReason.RESOURCE_DELETED
            if stopped.reason is not None and stopped.reason & deleted:
                runtime.forget((namespace, name))

    @kopf.on.event(GROUP, VERSION, RELEASE_PLURAL, id="release-changed", registry=registry)
    def release_changed(
        *, type: str, body: kopf.Body, name: str, namespace: str | None, **_: Any
    ) -> None:
        if namespace is None:
            return
        key = (namespace, name)
        if type == "DELETED":
            runtime.wake(key)
            runtime.forget(key)
            runtime.wake_namespace(namespace, name)
            return
        if runtime.changed("release", key, release_fingerprint(body)):
            runtime.wake(key)
        status = body.get("status") or {}
        stage = status.get("stage") if isinstance(status, Mapping) else None
        if runtime.stages.get(key) != stage:
            runtime.stages[key] = stage
            runtime.wake_namespace(namespace, name)

    @kopf.on.event(
        GROUP,
        VERSION,
        PLURAL,
        id="child-rollout-changed",
        labels={RELEASE_LABEL: kopf.PRESENT},
        registry=registry,
    )
    def child_changed(
        *, type: str, body: kopf.Body, name: str, namespace: str | None, **_: Any
    ) -> None:
        release = (body.get("metadata") or {}).get("labels", {}).get(RELEASE_LABEL)
        if not release or namespace is None:
            return
        if type == "DELETED" or runtime.changed(
            "child", (namespace, name), child_fingerprint(body)
        ):
            runtime.wake((namespace, release))


__all__ = [
    "ReleaseRuntime",
    "child_fingerprint",
    "register_releases",
    "release_fingerprint",
    "release_loop",
]
