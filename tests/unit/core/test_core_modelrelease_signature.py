"""The signature and attestation gates in the ModelRelease core: where they apply, the spec
checks, how they block a Candidate, and a waiver that lets one through only until it expires."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from rollwise.core.modelrelease.governance import WAIVABLE_GATES, Waiver, apply_waivers
from rollwise.core.modelrelease.observations import GateResult
from rollwise.core.modelrelease.policy import REQUIRABLE_GATES, ReleaseRules
from rollwise.core.modelrelease.release import decide_release
from rollwise.core.modelrelease.spec import load_release_spec, pre_staging_gates
from rollwise.core.modelrelease.status import GateStatus, ReleasePhase, Stage
from tests.unit.core.modelrelease_builders import BASE_GATES, World, at, events, raw_release

VERIFIER = {"publicKey": {"configMapKeyRef": {"name": "release-keys", "key": "release.pub"}}}
KEYLESS = {"configMapRef": {"name": "release-trust"}}
SIGNATURE = {
    "configMapKeyRef": {"name": "fraud-7-evidence", "key": "model.sigstore.json"},
    "verifier": VERIFIER,
}
ATTESTATION = {
    "url": "https://evidence.example/fraud/7/provenance.sigstore.json",
    "verifier": VERIFIER,
    "builderId": "https://ci.example.com/builders/model-trainer@v1",
    "sourceRepository": "https://git.example.com/ml/fraud",
}
FAILED = (
    "the signature in ConfigMap ml/fraud-7-evidence key model.sigstore.json does not verify for "
    "sha256:0123456789ab with the key ConfigMap ml/release-keys key release.pub: another key "
    "signed it, or it signs another artifact; no evidence, no promotion"
)


def signed_release(**gates: Any) -> dict[str, Any]:
    raw = raw_release()
    raw["gates"] = gates
    return raw


def test_the_gates_apply_when_configured_or_required() -> None:
    spec, errors = load_release_spec(signed_release(signature=SIGNATURE, attestation=ATTESTATION))
    assert errors == []
    assert spec is not None
    assert pre_staging_gates(spec) == ("artifact-digest", "signature", "attestation")
    plain, _ = load_release_spec(raw_release())
    assert plain is not None
    assert pre_staging_gates(plain) == ("artifact-digest",)
    keyless, errors = load_release_spec(
        signed_release(signature={**SIGNATURE, "verifier": {"keyless": KEYLESS}})
    )
    assert errors == []
    assert keyless is not None
    assert pre_staging_gates(keyless) == ("artifact-digest", "signature")
    required = ReleaseRules(required_gates=("signature", "attestation"))
    assert pre_staging_gates(plain, required) == ("artifact-digest", "signature", "attestation")
    assert {"signature", "attestation"} <= set(WAIVABLE_GATES)
    assert {"signature", "attestation"} <= set(REQUIRABLE_GATES)


@pytest.mark.parametrize(
    ("gates", "message"),
    [
        pytest.param(
            {"signature": {"verifier": VERIFIER}},
            "spec.gates.signature: gates.signature needs exactly one of configMapKeyRef or url",
            id="signature-no-source",
        ),
        pytest.param(
            {"attestation": {**ATTESTATION, "configMapKeyRef": SIGNATURE["configMapKeyRef"]}},
            "spec.gates.attestation: gates.attestation needs exactly one of configMapKeyRef or url",
            id="attestation-two-sources",
        ),
        pytest.param(
            {"signature": {"url": "https://x/b.json"}},
            "spec.gates.signature.verifier",
            id="no-verifier",
        ),
        pytest.param(
            {"signature": {**SIGNATURE, "verifier": {"publicKey": {}}}},
            "spec.gates.signature.verifier.publicKey.configMapKeyRef",
            id="no-key",
        ),
        pytest.param(
            {"signature": {**SIGNATURE, "verifier": {**VERIFIER, "keyless": KEYLESS}}},
            "spec.gates.signature.verifier: verifier needs exactly one of publicKey or keyless",
            id="two-verifiers",
        ),
        pytest.param(
            {"attestation": {**ATTESTATION, "verifier": {}}},
            "spec.gates.attestation.verifier: verifier needs exactly one of publicKey or keyless",
            id="no-verifier-kind",
        ),
        pytest.param(
            {"attestation": {**ATTESTATION, "builderId": ""}},
            "spec.gates.attestation.builderId",
            id="empty-builder",
        ),
    ],
)
def test_invalid_signature_specs_change_nothing(gates: dict[str, Any], message: str) -> None:
    d = decide_release(signed_release(**gates), None, World().observe(), at(0))
    assert d.actions == ()
    assert message in d.status.message, d.status.message
    assert d.status.phase is ReleasePhase.DEGRADED
    assert "InvalidSpec" in events(d)


def test_a_failed_signature_keeps_the_candidate_out_of_staging() -> None:
    raw = signed_release(signature=SIGNATURE)
    world = World()
    bad = GateResult("signature", GateStatus.FAILED, FAILED, checked_at=at(0))
    d = decide_release(raw, None, world.observe(gates=(*BASE_GATES, bad)), at(0))
    assert d.status.stage is Stage.CANDIDATE
    assert "signature Failed" in d.status.message
    record = d.status.gate("signature")
    assert record is not None
    assert record.message == FAILED
    assert "GateFailed" in events(d)
    good = GateResult("signature", GateStatus.PASSED, "signed", checked_at=at(10))
    d2 = decide_release(raw, d.status, world.observe(gates=(*BASE_GATES, good)), at(10))
    assert d2.status.stage is Stage.STAGING


def test_a_waiver_hides_a_failed_signature_only_until_it_expires() -> None:
    raw = signed_release(signature=SIGNATURE)
    bad = GateResult("signature", GateStatus.FAILED, FAILED, checked_at=at(0))
    waiver = Waiver(
        gate="signature",
        reason="key rotation INC-42",
        user="dana",
        at=at(0),
        expires_at=at(0) + timedelta(hours=1),
    )
    waived = apply_waivers((*BASE_GATES, bad), (waiver,), at(0))
    d = decide_release(raw, None, World().observe(gates=waived), at(0))
    assert d.status.stage is Stage.STAGING
    record = d.status.gate("signature")
    assert record is not None
    assert record.status is GateStatus.WAIVED

    # Another release with the same failed signature and a waiver already expired: blocked.
    late = at(0) + timedelta(hours=2)
    expired = apply_waivers((*BASE_GATES, bad), (waiver,), late)
    other = raw_release(version="8")
    other["gates"] = {"signature": SIGNATURE}
    d2 = decide_release(other, None, World().observe(gates=expired), late)
    assert d2.status.stage is Stage.CANDIDATE
    record = d2.status.gate("signature")
    assert record is not None
    assert record.status is GateStatus.FAILED
    assert record.reason == "WaiverExpired"
    assert "waiver by dana expired" in record.message
    assert FAILED in record.message
