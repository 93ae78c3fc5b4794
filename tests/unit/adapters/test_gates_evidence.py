"""The model-card, security-decision and revalidate-by gates: how each document is judged,
and the evaluator reading them from a real local HTTP server within the evidence policy."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from rollwise.adapters.gates.evidence import (
    check_model_card,
    check_revalidation,
    check_security_decision,
    read_model_card,
)
from rollwise.core.modelrelease.observations import (
    GATE_ARTIFACT,
    GATE_FREEZE,
    GATE_MODEL_CARD,
    GATE_REVALIDATE,
    GATE_SECURITY,
)
from rollwise.core.modelrelease.status import GateStatus
from tests.unit.adapters.test_gates_http import (
    NOW,
    FakeClock,
    Route,
    Server,
    by_name,
    evaluator,
    server,
    sha,
    spec,
)

__all__ = ["server"]  # the fixture, imported for the tests below

DIGEST = sha(b"A")

CARD_MD = b"""---
license: apache-2.0
model_details:
  owners: [fraud-team@example.com]
  version: "7"
intended_use: Scoring card transactions for fraud review.
metrics: {}
---
# Fraud detector 7

Trained on 2026 Q3 transactions.
"""


# ------------------------------------------------------------------------------ model card


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(CARD_MD, id="markdown-front-matter"),
        pytest.param(
            json.dumps(
                {"license": "mit", "model_details": {"owners": ["a"]}, "intended_use": "x"}
            ).encode(),
            id="json",
        ),
        pytest.param(b"license: mit\nmodel_details:\n  owners: [a]\nintended_use: x\n", id="yaml"),
    ],
)
def test_model_card_formats_pass(raw: bytes) -> None:
    outcome = check_model_card(
        raw, ("license", "model_details.owners", "intended_use"), "ConfigMap ml/card key card"
    )
    assert outcome.status is GateStatus.PASSED
    assert outcome.message == (
        "model card ConfigMap ml/card key card: all 3 required fields present "
        "(license, model_details.owners, intended_use)"
    )


def test_model_card_missing_and_empty_fields_fail() -> None:
    outcome = check_model_card(
        CARD_MD, ("license", "metrics", "limitations", "model_details.contact"), "x"
    )
    assert outcome.status is GateStatus.FAILED
    assert outcome.message == (
        "model card x lacks required fields metrics, limitations, model_details.contact; "
        "no evidence, no promotion"
    )


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        pytest.param(b"# Just a heading\n\nNo front matter.", "not a mapping", id="plain-md"),
        pytest.param(b"---\nlicense: mit\n", "never closed", id="unclosed"),
        pytest.param(b"[1, 2]", "not a mapping", id="list"),
        pytest.param(b"\xff\xfe", "not UTF-8", id="binary"),
        pytest.param(b"license: [unclosed", "not JSON or YAML (line 1)", id="bad-yaml"),
        pytest.param(b"", "not a mapping", id="empty"),
    ],
)
def test_unusable_model_cards_fail(raw: bytes, problem: str) -> None:
    outcome = check_model_card(raw, ("license",), "x")
    assert outcome.status is GateStatus.FAILED
    assert problem in outcome.message
    assert outcome.message.endswith("no evidence, no promotion")


def test_model_card_without_required_fields_needs_only_to_exist() -> None:
    assert read_model_card(CARD_MD)["license"] == "apache-2.0"
    outcome = check_model_card(CARD_MD, (), "x")
    assert outcome.status is GateStatus.PASSED
    assert outcome.message == "model card x: present (4 top-level fields)"


# ----------------------------------------------------------------------- security decision


def decision(**fields: Any) -> bytes:
    doc: dict[str, Any] = {
        "decision": "PASS",
        "decidedBy": "sec-review@example.com",
        "decidedAt": "2026-11-21T08:00:00Z",
        "model": "fraud",
        "version": "7",
        "artifactDigest": DIGEST,
        "reason": "pen test CHG-1 clean",
    }
    doc.update(fields)
    return json.dumps({k: v for k, v in doc.items() if v is not None}).encode()


def judge_decision(raw: bytes) -> Any:
    return check_security_decision(raw, spec("s3://m/7", DIGEST), "cm", NOW)


def test_a_pass_decision_names_its_decider_and_time() -> None:
    outcome = judge_decision(decision())
    assert outcome.status is GateStatus.PASSED
    assert outcome.message == (
        "security decision cm: PASS by sec-review@example.com at 2026-11-21T08:00:00Z: "
        "pen test CHG-1 clean"
    )
    # The subject fields are optional.
    bare = judge_decision(decision(model=None, version=None, artifactDigest=None, reason=None))
    assert bare.status is GateStatus.PASSED


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        pytest.param(decision(decision="FAIL"), "is FAIL, not PASS", id="fail"),
        pytest.param(decision(decision="pass"), "is pass, not PASS", id="lower-case"),
        pytest.param(decision(decision=None), "is null, not PASS", id="no-decision"),
        pytest.param(decision(decidedBy=None), "decidedBy", id="no-decider"),
        pytest.param(decision(decidedBy="  "), "decidedBy", id="blank-decider"),
        pytest.param(decision(decidedAt=None), "decidedAt is missing", id="no-time"),
        pytest.param(decision(decidedAt="2026-11-21T08:00:00"), "with an offset", id="naive"),
        pytest.param(decision(decidedAt="yesterday"), "not an RFC 3339", id="not-a-time"),
        pytest.param(decision(decidedAt="2026-11-23T00:00:00Z"), "is in the future", id="future"),
        pytest.param(decision(version="6"), "version is '6', not this release's '7'", id="ver"),
        pytest.param(decision(artifactDigest=sha(b"B")), "artifactDigest is", id="digest"),
        pytest.param(b"PASS", "is not JSON", id="not-json"),
        pytest.param(b"[]", "is not a JSON object", id="array"),
    ],
)
def test_security_decisions_that_fail(raw: bytes, problem: str) -> None:
    outcome = judge_decision(raw)
    assert outcome.status is GateStatus.FAILED
    assert problem in outcome.message


def test_decided_within_the_clock_skew_passes() -> None:
    soon = (NOW + timedelta(minutes=4)).isoformat()
    assert judge_decision(decision(decidedAt=soon)).status is GateStatus.PASSED


# -------------------------------------------------------------------------- revalidate-by


def test_revalidation_passes_until_the_date_then_fails() -> None:
    release = spec("s3://m/7", DIGEST, revalidateBy="2026-11-30")
    before = check_revalidation(release, NOW)
    assert before.status is GateStatus.PASSED
    assert before.message == "revalidate by 2026-11-30T00:00:00Z"
    assert before.recheck_at is not None
    assert before.recheck_at.isoformat() == "2026-11-30T00:00:00+00:00"
    after = check_revalidation(release, NOW + timedelta(days=8))
    assert after.status is GateStatus.FAILED
    assert after.message.startswith(
        "revalidation was due at 2026-11-30T00:00:00Z: version 7 may not be promoted further"
    )
    with_offset = spec("s3://m/7", DIGEST, revalidateBy="2026-11-22T13:00:00+02:00")
    assert check_revalidation(with_offset, NOW).status is GateStatus.FAILED


# ------------------------------------------------------------------------------ evaluator


def test_evaluator_reads_card_and_decision_from_an_allowed_url(server: Server) -> None:
    artifact = server.serve("/a", Route(b"A"))
    card = server.serve("/card.md", Route(CARD_MD))
    sec = server.serve("/security.json", Route(decision()))
    release = spec(
        artifact,
        DIGEST,
        gates={
            "modelCard": {"url": card, "requiredFields": ["license", "intended_use"]},
            "securityDecision": {"url": sec},
        },
        revalidateBy="2027-01-01",
    )
    results = evaluator().evaluate("ml", release, NOW)
    assert [r.name for r in results] == [
        GATE_ARTIFACT,
        GATE_MODEL_CARD,
        GATE_SECURITY,
        GATE_REVALIDATE,
        GATE_FREEZE,
    ]
    assert all(r.status is GateStatus.PASSED for r in results), results
    found = by_name(results)
    assert found[GATE_REVALIDATE].recheck_at is not None


def test_evaluator_refuses_a_card_url_outside_the_evidence_policy(server: Server) -> None:
    artifact = server.serve("/a", Route(b"A"))
    release = spec(
        artifact,
        DIGEST,
        gates={"modelCard": {"url": "http://169.254.169.254/latest/meta-data/card"}},
    )
    result = by_name(evaluator().evaluate("ml", release, NOW))[GATE_MODEL_CARD]
    assert result.status is GateStatus.FAILED
    assert "is not in the operator's evidence policy" in result.message
    assert "not read (no evidence, no promotion)" in result.message


def test_evaluator_card_errors_are_pending_then_rechecked(server: Server) -> None:
    artifact = server.serve("/a", Route(b"A"))
    release = spec(
        artifact,
        DIGEST,
        gates={"modelCard": {"url": server.url + "/card.md", "requiredFields": ["license"]}},
    )
    clock = FakeClock()
    gates = evaluator(clock)
    missing = by_name(gates.evaluate("ml", release, NOW))[GATE_MODEL_CARD]
    assert missing.status is GateStatus.PENDING
    assert "could not read the model card" in missing.message
    assert "HTTP 404" in missing.message
    server.serve("/card.md", Route(CARD_MD))
    assert by_name(gates.evaluate("ml", release, NOW))[GATE_MODEL_CARD].status is (
        GateStatus.PENDING
    )
    clock.now += 61
    assert by_name(gates.evaluate("ml", release, NOW))[GATE_MODEL_CARD].status is (
        GateStatus.PASSED
    )


def test_required_but_unconfigured_gates_fail(server: Server) -> None:
    artifact = server.serve("/a", Route(b"A"))
    results = by_name(
        evaluator().evaluate(
            "ml", spec(artifact, DIGEST), NOW, required=("model-card", "security-decision")
        )
    )
    assert results[GATE_MODEL_CARD].status is GateStatus.FAILED
    assert "set spec.gates.modelCard" in results[GATE_MODEL_CARD].message
    assert results[GATE_SECURITY].status is GateStatus.FAILED
    assert "set spec.gates.securityDecision" in results[GATE_SECURITY].message
