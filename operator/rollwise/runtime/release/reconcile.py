"""One reconcile pass of one ModelRelease: observe → decide → persist → act → post events.

The same shape as :mod:`rollwise.runtime.rollout.reconcile` (the Rollout's pass), with the
ModelRelease's ports:

1. **Observe** (from worker threads, in parallel): the release (a fresh GET), the identity
   records the admission webhook wrote on it (``core.governance.read_records``: approvals,
   who set the version, a revoke request, waivers; ``core.overrides``: the override in
   effect for this version; records with a bad signature are ignored and reported), the
   gate results (``adapters.gates``) with the waivers applied, the other
   releases of the namespace (who holds the (model, alias) slot; whether the same content was
   Approved before; whether this version was revoked, also from the cluster's revocation
   ledger), the alias read back from its store, the child Rollout or the KServe
   InferenceService, the release manifest, the canary's measurements due now and, when the
   canary's queries are unchecked, the provider's verdict on them (``core.querycheck``).
2. **Decide**: :func:`rollwise.core.modelrelease.release.decide_release`, pure, in the worker thread
   of the write (it evaluates the spec's conditions: tenant input, never on the event loop).
   Its status carries the transition's events in ``status.eventLog`` (``core.events``).
3. **Persist first (write-ahead)**: the status is merge-patched (conditional on the
   resourceVersion read) only when it changed. It holds the rollback target (what served
   before the release, the alias's previous version), which cannot be observed again once the
   actions changed the cluster; a write that conflicts leaves the cluster untouched, and the
   pass is simply decided again.
4. **Act**: the actions in order, each idempotent for the status just persisted; the first
   failure stops the list and is retried with the Rollout pass's backoff (``ActionFailed``
   Warning event once per distinct error). A flip of the alias is never taken as done here:
   the core moves to Production only when a later pass reads the alias back on the new
   version.
5. **Post events**: the logged events not yet known to be posted, under deterministic names
   (``runtime.passes.post_logged``): none lost by a kill, none doubled.

The slot: releases of one (model, alias) in a namespace run one at a time. The release that
holds it is the earliest-created one in Staging or Approved, else the earliest-created
Candidate that is not refused or invalid; the others stay Candidate, ``Queued`` behind it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from rollwise import MODELRELEASES
from rollwise.adapters.errors import AdapterError, AliasConflict, Conflict, NotFound
from rollwise.adapters.registry.base import EXPECT_UNSET, AliasStore, AliasTarget
from rollwise.adapters.releases import PROMOTE_FULL, ReleaseRef
from rollwise.core.events import Event, LoggedEvent
from rollwise.core.modelrelease import reasons as MR
from rollwise.core.modelrelease.actions import (
    EnsureChildRollout,
    FlipAlias,
    ReleaseAction,
    ReleaseDecision,
    RemoveCanaryTrafficPercent,
    RevertChildRollout,
    SetCanaryTrafficPercent,
    SetPredictorStorageUri,
    release_event,
)
from rollwise.core.modelrelease.analysis import release_due_metrics, release_query_context
from rollwise.core.modelrelease.governance import Records, apply_waivers, read_records
from rollwise.core.modelrelease.observations import (
    AliasReading,
    ChildRolloutState,
    GateResult,
    InferenceServiceState,
    ReleaseObservations,
    RevokeRequest,
)
from rollwise.core.modelrelease.policy import ClusterPolicy, ReleaseRules
from rollwise.core.modelrelease.release import decide_release, release_metrics
from rollwise.core.modelrelease.spec import (
    changed_fields,
    child_rollout_name,
    load_release_spec,
    parse_release_spec,
    release_content,
)
from rollwise.core.modelrelease.status import ModelReleaseStatus, ReleasePhase, Stage
from rollwise.core.notification_bodies import Subject
from rollwise.core.observations import Measurement, RequestKind
from rollwise.core.overrides import in_effect, read_overrides, release_override, sign_request
from rollwise.core.phases import Phase
from rollwise.core.querycheck import QueryCheck, check_due, queries_digest, sample_context
from rollwise.core.reasons import clip
from rollwise.core.spec import ModelReleaseSpec
from rollwise.core.status_model import format_time
from rollwise.runtime.logging import release_logger
from rollwise.runtime.metrics import OperatorMetrics
from rollwise.runtime.passes import (
    CONFLICT_RETRY_SECONDS,
    NotifierPort,
    ProviderFactory,
    QueryBudget,
    after_actions,
    check_queries,
    count_failure,
    error_code,
    events_posted,
    measure,
    provider_problems,
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
# Ports


class ReleaseClusterPort(Protocol):
    """The ModelRelease object itself and its events."""

    def read_release(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    def patch_release_status(
        self, namespace: str, name: str, patch: dict[str, Any], resource_version: str | None
    ) -> dict[str, Any]: ...

    def post_release_event(self, release: ReleaseRef, event: Event) -> None: ...

    def post_release_logged(self, release: ReleaseRef, entry: LoggedEvent) -> bool: ...


class ReleaseObjectsPort(Protocol):
    """``adapters.releases.ReleaseObjects``."""

    def list_releases(self, namespace: str) -> list[dict[str, Any]]: ...

    def read_child(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    def ensure_child(
        self,
        release: ReleaseRef,
        name: str,
        spec: Mapping[str, Any],
        *,
        annotations: Mapping[str, str] | None = None,
    ) -> bool: ...

    def read_manifest(self, namespace: str, release: str) -> dict[str, Any] | None: ...

    def write_manifest(
        self, release: ReleaseRef, name: str, content: Mapping[str, Any]
    ) -> bool: ...

    def revoked(
        self, namespace: str, model: str, version: str, scope: str = ""
    ) -> dict[str, Any] | None: ...

    def record_revocation(
        self, namespace: str, record: Mapping[str, Any], scope: str = ""
    ) -> bool: ...


class ServingPort(Protocol):
    """``adapters.serving.InferenceServices``."""

    def read(self, namespace: str, name: str) -> InferenceServiceState | None: ...

    def set_storage_uri(
        self, namespace: str, name: str, uri: str, canary_percent: int | None
    ) -> bool: ...

    def set_canary_percent(self, namespace: str, name: str, percent: int) -> bool: ...

    def remove_canary_percent(self, namespace: str, name: str) -> bool: ...


class GatesPort(Protocol):
    """``adapters.gates.GateEvaluator``."""

    def evaluate(
        self,
        namespace: str,
        spec: ModelReleaseSpec,
        now: datetime,
        required: tuple[str, ...] = (),
    ) -> tuple[GateResult, ...]: ...


AliasStoreFactory = Callable[[ModelReleaseSpec, str], AliasStore]


@dataclass
class ReleasePorts:
    """Everything a ModelRelease pass does I/O through, plus the clock and the metrics."""

    cluster: ReleaseClusterPort
    objects: ReleaseObjectsPort
    serving: ServingPort
    alias_store_for: AliasStoreFactory
    gates: GatesPort
    provider_for: ProviderFactory
    record_key: bytes | None = None
    default_prometheus: str | None = None
    metrics: OperatorMetrics | None = None
    clock: Callable[[], datetime] = utc_now
    #: The operator's cluster policy (its defaults know no registry and no model owner).
    policy: ClusterPolicy = field(default_factory=ClusterPolicy)
    #: Ports for one pass (a read view over the API); None: use these ports as they are.
    for_pass: Callable[[], ReleasePorts] | None = None
    #: Where queries run, within each namespace's share (None: the default worker threads).
    queries: QueryBudget | None = None
    #: The Prometheus addresses a spec may name (None: any, for embedding and tests).
    allowed_prometheus: frozenset[str] | None = None
    #: The web providers a spec may name (None: any, for embedding and tests).
    web_providers: frozenset[str] | None = None
    #: Where posted events go for notifications (None: no notifications).
    notifier: NotifierPort | None = None


# --------------------------------------------------------------------------------------------
# The object, memory and result


@dataclass(frozen=True)
class ReleaseObject(ObjectHeader):
    """The fields of a ModelRelease a pass works with (wire form)."""

    @property
    def ref(self) -> ReleaseRef:
        return ReleaseRef(namespace=self.namespace, name=self.name, uid=self.uid)


def release_subject(obj: ReleaseObject, status: ModelReleaseStatus, ticket: str) -> Subject:
    """The ModelRelease as notifications describe it, with the status of this pass."""
    return Subject(
        kind="ModelRelease",
        plural=MODELRELEASES,
        namespace=obj.namespace,
        name=obj.name,
        uid=obj.uid,
        labels=obj.labels,
        details={
            "model": str(obj.spec.get("model") or ""),
            "version": str(obj.spec.get("version") or ""),
            "stage": status.stage.value if status.stage else "",
            "changeTicket": ticket,
        },
    )


def describe_release_action(action: ReleaseAction) -> str:
    """An action as messages name it."""
    if isinstance(action, EnsureChildRollout):
        return f"update child Rollout {action.name}"
    if isinstance(action, RevertChildRollout):
        what = "the previous template" if action.template is not None else "zero replicas"
        return f"revert child Rollout {action.name} to {what}"
    if isinstance(action, SetPredictorStorageUri):
        return f"set InferenceService {action.name} storageUri to {action.uri}"
    if isinstance(action, SetCanaryTrafficPercent):
        return f"set InferenceService {action.name} canaryTrafficPercent to {action.percent}"
    if isinstance(action, RemoveCanaryTrafficPercent):
        return f"remove InferenceService {action.name} canaryTrafficPercent"
    if isinstance(action, FlipAlias):
        target = action.version if action.version is not None else "(unset)"
        return f"point alias {action.alias} of model {action.model} at version {target}"
    return f"write release manifest {action.name}"


# --------------------------------------------------------------------------------------------
# Observe


def _stage_of(body: Mapping[str, Any]) -> str | None:
    status = body.get("status")
    stage = status.get("stage") if isinstance(status, Mapping) else None
    return stage if isinstance(stage, str) else None


def _phase_of(body: Mapping[str, Any]) -> str | None:
    status = body.get("status")
    phase = status.get("phase") if isinstance(status, Mapping) else None
    return phase if isinstance(phase, str) else None


def _slot_of(body: Mapping[str, Any]) -> tuple[str, str] | None:
    spec = body.get("spec")
    if not isinstance(spec, Mapping):
        return None
    alias = spec.get("alias")
    alias_name = alias.get("name") if isinstance(alias, Mapping) else None
    return str(spec.get("model") or ""), str(alias_name or "production")


def _creation_key(body: Mapping[str, Any]) -> tuple[str, str]:
    meta = body.get("metadata") or {}
    return str(meta.get("creationTimestamp") or ""), str(meta.get("name") or "")


_RUNNING = (Stage.STAGING.value, Stage.APPROVED.value)


def slot_holder(releases: Sequence[Mapping[str, Any]], model: str, alias: str) -> str | None:
    """The release holding the (model, alias) slot among ``releases`` (see the module doc)."""
    same = [r for r in releases if _slot_of(r) == (model, alias)]
    running = sorted((r for r in same if _stage_of(r) in _RUNNING), key=_creation_key)
    if running:
        return _creation_key(running[0])[1]
    waiting = sorted(
        (
            r
            for r in same
            if _stage_of(r) in (None, Stage.CANDIDATE.value)
            and _phase_of(r) != ReleasePhase.DEGRADED.value
        ),
        key=_creation_key,
    )
    return _creation_key(waiting[0])[1] if waiting else None


#: What may differ between a standard change and the release approved before it: the
#: version and where the same bytes (same digest) are read from, and the gates, which every
#: release passes anew. Everything else that decides what runs must be what was approved.
_PRE_APPROVAL_FREE = ("spec.version", "spec.artifact", "spec.gates", "spec.policyDigest")


def _approved_before(
    releases: Sequence[Mapping[str, Any]], name: str, spec: ModelReleaseSpec
) -> bool:
    """Whether another release of the namespace was Approved with the same artifact digest
    and the same everything else that decides what runs (model, serving, alias)."""
    mine = release_content(spec)
    for other in releases:
        meta = other.get("metadata") or {}
        if meta.get("name") == name:
            continue
        artifact = (other.get("spec") or {}).get("artifact") or {}
        if artifact.get("digest") != spec.artifact.digest:
            continue
        history = (other.get("status") or {}).get("history") or []
        if not any(
            isinstance(h, Mapping) and h.get("stage") == Stage.APPROVED.value for h in history
        ):
            continue
        parsed = parse_release_spec(other.get("spec") or {})
        if isinstance(parsed, list):
            continue
        changed = changed_fields(release_content(parsed), mine)
        if all(f in _PRE_APPROVAL_FREE for f in changed):
            return True
    return False


def _revoked_elsewhere(
    releases: Sequence[Mapping[str, Any]], name: str, model: str, version: str
) -> bool:
    for other in releases:
        if (other.get("metadata") or {}).get("name") == name:
            continue
        spec = other.get("spec") or {}
        if (spec.get("model"), spec.get("version")) == (model, version) and _stage_of(
            other
        ) == Stage.REVOKED.value:
            return True
    return False


def child_state(body: Mapping[str, Any] | None) -> ChildRolloutState:
    """The child Rollout as the core reads it."""
    if body is None:
        return ChildRolloutState(exists=False)
    status = body.get("status") or {}
    spec = body.get("spec") or {}
    raw_phase = status.get("phase")
    try:
        phase = Phase(raw_phase) if raw_phase else None
    except ValueError:
        phase = None
    step = status.get("currentStepIndex")
    template = spec.get("template")
    return ChildRolloutState(
        exists=True,
        phase=phase,
        canary_weight=int(status.get("canaryWeight") or 0),
        current_step_index=int(step) if isinstance(step, int) else None,
        stable_revision=status.get("stableRevision"),
        canary_revision=status.get("canaryRevision"),
        rolled_back_revision=status.get("rolledBackRevision"),
        message=str(status.get("message") or ""),
        template=template if isinstance(template, Mapping) else None,
    )


async def _measure(
    obj: ReleaseObject,
    spec: ModelReleaseSpec,
    *,
    status: ModelReleaseStatus | None,
    ports: ReleasePorts,
    now: datetime,
    log: Any,
) -> dict[str, Measurement]:
    due = release_due_metrics(spec, status, now)
    if not due:
        return {}
    if provider_problems(release_metrics(spec), ports.allowed_prometheus, ports.web_providers):
        return {}
    return await measure(
        [d.metric for d in due],
        release_query_context(obj.namespace, spec, status),
        provider_for=ports.provider_for,
        default_prometheus=ports.default_prometheus,
        now=now,
        metrics=ports.metrics,
        log=log,
        budget=ports.queries,
        namespace=obj.namespace,
    )


#: Threads for gate evaluation, apart from the default executor every pass shares: a gate may
#: stream a large artifact for minutes, which must never hold up Rollout passes.
GATE_THREADS = 4
_GATE_POOL: ThreadPoolExecutor | None = None


def _gate_pool() -> ThreadPoolExecutor:
    global _GATE_POOL  # noqa: PLW0603  # one pool per process, created on first use
    if _GATE_POOL is None:
        _GATE_POOL = ThreadPoolExecutor(max_workers=GATE_THREADS, thread_name_prefix="gates")
    return _GATE_POOL


def steady_gates(
    results: Sequence[GateResult], status: ModelReleaseStatus | None
) -> tuple[GateResult, ...]:
    """``results`` with ``checked_at`` kept from the status when a gate's result is the one
    already recorded: ``checkedAt`` is when the current result was first seen, so re-checking
    a gate that still says the same thing (a freeze window looked at again) writes nothing."""
    if status is None:
        return tuple(results)
    out: list[GateResult] = []
    for result in results:
        old = status.gate(result.name)
        same = (
            old is not None
            and old.checked_at is not None
            and old.status is result.status
            and old.message == clip(result.message)
            and old.waiver_expires_at == result.waiver_expires_at
        )
        out.append(replace(result, checked_at=old.checked_at) if same and old else result)
    return tuple(out)


def _read_alias(store: AliasStore, spec: ModelReleaseSpec) -> AliasReading:
    try:
        target = store.get(spec.model, spec.alias.name)
    except AdapterError as exc:
        return AliasReading(error=exc.message)
    if target is None:
        return AliasReading()
    return AliasReading(version=target.version, uri=target.uri, digest=target.digest)


@dataclass(frozen=True)
class _Seen:
    spec: ModelReleaseSpec | None
    status: ModelReleaseStatus | None
    observations: ReleaseObservations
    rules: ReleaseRules
    records: Records | None = None
    #: Override records ignored (bad signature...), reported like the other records.
    rejected_overrides: tuple[str, ...] = ()


async def _check_queries(
    obj: ReleaseObject,
    spec: ModelReleaseSpec,
    status: ModelReleaseStatus | None,
    ports: ReleasePorts,
    *,
    now: datetime,
    log: Any,
) -> QueryCheck | None:
    """The provider's verdict on the canary's queries when they are unchecked."""
    metrics = release_metrics(spec)
    digest = queries_digest(metrics)
    if not check_due(digest, status.queries if status is not None else None, now):
        return None
    if provider_problems(metrics, ports.allowed_prometheus, ports.web_providers):
        return None  # the spec is invalid anyway; nothing is sent to a host it chose
    ref = spec.serving.inference_service_ref
    name = ref.name if ref is not None else child_rollout_name(spec)
    context = sample_context(
        obj.namespace, name, spec.serving.stable_service or "", spec.serving.canary_service or ""
    )
    return await check_queries(
        digest,
        metrics,
        context,
        provider_for=ports.provider_for,
        default_prometheus=ports.default_prometheus,
        log=log,
        budget=ports.queries,
        namespace=obj.namespace,
    )


def ledger_scope(spec: ModelReleaseSpec, namespace: str) -> str:
    """Where a revocation of ``spec``'s version holds: everywhere its model's alias lives in a
    shared registry, else in the release's namespace."""
    mlflow = spec.alias.store.mlflow if spec.alias.store is not None else None
    if mlflow is not None and mlflow.registry:
        return f"registry/{mlflow.registry}"
    return f"namespace/{namespace}"


def release_rules(obj: ReleaseObject, policy: ClusterPolicy) -> ReleaseRules:
    """The cluster policy as it applies to ``obj``."""
    model = obj.spec.get("model")
    return policy.rules_for(obj.namespace, model if isinstance(model, str) else "")


async def _observe(
    obj: ReleaseObject, ports: ReleasePorts, now: datetime, log: Any, memory: Memory
) -> _Seen:
    """Everything ``decide_release`` needs; raises ``AdapterError`` when the cluster cannot be
    read (the alias store, gates and metrics report their failures as observations)."""
    status = parse_status(ModelReleaseStatus, obj.status, log)
    posted = events_posted(memory, obj.uid, status.event_log if status is not None else None)
    rules = release_rules(obj, ports.policy)
    spec, _errors = await validated(
        memory,
        obj.uid,
        obj.generation,
        obj.spec,
        lambda raw: load_release_spec(raw, rules),
        log=log,
    )
    records = read_records(
        obj.annotations,
        obj.uid,
        ports.record_key,
        content=release_content(spec) if spec is not None else None,
        now=now,
        namespace=obj.namespace,
        name=obj.name,
        generate_name=obj.generate_name,
    )
    revoke: RevokeRequest | None = records.revoke
    overrides = read_overrides(
        obj.annotations,
        obj.uid,
        ports.record_key,
        last_seq=status.overrides_seq if status is not None else 0,
    )
    if spec is None:
        return _Seen(
            None,
            status,
            ReleaseObservations(
                name=obj.name,
                generation=obj.generation,
                version_set_by=records.version_set_by,
                revoke=revoke,
                events_posted=posted,
            ),
            rules,
            records,
        )
    store = ports.alias_store_for(spec, obj.namespace)
    ns = obj.namespace

    async def child() -> ChildRolloutState | None:
        if spec.serving.template is None:
            return None
        body = await asyncio.to_thread(ports.objects.read_child, ns, child_rollout_name(spec))
        return child_state(body)

    async def isvc() -> InferenceServiceState | None:
        ref = spec.serving.inference_service_ref
        if ref is None:
            return None
        found = await asyncio.to_thread(ports.serving.read, ns, ref.name)
        return found if found is not None else InferenceServiceState(exists=False)

    loop = asyncio.get_running_loop()
    gates, releases, ledger, alias = await asyncio.gather(
        loop.run_in_executor(
            _gate_pool(), ports.gates.evaluate, ns, spec, now, rules.required_gates
        ),
        asyncio.to_thread(ports.objects.list_releases, ns),
        asyncio.to_thread(
            ports.objects.revoked, ns, spec.model, spec.version, ledger_scope(spec, ns)
        ),
        asyncio.to_thread(_read_alias, store, spec),
    )
    child_seen, isvc_seen, manifest, measurements, query_check = await asyncio.gather(
        child(),
        isvc(),
        asyncio.to_thread(ports.objects.read_manifest, ns, obj.name),
        _measure(obj, spec, status=status, ports=ports, now=now, log=log),
        _check_queries(obj, spec, status, ports, now=now, log=log),
    )
    holder = slot_holder(releases, spec.model, spec.alias.name)
    revoked_before = (
        ledger is not None and ledger.get("release") != obj.name
    ) or _revoked_elsewhere(releases, obj.name, spec.model, spec.version)
    return _Seen(
        spec,
        status,
        ReleaseObservations(
            name=obj.name,
            generation=obj.generation,
            gates=steady_gates(apply_waivers(gates, records.waivers, now), status),
            approvals=records.approvals,
            version_set_by=records.version_set_by,
            digest_previously_approved=_approved_before(releases, obj.name, spec),
            version_revoked_before=revoked_before,
            blocking_release=holder if holder not in (None, obj.name) else None,
            alias=alias,
            child=child_seen,
            inference_service=isvc_seen,
            measurements=measurements,
            revoke=revoke,
            manifest_written=manifest is not None,
            override=release_override(
                in_effect(overrides.overrides, spec.version), name=obj.name, version=spec.version
            ),
            voided_approvals=records.voided,
            overrides_seq=overrides.seq,
            query_check=query_check,
            events_posted=posted,
            reference_errors=tuple(
                provider_problems(
                    release_metrics(spec), ports.allowed_prometheus, ports.web_providers
                )
            ),
        ),
        rules,
        records,
        overrides.rejected,
    )


# --------------------------------------------------------------------------------------------
# Act


def _revert_spec(current: Mapping[str, Any] | None, action: RevertChildRollout) -> dict[str, Any]:
    spec = dict((current or {}).get("spec") or {})
    if action.template is None:
        spec["replicas"] = 0
    else:
        spec["template"] = dict(action.template)
    return spec


def _apply(
    action: ReleaseAction,
    obj: ReleaseObject,
    ports: ReleasePorts,
    spec: ModelReleaseSpec,
    pending_percent: int | None,
) -> bool:
    """Apply one action (in a worker thread); True when it (probably) changed something."""
    ns = obj.namespace
    if isinstance(action, EnsureChildRollout):
        return ports.objects.ensure_child(obj.ref, action.name, action.spec)
    if isinstance(action, RevertChildRollout):
        current = ports.objects.read_child(ns, action.name)
        annotations = None
        if action.template is not None:
            # A stable id: re-asserting the revert on a later pass is the same request. Signed:
            # the webhook lets no one but the operator promote a release's child Rollout.
            request = f"revert-{obj.name}-{obj.uid[:8]}"
            if ports.record_key is not None:
                request = sign_request(
                    RequestKind.PROMOTE_FULL, request, f"{ns}/{action.name}", ports.record_key
                )
            annotations = {PROMOTE_FULL: request}
        return ports.objects.ensure_child(
            obj.ref, action.name, _revert_spec(current, action), annotations=annotations
        )
    if isinstance(action, SetPredictorStorageUri):
        return ports.serving.set_storage_uri(ns, action.name, action.uri, pending_percent)
    if isinstance(action, SetCanaryTrafficPercent):
        return ports.serving.set_canary_percent(ns, action.name, action.percent)
    if isinstance(action, RemoveCanaryTrafficPercent):
        return ports.serving.remove_canary_percent(ns, action.name)
    if isinstance(action, FlipAlias):
        return _flip(ports.alias_store_for(spec, ns), action)
    return ports.objects.write_manifest(obj.ref, action.name, action.content)


def _flip(store: AliasStore, action: FlipAlias) -> bool:
    expected = action.expected_current if action.expected_current is not None else EXPECT_UNSET
    try:
        if action.version is None:
            store.delete(action.model, action.alias, expected=expected)
        else:
            target = AliasTarget(version=action.version, uri=action.uri or "", digest=action.digest)
            store.set(action.model, action.alias, target, expected=expected)
    except AliasConflict:
        # Re-asserted after it already happened (the read-back of this pass predates the
        # write of the last one): nothing to do. Anything else is a real conflict.
        current = store.get(action.model, action.alias)
        if (current.version if current is not None else None) != action.version:
            raise
        return False
    return True


async def _act(
    decision: ReleaseDecision,
    obj: ReleaseObject,
    spec: ModelReleaseSpec | None,
    ports: ReleasePorts,
) -> tuple[bool, ActionFailure[ReleaseAction] | None]:
    if not decision.actions or spec is None:
        return False, None
    actions = list(decision.actions)
    # A canary percent and a storage URI change of the same pass go out in one patch, so the
    # new revision never receives 100% by default.
    percents = {a.name: a.percent for a in actions if isinstance(a, SetCanaryTrafficPercent)}
    uri_names = {a.name for a in actions if isinstance(a, SetPredictorStorageUri)}
    acted = False
    for action in actions:
        if isinstance(action, SetCanaryTrafficPercent) and action.name in uri_names:
            continue
        pending = percents.get(action.name) if isinstance(action, SetPredictorStorageUri) else None
        try:
            acted = await asyncio.to_thread(_apply, action, obj, ports, spec, pending) or acted
        except AdapterError as exc:
            if ports.metrics is not None:
                ports.metrics.api_error(type(action).__name__, error_code(exc))
            return True, ActionFailure(action, exc, describe_release_action(action))
    return acted, None


async def _ledger(
    obj: ReleaseObject,
    spec: ModelReleaseSpec | None,
    decision: ReleaseDecision,
    ports: ReleasePorts,
    log: Any,
) -> None:
    """Records a revocation in the cluster's ledger (idempotent)."""
    revoked = decision.status.revoked
    if spec is None or decision.status.stage is not Stage.REVOKED or revoked is None:
        return
    record = {
        "model": spec.model,
        "version": spec.version,
        "release": obj.name,
        "reason": revoked.reason,
        "user": revoked.user,
        "at": format_time(revoked.at),
    }
    try:
        await asyncio.to_thread(
            ports.objects.record_revocation,
            obj.namespace,
            record,
            ledger_scope(spec, obj.namespace),
        )
    except AdapterError as exc:
        # The release's own status still says Revoked; the ledger is retried on the next pass.
        log.warning("cannot record the revocation in the ledger", error=exc.message)


# --------------------------------------------------------------------------------------------
# The pass


async def reconcile_release(
    namespace: str, name: str, ports: ReleasePorts, memory: Memory
) -> PassResult[ReleaseDecision]:
    """One pass over the ModelRelease ``namespace/name``. Never raises for cluster, registry
    or provider failures: they come back in the result with the time to look again."""
    started = time.monotonic()
    if ports.for_pass is not None:
        ports = ports.for_pass()
    try:
        return await _reconcile(namespace, name, ports, memory)
    finally:
        if ports.metrics is not None:
            ports.metrics.reconcile_duration.observe(time.monotonic() - started)


async def _reconcile(
    namespace: str, name: str, ports: ReleasePorts, memory: Memory
) -> PassResult[ReleaseDecision]:
    log = release_logger(namespace, name, None, None)
    try:
        body = await asyncio.to_thread(ports.cluster.read_release, namespace, name)
    except AdapterError as exc:
        if ports.metrics is not None:
            ports.metrics.api_error("read_release", error_code(exc))
        log.warning("cannot read the ModelRelease", error=exc.message)
        return PassResult(requeue_after=count_failure(memory, exc.retry_after), error=exc.message)
    if body is None:
        return PassResult(requeue_after=None, gone=True)
    obj = ReleaseObject.from_body(body)
    change = obj.spec.get("change")
    ticket = change.get("ticket") if isinstance(change, Mapping) else None
    log = release_logger(namespace, name, obj.spec.get("version"), ticket)
    now = ports.clock()
    try:
        seen = await _observe(obj, ports, now, log, memory)
    except AdapterError as exc:
        if ports.metrics is not None:
            ports.metrics.api_error("observe", error_code(exc))
        log.warning("cannot observe the cluster", error=exc.message)
        return PassResult(requeue_after=count_failure(memory, exc.retry_after), error=exc.message)

    ticket_text = ticket if isinstance(ticket, str) and ticket else "unknown"
    events: list[Event] = []
    rejected = frozenset(seen.records.rejected) if seen.records is not None else frozenset()
    rejected |= frozenset(seen.rejected_overrides)
    for message in sorted(rejected - memory.rejected_records):
        events.append(release_event(MR.RECORD_REJECTED, ticket_text, detail=message))
    memory.rejected_records = rejected

    # Persist first, then act: the status carries what the actions cannot recover once they
    # ran (the template or storage URI that served before this release, the alias's previous
    # version), so it must be stored before anything changes. A conflicting write means
    # somebody else wrote since the read: nothing was done, decide again. Deciding runs in the
    # worker thread of the write: it evaluates the spec's conditions (tenant input).
    def decide_and_write() -> tuple[ReleaseDecision, AdapterError | None, bool]:
        decided = decide_release(
            seen.spec if seen.spec is not None else obj.spec,
            seen.status,
            seen.observations,
            now,
            seen.rules,
        )
        stored = persist(obj, seen.status, decided.status, ports.cluster.patch_release_status)
        return decided, stored.error, stored.changed and stored.error is None

    decision, write_error, status_written = await asyncio.to_thread(decide_and_write)
    if isinstance(write_error, Conflict):
        log.info("status write conflicted; looking again", error=write_error.message)
        return PassResult(requeue_after=CONFLICT_RETRY_SECONDS, decision=decision)
    if isinstance(write_error, NotFound):
        return PassResult(requeue_after=None, gone=True)
    if write_error is not None:
        return PassResult(
            requeue_after=status_write_failed(memory, write_error, ports.metrics, log),
            decision=decision,
            error=write_error.message,
        )
    if status_written and ports.metrics is not None:
        ports.metrics.status_written()

    acted, failure = await _act(decision, obj, seen.spec, ports)
    await _ledger(obj, seen.spec, decision, ports, log)

    requeue, failed = after_actions(
        memory,
        decision.requeue_after,
        acted=acted,
        failure=failure,
        report_retryable=True,
        failed_event=lambda what, error: release_event(
            MR.RELEASE_ACTION_FAILED, ticket_text, action=what, error=error
        ),
        log=log,
    )
    if failed is not None:
        events.append(failed)

    notifier = ports.notifier
    subject = release_subject(obj, decision.status, ticket_text)
    requeue = await post_pass_events(
        requeue,
        uid=obj.uid,
        logged=decision.status.event_log,
        post_entry=lambda entry: ports.cluster.post_release_logged(obj.ref, entry),
        reports=events,
        post_report=lambda event: ports.cluster.post_release_event(obj.ref, event),
        memory=memory,
        metrics=ports.metrics,
        log=log,
        notify=(lambda entry: notifier.offer(subject, entry)) if notifier else None,
    )
    if ports.metrics is not None:
        stage = decision.status.stage
        ports.metrics.observe_release(
            namespace,
            name,
            stage.value if stage else None,
            model=seen.spec.model if seen.spec is not None else "",
            version=seen.spec.version if seen.spec is not None else "",
        )
    log.debug(
        "pass done",
        stage=decision.status.stage.value if decision.status.stage else None,
        phase=decision.status.phase.value if decision.status.phase else None,
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
    "GatesPort",
    "ReleaseClusterPort",
    "ReleaseObject",
    "ReleaseObjectsPort",
    "ReleasePorts",
    "ServingPort",
    "child_state",
    "describe_release_action",
    "reconcile_release",
    "release_subject",
    "slot_holder",
    "steady_gates",
]
