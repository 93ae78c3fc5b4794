"""Gates reading the cluster and the registry: SBOM, policy snapshot and freeze-window
ConfigMaps through the lab cluster (written with ``kubectl`` and the client, as a user
and a pipeline would), and MLflow ``models:/`` artifact digests against a real MLflow server."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from hack import sign_artifact as sign
from hack.lab.mlflow import MLflowServer
from hack.lab.testing.cluster_fixtures import Kubectl, manifest
from rollwise.adapters.gates import GateEvaluator
from rollwise.adapters.gates.digest import ARTIFACT_DIGEST_TAG
from rollwise.adapters.gates.policy import main as policy_main
from rollwise.adapters.gates.policy import policy_digest
from rollwise.adapters.kube import KubeAPI
from rollwise.adapters.registry.mlflow import MLflowRegistry
from rollwise.core.modelrelease.observations import (
    GATE_ARTIFACT,
    GATE_ATTESTATION,
    GATE_FREEZE,
    GATE_POLICY,
    GATE_SBOM,
    GATE_SIGNATURE,
)
from rollwise.core.modelrelease.status import GateStatus
from rollwise.core.spec_release import ModelReleaseSpec
from tests.sigstore_instance import SigstoreInstance

pytestmark = pytest.mark.lab

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday, 10:00 in Berlin


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def spec(uri: str = "s3://models/fraud/7", digest: str | None = None, **extra: Any) -> Any:
    body: dict[str, Any] = {
        "model": "fraud",
        "version": "7",
        "artifact": {"uri": uri, "digest": digest or sha(b"weights")},
        "change": {"ticket": "CHG-7"},
        "serving": {"inferenceServiceRef": {"name": "fraud"}},
        **extra,
    }
    return ModelReleaseSpec.model_validate(body)


def results(gates: GateEvaluator, namespace: str, release: Any, now: datetime = NOW) -> Any:
    return {r.name: r for r in gates.evaluate(namespace, release, now)}


@pytest.fixture
def core(kube_client: Any) -> Any:
    return client.CoreV1Api(kube_client)


def put_configmap(
    core: Any, namespace: str, name: str, data: dict[str, str] | None = None, **extra: Any
) -> None:
    body = {"metadata": {"name": name, "namespace": namespace}, "data": data, **extra}
    try:
        core.read_namespaced_config_map(name, namespace)
    except client.ApiException:
        core.create_namespaced_config_map(namespace, body)
        return
    core.replace_namespaced_config_map(name, namespace, body)


def sbom(*severities: str) -> str:
    return json.dumps(
        {
            "bomFormat": "CycloneDX",
            "specVersion": "1.5",
            "version": 1,
            "components": [
                {
                    "type": "library",
                    "bom-ref": "np",
                    "name": "numpy",
                    "purl": "pkg:pypi/numpy@1.24.0",
                }
            ],
            "vulnerabilities": [
                {"id": f"CVE-2026-{n}", "ratings": [{"severity": s}], "affects": [{"ref": "np"}]}
                for n, s in enumerate(severities)
            ],
        }
    )


# ---------------------------------------------------------------------------------- SBOM


def test_sbom_from_configmap_follows_its_content(
    kube_client: Any, core: Any, namespace: str
) -> None:
    gates = GateEvaluator(KubeAPI(kube_client), policy_configmap=None, freeze_configmap=None)
    release = spec(gates={"sbom": {"configMapKeyRef": {"name": "fraud-sbom", "key": "bom.json"}}})
    missing = results(gates, namespace, release)[GATE_SBOM]
    assert missing.status is GateStatus.PENDING
    assert "does not exist" in missing.message

    put_configmap(core, namespace, "fraud-sbom", {"other": "x"})
    no_key = results(gates, namespace, release)[GATE_SBOM]
    assert no_key.status is GateStatus.PENDING
    assert "has no such key" in no_key.message

    put_configmap(core, namespace, "fraud-sbom", {"bom.json": sbom("critical")})
    failed = results(gates, namespace, release)[GATE_SBOM]
    assert failed.status is GateStatus.FAILED
    assert "CVE-2026-0 (critical; pkg:pypi/numpy@1.24.0)" in failed.message
    assert f"ConfigMap {namespace}/fraud-sbom key bom.json" in failed.message

    # A rebuilt SBOM (new resourceVersion) is read again at once, no TTL.
    put_configmap(core, namespace, "fraud-sbom", {"bom.json": sbom("low")})
    passed = results(gates, namespace, release)[GATE_SBOM]
    assert passed.status is GateStatus.PASSED
    assert "1 components, no vulnerability at or above high; 1 below high" in passed.message

    put_configmap(core, namespace, "fraud-sbom", {"bom.json": "not json"})
    assert results(gates, namespace, release)[GATE_SBOM].status is GateStatus.FAILED


def test_sbom_in_binary_data(kube_client: Any, core: Any, namespace: str) -> None:
    import base64  # noqa: PLC0415

    encoded = base64.b64encode(sbom("high").encode()).decode()
    put_configmap(core, namespace, "bin-sbom", None, binaryData={"bom.json": encoded})
    gates = GateEvaluator(KubeAPI(kube_client), policy_configmap=None, freeze_configmap=None)
    release = spec(
        gates={
            "sbom": {
                "configMapKeyRef": {"name": "bin-sbom", "key": "bom.json"},
                "maxSeverity": "critical",
            }
        }
    )
    result = results(gates, namespace, release)[GATE_SBOM]
    assert result.status is GateStatus.PASSED
    assert "no vulnerability at or above critical; 1 below critical" in result.message


# ---------------------------------------------------------------- signature, attestation


def test_signature_and_attestation_follow_the_key_and_bundle_configmaps(
    kube_client: Any, core: Any, namespace: str
) -> None:
    gates = GateEvaluator(KubeAPI(kube_client), policy_configmap=None, freeze_configmap=None)
    digest = sha(b"weights")
    verifier = {"publicKey": {"configMapKeyRef": {"name": "release-keys", "key": "release.pub"}}}
    builder = "https://ci.example.com/builders/model-trainer@v1"
    release = spec(
        digest=digest,
        gates={
            "signature": {
                "configMapKeyRef": {"name": "fraud-evidence", "key": "sig.json"},
                "verifier": verifier,
            },
            "attestation": {
                "configMapKeyRef": {"name": "fraud-evidence", "key": "att.json"},
                "verifier": verifier,
                "builderId": builder,
            },
        },
    )
    key, intruder = sign.new_key(), sign.new_key()
    keys = f"ConfigMap {namespace}/release-keys key release.pub"
    no_key = results(gates, namespace, release)[GATE_SIGNATURE]
    assert no_key.status is GateStatus.FAILED
    assert no_key.message == (
        f"the verification key {keys} cannot be read: the ConfigMap does not exist; "
        "no evidence, no promotion"
    )

    put_configmap(core, namespace, "release-keys", {"release.pub": sign.public_pem(key).decode()})
    no_bundle = results(gates, namespace, release)[GATE_SIGNATURE]
    assert no_bundle.status is GateStatus.FAILED
    assert no_bundle.message == (
        f"signature bundle ConfigMap {namespace}/fraud-evidence key sig.json: the ConfigMap "
        "does not exist; no evidence, no promotion"
    )

    # Bundles signed by another key than the release's: both gates fail.
    def evidence(signer: Any) -> dict[str, str]:
        statement = sign.provenance(digest, "fraud.bin", builder_id=builder)
        return {
            "sig.json": json.dumps(sign.signature_bundle(signer, digest)),
            "att.json": json.dumps(sign.attestation_bundle(signer, statement)),
        }

    put_configmap(core, namespace, "fraud-evidence", evidence(intruder))
    found = results(gates, namespace, release)
    assert found[GATE_SIGNATURE].status is GateStatus.FAILED
    assert "does not verify for" in found[GATE_SIGNATURE].message
    assert found[GATE_ATTESTATION].status is GateStatus.FAILED
    assert "is not signed by the key" in found[GATE_ATTESTATION].message

    # Signed by the release's key (a new resourceVersion): verified again at once, both pass.
    put_configmap(core, namespace, "fraud-evidence", evidence(key))
    found = results(gates, namespace, release)
    assert found[GATE_SIGNATURE].status is GateStatus.PASSED, found[GATE_SIGNATURE]
    assert found[GATE_ATTESTATION].status is GateStatus.PASSED, found[GATE_ATTESTATION]
    assert f"verified with the key {keys} (sha256:" in found[GATE_SIGNATURE].message

    # The key is rotated to one that did not sign: the same bundles fail again.
    put_configmap(
        core, namespace, "release-keys", {"release.pub": sign.public_pem(intruder).decode()}
    )
    found = results(gates, namespace, release)
    assert found[GATE_SIGNATURE].status is GateStatus.FAILED
    assert found[GATE_ATTESTATION].status is GateStatus.FAILED

    put_configmap(core, namespace, "release-keys", {"release.pub": "not a key"})
    unusable = results(gates, namespace, release)[GATE_SIGNATURE]
    assert unusable.status is GateStatus.FAILED
    assert unusable.message == (
        f"the key {keys} is not a PEM public key; no evidence, no promotion"
    )


def test_keyless_signature_follows_the_trust_configmap(
    kube_client: Any, core: Any, namespace: str
) -> None:
    gates = GateEvaluator(KubeAPI(kube_client), policy_configmap=None, freeze_configmap=None)
    digest = sha(b"weights")
    identity, issuer = "model-trainer@ci.example.com", "https://issuer.ci.example.com"
    release = spec(
        digest=digest,
        gates={
            "signature": {
                "configMapKeyRef": {"name": "keyless-evidence", "key": "sig.json"},
                "verifier": {"keyless": {"configMapRef": {"name": "release-trust"}}},
            }
        },
    )
    instance = SigstoreInstance()
    where = f"ConfigMap {namespace}/release-trust"
    missing = results(gates, namespace, release)[GATE_SIGNATURE]
    assert missing.status is GateStatus.FAILED
    assert missing.message == (
        f"the keyless verifier {where} cannot be read: the ConfigMap does not exist; "
        "no evidence, no promotion"
    )
    bundle = instance.sign(digest, identity=identity, issuer=issuer)
    put_configmap(core, namespace, "keyless-evidence", {"sig.json": json.dumps(bundle)})
    trust = {"trusted_root.json": instance.trusted_root, "identity": identity, "issuer": issuer}
    put_configmap(core, namespace, "release-trust", trust)
    passed = results(gates, namespace, release)[GATE_SIGNATURE]
    assert passed.status is GateStatus.PASSED, passed
    assert passed.message.endswith(
        f"verified against the trusted root {where} for {identity} from {issuer}"
    )

    # The platform expects another identity now: the same bundle fails at once.
    put_configmap(core, namespace, "release-trust", {**trust, "identity": "release@example.com"})
    refused = results(gates, namespace, release)[GATE_SIGNATURE]
    assert refused.status is GateStatus.FAILED
    assert "Certificate's SANs do not match release@example.com" in refused.message


# -------------------------------------------------------------------------------- policy


POLICY: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "rollwise-policy"},
    "data": {"max-canary-weight": "50", "required-roles": "security,product"},
}


def test_policy_digest_computed_by_the_cli_matches_the_cluster(
    kube_client: Any,
    kubectl: Kubectl,
    namespace: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        manifest({**POLICY, "metadata": {**POLICY["metadata"], "namespace": namespace}})
    )
    kubectl("apply", "-f", str(path), check=True)
    # The user computes the digest from the manifest they applied...
    assert policy_main([str(path)]) == 0
    digest = capsys.readouterr().out.split()[0]
    gates = GateEvaluator(
        KubeAPI(kube_client),
        policy_configmap=(namespace, "rollwise-policy"),
        freeze_configmap=None,
    )
    passed = results(gates, namespace, spec(policyDigest=digest))[GATE_POLICY]
    assert passed.status is GateStatus.PASSED
    # ... and from what the cluster serves back.
    served = kubectl("get", "configmap", "rollwise-policy", "-o", "yaml", namespace=namespace)
    assert policy_digest(yaml.safe_load(served.stdout)["data"]) == digest

    # The policy changes: a release prepared against the old one fails, naming both digests.
    patch = '{"data": {"max-canary-weight": "25"}}'
    kubectl(
        "patch",
        "configmap",
        "rollwise-policy",
        "--type=merge",
        "-p",
        patch,
        namespace=namespace,
        check=True,
    )
    failed = results(gates, namespace, spec(policyDigest=digest))[GATE_POLICY]
    assert failed.status is GateStatus.FAILED
    assert digest[:19] in failed.message
    new = policy_digest({"max-canary-weight": "25", "required-roles": "security,product"})
    assert new[:19] in failed.message

    kubectl("delete", "configmap", "rollwise-policy", namespace=namespace, check=True)
    gone = results(gates, namespace, spec(policyDigest=digest))[GATE_POLICY]
    assert gone.status is GateStatus.PENDING
    assert f"{namespace}/rollwise-policy not found" in gone.message


# -------------------------------------------------------------------------------- freeze


def test_cluster_freeze_windows(kube_client: Any, core: Any, namespace: str) -> None:
    gates = GateEvaluator(
        KubeAPI(kube_client),
        policy_configmap=None,
        freeze_configmap=(namespace, "rollwise-freeze"),
    )
    missing = results(gates, namespace, spec())[GATE_FREEZE]
    assert missing.status is GateStatus.PENDING
    assert f"freeze ConfigMap {namespace}/rollwise-freeze does not exist" in missing.message

    put_configmap(core, namespace, "rollwise-freeze", {"note": "no windows yet"})
    assert results(gates, namespace, spec())[GATE_FREEZE].status is GateStatus.PASSED

    windows = """
- name: business-hours
  schedule: "0 9 * * MON-FRI"
  duration: 8h
  timeZone: Europe/Berlin
- name: year-end
  start: "2026-12-20T00:00:00Z"
  end: "2027-01-04T00:00:00Z"
"""
    put_configmap(core, namespace, "rollwise-freeze", {"windows": windows})
    monday = results(gates, namespace, spec())[GATE_FREEZE]
    assert monday.status is GateStatus.FAILED
    assert monday.message == "freeze window business-hours is open until 2026-11-23T16:00:00Z"
    sunday = results(gates, namespace, spec(), datetime(2026, 11, 22, 9, tzinfo=UTC))
    assert sunday[GATE_FREEZE].status is GateStatus.PASSED
    assert sunday[GATE_FREEZE].message == "no freeze window open (2 checked)"

    # Spec windows and cluster windows both count.
    own = [{"name": "launch", "start": "2026-11-22T00:00:00Z", "end": "2026-11-22T18:00:00Z"}]
    both = results(
        gates, namespace, spec(gates={"freezeWindows": own}), datetime(2026, 11, 22, 9, tzinfo=UTC)
    )
    assert both[GATE_FREEZE].message == "freeze window launch is open until 2026-11-22T18:00:00Z"

    put_configmap(core, namespace, "rollwise-freeze", {"windows": "- name: x\n  schedule: nope"})
    broken = results(gates, namespace, spec(), datetime(2026, 11, 22, 9, tzinfo=UTC))
    assert broken[GATE_FREEZE].status is GateStatus.FAILED
    assert "invalid freeze window definitions: freeze window x:" in broken[GATE_FREEZE].message


# ------------------------------------------------------------------------- MLflow models:/


def new_model() -> str:
    return f"gate-{uuid.uuid4().hex[:8]}"


def set_tag(server: MLflowServer, model: str, version: str, key: str, value: str) -> None:
    server.api(
        "POST",
        "model-versions/set-tag",
        {"name": model, "version": version, "key": key, "value": value},
    )


def test_models_uri_uses_the_digest_recorded_in_mlflow(
    kube_client: Any, mlflow_server: MLflowServer
) -> None:
    model = new_model()
    digest = sha(b"fraud model 1")
    tagged = mlflow_server.create_version(model)["version"]
    set_tag(mlflow_server, model, tagged, ARTIFACT_DIGEST_TAG, digest)
    legacy = mlflow_server.create_version(model, digest=digest)["version"]  # rollwise.dev/digest
    untagged = mlflow_server.create_version(model)["version"]
    gates = GateEvaluator(
        KubeAPI(kube_client),
        policy_configmap=None,
        freeze_configmap=None,
        registries={"default": MLflowRegistry("default", mlflow_server.url)},
    )

    def artifact(uri: str, expected: str = digest, **extra: Any) -> Any:
        return results(gates, "ml", spec(uri, expected, **extra))[GATE_ARTIFACT]

    passed = artifact(f"models:/{model}/{tagged}")
    assert passed.status is GateStatus.PASSED
    assert f"MLflow model version {model}/{tagged}" in passed.message
    assert artifact(f"models:/{model}/{legacy}").status is GateStatus.PASSED

    mismatch = artifact(f"models:/{model}/{tagged}", sha(b"something else"))
    assert mismatch.status is GateStatus.FAILED
    assert digest[:19] in mismatch.message
    assert sha(b"something else")[:19] in mismatch.message

    none = artifact(f"models:/{model}/{untagged}")
    assert none.status is GateStatus.PENDING
    assert "no digest recorded" in none.message

    unknown = artifact(f"models:/{model}/99")
    assert unknown.status is GateStatus.PENDING
    assert "not found" in unknown.message

    # The registry the release's alias store names wins over the operator's default.
    named = GateEvaluator(
        KubeAPI(kube_client),
        policy_configmap=None,
        freeze_configmap=None,
        registries={
            "default": MLflowRegistry("default", "http://127.0.0.1:9"),
            "main": MLflowRegistry("main", mlflow_server.url),
        },
    )
    own_store = {"store": {"mlflow": {"registry": "main"}}}
    result = named.evaluate("ml", spec(f"models:/{model}/{tagged}", digest, alias=own_store), NOW)
    assert result[0].status is GateStatus.PASSED
