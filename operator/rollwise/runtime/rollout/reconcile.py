"""One reconcile pass of one Rollout: observe → decide → persist → act → post events.

:func:`reconcile` is the whole pass and knows nothing of kopf: the handlers call it from a
per-Rollout loop, the unit tests call it with in-memory fakes. Its I/O goes through
:class:`Ports` (the adapters' narrow interfaces plus :class:`ClusterPort` for the Rollout itself
and its events), always from worker threads (``asyncio.to_thread``) since the adapters are
synchronous.

1. **Observe**: read the Rollout (from the operator's watch cache when the runtime set one,
   see :func:`_read_rollout` and ``adapters.kube.WatchCache``, else a GET), its
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
   moves away, see ``core.rollout._actions``). The first failing action stops the list:
   ``Conflict`` is retried after a second, ``Unavailable`` after its ``retry_after`` or a
   growing backoff, anything else is reported as an ``ActionFailed`` Warning event (once per
   distinct error) and retried with the backoff. ``SetWeight`` is skipped for a router that
   carries the weight by replica counts (the scale actions already did).
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
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from rollwise.adapters.errors import (
    AdapterError,
    Conflict,
    NotFound,
    RouteMisconfigured,
    RouteNotFound,
)
from rollwise.adapters.kube import ROLLOUTS, WatchCache, copy_json
from rollwise.adapters.traffic.base import RouterContext, TrafficRouter
from rollwise.adapters.workloads import RolloutRef, deployment_name
from rollwise.core.events import Event, LoggedEvent
from rollwise.core.notification_bodies import Subject
from rollwise.core.observations import (
    Measurement,
    Observations,
    RevisionState,
    requests_from_annotations,
    revision_of,
)
from rollwise.core.overrides import in_effect, read_overrides
from rollwise.core.querycheck import QueryCheck, check_due, queries_digest, sample_context
from rollwise.core.rollout import reasons as R
from rollwise.core.rollout.actions import (
    POLL_SECONDS,
    Action,
    Decision,
    DeleteRevision,
    EnsureRevision,
    PointCanaryService,
    PointStableService,
    ScaleRevision,
)
from rollwise.core.rollout.analysis import due_metrics, query_context
from rollwise.core.rollout.canary import decide, rollout_metrics
from rollwise.core.rollout.overrides import RolloutOverride, rollout_effect
from rollwise.core.rollout.status import RolloutStatus
from rollwise.core.spec import RolloutSpec, TrafficRouting
from rollwise.core.validation import load_rollout_spec
from rollwise.runtime.logging import rollout_logger
from rollwise.runtime.metrics import OperatorMetrics
from rollwise.runtime.passes import (
    BACKOFF_MAX_SECONDS,
    CONFLICT_RETRY_SECONDS,
    FOLLOW_UP_SECONDS,
    NotifierPort,
    ProviderFactory,
    QueryBudget,
    after_actions,
    backoff,
    check_queries,
    count_failure,
    error_code,
    events_posted,
    measure,
    provider_problems,
    soonest,
    status_write_failed,
    validated,
)
from rollwise.runtime.skeleton import (
    ActionFailure,
    Memory,
    ObjectHeader,
    PassResult,
    parse_status,
    persist,
    post_pass_events,
    utc_now,
)

# --------------------------------------------------------------------------------------------
# Ports: what the pass talks to


class WorkloadsPort(Protocol):
    """The part of :class:`rollwise.adapters.workloads.Workloads` a pass uses."""

    def revisions(self, rollout: RolloutRef) -> dict[str, RevisionState]: ...

    def service_exists(self, namespace: str, name: str) -> bool: ...

    def ensure_revision(
        self, rollout: RolloutRef, revision: str, replicas: int, template: Mapping[str, Any]
    ) -> RevisionState: ...

    def scale_revision(
        self, rollout: RolloutRef, revision: str, replicas: int
    ) -> RevisionState: ...

    def delete_revision(self, rollout: RolloutRef, revision: str) -> bool: ...

    def point_service(self, namespace: str, name: str, revision: str | None) -> bool: ...


class ClusterPort(Protocol):
    """The Rollout object itself and its events."""

    def read_rollout(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Rollout as the API server has it now; None when it is gone."""
        ...

    def patch_status(
        self, namespace: str, name: str, patch: dict[str, Any], resource_version: str | None
    ) -> dict[str, Any]:
        """Merge-patch ``/status`` (``Conflict`` when ``resource_version`` is stale)."""
        ...

    def post_event(self, rollout: RolloutObject, event: Event) -> None:
        """Post one core/v1 Event about the Rollout (a report of this process)."""
        ...

    def post_logged(self, rollout: RolloutObject, entry: LoggedEvent) -> bool:
        """Post the Event of a logged transition under its deterministic name; False when it
        exists already."""
        ...


RouterFactory = Callable[[TrafficRouting | None, RouterContext], TrafficRouter]


@dataclass
class Ports:
    """Everything a pass does I/O through, plus the clock and the operator's metrics."""

    cluster: ClusterPort
    workloads: WorkloadsPort
    router_for: RouterFactory
    provider_for: ProviderFactory
    default_prometheus: str | None = None
    metrics: OperatorMetrics | None = None
    clock: Callable[[], datetime] = utc_now
    #: The operator's record key: override records (``rollwise.dev/overrides``, written by
    #: its admission webhook) count only with a valid signature under it; None trusts none.
    record_key: bytes | None = None
    #: Ports for one pass (``reconcile`` calls it first): the production ports read each object
    #: at most once per pass (``adapters.kube.PassView``). None: use these ports as they are.
    for_pass: Callable[[WatchCache | None], Ports] | None = None
    #: Where queries run, within each namespace's share (None: the default worker threads).
    queries: QueryBudget | None = None
    #: The Prometheus addresses a spec may name (None: any, for embedding and tests).
    allowed_prometheus: frozenset[str] | None = None
    #: The web providers a spec may name (None: any, for embedding and tests).
    web_providers: frozenset[str] | None = None
    #: Where posted events go for notifications (None: no notifications).
    notifier: NotifierPort | None = None


# --------------------------------------------------------------------------------------------
# The object and the pass's memory


@dataclass(frozen=True)
class RolloutObject(ObjectHeader):
    """The fields of a Rollout a pass works with (wire form)."""

    @property
    def ref(self) -> RolloutRef:
        return RolloutRef(
            namespace=self.namespace,
            name=self.name,
            uid=self.uid,
            selector=dict(self.spec.get("selector") or {}),
        )


def describe(action: Action) -> str:
    """An action as messages name it."""
    if isinstance(action, EnsureRevision):
        return f"ensure revision {action.revision} at {action.replicas} replica(s)"
    if isinstance(action, ScaleRevision):
        return f"scale revision {action.revision} to {action.replicas} replica(s)"
    if isinstance(action, DeleteRevision):
        return f"delete revision {action.revision}"
    if isinstance(action, PointStableService):
        return f"point Service {action.service} at revision {action.revision}"
    if isinstance(action, PointCanaryService):
        return f"point Service {action.service} at revision {action.revision}"
    return f"set canary weight {action.weight}% (canary {action.canary_revision})"


# --------------------------------------------------------------------------------------------
# Observe


@dataclass(frozen=True)
class _Seen:
    spec: RolloutSpec | None
    status: RolloutStatus | None
    observations: Observations
    #: What validating the spec found (``passes.validated``: once per generation).
    spec_errors: tuple[str, ...] = ()


def _router_context(
    obj: RolloutObject, spec: RolloutSpec, status: RolloutStatus | None
) -> RouterContext:
    canary = spec.strategy.canary
    stable_rev = status.stable_revision if status is not None else None
    canary_rev = status.canary_revision if status is not None else None
    return RouterContext(
        namespace=obj.namespace,
        rollout=obj.name,
        stable_service=canary.stable_service,
        canary_service=canary.canary_service,
        replicas=spec.replicas,
        stable_deployment=deployment_name(obj.name, stable_rev) if stable_rev else None,
        canary_deployment=deployment_name(obj.name, canary_rev) if canary_rev else None,
    )


async def _measure(
    obj: RolloutObject,
    seen: tuple[RolloutSpec, RolloutStatus | None],
    ports: Ports,
    now: datetime,
    log: Any,
    *,
    held: bool = False,
) -> dict[str, Measurement]:
    spec, status = seen
    due = due_metrics(spec, status, now, held=held)
    if not due:
        return {}
    return await measure(
        [d.metric for d in due],
        query_context(obj.namespace, obj.name, spec, status),
        provider_for=ports.provider_for,
        default_prometheus=ports.default_prometheus,
        now=now,
        metrics=ports.metrics,
        log=log,
        budget=ports.queries,
        namespace=obj.namespace,
    )


def _override(
    obj: RolloutObject, template_hash: str, status: RolloutStatus | None, ports: Ports
) -> RolloutOverride:
    """The override in effect for the current revision (signed records only), as the core
    observes it (``core.overrides.rollout_effect``)."""
    found = read_overrides(obj.annotations, obj.uid, ports.record_key)
    return rollout_effect(
        in_effect(found.overrides, template_hash),
        name=obj.name,
        template_hash=template_hash,
        status=status,
    )


def _with_override(observations: Observations, override: RolloutOverride) -> Observations:
    return replace(
        observations,
        hold=override.hold,
        override_requests=override.requests,
        override_waiting=override.waiting,
    )


async def _check_queries(
    obj: RolloutObject,
    spec: RolloutSpec,
    *,
    status: RolloutStatus | None,
    ports: Ports,
    now: datetime,
    log: Any,
) -> QueryCheck | None:
    """The provider's verdict on the spec's queries when they are unchecked (or were
    unverified long enough); None when nothing is to be checked this pass."""
    metrics = rollout_metrics(spec)
    digest = queries_digest(metrics)
    if not check_due(digest, status.queries if status is not None else None, now):
        return None
    if provider_problems(metrics, ports.allowed_prometheus, ports.web_providers):
        return None  # the spec is invalid anyway; nothing is sent to a host it chose
    canary = spec.strategy.canary
    return await check_queries(
        digest,
        metrics,
        sample_context(obj.namespace, obj.name, canary.stable_service, canary.canary_service),
        provider_for=ports.provider_for,
        default_prometheus=ports.default_prometheus,
        log=log,
        budget=ports.queries,
        namespace=obj.namespace,
    )


async def _observe(
    obj: RolloutObject, ports: Ports, now: datetime, log: Any, memory: Memory
) -> _Seen:
    """Everything ``decide`` needs; raises ``AdapterError`` when the cluster cannot be read."""
    status = parse_status(RolloutStatus, obj.status, log)
    template = obj.spec.get("template")
    template_hash = revision_of(template if isinstance(template, Mapping) else {})
    requests = requests_from_annotations(obj.annotations)
    override = _override(obj, template_hash, status, ports)
    posted = events_posted(memory, obj.uid, status.event_log if status is not None else None)
    spec, spec_errors = await validated(
        memory, obj.uid, obj.generation, obj.spec, load_rollout_spec, log=log
    )
    if spec is None:
        # An invalid spec is decided without looking at the cluster: nothing will be done.
        return _Seen(
            None,
            status,
            _with_override(
                Observations(
                    template_hash=template_hash,
                    generation=obj.generation,
                    requests=requests,
                    events_posted=posted,
                ),
                override,
            ),
            spec_errors=tuple(spec_errors),
        )
    refused = provider_problems(
        rollout_metrics(spec), ports.allowed_prometheus, ports.web_providers
    )
    if refused:
        # A spec naming a Prometheus the operator may not query is invalid: decided without
        # looking at the cluster, and no query goes to a host the spec chose.
        return _Seen(
            spec,
            status,
            _with_override(
                Observations(
                    template_hash=template_hash,
                    generation=obj.generation,
                    requests=requests,
                    events_posted=posted,
                    missing_references=tuple(refused),
                ),
                override,
            ),
            spec_errors=tuple(spec_errors),
        )
    canary = spec.strategy.canary
    router = ports.router_for(canary.traffic_routing, _router_context(obj, spec, status))

    def read_weight() -> tuple[int | None, str | None]:
        try:
            return router.get_weight(), None
        except (RouteNotFound, RouteMisconfigured) as exc:
            if router.scales_revisions:
                # The replica-ratio "route" is the stable Deployment, created by this very
                # pass for a new Rollout: not a spec error.
                return None, None
            return None, exc.message

    def read_cluster() -> tuple[
        dict[str, RevisionState], bool, bool, tuple[int | None, str | None]
    ]:
        # One worker-thread hop for the four reads, not four: with the watch cache they are
        # memory lookups, and each hop cost more CPU than the read (the queries below, which
        # wait on Prometheus, still run side by side).
        return (
            ports.workloads.revisions(obj.ref),
            ports.workloads.service_exists(obj.namespace, canary.stable_service),
            ports.workloads.service_exists(obj.namespace, canary.canary_service),
            read_weight(),
        )

    (
        (revisions, stable_exists, canary_exists, (weight, route_problem)),
        measurements,
        query_check,
    ) = await asyncio.gather(
        asyncio.to_thread(read_cluster),
        _measure(obj, (spec, status), ports, now, log, held=override.hold is not None),
        _check_queries(obj, spec, status=status, ports=ports, now=now, log=log),
    )
    missing: list[str] = []
    if not stable_exists:
        missing.append(
            f"spec.strategy.canary.stableService: Service {obj.namespace}/"
            f"{canary.stable_service} not found"
        )
    if not canary_exists and canary.canary_service != canary.stable_service:
        missing.append(
            f"spec.strategy.canary.canaryService: Service {obj.namespace}/"
            f"{canary.canary_service} not found"
        )
    if route_problem is not None:
        missing.append(f"spec.strategy.canary.trafficRouting: {route_problem}")
    return _Seen(
        spec,
        status,
        Observations(
            template_hash=template_hash,
            generation=obj.generation,
            revisions=revisions,
            actual_weight=weight,
            stable_service_exists=stable_exists,
            canary_service_exists=canary_exists,
            measurements=measurements,
            requests=requests,
            missing_references=tuple(missing),
            hold=override.hold,
            override_requests=override.requests,
            override_waiting=override.waiting,
            query_check=query_check,
            events_posted=posted,
        ),
        spec_errors=tuple(spec_errors),
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
    if isinstance(action, DeleteRevision):
        return workloads.delete_revision(obj.ref, action.revision)
    if isinstance(action, PointStableService | PointCanaryService):
        return workloads.point_service(obj.namespace, action.service, action.revision)
    if router is None or router.scales_revisions:
        return False
    weight = 0 if action.canary_revision == action.stable_revision else action.weight
    router.set_weight(weight)
    return seen.actual_weight != weight


@dataclass(frozen=True)
class _Committed:
    """What one pass's commit hop did: the status write, then the actions."""

    acted: bool
    failure: ActionFailure[Action] | None
    written: dict[str, Any] | None = None
    write_error: AdapterError | None = None


async def _decide_and_commit(
    obj: RolloutObject, seen: _Seen, ports: Ports, now: datetime
) -> tuple[Decision, bool, _Committed]:
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
        router = ports.router_for(
            spec.strategy.canary.traffic_routing, _router_context(obj, spec, decision.status)
        )
        for action in decision.actions:
            try:
                acted = _apply(action, obj, ports, router, seen.observations) or acted
            except AdapterError as exc:
                return True, ActionFailure(action, exc, describe(action))
        return acted, None

    def run() -> tuple[Decision, bool, _Committed]:
        decision = decide(
            spec if spec is not None else obj.spec,
            seen.status,
            seen.observations,
            now,
            spec_errors=seen.spec_errors,
        )
        stored = persist(obj, seen.status, decision.status, ports.cluster.patch_status)
        if stored.error is not None:
            return decision, stored.changed, _Committed(False, None, write_error=stored.error)
        acted, failure = apply_all(decision)
        return decision, stored.changed, _Committed(acted, failure, written=stored.written)

    decision, changed, done = await asyncio.to_thread(run)
    if done.failure is not None and ports.metrics is not None:
        ports.metrics.api_error(type(done.failure.action).__name__, error_code(done.failure.error))
    return decision, changed, done


# --------------------------------------------------------------------------------------------
# The pass


def router_kind(spec: RolloutSpec | None) -> str:
    """The ``router`` label of ``rollwise_rollout_info``."""
    if spec is None:
        return ""
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
        if event.reason in (R.ROLLED_BACK, R.ABORTED):
            metrics.rolled_back(obj.namespace, obj.name, event.reason.name)


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
    started = time.monotonic()
    if ports.for_pass is not None:
        ports = ports.for_pass(cache)
    try:
        return await _reconcile(namespace, name, ports, memory, cache)
    finally:
        if ports.metrics is not None:
            ports.metrics.reconcile_duration.observe(time.monotonic() - started)


async def _read_rollout(
    namespace: str, name: str, ports: Ports, cache: WatchCache | None
) -> dict[str, Any] | None:
    """The Rollout: the body its watch delivered (``WatchCache``: at a known resourceVersion,
    never older than this operator's last write of it, and the status patch is conditional on
    that version), else a GET."""
    cached = cache.lookup(ROLLOUTS, namespace, name) if cache is not None else None
    if cached is not None:
        body: dict[str, Any] = copy_json(cached)
        return body
    found = await asyncio.to_thread(ports.cluster.read_rollout, namespace, name)
    if found is not None and cache is not None:
        cache.observe(ROLLOUTS, found, confirmed=True)
    return found


async def _reconcile(
    namespace: str, name: str, ports: Ports, memory: Memory, cache: WatchCache | None
) -> PassResult[Decision]:
    log = rollout_logger(namespace, name, None)
    try:
        body = await _read_rollout(namespace, name, ports, cache)
    except AdapterError as exc:
        if ports.metrics is not None:
            ports.metrics.api_error("read_rollout", error_code(exc))
        log.warning("cannot read the Rollout", error=exc.message)
        return PassResult(requeue_after=count_failure(memory, exc.retry_after), error=exc.message)
    if body is None:
        if ports.metrics is not None:
            ports.metrics.forget(namespace, name)
        return PassResult(requeue_after=None, gone=True)
    obj = RolloutObject.from_body(body)
    now = ports.clock()
    try:
        seen = await _observe(obj, ports, now, log, memory)
    except AdapterError as exc:
        if ports.metrics is not None:
            ports.metrics.api_error("observe", error_code(exc))
        log.warning("cannot observe the cluster", error=exc.message)
        return PassResult(requeue_after=count_failure(memory, exc.retry_after), error=exc.message)
    log = rollout_logger(namespace, name, seen.observations.template_hash)

    decision, changed, done = await _decide_and_commit(obj, seen, ports, now)
    acted, failure = done.acted, done.failure

    status_written = False
    if isinstance(done.write_error, Conflict):
        # The Rollout changed since it was read: decide again from what is there now (read
        # from the server: the cached body was behind). Nothing was done.
        if cache is not None:
            cache.forget(ROLLOUTS, namespace, name)
        log.info("status write conflicted; looking again", error=done.write_error.message)
        return PassResult(requeue_after=CONFLICT_RETRY_SECONDS, decision=decision)
    if isinstance(done.write_error, NotFound):
        if cache is not None:
            cache.deleted(ROLLOUTS, namespace, name)
        return PassResult(requeue_after=None, gone=True)
    persisted = seen.status
    if done.write_error is not None:
        requeue: float | None = status_write_failed(memory, done.write_error, ports.metrics, log)
        failure = None
        events: list[Event] = []
    else:
        persisted = decision.status
        if changed:
            status_written = True
            if cache is not None and done.written:
                # Read-your-writes: the next pass starts from this answer, not from an older
                # body whose watch event is still on its way.
                cache.observe(ROLLOUTS, done.written, confirmed=True)
            if ports.metrics is not None:
                ports.metrics.status_written()
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
    if done.write_error is not None:
        return PassResult(
            requeue_after=requeue,
            decision=decision,
            error=done.write_error.message,
        )
    _record_metrics(ports, obj, decision, list(seen.observations.measurements), seen.spec)
    log.debug(
        "pass done",
        phase=decision.status.phase.value if decision.status.phase else None,
        weight=decision.status.canary_weight,
        actions=len(decision.actions),
        status_written=status_written,
        requeue_after=requeue,
    )
    return PassResult(
        requeue_after=requeue,
        decision=decision,
        status_written=status_written,
        acted=acted,
        failure=failure,
        events=(*decision.events, *events),
    )


__all__ = [
    "BACKOFF_MAX_SECONDS",
    "CONFLICT_RETRY_SECONDS",
    "FOLLOW_UP_SECONDS",
    "ClusterPort",
    "Ports",
    "ProviderFactory",
    "RolloutObject",
    "RouterFactory",
    "WorkloadsPort",
    "backoff",
    "describe",
    "notification_subject",
    "reconcile",
]
