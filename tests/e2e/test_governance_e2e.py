"""ModelRelease governance end to end: who may approve, waive and release, as users live it.

The real ``rollwise-operator`` runs in the lab with its admission webhook on: the chart's
webhook configuration, which kube-apiserver calls, the chart's record key, and groups mapped to
roles by ``ROLLWISE_ROLE_GROUPS``. kube-apiserver authenticates four people by token (its
``--token-auth-file``), and RBAC lets them work in the test's namespace, so every ``kubectl``
below acts as one of them and the webhook records who they are:

* alice (groups ml, sec-team) creates every release (so she could approve as security, were it
  not her own version);
* bob (sec-team) approves as security;
* carol (pm, sec-team) approves as product, and could approve as security too;
* dave (cto) approves as executive.

Releases are ``examples/modelrelease-template`` with a ``file://`` artifact whose real sha256
the test computes, fast canary steps, the default approvals (security and product) and the
gates each scenario needs; approvals and waivers go through ``kubectl rollwise approve|waive``.
Everything is read back with kubectl or the API: status, gates, events, ConfigMaps.

Scenarios: two approvers take a release to Production and are named in its immutable release
manifest; the creator's self-approval is refused; one person approving both roles is refused;
an artifact digest mismatch blocks at Candidate; a critical SBOM finding blocks until waived
and blocks again when the waiver expires; a freeze window holds the promotion until it ends; an
emergency change with an executive approval passes an open freeze window.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.lab.testing.cluster_fixtures import (
    Kubectl,
    grant_namespace,
    kubectl_binary,
    make_kubectl,
)
from rollwise.core.status_model import format_time
from tests.e2e.support import (
    OPERATOR,
    Cluster,
    OperatorProcess,
    StartOperator,
    eventually,
    patient,
)
from tests.e2e.test_modelrelease_e2e import (
    CLIENT_SERVICE,
    Artifact,
    events_of,
    in_order,
    release_of,
    status_of,
    template_docs,
    write_artifact,
)

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(300),
    pytest.mark.lab_only(
        "runs an operator process of its own with its admission webhook, and acts as several "
        "people the lab cluster authenticates by token"
    ),
]

PEOPLE: dict[str, tuple[str, ...]] = {
    "alice": ("ml", "sec-team"),
    "bob": ("sec-team",),
    "carol": ("pm", "sec-team"),
    "dave": ("cto",),
}
ROLE_GROUPS = "security=sec-team;product=pm;executive=cto"
CREATOR = "alice"
ALIASES = "model-aliases"
WEBHOOK_CONFIGURATION = "rollwise.dev"
DENIED = f'admission webhook "records.{WEBHOOK_CONFIGURATION}" denied the request: '
IMMUTABLE = "field is immutable when `immutable` is set"
FAST_STEPS: list[dict[str, Any]] = [{"setWeight": 5}, {"setWeight": 25}, {"setWeight": 100}]
VENV_BIN = OPERATOR.parent


# --------------------------------------------------------------------------- the people


@dataclass
class Governance:
    """The test's lab as its people use it, and the operator with its webhook."""

    cluster: Cluster
    operator: OperatorProcess
    workdir: Path

    def kubectl(self, user: str) -> Kubectl:
        return make_kubectl(
            self.cluster.the_lab.kubeconfig_of(user), self.workdir / "kubecache" / user
        )

    def k(self, user: str, *args: str, input: str | None = None) -> Any:
        """kubectl as ``user`` in the test's namespace (never raises: callers assert)."""
        namespace = self.cluster.namespace
        return self.kubectl(user)(*args, input=input, namespace=namespace, timeout=patient(30))

    def env(self, user: str, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "KUBECONFIG": str(self.cluster.the_lab.kubeconfig_of(user)),
            "TMPDIR": str(self.workdir),
            **extra,
        }

    def rollwise(self, user: str, *args: str) -> subprocess.CompletedProcess[str]:
        """``kubectl rollwise ARGS -n NAMESPACE`` as ``user`` (the plugin from the venv)."""
        self.alive()
        return subprocess.run(
            [str(kubectl_binary()), "rollwise", *args, "-n", self.cluster.namespace],
            capture_output=True,
            text=True,
            env=self.env(user),
            timeout=patient(30),
            check=False,
        )

    def approve(self, user: str, name: str, role: str) -> subprocess.CompletedProcess[str]:
        return self.rollwise(user, "approve", f"modelrelease/{name}", "--role", role)

    def approved(self, user: str, name: str, role: str) -> None:
        proc = self.approve(user, name, role)
        assert proc.returncode == 0, f"{user} approving as {role}:\n{proc.stdout}{proc.stderr}"
        assert f"approval recorded: role {role} for version" in proc.stdout, proc.stdout
        assert proc.stdout.rstrip().endswith(f"by {user}"), proc.stdout

    def create(self, docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
        """``kubectl apply`` of the documents as the creator; returns the recorded
        ``version-set-by`` (the webhook stamps it on CREATE)."""
        proc = self.k(CREATOR, "apply", "-f", "-", input=yaml.safe_dump_all(docs))
        assert proc.returncode == 0, proc.stderr
        annotations = release_of(self.cluster, name)["metadata"].get("annotations") or {}
        record: dict[str, Any] = json.loads(annotations["rollwise.dev/version-set-by"])
        assert record["user"] == CREATOR, record
        return record

    def alive(self) -> None:
        code = self.operator.process.poll()
        if code is not None:
            tail = "\n".join(self.operator.log.read_text(errors="replace").splitlines()[-30:])
            raise AssertionError(f"the operator exited with {code}:\n{tail}")

    def status(self, name: str) -> dict[str, Any]:
        self.alive()
        return status_of(self.cluster, name)

    def wait(
        self, name: str, what: str, check: Callable[[dict[str, Any]], bool], timeout: float = 30
    ) -> dict[str, Any]:
        """The release's status once ``check(status)`` holds (bounded)."""

        def probe() -> dict[str, Any] | None:
            status = self.status(name)
            if status.get("stage") in ("RolledBack", "Revoked"):
                raise AssertionError(f"{name} reached {status['stage']}: {status.get('message')}")
            return status if check(status) else None

        found: dict[str, Any] = eventually(
            probe, timeout=timeout, what=f"{name}: {what}", every=0.2
        )
        return found

    def stage(self, name: str, stage: str, timeout: float = 30) -> dict[str, Any]:
        return self.wait(name, f"stage {stage}", lambda s: s.get("stage") == stage, timeout)

    def manifest(self, name: str) -> dict[str, Any] | None:
        proc = self.cluster.k("get", "configmap", f"{name}-manifest", "-o", "json", check=False)
        return json.loads(proc.stdout) if proc.returncode == 0 else None


@pytest.fixture
def gov(cluster: Cluster, start_operator: StartOperator, tmp_path: Path) -> Governance:
    """The operator watching the test's namespace with its admission webhook on, once it
    serves the webhook (so every write from then on is recorded), and the people allowed to
    work in the namespace."""
    grant_namespace(cluster.the_lab.running_cluster, cluster.namespace, list(PEOPLE))
    operator = start_operator(
        "--namespace",
        cluster.namespace,
        ROLLWISE_ROLE_GROUPS=ROLE_GROUPS,
        ROLLWISE_EVIDENCE_POLICY=json.dumps({"filePathPrefixes": [str(tmp_path)]}),
    )
    start_operator.wait_webhook(operator)
    # The data plane: a release's canary is measured (a first release on its version alone,
    # CanaryWithoutBaseline), so its revisions need requests to be measured by.
    cluster.the_lab.start_traffic(f"service/{cluster.namespace}/{CLIENT_SERVICE}", rate=50)
    found = Governance(cluster, operator, tmp_path)
    return found


# --------------------------------------------------------------------------- manifests


def release_docs(
    cluster: Cluster,
    tmp_path: Path,
    *,
    artifact: Artifact | None = None,
    change_type: str = "normal",
    gates: dict[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], str, str]:
    """The template example's Services and a ModelRelease of a model of the test's own,
    version 1, with the default approvals (security and product); (docs, name, ticket)."""
    model = f"fraud-{cluster.test_id}"
    art = artifact or write_artifact(tmp_path, model, "1")
    name = f"{model}-1"
    docs = template_docs(
        cluster.test_id,
        name=name,
        model=model,
        version="1",
        artifact=art,
        store={"configMap": {"name": ALIASES}},
        steps=FAST_STEPS,
    )
    spec = docs[-1]["spec"]
    del spec["approvals"]
    # Governance, not the canary, is under test here (test_modelrelease_e2e.py tests the
    # canary): without analysis, a model's first release passes its canary at once.
    spec["canary"].pop("analysis", None)
    spec["gates"] = gates or {}
    spec["change"]["type"] = change_type
    return docs, name, spec["change"]["ticket"]


def gate(status: dict[str, Any], name: str) -> dict[str, Any]:
    return next((g for g in status.get("gates", []) if g["name"] == name), {})


def events_by_reason(cluster: Cluster, name: str) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for event in events_of(cluster, name):
        found.setdefault(event["reason"], []).append(event)
    return found


def waiting_for_approvals(status: dict[str, Any]) -> bool:
    """Staging, canary passed, held by the approvals gate only."""
    return status.get("stage") == "Staging" and str(status.get("message", "")).startswith(
        "canary passed; waiting for approvals"
    )


def held_by_freeze(status: dict[str, Any]) -> bool:
    """Approved and held by a freeze window (fails at once if it got past the window)."""
    if status.get("stage") == "Production":
        raise AssertionError(
            "in Production before a freeze window hold was seen: "
            f"{status.get('history')} (did the window end before the approvals?)"
        )
    return status.get("stage") == "Approved" and "freeze window" in status.get("message", "")


def refused(proc: subprocess.CompletedProcess[str], message: str) -> None:
    assert proc.returncode != 0, f"expected a refusal, got:\n{proc.stdout}"
    assert DENIED + message in proc.stderr, proc.stderr


def rfc3339(at: datetime) -> str:
    return format_time(at.replace(microsecond=0))


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def critical_sbom(model: str) -> dict[str, Any]:
    """A CycloneDX 1.5 SBOM with one critical vulnerability in one of two components."""
    lib = {
        "bom-ref": "pkg:pypi/pickle-loader@1.0.2",
        "type": "library",
        "name": "pickle-loader",
        "version": "1.0.2",
        "purl": "pkg:pypi/pickle-loader@1.0.2",
    }
    numpy = {
        "bom-ref": "pkg:pypi/numpy@1.26.4",
        "type": "library",
        "name": "numpy",
        "version": "1.26.4",
        "purl": "pkg:pypi/numpy@1.26.4",
    }
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "metadata": {"component": {"type": "machine-learning-model", "name": model}},
        "components": [lib, numpy],
        "vulnerabilities": [
            {
                "id": "CVE-2026-0001",
                "ratings": [{"severity": "high"}, {"severity": "critical", "score": 9.8}],
                "affects": [{"ref": lib["bom-ref"]}],
            }
        ],
    }


# --------------------------------------------------------------------------- tests


def test_two_approvers_take_the_release_to_production_and_sign_its_immutable_manifest(
    cluster: Cluster, gov: Governance, tmp_path: Path
) -> None:
    docs, name, ticket = release_docs(cluster, tmp_path)
    gov.create(docs, name)
    held = gov.wait(name, "held for approvals after its canary", waiting_for_approvals)
    approvals = gate(held, "approvals")
    assert approvals["status"] == "Pending", approvals
    assert approvals["message"] == "waiting for approval by security, product", approvals
    assert held["phase"] == "Waiting"

    gov.approved("bob", name, "security")
    gov.approved("carol", name, "product")

    manifests: list[dict[str, Any]] = []

    def in_production(status: dict[str, Any]) -> bool:
        # The manifest as first written (on entering Approved), to compare with the last one.
        if not manifests and (found := gov.manifest(name)) is not None:
            manifests.append(found)
        return status.get("stage") == "Production"

    status = gov.wait(name, "stage Production", in_production, timeout=40)
    assert status["phase"] == "Healthy"
    assert [h["stage"] for h in status["history"]] == [
        "Candidate",
        "Staging",
        "Approved",
        "Production",
    ]
    assert status["history"][0]["user"] == CREATOR
    assert status["history"][2]["user"] == "bob, carol"
    recorded = {(a["role"], a["user"]) for a in status["approvals"]}
    assert recorded == {("security", "bob"), ("product", "carol")}
    assert gate(status, "approvals")["message"] == "approved by security: bob, product: carol"

    events = events_of(cluster, name)
    reasons = [e["reason"] for e in events]
    assert in_order(
        reasons,
        ["ReleaseCreated", "Staged", "CanaryPassed", "ReleaseApproved", "PromotedToProduction"],
    ), reasons
    approved = next(e for e in events if e["reason"] == "ReleaseApproved")
    assert "bob" in approved["message"], approved
    assert "carol" in approved["message"], approved
    assert all(f"[change {ticket}]" in e["message"] for e in events), events

    # The release manifest: written once, owned by the release, immutable, naming the people.
    configmap = gov.manifest(name)
    assert configmap is not None
    assert configmap["immutable"] is True
    [owner] = configmap["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"]) == ("ModelRelease", name)
    content = json.loads(configmap["data"]["release_manifest.json"])
    assert content["change"] == {"type": "normal", "ticket": ticket}
    assert (content["model"], content["version"]) == (f"fraud-{cluster.test_id}", "1")
    assert content["artifact_digest"] == docs[-1]["spec"]["artifact"]["digest"]
    assert {(a["role"], a["user"]) for a in content["approvals"]} == recorded
    assert CREATOR not in {a["user"] for a in content["approvals"]}
    # The operator never wrote it again: every pass from Approved to Production left it alone.
    assert manifests, "the manifest was not seen before Production"
    assert configmap["metadata"]["resourceVersion"] == manifests[0]["metadata"]["resourceVersion"]
    assert configmap["data"] == manifests[0]["data"]

    # Nobody can change it: the API server refuses an edit of the data (immutable) ...
    edited = subprocess.run(
        [str(kubectl_binary()), "edit", f"configmap/{name}-manifest", "-n", cluster.namespace],
        capture_output=True,
        text=True,
        env=gov.env(CREATOR, KUBE_EDITOR="sed -i s/carol/mallory/g"),
        timeout=patient(30),
        check=False,
    )
    assert edited.returncode != 0, edited.stdout
    assert f'configmaps "{name}-manifest" is invalid' in edited.stderr, edited.stderr
    # kubectl keeps the refused edit in a file headed by the API server's reasons.
    copy = re.search(r'A copy of your changes has been stored to "([^"]+)"', edited.stderr)
    assert copy is not None, edited.stderr
    assert f"# * data: Forbidden: {IMMUTABLE}" in Path(copy.group(1)).read_text()
    # ... and a second write under the same name (the operator's create, or anyone's).
    second = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{name}-manifest"},
        "data": {"release_manifest.json": "{}"},
    }
    again = gov.k(CREATOR, "create", "-f", "-", input=yaml.safe_dump(second))
    assert again.returncode != 0
    assert "AlreadyExists" in again.stderr or "already exists" in again.stderr, again.stderr
    final = gov.manifest(name)
    assert final is not None
    assert final["data"] == configmap["data"]
    assert final["metadata"]["resourceVersion"] == configmap["metadata"]["resourceVersion"]


def test_the_creator_may_not_approve_the_version_they_set(
    cluster: Cluster, gov: Governance, tmp_path: Path
) -> None:
    docs, name, _ = release_docs(cluster, tmp_path)
    gov.create(docs, name)
    gov.wait(name, "held for approvals after its canary", waiting_for_approvals)

    own = gov.approve(CREATOR, name, "security")
    refused(own, f"{CREATOR} set version 1 and may not approve it; ask someone else to approve")
    # Nor by writing the record herself: records come from the webhook only.
    forged = json.dumps(
        [{"role": "security", "user": "bob", "version": "1", "at": rfc3339(datetime.now(UTC))}]
    )
    typed = gov.k(CREATOR, "annotate", f"modelrelease/{name}", f"rollwise.dev/approvals={forged}")
    refused(
        typed,
        "rollwise.dev/approvals is written by the operator's webhook; use kubectl rollwise approve",
    )

    annotations = release_of(cluster, name)["metadata"].get("annotations") or {}
    assert "rollwise.dev/approvals" not in annotations
    assert "rollwise.dev/approve" not in annotations
    # A later approval by someone else wakes the release: the refused one still does not count.
    gov.approved("bob", name, "security")
    status = gov.wait(
        name,
        "bob's approval counted",
        lambda s: "approved by security: bob" in gate(s, "approvals").get("message", ""),
    )
    assert gate(status, "approvals")["status"] == "Pending"
    assert gate(status, "approvals")["message"] == (
        "waiting for approval by product (approved by security: bob)"
    )
    assert status["stage"] == "Staging"


def test_one_person_may_not_approve_two_roles(
    cluster: Cluster, gov: Governance, tmp_path: Path
) -> None:
    docs, name, _ = release_docs(cluster, tmp_path)
    gov.create(docs, name)
    gov.wait(name, "held for approvals after its canary", waiting_for_approvals)

    gov.approved("carol", name, "product")
    second = gov.approve("carol", name, "security")
    refused(second, "carol already approved as product; another person must approve as security")

    records = json.loads(
        release_of(cluster, name)["metadata"]["annotations"]["rollwise.dev/approvals"]
    )
    assert [(r["role"], r["user"]) for r in records] == [("product", "carol")]
    status = gov.wait(
        name,
        "carol's approval counted",
        lambda s: "product: carol" in gate(s, "approvals").get("message", ""),
    )
    assert gate(status, "approvals")["message"] == (
        "waiting for approval by security (approved by product: carol)"
    )
    assert status["stage"] == "Staging"
    # A second person completes the four eyes.
    gov.approved("bob", name, "security")
    status = gov.stage(name, "Production", timeout=40)
    assert {(a["role"], a["user"]) for a in status["approvals"]} == {
        ("security", "bob"),
        ("product", "carol"),
    }


def test_an_artifact_digest_mismatch_keeps_the_release_a_candidate(
    cluster: Cluster, gov: Governance, tmp_path: Path
) -> None:
    model = f"fraud-{cluster.test_id}"
    real = write_artifact(tmp_path, model, "1")
    claimed = "sha256:" + hashlib.sha256(b"the weights someone meant to ship").hexdigest()
    docs, name, ticket = release_docs(cluster, tmp_path, artifact=Artifact(real.uri, claimed))
    gov.create(docs, name)
    status = gov.wait(
        name,
        "artifact-digest Failed",
        lambda s: gate(s, "artifact-digest").get("status") == "Failed",
    )
    found = gate(status, "artifact-digest")
    assert claimed.removeprefix("sha256:")[:12] in found["message"], found
    assert real.digest.removeprefix("sha256:")[:12] in found["message"], found
    assert status["stage"] == "Candidate"
    assert status["phase"] == "Waiting"
    assert "artifact-digest Failed" in status["message"], status["message"]

    warnings = eventually(
        lambda: [
            e
            for e in events_of(cluster, name)
            if e["type"] == "Warning" and e["reason"] == "GateFailed"
        ],
        timeout=10,
        what="a GateFailed Warning event",
    )
    assert "gate artifact-digest failed" in warnings[0]["message"], warnings
    assert f"[change {ticket}]" in warnings[0]["message"]

    # Approvals do not help: they are recorded and count, the digest still blocks.
    gov.approved("bob", name, "security")
    gov.approved("carol", name, "product")
    status = gov.wait(
        name, "approvals Passed", lambda s: gate(s, "approvals").get("status") == "Passed"
    )
    assert status["stage"] == "Candidate"
    assert [h["stage"] for h in status["history"]] == ["Candidate"]
    assert gate(status, "artifact-digest")["status"] == "Failed"
    rollouts = gov.k("bob", "get", "rollouts.rollwise.dev", "-o", "name")
    assert rollouts.returncode == 0, rollouts.stderr
    assert rollouts.stdout.strip() == "", "no child Rollout: no traffic ever reached the version"


def test_a_critical_sbom_finding_blocks_until_waived_and_again_once_the_waiver_expires(
    cluster: Cluster, gov: Governance, tmp_path: Path
) -> None:
    model = f"fraud-{cluster.test_id}"
    sbom = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{model}-sbom"},
        "data": {"bom.json": json.dumps(critical_sbom(model))},
    }
    docs, name, ticket = release_docs(
        cluster,
        tmp_path,
        gates={"sbom": {"configMapKeyRef": {"name": f"{model}-sbom", "key": "bom.json"}}},
    )
    gov.create([sbom, *docs], name)
    status = gov.wait(name, "sbom Failed", lambda s: gate(s, "sbom").get("status") == "Failed")
    assert "CVE-2026-0001" in gate(status, "sbom")["message"], gate(status, "sbom")
    assert "critical" in gate(status, "sbom")["message"]
    assert status["stage"] == "Candidate"

    waived = gov.rollwise(
        "bob",
        "waive",
        f"modelrelease/{name}",
        "--gate",
        "sbom",
        "--reason",
        "CVE-2026-0001 is not reachable from the model server",
        "--for",
        "20s",
    )
    assert waived.returncode == 0, waived.stderr
    assert "waiver recorded: gate sbom by bob" in waived.stdout, waived.stdout
    [record] = json.loads(
        release_of(cluster, name)["metadata"]["annotations"]["rollwise.dev/waivers"]
    )
    assert (record["gate"], record["user"]) == ("sbom", "bob")
    expires = parse_time(record["expiresAt"])
    assert expires - parse_time(record["at"]) == timedelta(seconds=20)

    status = gov.stage(name, "Staging", timeout=15)
    assert parse_time(status["history"][1]["time"]) < expires, status["history"]
    assert gate(status, "sbom")["status"] == "Waived"
    assert gate(status, "sbom")["waiverExpiresAt"] == record["expiresAt"]

    # The waiver expires: the gate is Failed again (WaiverExpired), the release stays where
    # the waiver had let it go (Staging: the gate guards the way in, approvals the way out).
    status = gov.wait(
        name,
        "sbom Failed again with reason WaiverExpired",
        lambda s: gate(s, "sbom").get("reason") == "WaiverExpired",
        timeout=40,
    )
    expired = gate(status, "sbom")
    assert expired["status"] == "Failed", expired
    assert parse_time(expired["lastTransitionTime"]) >= expires, expired
    assert status["stage"] == "Staging"
    reasons = events_by_reason(cluster, name)
    assert [e["type"] for e in reasons["GateWaived"]] == ["Warning"], reasons["GateWaived"]
    [expiry] = reasons["WaiverExpired"]
    assert expiry["type"] == "Warning"
    assert "waiver of gate sbom expired" in expiry["message"], expiry
    assert f"[change {ticket}]" in expiry["message"]

    # Both approvals now count, and still the expired waiver's gate holds the release.
    gov.approved("bob", name, "security")
    gov.approved("carol", name, "product")
    status = gov.wait(
        name, "approvals Passed", lambda s: gate(s, "approvals").get("status") == "Passed"
    )
    assert status["stage"] == "Staging"
    assert "waiting for sbom Failed" in status["message"], status["message"]
    assert gate(status, "sbom")["reason"] == "WaiverExpired"
    assert "ReleaseApproved" not in events_by_reason(cluster, name)


def test_a_freeze_window_holds_the_promotion_until_it_ends(
    cluster: Cluster, gov: Governance, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    end = rfc3339(now + timedelta(seconds=30))
    window = {"name": "quarter-close", "start": rfc3339(now - timedelta(minutes=1)), "end": end}
    docs, name, ticket = release_docs(cluster, tmp_path, gates={"freezeWindows": [window]})
    gov.create(docs, name)
    gov.approved("bob", name, "security")
    gov.approved("carol", name, "product")

    status = gov.wait(name, "Approved, held by the freeze window", held_by_freeze)
    assert status["phase"] == "Waiting"
    assert status["message"] == (
        "approved; promotion to Production held by freeze window: "
        f"freeze window quarter-close is open until {end}"
    )
    assert gate(status, "freeze-window")["status"] == "Failed"
    frozen = eventually(
        lambda: events_by_reason(cluster, name).get("PromotionFrozen"),
        timeout=10,
        what="a PromotionFrozen event",
    )
    assert frozen[0]["message"] == (
        "promotion to Production held by a freeze window: freeze window quarter-close is open "
        f"until {end} [change {ticket}]"
    )
    assert gov.manifest(name) is not None, "the manifest is written on entering Approved"

    status = gov.stage(name, "Production", timeout=70)
    promoted = parse_time(status["history"][-1]["time"])
    assert promoted >= parse_time(end), status["history"]
    assert gate(status, "freeze-window")["status"] == "Passed"
    assert len(events_by_reason(cluster, name)["PromotionFrozen"]) == 1


def test_an_emergency_change_passes_an_open_freeze_window_with_an_executive_approval(
    cluster: Cluster, gov: Governance, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    end = rfc3339(now + timedelta(hours=1))
    window = {"name": "incident-freeze", "start": rfc3339(now - timedelta(minutes=1)), "end": end}
    docs, name, ticket = release_docs(
        cluster, tmp_path, change_type="emergency", gates={"freezeWindows": [window]}
    )
    gov.create(docs, name)
    gov.approved("bob", name, "security")
    gov.approved("carol", name, "product")
    # Security and product are not enough to pass a freeze window, even for an emergency.
    gov.wait(name, "Approved, held by the freeze window", held_by_freeze)
    gov.approved("dave", name, "executive")
    status = gov.stage(name, "Production", timeout=30)
    assert gate(status, "freeze-window")["status"] == "Failed", "the window is still open"

    reasons = events_by_reason(cluster, name)
    [emergency] = reasons["EmergencyChange"]
    assert emergency["type"] == "Warning"
    assert emergency["message"] == (
        f"emergency change for model fraud-{cluster.test_id} version 1 [change {ticket}]"
    )
    [bypass] = reasons["FreezeBypassed"]
    assert bypass["type"] == "Warning"
    assert bypass["message"] == (
        f"emergency change passes freeze window (freeze window incident-freeze is open until "
        f"{end}) with executive approval by dave [change {ticket}]"
    )
    order = [e["reason"] for e in events_of(cluster, name)]
    assert in_order(order, ["PromotionFrozen", "FreezeBypassed", "PromotedToProduction"]), order
