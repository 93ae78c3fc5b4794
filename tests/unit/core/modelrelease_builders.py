"""Builders for the ModelRelease core's tests: specs, observations and a small world that
applies a decision's actions the way an ideal runtime would.

The child Rollout of template serving is run by the real Rollout core (``decide`` over the
Rollout tests' ideal cluster), so the release follows a child that behaves exactly like a
Rollout; the KServe InferenceService and the alias store are simulated after their documented
behaviour (a new storage URI makes a new ready revision; canaryTrafficPercent splits traffic
between the latest rolled-out revision and the latest one; removing it rolls the latest out;
0 pins traffic to the previous one; the alias store compares before it sets).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from rollwise.core.modelrelease.actions import (
    EnsureChildRollout,
    FlipAlias,
    ReleaseDecision,
    RemoveCanaryTrafficPercent,
    RevertChildRollout,
    SetCanaryTrafficPercent,
    SetPredictorStorageUri,
    WriteReleaseManifest,
)
from rollwise.core.modelrelease.observations import (
    AliasReading,
    Approval,
    ChildRolloutState,
    GateResult,
    InferenceServiceState,
    ReleaseObservations,
)
from rollwise.core.modelrelease.release import decide_release
from rollwise.core.modelrelease.status import GateStatus, ModelReleaseStatus
from rollwise.core.observations import revision_of
from rollwise.core.rollout.canary import decide
from rollwise.core.rollout.status import RolloutStatus
from rollwise.core.spec_release import ModelReleaseSpec
from tests.unit.core.rollout_builders import Cluster

T0 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)
DIGEST = "sha256:" + "a" * 64
POLICY = "sha256:" + "b" * 64
TICKET = "CHG-4242"
NAME = "fraud-7"
ISVC = "fraud-isvc"
OLD_URI = "s3://models/fraud/6"
NEW_URI = "s3://models/fraud/7"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def server_template(image: str = "model-server:1") -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": "fraud"}},
        "spec": {
            "containers": [
                {
                    "name": "server",
                    "image": image,
                    "env": [{"name": "LOG_LEVEL", "value": "info"}],
                }
            ]
        },
    }


def raw_release(
    *,
    version: str = "7",
    uri: str = NEW_URI,
    backend: str = "template",
    change_type: str = "normal",
    steps: list[dict[str, Any]] | None = None,
    analysis: dict[str, Any] | None = None,
    sbom: bool = False,
    policy: bool = False,
    roles: list[str] | None = None,
    router: bool = True,
) -> dict[str, Any]:
    serving: dict[str, Any]
    if backend == "template":
        serving = {
            "template": server_template(),
            "replicas": 2,
            "stableService": "fraud-stable",
            "canaryService": "fraud-canary",
        }
        if router:
            serving["trafficRouting"] = {"gatewayAPI": {"httpRoute": {"name": "fraud"}}}
    else:
        serving = {"inferenceServiceRef": {"name": ISVC}}
    canary: dict[str, Any] = {}
    if steps is not None:
        canary["steps"] = steps
    if analysis is not None:
        canary["analysis"] = analysis
    raw: dict[str, Any] = {
        "model": "fraud",
        "version": version,
        "artifact": {"uri": uri, "digest": DIGEST},
        "change": {"type": change_type, "ticket": TICKET},
        "serving": serving,
        "canary": canary,
    }
    if sbom:
        raw["gates"] = {"sbom": {"url": "https://sbom.example/fraud-7.json"}}
    if policy:
        raw["policyDigest"] = POLICY
    if roles is not None:
        raw["approvals"] = {"requiredRoles": roles}
    return raw


def release(**kwargs: Any) -> ModelReleaseSpec:
    return ModelReleaseSpec.model_validate(raw_release(**kwargs))


def passed(*names: str, when: datetime = T0) -> tuple[GateResult, ...]:
    return tuple(GateResult(n, GateStatus.PASSED, "ok", checked_at=when) for n in names)


BASE_GATES = passed("artifact-digest", "freeze-window")


def approvals(version: str = "7", when: datetime = T0) -> tuple[Approval, ...]:
    return (
        Approval("security", "alice", when, version),
        Approval("product", "bob", when + timedelta(seconds=1), version),
    )


def events(decision: ReleaseDecision) -> list[str]:
    return [e.reason.name for e in decision.events]


class World:
    """An ideal runtime around one ModelRelease: a child Rollout run by the real Rollout core,
    a simulated KServe InferenceService and alias store."""

    def __init__(self, *, alias_version: str | None = "6") -> None:
        # alias store
        self.alias_version = alias_version
        self.alias_uri: str | None = OLD_URI if alias_version else None
        self.alias_down = False
        self.flips: list[FlipAlias] = []
        # child Rollout
        self.child_spec: dict[str, Any] | None = None
        self.child_status: RolloutStatus | None = None
        self.cluster = Cluster()
        self.now = T0
        # KServe
        self.isvc_exists = True
        self.storage_uri = OLD_URI
        self.canary_percent: int | None = None
        self.revisions = 1
        self.rolled_out = "isvc-predictor-00001"
        self.previous_rolled_out: str | None = None
        self.manifests: list[WriteReleaseManifest] = []
        self.gates: tuple[GateResult, ...] = BASE_GATES

    # ------------------------------------------------------------ child Rollout

    def seed_child(self, template: dict[str, Any]) -> None:
        """A child Rollout already serving ``template`` (the previous release's)."""
        self.child_spec = {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "fraud"}},
            "template": template,
            "strategy": {
                "canary": {
                    "stableService": "fraud-stable",
                    "canaryService": "fraud-canary",
                    "trafficRouting": {"gatewayAPI": {"httpRoute": {"name": "fraud"}}},
                }
            },
        }
        self._run_child(T0)

    def _run_child(self, now: datetime, passes: int = 30) -> None:
        if self.child_spec is None:
            return
        template = self.child_spec["template"]
        for _ in range(passes):
            obs = self.cluster.observe(template)
            d = decide(self.child_spec, self.child_status, obs, now)
            self.cluster.apply(d)
            if d.status == self.child_status and not d.events:
                break
            self.child_status = d.status

    def child(self) -> ChildRolloutState | None:
        if self.child_spec is None or self.child_status is None:
            return None
        s = self.child_status
        return ChildRolloutState(
            phase=s.phase,
            canary_weight=s.canary_weight,
            current_step_index=s.current_step_index,
            stable_revision=s.stable_revision,
            canary_revision=s.canary_revision,
            rolled_back_revision=s.rolled_back_revision,
            message=s.message,
            template=self.child_spec["template"],
        )

    # ------------------------------------------------------------ KServe

    def isvc(self) -> InferenceServiceState:
        latest = f"isvc-predictor-{self.revisions:05d}"
        if self.canary_percent is None or latest == self.rolled_out:
            percent = 100
        else:
            percent = self.canary_percent
        return InferenceServiceState(
            exists=self.isvc_exists,
            storage_uri=self.storage_uri,
            canary_traffic_percent=self.canary_percent,
            latest_created_revision=latest,
            latest_ready_revision=latest,
            latest_rolledout_revision=self.rolled_out,
            previous_rolledout_revision=self.previous_rolled_out,
            latest_percent=percent,
        )

    # ------------------------------------------------------------ apply and observe

    def apply(self, decision: ReleaseDecision, now: datetime) -> None:
        self.now = now
        for action in decision.actions:
            if isinstance(action, EnsureChildRollout):
                self.child_spec = dict(action.spec)
            elif isinstance(action, RevertChildRollout):
                if self.child_spec is not None and action.template is not None:
                    self.child_spec = {**self.child_spec, "template": dict(action.template)}
            elif isinstance(action, SetCanaryTrafficPercent):
                self.canary_percent = action.percent
            elif isinstance(action, SetPredictorStorageUri):
                if action.uri != self.storage_uri:
                    self.storage_uri = action.uri
                    self.revisions += 1
                    if self.canary_percent is None:
                        self._roll_out()
            elif isinstance(action, RemoveCanaryTrafficPercent):
                self.canary_percent = None
                self._roll_out()
            elif isinstance(action, FlipAlias):
                self.flips.append(action)
                if not self.alias_down and action.expected_current == self.alias_version:
                    self.alias_version = action.version
                    self.alias_uri = action.uri
            elif isinstance(action, WriteReleaseManifest):
                self.manifests.append(action)
        self._run_child(now)

    def _roll_out(self) -> None:
        latest = f"isvc-predictor-{self.revisions:05d}"
        if latest != self.rolled_out:
            self.previous_rolled_out = self.rolled_out
            self.rolled_out = latest

    def alias(self) -> AliasReading:
        if self.alias_down:
            return AliasReading(error="registry unreachable: connection refused")
        return AliasReading(version=self.alias_version, uri=self.alias_uri, digest=None)

    def observe(self, **overrides: Any) -> ReleaseObservations:
        base = ReleaseObservations(
            name=NAME,
            generation=1,
            gates=self.gates,
            approvals=(),
            version_set_by="carol",
            alias=self.alias(),
            child=self.child(),
            inference_service=self.isvc(),
            manifest_written=bool(self.manifests),
        )
        return replace(base, **overrides)


def drive_release(
    spec: ModelReleaseSpec | dict[str, Any],
    status: ModelReleaseStatus | None,
    world: World,
    now: datetime,
    *,
    passes: int = 12,
    **overrides: Any,
) -> tuple[ModelReleaseStatus | None, list[str], list[ReleaseDecision]]:
    """Decide and apply repeatedly at the same ``now`` until nothing changes any more."""
    seen: list[str] = []
    decisions: list[ReleaseDecision] = []
    for _ in range(passes):
        decision = decide_release(spec, status, world.observe(**overrides), now)
        decisions.append(decision)
        world.apply(decision, now)
        seen.extend(events(decision))
        if decision.status == status and not decision.events:
            break
        status = decision.status
    return status, seen, decisions


def child_revision_of(template: dict[str, Any]) -> str:
    return revision_of(template)
