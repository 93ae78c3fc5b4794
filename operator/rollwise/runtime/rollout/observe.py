"""The observe step of a Rollout pass: everything ``decide`` needs, read from the cluster,
the router and the metric providers (:func:`observe`).

The spec is validated once per generation; the analysis templates it references are read
every pass and resolved into its metrics (:mod:`rollwise.core.templates`; the core resolves
them again from the same reads when it decides). An invalid spec, one whose templates do not
resolve, or one naming a provider the operator may not query, is decided without looking at
the cluster. Otherwise the revision
Deployments, the Services, the router's actual weight, the measurements due now and the
provider's verdict on the spec's queries are read side by side.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from rollwise.adapters.traffic.base import RouterContext, TrafficRouter
from rollwise.adapters.traffic.route import RouteReading, read_route
from rollwise.adapters.workloads import deployment_name
from rollwise.core.observations import (
    Measurement,
    Observations,
    RevisionState,
    TemplateKey,
    TemplateRead,
    UpstreamRead,
    requests_from_annotations,
    revision_of,
)
from rollwise.core.overrides import in_effect, read_overrides
from rollwise.core.querycheck import QueryCheck, sample_context
from rollwise.core.rollout.analysis import due_metrics, query_context
from rollwise.core.rollout.approvals import read_approval_records
from rollwise.core.rollout.canary import rollout_metrics
from rollwise.core.rollout.overrides import RolloutOverride, rollout_effect
from rollwise.core.rollout.segments import uses_header_routes, uses_mirror_routes
from rollwise.core.rollout.status import RolloutStatus
from rollwise.core.rollout.watch import watch_due
from rollwise.core.spec import RolloutSpec, TrafficRouting
from rollwise.core.templates import resolve_rollout, rollout_template_keys
from rollwise.core.validation import load_rollout_spec
from rollwise.runtime.measuring import check_spec_queries, measure_due, provider_problems
from rollwise.runtime.passes import (
    RESOLUTION_TIMED_OUT,
    events_posted,
    read_templates,
    resolved,
    validated,
)
from rollwise.runtime.rollout.ports import (
    Ports,
    RolloutObject,
)
from rollwise.runtime.rollout.upstreams import needs_upstreams, read_upstreams
from rollwise.runtime.rollout.webhooks import call_webhooks, webhook_refusals
from rollwise.runtime.skeleton import (
    Memory,
    parse_status,
)


@dataclass(frozen=True)
class Seen:
    spec: RolloutSpec | None
    status: RolloutStatus | None
    observations: Observations
    #: What validating the spec found (``passes.validated``: once per generation).
    spec_errors: tuple[str, ...] = ()
    #: The pass's router (built once, from the status read); None when the pass did not get
    #: as far as the cluster (an invalid spec: nothing acts).
    router: TrafficRouter | None = None


def router_context(
    obj: RolloutObject, spec: RolloutSpec, status: RolloutStatus | None
) -> RouterContext:
    canary = spec.strategy.canary
    stable_rev = status.stable_revision if status is not None else None
    canary_rev = status.canary_revision if status is not None else None
    baseline = status.baseline if status is not None else None
    return RouterContext(
        namespace=obj.namespace,
        rollout=obj.name,
        stable_service=canary.stable_service,
        canary_service=canary.canary_service,
        replicas=spec.replicas,
        stable_deployment=deployment_name(obj.name, stable_rev) if stable_rev else None,
        canary_deployment=deployment_name(obj.name, canary_rev) if canary_rev else None,
        # Named even while no baseline runs: a baseline switched off mid-canary gets its share
        # of the route taken back to stable.
        baseline_service=canary.baseline_service,
        baseline_deployment=deployment_name(obj.name, baseline.revision) if baseline else None,
    )


async def _measure(
    obj: RolloutObject,
    seen: tuple[RolloutSpec, RolloutStatus | None],
    ports: Ports,
    now: datetime,
    log: Any,
    *,
    held: bool = False,
    templates: Mapping[TemplateKey, TemplateRead | None] | None = None,
) -> dict[str, Measurement]:
    spec, status = seen
    # The post-promotion watch's measurements, under their own keys (``name@short``, ...).
    watch = watch_due(spec, status, templates or {}, now)
    return await measure_due(
        ports,
        [d.metric for d in due_metrics(spec, status, now, held=held)] + watch,
        query_context(obj.namespace, obj.name, spec, status),
        now=now,
        log=log,
        namespace=obj.namespace,
        started=status.analysis.started_at
        if status is not None and status.analysis is not None
        else None,
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


def _with_approvals(observations: Observations, obj: RolloutObject, ports: Ports) -> Observations:
    """The signed approval records (approval steps) and who changed the template."""
    records = read_approval_records(obj.annotations, obj.uid, ports.record_key)
    return replace(
        observations,
        approvals=records.approvals,
        template_author=records.template_author,
        name=obj.name,
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
    canary = spec.strategy.canary
    return await check_spec_queries(
        ports,
        rollout_metrics(spec),
        lambda: sample_context(
            obj.namespace, obj.name, canary.stable_service, canary.canary_service
        ),
        status.queries if status is not None else None,
        now=now,
        log=log,
        namespace=obj.namespace,
    )


def route_rejection(namespace: str, routing: TrafficRouting | None) -> str:
    """What the core reports when the router's ``verify`` says the routing object does not
    carry the weight as accepted (``adapters.traffic.route.read_route``)."""
    if routing is not None and routing.gateway_api is not None:
        name = routing.gateway_api.http_route.name
        return (
            f"HTTPRoute {namespace}/{name} is not accepted: a parent Gateway reports its "
            "Accepted or ResolvedRefs condition False"
        )
    if routing is not None and routing.istio is not None:
        name = routing.istio.virtual_service.name
        return f"VirtualService {namespace}/{name} is not reconciled by Istio (Reconciled False)"
    return "the routing object does not report the weight as accepted"


async def observe(
    obj: RolloutObject, ports: Ports, now: datetime, log: Any, memory: Memory
) -> Seen:
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
        return Seen(
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
    templates = await read_templates(ports.templates, obj.namespace, rollout_template_keys(spec))
    declared: RolloutSpec = spec
    resolved_spec, template_errors = await resolved(resolve_rollout, declared, templates, log=log)
    spec = resolved_spec
    if template_errors:
        # A template missing, or not taking the args given: decided (InvalidSpec, from the
        # same observations) without looking at the cluster.
        return Seen(
            declared,
            status,
            _with_override(
                Observations(
                    template_hash=template_hash,
                    generation=obj.generation,
                    requests=requests,
                    events_posted=posted,
                    templates=templates,
                ),
                override,
            ),
            # A resolution that timed out is an error of its own (the core would only resolve
            # again); the others the core finds again from the same reads.
            spec_errors=(
                *spec_errors,
                *(e for e in template_errors if e.startswith(RESOLUTION_TIMED_OUT.split("{")[0])),
            ),
        )
    refused = provider_problems(
        rollout_metrics(spec), ports.allowed_prometheus, ports.web_providers
    ) + webhook_refusals(spec, ports.gate_hooks)
    if refused:
        # A spec naming a Prometheus the operator may not query is invalid: decided without
        # looking at the cluster, and no query goes to a host the spec chose.
        return Seen(
            declared,
            status,
            _with_override(
                Observations(
                    template_hash=template_hash,
                    generation=obj.generation,
                    requests=requests,
                    events_posted=posted,
                    missing_references=tuple(refused),
                    templates=templates,
                ),
                override,
            ),
            spec_errors=tuple(spec_errors),
        )
    canary = spec.strategy.canary
    # The pass's one router: observed here, handed to the actions in ``Seen``.
    router = ports.router_for(canary.traffic_routing, router_context(obj, spec, status))

    baseline_service = canary.baseline_service
    header_routes = uses_header_routes(canary.steps) or bool(status and status.header_routes)
    mirror_routes = uses_mirror_routes(canary.steps) or bool(status and status.mirror_routes)

    def read_cluster() -> tuple[dict[str, RevisionState], tuple[bool, bool, bool], RouteReading]:
        # One worker-thread hop for the four reads, not four: with the watch cache they are
        # memory lookups, and each hop cost more CPU than the read (the queries below, which
        # wait on Prometheus, still run side by side).
        route = read_route(
            router,
            baseline=canary.baseline,
            header_routes=header_routes,
            mirror_routes=mirror_routes,
        )
        exists = ports.workloads.service_exists
        return (
            ports.workloads.revisions(obj.ref),
            (
                exists(obj.namespace, canary.stable_service),
                exists(obj.namespace, canary.canary_service),
                baseline_service is None or exists(obj.namespace, baseline_service),
            ),
            route,
        )

    (
        (revisions, (stable_exists, canary_exists, baseline_exists), route),
        measurements,
        query_check,
        webhook_answers,
    ) = await asyncio.gather(
        asyncio.to_thread(read_cluster),
        _measure(
            obj,
            (spec, status),
            ports,
            now,
            log,
            held=override.hold is not None,
            templates=templates,
        ),
        _check_queries(obj, spec, status=status, ports=ports, now=now, log=log),
        call_webhooks(
            spec,
            status,
            template_hash,
            now,
            ports.gate_hooks,
            namespace=obj.namespace,
            name=obj.name,
            log=log,
            metrics=ports.metrics,
            budget=ports.queries,
        ),
    )
    missing: list[str] = []
    stable_field, canary_field = (
        ("spec.strategy.blueGreen.activeService", "spec.strategy.blueGreen.previewService")
        if spec.strategy.blue_green is not None
        else ("spec.strategy.canary.stableService", "spec.strategy.canary.canaryService")
    )
    if not stable_exists:
        missing.append(f"{stable_field}: Service {obj.namespace}/{canary.stable_service} not found")
    if not canary_exists and canary.canary_service != canary.stable_service:
        missing.append(f"{canary_field}: Service {obj.namespace}/{canary.canary_service} not found")
    if not baseline_exists:
        missing.append(
            f"spec.strategy.canary.baselineService: Service {obj.namespace}/"
            f"{baseline_service} not found"
        )
    if route.problem is not None:
        missing.append(f"spec.strategy.canary.trafficRouting: {route.problem}")
    upstreams: dict[tuple[str, str], UpstreamRead] = {}
    if needs_upstreams(spec, status, template_hash):
        upstreams, refused_upstreams = await read_upstreams(
            ports.cluster, spec, namespace=obj.namespace, name=obj.name
        )
        missing.extend(refused_upstreams)
    return Seen(
        declared,
        status,
        _with_approvals(
            Observations(
                template_hash=template_hash,
                generation=obj.generation,
                revisions=revisions,
                actual_weight=route.weight,
                actual_baseline_weight=route.baseline_weight,
                actual_header_routes=route.header_routes,
                actual_mirror_routes=route.mirror_routes,
                stable_service_exists=stable_exists,
                canary_service_exists=canary_exists,
                baseline_service_exists=baseline_exists,
                measurements=measurements,
                requests=requests,
                missing_references=tuple(missing),
                hold=override.hold,
                override_requests=override.requests,
                override_waiting=override.waiting,
                query_check=query_check,
                route_rejected=(
                    route_rejection(obj.namespace, canary.traffic_routing) if route.rejected else ""
                ),
                events_posted=posted,
                templates=templates,
                upstreams=upstreams,
                webhook_answers=webhook_answers,
            ),
            obj,
            ports,
        ),
        spec_errors=tuple(spec_errors),
        router=router,
    )
