"""The ModelRelease webhook's kopf side: the handler's registration, its answers, the server.

The handler's decisions are the core's (tests/unit/core/test_governance.py); these tests check
what kopf makes of the registration (the webhooks kopf would write: modelreleases with
failurePolicy Fail and rollouts with Ignore, CREATE and UPDATE, persistent), how one
admission request becomes a patch or a 403, and the settings-to-server wiring.
tests/lab/test_admission_webhook.py runs it all against the lab's API server with real users.
"""

from __future__ import annotations

import json
import ssl
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kopf
import pytest
from kopf._cogs.structs.references import Resource
from kopf._core.engines.admission import build_webhooks

from rollwise.adapters.releases import RELEASE_LABEL
from rollwise.core import overrides as o
from rollwise.core import signing
from rollwise.core.modelrelease import governance as g
from rollwise.core.observations import RequestKind, revision_of
from rollwise.runtime import admission as a
from rollwise.runtime import serving_gate as sg
from rollwise.runtime.settings import WEBHOOK_CONFIGURATION, from_sources

KEY = b"0123456789abcdef-record-key"
NOW = datetime(2026, 11, 22, 10, tzinfo=UTC)
CONFIG = a.AdmissionConfig(key=KEY, role_map={"security": ("sec-team",)})
MODELRELEASES = Resource(
    group="rollwise.dev", version="v1alpha1", plural="modelreleases", namespaced=True
)
ROLLOUTS = Resource(group="rollwise.dev", version="v1alpha1", plural="rollouts", namespaced=True)
TEMPLATE = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "a"}]}}


def release(annotations: dict[str, str] | None = None, uid: str = "uid-1") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "fraud-7", "namespace": "models", "uid": uid}
    if annotations is not None:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": {"version": "7"}}


def test_the_registered_webhooks_are_scoped_and_fail_closed_for_modelreleases_only() -> None:
    registry = kopf.OperatorRegistry()
    a.register_admission(registry, CONFIG)
    handlers = registry._webhooks.get_all_handlers()
    assert [h.id for h in handlers] == [
        a.HANDLER_ID,
        a.ROLLOUT_HANDLER_ID,
        a.GUARDED_HANDLER_ID,
    ]
    assert all(h.persistent for h in handlers)
    webhooks = build_webhooks(
        handlers,
        resources=[MODELRELEASES, ROLLOUTS],
        name_suffix=WEBHOOK_CONFIGURATION,
        client_config={"url": "https://127.0.0.1:9443"},
    )
    by_name = {w["name"]: w for w in webhooks}
    assert set(by_name) == {
        "records.rollwise.dev",
        "rollout-records.rollwise.dev",
        "guarded-rollout-records.rollwise.dev",
    }
    guard = o.GUARDED_LABEL
    for name, plural, policy, path, selector in (
        ("records.rollwise.dev", "modelreleases", "Fail", a.WEBHOOK_PATH, None),
        (
            "rollout-records.rollwise.dev",
            "rollouts",
            "Ignore",
            a.ROLLOUT_WEBHOOK_PATH,
            {"matchExpressions": [{"key": guard, "operator": "DoesNotExist"}]},
        ),
        (
            "guarded-rollout-records.rollwise.dev",
            "rollouts",
            "Fail",
            a.GUARDED_WEBHOOK_PATH,
            {"matchExpressions": [{"key": guard, "operator": "Exists"}]},
        ),
    ):
        webhook = by_name[name]
        assert webhook["failurePolicy"] == policy
        assert webhook["objectSelector"] == selector
        assert webhook["sideEffects"] == "None"
        assert webhook["rules"] == [
            {
                "apiGroups": ["rollwise.dev"],
                "apiVersions": ["v1alpha1"],
                "resources": [plural],
                "operations": ["CREATE", "UPDATE"],
                "scope": "*",
            }
        ]
        assert webhook["clientConfig"]["url"] == f"https://127.0.0.1:9443{path}"


def rollout(annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "web", "namespace": "apps", "uid": "uid-r"}
    if annotations is not None:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": {"template": TEMPLATE}}


def test_a_rollout_override_is_recorded_for_the_template_revision() -> None:
    request = json.dumps({"id": "o1", "decision": "promote", "reason": "noisy metric"})
    changes = a.decide_rollout(
        CONFIG,
        operation="UPDATE",
        old=rollout(),
        new=rollout({o.OVERRIDE: request}),
        userinfo={"username": "alice"},
        now=NOW,
    )
    assert changes[o.OVERRIDE] is None
    [override] = o.read_overrides({o.OVERRIDES: str(changes[o.OVERRIDES])}, "uid-r", KEY).overrides
    assert (override.user, override.target) == ("alice", revision_of(TEMPLATE))
    stored = {o.OVERRIDES: str(changes[o.OVERRIDES])}
    with pytest.raises(kopf.AdmissionError) as refused:
        a.decide_rollout(
            CONFIG,
            operation="UPDATE",
            old=rollout(stored),
            new=rollout({**stored, o.CONFIRM_OVERRIDE: json.dumps({"id": "o1"})}),
            userinfo={"username": "alice"},
            now=NOW,
        )
    assert refused.value.code == 403
    assert "alice made override o1 and may not confirm it" in str(refused.value)


def child(
    annotations: dict[str, str] | None = None,
    *,
    labels: dict[str, str] | None = None,
    pause: str | None = None,
) -> dict[str, Any]:
    """A ModelRelease's child Rollout as the operator created it."""
    body = rollout(annotations)
    body["metadata"] |= {
        "namespace": "models",
        "name": "fraud-production",
        "labels": labels if labels is not None else {RELEASE_LABEL: "fraud-7"},
    }
    if pause is not None:
        body["status"] = {"pauseReason": pause}
    return body


def test_a_person_may_not_promote_a_releases_child_rollout_past_its_canary() -> None:
    retry = {"rollwise.dev/retry": "again"}
    for old, new in (
        (child(), child(retry)),
        # Taking the label off in the same write does not help: the stored one has it.
        (child(), child(retry, labels={})),
    ):
        with pytest.raises(kopf.AdmissionError) as refused:
            a.decide_rollout(
                CONFIG,
                operation="UPDATE",
                old=old,
                new=new,
                userinfo={"username": "mallory"},
                now=NOW,
            )
        assert refused.value.code == 403
        assert "kubectl rollwise override modelrelease/fraud-7 --decision promote" in str(
            refused.value
        )
    revert = o.sign_request(
        RequestKind.PROMOTE_FULL, "revert-fraud-7", "models/fraud-production", KEY
    )
    allowed = a.decide_rollout(
        CONFIG,
        operation="UPDATE",
        old=child(),
        new=child({RequestKind.PROMOTE_FULL.annotation: revert}),
        userinfo={"username": "system:serviceaccount:rollwise:rollwise"},
        now=NOW,
    )
    assert allowed == {}
    paused = a.decide_rollout(
        CONFIG,
        operation="UPDATE",
        old=child(pause="PauseStep"),
        new=child({"rollwise.dev/promote": "next"}, pause="PauseStep"),
        userinfo={"username": "alice"},
        now=NOW,
    )
    assert paused == {}, "ending a plain pause step is a person's to do"


@pytest.mark.parametrize(
    ("old", "new", "changes", "labels"),
    [
        pytest.param(rollout(), rollout(), {}, {}, id="plain-rollout"),
        pytest.param(
            rollout(), rollout(), {o.OVERRIDES: "[]"}, {o.GUARDED_LABEL: "true"}, id="overrides"
        ),
        pytest.param(
            child(),
            child(labels={RELEASE_LABEL: "fraud-7"}),
            {},
            {o.GUARDED_LABEL: "true"},
            id="child",
        ),
        pytest.param(
            child(labels={RELEASE_LABEL: "x", o.GUARDED_LABEL: "true"}),
            child(labels={RELEASE_LABEL: "x", o.GUARDED_LABEL: "true"}),
            {},
            {},
            id="already-guarded",
        ),
    ],
)
def test_guarded_rollouts_stay_guarded(
    old: dict[str, Any], new: dict[str, Any], changes: dict[str, str | None], labels: dict[str, str]
) -> None:
    assert a.guard_labels(old, new, changes) == labels


def test_a_modelrelease_override_targets_its_version() -> None:
    request = json.dumps({"id": "o1", "decision": "hold", "reason": "bias review"})
    changes = a.decide(
        CONFIG,
        operation="UPDATE",
        old=release(),
        new=release({o.OVERRIDE: request}),
        userinfo={"username": "carol", "groups": []},
        now=NOW,
    )
    [override] = o.read_overrides({o.OVERRIDES: str(changes[o.OVERRIDES])}, "uid-1", KEY).overrides
    assert (override.user, override.target, override.decision.value) == ("carol", "7", "hold")


def test_create_is_stamped_with_the_api_server_identity() -> None:
    new = release(uid="")
    changes = a.decide(
        CONFIG,
        operation="CREATE",
        old=None,
        new=new,
        userinfo={"username": "alice", "groups": ["ml"]},
        now=NOW,
    )
    record = json.loads(str(changes[g.VERSION_SET_BY]))
    assert (record["user"], record["version"]) == ("alice", "7")
    assert signing.verify(record, signing.create_subject("models", "fraud-7"), KEY)


def test_a_refusal_is_a_403_admission_error_with_the_core_message() -> None:
    old = release({g.APPROVALS: "[]"})
    with pytest.raises(kopf.AdmissionError) as refused:
        a.decide(
            CONFIG,
            operation="UPDATE",
            old=old,
            new=release({g.APPROVALS: "[{}]"}),
            userinfo={"username": "bob", "groups": []},
            now=NOW,
        )
    assert refused.value.code == 403
    assert str(refused.value) == (
        "rollwise.dev/approvals is written by the operator's webhook; use kubectl rollwise approve"
    )


def test_an_update_without_annotations_needs_no_patch() -> None:
    changes = a.decide(
        CONFIG,
        operation="UPDATE",
        old=release(),
        new=release(),
        userinfo={"username": "system:serviceaccount:rollwise:operator"},
        now=NOW,
    )
    assert changes == {}


def test_the_record_key_is_read_stripped_and_must_be_long(tmp_path: Path) -> None:
    good = tmp_path / "key"
    good.write_bytes(KEY + b"\n")
    assert a.read_record_key(good) == KEY
    short = tmp_path / "short"
    short.write_text("abc\n")
    with pytest.raises(a.AdmissionSetupError, match="shorter than 16 bytes"):
        a.read_record_key(short)
    with pytest.raises(a.AdmissionSetupError, match="cannot read the record key file"):
        a.read_record_key(tmp_path / "missing")


def settings_for(tmp_path: Path, **extra: str) -> Any:
    key = tmp_path / "key"
    key.write_bytes(KEY)
    cert, pkey, client_ca = tmp_path / "tls.crt", tmp_path / "tls.key", tmp_path / "client-ca.crt"
    cert.write_text("cert")
    pkey.write_text("key")
    client_ca.write_text("client ca")
    env = {
        "ROLLWISE_WEBHOOK_PORT": "9443",
        "ROLLWISE_RECORD_KEY_FILE": str(key),
        "ROLLWISE_WEBHOOK_CERT_FILE": str(cert),
        "ROLLWISE_WEBHOOK_KEY_FILE": str(pkey),
        "ROLLWISE_WEBHOOK_CLIENT_CA_FILE": str(client_ca),
        "ROLLWISE_ROLE_GROUPS": "security=sec-team",
        **extra,
    }
    return from_sources([], env, isatty=False)


def test_setup_registers_the_handler_and_a_server_from_the_settings(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, ROLLWISE_WEBHOOK_HOST="rollwise-webhook.ns.svc")
    registry, kopf_settings = kopf.OperatorRegistry(), kopf.OperatorSettings()
    assert a.setup_admission(registry, kopf_settings, settings) is True
    assert len(registry._webhooks.get_all_handlers()) == 3
    server = kopf_settings.admission.server
    assert isinstance(server, kopf.WebhookServer)
    assert (server.addr, server.port, server.host) == ("0.0.0.0", 9443, "rollwise-webhook.ns.svc")
    assert (server.certfile, server.pkeyfile) == (
        settings.webhook_cert_file,
        settings.webhook_key_file,
    )
    assert server.insecure is False
    assert kopf_settings.admission.managed == "rollwise.dev"
    # Only callers with a certificate of the client CA complete the TLS handshake.
    assert server.verify_mode is ssl.CERT_REQUIRED
    assert server.verify_cafile == settings.webhook_client_ca_file


def test_without_client_authentication_the_server_verifies_nobody(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, ROLLWISE_WEBHOOK_CLIENT_AUTH="none")
    server = a.webhook_server(settings)
    assert (server.verify_mode, server.verify_cafile) == (None, None)


def test_a_missing_client_ca_fails_the_start(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    Path(settings.webhook_client_ca_file).unlink()
    with pytest.raises(a.AdmissionSetupError, match="does not exist"):
        a.webhook_server(settings)


PEER = {
    "subject": ((("organizationName", "k8s"),), (("commonName", "kube-apiserver-admission"),)),
    "subjectAltName": (("DNS", "apiserver.example"), ("IP Address", "10.0.0.1")),
}


@pytest.mark.parametrize(
    ("names", "peer", "allowed"),
    [
        pytest.param((), PEER, True, id="any-certificate-of-the-ca"),
        pytest.param(("kube-apiserver-admission",), PEER, True, id="common-name"),
        pytest.param(("apiserver.example",), PEER, True, id="dns-san"),
        pytest.param(("10.0.0.1",), PEER, False, id="ip-san-is-not-a-name"),
        pytest.param(("kube-apiserver-admission",), {}, False, id="no-certificate"),
        pytest.param(("someone-else",), PEER, False, id="another-name"),
    ],
)
def test_the_caller_names_its_certificate_must_carry(
    names: tuple[str, ...], peer: dict[str, Any], allowed: bool
) -> None:
    config = a.AdmissionConfig(key=KEY, role_map={}, client_names=names)
    if allowed:
        a.check_caller(config, peer)
        return
    with pytest.raises(kopf.AdmissionError, match="ROLLWISE_WEBHOOK_CLIENT_NAMES"):
        a.check_caller(config, peer)


def test_a_chart_managed_configuration_leaves_kopf_unmanaged(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, ROLLWISE_WEBHOOK_MANAGED="false")
    kopf_settings = kopf.OperatorSettings()
    a.configure_admission(kopf_settings, settings)
    assert kopf_settings.admission.managed is None
    assert kopf_settings.admission.server is not None


def test_setup_is_a_no_op_when_the_webhook_is_off() -> None:
    registry, kopf_settings = kopf.OperatorRegistry(), kopf.OperatorSettings()
    settings = from_sources([], {}, isatty=False)
    assert a.setup_admission(registry, kopf_settings, settings) is False
    assert registry._webhooks.get_all_handlers() == []
    assert kopf_settings.admission.server is None


def test_missing_certificate_files_fail_the_start(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    Path(settings.webhook_cert_file).unlink()
    with pytest.raises(a.AdmissionSetupError, match="does not exist"):
        a.webhook_server(settings)


def test_the_keyring_is_the_record_key_and_the_earlier_ones(tmp_path: Path) -> None:
    previous = tmp_path / "previous"
    previous.write_bytes(b"last year's record key\n")
    settings = settings_for(tmp_path, ROLLWISE_RECORD_PREVIOUS_KEY_FILES=f" {previous} ,")
    ring = a.read_keyring(settings)
    assert ring is not None
    assert bytes(ring) == KEY
    assert ring.previous == (b"last year's record key",)
    assert a.load_admission(settings).key.previous == ring.previous  # type: ignore[attr-defined]
    old = signing.sign({"role": "security", "user": "bob"}, "uid", b"last year's record key")
    assert signing.verify(old, "uid", ring)


DEPLOYMENTS = Resource(group="apps", version="v1", plural="deployments", namespaced=True)
ISVCS = Resource(
    group="serving.kserve.io", version="v1beta1", plural="inferenceservices", namespaced=True
)


class ServingReads:
    """The namespace's ModelReleases and revocation ledger, as the serving gate reads them."""

    def __init__(self, releases: list[dict[str, Any]], ledger: dict[str, Any] | None) -> None:
        self.releases = releases
        self.ledger = ledger
        self.asked: list[tuple[str, str, str, str]] = []

    def list_releases(self, namespace: str) -> list[dict[str, Any]]:
        return self.releases

    def revoked(
        self, namespace: str, model: str, version: str, scope: str = ""
    ) -> dict[str, Any] | None:
        self.asked.append((namespace, model, version, scope))
        return self.ledger


def served(version: str = "7") -> dict[str, Any]:
    labels = {"rollwise.dev/model": "fraud", "rollwise.dev/model-version": version}
    return {"metadata": {"name": "srv", "namespace": "models", "labels": labels}}


def test_the_serving_gate_is_registered_for_labelled_deployments_and_inference_services() -> None:
    registry = kopf.OperatorRegistry()
    sg.register_serving_gate(registry, ServingReads([], None))
    handlers = registry._webhooks.get_all_handlers()
    assert [h.id for h in handlers] == [sg.SERVING_HANDLER_ID, sg.SERVING_HANDLER_ID]
    webhooks = build_webhooks(
        handlers,
        resources=[DEPLOYMENTS, ISVCS],
        name_suffix=WEBHOOK_CONFIGURATION,
        client_config={"url": "https://127.0.0.1:9443"},
    )
    assert {w["name"] for w in webhooks} == {"serving-gate.rollwise.dev"}
    for webhook in webhooks:
        assert webhook["failurePolicy"] == "Fail"
        assert webhook["objectSelector"] == {
            "matchExpressions": [{"key": "rollwise.dev/model-version", "operator": "Exists"}]
        }
        assert webhook["clientConfig"]["url"] == f"https://127.0.0.1:9443{sg.SERVING_WEBHOOK_PATH}"


def test_serving_refusal_reads_the_releases_and_the_ledger() -> None:
    production = {
        "metadata": {"name": "fraud-7"},
        "spec": {"model": "fraud", "version": "7"},
        "status": {"stage": "Production"},
    }
    reads = ServingReads([production], None)
    assert sg.serving_refusal(reads, "Deployment", served()) is None
    assert reads.asked == [("models", "fraud", "7", "namespace/models")]
    ledger = ServingReads([production], {"release": "fraud-7-old", "model": "fraud"})
    message = sg.serving_refusal(ledger, "Deployment", served())
    assert message == (
        "Deployment models/srv serves model fraud version 7, which ModelRelease fraud-7-old "
        "revoked: refused"
    )
    unlabelled = ServingReads([], None)
    assert sg.serving_refusal(unlabelled, "Deployment", {"metadata": {"name": "x"}}) is None
    assert unlabelled.asked == []


class ScopedLedger(ServingReads):
    """A cluster ledger holding the version's revocation under one registry's scope only."""

    def revoked(
        self, namespace: str, model: str, version: str, scope: str = ""
    ) -> dict[str, Any] | None:
        self.asked.append((namespace, model, version, scope))
        return {"release": "fraud-7-team-b"} if scope == "registry/shared" else None


def test_serving_refusal_looks_in_the_ledger_of_each_registry_the_model_uses() -> None:
    production = {
        "metadata": {"name": "fraud-7"},
        "spec": {
            "model": "fraud",
            "version": "7",
            "alias": {"store": {"mlflow": {"registry": "shared"}}},
        },
        "status": {"stage": "Production"},
    }
    reads = ScopedLedger([production], None)
    message = sg.serving_refusal(reads, "Deployment", served())
    assert message is not None
    assert "which ModelRelease fraud-7-team-b revoked: refused" in message
    assert [scope for *_, scope in reads.asked] == ["namespace/models", "registry/shared"]


def gated(annotations: dict[str, str] | None = None, image: str = "a") -> dict[str, Any]:
    """A Rollout with an approval step (step 2), its template of image ``image``."""
    obj = rollout(annotations)
    template = {**TEMPLATE, "spec": {"containers": [{"name": "a", "image": image}]}}
    obj["spec"] = {
        "template": template,
        "strategy": {
            "canary": {
                "steps": [{"setWeight": 10}, {"approval": {"roles": ["security"]}}],
            }
        },
    }
    return obj


def test_a_rollout_approval_needs_another_person_than_the_template_author() -> None:
    from rollwise.core.rollout import approvals as ap  # noqa: PLC0415

    reported: list[tuple[str, str, str, Any]] = []
    config = a.AdmissionConfig(
        key=KEY,
        role_map={"security": ("sec-team",)},
        refusals=lambda ns, name, uid, refusal: reported.append((ns, name, uid, refusal)),
    )
    changed = a.decide_rollout(
        config,
        operation="UPDATE",
        old=gated(),
        new=gated(image="b"),
        userinfo={"username": "alice", "groups": ["sec-team"]},
        now=NOW,
    )
    stored = {ap.TEMPLATE_SET_BY: str(changed[ap.TEMPLATE_SET_BY])}
    request = json.dumps({"id": "a1", "role": "security", "step": 1})
    with pytest.raises(kopf.AdmissionError) as refused:
        a.decide_rollout(
            config,
            operation="UPDATE",
            old=gated(stored, image="b"),
            new=gated({**stored, ap.APPROVE: request}, image="b"),
            userinfo={"username": "alice", "groups": ["sec-team"]},
            now=NOW,
        )
    assert refused.value.code == 403
    assert "alice changed the template of rollout web" in str(refused.value)
    [(ns, name, uid, refusal)] = reported
    assert (ns, name, uid, refusal.user, refusal.role) == (
        "apps",
        "web",
        "uid-r",
        "alice",
        "security",
    )
    approved = a.decide_rollout(
        config,
        operation="UPDATE",
        old=gated(stored, image="b"),
        new=gated({**stored, ap.APPROVE: request}, image="b"),
        userinfo={"username": "bob", "groups": ["sec-team"]},
        now=NOW,
    )
    assert approved[ap.APPROVE] is None
    records = ap.read_approval_records(
        {**stored, ap.APPROVALS: str(approved[ap.APPROVALS])}, "uid-r", KEY
    )
    assert [(x.user, x.role, x.step) for x in records.approvals] == [("bob", "security", 1)]
    assert len(reported) == 1


def test_a_rollout_with_approval_steps_is_guarded() -> None:
    assert a.guard_labels(gated(), gated(), {}) == {o.GUARDED_LABEL: "true"}
