"""Table of ModelRelease transitions: state in (built by driving the real core through an
ideal world), one ``decide_release``, state out (stage, phase, actions, event reasons,
requeue, message); then deciding again with the returned status is quiet."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from rollwise.core.conditions import ConditionStatus
from rollwise.core.modelrelease import reasons as RR
from rollwise.core.modelrelease.actions import (
    EnsureChildRollout,
    FlipAlias,
    ReleaseAction,
    RemoveCanaryTrafficPercent,
    RevertChildRollout,
    SetCanaryTrafficPercent,
    SetPredictorStorageUri,
    WriteReleaseManifest,
)
from rollwise.core.modelrelease.analysis import release_due_metrics, release_query_context
from rollwise.core.modelrelease.observations import (
    Approval,
    ChildRolloutState,
    GateResult,
    ReleaseObservations,
    RevokeRequest,
    child_decision,
)
from rollwise.core.modelrelease.release import decide_release
from rollwise.core.modelrelease.spec import (
    canary_gates,
    child_revision,
    child_rollout_name,
    child_rollout_spec,
    pre_staging_gates,
    promote_gates,
    validate_release,
)
from rollwise.core.modelrelease.status import (
    GateStatus,
    ModelReleaseStatus,
    ReleaseConditionType,
    ReleasePhase,
    Stage,
)
from rollwise.core.observations import Measurement
from rollwise.core.phases import Phase
from rollwise.core.reasons import Reason
from rollwise.core.rollout.reasons import ALL_REASONS
from rollwise.core.spec_release import ModelReleaseSpec
from rollwise.core.validation import load_rollout_spec
from tests.unit.core.modelrelease_builders import (
    BASE_GATES,
    ISVC,
    NEW_URI,
    OLD_URI,
    TICKET,
    World,
    approvals,
    at,
    drive_release,
    events,
    passed,
    raw_release,
    release,
    server_template,
)

CHILD = "fraud-production"
WAIT = 30.0
POLL = 5.0


@dataclass
class Case:
    spec: ModelReleaseSpec | dict[str, Any]
    status: ModelReleaseStatus | None
    obs: ReleaseObservations
    now: datetime
    stage: Stage
    events: list[str]
    phase: ReleasePhase | None = None
    actions: list[type] | None = None
    contains: list[ReleaseAction] = field(default_factory=list)
    absent: list[type] = field(default_factory=list)
    requeue: float | str | None = "any"
    message: str | None = None
    conditions: dict[ReleaseConditionType, ConditionStatus] = field(default_factory=dict)


# ------------------------------------------------------------------ state builders


def candidate(**spec_kw: Any) -> tuple[ModelReleaseStatus, World, ModelReleaseSpec]:
    """A release created and waiting in Candidate (no gate reported yet)."""
    world = World()
    world.seed_child(server_template())
    spec = release(**spec_kw)
    world.gates = passed(
        *pre_staging_gates(spec), *promote_gates(spec), *canary_gates(spec), "freeze-window"
    )
    d = decide_release(spec, None, world.observe(gates=()), at(0))
    assert d.status.stage is Stage.CANDIDATE
    return d.status, world, spec


def staging(
    child_state: ChildRolloutState | None = None, **spec_kw: Any
) -> tuple[ModelReleaseStatus, World, ModelReleaseSpec]:
    """Staging with the child Rollout's canary running (its status frozen mid-canary)."""
    status, world, spec = candidate(**spec_kw)
    d = decide_release(spec, status, world.observe(), at(10))
    assert d.status.stage is Stage.STAGING
    return d.status, world, spec


def running_child(spec: ModelReleaseSpec, weight: int = 25, step: int = 1) -> ChildRolloutState:
    return ChildRolloutState(
        phase=Phase.PROGRESSING,
        canary_weight=weight,
        current_step_index=step,
        stable_revision="0000000000",
        canary_revision=child_revision(spec),
        template=server_template(),
    )


def healthy_child(spec: ModelReleaseSpec) -> ChildRolloutState:
    return ChildRolloutState(
        phase=Phase.HEALTHY, stable_revision=child_revision(spec), template=server_template()
    )


def canary_passed(**spec_kw: Any) -> tuple[ModelReleaseStatus, World, ModelReleaseSpec]:
    """Staging, canary passed, waiting for approvals."""
    status, world, spec = staging(**spec_kw)
    d = decide_release(spec, status, world.observe(child=healthy_child(spec)), at(20))
    assert d.status.serving is not None
    assert d.status.serving.passed
    assert d.status.stage is Stage.STAGING
    return d.status, world, spec


def approved(**spec_kw: Any) -> tuple[ModelReleaseStatus, World, ModelReleaseSpec]:
    """Approved, the flip requested but not applied (the store ignored it)."""
    status, world, spec = canary_passed(**spec_kw)
    d = decide_release(
        spec, status, world.observe(child=healthy_child(spec), approvals=approvals()), at(30)
    )
    assert d.status.stage is Stage.APPROVED
    return d.status, world, spec


def production(**spec_kw: Any) -> tuple[ModelReleaseStatus, World, ModelReleaseSpec]:
    status, world, spec = approved(**spec_kw)
    world.alias_version = "7"
    d = decide_release(
        spec, status, world.observe(child=healthy_child(spec), approvals=approvals()), at(40)
    )
    assert d.status.stage is Stage.PRODUCTION
    return d.status, world, spec


def kserve_staging(
    analysis: dict[str, Any] | None = None,
) -> tuple[ModelReleaseStatus, World, ModelReleaseSpec]:
    """KServe backend at step 1 (5%) with the new revision ready and serving 5%."""
    world = World()
    spec = release(backend="kserve", analysis=analysis)
    status, _, _ = drive_release(spec, None, world, at(0), passes=1)
    status, _, _ = drive_release(spec, status, world, at(0), passes=1)
    assert status is not None
    assert status.stage is Stage.STAGING
    return status, world, spec


ERROR_RATIO = {
    "interval": "1m",
    "metrics": [
        {
            "name": "error-ratio",
            "successCondition": "result < 0.05",
            "provider": {"prometheus": {"query": "sum(rate(errors[1m]))"}},
        }
    ],
}


# ------------------------------------------------------------------ cases: Candidate


def created_waits_for_gates() -> Case:
    world = World()
    return Case(
        spec=release(),
        status=None,
        obs=world.observe(gates=()),
        now=at(0),
        stage=Stage.CANDIDATE,
        events=["ReleaseCreated"],
        phase=ReleasePhase.WAITING,
        actions=[],
        requeue=WAIT,
        message="artifact-digest Pending (no result reported yet)",
        conditions={ReleaseConditionType.GATES_PASSED: ConditionStatus.FALSE},
    )


def candidate_to_staging_when_gates_pass() -> Case:
    status, world, spec = candidate(sbom=True, policy=True)
    gates = passed("artifact-digest", "sbom", "policy-digest", "policy-accept", "freeze-window")
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(gates=gates),
        now=at(10),
        stage=Stage.STAGING,
        events=["Staged"],
        phase=ReleasePhase.PROGRESSING,
        contains=[EnsureChildRollout(CHILD, child_rollout_spec(spec))],
        requeue=POLL,
        conditions={ReleaseConditionType.GATES_PASSED: ConditionStatus.FALSE},
    )


def candidate_blocked_by_pending_sbom() -> Case:
    status, world, spec = candidate(sbom=True)
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(gates=BASE_GATES),
        now=at(10),
        stage=Stage.CANDIDATE,
        events=[],
        phase=ReleasePhase.WAITING,
        actions=[],
        requeue=WAIT,
        message="sbom Pending",
    )


def candidate_blocked_by_failed_gate() -> Case:
    status, world, spec = candidate()
    gates = (
        GateResult(
            "artifact-digest",
            GateStatus.FAILED,
            "digest sha256:ff.. does not match spec.artifact.digest",
        ),
    )
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(gates=gates),
        now=at(10),
        stage=Stage.CANDIDATE,
        events=["GateFailed"],
        phase=ReleasePhase.WAITING,
        actions=[],
        message="artifact-digest Failed (digest sha256:ff.. does not match",
        conditions={ReleaseConditionType.GATES_PASSED: ConditionStatus.FALSE},
    )


def waiver_valid_passes_the_gate() -> Case:
    status, world, spec = candidate(sbom=True)
    sbom = GateResult(
        "sbom",
        GateStatus.WAIVED,
        "waived by dave: CVE triaged",
        waiver_expires_at=at(3600),
        underlying=GateStatus.FAILED,
    )
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(gates=(*BASE_GATES, sbom)),
        now=at(10),
        stage=Stage.STAGING,
        events=["GateWaived", "Staged"],
        requeue=POLL,
    )


def _sbom_waived_until(expires: float, now: float) -> Case:
    status, world, spec = candidate(sbom=True)
    sbom = GateResult(
        "sbom",
        GateStatus.WAIVED,
        "2 critical vulnerabilities",
        waiver_expires_at=at(expires),
        underlying=GateStatus.FAILED,
    )
    blocked = now >= expires
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(gates=(*BASE_GATES, sbom)),
        now=at(now),
        stage=Stage.CANDIDATE if blocked else Stage.STAGING,
        events=["WaiverExpired"] if blocked else ["GateWaived", "Staged"],
        phase=ReleasePhase.WAITING if blocked else None,
        actions=[] if blocked else None,
        message="sbom Failed" if blocked else None,
    )


def waiver_one_second_before_its_expiry_passes() -> Case:
    return _sbom_waived_until(expires=10, now=9)


def waiver_at_its_expiry_instant_blocks_again() -> Case:
    """A waiver holds until its expiry, not at it: ``expiresAt`` is the first instant the gate
    counts again."""
    return _sbom_waived_until(expires=10, now=10)


def waiver_expired_blocks_again() -> Case:
    status, world, spec = candidate(sbom=True)
    sbom = GateResult(
        "sbom",
        GateStatus.WAIVED,
        "2 critical vulnerabilities",
        waiver_expires_at=at(5),
        underlying=GateStatus.FAILED,
    )
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(gates=(*BASE_GATES, sbom)),
        now=at(10),
        stage=Stage.CANDIDATE,
        events=["WaiverExpired"],
        phase=ReleasePhase.WAITING,
        actions=[],
        message="sbom Failed",
    )


def queued_behind_another_release() -> Case:
    status, world, spec = candidate()
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(blocking_release="fraud-6"),
        now=at(10),
        stage=Stage.CANDIDATE,
        events=["Queued"],
        phase=ReleasePhase.QUEUED,
        actions=[],
        requeue=WAIT,
        message="Queued behind fraud-6",
        conditions={ReleaseConditionType.QUEUED: ConditionStatus.TRUE},
    )


def unqueued_proceeds() -> Case:
    status, world, spec = candidate()
    queued = decide_release(spec, status, world.observe(blocking_release="fraud-6"), at(10))
    return Case(
        spec=spec,
        status=queued.status,
        obs=world.observe(),
        now=at(20),
        stage=Stage.STAGING,
        events=["Unqueued", "Staged"],
        conditions={ReleaseConditionType.QUEUED: ConditionStatus.FALSE},
    )


def revoked_version_refused() -> Case:
    world = World()
    return Case(
        spec=release(),
        status=None,
        obs=world.observe(version_revoked_before=True),
        now=at(0),
        stage=Stage.CANDIDATE,
        events=["ReleaseCreated", "VersionRevoked"],
        phase=ReleasePhase.DEGRADED,
        actions=[],
        requeue=None,
        message="was revoked before and cannot be promoted again",
        conditions={
            ReleaseConditionType.INVALID_SPEC: ConditionStatus.TRUE,
            ReleaseConditionType.DEGRADED: ConditionStatus.TRUE,
        },
    )


def invalid_spec_takes_no_action() -> Case:
    raw = raw_release()
    raw["serving"]["inferenceServiceRef"] = {"name": ISVC}
    return Case(
        spec=raw,
        status=None,
        obs=World().observe(),
        now=at(0),
        stage=Stage.CANDIDATE,
        events=["InvalidSpec"],
        phase=ReleasePhase.DEGRADED,
        actions=[],
        requeue=None,
        message="serving needs exactly one of template or inferenceServiceRef",
        conditions={ReleaseConditionType.INVALID_SPEC: ConditionStatus.TRUE},
    )


# ------------------------------------------------------------------ cases: Staging


def staging_canary_running() -> Case:
    status, world, spec = staging()
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(child=running_child(spec)),
        now=at(20),
        stage=Stage.STAGING,
        events=[],
        phase=ReleasePhase.PROGRESSING,
        actions=[EnsureChildRollout],
        requeue=POLL,
        message="canary running in child Rollout fraud-production: step 2/3, weight 25%",
    )


def staging_canary_passed_approvals_missing() -> Case:
    status, world, spec = staging()
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(child=healthy_child(spec)),
        now=at(20),
        stage=Stage.STAGING,
        events=["CanaryPassed"],
        phase=ReleasePhase.WAITING,
        actions=[EnsureChildRollout],
        requeue=WAIT,
        message="waiting for approval by security, product",
    )


def staging_one_person_two_roles_not_enough() -> Case:
    status, world, spec = canary_passed()
    both = (
        Approval("security", "alice", at(1), "7"),
        Approval("product", "alice", at(2), "7"),
    )
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(child=healthy_child(spec), approvals=both),
        now=at(30),
        stage=Stage.STAGING,
        events=[],
        phase=ReleasePhase.WAITING,
        message="product by alice who already approved another role",
    )


def staging_self_approval_and_other_version_ignored() -> Case:
    status, world, spec = canary_passed()
    given = (
        Approval("security", "carol", at(1), "7"),
        Approval("product", "bob", at(2), "6"),
    )
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(child=healthy_child(spec), approvals=given),
        now=at(30),
        stage=Stage.STAGING,
        events=[],
        message="security by carol who set the version",
    )


def staging_to_approved_with_approvals() -> Case:
    status, world, spec = canary_passed()
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(child=healthy_child(spec), approvals=approvals()),
        now=at(30),
        stage=Stage.APPROVED,
        events=["ReleaseApproved"],
        phase=ReleasePhase.PROGRESSING,
        actions=[EnsureChildRollout, WriteReleaseManifest, FlipAlias],
        contains=[FlipAlias("fraud", "production", "7", NEW_URI, release().artifact.digest, "6")],
        requeue=POLL,
    )


def standard_change_with_approved_digest_skips_approvals() -> Case:
    status, world, spec = canary_passed(change_type="standard")
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(child=healthy_child(spec), digest_previously_approved=True),
        now=at(30),
        stage=Stage.APPROVED,
        events=["ReleaseApproved"],
        actions=[EnsureChildRollout, WriteReleaseManifest, FlipAlias],
    )


def standard_change_new_digest_needs_approvals() -> Case:
    status, world, spec = canary_passed(change_type="standard")
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(child=healthy_child(spec)),
        now=at(30),
        stage=Stage.STAGING,
        events=[],
        message="waiting for approval by security, product",
    )


def staging_approvals_but_waiver_expired() -> Case:
    status, world, spec = canary_passed(sbom=True)
    sbom = GateResult(
        "sbom",
        GateStatus.WAIVED,
        "1 critical",
        waiver_expires_at=at(25),
        underlying=GateStatus.FAILED,
    )
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(
            child=healthy_child(spec), approvals=approvals(), gates=(*BASE_GATES, sbom)
        ),
        now=at(30),
        stage=Stage.STAGING,
        events=["WaiverExpired"],
        message="sbom Failed",
    )


def staging_child_rolled_back() -> Case:
    status, world, spec = staging()
    child = ChildRolloutState(
        phase=Phase.DEGRADED,
        stable_revision="0000000000",
        rolled_back_revision=child_revision(spec),
        message="revision x was rolled back: error-ratio = 0.200",
        template=server_template(),
    )
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(child=child),
        now=at(20),
        stage=Stage.ROLLED_BACK,
        events=["ReleaseRolledBack"],
        phase=ReleasePhase.DEGRADED,
        actions=[],
        requeue=None,
        message="error-ratio = 0.200",
        conditions={ReleaseConditionType.DEGRADED: ConditionStatus.TRUE},
    )


# ------------------------------------------------------------------ cases: Approved


def approved_flip_not_read_back_stays() -> Case:
    status, world, spec = approved()
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(child=healthy_child(spec), approvals=approvals()),
        now=at(40),
        stage=Stage.APPROVED,
        events=[],
        actions=[EnsureChildRollout, WriteReleaseManifest, FlipAlias],
        requeue=POLL,
        message="Production once the alias reads back this version",
        conditions={ReleaseConditionType.READY: ConditionStatus.FALSE},
    )


def approved_read_back_goes_to_production() -> Case:
    status, world, spec = approved()
    world.alias_version = "7"
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(child=healthy_child(spec), approvals=approvals(), manifest_written=True),
        now=at(40),
        stage=Stage.PRODUCTION,
        events=["PromotedToProduction"],
        phase=ReleasePhase.HEALTHY,
        actions=[],
        requeue=None,
        conditions={ReleaseConditionType.READY: ConditionStatus.TRUE},
    )


def approved_store_down_flip_retried() -> Case:
    status, world, spec = approved()
    world.alias_down = True
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(child=healthy_child(spec), approvals=approvals()),
        now=at(40),
        stage=Stage.APPROVED,
        events=["AliasFlipPending"],
        contains=[FlipAlias("fraud", "production", "7", NEW_URI, release().artifact.digest, "6")],
        requeue=POLL,
        message="store error: registry unreachable",
    )


def approved_held_by_freeze_window() -> Case:
    status, world, spec = canary_passed()
    freeze = GateResult("freeze-window", GateStatus.FAILED, "window friday-freeze until 18:00")
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(
            child=healthy_child(spec),
            approvals=approvals(),
            gates=(*passed("artifact-digest"), freeze),
        ),
        now=at(30),
        stage=Stage.APPROVED,
        events=["ReleaseApproved", "PromotionFrozen"],
        phase=ReleasePhase.WAITING,
        actions=[EnsureChildRollout, WriteReleaseManifest],
        absent=[FlipAlias],
        requeue=WAIT,
        message="held by freeze window: window friday-freeze until 18:00",
    )


def approved_freeze_window_wakes_at_its_end() -> Case:
    status, world, spec = canary_passed()
    freeze = GateResult(
        "freeze-window",
        GateStatus.FAILED,
        "window friday-freeze until 18:00",
        recheck_at=at(42),
    )
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(
            child=healthy_child(spec),
            approvals=approvals(),
            gates=(*passed("artifact-digest"), freeze),
        ),
        now=at(30),
        stage=Stage.APPROVED,
        events=["ReleaseApproved", "PromotionFrozen"],
        phase=ReleasePhase.WAITING,
        absent=[FlipAlias],
        requeue=12.0,
    )


def emergency_with_executive_passes_freeze() -> Case:
    status, world, spec = canary_passed(change_type="emergency")
    freeze = GateResult("freeze-window", GateStatus.FAILED, "window friday-freeze until 18:00")
    exec_ = (*approvals(), Approval("executive", "erin", at(3), "7"))
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(
            child=healthy_child(spec),
            approvals=exec_,
            gates=(*passed("artifact-digest"), freeze),
        ),
        now=at(30),
        stage=Stage.APPROVED,
        events=["ReleaseApproved", "FreezeBypassed"],
        actions=[EnsureChildRollout, WriteReleaseManifest, FlipAlias],
    )


def emergency_without_executive_is_held() -> Case:
    status, world, spec = canary_passed(change_type="emergency")
    freeze = GateResult("freeze-window", GateStatus.FAILED, "window friday-freeze until 18:00")
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(
            child=healthy_child(spec),
            approvals=approvals(),
            gates=(*passed("artifact-digest"), freeze),
        ),
        now=at(30),
        stage=Stage.APPROVED,
        events=["ReleaseApproved", "PromotionFrozen"],
        absent=[FlipAlias],
    )


def normal_change_with_executive_held_by_freeze() -> Case:
    """Only an emergency change may pass a freeze window: an executive approval does not open
    one for a normal change (no flip, no FreezeBypassed)."""
    status, world, spec = canary_passed(change_type="normal")
    freeze = GateResult("freeze-window", GateStatus.FAILED, "window friday-freeze until 18:00")
    exec_ = (*approvals(), Approval("executive", "erin", at(3), "7"))
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(
            child=healthy_child(spec),
            approvals=exec_,
            gates=(*passed("artifact-digest"), freeze),
        ),
        now=at(30),
        stage=Stage.APPROVED,
        events=["ReleaseApproved", "PromotionFrozen"],
        phase=ReleasePhase.WAITING,
        actions=[EnsureChildRollout, WriteReleaseManifest],
        absent=[FlipAlias],
        requeue=WAIT,
        message="held by freeze window: window friday-freeze until 18:00",
    )


def emergency_executive_who_set_the_version_is_held() -> Case:
    """Four eyes hold for the executive too: the person who set the version cannot let their
    own emergency change pass a freeze window."""
    status, world, spec = canary_passed(change_type="emergency")
    freeze = GateResult("freeze-window", GateStatus.FAILED, "window friday-freeze until 18:00")
    exec_ = (*approvals(), Approval("executive", "carol", at(3), "7"))
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(
            child=healthy_child(spec),
            approvals=exec_,
            gates=(*passed("artifact-digest"), freeze),
            version_set_by="carol",
        ),
        now=at(30),
        stage=Stage.APPROVED,
        events=["ReleaseApproved", "PromotionFrozen"],
        phase=ReleasePhase.WAITING,
        absent=[FlipAlias],
        message="held by freeze window",
    )


def freeze_gate_not_reported_holds() -> Case:
    status, world, spec = canary_passed()
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(
            child=healthy_child(spec), approvals=approvals(), gates=passed("artifact-digest")
        ),
        now=at(30),
        stage=Stage.APPROVED,
        events=["ReleaseApproved"],
        absent=[FlipAlias],
        message="waiting for the freeze-window gate",
    )


# ------------------------------------------------------------------ cases: revoke


def _revoke(now: float = 50) -> RevokeRequest:
    return RevokeRequest("r1", "bias found in audit", "dave", at(now))


def revoke_candidate() -> Case:
    status, world, spec = candidate()
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(revoke=_revoke()),
        now=at(50),
        stage=Stage.REVOKED,
        events=["ReleaseRevoked"],
        phase=ReleasePhase.DEGRADED,
        actions=[],
        requeue=None,
    )


def revoke_staging_reverts_child() -> Case:
    status, world, spec = staging()
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(child=running_child(spec), revoke=_revoke()),
        now=at(50),
        stage=Stage.REVOKED,
        events=["ReleaseRevoked"],
        actions=[RevertChildRollout],
        absent=[FlipAlias],
    )


def revoke_approved_flip_never_happened() -> Case:
    status, world, spec = approved()
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(child=healthy_child(spec), revoke=_revoke()),
        now=at(50),
        stage=Stage.REVOKED,
        events=["ReleaseRevoked"],
        actions=[RevertChildRollout],
        requeue=None,
        message="version 7 revoked by dave: bias found in audit",
    )


def revoke_production_flips_alias_back() -> Case:
    status, world, spec = production()
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(child=healthy_child(spec), revoke=_revoke()),
        now=at(50),
        stage=Stage.REVOKED,
        events=["ReleaseRevoked"],
        actions=[RevertChildRollout, FlipAlias],
        contains=[FlipAlias("fraud", "production", "6", OLD_URI, None, "7")],
        requeue=POLL,
        message="restoring alias production to 6",
    )


def revoked_alias_read_back_restored() -> Case:
    status, world, spec = production()
    d = decide_release(spec, status, world.observe(revoke=_revoke()), at(50))
    world.alias_version = "6"
    return Case(
        spec=spec,
        status=d.status,
        obs=world.observe(revoke=_revoke()),
        now=at(55),
        stage=Stage.REVOKED,
        events=["AliasRestored"],
        actions=[RevertChildRollout],
        requeue=None,
    )


# ------------------------------------------------------------------ cases: KServe


def kserve_first_step_sets_percent_then_uri() -> Case:
    world = World()
    spec = release(backend="kserve")
    status = decide_release(spec, None, world.observe(gates=()), at(0)).status
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(),
        now=at(5),
        stage=Stage.STAGING,
        events=["Staged"],
        actions=[SetCanaryTrafficPercent, SetPredictorStorageUri],
        contains=[SetCanaryTrafficPercent(ISVC, 5), SetPredictorStorageUri(ISVC, NEW_URI)],
        requeue=POLL,
    )


def _with_canary_gate(world: World, status: GateStatus, **kw: Any) -> tuple[GateResult, ...]:
    """The world's gates with ``policy-canary`` reported as ``status``."""
    others = tuple(g for g in world.gates if g.name != "policy-canary")
    denial = "policy bundle ops/policy (sha256:aaaa) denies canary: error ratio above 2% at 25%"
    message = denial if status is GateStatus.FAILED else "ok"
    return (*others, GateResult("policy-canary", status, message, checked_at=at(40), **kw))


def policy_canary_denial_rolls_the_canary_back() -> Case:
    status, world, spec = staging(policy=True)
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(
            child=running_child(spec), gates=_with_canary_gate(world, GateStatus.FAILED)
        ),
        now=at(40),
        stage=Stage.ROLLED_BACK,
        events=["GateFailed", "ReleaseRolledBack"],
        actions=[RevertChildRollout],
        absent=[FlipAlias],
        message="policy-canary: policy bundle ops/policy (sha256:aaaa) denies canary: error ratio",
    )


def policy_canary_denial_pins_a_kserve_canary_at_zero() -> Case:
    world = World()
    spec = release(backend="kserve", policy=True)
    world.gates = passed(
        *pre_staging_gates(spec), *promote_gates(spec), *canary_gates(spec), "freeze-window"
    )
    status, _, _ = drive_release(spec, None, world, at(0), passes=2)
    assert status is not None
    assert status.stage is Stage.STAGING
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(gates=_with_canary_gate(world, GateStatus.FAILED)),
        now=at(40),
        stage=Stage.ROLLED_BACK,
        events=["GateFailed", "ReleaseRolledBack"],
        actions=[SetCanaryTrafficPercent],
        contains=[SetCanaryTrafficPercent(ISVC, 0)],
    )


def policy_canary_denial_rolls_a_passed_canary_back() -> Case:
    status, world, spec = canary_passed(policy=True)
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(
            child=healthy_child(spec),
            approvals=approvals(),
            gates=_with_canary_gate(world, GateStatus.FAILED),
        ),
        now=at(40),
        stage=Stage.ROLLED_BACK,
        events=["GateFailed", "ReleaseRolledBack"],
        actions=[RevertChildRollout],
        absent=[FlipAlias],
        message="policy-canary: policy bundle ops/policy (sha256:aaaa) denies canary",
    )


def policy_canary_pending_holds_a_passed_canary() -> Case:
    status, world, spec = staging(policy=True)
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(
            child=healthy_child(spec),
            approvals=approvals(),
            gates=_with_canary_gate(world, GateStatus.PENDING),
        ),
        now=at(40),
        stage=Stage.STAGING,
        events=["CanaryPassed"],
        absent=[FlipAlias],
        message="canary passed; waiting for policy-canary Pending",
    )


def kserve_analysis_failure_rolls_back() -> Case:
    status, world, spec = kserve_staging(analysis=ERROR_RATIO)
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(measurements={"error-ratio": Measurement(0.3, at(60))}),
        now=at(60),
        stage=Stage.ROLLED_BACK,
        events=["ReleaseRolledBack"],
        actions=[SetCanaryTrafficPercent],
        contains=[SetCanaryTrafficPercent(ISVC, 0)],
        message="error-ratio = 0.300",
    )


def kserve_inconclusive_holds() -> Case:
    status, world, spec = kserve_staging(analysis=ERROR_RATIO)
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(measurements={"error-ratio": Measurement(None, at(60))}),
        now=at(60),
        stage=Stage.STAGING,
        events=[],
        phase=ReleasePhase.WAITING,
        contains=[SetCanaryTrafficPercent(ISVC, 5)],
        message="analysis inconclusive",
    )


GUARDED_ERROR_RATIO = {
    "interval": "1m",
    "metrics": [
        {
            **ERROR_RATIO["metrics"][0],  # type: ignore[index]
            "sampleGuard": {"query": "sum(increase(requests[1m]))", "minSamples": 100},
        }
    ],
}


def kserve_too_few_samples_holds() -> Case:
    """The canary's error ratio reads 0.000 over 3 requests: no evidence, so no pass."""
    status, world, spec = kserve_staging(analysis=GUARDED_ERROR_RATIO)
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(measurements={"error-ratio": Measurement(0.0, at(60), samples=3.0)}),
        now=at(60),
        stage=Stage.STAGING,
        events=[],
        phase=ReleasePhase.WAITING,
        contains=[SetCanaryTrafficPercent(ISVC, 5)],
        message="analysis inconclusive",
    )


CASES: list[Callable[[], Case]] = [
    created_waits_for_gates,
    candidate_to_staging_when_gates_pass,
    candidate_blocked_by_pending_sbom,
    candidate_blocked_by_failed_gate,
    waiver_valid_passes_the_gate,
    waiver_expired_blocks_again,
    waiver_one_second_before_its_expiry_passes,
    waiver_at_its_expiry_instant_blocks_again,
    queued_behind_another_release,
    unqueued_proceeds,
    revoked_version_refused,
    invalid_spec_takes_no_action,
    staging_canary_running,
    staging_canary_passed_approvals_missing,
    staging_one_person_two_roles_not_enough,
    staging_self_approval_and_other_version_ignored,
    staging_to_approved_with_approvals,
    standard_change_with_approved_digest_skips_approvals,
    standard_change_new_digest_needs_approvals,
    staging_approvals_but_waiver_expired,
    staging_child_rolled_back,
    approved_flip_not_read_back_stays,
    approved_read_back_goes_to_production,
    approved_store_down_flip_retried,
    approved_held_by_freeze_window,
    approved_freeze_window_wakes_at_its_end,
    emergency_with_executive_passes_freeze,
    emergency_without_executive_is_held,
    normal_change_with_executive_held_by_freeze,
    emergency_executive_who_set_the_version_is_held,
    freeze_gate_not_reported_holds,
    revoke_candidate,
    revoke_staging_reverts_child,
    revoke_approved_flip_never_happened,
    revoke_production_flips_alias_back,
    revoked_alias_read_back_restored,
    kserve_first_step_sets_percent_then_uri,
    kserve_analysis_failure_rolls_back,
    kserve_inconclusive_holds,
    kserve_too_few_samples_holds,
    policy_canary_denial_rolls_the_canary_back,
    policy_canary_denial_pins_a_kserve_canary_at_zero,
    policy_canary_pending_holds_a_passed_canary,
    policy_canary_denial_rolls_a_passed_canary_back,
]
IDS = [pytest.param(c, id=c.__name__.replace("_", "-")) for c in CASES]


def _check(case: Case, status: ModelReleaseStatus, decision: Any) -> None:
    assert status.stage is case.stage, status.message
    # The decision's own events are checked by the tests of status.decision.
    shown = [e for e in events(decision) if e != RR.DECISION_CHANGED.name]
    assert shown == case.events, [e.message for e in decision.events]
    if case.phase is not None:
        assert status.phase is case.phase, status.message
    if case.actions is not None:
        assert [type(a) for a in decision.actions] == case.actions
    for action in case.contains:
        assert action in decision.actions
    for kind in case.absent:
        assert not any(isinstance(a, kind) for a in decision.actions)
    if case.requeue != "any":
        assert decision.requeue_after == case.requeue
    if case.message is not None:
        assert case.message in status.message
    for type_, value in case.conditions.items():
        cond = status.condition(type_)
        assert cond is not None, type_
        assert cond.status is value, (type_, cond)
    assert status.observed_generation == case.obs.generation
    for event in decision.events:
        assert f"[change {TICKET}]" in event.message
    # Every value a message template names was there: no message says "None".
    texts = [e.message for e in decision.events] + [status.message]
    texts += [c.message for c in status.conditions]
    for text in texts:
        assert "None" not in text, text


@pytest.mark.parametrize("make", IDS)
def test_transition(make: Callable[[], Case]) -> None:
    case = make()
    decision = decide_release(case.spec, case.status, case.obs, case.now)
    _check(case, decision.status, decision)


@pytest.mark.parametrize("make", IDS)
def test_deciding_again_is_quiet(make: Callable[[], Case]) -> None:
    case = make()
    first = decide_release(case.spec, case.status, case.obs, case.now)
    second = decide_release(case.spec, first.status, case.obs, case.now)
    assert second.status == first.status
    assert second.events == ()
    assert second.actions == first.actions
    assert second.requeue_after == first.requeue_after


@pytest.mark.parametrize("make", IDS)
def test_every_transition_is_in_history(make: Callable[[], Case]) -> None:
    case = make()
    before = case.status.history if case.status is not None else []
    decision = decide_release(case.spec, case.status, case.obs, case.now)
    added = decision.status.history[len(before) :]
    transitions = [e for e in decision.events if e.reason.name in {h.reason for h in added}]
    assert [h.message for h in added] == [e.message for e in transitions]
    if added:
        assert added[-1].stage is decision.status.stage
        assert all(TICKET in h.message for h in added)


# ------------------------------------------------------------------ focused tests


def test_history_is_bounded_to_fifty_entries() -> None:
    status, world, spec = candidate()
    entry = status.history[0]
    full = status.model_copy(update={"history": [entry] * 50})
    d = decide_release(spec, full, world.observe(), at(10))
    assert d.status.stage is Stage.STAGING
    assert len(d.status.history) == 50
    assert d.status.history[-1].stage is Stage.STAGING
    assert d.status.history[-1].from_stage is Stage.CANDIDATE


def test_history_records_who_revoked() -> None:
    status, world, spec = production()
    d = decide_release(spec, status, world.observe(revoke=_revoke()), at(50))
    last = d.status.history[-1]
    assert (last.from_stage, last.stage, last.user, last.reason) == (
        Stage.PRODUCTION,
        Stage.REVOKED,
        "dave",
        "ReleaseRevoked",
    )
    assert d.status.revoked is not None
    assert d.status.revoked.reason == "bias found in audit"
    assert d.events[0].type.value == "Warning"


def test_revoked_is_terminal_even_when_gates_and_approvals_pass() -> None:
    status, world, spec = candidate()
    revoked = decide_release(spec, status, world.observe(revoke=_revoke()), at(50)).status
    d = decide_release(spec, revoked, world.observe(approvals=approvals()), at(60))
    assert d.status.stage is Stage.REVOKED
    assert d.actions == ()


def test_gates_status_lists_every_gate_with_waiver_expiry() -> None:
    status, world, spec = candidate(sbom=True, policy=True)
    sbom = GateResult(
        "sbom", GateStatus.WAIVED, "waived", at(1), waiver_expires_at=at(999), underlying=None
    )
    d = decide_release(spec, status, world.observe(gates=(*BASE_GATES, sbom)), at(10))
    wire = d.status.to_wire()["gates"]
    assert isinstance(wire, list)
    assert [g["name"] for g in wire] == [
        "artifact-digest",
        "sbom",
        "policy-digest",
        "policy-accept",
        "approvals",
        "policy-promote",
        "policy-canary",
        "freeze-window",
    ]
    by_name = {g["name"]: g for g in wire}
    assert by_name["sbom"]["status"] == "Waived"
    assert by_name["sbom"]["waiverExpiresAt"] == "2026-03-02T09:16:39Z"
    assert by_name["policy-digest"]["status"] == "Pending"
    assert d.status.stage is Stage.CANDIDATE
    assert d.requeue_after == WAIT


def test_waiver_expiry_wakes_the_release() -> None:
    status, world, spec = candidate(sbom=True)
    sbom = GateResult(
        "sbom", GateStatus.WAIVED, "w", waiver_expires_at=at(12), underlying=GateStatus.FAILED
    )
    d = decide_release(spec, status, world.observe(gates=(*BASE_GATES, sbom)), at(10))
    assert d.status.stage is Stage.STAGING
    assert d.requeue_after == 2.0


def test_manifest_holds_identities_ticket_and_rollback_target() -> None:
    status, world, spec = canary_passed(policy=True)
    gates = passed(
        "artifact-digest",
        "policy-digest",
        "policy-accept",
        "policy-promote",
        "policy-canary",
        "freeze-window",
    )
    d = decide_release(
        spec,
        status,
        world.observe(child=healthy_child(spec), approvals=approvals(), gates=gates),
        at(30),
    )
    manifest = next(a for a in d.actions if isinstance(a, WriteReleaseManifest))
    assert manifest.name == "fraud-7-manifest"
    content = manifest.content
    assert content["model"] == "fraud"
    assert content["version"] == "7"
    assert content["artifact_digest"] == spec.artifact.digest
    assert content["policy_digest"] == spec.policy_digest
    assert content["policy_decisions"] == {
        "policy-accept": {"status": "Passed", "message": "ok"},
        "policy-promote": {"status": "Passed", "message": "ok"},
        "policy-canary": {"status": "Passed", "message": "ok"},
    }
    assert content["change"] == {"type": "normal", "ticket": TICKET}
    assert content["rollback_target"] == {"alias": "production", "version": "6"}
    assert content["approvals"] == [
        {"role": "security", "user": "alice", "at": "2026-03-02T09:00:00Z"},
        {"role": "product", "user": "bob", "at": "2026-03-02T09:00:01Z"},
    ]
    assert {g["name"]: g["status"] for g in content["gates"]} == {
        "artifact-digest": "Passed",
        "policy-digest": "Passed",
        "policy-accept": "Passed",
        "approvals": "Passed",
        "policy-promote": "Passed",
        "policy-canary": "Passed",
        "freeze-window": "Passed",
    }
    assert content["canary"]["steps"] == [{"setWeight": 5}, {"setWeight": 25}, {"setWeight": 100}]
    assert content["approved_at"] == "2026-03-02T09:00:30Z"
    assert d.status.approvals[0].user == "alice"


def test_manifest_not_rewritten_once_written() -> None:
    status, world, spec = approved()
    d = decide_release(
        spec, status, world.observe(child=healthy_child(spec), manifest_written=True), at(40)
    )
    assert not any(isinstance(a, WriteReleaseManifest) for a in d.actions)


def test_emergency_change_warns_once_at_creation() -> None:
    spec = release(change_type="emergency")
    world = World()
    first = decide_release(spec, None, world.observe(gates=()), at(0))
    assert events(first) == ["ReleaseCreated", "EmergencyChange"]
    assert first.events[1].type.value == "Warning"
    again = decide_release(spec, first.status, world.observe(gates=()), at(5))
    assert events(again) == []


def test_flip_failure_then_success_reaches_production() -> None:
    status, world, spec = approved()
    world.alias_down = True
    obs_kw = {"child": healthy_child(spec), "approvals": approvals()}
    down = decide_release(spec, status, world.observe(**obs_kw), at(40))
    world.apply(down, at(40))
    assert down.status.stage is Stage.APPROVED
    world.alias_down = False
    up, seen, _ = drive_release(spec, down.status, world, at(50), **obs_kw)
    assert up is not None
    assert up.stage is Stage.PRODUCTION
    assert seen == ["PromotedToProduction"]
    assert world.alias_version == "7"
    assert up.alias is not None
    assert (up.alias.current_version, up.alias.previous_version) == ("7", "6")


def test_alias_moved_by_someone_else_never_shows_production() -> None:
    status, world, spec = approved()
    world.alias_version = "5"
    d = decide_release(
        spec, status, world.observe(child=healthy_child(spec), approvals=approvals()), at(40)
    )
    assert d.status.stage is Stage.APPROVED
    flip = next(a for a in d.actions if isinstance(a, FlipAlias))
    assert flip.expected_current == "5"


def test_policy_regression_in_production_warns_and_keeps_serving() -> None:
    status, world, spec = production(policy=True)
    gates = (
        *BASE_GATES,
        GateResult("policy-digest", GateStatus.FAILED, "cluster policy is sha256:cc.."),
    )
    d = decide_release(spec, status, world.observe(gates=gates), at(60))
    assert d.status.stage is Stage.PRODUCTION
    assert events(d) == ["GateRegressed"]
    cond = d.status.condition(ReleaseConditionType.GATES_PASSED)
    assert cond is not None
    assert cond.status is ConditionStatus.FALSE
    assert "policy-digest Failed" in cond.message


# ------------------------------------------------------------------ child Rollout spec


def test_child_rollout_spec_injects_model_env_into_every_container() -> None:
    raw = raw_release()
    raw["serving"]["template"]["spec"]["containers"].append(
        {
            "name": "sidecar",
            "image": "proxy:1",
            "env": [
                {"name": "MODEL_VERSION", "value": "stale"},
                {"name": "KEEP", "value": "1"},
            ],
        }
    )
    spec = ModelReleaseSpec.model_validate(raw)
    child = child_rollout_spec(spec)
    containers = child["template"]["spec"]["containers"]
    assert containers[0]["env"] == [
        {"name": "LOG_LEVEL", "value": "info"},
        {"name": "MODEL_NAME", "value": "fraud"},
        {"name": "MODEL_VERSION", "value": "7"},
        {"name": "MODEL_URI", "value": NEW_URI},
        {"name": "MODEL_DIGEST", "value": spec.artifact.digest},
    ]
    assert containers[1]["env"] == [
        {"name": "MODEL_VERSION", "value": "7"},
        {"name": "KEEP", "value": "1"},
        {"name": "MODEL_NAME", "value": "fraud"},
        {"name": "MODEL_URI", "value": NEW_URI},
        {"name": "MODEL_DIGEST", "value": spec.artifact.digest},
    ]
    # the spec's own template is untouched
    assert spec.serving.template is not None
    assert spec.serving.template["spec"]["containers"][1]["env"][0]["value"] == "stale"


def test_child_rollout_spec_is_a_valid_rollout() -> None:
    spec = release(
        steps=[{"setWeight": 10}, {"pause": {"duration": "1m"}}, {"setWeight": 100}],
        analysis=ERROR_RATIO,
    )
    child = child_rollout_spec(spec)
    rollout, errors = load_rollout_spec(child)
    assert errors == []
    assert rollout is not None
    canary = rollout.strategy.canary
    assert [s.set_weight for s in canary.steps] == [10, None, 100]
    assert (canary.stable_service, canary.canary_service) == ("fraud-stable", "fraud-canary")
    assert canary.traffic_routing is not None
    assert canary.traffic_routing.gateway_api is not None
    assert canary.analysis is not None
    assert canary.analysis.metrics[0].name == "error-ratio"
    assert rollout.replicas == 2
    assert rollout.selector.match_labels == {"app": "fraud"}


@pytest.mark.parametrize(
    ("model", "alias", "expected"),
    [
        pytest.param("fraud", "production", "fraud-production", id="plain"),
        pytest.param("Fraud_Model", "prod", "fraud-model-prod-", id="sanitized-gets-hash"),
    ],
)
def test_child_rollout_name(model: str, alias: str, expected: str) -> None:
    raw = raw_release()
    raw["model"] = model
    raw["alias"] = {"name": alias}
    name = child_rollout_name(ModelReleaseSpec.model_validate(raw))
    assert name.startswith(expected)
    assert len(name) <= 63
    assert name == name.lower()


# ------------------------------------------------------------------ end to end in the world


def test_template_backend_end_to_end_with_the_real_rollout_core() -> None:
    world = World()
    world.seed_child(server_template())
    old_stable = world.child_status.stable_revision if world.child_status else None
    spec = release()
    status, seen, _ = drive_release(spec, None, world, at(0))
    assert status is not None
    assert status.stage is Stage.STAGING
    assert "waiting for approval" in status.message
    status, seen2, _ = drive_release(spec, status, world, at(10), approvals=approvals())
    assert status is not None
    assert status.stage is Stage.PRODUCTION
    assert seen + seen2 == [
        "ReleaseCreated",
        "Staged",
        "CanaryPassed",
        "ReleaseApproved",
        "PromotedToProduction",
    ]
    assert world.child_status is not None
    assert world.child_status.stable_revision == child_revision(spec) != old_stable
    assert world.alias_version == "7"
    assert [h.stage for h in status.history] == [
        Stage.CANDIDATE,
        Stage.STAGING,
        Stage.APPROVED,
        Stage.PRODUCTION,
    ]
    # Revoke: the child goes back to the previous template, the alias back to 6.
    status, seen3, _ = drive_release(spec, status, world, at(20), revoke=_revoke(20))
    assert status is not None
    assert status.stage is Stage.REVOKED
    assert seen3 == ["ReleaseRevoked", "AliasRestored"]
    assert world.alias_version == "6"
    assert world.child_status.stable_revision == old_stable


def test_kserve_steps_5_25_100_then_removes_canary_percent() -> None:
    world = World()
    spec = release(backend="kserve")
    status, seen, decisions = drive_release(spec, None, world, at(0), approvals=approvals())
    assert status is not None
    assert status.stage is Stage.PRODUCTION
    percents = [
        a.percent for d in decisions for a in d.actions if isinstance(a, SetCanaryTrafficPercent)
    ]
    assert sorted(set(percents)) == [5, 25, 100]
    assert percents == sorted(percents)
    removed = [
        i
        for i, d in enumerate(decisions)
        if any(isinstance(a, RemoveCanaryTrafficPercent) for a in d.actions)
    ]
    last_set = max(
        i
        for i, d in enumerate(decisions)
        if any(isinstance(a, SetCanaryTrafficPercent) for a in d.actions)
    )
    assert removed
    assert removed[0] > last_set
    assert world.canary_percent is None
    assert world.storage_uri == NEW_URI
    assert seen.count("CanaryStep") == 3
    assert world.alias_version == "7"
    messages = [d.status.message for d in decisions]
    assert (
        "all canary steps done: waiting for KServe to roll revision isvc-predictor-00002 of "
        f"{ISVC} out to 100%"
    ) in messages
    passed_events = [
        e.message for d in decisions for e in d.events if e.reason.name == "CanaryPassed"
    ]
    assert passed_events == [
        f"canary of version 7 passed: InferenceService {ISVC} serves revision "
        f"isvc-predictor-00002 at 100% [change {TICKET}]"
    ]
    assert status.serving is not None
    assert (status.serving.passed, status.serving.weight) == (True, 100)


def test_kserve_canary_passed_quotes_the_last_analysis() -> None:
    status, world, spec = kserve_staging(analysis=ERROR_RATIO)
    seen: list[str] = []
    for minute in range(1, 8):
        now = at(60 * minute)
        status, _, decisions = drive_release(
            spec,
            status,
            world,
            now,
            approvals=approvals(),
            measurements={"error-ratio": Measurement(0.01, now)},
        )
        assert status is not None
        seen += [e.message for d in decisions for e in d.events if e.reason.name == "CanaryPassed"]
        if seen:
            break
    assert seen == [
        f"canary of version 7 passed: InferenceService {ISVC} serves revision "
        f"isvc-predictor-00002 at 100% (last analysis: error-ratio 0.010) [change {TICKET}]"
    ]


def test_kserve_rollback_pins_traffic_to_previous_revision() -> None:
    status, world, spec = kserve_staging(analysis=ERROR_RATIO)
    d = decide_release(
        spec, status, world.observe(measurements={"error-ratio": Measurement(0.3, at(60))}), at(60)
    )
    world.apply(d, at(60))
    assert d.status.stage is Stage.ROLLED_BACK
    assert world.canary_percent == 0
    assert world.alias_version == "6"
    assert world.rolled_out == "isvc-predictor-00001"
    later = decide_release(spec, d.status, world.observe(), at(120))
    assert later.actions == (SetCanaryTrafficPercent(ISVC, 0),)
    assert later.events == ()


def test_kserve_revoke_after_promotion_restores_previous_storage_uri() -> None:
    world = World()
    spec = release(backend="kserve")
    status, _, _ = drive_release(spec, None, world, at(0), approvals=approvals())
    assert status is not None
    assert status.stage is Stage.PRODUCTION
    status, seen, _ = drive_release(spec, status, world, at(20), revoke=_revoke(20))
    assert status is not None
    assert status.stage is Stage.REVOKED
    assert world.storage_uri == OLD_URI
    assert world.canary_percent is None
    assert world.alias_version == "6"
    assert seen == ["ReleaseRevoked", "AliasRestored"]


def test_kserve_missing_inference_service_waits() -> None:
    world = World()
    world.isvc_exists = False
    spec = release(backend="kserve")
    status, _, _ = drive_release(spec, None, world, at(0))
    assert status is not None
    assert status.stage is Stage.STAGING
    assert "waiting for InferenceService fraud-isvc" in status.message


def test_first_release_without_previous_alias_removes_alias_on_revoke() -> None:
    world = World(alias_version=None)
    world.seed_child(server_template())
    spec = release()
    status, _, _ = drive_release(spec, None, world, at(0), approvals=approvals())
    assert status is not None
    assert status.stage is Stage.PRODUCTION
    assert status.alias is not None
    assert status.alias.previous_version is None
    status, seen, decisions = drive_release(spec, status, world, at(20), revoke=_revoke(20))
    flips = [a for d in decisions for a in d.actions if isinstance(a, FlipAlias)]
    assert flips[0] == FlipAlias("fraud", "production", None, None, None, "7")
    assert world.alias_version is None
    assert "AliasRestored" in seen


def test_alias_unread_never_reaches_production() -> None:
    status, world, spec = approved()
    world.alias_version = "7"
    d = decide_release(
        spec, status, replace(world.observe(child=healthy_child(spec)), alias=None), at(40)
    )
    assert d.status.stage is Stage.APPROVED


def test_spec_corrected_after_invalid() -> None:
    raw = raw_release()
    raw["serving"]["inferenceServiceRef"] = {"name": ISVC}
    world = World()
    bad = decide_release(raw, None, world.observe(), at(0))
    good = decide_release(raw_release(), bad.status, world.observe(gates=()), at(5))
    assert events(good)[0] == "SpecCorrected"
    cond = good.status.condition(ReleaseConditionType.INVALID_SPEC)
    assert cond is not None
    assert cond.status is ConditionStatus.FALSE


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        pytest.param(
            lambda r: r["serving"].pop("canaryService"),
            "template serving needs stableService and canaryService",
            id="services-missing",
        ),
        pytest.param(
            lambda r: r["serving"]["template"].pop("metadata"),
            "needs metadata.labels",
            id="labels-missing",
        ),
        pytest.param(
            lambda r: r["canary"].update(steps=[{"setWeight": 50}]),
            "the last setWeight step must set weight 100",
            id="last-weight",
        ),
        pytest.param(
            lambda r: r.update(gates={"sbom": {}}),
            "gates.sbom needs exactly one of configMapKeyRef or url",
            id="sbom-source",
        ),
        pytest.param(
            lambda r: r.update(gates={"freezeWindows": [{"name": "f", "schedule": "0 18 * * 5"}]}),
            "a freeze window needs either schedule and duration, or start and end",
            id="freeze-shape",
        ),
        pytest.param(
            lambda r: r.update(
                serving={"inferenceServiceRef": {"name": ISVC}},
                canary={"steps": [{"pause": {}}, {"setWeight": 100}]},
            ),
            "a pause step of a KServe canary needs a duration",
            id="kserve-indefinite-pause",
        ),
        pytest.param(
            lambda r: r.update(model=""),
            "spec.model",
            id="shape",
        ),
    ],
)
def test_invalid_specs(mutate: Callable[[dict[str, Any]], Any], message: str) -> None:
    raw = raw_release()
    mutate(raw)
    d = decide_release(raw, None, World().observe(), at(0))
    assert d.actions == ()
    assert message in d.status.message
    assert d.status.phase is ReleasePhase.DEGRADED


def test_gate_pending_when_adapter_reports_nothing_never_passes() -> None:
    status, world, spec = candidate(sbom=True, policy=True)
    d = decide_release(
        spec, status, world.observe(gates=passed("artifact-digest")), at(10) + timedelta(days=30)
    )
    assert d.status.stage is Stage.CANDIDATE
    assert [g.status for g in d.status.gates[:3]] == [
        GateStatus.PASSED,
        GateStatus.PENDING,
        GateStatus.PENDING,
    ]


def test_flip_retries_stop_when_a_freeze_window_opens() -> None:
    status, world, spec = approved()
    freeze = GateResult("freeze-window", GateStatus.FAILED, "window friday-freeze until 18:00")
    d = decide_release(
        spec,
        status,
        world.observe(
            child=healthy_child(spec),
            approvals=approvals(),
            gates=(*passed("artifact-digest"), freeze),
        ),
        at(40),
    )
    assert d.status.stage is Stage.APPROVED
    assert not any(isinstance(a, FlipAlias) for a in d.actions)
    assert events(d) == ["PromotionFrozen"]


def test_kserve_analysis_is_measured_when_due_and_advances_on_pass() -> None:
    status, world, spec = kserve_staging(analysis=ERROR_RATIO)
    assert status.serving is not None
    assert status.serving.revision == "isvc-predictor-00002"
    assert release_due_metrics(spec, status, at(30)) == []
    due = release_due_metrics(spec, status, at(60))
    assert [d.metric.name for d in due] == ["error-ratio"]
    context = release_query_context("ml", spec, status)
    assert context["name"] == ISVC
    assert context["canaryRevision"] == "isvc-predictor-00002"
    assert context["stableRevision"] == "isvc-predictor-00001"
    d = decide_release(
        spec, status, world.observe(measurements={"error-ratio": Measurement(0.01, at(60))}), at(60)
    )
    assert [e for e in events(d) if e != RR.DECISION_CHANGED.name] == ["CanaryStep"]
    assert d.status.serving is not None
    assert (d.status.serving.step_index, d.status.serving.weight) == (1, 25)
    assert d.actions[0] == SetCanaryTrafficPercent(ISVC, 25)
    run = d.status.serving.analysis
    assert run is not None
    metric = run.metric("error-ratio")
    assert metric is not None
    assert metric.successful == 1


def test_kserve_pause_step_waits_for_its_duration() -> None:
    world = World()
    spec = release(
        backend="kserve",
        steps=[{"setWeight": 10}, {"pause": {"duration": "2m"}}, {"setWeight": 100}],
    )
    status, _, _ = drive_release(spec, None, world, at(0))
    assert status is not None
    assert status.serving is not None
    assert status.serving.step_index == 1
    assert "paused, 2m left" in status.message
    d = decide_release(spec, status, world.observe(), at(60))
    assert d.requeue_after == 60.0
    status, seen, _ = drive_release(spec, status, world, at(120), approvals=approvals())
    assert status is not None
    assert status.stage is Stage.PRODUCTION
    assert seen[0] == "CanaryStep"


def test_release_reasons_are_distinct_documented_and_all_listed() -> None:
    defined = [v for v in vars(RR).values() if isinstance(v, Reason)]
    names = [r.name for r in RR.ALL_RELEASE_REASONS]
    assert len(names) == len(set(names))
    assert set(defined) == set(RR.ALL_RELEASE_REASONS)
    assert all(r.doc and r.template for r in RR.ALL_RELEASE_REASONS)
    shared = {r.name for r in ALL_REASONS} & set(names)
    # Only the spec-level reasons, a failed change to the cluster and the post-promotion
    # watch mean the same thing on both kinds.
    assert shared == {
        "InvalidSpec",
        "SpecCorrected",
        "ActionFailed",
        "DecisionChanged",
        "PostPromotionWatchStarted",
        "RegressionDetected",
        "RegressionConfirmed",
        "RegressionCleared",
        "RegressionRollback",
        "RegressionRollbackUnavailable",
        "PostPromotionPassed",
    }


# ------------------------------------------------------------------ first release: no baseline


def first_release(**kwargs: Any) -> tuple[ModelReleaseStatus, World, ModelReleaseSpec]:
    """A first release through a new child Rollout (nothing served before it), in Staging
    with the child serving it at 100%."""
    world = World(alias_version=None)
    spec = release(**kwargs)
    status, _, _ = drive_release(spec, None, world, at(0))
    assert status is not None
    return status, world, spec


def test_a_first_release_runs_its_analysis_on_the_new_version_alone_before_approval() -> None:
    status, world, spec = first_release(analysis=ERROR_RATIO)
    assert status.stage is Stage.STAGING
    assert status.serving is not None
    assert status.serving.solo
    assert status.serving.weight == 100
    reasons = [h.reason for h in status.history]
    assert "Staged" in reasons
    assert not status.serving.passed, "no CanaryPassed before the analysis ran"
    due = release_due_metrics(spec, status, at(60))
    assert [d.metric.name for d in due] == ["error-ratio"]
    context = release_query_context("ml", spec, status)
    assert context["name"] == child_rollout_name(spec)
    assert context["namespace"] == "ml"
    assert context["canaryRevision"] == context["stableRevision"] == child_revision(spec)
    # Approvals are there, yet nothing is Approved until the analysis passed.
    waiting = decide_release(spec, status, world.observe(approvals=approvals()), at(30))
    assert waiting.status.stage is Stage.STAGING
    # The default steps (5%, 25%, 100%) each run the background analysis, here on the new
    # version at 100%: three measurements, one interval apart.
    seen: list[str] = []
    for minute in (1, 2, 3):
        now = at(60 * minute)
        status, more, _ = drive_release(
            spec,
            status,
            world,
            now,
            approvals=approvals(),
            measurements={"error-ratio": Measurement(0.01, now)},
        )
        assert status is not None
        assert status.serving is not None
        assert status.serving.weight == 100, "alone, the new version serves 100% at every step"
        seen += more
    assert seen.count("CanaryStep") == 3
    assert "CanaryPassed" in seen
    assert status.stage in (Stage.APPROVED, Stage.PRODUCTION)
    assert status.serving is not None
    assert status.serving.passed


def test_the_first_release_says_there_is_nothing_to_compare_with() -> None:
    world = World(alias_version=None)
    spec = release(analysis=ERROR_RATIO)
    _, seen, decisions = drive_release(spec, None, world, at(0))
    assert "CanaryWithoutBaseline" in seen
    assert seen.index("Staged") < seen.index("CanaryWithoutBaseline")
    message = next(
        e.message for d in decisions for e in d.events if e.reason.name == "CanaryWithoutBaseline"
    )
    assert "nothing to compare" in message
    assert "CanaryPassed" not in seen


def test_a_first_release_that_fails_alone_is_rolled_back_and_scaled_to_zero() -> None:
    status, world, spec = first_release(analysis=ERROR_RATIO)
    d = decide_release(
        spec, status, world.observe(measurements={"error-ratio": Measurement(0.3, at(60))}), at(60)
    )
    assert d.status.stage is Stage.ROLLED_BACK
    assert RevertChildRollout(child_rollout_name(spec), None) in d.actions
    assert world.alias_version is None


def test_a_first_release_without_analysis_passes_at_once_and_says_why() -> None:
    world = World(alias_version=None)
    spec = release()
    _, _, decisions = drive_release(spec, None, world, at(0))
    passed_events = [
        e.message for d in decisions for e in d.events if e.reason.name == "CanaryPassed"
    ]
    assert len(passed_events) == 1
    assert "nothing to compare with" in passed_events[0]


def test_a_later_release_through_an_existing_child_is_a_real_canary() -> None:
    world = World()
    world.seed_child(server_template())
    spec = release(analysis=ERROR_RATIO)
    status, seen, _ = drive_release(spec, None, world, at(0))
    assert status is not None
    assert status.serving is not None
    assert not status.serving.solo
    assert "CanaryWithoutBaseline" not in seen


def _errors(count: int) -> tuple[str, ...]:
    return tuple(f"error {i}" for i in range(1, count + 1))


@pytest.mark.parametrize(
    ("count", "shown"),
    [
        pytest.param(1, "error 1", id="one"),
        pytest.param(10, "; ".join(_errors(10)), id="ten-all-shown"),
        pytest.param(11, "; ".join((*_errors(10), "... and 1 more")), id="eleven-one-more"),
        pytest.param(13, "; ".join((*_errors(10), "... and 3 more")), id="thirteen-three-more"),
    ],
)
def test_an_invalid_spec_shows_at_most_ten_errors(count: int, shown: str) -> None:
    spec = release()
    obs = replace(World().observe(), reference_errors=_errors(count), generation=3)
    d = decide_release(spec, None, obs, at(0))
    assert d.status.message == f"invalid spec: {shown}"
    assert [e.message for e in d.events] == [f"invalid spec: {shown} [change {TICKET}]"]
    assert d.status.observed_generation == 3
    for type_ in (
        ReleaseConditionType.READY,
        ReleaseConditionType.DEGRADED,
        ReleaseConditionType.INVALID_SPEC,
    ):
        cond = d.status.condition(type_)
        assert cond is not None
        assert (cond.reason, cond.message, cond.observed_generation) == (
            "InvalidSpec",
            f"invalid spec: {shown}",
            3,
        )


def test_the_query_context_of_a_release_not_yet_serving() -> None:
    assert release_query_context("ml", release(), None) == {
        "namespace": "ml",
        "name": "",
        "stableRevision": "",
        "canaryRevision": "",
        "baselineRevision": "",
        "stableService": "fraud-stable",
        "canaryService": "fraud-canary",
    }


@pytest.mark.parametrize(
    ("change", "ticket"),
    [
        pytest.param({"type": "normal", "ticket": "CHG-1"}, "CHG-1", id="ticket-read-raw"),
        pytest.param({"type": "normal", "ticket": ""}, "unknown", id="empty-ticket"),
        pytest.param({"type": "normal", "ticket": 7}, "unknown", id="ticket-not-a-string"),
        pytest.param({"type": "normal"}, "unknown", id="no-ticket"),
        pytest.param("CHG-1", "unknown", id="change-not-a-mapping"),
        pytest.param(None, "unknown", id="no-change"),
    ],
)
def test_an_invalid_spec_names_the_ticket_it_can_read(change: Any, ticket: str) -> None:
    raw = raw_release()
    raw["model"] = ""  # invalid whatever the change says
    if change is None:
        raw.pop("change")
    else:
        raw["change"] = change
    d = decide_release(raw, None, World().observe(), at(0))
    [event] = d.events
    assert event.message.endswith(f" [change {ticket}]"), event.message


def test_a_spec_validated_by_the_caller_is_not_validated_again() -> None:
    status, world, spec = candidate()
    obs = world.observe()
    assert decide_release(spec, status, obs, at(5), spec_errors=()) == decide_release(
        spec, status, obs, at(5)
    )
    refused = decide_release(spec, status, obs, at(5), spec_errors=["spec.version: refused"])
    assert refused.actions == ()
    invalid = refused.status.condition(ReleaseConditionType.INVALID_SPEC)
    assert invalid is not None
    assert invalid.status is ConditionStatus.TRUE
    assert "spec.version: refused" in invalid.message


def test_kserve_canary_records_the_decision_that_rolled_it_back() -> None:
    status, world, spec = kserve_staging(analysis=ERROR_RATIO)
    d = decide_release(
        spec, status, world.observe(measurements={"error-ratio": Measurement(0.3, at(60))}), at(60)
    )
    assert d.status.stage is Stage.ROLLED_BACK
    decision = d.status.decision
    assert decision is not None
    assert (decision.action.value, decision.recommended.value) == ("rollback", "rollback")
    assert decision.reasons[0].code == "ThresholdFailed"
    assert [e.reason.name for e in d.events].count("DecisionChanged") == 1
    later = decide_release(spec, d.status, world.observe(), at(120))
    assert later.status.decision == decision


def test_advisory_mode_is_refused_for_a_kserve_canary() -> None:
    spec = release(backend="kserve")
    raw = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    raw["canary"]["decisionMode"] = "advisory"
    errors = validate_release(ModelReleaseSpec.model_validate(raw))
    assert errors == [
        "spec.canary.decisionMode: advisory mode needs template serving "
        "(a KServe canary takes no promote request)"
    ]


def test_advisory_mode_reaches_the_child_rollout() -> None:
    spec = release()
    assert "decisionMode" not in child_rollout_spec(spec)["strategy"]["canary"]
    raw = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    raw["canary"]["decisionMode"] = "advisory"
    advisory = ModelReleaseSpec.model_validate(raw)
    assert validate_release(advisory) == []
    canary = child_rollout_spec(advisory)["strategy"]["canary"]
    assert canary["decisionMode"] == "advisory"
    loaded, errors = load_rollout_spec(child_rollout_spec(advisory))
    assert errors == []
    assert loaded is not None
    assert loaded.strategy.canary.decision_mode.value == "advisory"


# ------------------------------------------------------------------ the child Rollout's decision


def _child_decision(action: str = "hold", code: str = "AnalysisPending") -> dict[str, Any]:
    """A child Rollout's ``status.decision`` as it reads on the wire."""
    return {
        "action": action,
        "recommended": action,
        "mode": "auto",
        "confidence": "low",
        "message": f"{action}: the child's step",
        "reasons": [{"code": code, "severity": "info", "message": "the child's reason"}],
        "requiredActions": [],
        "decidedAt": "2026-01-01T00:00:05Z",
    }


def test_a_template_release_mirrors_its_child_rollouts_decision_without_an_event() -> None:
    status, world, spec = staging()
    raw = _child_decision()
    child = replace(running_child(spec), decision=child_decision(raw))
    d = decide_release(spec, status, world.observe(child=child), at(20))
    assert d.status.decision is not None
    assert d.status.decision.model_dump(mode="json", by_alias=True, exclude_none=True) == raw
    # The child Rollout posted and counted it: the release posts no DecisionChanged of its own.
    assert RR.DECISION_CHANGED.name not in events(d)
    again = decide_release(spec, d.status, world.observe(child=child), at(25))
    assert again.status == d.status
    changed = replace(child, decision=child_decision(_child_decision("expand", "ThresholdsPassed")))
    later = decide_release(spec, again.status, world.observe(child=changed), at(30))
    assert later.status.decision == changed.decision
    assert RR.DECISION_CHANGED.name not in events(later)


@pytest.mark.parametrize("ended", ["promoted", "rolled-back"])
def test_the_mirrored_decision_stays_after_the_childs_canary_ended(ended: str) -> None:
    status, world, spec = staging()
    running = replace(running_child(spec), decision=child_decision(_child_decision()))
    d = decide_release(spec, status, world.observe(child=running), at(20))
    if ended == "promoted":
        last = child_decision(_child_decision("expand", "ThresholdsPassed"))
        child = replace(healthy_child(spec), decision=last)
    else:
        last = child_decision(_child_decision("rollback", "ThresholdFailed"))
        child = ChildRolloutState(
            phase=Phase.DEGRADED,
            stable_revision="0000000000",
            rolled_back_revision=child_revision(spec),
            template=server_template(),
            decision=last,
        )
    ended_pass = decide_release(spec, d.status, world.observe(child=child), at(30))
    assert ended_pass.status.decision == last
    # Later passes (the child's decision gone or not) keep the last one, for the record.
    after = decide_release(
        spec, ended_pass.status, world.observe(child=replace(child, decision=None)), at(40)
    )
    assert after.status.decision == last


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param({"action": "jump", "decidedAt": "2026-01-01T00:00:05Z"}, id="bad-action"),
        pytest.param({**_child_decision(), "decidedAt": "yesterday"}, id="bad-time"),
        pytest.param({"action": "hold"}, id="fields-missing"),
        pytest.param("hold", id="not-a-mapping"),
        pytest.param([], id="a-list"),
        pytest.param({}, id="empty"),
        pytest.param(None, id="none"),
    ],
)
def test_an_unreadable_child_decision_is_ignored(raw: Any) -> None:
    assert child_decision(raw) is None
    status, world, spec = staging()
    kept = child_decision(_child_decision())
    d = decide_release(
        spec, status, world.observe(child=replace(running_child(spec), decision=kept)), at(20)
    )
    unreadable = replace(running_child(spec), decision=child_decision(raw))
    later = decide_release(spec, d.status, world.observe(child=unreadable), at(30))
    assert later.status.decision == kept
    assert later.status.stage is Stage.STAGING


def test_a_child_decision_before_the_child_picks_up_the_revision_is_not_mirrored() -> None:
    status, world, spec = staging()
    old = ChildRolloutState(
        phase=Phase.HEALTHY,
        stable_revision="0000000000",
        template=server_template(),
        decision=child_decision(_child_decision("expand", "ThresholdsPassed")),
    )
    d = decide_release(spec, status, world.observe(child=old), at(20))
    assert d.status.decision is None


def test_a_kserve_canary_decides_for_itself_whatever_a_child_says() -> None:
    status, world, spec = kserve_staging(analysis=ERROR_RATIO)
    stray = replace(running_child(spec), decision=child_decision(_child_decision()))
    d = decide_release(
        spec,
        status,
        world.observe(child=stray, measurements={"error-ratio": Measurement(0.3, at(60))}),
        at(60),
    )
    decision = d.status.decision
    assert decision is not None
    assert decision.reasons[0].code == "ThresholdFailed"
    assert events(d).count(RR.DECISION_CHANGED.name) == 1


def test_a_release_that_ends_is_not_woken_for_the_stage_it_left() -> None:
    """A waiver expiring in a second asked the pass to wake then; the canary rolled back in the
    same pass, so the release has ended: no wake, as on every later pass of it."""
    status, world, spec = staging()
    waived = GateResult(
        "artifact-digest",
        GateStatus.WAIVED,
        "w",
        waiver_expires_at=at(41),
        underlying=GateStatus.FAILED,
    )
    rolled_back = ChildRolloutState(
        phase=Phase.DEGRADED,
        stable_revision="old",
        rolled_back_revision=child_revision(spec),
        template=server_template(),
    )
    gates = (*[g for g in world.gates if g.name != "artifact-digest"], waived)
    obs = world.observe(child=rolled_back, gates=gates)
    first = decide_release(spec, status, obs, at(40))
    assert first.status.stage is Stage.ROLLED_BACK
    assert first.requeue_after is None
    again = decide_release(spec, first.status, obs, at(40))
    assert again.requeue_after is None
