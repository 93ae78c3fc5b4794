"""The model-card, security-decision and revalidate-by gates in the ModelRelease core: where
they apply, how they block, and what a passed revalidation date flags (condition, event)."""

from __future__ import annotations

from typing import Any

import pytest

from rollwise.core.conditions import ConditionStatus
from rollwise.core.modelrelease.governance import WAIVABLE_GATES
from rollwise.core.modelrelease.observations import GateResult
from rollwise.core.modelrelease.policy import ReleaseRules
from rollwise.core.modelrelease.release import decide_release
from rollwise.core.modelrelease.spec import load_release_spec, pre_staging_gates, promote_gates
from rollwise.core.modelrelease.status import (
    GateStatus,
    ReleaseConditionType,
    ReleasePhase,
    Stage,
)
from tests.unit.core.modelrelease_builders import (
    BASE_GATES,
    World,
    approvals,
    at,
    events,
    raw_release,
    release,
)
from tests.unit.core.test_core_modelrelease import (
    approved,
    canary_passed,
    healthy_child,
    production,
)

CARD = {"configMapKeyRef": {"name": "fraud-card", "key": "card.md"}, "requiredFields": ["license"]}
DECISION = {"url": "https://evidence.example/fraud/7/security.json"}


def gate(name: str, status: GateStatus, message: str = "") -> GateResult:
    return GateResult(name, status, message or status.value, checked_at=at(0))


def test_new_gates_apply_when_configured_or_required() -> None:
    raw = raw_release()
    raw["gates"] = {"modelCard": CARD, "securityDecision": DECISION}
    raw["revalidateBy"] = "2027-06-30"
    spec, errors = load_release_spec(raw)
    assert errors == []
    assert spec is not None
    assert pre_staging_gates(spec) == (
        "artifact-digest",
        "model-card",
        "security-decision",
        "revalidate-by",
    )
    required = ReleaseRules(required_gates=("model-card", "security-decision"))
    assert pre_staging_gates(release(), required) == (
        "artifact-digest",
        "model-card",
        "security-decision",
    )
    assert pre_staging_gates(release()) == ("artifact-digest",)
    assert {"model-card", "security-decision", "revalidate-by"} <= set(WAIVABLE_GATES)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        pytest.param(
            lambda r: r.update(gates={"modelCard": {"requiredFields": ["license"]}}),
            "spec.gates.modelCard: gates.modelCard needs exactly one of configMapKeyRef or url",
            id="card-no-source",
        ),
        pytest.param(
            lambda r: r.update(gates={"securityDecision": {**DECISION, **CARD}}),
            "spec.gates.securityDecision",
            id="decision-unknown-field",
        ),
        pytest.param(
            lambda r: r.update(
                gates={
                    "securityDecision": {
                        "url": "https://x",
                        "configMapKeyRef": CARD["configMapKeyRef"],
                    }
                }
            ),
            "gates.securityDecision needs exactly one of configMapKeyRef or url",
            id="decision-two-sources",
        ),
        pytest.param(
            lambda r: r.update(gates={"modelCard": {**CARD, "requiredFields": ["a..b"]}}),
            "spec.gates.modelCard.requiredFields[0]",
            id="card-bad-field-path",
        ),
        pytest.param(
            lambda r: r.update(revalidateBy="next year"),
            "spec.revalidateBy",
            id="revalidate-not-a-date",
        ),
        pytest.param(
            lambda r: r.update(revalidateBy="2027-02-30"),
            "spec.revalidateBy: '2027-02-30' is not a valid date or time",
            id="revalidate-no-such-day",
        ),
    ],
)
def test_invalid_evidence_specs(mutate: Any, message: str) -> None:
    raw = raw_release()
    mutate(raw)
    d = decide_release(raw, None, World().observe(), at(0))
    assert d.actions == ()
    assert message in d.status.message
    assert d.status.phase is ReleasePhase.DEGRADED
    assert "InvalidSpec" in events(d)


def test_a_missing_model_card_keeps_the_candidate_out_of_staging() -> None:
    raw = raw_release()
    raw["gates"] = {"modelCard": CARD}
    world = World()
    missing = gate(
        "model-card",
        GateStatus.FAILED,
        "model card ConfigMap ml/fraud-card key card.md lacks required field license",
    )
    d = decide_release(raw, None, world.observe(gates=(*BASE_GATES, missing)), at(0))
    assert d.status.stage is Stage.CANDIDATE
    assert "model-card Failed" in d.status.message
    assert "GateFailed" in events(d)
    d2 = decide_release(
        raw,
        d.status,
        world.observe(gates=(*BASE_GATES, gate("model-card", GateStatus.PASSED))),
        at(10),
    )
    assert d2.status.stage is Stage.STAGING


def test_a_waived_security_decision_lets_the_candidate_through() -> None:
    raw = raw_release()
    raw["gates"] = {"securityDecision": DECISION}
    waived = GateResult(
        "security-decision",
        GateStatus.WAIVED,
        "waived by dana until ...",
        waiver_expires_at=at(3600),
        underlying=GateStatus.FAILED,
    )
    d = decide_release(raw, None, World().observe(gates=(*BASE_GATES, waived)), at(0))
    assert d.status.stage is Stage.STAGING
    # The same waiver once expired blocks again.
    raw2 = raw_release(version="8")
    raw2["gates"] = {"securityDecision": DECISION}
    d2 = decide_release(raw2, None, World().observe(gates=(*BASE_GATES, waived)), at(7200))
    assert d2.status.stage is Stage.CANDIDATE
    record = d2.status.gate("security-decision")
    assert record is not None
    assert record.status is GateStatus.FAILED
    assert record.reason == "WaiverExpired"


def test_an_overdue_approved_version_is_flagged_and_not_promoted() -> None:
    status, world, spec = approved()
    overdue = spec.model_copy(update={"revalidate_by": "2026-03-01"})
    gates = (
        *BASE_GATES,
        gate("revalidate-by", GateStatus.FAILED, "revalidation was due at 2026-03-01T00:00:00Z"),
    )
    d = decide_release(
        overdue,
        status,
        world.observe(child=healthy_child(spec), approvals=approvals(), gates=gates),
        at(60),
    )
    assert d.status.stage is Stage.APPROVED
    assert events(d) == ["RevalidationDue"]
    assert "promotion to Production blocked by revalidate-by Failed" in d.status.message
    flag = d.status.condition(ReleaseConditionType.REVALIDATION_DUE)
    assert flag is not None
    assert flag.status is ConditionStatus.TRUE
    assert flag.reason == "Overdue"
    assert "2026-03-01T00:00:00Z" in flag.message
    event = d.events[0]
    assert event.type.value == "Warning"
    assert "version 7 (Approved) was due for revalidation at 2026-03-01T00:00:00Z" in (
        event.message
    )
    # Revalidated: the date moved forward and the gate passes again; promotion goes on.
    later = spec.model_copy(update={"revalidate_by": "2027-03-01"})
    ok = (*BASE_GATES, gate("revalidate-by", GateStatus.PASSED, "revalidate by 2027-03-01"))
    world.alias_version = "7"
    d2 = decide_release(
        later,
        d.status,
        world.observe(child=healthy_child(spec), approvals=approvals(), gates=ok),
        at(70),
    )
    assert d2.status.stage is Stage.PRODUCTION
    flag2 = d2.status.condition(ReleaseConditionType.REVALIDATION_DUE)
    assert flag2 is not None
    assert flag2.status is ConditionStatus.FALSE
    assert flag2.reason == "Scheduled"


def test_an_overdue_production_version_keeps_serving_and_warns_once() -> None:
    status, world, spec = production()
    overdue = spec.model_copy(update={"revalidate_by": "2026-03-02T09:00:30Z"})
    gates = (*BASE_GATES, gate("revalidate-by", GateStatus.FAILED, "due"))
    obs = world.observe(child=healthy_child(spec), approvals=approvals(), gates=gates)
    d = decide_release(overdue, status, obs, at(60))
    assert d.status.stage is Stage.PRODUCTION
    assert events(d) == ["RevalidationDue"]
    flag = d.status.condition(ReleaseConditionType.REVALIDATION_DUE)
    assert flag is not None
    assert flag.status is ConditionStatus.TRUE
    again = decide_release(overdue, d.status, obs, at(90))
    assert events(again) == []


def test_no_revalidation_condition_without_a_date() -> None:
    status, world, spec = production()
    d = decide_release(
        spec, status, world.observe(child=healthy_child(spec), approvals=approvals()), at(60)
    )
    assert d.status.condition(ReleaseConditionType.REVALIDATION_DUE) is None


def test_a_rego_deny_at_promote_holds_the_passed_canary_with_its_message() -> None:
    status, world, spec = canary_passed(policy=True)
    deny = gate(
        "policy-promote",
        GateStatus.FAILED,
        "policy bundle ops/policy (sha256:0123456789ab) denies promote: model fraud is frozen",
    )
    gates = (*(g for g in world.gates if g.name != "policy-promote"), deny)
    d = decide_release(
        spec,
        status,
        world.observe(child=healthy_child(spec), approvals=approvals(), gates=gates),
        at(30),
    )
    assert d.status.stage is Stage.STAGING
    assert "waiting for policy-promote Failed" in d.status.message
    assert "denies promote: model fraud is frozen" in d.status.message
    failed = [e for e in d.events if e.reason.name == "GateFailed"]
    assert len(failed) == 1
    assert "gate policy-promote failed: policy bundle ops/policy" in failed[0].message
    record = d.status.gate("policy-promote")
    assert record is not None
    assert record.status is GateStatus.FAILED


def test_the_rego_gates_apply_with_the_policy_snapshot() -> None:
    bound = release(policy=True)
    assert pre_staging_gates(bound) == ("artifact-digest", "policy-digest", "policy-accept")
    assert promote_gates(bound) == ("policy-promote",)
    assert promote_gates(release()) == ()
    assert promote_gates(release(), ReleaseRules(required_gates=("policy-digest",))) == (
        "policy-promote",
    )
