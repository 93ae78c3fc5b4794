"""ModelRelease evidence end to end: the model card, the security decision and the
revalidation date, as users live them, with the real operator and its admission webhook.

Same lab and people as ``test_governance_e2e.py`` (alice creates, bob approves as security,
carol as product). The evidence lives in ConfigMaps of the test's namespace; everything is
read back with kubectl, ``kubectl rollwise get modelrelease`` and the API.

Scenarios: a Rego deny at the promote point holds a release whose canary passed, its message
in the gate, the events and ``kubectl rollwise get``; a model card lacking a required field
keeps the release a Candidate (its message in ``kubectl rollwise get``) until the card is
completed, and a PASS security decision lets it through; a revalidation date already passed
blocks a Candidate (condition, Warning event, the plugin's Revalidate line) until it is moved
forward; a version in Production whose date passes is flagged (condition and Warning event)
and keeps serving; a release whose artifact was changed after signing is refused by the
signature gate, and the signed artifact passes the signature and attestation gates; a waiver
of a signature by an untrusted key hides the failure only until it expires.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hack import sign_artifact as sign
from hack.lab.testing.cluster_fixtures import grant_namespace
from rollwise.adapters.gates.policy import policy_digest
from tests.e2e.support import Cluster, StartOperator, eventually
from tests.e2e.test_governance_e2e import (
    CREATOR,
    PEOPLE,
    ROLE_GROUPS,
    Governance,
    events_by_reason,
    gate,
    gov,
    release_docs,
    rfc3339,
)
from tests.e2e.test_modelrelease_e2e import CLIENT_SERVICE, status_of, write_artifact

__all__ = ["gov"]  # the fixture, imported for the tests below

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(300),
    pytest.mark.lab_only(
        "runs an operator process of its own with its admission webhook, and acts as several "
        "people the lab cluster authenticates by token"
    ),
]

CARD_WITHOUT_METRICS = """---
license: apache-2.0
intended_use: Scoring card transactions for fraud review.
model_details:
  owners: [fraud-team@example.com]
---
# Fraud detector
"""

CARD = """---
license: apache-2.0
intended_use: Scoring card transactions for fraud review.
model_details:
  owners: [fraud-team@example.com]
metrics:
  auc: 0.94
---
# Fraud detector
"""


def configmap(name: str, key: str, value: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": {key: value},
    }


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == kind), {})


def plugin_view(gov: Governance, name: str) -> str:
    proc = gov.rollwise(CREATOR, "get", "modelrelease", name)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_a_model_card_missing_a_required_field_blocks_until_completed(
    cluster: Cluster, gov: Governance, tmp_path: Path
) -> None:
    model = f"fraud-{cluster.test_id}"
    card_name, decision_name = f"{model}-card", f"{model}-security"
    docs, name, _ = release_docs(
        cluster,
        tmp_path,
        gates={
            "modelCard": {
                "configMapKeyRef": {"name": card_name, "key": "README.md"},
                "requiredFields": [
                    "license",
                    "intended_use",
                    "model_details.owners",
                    "metrics.auc",
                ],
            },
            "securityDecision": {
                "configMapKeyRef": {"name": decision_name, "key": "decision.json"}
            },
        },
    )
    decided_at = rfc3339(datetime.now(UTC) - timedelta(hours=1))
    decision = {
        "decision": "PASS",
        "decidedBy": "sec-review@example.com",
        "decidedAt": decided_at,
        "model": model,
        "version": "1",
        "reason": "review SEC-311",
    }
    gov.create(
        [
            configmap(card_name, "README.md", CARD_WITHOUT_METRICS),
            configmap(decision_name, "decision.json", json.dumps(decision)),
            *docs,
        ],
        name,
    )
    status = gov.wait(
        name, "model-card Failed", lambda s: gate(s, "model-card").get("status") == "Failed"
    )
    card = gate(status, "model-card")
    assert card["message"] == (
        f"model card ConfigMap {cluster.namespace}/{card_name} key README.md lacks required "
        "field metrics.auc; no evidence, no promotion"
    )
    security = gate(status, "security-decision")
    assert security["status"] == "Passed", security
    assert security["message"] == (
        f"security decision ConfigMap {cluster.namespace}/{decision_name} key decision.json: "
        f"PASS by sec-review@example.com at {decided_at}: review SEC-311"
    )
    assert status["stage"] == "Candidate"
    assert "model-card Failed" in status["message"], status["message"]
    [failed] = events_by_reason(cluster, name)["GateFailed"]
    assert failed["type"] == "Warning"
    assert "gate model-card failed: model card" in failed["message"], failed
    view = plugin_view(gov, name)
    assert "lacks required field metrics.auc" in view, view
    rollouts = gov.k("bob", "get", "rollouts.rollwise.dev", "-o", "name")
    assert rollouts.stdout.strip() == "", "no child Rollout: no traffic ever reached the version"

    # The card is completed: the gate passes and the release goes on to Staging.
    done = gov.k(
        CREATOR, "apply", "-f", "-", input=json.dumps(configmap(card_name, "README.md", CARD))
    )
    assert done.returncode == 0, done.stderr
    status = gov.stage(name, "Staging", timeout=40)
    assert gate(status, "model-card")["status"] == "Passed"
    assert "all 4 required fields present" in gate(status, "model-card")["message"]


def test_a_passed_revalidation_date_blocks_a_candidate_until_moved_forward(
    cluster: Cluster, gov: Governance, tmp_path: Path
) -> None:
    docs, name, ticket = release_docs(cluster, tmp_path)
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    docs[-1]["spec"]["revalidateBy"] = yesterday
    gov.create(docs, name)
    status = gov.wait(
        name,
        "RevalidationDue True",
        lambda s: condition(s, "RevalidationDue").get("status") == "True",
    )
    flag = condition(status, "RevalidationDue")
    assert flag["reason"] == "Overdue"
    assert f"{yesterday}T00:00:00Z" in flag["message"]
    assert gate(status, "revalidate-by")["status"] == "Failed"
    assert status["stage"] == "Candidate"
    [due] = events_by_reason(cluster, name)["RevalidationDue"]
    assert due["type"] == "Warning"
    assert due["message"].startswith(
        f"version 1 (Candidate) was due for revalidation at {yesterday}T00:00:00Z"
    ), due
    assert f"[change {ticket}]" in due["message"]
    assert f"Revalidate:  OVERDUE since {yesterday}T00:00:00Z" in plugin_view(gov, name)

    # Revalidated: the date moves forward and the release proceeds.
    later = (datetime.now(UTC) + timedelta(days=180)).date().isoformat()
    patch = json.dumps({"spec": {"revalidateBy": later}})
    moved = gov.k(CREATOR, "patch", "modelrelease", name, "--type", "merge", "-p", patch)
    assert moved.returncode == 0, moved.stderr
    status = gov.stage(name, "Staging", timeout=40)
    flag = condition(status, "RevalidationDue")
    assert (flag["status"], flag["reason"]) == ("False", "Scheduled")
    assert f"Revalidate:  by {later}T00:00:00Z" in plugin_view(gov, name)


def test_a_version_in_production_is_flagged_once_its_revalidation_date_passes(
    cluster: Cluster, gov: Governance, tmp_path: Path
) -> None:
    docs, name, _ = release_docs(cluster, tmp_path)
    gov.create(docs, name)
    gov.approved("bob", name, "security")
    gov.approved("carol", name, "product")
    status = gov.stage(name, "Production", timeout=60)
    assert condition(status, "RevalidationDue") == {}

    past = rfc3339(datetime.now(UTC) - timedelta(minutes=1))
    patch = json.dumps({"spec": {"revalidateBy": past}})
    moved = gov.k(CREATOR, "patch", "modelrelease", name, "--type", "merge", "-p", patch)
    assert moved.returncode == 0, moved.stderr
    status = gov.wait(
        name,
        "RevalidationDue True",
        lambda s: condition(s, "RevalidationDue").get("status") == "True",
    )
    assert status["stage"] == "Production"
    assert status["phase"] == "Healthy"
    [due] = events_by_reason(cluster, name)["RevalidationDue"]
    assert due["type"] == "Warning"
    assert f"version 1 (Production) was due for revalidation at {past}" in due["message"], due
    assert f"Revalidate:  OVERDUE since {past}" in plugin_view(gov, name)


# --------------------------------------------------------------------------- Rego policies

POLICY_CONFIGMAP = "rollwise-policy"

ACCEPT_REGO = """package registry.accept
import rego.v1

default allow := false
allow if startswith(input.change.ticket, "CHG-")
"""

PROMOTE_REGO = """package registry.promote
import rego.v1

default allow := false
allow if count(deny) == 0

deny contains msg if {
    some a in input.approvals
    a.role == "security"
    not a.user in data.security_leads
    msg := sprintf("security approval by %v is not from a security lead", [a.user])
}
"""

POLICY_DATA = {
    "accept.rego": ACCEPT_REGO,
    "promote.rego": PROMOTE_REGO,
    "leads.json": json.dumps({"security_leads": ["erin"]}),
}


@pytest.fixture
def gov_policy(cluster: Cluster, start_operator: StartOperator, tmp_path: Path) -> Governance:
    """Like ``gov``, with the operator's policy snapshot ConfigMap (Rego modules and data) in
    the test's namespace."""
    grant_namespace(cluster.the_lab.running_cluster, cluster.namespace, list(PEOPLE))
    policy = configmap(POLICY_CONFIGMAP, "leads.json", POLICY_DATA["leads.json"])
    policy["data"] = dict(POLICY_DATA)
    applied = cluster.k("apply", "-f", "-", input=json.dumps(policy))
    assert applied.returncode == 0, applied.stderr
    operator = start_operator(
        "--namespace",
        cluster.namespace,
        ROLLWISE_ROLE_GROUPS=ROLE_GROUPS,
        ROLLWISE_EVIDENCE_POLICY=json.dumps({"filePathPrefixes": [str(tmp_path)]}),
        ROLLWISE_POLICY_CONFIGMAP=f"{cluster.namespace}/{POLICY_CONFIGMAP}",
    )
    start_operator.wait_webhook(operator)
    cluster.the_lab.start_traffic(f"service/{cluster.namespace}/{CLIENT_SERVICE}", rate=50)
    return Governance(cluster, operator, tmp_path)


def test_a_rego_deny_blocks_promotion_and_is_shown_by_the_plugin(
    cluster: Cluster, gov_policy: Governance, tmp_path: Path
) -> None:
    gov = gov_policy
    docs, name, ticket = release_docs(cluster, tmp_path)
    digest = policy_digest(POLICY_DATA)
    docs[-1]["spec"]["policyDigest"] = digest
    gov.create(docs, name)
    status = gov.stage(name, "Staging", timeout=40)
    assert gate(status, "policy-digest")["status"] == "Passed"
    accept = gate(status, "policy-accept")
    assert accept["status"] == "Passed", accept
    where = f"policy bundle {cluster.namespace}/{POLICY_CONFIGMAP} ({digest[:19]})"
    assert accept["message"] == f"{where} allows accept"

    gov.approved("bob", name, "security")
    gov.approved("carol", name, "product")
    denial = "security approval by bob is not from a security lead"
    status = gov.wait(
        name,
        "policy-promote Failed",
        lambda s: gate(s, "policy-promote").get("status") == "Failed",
        timeout=40,
    )
    assert gate(status, "policy-promote")["message"] == f"{where} denies promote: {denial}"
    status = gov.wait(
        name,
        "held in Staging by the policy",
        lambda s: "waiting for policy-promote Failed" in s.get("message", ""),
        timeout=40,
    )
    assert status["stage"] == "Staging"
    assert gate(status, "approvals")["status"] == "Passed"
    events = events_by_reason(cluster, name)
    [failed] = [e for e in events["GateFailed"] if "policy-promote" in e["message"]]
    assert failed["type"] == "Warning"
    assert denial in failed["message"]
    assert f"[change {ticket}]" in failed["message"]
    assert "ReleaseApproved" not in events
    view = plugin_view(gov, name)
    assert denial in view, view


CANARY_REGO = """package runtime.canary
import rego.v1

default proceed := false
proceed if count(deny) == 0

deny contains msg if {
    input.release.spec.model in data.canary_blocked_models
    msg := sprintf(
        "model %v is not cleared for a canary by the risk board",
        [input.release.spec.model],
    )
}
"""


def test_a_rego_canary_denial_rolls_the_canary_back(
    cluster: Cluster, gov_policy: Governance, tmp_path: Path
) -> None:
    gov = gov_policy
    docs, name, ticket = release_docs(cluster, tmp_path)
    model = docs[-1]["spec"]["model"]
    # A new snapshot with a canary point, published before the release binds to it.
    data = {
        **POLICY_DATA,
        "canary.rego": CANARY_REGO,
        "blocked.json": json.dumps({"canary_blocked_models": [model]}),
    }
    snapshot = configmap(POLICY_CONFIGMAP, "leads.json", data["leads.json"])
    snapshot["data"] = data
    applied = cluster.k("apply", "-f", "-", input=json.dumps(snapshot))
    assert applied.returncode == 0, applied.stderr
    digest = policy_digest(data)
    docs[-1]["spec"]["policyDigest"] = digest
    gov.create(docs, name)
    denial = f"model {model} is not cleared for a canary by the risk board"

    def rolled_back() -> dict[str, Any] | None:
        found = status_of(cluster, name)
        return found if found.get("stage") == "RolledBack" else None

    status = eventually(
        rolled_back,
        timeout=90,
        what=f"{name}: rolled back by the canary policy",
    )
    where = f"policy bundle {cluster.namespace}/{POLICY_CONFIGMAP} ({digest[:19]})"
    assert gate(status, "policy-canary")["status"] == "Failed"
    assert gate(status, "policy-canary")["message"] == f"{where} denies canary: {denial}"
    assert f"policy-canary: {where} denies canary: {denial}" in status["message"]
    # The accept point passed: the release reached Staging and ran its canary first.
    assert [h["stage"] for h in status["history"]][-2:] == ["Staging", "RolledBack"]
    events = events_by_reason(cluster, name)
    [failed] = [e for e in events["GateFailed"] if "policy-canary" in e["message"]]
    assert failed["type"] == "Warning"
    assert denial in failed["message"]
    assert f"[change {ticket}]" in failed["message"]
    assert "ReleaseApproved" not in events
    assert denial in plugin_view(gov, name)


# --------------------------------------------------------------------------- serving gate


def serving_deployment(name: str, model: str, version: str) -> dict[str, Any]:
    """A Deployment serving ``model`` ``version`` by hand, as a user would apply one."""
    labels = {"app": name, "rollwise.dev/model": model, "rollwise.dev/model-version": version}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "server", "image": "model-server:1"}]},
            },
        },
    }


def serving_inference_service(name: str, model: str, version: str) -> dict[str, Any]:
    """A KServe InferenceService serving ``model`` ``version`` by hand."""
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "labels": {"rollwise.dev/model": model, "rollwise.dev/model-version": version},
        },
        "spec": {
            "predictor": {
                "model": {
                    "modelFormat": {"name": "sklearn"},
                    "storageUri": f"models:/{model}/{version}",
                }
            }
        },
    }


def test_the_api_server_refuses_serving_a_revoked_version_through_the_webhook(
    cluster: Cluster, gov: Governance, tmp_path: Path
) -> None:
    docs, name, _ = release_docs(cluster, tmp_path)
    model = docs[-1]["spec"]["model"]
    # A version no release knows is refused before anything else happens.
    unknown = gov.k(
        CREATOR, "apply", "-f", "-", input=json.dumps(serving_deployment("srv-9", model, "9"))
    )
    assert unknown.returncode != 0, unknown.stdout
    assert (
        'admission webhook "serving-gate.rollwise.dev" denied the request: Deployment '
        f"{cluster.namespace}/srv-9 serves model {model} version 9, which no ModelRelease in "
        f"namespace {cluster.namespace} releases"
    ) in unknown.stderr, unknown.stderr

    gov.create(docs, name)
    gov.approved("bob", name, "security")
    gov.approved("carol", name, "product")
    gov.stage(name, "Production", timeout=60)
    served = serving_deployment("srv-1", model, "1")
    admitted = gov.k(CREATOR, "apply", "-f", "-", input=json.dumps(served))
    assert admitted.returncode == 0, admitted.stderr

    revoked = gov.rollwise(
        "bob", "revoke", f"modelrelease/{name}", "--reason", "data leak in training set"
    )
    assert revoked.returncode == 0, revoked.stdout + revoked.stderr
    # (Governance.wait fails on Revoked: here it is the expected end.)
    eventually(
        lambda: status_of(cluster, name).get("stage") == "Revoked",
        timeout=60,
        what=f"{name}: stage Revoked",
    )
    served["spec"]["replicas"] = 2
    again = gov.k(CREATOR, "apply", "-f", "-", input=json.dumps(served))
    assert again.returncode != 0, again.stdout
    assert (
        'admission webhook "serving-gate.rollwise.dev" denied the request: Deployment '
        f"{cluster.namespace}/srv-1 serves model {model} version 1, which ModelRelease {name} "
        "revoked: refused"
    ) in again.stderr, again.stderr
    replicas = gov.k(CREATOR, "get", "deployment", "srv-1", "-o", "jsonpath={.spec.replicas}")
    assert replicas.stdout.strip() == "1", "the refused update changed nothing"
    # The same gate holds for KServe: an InferenceService naming the revoked version is refused
    # at creation, and nothing is created.
    api = cluster.the_lab.running_cluster.api
    base = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{cluster.namespace}"
    isvc_rule = {
        "apiGroups": ["serving.kserve.io"],
        "resources": ["inferenceservices"],
        "verbs": ["get", "list", "create", "update", "patch"],
    }
    api("POST", f"{base}/roles", body={"metadata": {"name": "serving"}, "rules": [isvc_rule]})
    api(
        "POST",
        f"{base}/rolebindings",
        body={
            "metadata": {"name": "serving"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "serving"},
            "subjects": [
                {"kind": "User", "name": CREATOR, "apiGroup": "rbac.authorization.k8s.io"}
            ],
        },
    )
    isvc = serving_inference_service("isvc-1", model, "1")
    refused = gov.k(CREATOR, "apply", "-f", "-", input=json.dumps(isvc))
    assert refused.returncode != 0, refused.stdout
    assert (
        'admission webhook "serving-gate.rollwise.dev" denied the request: InferenceService '
        f"{cluster.namespace}/isvc-1 serves model {model} version 1, which ModelRelease {name} "
        "revoked: refused"
    ) in refused.stderr, refused.stderr
    absent = gov.k(CREATOR, "get", "inferenceservice", "isvc-1", "--ignore-not-found", "-o", "name")
    assert absent.stdout.strip() == "", absent.stdout


# ------------------------------------------------------------------------ CRD validation


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        pytest.param(
            "gates",
            {
                "modelCard": {
                    "url": "https://evidence.example/card.md",
                    "configMapKeyRef": {"name": "card", "key": "README.md"},
                }
            },
            "gates.modelCard needs exactly one of configMapKeyRef or url",
            id="card-two-sources",
        ),
        pytest.param(
            "gates",
            {"securityDecision": {}},
            "gates.securityDecision needs exactly one of configMapKeyRef or url",
            id="decision-no-source",
        ),
        pytest.param(
            "gates",
            {"modelCard": {"url": "https://e.example/c", "requiredFields": ["a..b"]}},
            "spec.gates.modelCard.requiredFields[0]",
            id="card-field-path",
        ),
        pytest.param("revalidateBy", "next year", "spec.revalidateBy", id="revalidate-by"),
    ],
)
def test_the_api_server_refuses_malformed_evidence_fields(
    cluster: Cluster, tmp_path: Path, field: str, value: Any, message: str
) -> None:
    docs, name, _ = release_docs(cluster, tmp_path)
    docs[-1]["spec"][field] = value
    proc = cluster.k("apply", "-f", "-", input=json.dumps(docs[-1]), check=False)
    assert proc.returncode != 0, proc.stdout
    assert message in proc.stderr, proc.stderr
    assert cluster.k("get", "modelrelease", name, check=False).returncode != 0


BUILDER = "https://ci.example.com/builders/model-trainer@v1"
SOURCE = "https://git.example.com/ml/fraud"


def test_a_tampered_artifact_is_refused_and_the_signed_one_passes(
    cluster: Cluster, gov: Governance, tmp_path: Path
) -> None:
    model = f"fraud-{cluster.test_id}"
    signed = write_artifact(tmp_path, model, "1")
    path = Path(signed.uri.removeprefix("file://"))
    original = path.read_bytes()
    key = sign.new_key()
    keys, evidence = f"{model}-keys", f"{model}-evidence"
    verifier = {"publicKey": {"configMapKeyRef": {"name": keys, "key": "release.pub"}}}
    docs, name, ticket = release_docs(
        cluster,
        tmp_path,
        gates={
            "signature": {
                "configMapKeyRef": {"name": evidence, "key": "model.sigstore.json"},
                "verifier": verifier,
            },
            "attestation": {
                "configMapKeyRef": {"name": evidence, "key": "provenance.sigstore.json"},
                "verifier": verifier,
                "predicateType": sign.SLSA_PROVENANCE_V1,
                "builderId": BUILDER,
                "sourceRepository": SOURCE,
            },
        },
    )
    bundles = {
        "model.sigstore.json": json.dumps(sign.signature_bundle(key, signed.digest)),
        "provenance.sigstore.json": json.dumps(
            sign.attestation_bundle(
                key,
                sign.provenance(
                    signed.digest, path.name, builder_id=BUILDER, source_repository=SOURCE
                ),
            )
        ),
    }
    # The artifact is changed after signing, and the release names the changed bytes' digest
    # (so the artifact-digest gate passes): only the signature can tell.
    path.write_bytes(original + b"backdoor\n")
    tampered = sign.file_digest(path)
    docs[-1]["spec"]["artifact"]["digest"] = tampered
    gov.create(
        [
            configmap(keys, "release.pub", sign.public_pem(key).decode()),
            {**configmap(evidence, "model.sigstore.json", ""), "data": bundles},
            *docs,
        ],
        name,
    )
    status = gov.wait(
        name, "signature Failed", lambda s: gate(s, "signature").get("status") == "Failed"
    )
    assert gate(status, "artifact-digest")["status"] == "Passed"
    where = f"ConfigMap {cluster.namespace}/{evidence}"
    assert gate(status, "signature")["message"] == (
        f"the bundle {where} key model.sigstore.json is for {signed.digest[:19]}, not the "
        f"artifact's {tampered[:19]}; no evidence, no promotion"
    )
    attestation = gate(status, "attestation")
    assert attestation["status"] == "Failed"
    assert attestation["message"].startswith(
        f"the attestation {where} key provenance.sigstore.json is about {signed.digest[:19]}, "
        f"not the artifact's {tampered[:19]}"
    ), attestation
    assert status["stage"] == "Candidate"
    failed = events_by_reason(cluster, name)["GateFailed"]
    assert any("gate signature failed: the bundle" in e["message"] for e in failed), failed
    assert all(e["type"] == "Warning" for e in failed)
    assert f"[change {ticket}]" in failed[0]["message"]
    view = plugin_view(gov, name)
    assert "signature" in view
    assert f"is for {signed.digest[:19]}, not the artifact's {tampered[:19]}" in view, view
    rollouts = gov.k("bob", "get", "rollouts.rollwise.dev", "-o", "name")
    assert rollouts.stdout.strip() == "", "no child Rollout: no traffic ever reached the version"

    # The refused release is deleted (its artifact digest is immutable); the signed bytes are
    # restored and released again: both gates pass, on to Staging.
    gone = gov.k(CREATOR, "delete", "modelrelease", name, "--wait=true", "--timeout=60s")
    assert gone.returncode == 0, gone.stderr
    path.write_bytes(original)
    docs[-1]["spec"]["artifact"]["digest"] = signed.digest
    gov.create([docs[-1]], name)
    status = gov.stage(name, "Staging", timeout=60)
    passed = gate(status, "signature")
    assert passed["status"] == "Passed", passed
    assert passed["message"].startswith(
        f"{signed.digest[:19]} signed: bundle {where} key model.sigstore.json verified with the "
        f"key ConfigMap {cluster.namespace}/{keys} key release.pub (sha256:"
    ), passed
    attested = gate(status, "attestation")
    assert attested["status"] == "Passed", attested
    assert attested["message"].startswith(
        f"{signed.digest[:19]} attested (https://slsa.dev/provenance/v1, builder id and source "
        "repository as required)"
    ), attested


def test_a_waiver_hides_a_wrong_signature_only_until_it_expires(
    cluster: Cluster, gov: Governance, tmp_path: Path
) -> None:
    model = f"fraud-{cluster.test_id}"
    artifact = write_artifact(tmp_path, model, "1")
    trusted, intruder = sign.new_key(), sign.new_key()
    keys, evidence = f"{model}-keys", f"{model}-evidence"
    docs, name, _ = release_docs(
        cluster,
        tmp_path,
        artifact=artifact,
        gates={
            "signature": {
                "configMapKeyRef": {"name": evidence, "key": "model.sigstore.json"},
                "verifier": {
                    "publicKey": {"configMapKeyRef": {"name": keys, "key": "release.pub"}}
                },
            }
        },
    )
    # The right artifact, signed by a key the release does not trust.
    bundle = json.dumps(sign.signature_bundle(intruder, artifact.digest))
    gov.create(
        [
            configmap(keys, "release.pub", sign.public_pem(trusted).decode()),
            configmap(evidence, "model.sigstore.json", bundle),
            *docs,
        ],
        name,
    )
    status = gov.wait(
        name, "signature Failed", lambda s: gate(s, "signature").get("status") == "Failed"
    )
    assert "does not verify for" in gate(status, "signature")["message"]
    assert "another key signed it" in gate(status, "signature")["message"]

    waived = gov.rollwise(
        "bob",
        "waive",
        f"modelrelease/{name}",
        "--gate",
        "signature",
        "--reason",
        "signing key rotation in progress, INC-77",
        "--for",
        "15s",
    )
    assert waived.returncode == 0, waived.stderr
    assert "waiver recorded: gate signature by bob" in waived.stdout, waived.stdout

    # Whether or not a pass saw the waiver while it held, once it expires the gate is Failed
    # again and the release goes no further, even with both approvals.
    status = gov.wait(
        name,
        "signature Failed again with reason WaiverExpired",
        lambda s: gate(s, "signature").get("reason") == "WaiverExpired",
        timeout=60,
    )
    expired = gate(status, "signature")
    assert expired["status"] == "Failed", expired
    assert "another key signed it" in expired["message"], expired
    assert status["stage"] in ("Candidate", "Staging"), status["stage"]
    gov.approved("bob", name, "security")
    gov.approved("carol", name, "product")
    status = gov.wait(
        name, "approvals Passed", lambda s: gate(s, "approvals").get("status") == "Passed"
    )
    assert status["stage"] in ("Candidate", "Staging"), status["stage"]
    assert "signature Failed" in status["message"], status["message"]
    assert gate(status, "signature")["reason"] == "WaiverExpired"
    assert "ReleaseApproved" not in events_by_reason(cluster, name)
