"""The signature and attestation gates: real Sigstore bundles, signed in the test with keys it
makes (hack/sign_artifact.py, the commands the example documents; keyless: a private Sigstore
instance of the tests, tests/sigstore_instance.py), verified offline; a tampered artifact,
bundle or statement, a wrong key, identity or issuer and a wrong predicate each fail with one
sentence."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

from hack import sign_artifact as sign
from rollwise.adapters.gates.outcome import Outcome
from rollwise.adapters.gates.signature import (
    IDENTITY_KEY,
    ISSUER_KEY,
    TRUSTED_ROOT_KEY,
    KeylessTrust,
    PredicateChecks,
    UnusableEvidence,
    VerificationKey,
    builder_id,
    check_attestation,
    check_signature,
    load_key,
    load_keyless,
    normalize_repository,
    read_bundle,
    source_repositories,
)
from rollwise.core.modelrelease.status import GateStatus
from tests.sigstore_instance import SigstoreInstance

ARTIFACT = b"fraud-detector weights v7\n" * 100
DIGEST = "sha256:" + hashlib.sha256(ARTIFACT).hexdigest()
TAMPERED = "sha256:" + hashlib.sha256(ARTIFACT + b"!").hexdigest()
WHERE = "ConfigMap ml/fraud-7-evidence key bundle.json"
KEY_WHERE = "ConfigMap ml/release-keys key release.pub"
BUILDER = "https://ci.example.com/builders/model-trainer@v1"
REPO = "https://git.example.com/ml/fraud"
NO_EVIDENCE = "; no evidence, no promotion"


def pem(key: Any) -> bytes:
    data: bytes = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return data


def verifier(private: Any) -> VerificationKey:
    return load_key(pem(private), KEY_WHERE)


def raw(bundle: dict[str, Any]) -> bytes:
    return json.dumps(bundle).encode()


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return sign.new_key()


@pytest.fixture(scope="module")
def other_key() -> ec.EllipticCurvePrivateKey:
    return sign.new_key()


def signed(key: ec.EllipticCurvePrivateKey, digest: str = DIGEST) -> dict[str, Any]:
    return sign.signature_bundle(key, digest)


def attested(
    key: Any, digest: str = DIGEST, *, builder: str = BUILDER, repo: str | None = REPO
) -> dict[str, Any]:
    return sign.attestation_bundle(
        key, sign.provenance(digest, "fraud.bin", builder_id=builder, source_repository=repo)
    )


def fails(outcome: Outcome, message: str) -> None:
    assert outcome.status is GateStatus.FAILED, outcome
    assert outcome.message == message + NO_EVIDENCE
    assert outcome.message.count(". ") == 0, "one sentence"


# ------------------------------------------------------------------------------- keys


def test_a_key_is_named_by_its_source_and_fingerprint(key: ec.EllipticCurvePrivateKey) -> None:
    loaded = verifier(key)
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert loaded.name == f"{KEY_WHERE} (sha256:{hashlib.sha256(der).hexdigest()[:12]})"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(b"not a key", id="not-pem"),
        pytest.param(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", id="bad-der"),
    ],
)
def test_an_unusable_key_is_refused(text: bytes) -> None:
    with pytest.raises(UnusableEvidence, match=f"the key {KEY_WHERE} is not a PEM public key"):
        load_key(text, KEY_WHERE)


def test_a_private_key_is_not_a_verification_key(key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(UnusableEvidence, match="is not a PEM public key"):
        load_key(sign.private_pem(key), KEY_WHERE)


# --------------------------------------------------------------------------- signature


def test_a_signed_artifact_passes(key: ec.EllipticCurvePrivateKey) -> None:
    outcome = check_signature(raw(signed(key)), verifier(key), DIGEST, WHERE)
    assert outcome.status is GateStatus.PASSED
    assert outcome.message == (
        f"sha256:{DIGEST[7:19]} signed: bundle {WHERE} verified with the key {verifier(key).name}"
    )


def test_the_bundle_reads_as_sigstore_reads_it(key: ec.EllipticCurvePrivateKey) -> None:
    bundle = read_bundle(raw(signed(key)), WHERE)
    assert bundle.media_type == sign.BUNDLE_MEDIA_TYPE
    assert bundle.verification_material.public_key is not None
    assert bundle.verification_material.tlog_entries == []


def test_a_tampered_artifact_fails(key: ec.EllipticCurvePrivateKey) -> None:
    # The release names the tampered artifact's digest: the bundle is about the original one.
    fails(
        check_signature(raw(signed(key)), verifier(key), TAMPERED, WHERE),
        f"the bundle {WHERE} is for sha256:{DIGEST[7:19]}, not the artifact's "
        f"sha256:{TAMPERED[7:19]}",
    )


def test_a_bundle_without_its_digest_still_binds_the_artifact(
    key: ec.EllipticCurvePrivateKey,
) -> None:
    bundle = signed(key)
    del bundle["messageSignature"]["messageDigest"]
    assert check_signature(raw(bundle), verifier(key), DIGEST, WHERE).status is GateStatus.PASSED
    fails(
        check_signature(raw(bundle), verifier(key), TAMPERED, WHERE),
        f"the signature in {WHERE} does not verify for sha256:{TAMPERED[7:19]} with the key "
        f"{verifier(key).name}: another key signed it, or it signs another artifact",
    )


def test_a_digest_rewritten_in_the_bundle_fails(key: ec.EllipticCurvePrivateKey) -> None:
    bundle = signed(key)
    bundle["messageSignature"]["messageDigest"]["digest"] = base64.b64encode(
        bytes.fromhex(TAMPERED[7:])
    ).decode()
    fails(
        check_signature(raw(bundle), verifier(key), TAMPERED, WHERE),
        f"the signature in {WHERE} does not verify for sha256:{TAMPERED[7:19]} with the key "
        f"{verifier(key).name}: another key signed it, or it signs another artifact",
    )


def test_a_wrong_key_fails(
    key: ec.EllipticCurvePrivateKey, other_key: ec.EllipticCurvePrivateKey
) -> None:
    fails(
        check_signature(raw(signed(other_key)), verifier(key), DIGEST, WHERE),
        f"the signature in {WHERE} does not verify for sha256:{DIGEST[7:19]} with the key "
        f"{verifier(key).name}: another key signed it, or it signs another artifact",
    )


def test_an_rsa_key_signs_the_digest_too() -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    digest = bytes.fromhex(DIGEST[7:])
    signature = private.sign(digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
    bundle = signed(sign.new_key())
    bundle["messageSignature"]["signature"] = base64.b64encode(signature).decode()
    outcome = check_signature(raw(bundle), verifier(private), DIGEST, WHERE)
    assert outcome.status is GateStatus.PASSED, outcome


def test_an_ed25519_key_cannot_verify_a_digest(key: ec.EllipticCurvePrivateKey) -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    loaded = verifier(private)
    fails(
        check_signature(raw(signed(key)), loaded, DIGEST, WHERE),
        f"the key {loaded.name} is an Ed25519 key, which cannot verify a signature of a "
        "digest (use an ECDSA or RSA key)",
    )


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        pytest.param(b"{", "the document: Invalid JSON", id="not-json"),
        pytest.param(b"[]", "the document: Input should be an object", id="not-an-object"),
        pytest.param(
            json.dumps({"mediaType": "application/json"}).encode(),
            "mediaType: Input should be",
            id="media-type",
        ),
    ],
)
def test_an_unusable_bundle_fails(
    key: ec.EllipticCurvePrivateKey, document: bytes, problem: str
) -> None:
    outcome = check_signature(document, verifier(key), DIGEST, WHERE)
    assert outcome.status is GateStatus.FAILED
    assert outcome.message.startswith(f"the bundle {WHERE} is not a Sigstore bundle ("), outcome
    assert problem in outcome.message
    assert outcome.message.endswith(NO_EVIDENCE)


def test_an_attestation_is_not_a_signature(key: ec.EllipticCurvePrivateKey) -> None:
    fails(
        check_signature(raw(attested(key)), verifier(key), DIGEST, WHERE),
        f"the bundle {WHERE} holds a DSSE envelope (an attestation), not a signature of the "
        "artifact",
    )


# ------------------------------------------------------------------------- attestation

CHECKS = PredicateChecks(
    predicate_type=sign.SLSA_PROVENANCE_V1, builder_id=BUILDER, source_repository=REPO
)


def test_an_attested_artifact_passes_with_its_predicate_checked(
    key: ec.EllipticCurvePrivateKey,
) -> None:
    outcome = check_attestation(raw(attested(key)), verifier(key), DIGEST, WHERE, CHECKS)
    assert outcome.status is GateStatus.PASSED
    assert outcome.message == (
        f"sha256:{DIGEST[7:19]} attested (https://slsa.dev/provenance/v1, builder id and "
        f"source repository as required): bundle {WHERE} verified with the key "
        f"{verifier(key).name}"
    )


def test_an_attestation_about_another_artifact_fails(key: ec.EllipticCurvePrivateKey) -> None:
    fails(
        check_attestation(raw(attested(key)), verifier(key), TAMPERED, WHERE),
        f"the attestation {WHERE} is about sha256:{DIGEST[7:19]}, not the artifact's "
        f"sha256:{TAMPERED[7:19]}",
    )


def test_a_statement_changed_after_signing_fails(key: ec.EllipticCurvePrivateKey) -> None:
    bundle = attested(key)
    statement = sign.provenance(TAMPERED, "fraud.bin", builder_id=BUILDER)
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    fails(
        check_attestation(raw(bundle), verifier(key), TAMPERED, WHERE),
        f"the attestation {WHERE} is not signed by the key {verifier(key).name}: another key "
        "signed it, or its statement was changed",
    )


def test_an_attestation_by_another_key_fails(
    key: ec.EllipticCurvePrivateKey, other_key: ec.EllipticCurvePrivateKey
) -> None:
    fails(
        check_attestation(raw(attested(other_key)), verifier(key), DIGEST, WHERE),
        f"the attestation {WHERE} is not signed by the key {verifier(key).name}: another key "
        "signed it, or its statement was changed",
    )


@pytest.mark.parametrize(
    ("checks", "problem"),
    [
        pytest.param(
            PredicateChecks(builder_id="https://ci.example.com/builders/other@v1"),
            f"its builder id is {BUILDER!r}, not 'https://ci.example.com/builders/other@v1'",
            id="builder",
        ),
        pytest.param(
            PredicateChecks(source_repository="https://git.example.com/ml/other"),
            f"it names source repository {REPO}, not https://git.example.com/ml/other",
            id="repository",
        ),
        pytest.param(
            PredicateChecks(predicate_type="https://spdx.dev/Document"),
            "its predicate type is 'https://slsa.dev/provenance/v1', not "
            "'https://spdx.dev/Document'",
            id="predicate-type",
        ),
    ],
)
def test_a_predicate_that_says_otherwise_fails(
    key: ec.EllipticCurvePrivateKey, checks: PredicateChecks, problem: str
) -> None:
    fails(
        check_attestation(raw(attested(key)), verifier(key), DIGEST, WHERE, checks),
        f"the attestation {WHERE} is refused: {problem}",
    )


def test_a_predicate_without_a_repository_fails_the_repository_check(
    key: ec.EllipticCurvePrivateKey,
) -> None:
    fails(
        check_attestation(
            raw(attested(key, repo=None)),
            verifier(key),
            DIGEST,
            WHERE,
            PredicateChecks(source_repository=REPO),
        ),
        f"the attestation {WHERE} is refused: it names source repository none, not {REPO}",
    )


def test_a_signature_is_not_an_attestation(key: ec.EllipticCurvePrivateKey) -> None:
    fails(
        check_attestation(raw(signed(key)), verifier(key), DIGEST, WHERE),
        f"the bundle {WHERE} holds a message signature, not an attestation (a DSSE envelope)",
    )


def _envelope_bundle(key: Any, payload: bytes, payload_type: str) -> dict[str, Any]:
    message = sign.pae(payload_type, payload)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        signature = key.sign(message)
    else:
        signature = key.sign(message, ec.ECDSA(hashes.SHA256()))
    bundle = attested(sign.new_key())
    bundle["dsseEnvelope"] = {
        "payload": base64.b64encode(payload).decode(),
        "payloadType": payload_type,
        "signatures": [{"sig": base64.b64encode(signature).decode()}],
    }
    return bundle


def test_an_ed25519_attestation_passes() -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    statement = sign.provenance(DIGEST, "fraud.bin", builder_id=BUILDER)
    bundle = _envelope_bundle(private, json.dumps(statement).encode(), sign.INTOTO_PAYLOAD_TYPE)
    outcome = check_attestation(raw(bundle), verifier(private), DIGEST, WHERE)
    assert outcome.status is GateStatus.PASSED, outcome


def test_an_envelope_of_another_payload_type_fails(key: ec.EllipticCurvePrivateKey) -> None:
    bundle = _envelope_bundle(key, b"{}", "application/json")
    fails(
        check_attestation(raw(bundle), verifier(key), DIGEST, WHERE),
        f"the attestation {WHERE} has payload type 'application/json', not "
        "application/vnd.in-toto+json",
    )


def test_a_signed_payload_that_is_no_statement_fails(key: ec.EllipticCurvePrivateKey) -> None:
    bundle = _envelope_bundle(key, b'{"_type": "x"}', sign.INTOTO_PAYLOAD_TYPE)
    fails(
        check_attestation(raw(bundle), verifier(key), DIGEST, WHERE),
        f"the attestation {WHERE} is not an in-toto statement (_type is not "
        "https://in-toto.io/Statement/v1 or https://in-toto.io/Statement/v0.1)",
    )


# ------------------------------------------------------------------- predicate fields

SLSA_V02 = {
    "builder": {"id": "https://github.com/slsa-framework/slsa-github-generator@v1.9.0"},
    "invocation": {"configSource": {"uri": "git+https://github.com/acme/fraud@refs/heads/main"}},
    "materials": [{"uri": "git+https://github.com/acme/features.git@refs/tags/v3"}],
}
SLSA_V1 = {
    "buildDefinition": {
        "externalParameters": {"workflow": {"repository": "https://github.com/acme/fraud"}},
        "resolvedDependencies": [{"uri": "git+https://github.com/acme/fraud@refs/heads/main"}],
    },
    "runDetails": {"builder": {"id": "https://github.com/actions/runner/github-hosted"}},
}


@pytest.mark.parametrize(
    ("predicate", "builder", "repositories"),
    [
        pytest.param(
            SLSA_V1,
            "https://github.com/actions/runner/github-hosted",
            ["https://github.com/acme/fraud"],
            id="slsa-v1",
        ),
        pytest.param(
            SLSA_V02,
            "https://github.com/slsa-framework/slsa-github-generator@v1.9.0",
            ["https://github.com/acme/fraud", "https://github.com/acme/features"],
            id="slsa-v0.2",
        ),
        pytest.param({}, None, [], id="empty"),
        pytest.param("text", None, [], id="not-a-mapping"),
    ],
)
def test_predicate_fields_are_read_from_either_slsa_version(
    predicate: Any, builder: str | None, repositories: list[str]
) -> None:
    assert builder_id(predicate) == builder
    assert source_repositories(predicate) == repositories


@pytest.mark.parametrize(
    ("uri", "normal"),
    [
        pytest.param("https://git.example.com/ml/fraud", REPO, id="plain"),
        pytest.param("git+https://git.example.com/ml/fraud@refs/heads/main", REPO, id="git+ref"),
        pytest.param("https://git.example.com/ml/fraud.git", REPO, id="dot-git"),
        pytest.param("https://git.example.com/ml/fraud/", REPO, id="slash"),
        pytest.param("HTTPS://git.example.com/ml/fraud", REPO, id="scheme-case"),
        pytest.param("https://git.example.com/ml/fraud2", REPO + "2", id="other-repo"),
    ],
)
def test_repositories_compare_without_decoration(uri: str, normal: str) -> None:
    assert normalize_repository(uri) == normal


# ---------------------------------------------------------- the documented commands


def test_the_signing_commands_make_bundles_the_gates_accept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    artifact = tmp_path / "fraud.bin"
    artifact.write_bytes(ARTIFACT)
    assert sign.main(["keygen", "--out", str(tmp_path / "release")]) == 0
    assert (tmp_path / "release.key").stat().st_mode & 0o777 == 0o600
    capsys.readouterr()
    assert sign.main(["digest", str(artifact)]) == 0
    assert capsys.readouterr().out.strip() == DIGEST
    assert sign.main(["sign", "--key", str(tmp_path / "release.key"), str(artifact)]) == 0
    signature = capsys.readouterr().out.encode()
    args = ["attest", "--key", str(tmp_path / "release.key"), DIGEST, "--name", "fraud.bin"]
    assert sign.main([*args, "--builder-id", BUILDER, "--source-repository", REPO]) == 0
    attestation = capsys.readouterr().out.encode()
    key = load_key((tmp_path / "release.pub").read_bytes(), KEY_WHERE)
    assert check_signature(signature, key, DIGEST, WHERE).status is GateStatus.PASSED
    assert check_attestation(attestation, key, DIGEST, WHERE, CHECKS).status is GateStatus.PASSED
    assert check_signature(signature, key, TAMPERED, WHERE).status is GateStatus.FAILED


# ---------------------------------------------------------------------------- keyless

IDENTITY = "model-trainer@ci.example.com"
ISSUER = "https://issuer.ci.example.com"
TRUST_WHERE = "ConfigMap ml/release-trust"


@pytest.fixture(scope="module")
def instance() -> SigstoreInstance:
    return SigstoreInstance()


def trust(
    instance: SigstoreInstance, identity: str = IDENTITY, issuer: str = ISSUER
) -> KeylessTrust:
    data = {TRUSTED_ROOT_KEY: instance.trusted_root, IDENTITY_KEY: identity, ISSUER_KEY: issuer}
    return load_keyless(data, TRUST_WHERE)


def keyless_signed(instance: SigstoreInstance, digest: str = DIGEST, **who: str) -> bytes:
    return raw(instance.sign(digest, identity=who.get("identity", IDENTITY), issuer=ISSUER))


def test_a_keyless_signature_passes_offline(instance: SigstoreInstance) -> None:
    outcome = check_signature(keyless_signed(instance), trust(instance), DIGEST, WHERE)
    assert outcome.status is GateStatus.PASSED, outcome
    assert outcome.message == (
        f"sha256:{DIGEST[7:19]} signed: bundle {WHERE} verified against the trusted root "
        f"{TRUST_WHERE} for {IDENTITY} from {ISSUER}"
    )


def test_a_keyless_signature_of_another_identity_fails(instance: SigstoreInstance) -> None:
    bundle = keyless_signed(instance, identity="intruder@ci.example.com")
    outcome = check_signature(bundle, trust(instance), DIGEST, WHERE)
    assert outcome.status is GateStatus.FAILED
    assert outcome.message.startswith(
        f"the signature in {WHERE} does not verify for sha256:{DIGEST[7:19]} against the "
        f"trusted root {TRUST_WHERE} for {IDENTITY} from {ISSUER}: "
    ), outcome
    assert "intruder@ci.example.com" in outcome.message
    assert outcome.message.endswith(NO_EVIDENCE)


def test_a_keyless_signature_from_another_issuer_fails(instance: SigstoreInstance) -> None:
    expected = trust(instance, issuer="https://token.actions.githubusercontent.com")
    outcome = check_signature(keyless_signed(instance), expected, DIGEST, WHERE)
    assert outcome.status is GateStatus.FAILED
    assert "does not verify for" in outcome.message
    assert ISSUER in outcome.message.split(": ", 1)[1], outcome


def test_a_keyless_signature_of_a_tampered_artifact_fails(instance: SigstoreInstance) -> None:
    fails(
        check_signature(keyless_signed(instance), trust(instance), TAMPERED, WHERE),
        f"the bundle {WHERE} is for sha256:{DIGEST[7:19]}, not the artifact's "
        f"sha256:{TAMPERED[7:19]}",
    )
    bundle = json.loads(keyless_signed(instance))
    del bundle["messageSignature"]["messageDigest"]
    outcome = check_signature(raw(bundle), trust(instance), TAMPERED, WHERE)
    assert outcome.status is GateStatus.FAILED
    assert outcome.message.startswith(
        f"the signature in {WHERE} does not verify for sha256:{TAMPERED[7:19]}"
    ), outcome


def test_a_bundle_of_another_sigstore_instance_fails(instance: SigstoreInstance) -> None:
    other = SigstoreInstance()
    outcome = check_signature(keyless_signed(other), trust(instance), DIGEST, WHERE)
    assert outcome.status is GateStatus.FAILED
    assert outcome.message.startswith(f"the signature in {WHERE} does not verify for"), outcome


def test_a_key_based_bundle_is_not_a_keyless_one(
    instance: SigstoreInstance, key: ec.EllipticCurvePrivateKey
) -> None:
    fails(
        check_signature(raw(signed(key)), trust(instance), DIGEST, WHERE),
        f"the bundle {WHERE} cannot be verified against the trusted root {TRUST_WHERE} for "
        f"{IDENTITY} from {ISSUER}: expected certificate in bundle",
    )


def test_a_keyless_attestation_passes_and_checks_its_signer(instance: SigstoreInstance) -> None:
    statement = sign.provenance(DIGEST, "fraud.bin", builder_id=BUILDER, source_repository=REPO)
    bundle = raw(instance.attest(statement, identity=IDENTITY, issuer=ISSUER))
    outcome = check_attestation(bundle, trust(instance), DIGEST, WHERE, CHECKS)
    assert outcome.status is GateStatus.PASSED, outcome
    assert outcome.message.endswith(
        f"verified against the trusted root {TRUST_WHERE} for {IDENTITY} from {ISSUER}"
    )
    other = raw(instance.attest(statement, identity="intruder@ci.example.com", issuer=ISSUER))
    refused = check_attestation(other, trust(instance), DIGEST, WHERE, CHECKS)
    assert refused.status is GateStatus.FAILED
    assert refused.message.startswith(
        f"the attestation {WHERE} does not verify against the trusted root {TRUST_WHERE}"
    ), refused
    about_other = check_attestation(bundle, trust(instance), TAMPERED, WHERE)
    assert about_other.status is GateStatus.FAILED
    assert f"is about sha256:{DIGEST[7:19]}, not the artifact's" in about_other.message


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        pytest.param(
            {IDENTITY_KEY: IDENTITY},
            f"the keyless verifier {TRUST_WHERE} lacks trusted_root.json, issuer",
            id="missing-keys",
        ),
        pytest.param(
            {TRUSTED_ROOT_KEY: "{}", IDENTITY_KEY: IDENTITY, ISSUER_KEY: ISSUER},
            f"the trusted root of {TRUST_WHERE} is not a usable Sigstore trusted root (",
            id="not-a-trusted-root",
        ),
    ],
)
def test_an_unusable_keyless_verifier_is_refused(data: dict[str, str], problem: str) -> None:
    with pytest.raises(UnusableEvidence) as raised:
        load_keyless(data, TRUST_WHERE)
    assert str(raised.value).startswith(problem), raised.value
