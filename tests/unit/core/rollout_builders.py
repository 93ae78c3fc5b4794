"""Builders shared by the core's tests: specs, observations and a tiny cluster simulator that
applies a decision's actions the way an ideal runtime would (pods ready at once, the router
reporting what it was told)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from rollwise.core.observations import (
    ManualRequest,
    Measurement,
    Observations,
    RequestKind,
    RevisionState,
    revision_of,
)
from rollwise.core.rollout.actions import (
    Decision,
    DeleteRevision,
    EnsureRevision,
    ScaleRevision,
    SetHeaderRoutes,
    SetMirrorRoutes,
    SetWeight,
)
from rollwise.core.rollout.canary import decide
from rollwise.core.rollout.status import RolloutStatus
from rollwise.core.spec import RolloutSpec
from rollwise.core.traffic import HeaderRoute, MirrorRoute, replica_ratio_weight

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def template(image: str = "app:v1") -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }


V1 = template("app:v1")
V2 = template("app:v2")
V3 = template("app:v3")
R1, R2, R3 = revision_of(V1), revision_of(V2), revision_of(V3)


def metric(
    name: str = "error-ratio",
    *,
    success: str | None = "result < 0.05",
    failure: str | None = None,
    threshold: dict[str, float] | None = None,
    count: int = 1,
    interval: str | None = None,
    min_samples: int | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "count": count,
        "provider": {"prometheus": {"query": 'sum(rate(errors{rev="{{canaryRevision}}"}[1m]))'}},
    }
    if success is not None:
        out["successCondition"] = success
    if failure is not None:
        out["failureCondition"] = failure
    if threshold is not None:
        out["thresholdRange"] = threshold
        out.pop("successCondition", None)
    if interval is not None:
        out["interval"] = interval
    if min_samples is not None:
        out["sampleGuard"] = {
            "query": 'sum(increase(requests{rev="{{canaryRevision}}"}[1m]))',
            "minSamples": min_samples,
        }
    return out


def raw_spec(
    *,
    image_template: dict[str, Any] | None = None,
    steps: list[dict[str, Any]] | None = None,
    replicas: int = 4,
    router: bool = True,
    analysis: dict[str, Any] | None = None,
    paused: bool = False,
    scale_down_delay: int = 30,
    deadline: int = 600,
) -> dict[str, Any]:
    canary: dict[str, Any] = {
        "stableService": "web-stable",
        "canaryService": "web-canary",
        "scaleDownDelaySeconds": scale_down_delay,
    }
    if steps is not None:
        canary["steps"] = steps
    if router:
        canary["trafficRouting"] = {"gatewayAPI": {"httpRoute": {"name": "web"}}}
    if analysis is not None:
        canary["analysis"] = analysis
    return {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": "web"}},
        "template": image_template if image_template is not None else V1,
        "strategy": {"canary": canary},
        "progressDeadlineSeconds": deadline,
        "paused": paused,
    }


def spec_of(**kwargs: Any) -> RolloutSpec:
    return RolloutSpec.model_validate(raw_spec(**kwargs))


def ready(replicas: int) -> RevisionState:
    return RevisionState(
        desired_replicas=replicas,
        updated_replicas=replicas,
        ready_replicas=replicas,
        available_replicas=replicas,
    )


def obs(
    template_: dict[str, Any] = V1,
    *,
    generation: int = 1,
    revisions: dict[str, RevisionState] | None = None,
    weight: int | None = 0,
    measurements: dict[str, Measurement] | None = None,
    requests: dict[RequestKind, str] | None = None,
    stable_service: bool = True,
    canary_service: bool = True,
) -> Observations:
    return Observations(
        template_hash=revision_of(template_),
        generation=generation,
        revisions=revisions or {},
        actual_weight=weight,
        stable_service_exists=stable_service,
        canary_service_exists=canary_service,
        measurements=measurements or {},
        requests=tuple(ManualRequest(k, v) for k, v in (requests or {}).items()),
    )


def value(v: float | None, when: datetime = T0) -> Measurement:
    return Measurement(value=v, at=when)


def error(text: str = "connection refused", when: datetime = T0) -> Measurement:
    return Measurement(value=None, at=when, error=text)


def reasons(decision: Decision) -> list[str]:
    return [e.reason.name for e in decision.events]


class Cluster:
    """An ideal cluster: applies actions instantly and reports them back as observations."""

    def __init__(self, *, router: bool = True) -> None:
        self.router = router
        self.revisions: dict[str, RevisionState] = {}
        self.weight = 0
        self.unready: set[str] = set()
        self.header_routes: tuple[HeaderRoute, ...] = ()
        self.mirror_routes: tuple[MirrorRoute, ...] = ()

    def apply(self, decision: Decision) -> None:
        for action in decision.actions:
            if isinstance(action, EnsureRevision | ScaleRevision):
                if isinstance(action, ScaleRevision) and action.revision not in self.revisions:
                    continue
                n = action.replicas
                if action.revision in self.unready:
                    self.revisions[action.revision] = RevisionState(desired_replicas=n)
                else:
                    self.revisions[action.revision] = ready(n)
            elif isinstance(action, DeleteRevision):
                self.revisions.pop(action.revision, None)
            elif isinstance(action, SetHeaderRoutes):
                self.header_routes = action.routes
            elif isinstance(action, SetMirrorRoutes):
                self.mirror_routes = action.routes
            elif isinstance(action, SetWeight):
                self.weight = (
                    action.weight if action.canary_revision != action.stable_revision else 0
                )
        if not self.router:
            self.weight = self._ratio(decision.status)

    def _ratio(self, status: RolloutStatus) -> int:
        canary = status.canary_revision
        stable = status.stable_revision
        if canary is None or stable is None:
            return 0
        c = self.revisions.get(canary)
        s = self.revisions.get(stable)
        return replica_ratio_weight(
            c.available_replicas if c else 0, s.available_replicas if s else 0
        )

    def observe(self, template_: dict[str, Any], **kwargs: Any) -> Observations:
        base = obs(template_, revisions=dict(self.revisions), weight=self.weight)
        base = replace(
            base, actual_header_routes=self.header_routes, actual_mirror_routes=self.mirror_routes
        )
        return replace(base, **kwargs)


def drive(
    spec: RolloutSpec | dict[str, Any],
    status: RolloutStatus | None,
    cluster: Cluster,
    template_: dict[str, Any],
    now: datetime,
    *,
    passes: int = 10,
    **obs_kwargs: Any,
) -> tuple[RolloutStatus | None, list[str], list[Decision]]:
    """Decide and apply repeatedly at the same ``now`` until nothing changes any more."""
    all_reasons: list[str] = []
    decisions: list[Decision] = []
    for _ in range(passes):
        decision = decide(spec, status, cluster.observe(template_, **obs_kwargs), now)
        decisions.append(decision)
        cluster.apply(decision)
        all_reasons.extend(reasons(decision))
        if decision.status == status and not decision.events:
            break
        status = decision.status
    return status, all_reasons, decisions
