"""kopf handlers for ``rollouts.rollwise.dev/v1alpha1``: one reconcile loop per Rollout.

Design: a ``@kopf.daemon`` per Rollout runs
:func:`rollwise.runtime.rollout.reconcile.reconcile` (through
:func:`rollwise.runtime.loops.pass_loop`), then sleeps until the first of

* the pass's ``requeue_after`` (a pause ending, a measurement falling due, a retry), capped by
  ``resync_seconds`` so a missed watch event is never fatal;
* a *wake-up*: a watch event that changes what the Rollout asks for — its
  ``metadata.generation`` (spec), a manual-request annotation (``rollwise.dev/promote`` ...), a
  recorded override or approval (an approval step may go on), or its deletion — or a revision
  Deployment's controller reporting progress (observed generation, replica counts in status);
* the daemon being stopped (Rollout deleted, operator exiting).

The daemon and the Rollouts' own watch are the ones every kind gets
(:func:`rollwise.runtime.loops.register_kind`); this module adds the watch of the revision
Deployments and of the Services. The watches (Rollouts, revision Deployments, Services) also
feed the :class:`rollwise.adapters.watch_cache.WatchCache` of the shared
:class:`rollwise.runtime.loops.Loops`; each loop hands it to its passes as their read cache
(from the second pass on), so a pass reads what the watches delivered instead of asking the
API server again. ``WatchCache`` explains why that is as safe as a fresh read: bodies at a
known resourceVersion, never older than the operator's own writes, and the status patch
conditional on the version read.

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

from collections.abc import Hashable, Mapping
from typing import Any

import kopf

from rollwise.adapters.kube import DEPLOYMENTS, ROLLOUTS, SERVICES
from rollwise.adapters.watch_cache import WatchCache
from rollwise.adapters.workloads import ROLLOUT_LABEL
from rollwise.core.observations import RequestKind
from rollwise.core.overrides import OVERRIDES
from rollwise.core.rollout.actions import Decision
from rollwise.core.rollout.approvals import APPROVALS
from rollwise.runtime.logging import rollout_logger
from rollwise.runtime.loops import Kind, Loops, register_kind
from rollwise.runtime.metrics import OperatorMetrics
from rollwise.runtime.rollout.ports import Ports
from rollwise.runtime.rollout.reconcile import reconcile
from rollwise.runtime.skeleton import Memory, PassResult

#: Annotations whose change wakes a Rollout's loop: the manual requests, and the override
#: and approval records the admission webhook writes (``core.overrides``,
#: ``core.rollout.approvals``).
_REQUEST_ANNOTATIONS = (*(kind.annotation for kind in RequestKind), OVERRIDES, APPROVALS)

#: The name of the Rollouts' loops and fingerprints in :class:`Loops`.
KIND = "rollout"


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


def rollout_kind(ports: Ports, metrics: OperatorMetrics | None = None) -> Kind:
    """The Rollout as :func:`rollwise.runtime.loops.register_kind` registers it."""

    async def run_pass(
        namespace: str, name: str, memory: Memory, cache: WatchCache | None
    ) -> PassResult[Decision]:
        return await reconcile(namespace, name, ports, memory, cache)

    def gone(key: tuple[str, str]) -> None:
        if metrics is not None:
            metrics.forget(*key)

    return Kind(
        name=KIND,
        resource=ROLLOUTS,
        fingerprint=rollout_fingerprint,
        run_pass=run_pass,
        logger=lambda namespace, name: rollout_logger(namespace, name, None),
        daemon_id="reconcile",
        event_id="rollout-changed",
        gone=gone,
    )


def register(
    registry: kopf.OperatorRegistry,
    loops: Loops,
    ports: Ports,
    metrics: OperatorMetrics | None = None,
) -> None:
    """Register the Rollout handlers (and the login) in ``registry``."""

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # In-cluster service account first, else the kubeconfig (KUBECONFIG or ~/.kube).
        info = kopf.login_with_service_account(**kwargs)
        return info if info is not None else kopf.login_with_kubeconfig(**kwargs)

    register_kind(registry, loops, rollout_kind(ports, metrics))
    if loops.cache is not None:
        loops.cache.watch(DEPLOYMENTS, required_label=ROLLOUT_LABEL)
        loops.cache.watch(SERVICES)

    @kopf.on.event(
        DEPLOYMENTS.group,
        DEPLOYMENTS.version,
        DEPLOYMENTS.plural,
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
        loops.observe(DEPLOYMENTS, type, body)
        if type == "DELETED":
            loops.forget_seen("deployment", (namespace, name))
            loops.wake(KIND, (namespace, rollout))
            return
        if loops.changed("deployment", (namespace, name), deployment_fingerprint(body)):
            loops.wake(KIND, (namespace, rollout))

    if loops.cache is not None:

        @kopf.on.event(
            SERVICES.group, SERVICES.version, SERVICES.plural, id="service-seen", registry=registry
        )
        async def service_seen(*, type: str, event: Mapping[str, Any], **_: Any) -> None:
            # Only the cache needs Services: a pass checks the ones its Rollout names.
            loops.observe(SERVICES, type, event.get("object") or {})


__all__ = [
    "KIND",
    "deployment_fingerprint",
    "register",
    "rollout_fingerprint",
    "rollout_kind",
]
