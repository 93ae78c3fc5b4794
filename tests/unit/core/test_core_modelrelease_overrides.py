"""ModelRelease transitions under overrides (hold, rollback, promote past failed gates), in
the table shape of test_core_modelrelease: state in, one ``decide_release``, state out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from rollwise.core.modelrelease.actions import EnsureChildRollout, FlipAlias, RevertChildRollout
from rollwise.core.modelrelease.observations import GateResult
from rollwise.core.modelrelease.overrides import ReleaseOverride, release_override
from rollwise.core.modelrelease.release import decide_release
from rollwise.core.modelrelease.status import GateStatus, ReleasePhase, Stage
from rollwise.core.overrides import Override, OverrideDecision
from tests.unit.core.modelrelease_builders import approvals, at
from tests.unit.core.test_core_modelrelease import (
    Case,
    _check,
    approved,
    candidate,
    healthy_child,
    production,
    running_child,
    staging,
)

HINT = "kubectl rollwise override modelrelease/fraud-7 --confirm o1"


def _override(decision: str, confirmed_by: str | None = None) -> ReleaseOverride:
    return ReleaseOverride(
        id="o1",
        decision=decision,
        user="alice",
        reason="scanner false positive",
        confirmed_by=confirmed_by,
        confirm_hint=HINT,
    )


FAILED_SBOM = GateResult("sbom", GateStatus.FAILED, "1 critical finding")


def hold_in_staging_pauses_the_child() -> Case:
    status, world, spec = staging()
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(child=healthy_child(spec), override=_override("hold")),
        now=at(20),
        stage=Stage.STAGING,
        events=[],
        phase=ReleasePhase.WAITING,
        actions=[EnsureChildRollout],
        message="held at stage Staging by alice (override o1): scanner false positive",
    )


def hold_in_approved_never_flips() -> Case:
    status, world, spec = approved()
    world.alias_version = "7"
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(
            child=healthy_child(spec), approvals=approvals(), override=_override("hold")
        ),
        now=at(40),
        stage=Stage.APPROVED,
        events=[],
        phase=ReleasePhase.WAITING,
        absent=[FlipAlias],
        message="held at stage Approved by alice",
    )


def rollback_in_staging_takes_traffic_off() -> Case:
    status, world, spec = staging()
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(child=running_child(spec), override=_override("rollback")),
        now=at(20),
        stage=Stage.ROLLED_BACK,
        events=["ReleaseRolledBack"],
        phase=ReleasePhase.DEGRADED,
        actions=[RevertChildRollout],
        message="version 7 rolled back: override o1 by alice: scanner false positive",
    )


def rollback_in_production_restores_the_alias() -> Case:
    status, world, spec = production()
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(
            child=healthy_child(spec), approvals=approvals(), override=_override("rollback")
        ),
        now=at(50),
        stage=Stage.ROLLED_BACK,
        events=["ReleaseRolledBack"],
        actions=[RevertChildRollout, FlipAlias],
        message="restoring alias production to 6",
    )


def unconfirmed_promote_waits() -> Case:
    status, world, spec = candidate(sbom=True)
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(
            gates=(*world.gates[:1], FAILED_SBOM, *world.gates[2:]), override=_override("promote")
        ),
        now=at(10),
        stage=Stage.CANDIDATE,
        events=["GateFailed"],
        phase=ReleasePhase.WAITING,
        message=f"promote override by alice waits for a second person's confirmation: {HINT}",
    )


def confirmed_promote_passes_the_failed_gate() -> Case:
    status, world, spec = candidate(sbom=True)
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(
            gates=(*world.gates[:1], FAILED_SBOM, *world.gates[2:]),
            override=_override("promote", confirmed_by="bob"),
        ),
        now=at(10),
        stage=Stage.STAGING,
        events=["GateOverridden", "Staged"],
    )


def promote_cannot_override_approvals() -> Case:
    status, world, spec = staging()
    return Case(
        spec=spec,
        status=status,
        obs=world.observe(
            child=healthy_child(spec), override=_override("promote", confirmed_by="bob")
        ),
        now=at(20),
        stage=Stage.STAGING,
        events=["CanaryPassed"],
        phase=ReleasePhase.WAITING,
        message="approvals cannot be overridden (four eyes)",
    )


CASES: list[Callable[[], Case]] = [
    hold_in_staging_pauses_the_child,
    hold_in_approved_never_flips,
    rollback_in_staging_takes_traffic_off,
    rollback_in_production_restores_the_alias,
    unconfirmed_promote_waits,
    confirmed_promote_passes_the_failed_gate,
    promote_cannot_override_approvals,
]
IDS = [pytest.param(c, id=c.__name__.replace("_", "-")) for c in CASES]


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


def test_a_held_release_pauses_its_child_rollout_until_released() -> None:
    status, world, spec = staging()
    held = decide_release(
        spec, status, world.observe(child=running_child(spec), override=_override("hold")), at(20)
    )
    [ensure] = [a for a in held.actions if isinstance(a, EnsureChildRollout)]
    assert ensure.spec["paused"] is True
    free = decide_release(spec, held.status, world.observe(child=running_child(spec)), at(30))
    [ensure] = [a for a in free.actions if isinstance(a, EnsureChildRollout)]
    assert "paused" not in ensure.spec


def test_an_overridden_gate_names_both_people() -> None:
    status, world, spec = candidate(sbom=True)
    d = decide_release(
        spec,
        status,
        world.observe(
            gates=(*world.gates[:1], FAILED_SBOM, *world.gates[2:]),
            override=_override("promote", confirmed_by="bob"),
        ),
        at(10),
    )
    sbom = d.status.gate("sbom")
    assert sbom is not None
    assert (sbom.status, sbom.reason) == (GateStatus.WAIVED, "Overridden")
    assert sbom.message.startswith("overridden by alice, confirmed by bob (override o1)")
    assert "gate's own result: Failed: 1 critical finding" in sbom.message


def test_a_rolled_back_release_is_not_revoked() -> None:
    status, world, spec = production()
    d = decide_release(spec, status, world.observe(override=_override("rollback")), at(50))
    assert d.status.stage is Stage.ROLLED_BACK
    assert d.status.revoked is None
    assert [h.user for h in d.status.history][-1] == "alice"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        pytest.param("7", _override("hold"), id="this-version"),
        pytest.param("6", None, id="older-version-ignored"),
    ],
)
def test_release_override_view(target: str, expected: ReleaseOverride | None) -> None:
    found = Override(
        id="o1",
        decision=OverrideDecision.HOLD,
        reason="scanner false positive",
        user="alice",
        at=datetime(2026, 11, 22, tzinfo=UTC),
        target=target,
    )
    assert release_override(found, name="fraud-7", version="7") == expected
