"""One reconcile pass of one Rollout: observe → decide → persist → act → post events.

:func:`reconcile` is the whole pass and knows nothing of kopf: the handlers call it from a
per-Rollout loop, the unit tests call it with in-memory fakes. Its I/O goes through
:class:`~rollwise.runtime.rollout.ports.Ports` (the adapters' narrow interfaces plus a
``ClusterPort`` for the Rollout itself and its events), always from worker threads
(``asyncio.to_thread``) since the adapters are synchronous. The observe step is
:mod:`rollwise.runtime.rollout.observe`; the skeleton both kinds share (persist, events tail)
is :mod:`rollwise.runtime.skeleton`.

1. **Observe**: read the Rollout (from the operator's watch cache when the runtime set one,
   see :func:`rollwise.runtime.skeleton.read_object` and ``adapters.watch_cache.WatchCache``,
   else a GET), its
   revision Deployments, whether its Services exist, the router's actual weight, the manual
   requests in its annotations, the override in effect (``core.overrides``: signed records
   only, under :attr:`Ports.record_key`), the measurements due now (none while held;
   queried in parallel, each with its metric's timeout) and, when the spec's queries are
   unchecked (``core.querycheck``), the provider's verdict on them. A provider error becomes
   ``Measurement(error=...)``, no data ``Measurement(value=None)``. A Service or routing
   object the spec names but the cluster lacks is reported to the core as a missing
   reference (the spec is invalid: no actions).
2. **Decide**: :func:`rollwise.core.rollout.canary.decide`, pure, with ``now`` from
   :attr:`Ports.clock`.
   Its status carries the transition's events in ``status.eventLog`` (``core.events``).
3. **Persist first (write-ahead)**: the status is merge-patched, conditional on the
   resourceVersion read in step 1, only when it differs from the observed one. A conflict
   (somebody wrote since the read: a stale cache, a stale replica) ends the pass with nothing
   done; it is decided again from what is there now.
4. **Act**: only then the decision's actions, in order. Each is idempotent *for the status
   just persisted*: a kill between the write and the actions leaves a status whose actions
   the next pass re-asserts, and they only ever move the cluster forward to that status
   (the core orders them from what it observes: traffic to stable before the canary Service
   moves away, see ``core.rollout.completion``). The first failing action stops the list:
   ``Conflict`` is retried after a second, ``Unavailable`` after its ``retry_after`` or a
   growing backoff, anything else is reported as an ``ActionFailed`` Warning event (once per
   distinct error) and retried with the backoff. ``SetWeight`` goes through the router
   observed in step 1 (built once per pass; ``adapters.traffic.route.write_weight``: nothing
   for a router that carries the weight by replica counts, whose scale actions already did).
5. **Post events**: every logged event not yet known to be posted, under its deterministic
   name (uid + sequence number): a re-post after a restart answers AlreadyExists, which is
   done (:func:`rollwise.runtime.passes.post_logged`). No event is lost by a kill between the
   status write and the post, and none is doubled. ``ActionFailed`` is this process's report,
   not a transition: it is posted as it happens, not logged.

The result says when to look again: the core's ``requeue_after``, shortened to
:data:`FOLLOW_UP_SECONDS` after a pass that changed the cluster (its effect is then observed
promptly) and to :data:`rollwise.core.rollout.canary.POLL_SECONDS` while a referenced object is
missing or events are left to post; None means nothing is pending.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from rollwise.adapters.errors import (
    AdapterError,
)
from rollwise.adapters.kube import ROLLOUTS
from rollwise.adapters.traffic.base import TrafficRouter
from rollwise.adapters.traffic.route import (
    write_header_routes,
    write_mirror_routes,
    write_weight,
)
from rollwise.adapters.watch_cache import WatchCache
from rollwise.core.events import Event
from rollwise.core.notification_bodies import Subject
from rollwise.core.observations import (
    Observations,
)
from rollwise.core.rollout import reasons as R
from rollwise.core.rollout.actions import (
    POLL_SECONDS,
    Action,
    Decision,
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
from rollwise.core.rollout.canary import decide
from rollwise.core.rollout.status import RolloutStatus
from rollwise.core.spec import RolloutSpec
from rollwise.runtime.logging import rollout_logger
from rollwise.runtime.passes import (
    after_actions,
    error_code,
    soonest,
    status_write_failed,
)
from rollwise.runtime.rollout.observe import (
    Seen,
    observe,
)
from rollwise.runtime.rollout.ports import (
    Ports,
    RolloutObject,
    describe,
)
from rollwise.runtime.skeleton import (
    ActionFailure,
    Memory,
    PassResult,
    Persisted,
    cannot,
    pass_done,
    persist,
    post_pass_events,
    read_object,
    settle_write,
    timed_pass,
)

# --------------------------------------------------------------------------------------------
# Act


def _apply(
    action: Action,
    obj: RolloutObject,
    ports: Ports,
    router: TrafficRouter | None,
    seen: Observations,
) -> bool:
    """Apply one action (in a worker thread); True when it (probably) changed the cluster."""
    workloads = ports.workloads
    if isinstance(action, EnsureRevision):
        before = seen.revisions.get(action.revision)
        workloads.ensure_revision(obj.ref, action.revision, action.replicas, action.template)
        return before is None or before.desired_replicas != action.replicas
    if isinstance(action, ScaleRevision):
        before = seen.revisions.get(action.revision)
        workloads.scale_revision(obj.ref, action.revision, action.replicas)
        return before is None or before.desired_replicas != action.replicas
    if isinstance(action, EnsureBaseline):
        before = seen.revisions.get(action.revision)
        workloads.ensure_baseline(obj.ref, action.revision, action.stable_revision, action.replicas)
        return before is None or before.desired_replicas != action.replicas
    if isinstance(action, DeleteRevision):
        return workloads.delete_revision(obj.ref, action.revision)
    if isinstance(action, PointStableService | PointCanaryService | PointBaselineService):
        return workloads.point_service(obj.namespace, action.service, action.revision)
    if router is None:
        return False
    if isinstance(action, SetHeaderRoutes):
        if seen.actual_header_routes == action.routes:
            return False
        write_header_routes(router, action.routes)
        return True
    if isinstance(action, SetMirrorRoutes):
        if seen.actual_mirror_routes == action.routes:
            return False
        write_mirror_routes(router, action.routes)
        return True
    split = action.split()
    return write_weight(router, split) and seen.actual_weight != split.canary


@dataclass(frozen=True)
class _Committed:
    """What one pass's commit hop did: the status write, then the actions."""

    acted: bool
    failure: ActionFailure[Action] | None
    stored: Persisted


async def _decide_and_commit(
    obj: RolloutObject, seen: Seen, ports: Ports, now: datetime
) -> tuple[Decision, _Committed]:
    """Decides, writes the status patch when the status changed (conditional on the version
    read), then, only when that succeeded, applies the decision's actions in order (the first
    failure stops the list). One worker-thread hop for all three: deciding evaluates the
    spec's conditions (tenant input: never on the event loop), and under load every hop waits
    its turn in the shared pool again."""
    spec = seen.spec

    def apply_all(decision: Decision) -> tuple[bool, ActionFailure[Action] | None]:
        acted = False
        if spec is None or not decision.actions:
            return acted, None
        for action in decision.actions:
            try:
                acted = _apply(action, obj, ports, seen.router, seen.observations) or acted
            except AdapterError as exc:
                return True, ActionFailure(action, exc, describe(action))
        return acted, None

    def run() -> tuple[Decision, _Committed]:
        decision = decide(
            spec if spec is not None else obj.spec,
            seen.status,
            seen.observations,
            now,
            spec_errors=seen.spec_errors,
        )
        stored = persist(obj, seen.status, decision.status, ports.cluster.patch_status)
        if stored.error is not None:
            return decision, _Committed(False, None, stored)
        acted, failure = apply_all(decision)
        return decision, _Committed(acted, failure, stored)

    decision, done = await asyncio.to_thread(run)
    if done.failure is not None and ports.metrics is not None:
        ports.metrics.api_error(type(done.failure.action).__name__, error_code(done.failure.error))
    return decision, done


# --------------------------------------------------------------------------------------------
# The pass


def router_kind(spec: RolloutSpec | None) -> str:
    """The ``router`` label of ``rollwise_rollout_info``."""
    if spec is None:
        return ""
    if spec.strategy.blue_green is not None:
        # No router: the Services' selectors carry the traffic.
        return "blueGreen"
    routing = spec.strategy.canary.traffic_routing
    if routing is None:
        return "replicaRatio"
    return "gatewayAPI" if routing.gateway_api is not None else "istio"


def _record_metrics(
    ports: Ports,
    obj: RolloutObject,
    decision: Decision,
    measured: Sequence[str],
    spec: RolloutSpec | None,
) -> None:
    metrics = ports.metrics
    if metrics is None:
        return
    status = decision.status
    metrics.observe_status(
        obj.namespace,
        obj.name,
        status.phase.value if status.phase else None,
        status.canary_weight,
        router_kind(spec),
        revisions={
            "stable": status.stable_revision or "",
            "canary": status.canary_revision or "",
            "baseline": status.baseline.revision if status.baseline is not None else "",
        },
    )
    run = status.analysis
    if run is not None:
        for name in measured:
            metric_run = run.metric(name)
            if metric_run is not None and metric_run.measurements:
                last = metric_run.measurements[-1]
                verdict = "Error" if last.error else last.verdict.value
                metrics.measured(obj.namespace, obj.name, name, verdict)
    for event in decision.events:
        if event.reason in (R.ROLLED_BACK, R.ABORTED, R.REGRESSION_ROLLBACK):
            metrics.rolled_back(obj.namespace, obj.name, event.reason.name)
        if event.reason is R.DECISION_CHANGED and status.decision is not None:
            metrics.decided(
                "rollout", status.decision.action.value, status.decision.confidence.value
            )
    confirmed = any(e.reason is R.REGRESSION_CONFIRMED for e in decision.events)
    if confirmed and status.decision is not None:
        # A confirmed regression's decision (one per pass, however many KPIs confirmed).
        metrics.decided("rollout", status.decision.action.value, status.decision.confidence.value)


def notification_subject(obj: RolloutObject, status: RolloutStatus) -> Subject:
    """The Rollout as notifications describe it, with the status just persisted."""
    details = {
        "phase": status.phase.value if status.phase else "",
        "stableRevision": status.stable_revision or "",
        "canaryRevision": status.canary_revision or "",
        "canaryWeight": str(status.canary_weight),
    }
    return Subject(
        kind="Rollout",
        plural=ROLLOUTS.plural,
        namespace=obj.namespace,
        name=obj.name,
        uid=obj.uid,
        labels=obj.labels,
        details=details,
    )


async def reconcile(
    namespace: str, name: str, ports: Ports, memory: Memory, cache: WatchCache | None = None
) -> PassResult[Decision]:
    """One pass over the Rollout ``namespace/name``, reading through ``cache`` (the watch-fed
    read cache of the Rollout's loop; None: every read goes to the API server). Never raises
    for cluster or provider failures: they come back in the result with the time to look
    again."""
    return await timed_pass(
        ports, cache, lambda for_pass: _reconcile(namespace, name, for_pass, memory, cache)
    )


async def _reconcile(
    namespace: str, name: str, ports: Ports, memory: Memory, cache: WatchCache | None
) -> PassResult[Decision]:
    log = rollout_logger(namespace, name, None)
    try:
        body = await read_object(ROLLOUTS, namespace, name, ports.cluster.read_rollout, cache)
    except AdapterError as exc:
        return cannot(
            "read_rollout", "cannot read the Rollout", exc, memory, metrics=ports.metrics, log=log
        )
    if body is None:
        if ports.metrics is not None:
            ports.metrics.forget(namespace, name)
        return PassResult(requeue_after=None, gone=True)
    obj = RolloutObject.from_body(body)
    now = ports.clock()
    try:
        seen = await observe(obj, ports, now, log, memory)
    except AdapterError as exc:
        return cannot(
            "observe", "cannot observe the cluster", exc, memory, metrics=ports.metrics, log=log
        )
    log = rollout_logger(namespace, name, seen.observations.template_hash)

    decision, done = await _decide_and_commit(obj, seen, ports, now)
    acted, failure, write_error = done.acted, done.failure, done.stored.error
    ended = settle_write(
        ROLLOUTS, obj, done.stored, decision, cache=cache, metrics=ports.metrics, log=log
    )
    if ended is not None:
        return ended
    status_written = done.stored.changed and write_error is None
    persisted = seen.status
    if write_error is not None:
        requeue: float | None = status_write_failed(memory, write_error, ports.metrics, log)
        failure = None
        events: list[Event] = []
    else:
        persisted = decision.status
        events = []
        requeue, failed = after_actions(
            memory,
            decision.requeue_after,
            acted=acted,
            failure=failure,
            report_retryable=False,
            failed_event=lambda what, error: Event.of(R.ACTION_FAILED, action=what, error=error),
            log=log,
        )
        if failed is not None:
            events.append(failed)
        if seen.observations.missing_references:
            requeue = soonest(requeue, POLL_SECONDS)

    notifier = ports.notifier
    subject = notification_subject(obj, persisted) if persisted is not None else None
    requeue = await post_pass_events(
        requeue,
        uid=obj.uid,
        logged=persisted.event_log if persisted is not None else None,
        post_entry=lambda entry: ports.cluster.post_logged(obj, entry),
        reports=events,
        post_report=lambda event: ports.cluster.post_event(obj, event),
        memory=memory,
        metrics=ports.metrics,
        log=log,
        notify=(lambda entry: notifier.offer(subject, entry)) if notifier and subject else None,
    )
    if write_error is not None:
        return PassResult(requeue_after=requeue, decision=decision, error=write_error.message)
    _record_metrics(ports, obj, decision, list(seen.observations.measurements), seen.spec)
    if ports.metrics is not None:
        before = seen.status.post_promotion if seen.status is not None else None
        ports.metrics.regressions_stored(
            obj.namespace, obj.name, before, decision.status.post_promotion
        )
    return pass_done(
        decision,
        requeue,
        status_written=status_written,
        acted=acted,
        failure=failure,
        reports=events,
        log=log,
        phase=decision.status.phase.value if decision.status.phase else None,
        weight=decision.status.canary_weight,
    )


__all__ = ["notification_subject", "reconcile", "router_kind"]
