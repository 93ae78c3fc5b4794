"""ModelReleases in the states the plugin displays, their statuses built with the core's own
models so that their shape is exactly the one the operator writes
(``ModelReleaseStatus.to_wire()``)."""

from __future__ import annotations

import json
from typing import Any

from rollwise.core.conditions import ConditionStatus
from rollwise.core.modelrelease.status import (
    AliasStatus,
    ApprovalRecord,
    GateRecord,
    GateStatus,
    HistoryEntry,
    ModelReleaseStatus,
    ReleaseCondition,
    ReleaseConditionType,
    ReleasePhase,
    RevokeRecord,
    ServingStatus,
    Stage,
)
from rollwise.core.runs import AnalysisRun, MeasurementRecord, MetricRun, Verdict
from tests.unit.cli.cli_builders import ago, stamp

DIGEST = "sha256:9e99d0f91dbc6e0179f66f160ac4c846ba410f658b853cf4588c44920af9f85a"
CHILD = "fraud-detector-production"
REVISION = "7c1d9e0a2b"


def spec(*, kserve: bool = False, roles: list[str] | None = None) -> dict[str, Any]:
    serving: dict[str, Any]
    if kserve:
        serving = {"inferenceServiceRef": {"name": "fraud-detector"}}
    else:
        serving = {
            "replicas": 2,
            "stableService": "fraud-detector-stable",
            "canaryService": "fraud-detector-canary",
            "template": {
                "metadata": {"labels": {"app": "fraud-detector"}},
                "spec": {"containers": [{"name": "server", "image": "demo:1.0.0"}]},
            },
        }
    out: dict[str, Any] = {
        "model": "fraud-detector",
        "version": "7",
        "artifact": {"uri": "s3://models/fraud-detector/7", "digest": DIGEST},
        "change": {"type": "normal", "ticket": "CHG-1042"},
        "serving": serving,
        "canary": {
            "steps": [
                {"setWeight": 10},
                {"pause": {"duration": "2m"}},
                {"setWeight": 50},
                {"pause": {"duration": "2m"}},
                {"setWeight": 100},
            ],
            "analysis": {
                "metrics": [
                    {
                        "name": "error-ratio",
                        "count": 3,
                        "successCondition": "result < 0.02",
                        "provider": {"prometheus": {"query": "sum(rate(errors[1m]))"}},
                    }
                ]
            },
        },
        "alias": {"name": "production", "store": {"configMap": {"name": "model-aliases"}}},
        "approvals": {"requiredRoles": roles if roles is not None else ["security", "product"]},
        "gates": {"sbom": {"url": "https://sbom.example/fraud-detector/7"}},
    }
    return out


def release(
    status: ModelReleaseStatus | dict[str, Any] | None,
    *,
    annotations: dict[str, str] | None = None,
    **spec_args: Any,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "rollwise.dev/v1alpha1",
        "kind": "ModelRelease",
        "metadata": {
            "name": "fraud-detector-7",
            "namespace": "ml",
            "generation": 1,
            "resourceVersion": "77",
            "creationTimestamp": stamp(3600),
            "annotations": annotations or {},
        },
        "spec": spec(**spec_args),
    }
    if isinstance(status, ModelReleaseStatus):
        obj["status"] = status.to_wire()
    elif status is not None:
        obj["status"] = status
    return obj


def cond(
    type_: ReleaseConditionType, value: str, reason: str, message: str = "", since: float = 600
) -> ReleaseCondition:
    return ReleaseCondition(
        type=type_,
        status=ConditionStatus(value),
        reason=reason,
        message=message,
        last_transition_time=ago(since),
        observed_generation=1,
    )


def gate(
    name: str, status: GateStatus, reason: str, message: str, checked: float = 30, **extra: Any
) -> GateRecord:
    return GateRecord(
        name=name,
        status=status,
        reason=reason,
        message=message,
        checked_at=ago(checked),
        last_transition_time=ago(900),
        **extra,
    )


def entry(
    stage: Stage, reason: str, seconds: float, message: str = "", **extra: Any
) -> HistoryEntry:
    return HistoryEntry(stage=stage, reason=reason, time=ago(seconds), message=message, **extra)


HISTORY_TO_STAGING = [
    entry(Stage.CANDIDATE, "ReleaseCreated", 3600, "model fraud-detector version 7 is a Candidate"),
    HistoryEntry.model_validate(
        {
            "from": "Candidate",
            "stage": "Staging",
            "time": stamp(900),
            "reason": "Staged",
            "message": "version 7 moved to Staging: gates passed (artifact-digest, sbom)",
        }
    ),
]

STAGING_MESSAGE = "canary step 3/5 (setWeight 50%): analysis running"


def staging_canary() -> ModelReleaseStatus:
    """A template-served release at step 3/5 of its child Rollout, sbom waived."""
    return ModelReleaseStatus(
        stage=Stage.STAGING,
        phase=ReleasePhase.PROGRESSING,
        message=STAGING_MESSAGE,
        observed_generation=1,
        gates=[
            gate("artifact-digest", GateStatus.PASSED, "DigestMatches", "sha256 matches spec"),
            gate(
                "sbom",
                GateStatus.WAIVED,
                "Waived",
                "waived by carol: CVE-2026-1 triaged (was Failed: 1 critical vulnerability)",
                waiver_expires_at=ago(-23 * 3600),
            ),
            gate("approvals", GateStatus.PENDING, "Waiting", "waiting for security, product"),
        ],
        history=HISTORY_TO_STAGING,
        alias=AliasStatus(name="production", current_version="6"),
        serving=ServingStatus(
            backend="template",
            name=CHILD,
            revision=REVISION,
            step_index=2,
            weight=50,
            step_started_at=ago(60),
            analysis=AnalysisRun(
                step_index=2,
                revision=REVISION,
                started_at=ago(60),
                metrics=[
                    MetricRun(
                        name="error-ratio",
                        measurements=[
                            MeasurementRecord(value=0.004, verdict=Verdict.PASS, at=ago(20))
                        ],
                        successful=1,
                    )
                ],
            ),
        ),
        conditions=[
            cond(ReleaseConditionType.READY, "False", "Staging", STAGING_MESSAGE),
            cond(ReleaseConditionType.PROGRESSING, "True", "Staging", STAGING_MESSAGE),
            cond(ReleaseConditionType.GATES_PASSED, "False", "Waiting", "approvals: waiting", 900),
        ],
    )


PRODUCTION_MESSAGE = "alias production points at version 7 (previous 6)"


def production() -> ModelReleaseStatus:
    history = [
        *HISTORY_TO_STAGING,
        HistoryEntry.model_validate(
            {
                "from": "Staging",
                "stage": "Approved",
                "time": stamp(400),
                "reason": "ReleaseApproved",
                "user": "alice, bob",
                "message": "version 7 approved: canary passed; security by alice, product by bob",
            }
        ),
        HistoryEntry.model_validate(
            {
                "from": "Approved",
                "stage": "Production",
                "time": stamp(300),
                "reason": "PromotedToProduction",
                "message": "alias production of model fraud-detector now points at version 7 "
                "(previous 6)",
            }
        ),
    ]
    return ModelReleaseStatus(
        stage=Stage.PRODUCTION,
        phase=ReleasePhase.HEALTHY,
        message=PRODUCTION_MESSAGE,
        observed_generation=1,
        gates=[
            gate("artifact-digest", GateStatus.PASSED, "DigestMatches", "sha256 matches spec"),
            gate("sbom", GateStatus.PASSED, "NoFindings", "no vulnerability above high"),
            gate("approvals", GateStatus.PASSED, "Approved", "security by alice, product by bob"),
            gate("freeze-window", GateStatus.PASSED, "NoFreeze", "no freeze window open"),
        ],
        history=history,
        alias=AliasStatus(
            name="production",
            current_version="7",
            previous_version="6",
            flip_requested=True,
            held=True,
        ),
        serving=ServingStatus(backend="template", name=CHILD, revision=REVISION, passed=True),
        approvals=[
            ApprovalRecord(role="security", user="alice", at=ago(500)),
            ApprovalRecord(role="product", user="bob", at=ago(450)),
        ],
        conditions=[
            cond(ReleaseConditionType.READY, "True", "Production", PRODUCTION_MESSAGE, 300),
            cond(ReleaseConditionType.PROGRESSING, "False", "Production", "done", 300),
        ],
    )


REVOKED_MESSAGE = "version 7 revoked at stage Production by dave: wrong training data"


def revoked() -> ModelReleaseStatus:
    base = production()
    return base.model_copy(
        update={
            "stage": Stage.REVOKED,
            "phase": ReleasePhase.DEGRADED,
            "message": REVOKED_MESSAGE,
            "conditions": [
                cond(ReleaseConditionType.READY, "False", "Revoked", REVOKED_MESSAGE, 120),
                cond(ReleaseConditionType.DEGRADED, "True", "Revoked", REVOKED_MESSAGE, 120),
            ],
            "revoked": RevokeRecord.model_validate(
                {
                    "request": "2026-11-22T11:58:00Z-abc123",
                    "reason": "wrong training data",
                    "user": "dave",
                    "at": stamp(120),
                    "from": "Production",
                }
            ),
            "alias": AliasStatus(
                name="production",
                current_version="6",
                previous_version="6",
                flip_requested=True,
                held=True,
                restored=True,
            ),
            "history": [
                *base.history,
                HistoryEntry.model_validate(
                    {
                        "from": "Production",
                        "stage": "Revoked",
                        "time": stamp(120),
                        "reason": "ReleaseRevoked",
                        "user": "dave",
                        "message": REVOKED_MESSAGE,
                    }
                ),
            ],
        }
    )


def kserve_failed() -> ModelReleaseStatus:
    failure = "metric error-ratio = 0.210 failed successCondition 'result < 0.02'"
    return ModelReleaseStatus(
        stage=Stage.ROLLED_BACK,
        phase=ReleasePhase.DEGRADED,
        message=f"version 7 rolled back at stage Staging: {failure}",
        observed_generation=1,
        serving=ServingStatus(
            backend="inferenceService",
            name="fraud-detector",
            step_index=0,
            weight=0,
            failure=failure,
            analysis=AnalysisRun(
                step_index=0,
                revision="fraud-detector-predictor-00002",
                started_at=ago(200),
                verdict=Verdict.FAIL,
                message=failure,
                metrics=[
                    MetricRun(
                        name="error-ratio",
                        measurements=[
                            MeasurementRecord(
                                value=0.21, verdict=Verdict.FAIL, at=ago(100), message=failure
                            )
                        ],
                        failed=1,
                        verdict=Verdict.FAIL,
                    )
                ],
            ),
        ),
        alias=AliasStatus(name="production", current_version="6"),
    )


def approval_records(*entries: tuple[str, str, str, float]) -> dict[str, str]:
    """The ``rollwise.dev/approvals`` annotation of (role, user, version, seconds ago)."""
    return {
        "rollwise.dev/approvals": json.dumps(
            [
                {"role": r, "user": u, "version": v, "at": stamp(s), "sig": "00"}
                for r, u, v, s in entries
            ]
        )
    }
