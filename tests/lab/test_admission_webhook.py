"""The ModelRelease webhook records identities as the API server authenticated them.

The real kopf operator machinery runs the real handler (``rollwise.runtime.admission``, wired
from settings exactly as ``main`` wires it) against the lab cluster's kube-apiserver, which
authenticates alice, bob and carol by token, lets them work in the test's namespace (RBAC), and
calls the kopf-managed mutating webhook over HTTPS (a serving certificate the cluster CA
signed, the CA as ``ROLLWISE_WEBHOOK_CA_FILE``). Each user acts with kubectl; every effect is
read back through the API. kopf's managed configuration is cluster-wide, so the test removes
it when it ends, whatever happened.

People: alice creates the release (groups ml, sec-team), bob is in sec-team, carol in pm and
sec-team. Roles: security=sec-team, product=pm.
"""

from __future__ import annotations

import copy
import json
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kopf
import pytest
import requests
import yaml
from kopf.testing import KopfRunner

from hack.cluster import ADMIN, Cluster, pki
from hack.lab.testing.cluster_fixtures import Kubectl, grant_namespace, make_kubectl, manifest
from rollwise.core.modelrelease import governance as g
from rollwise.core.modelrelease.spec import release_content
from rollwise.core.spec_release import ModelReleaseSpec
from rollwise.runtime.admission import read_record_key, setup_admission
from rollwise.runtime.settings import WEBHOOK_CONFIGURATION, from_sources

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "modelrelease-template" / "modelrelease.yaml"
RESOURCE = "modelreleases.rollwise.dev"
NAME = "fraud-detector-7"


def eventually(probe: Callable[[], Any], *, timeout: float = 20, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: The people of these tests, as the lab cluster authenticates them; "operator" is the admin.
PEOPLE = ("alice", "bob", "carol")


@dataclass
class People:
    cluster: Cluster
    namespace: str
    cache: Path

    def kubectl(self, user: str) -> Kubectl:
        who = ADMIN if user == "operator" else user
        return make_kubectl(self.cluster.kubeconfig_of(who), self.cache / user)

    def annotate(self, user: str, key: str, value: Any, *, overwrite: bool = True) -> Any:
        text = value if isinstance(value, str) else json.dumps(value)
        args = ["annotate", RESOURCE, NAME, f"{key}={text}"]
        return self.kubectl(user)(
            *args, *(["--overwrite"] if overwrite else []), namespace=self.namespace
        )

    def release(self) -> dict[str, Any]:
        proc = self.kubectl("operator")(
            "get", RESOURCE, NAME, "-o", "json", namespace=self.namespace
        )
        assert proc.returncode == 0, proc.stderr
        return dict(json.loads(proc.stdout))

    def annotations(self) -> dict[str, str]:
        return dict(self.release()["metadata"].get("annotations") or {})


@pytest.fixture
def people(
    lab_cluster: Cluster, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[People]:
    grant_namespace(lab_cluster, namespace, list(PEOPLE))
    monkeypatch.setenv("KUBECONFIG", str(lab_cluster.kubeconfig))
    found = People(lab_cluster, namespace, tmp_path / "kubecache")
    yield found
    # kopf's managed configurations are cluster-wide: nothing of them may outlive the test.
    for kind in ("mutatingwebhookconfiguration", "validatingwebhookconfiguration"):
        found.kubectl("operator")("delete", kind, WEBHOOK_CONFIGURATION, "--ignore-not-found")


@dataclass
class Operator:
    runner: KopfRunner
    key: bytes
    #: The webhook's address and the CA its serving certificate chains to (a caller's caBundle).
    url: str
    ca: Path


def operator(tmp_path: Path, people: People) -> Operator:
    """The operator process as main builds it, from the settings environment: its webhook
    requires the client certificate kube-apiserver presents (``Cluster.webhook_client_ca``)."""
    key_file = tmp_path / "record-key"
    key_file.write_text(uuid.uuid4().hex + uuid.uuid4().hex + "\n")
    pair = people.cluster.serving_certificate(tmp_path / "tls")
    port = free_port()
    settings = from_sources(
        [],
        {
            "ROLLWISE_WEBHOOK_CLIENT_CA_FILE": str(people.cluster.webhook_client_ca),
            "ROLLWISE_WEBHOOK_PORT": str(port),
            "ROLLWISE_WEBHOOK_LISTEN": "127.0.0.1",
            "ROLLWISE_WEBHOOK_HOST": "127.0.0.1",
            "ROLLWISE_WEBHOOK_CERT_FILE": str(pair.cert),
            "ROLLWISE_WEBHOOK_KEY_FILE": str(pair.key),
            "ROLLWISE_WEBHOOK_CA_FILE": str(people.cluster.ca_cert),
            "ROLLWISE_RECORD_KEY_FILE": str(key_file),
            "ROLLWISE_ROLE_GROUPS": "security=sec-team;product=pm",
        },
        isatty=False,
    )
    registry = kopf.OperatorRegistry()
    kopf_settings = kopf.OperatorSettings()
    kopf_settings.watching.server_timeout = 10
    kopf_settings.networking.request_timeout = 10
    assert setup_admission(registry, kopf_settings, settings)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_with_kubeconfig(**kwargs)

    runner = KopfRunner(
        ["run", "--standalone", "--namespace", people.namespace],
        registry=registry,
        settings=kopf_settings,
        timeout=30,
    )
    return Operator(
        runner, read_record_key(key_file), f"https://127.0.0.1:{port}", people.cluster.ca_cert
    )


def refused(proc: Any, message: str) -> None:
    assert proc.returncode != 0, f"expected a refusal, kubectl said: {proc.stdout}"
    expected = f'admission webhook "records.{WEBHOOK_CONFIGURATION}" denied the request: {message}'
    assert expected in proc.stderr, proc.stderr


def test_the_webhook_records_who_did_what_and_refuses_what_four_eyes_forbid(
    people: People, tmp_path: Path
) -> None:
    lab = people
    release = yaml.safe_load(EXAMPLE.read_text())
    release["metadata"]["namespace"] = lab.namespace
    op = operator(tmp_path, people)
    runner, key = op.runner, op.key
    started = datetime.now(UTC).replace(microsecond=0)
    with runner:
        config = eventually(
            lambda: (
                (
                    p := lab.kubectl("operator")(
                        "get", "mutatingwebhookconfiguration", WEBHOOK_CONFIGURATION, "-o", "json"
                    )
                )
                and p.returncode == 0
                and (c := json.loads(p.stdout)).get("webhooks")
                and c
            ),
            what="kopf's managed MutatingWebhookConfiguration",
        )
        created = lab.kubectl("alice")(
            "create", "-f", "-", input=manifest(release), namespace=lab.namespace
        )
        assert created.returncode == 0, created.stderr

        self_approval = lab.annotate(
            "alice", g.APPROVE, {"id": "a0", "role": "security", "version": "7"}
        )
        old_version = lab.annotate(
            "bob", g.APPROVE, {"id": "a1", "role": "security", "version": "6"}
        )
        carol_product = lab.annotate(
            "carol", g.APPROVE, {"id": "a2", "role": "product", "version": "7"}
        )
        carol_security = lab.annotate(
            "carol", g.APPROVE, {"id": "a3", "role": "security", "version": "7"}
        )
        bob_product = lab.annotate(
            "bob", g.APPROVE, {"id": "a4", "role": "product", "version": "7"}
        )
        bob_security = lab.annotate(
            "bob", g.APPROVE, {"id": "a5", "role": "security", "version": "7"}
        )
        forged_edit = lab.annotate("alice", g.APPROVALS, "[]")
        waive = lab.annotate(
            "carol", g.WAIVE, {"id": "w1", "gate": "sbom", "reason": "scanner down", "for": "24h"}
        )
        too_long = lab.annotate(
            "carol", g.WAIVE, {"id": "w2", "gate": "sbom", "reason": "later", "for": "200h"}
        )
        revoke = lab.annotate("bob", g.REVOKE, {"id": "r1", "reason": "bias found"})
        recorded = lab.release()

    # With the operator gone, the persistent webhook fails closed: no write slips through.
    stopped = lab.annotate("alice", "note", "x")
    # Bypassing the webhook (its configuration deleted by an admin): a hand-typed record is
    # stored but never counts.
    lab.kubectl("operator")(
        "delete", "mutatingwebhookconfiguration", WEBHOOK_CONFIGURATION, check=True
    )
    forged = {"role": "product", "user": "dave", "version": "7", "at": "2026-11-22T10:00:00Z"}
    copied = json.loads(recorded["metadata"]["annotations"][g.APPROVALS])[0]
    bypass = lab.annotate(
        "alice",
        g.APPROVALS,
        [forged, {**forged, "sig": "0" * 64}, {**copied, "user": "alice"}],
    )
    after_bypass = lab.release()

    assert runner.exception is None
    # The ModelRelease handler fails closed; the Rollout handler (overrides) follows, once for
    # Rollouts without the guard label (Ignore) and once for guarded ones (Fail).
    [hook, rollout_hook, guarded_hook] = config["webhooks"]
    assert hook["failurePolicy"] == "Fail"
    assert [r["resources"] for r in hook["rules"]] == [["modelreleases"]]
    assert rollout_hook["failurePolicy"] == "Ignore"
    assert guarded_hook["failurePolicy"] == "Fail"

    refused(self_approval, "alice set version 7 and may not approve it")
    refused(old_version, "this approval is for version 6 but the release is version 7")
    assert carol_product.returncode == 0, carol_product.stderr
    refused(
        carol_security, "carol already approved as product; another person must approve as security"
    )
    refused(bob_product, "bob may not approve as product: the role is given to members of pm")
    assert bob_security.returncode == 0, bob_security.stderr
    refused(
        forged_edit,
        "rollwise.dev/approvals is written by the operator's webhook; use kubectl rollwise approve",
    )
    assert waive.returncode == 0, waive.stderr
    refused(too_long, "a waiver lasts more than 0s and at most 168h, got 200h")
    assert revoke.returncode == 0, revoke.stderr

    annotations = recorded["metadata"]["annotations"]
    assert not set(g.REQUEST_ANNOTATIONS) & set(annotations), "requests are removed"
    content = release_content(ModelReleaseSpec.model_validate(recorded["spec"]))
    records = g.read_records(annotations, recorded["metadata"]["uid"], key, content=content)
    assert records.rejected == ()
    assert records.version_set_by == "alice"
    assert [(a.role, a.user, a.version) for a in records.approvals] == [
        ("product", "carol", "7"),
        ("security", "bob", "7"),
    ]
    finished = datetime.now(UTC) + timedelta(seconds=1)
    assert all(started <= a.at <= finished for a in records.approvals)
    [waiver] = records.waivers
    assert (waiver.gate, waiver.user, waiver.reason) == ("sbom", "carol", "scanner down")
    assert waiver.expires_at - waiver.at == timedelta(hours=24)
    assert records.revoke is not None
    assert (records.revoke.id, records.revoke.user, records.revoke.reason) == (
        "r1",
        "bob",
        "bias found",
    )

    assert stopped.returncode != 0, "a stopped webhook refuses writes (failurePolicy Fail)"
    assert bypass.returncode == 0, bypass.stderr
    after = g.read_records(
        after_bypass["metadata"]["annotations"],
        after_bypass["metadata"]["uid"],
        key,
        content=content,
    )
    assert after.approvals == (), "no hand-typed record counts"
    assert len(after.rejected) == 3
    assert all("missing or bad signature" in r for r in after.rejected)


def forged_review(release: dict[str, Any]) -> dict[str, Any]:
    """What any pod could post: an approval of ``release`` by someone claiming to be bob of
    sec-team (the real release's uid, so a signed record would count)."""
    new = copy.deepcopy(release)
    new["metadata"].setdefault("annotations", {})[g.APPROVE] = json.dumps(
        {"id": "forged", "role": "security", "version": "7"}
    )
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": "rollwise.dev", "version": "v1alpha1", "kind": "ModelRelease"},
            "resource": {
                "group": "rollwise.dev",
                "version": "v1alpha1",
                "resource": "modelreleases",
            },
            "name": release["metadata"]["name"],
            "namespace": release["metadata"]["namespace"],
            "operation": "UPDATE",
            "userInfo": {"username": "bob", "uid": "bob-uid", "groups": ["sec-team"]},
            "object": new,
            "oldObject": release,
            "dryRun": False,
        },
    }


def test_a_forged_review_from_outside_the_api_server_gets_nothing_signed(
    people: People, tmp_path: Path
) -> None:
    lab = people
    release = yaml.safe_load(EXAMPLE.read_text())
    release["metadata"]["namespace"] = lab.namespace
    op = operator(tmp_path, people)
    stranger_ca = pki.issue_certificate_authority(tmp_path / "stranger", "ca", "stranger-ca")
    stranger = pki.issue_client_certificate(
        stranger_ca, tmp_path / "stranger", "client", common_name=pki.WEBHOOK_CLIENT_CN
    )
    with op.runner:
        eventually(
            lambda: (
                lab.kubectl("operator")(
                    "get", "mutatingwebhookconfiguration", WEBHOOK_CONFIGURATION
                ).returncode
                == 0
            ),
            what="kopf's managed MutatingWebhookConfiguration",
        )
        # Through the API server (which presents the lab's client certificate) all works.
        created = lab.kubectl("alice")(
            "create", "-f", "-", input=manifest(release), namespace=lab.namespace
        )
        assert created.returncode == 0, created.stderr
        stored = lab.release()
        review = forged_review(stored)
        url = f"{op.url}/records"

        answers: dict[str, Any] = {}
        for who, cert in (("no certificate", None), ("a stranger's certificate", stranger)):
            try:
                answered = requests.post(
                    url,
                    json=review,
                    verify=str(op.ca),
                    cert=(str(cert.cert), str(cert.key)) if cert is not None else None,
                    timeout=10,
                )
            except requests.exceptions.RequestException as exc:
                answers[who] = exc
            else:
                answers[who] = answered.json()
        # The API server's own certificate is what makes the same review answered.
        genuine = requests.post(
            url,
            json=review,
            verify=str(op.ca),
            cert=(str(lab.cluster.webhook_client_cert), str(lab.cluster.webhook_client_key)),
            timeout=10,
        ).json()
        unchanged = lab.release()

    assert op.runner.exception is None
    for who, answer in answers.items():
        assert isinstance(answer, requests.exceptions.RequestException), (
            f"a caller with {who} was answered: {answer}"
        )
    assert genuine["response"]["allowed"] is True
    assert "patch" in genuine["response"], "the genuine caller's approval is recorded"
    assert g.APPROVALS not in unchanged["metadata"].get("annotations", {})
