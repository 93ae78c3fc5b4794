"""The observe step of a ModelRelease pass: everything ``decide_release`` needs
(:func:`observe`).

The identity records and the override in effect, the gate results (with waivers), the other
releases of the namespace, the alias read back, the child Rollout or the InferenceService,
the release manifest, the measurements due now and the provider's verdict on the canary's
queries, read side by side from worker threads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any

from rollwise.adapters.errors import AdapterError
from rollwise.adapters.registry.base import AliasStore
from rollwise.core.modelrelease.analysis import release_due_metrics, release_query_context
from rollwise.core.modelrelease.governance import Records, apply_waivers, read_records
from rollwise.core.modelrelease.observations import (
    AliasReading,
    ChildRolloutState,
    GateResult,
    InferenceServiceState,
    ReleaseObservations,
    RevokeRequest,
    child_decision,
)
from rollwise.core.modelrelease.overrides import release_override
from rollwise.core.modelrelease.policy import ClusterPolicy, ReleaseRules
from rollwise.core.modelrelease.release import release_metrics
from rollwise.core.modelrelease.spec import (
    child_rollout_name,
    load_release_spec,
    policy_applies,
    release_content,
)
from rollwise.core.modelrelease.status import ModelReleaseStatus
from rollwise.core.modelrelease.watch import WHERE as WATCH_WHERE
from rollwise.core.modelrelease.watch import watch_due, watch_of
from rollwise.core.observations import Measurement, TemplateKey, TemplateRead
from rollwise.core.overrides import in_effect, read_overrides
from rollwise.core.phases import Phase
from rollwise.core.postpromotion import watch_metrics
from rollwise.core.querycheck import QueryCheck, sample_context
from rollwise.core.reasons import clip
from rollwise.core.spec import Metric
from rollwise.core.spec_release import ModelReleaseSpec
from rollwise.core.templates import release_template_keys, resolve_release
from rollwise.runtime.measuring import check_spec_queries, measure_due, provider_problems
from rollwise.runtime.passes import (
    RESOLUTION_TIMED_OUT,
    events_posted,
    read_templates,
    resolved,
    validated,
)
from rollwise.runtime.release.ports import (
    ReleaseObject,
    ReleasePorts,
)
from rollwise.runtime.release.slots import (
    approved_before,
    revoked_elsewhere,
    slot_holder,
)
from rollwise.runtime.skeleton import (
    Memory,
    parse_status,
)


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
        decision=child_decision(status.get("decision")),
    )


def _watch_metrics(
    spec: ModelReleaseSpec, templates: Mapping[TemplateKey, TemplateRead | None]
) -> list[tuple[str, Metric]]:
    """The post-promotion watch's metrics with their spec path (none without a watch)."""
    watch = watch_of(spec)
    if watch is None:
        return []
    metrics, _ = watch_metrics(WATCH_WHERE, watch, templates)
    return [(f"{WATCH_WHERE}.postPromotion.metrics[{i}]", m) for i, m in enumerate(metrics)]


async def _measure(
    obj: ReleaseObject,
    spec: ModelReleaseSpec,
    *,
    status: ModelReleaseStatus | None,
    ports: ReleasePorts,
    now: datetime,
    log: Any,
    templates: Mapping[TemplateKey, TemplateRead | None],
) -> dict[str, Measurement]:
    # The canary's due metrics, then the post-promotion watch's measurements under their own
    # keys (``name@short``, ...).
    due = [d.metric for d in release_due_metrics(spec, status, now)]
    watch = watch_due(spec, status, templates, now)
    if provider_problems(
        [*release_metrics(spec), *_watch_metrics(spec, templates)],
        ports.allowed_prometheus,
        ports.web_providers,
    ):
        return {}
    return await measure_due(
        ports,
        [*due, *watch],
        release_query_context(obj.namespace, spec, status),
        now=now,
        log=log,
        namespace=obj.namespace,
        started=status.serving.analysis.started_at
        if status is not None and status.serving is not None and status.serving.analysis
        else None,
    )


async def _nothing_measured() -> dict[str, Measurement]:
    return {}


async def _no_check() -> QueryCheck | None:
    return None


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
class Seen:
    spec: ModelReleaseSpec | None
    status: ModelReleaseStatus | None
    observations: ReleaseObservations
    rules: ReleaseRules
    records: Records | None = None
    #: Override records ignored (bad signature...), reported like the other records.
    rejected_overrides: tuple[str, ...] = ()
    #: What validating the spec found (``passes.validated``: once per generation).
    spec_errors: tuple[str, ...] = ()


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
    ref = spec.serving.inference_service_ref
    name = ref.name if ref is not None else child_rollout_name(spec)
    return await check_spec_queries(
        ports,
        release_metrics(spec),
        lambda: sample_context(
            obj.namespace,
            name,
            spec.serving.stable_service or "",
            spec.serving.canary_service or "",
        ),
        status.queries if status is not None else None,
        now=now,
        log=log,
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


async def observe(
    obj: ReleaseObject, ports: ReleasePorts, now: datetime, log: Any, memory: Memory
) -> Seen:
    """Everything ``decide_release`` needs; raises ``AdapterError`` when the cluster cannot be
    read (the alias store, gates and metrics report their failures as observations)."""
    status = parse_status(ModelReleaseStatus, obj.status, log)
    posted = events_posted(memory, obj.uid, status.event_log if status is not None else None)
    rules = release_rules(obj, ports.policy)
    spec, spec_errors = await validated(
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
        return Seen(
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
            spec_errors=tuple(spec_errors),
        )
    store = ports.alias_store_for(spec, obj.namespace)
    ns = obj.namespace
    templates = await read_templates(ports.templates, ns, release_template_keys(spec))
    # The canary's metrics with its templates resolved (the core resolves them again from the
    # same reads when it decides; a problem makes the spec invalid there).
    measured_spec, template_errors = await resolved(resolve_release, spec, templates, log=log)

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
        _measure(
            obj, measured_spec, status=status, ports=ports, now=now, log=log, templates=templates
        )
        if not template_errors
        else _nothing_measured(),
        _check_queries(obj, measured_spec, status, ports, now=now, log=log)
        if not template_errors
        else _no_check(),
    )
    gates = apply_waivers(gates, records.waivers, now)
    if policy_applies(spec, rules):
        policies = await loop.run_in_executor(
            _gate_pool(),
            partial(
                ports.gates.evaluate_policies,
                ns,
                obj.name,
                spec,
                status=status,
                gates=gates,
                approvals=records.approvals,
                now=now,
            ),
        )
        gates = (*gates, *policies)
    holder = slot_holder(releases, spec.model, spec.alias.name)
    revoked_before = (
        ledger is not None and ledger.get("release") != obj.name
    ) or revoked_elsewhere(releases, obj.name, spec.model, spec.version)
    return Seen(
        spec,
        status,
        ReleaseObservations(
            name=obj.name,
            generation=obj.generation,
            gates=steady_gates(gates, status),
            approvals=records.approvals,
            version_set_by=records.version_set_by,
            digest_previously_approved=approved_before(releases, obj.name, spec),
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
            reference_errors=(
                *provider_problems(
                    [*release_metrics(measured_spec), *_watch_metrics(measured_spec, templates)],
                    ports.allowed_prometheus,
                    ports.web_providers,
                ),
                # A resolution that timed out (the others the core finds from the same reads).
                *(e for e in template_errors if e.startswith(RESOLUTION_TIMED_OUT.split("{")[0])),
            ),
            templates=templates,
        ),
        rules,
        records,
        overrides.rejected,
        spec_errors=tuple(spec_errors),
    )
