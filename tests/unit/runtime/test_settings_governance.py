"""Settings of ModelRelease governance: record key, roles, the webhook and the gate sources."""

from __future__ import annotations

import pytest

from rollwise.adapters.gates.access import EvidenceAccess
from rollwise.runtime.setting_values import RegistrySetting, SettingsError, parse_role_groups
from rollwise.runtime.settings import apply_configmap, from_sources

WEBHOOK = {
    "ROLLWISE_WEBHOOK_PORT": "9443",
    "ROLLWISE_RECORD_KEY_FILE": "/etc/rollwise/record-key/key",
    "ROLLWISE_WEBHOOK_CERT_FILE": "/etc/rollwise/tls/tls.crt",
    "ROLLWISE_WEBHOOK_KEY_FILE": "/etc/rollwise/tls/tls.key",
    "ROLLWISE_WEBHOOK_CLIENT_CA_FILE": "/etc/rollwise/webhook-client-ca/ca.crt",
}


def test_governance_is_off_by_default() -> None:
    s = from_sources([], {}, isatty=False)
    assert not s.webhook_enabled
    assert s.webhook_port == 0
    assert s.record_key_file is None
    assert dict(s.role_groups) == {}
    assert (s.webhook_listen, s.webhook_host, s.webhook_managed) == ("0.0.0.0", "127.0.0.1", True)
    assert (s.policy_configmap, s.freeze_configmap, s.mlflow_url, s.mlflow_token_file) == (
        None,
        None,
        None,
        None,
    )


def test_every_governance_variable_is_read() -> None:
    env = {
        **WEBHOOK,
        "ROLLWISE_ROLE_GROUPS": "security=sec-team, sre ;product=pm;executive=cto;",
        "ROLLWISE_WEBHOOK_LISTEN": "127.0.0.1",
        "ROLLWISE_WEBHOOK_HOST": "rollwise-webhook.rollwise-system.svc",
        "ROLLWISE_WEBHOOK_CA_FILE": "/etc/rollwise/tls/ca.crt",
        "ROLLWISE_WEBHOOK_MANAGED": "False",
        "ROLLWISE_POLICY_CONFIGMAP": "rollwise-system/policies",
        "ROLLWISE_FREEZE_CONFIGMAP": "rollwise-system/freeze",
        "ROLLWISE_MLFLOW_URL": "http://mlflow.ml:5000/",
        "ROLLWISE_MLFLOW_TOKEN_FILE": "/etc/rollwise/mlflow/token",
        "POD_IP": "10.0.0.7",
    }
    s = from_sources([], env, isatty=False)
    assert s.webhook_enabled
    assert s.webhook_port == 9443
    assert s.record_key_file == "/etc/rollwise/record-key/key"
    assert dict(s.role_groups) == {
        "security": ("sec-team", "sre"),
        "product": ("pm",),
        "executive": ("cto",),
    }
    assert s.webhook_listen == "127.0.0.1"
    assert s.webhook_host == "rollwise-webhook.rollwise-system.svc"
    assert (s.webhook_cert_file, s.webhook_key_file, s.webhook_ca_file) == (
        "/etc/rollwise/tls/tls.crt",
        "/etc/rollwise/tls/tls.key",
        "/etc/rollwise/tls/ca.crt",
    )
    assert s.webhook_managed is False
    assert s.policy_configmap == ("rollwise-system", "policies")
    assert s.freeze_configmap == ("rollwise-system", "freeze")
    assert s.mlflow_url == "http://mlflow.ml:5000"
    assert s.mlflow_token_file == "/etc/rollwise/mlflow/token"


def test_the_webhook_host_defaults_to_the_pod_ip() -> None:
    assert from_sources([], {"POD_IP": "10.1.2.3"}, isatty=False).webhook_host == "10.1.2.3"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param(
            {"ROLLWISE_WEBHOOK_PORT": "9443"},
            "ROLLWISE_WEBHOOK_PORT: the webhook needs ROLLWISE_RECORD_KEY_FILE, "
            "ROLLWISE_WEBHOOK_CERT_FILE, ROLLWISE_WEBHOOK_KEY_FILE, "
            "ROLLWISE_WEBHOOK_CLIENT_CA_FILE (or ROLLWISE_WEBHOOK_CLIENT_AUTH=none) as well",
            id="webhook-without-files",
        ),
        pytest.param(
            {k: v for k, v in WEBHOOK.items() if k != "ROLLWISE_WEBHOOK_CLIENT_CA_FILE"},
            "needs ROLLWISE_WEBHOOK_CLIENT_CA_FILE (or ROLLWISE_WEBHOOK_CLIENT_AUTH=none) as well",
            id="webhook-without-client-ca",
        ),
        pytest.param(
            {**WEBHOOK, "ROLLWISE_WEBHOOK_CLIENT_AUTH": "optional"},
            "ROLLWISE_WEBHOOK_CLIENT_AUTH: 'optional' is not one of required, none",
            id="client-auth",
        ),
        pytest.param(
            {k: v for k, v in WEBHOOK.items() if k != "ROLLWISE_WEBHOOK_KEY_FILE"},
            "needs ROLLWISE_WEBHOOK_KEY_FILE as well",
            id="webhook-without-key",
        ),
        pytest.param({"ROLLWISE_WEBHOOK_PORT": "70000"}, "ROLLWISE_WEBHOOK_PORT", id="port"),
        pytest.param({"ROLLWISE_WEBHOOK_MANAGED": "maybe"}, "not true or false", id="managed"),
        pytest.param({"ROLLWISE_WEBHOOK_HOST": "a b"}, "ROLLWISE_WEBHOOK_HOST", id="host"),
        pytest.param({"ROLLWISE_WEBHOOK_LISTEN": "http://x/"}, "LISTEN", id="listen"),
        pytest.param({"ROLLWISE_ROLE_GROUPS": "security"}, "is not ROLE=GROUP", id="roles"),
        pytest.param({"ROLLWISE_ROLE_GROUPS": "Sec=a"}, "is not ROLE=GROUP", id="role-case"),
        pytest.param({"ROLLWISE_ROLE_GROUPS": "a=x;a=y"}, "listed twice", id="role-twice"),
        pytest.param({"ROLLWISE_ROLE_GROUPS": "a= , "}, "names no group", id="no-group"),
        pytest.param({"ROLLWISE_POLICY_CONFIGMAP": "policies"}, "NAMESPACE/NAME", id="policy"),
        pytest.param({"ROLLWISE_FREEZE_CONFIGMAP": "ns/Bad_Name"}, "FREEZE", id="freeze"),
        pytest.param({"ROLLWISE_MLFLOW_URL": "mlflow:5000"}, "not an http(s) URL", id="mlflow"),
    ],
)
def test_bad_governance_values_fail_naming_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=None) as raised:
        from_sources([], env, isatty=False)
    assert message in str(raised.value)


def test_role_groups_drop_duplicates_and_empty_parts() -> None:
    assert parse_role_groups(";security=a,a,b;;") == {"security": ("a", "b")}


# --------------------------------------------------------------------------- tenancy settings


def test_registries_policies_and_evidence_default_to_the_strict_ones() -> None:
    s = from_sources([], {}, isatty=False)
    assert s.registries == {}
    assert s.cluster_policy.registries == frozenset()
    assert s.cluster_policy.required_roles == ("security", "product")
    assert s.cluster_policy.model_owners == ()
    assert s.evidence_policy == EvidenceAccess()
    assert s.evidence_policy.allowed_hosts == ()
    assert s.evidence_policy.file_prefixes == ()


def test_registries_policies_and_evidence_are_read_from_the_environment() -> None:
    env = {
        "ROLLWISE_MLFLOW_URL": "http://mlflow.mlops:5000",
        "ROLLWISE_MLFLOW_TOKEN_FILE": "/etc/rollwise/mlflow/token",
        "ROLLWISE_MLFLOW_REGISTRIES": (
            '{"eu": {"url": "https://mlflow.eu.internal", "tokenFile": "/etc/rollwise/eu/token"}}'
        ),
        "ROLLWISE_RELEASE_POLICY": "requiredGates: [sbom]\nmodelOwners: {fraud-*: team-a}\n",
        "ROLLWISE_EVIDENCE_POLICY": (
            "allowedHosts: [artifacts.example.com, '*.s3.amazonaws.com']\n"
            "filePathPrefixes: [/models]\n"
        ),
    }
    s = from_sources([], env, isatty=False)
    assert s.registries == {
        "default": RegistrySetting("http://mlflow.mlops:5000", "/etc/rollwise/mlflow/token"),
        "eu": RegistrySetting("https://mlflow.eu.internal", "/etc/rollwise/eu/token"),
    }
    policy = s.cluster_policy
    assert policy.registries == frozenset({"default", "eu"})
    assert policy.required_gates == ("sbom",)
    assert policy.owner_of("fraud-us") == "team-a"
    access = s.evidence_policy
    assert access.allowed_schemes == ("https",)
    assert access.host_allowed("artifacts.example.com", 443)
    assert access.host_allowed("bucket.s3.amazonaws.com", 443)
    assert not access.host_allowed("s3.amazonaws.com", 443)
    assert access.file_prefixes == ("/models",)


def test_the_settings_configmap_carries_them_too_and_the_environment_wins() -> None:
    base = from_sources([], {"ROLLWISE_RELEASE_POLICY": "requiredRoles: [security]"}, isatty=False)
    data = {
        "mlflowRegistries": "main: {url: 'http://mlflow:5000'}",
        "releasePolicy": "requiredRoles: []",
        "evidencePolicy": "allowedSchemes: [http, https]\nallowedHosts: ['models.internal:8080']",
    }
    s = apply_configmap(base, data, env={"ROLLWISE_RELEASE_POLICY": "requiredRoles: [security]"})
    assert s.registries == {"main": RegistrySetting("http://mlflow:5000")}
    assert s.cluster_policy.required_roles == ("security",), "the environment wins"
    assert s.evidence_policy.host_allowed("models.internal", 8080)
    assert not s.evidence_policy.host_allowed("models.internal", 80)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param(
            {"ROLLWISE_MLFLOW_REGISTRIES": "main: {url: 'mlflow:5000'}"},
            "ROLLWISE_MLFLOW_REGISTRIES.main.url: 'mlflow:5000' is not an http(s) URL",
            id="registry-url",
        ),
        pytest.param(
            {"ROLLWISE_MLFLOW_REGISTRIES": "Main: {url: 'http://m'}"},
            "'Main' is not a registry name",
            id="registry-name",
        ),
        pytest.param(
            {"ROLLWISE_MLFLOW_REGISTRIES": "main: {url: 'http://m', token: x}"},
            "ROLLWISE_MLFLOW_REGISTRIES.main: unknown key(s) token",
            id="registry-key",
        ),
        pytest.param(
            {
                "ROLLWISE_MLFLOW_URL": "http://m",
                "ROLLWISE_MLFLOW_REGISTRIES": "default: {url: 'http://other'}",
            },
            "'default' is also defined by ROLLWISE_MLFLOW_URL",
            id="default-twice",
        ),
        pytest.param(
            {"ROLLWISE_RELEASE_POLICY": "requiredGates: [approvals]"},
            "ROLLWISE_RELEASE_POLICY.requiredGates: approvals cannot be required",
            id="policy-gate",
        ),
        pytest.param(
            {"ROLLWISE_RELEASE_POLICY": "[unclosed"}, "not YAML or JSON", id="policy-yaml"
        ),
        pytest.param(
            {"ROLLWISE_EVIDENCE_POLICY": "allowedSchemes: [ftp]"},
            "scheme(s) ftp cannot be allowed",
            id="evidence-scheme",
        ),
        pytest.param(
            {"ROLLWISE_EVIDENCE_POLICY": "filePathPrefixes: [models]"},
            "'models' is not an absolute directory",
            id="evidence-relative-prefix",
        ),
        pytest.param(
            {"ROLLWISE_EVIDENCE_POLICY": "filePathPrefixes: [/]"},
            "'/' is not an absolute directory other than /",
            id="evidence-root-prefix",
        ),
        pytest.param(
            {"ROLLWISE_EVIDENCE_POLICY": "allowedHosts: ['http://x/']"},
            "is not a host, host:port or *.domain",
            id="evidence-host-url",
        ),
        pytest.param(
            {"ROLLWISE_EVIDENCE_POLICY": "allowHosts: [x]"},
            "unknown key(s) allowHosts",
            id="evidence-typo",
        ),
    ],
)
def test_bad_tenancy_settings_fail_naming_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        from_sources([], env, isatty=False)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("env", "ledger"),
    [
        pytest.param({}, None, id="outside-a-cluster"),
        pytest.param(
            {"POD_NAMESPACE": "rollwise-system"},
            ("rollwise-system", "rollwise-revocations"),
            id="the-operators-namespace",
        ),
        pytest.param(
            {"POD_NAMESPACE": "rollwise-system", "ROLLWISE_LEDGER_CONFIGMAP": "audit/revoked"},
            ("audit", "revoked"),
            id="named",
        ),
    ],
)
def test_the_revocation_ledger_is_the_operators(
    env: dict[str, str], ledger: tuple[str, str] | None
) -> None:
    assert from_sources([], env, isatty=False).ledger_configmap == ledger
