"""kopf handlers for ``modelreleases.rollwise.dev/v1alpha1``: one reconcile loop per release.

The same daemon and watch as every kind (:func:`rollwise.runtime.loops.register_kind`): a
``@kopf.daemon`` per ModelRelease runs :func:`rollwise.runtime.release.reconcile.reconcile_release`,
reading the release from the shared watch cache from its second pass on, then sleeps until
the pass's ``requeue_after`` (capped by the resync period) or a wake-up:

* the release's spec (generation), its annotations (a request or a record the admission
  webhook wrote: approval, waiver, revoke) or its deletion changed;
* its child Rollout's status moved (phase, weight, step, revisions): the label
  ``rollwise.dev/model-release`` names the release to wake;
* another release of the namespace changed stage: a release queued behind it may go now.

Status-only writes of the release itself do not wake it (no busy loop).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import kopf

from rollwise.adapters.kube import ROLLOUTS
from rollwise.adapters.releases import MODELRELEASES, RELEASE_LABEL
from rollwise.adapters.watch_cache import WatchCache
from rollwise.core.modelrelease.actions import ReleaseDecision
from rollwise.runtime.logging import release_logger
from rollwise.runtime.loops import Kind, Loops, register_kind
from rollwise.runtime.release.ports import ReleasePorts
from rollwise.runtime.release.reconcile import reconcile_release
from rollwise.runtime.skeleton import Memory, PassResult

Key = tuple[str, str]

#: The name of the ModelReleases' loops and fingerprints in :class:`Loops`.
KIND = "release"


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


def release_kind(ports: ReleasePorts, loops: Loops) -> Kind:
    """The ModelRelease as :func:`rollwise.runtime.loops.register_kind` registers it: a
    change of one release's stage wakes the other releases of its namespace."""
    stages: dict[Key, str | None] = {}

    async def run_pass(
        namespace: str, name: str, memory: Memory, cache: WatchCache | None
    ) -> PassResult[ReleaseDecision]:
        return await reconcile_release(namespace, name, ports, memory, cache)

    def gone(key: Key) -> None:
        stages.pop(key, None)
        if ports.metrics is not None:
            ports.metrics.observe_release(key[0], key[1], None)

    def seen(event_type: str, key: Key, body: Mapping[str, Any]) -> None:
        namespace, name = key
        if event_type == "DELETED":
            loops.wake_namespace(KIND, namespace, name)
            return
        status = body.get("status") or {}
        stage = status.get("stage") if isinstance(status, Mapping) else None
        if stages.get(key) != stage:
            stages[key] = stage
            loops.wake_namespace(KIND, namespace, name)

    return Kind(
        name=KIND,
        resource=MODELRELEASES,
        fingerprint=release_fingerprint,
        run_pass=run_pass,
        logger=lambda namespace, name: release_logger(namespace, name, None, None),
        daemon_id="reconcile-release",
        event_id="release-changed",
        gone=gone,
        seen=seen,
    )


def register_releases(registry: kopf.OperatorRegistry, loops: Loops, ports: ReleasePorts) -> None:
    """Register the ModelRelease handlers in ``registry`` (the login is registered with the
    Rollout handlers)."""
    register_kind(registry, loops, release_kind(ports, loops))

    @kopf.on.event(
        ROLLOUTS.group,
        ROLLOUTS.version,
        ROLLOUTS.plural,
        id="child-rollout-changed",
        labels={RELEASE_LABEL: kopf.PRESENT},
        registry=registry,
    )
    async def child_changed(
        *, type: str, event: Mapping[str, Any], name: str, namespace: str | None, **_: Any
    ) -> None:
        body = event.get("object") or {}
        release = (body.get("metadata") or {}).get("labels", {}).get(RELEASE_LABEL)
        if not release or namespace is None:
            return
        if type == "DELETED" or loops.changed("child", (namespace, name), child_fingerprint(body)):
            loops.wake(KIND, (namespace, release))


__all__ = [
    "KIND",
    "child_fingerprint",
    "register_releases",
    "release_fingerprint",
    "release_kind",
]
