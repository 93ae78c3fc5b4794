"""The serving-side gate's decision: which Deployments and InferenceServices may serve the
model version their labels name."""

from __future__ import annotations

from typing import Any

import pytest

from rollwise.core.modelrelease.serving_gate import (
    MODEL_LABEL,
    POLICY_ANNOTATION,
    VERSION_LABEL,
    ReleaseView,
    refusal,
)

POLICY = "sha256:" + "b" * 64
OTHER = "sha256:" + "c" * 64
SERVES = {MODEL_LABEL: "fraud", VERSION_LABEL: "7"}


def body(
    name: str,
    version: str = "7",
    stage: str | None = "Production",
    *,
    policy: str | None = None,
    policy_gate: str | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"model": "fraud", "version": version}
    if policy is not None:
        spec["policyDigest"] = policy
    status: dict[str, Any] = {}
    if stage is not None:
        status["stage"] = stage
    if policy_gate is not None:
        status["gates"] = [{"name": "policy-digest", "status": policy_gate}]
    return {"metadata": {"name": name}, "spec": spec, "status": status}


def decide(
    releases: list[dict[str, Any]],
    labels: dict[str, str] = SERVES,
    annotations: dict[str, str] | None = None,
    revoked_by: str | None = None,
) -> str | None:
    return refusal(
        kind="Deployment",
        namespace="ml",
        name="fraud-server",
        labels=labels,
        annotations=annotations or {},
        releases=[ReleaseView.of(r) for r in releases],
        revoked_by=revoked_by,
    )


@pytest.mark.parametrize("stage", ["Staging", "Approved", "Production"])
def test_a_servable_version_is_admitted(stage: str) -> None:
    assert decide([body("fraud-7", stage=stage)]) is None


def test_objects_naming_no_model_are_not_judged() -> None:
    assert decide([], labels={"app": "fraud"}) is None


@pytest.mark.parametrize(
    ("releases", "kwargs", "message"),
    [
        pytest.param(
            [body("fraud-7", stage="Revoked")],
            {},
            "Deployment ml/fraud-server serves model fraud version 7, which ModelRelease "
            "fraud-7 revoked: refused",
            id="revoked",
        ),
        pytest.param(
            [body("fraud-7b", stage="Production")],
            {"revoked_by": "fraud-7"},
            "which ModelRelease fraud-7 revoked: refused",
            id="revoked-in-the-ledger",
        ),
        pytest.param(
            [body("fraud-6", version="6")],
            {},
            "Deployment ml/fraud-server serves model fraud version 7, which no ModelRelease in "
            "namespace ml releases: only a Staging, Approved or Production version may be served",
            id="unknown-version",
        ),
        pytest.param(
            [body("fraud-7", stage="Candidate")],
            {},
            "which is not in Staging, Approved or Production (ModelRelease fraud-7 (Candidate))",
            id="candidate",
        ),
        pytest.param(
            [body("fraud-7", stage="RolledBack")],
            {},
            "(ModelRelease fraud-7 (RolledBack))",
            id="rolled-back",
        ),
        pytest.param(
            [body("fraud-7", stage=None)],
            {},
            "(ModelRelease fraud-7 (no stage yet))",
            id="no-status",
        ),
        pytest.param(
            [body("fraud-7", policy=POLICY, policy_gate="Failed")],
            {},
            "ModelRelease fraud-7's policy-digest gate is Failed",
            id="policy-moved",
        ),
        pytest.param(
            [body("fraud-7", policy=POLICY, policy_gate="Passed")],
            {"annotations": {POLICY_ANNOTATION: OTHER}},
            f"under policy {OTHER} ({POLICY_ANNOTATION}), but ModelRelease fraud-7 is bound "
            f"to {POLICY}",
            id="other-digest",
        ),
        pytest.param(
            [body("fraud-7")],
            {"labels": {MODEL_LABEL: "fraud"}},
            f"Deployment ml/fraud-server names a model version without the label {VERSION_LABEL}",
            id="half-reference",
        ),
    ],
)
def test_refusals_name_the_object_the_release_and_the_reason(
    releases: list[dict[str, Any]], kwargs: dict[str, Any], message: str
) -> None:
    found = decide(releases, **kwargs)
    assert found is not None
    assert message in found


def test_the_bound_digest_is_admitted_and_a_revoked_twin_still_refuses() -> None:
    bound = body("fraud-7", policy=POLICY, policy_gate="Passed")
    assert decide([bound], annotations={POLICY_ANNOTATION: POLICY}) is None
    # A second release of the same version revoked it: revocation wins.
    assert decide([bound, body("fraud-7-hotfix", stage="Revoked")]) is not None
