"""The operator's settings from the environment, one group per concern: ModelRelease
governance (the webhook, the record key, the gate sources), the tenants' budgets (allowed
providers, per-namespace bounds), notifications, and the tenancy documents (registries, the
release and evidence policies; the settings ConfigMap may carry these too).

Each group returns the :class:`rollwise.runtime.settings.Settings` fields it read, every
value checked (:mod:`rollwise.runtime.setting_values`);
:func:`rollwise.runtime.settings.from_sources` puts them together.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rollwise.adapters.notify import parse_networks
from rollwise.runtime.setting_values import (
    SettingsError,
    boolean,
    check_name,
    check_url,
    host,
    integer,
    name_list,
    namespaced_name,
    parse_evidence_policy,
    parse_registries,
    parse_release_policy,
    parse_role_groups,
    parse_web_providers,
    path_setting,
    port_number,
    positive_seconds,
    urls,
)

#: The cluster's revocation ledger, in the operator's namespace.
DEFAULT_LEDGER = "rollwise-revocations"


def governance_env(environ: Mapping[str, str]) -> dict[str, object]:
    """The ModelRelease governance settings (webhook, record key, gate sources)."""

    def get(name: str) -> str:
        return environ.get(name, "").strip()

    out: dict[str, object] = {}
    if raw := get("ROLLWISE_RECORD_KEY_FILE"):
        out["record_key_file"] = path_setting(raw, "ROLLWISE_RECORD_KEY_FILE")
    if raw := get("ROLLWISE_RECORD_PREVIOUS_KEY_FILES"):
        out["record_previous_key_files"] = tuple(
            path_setting(part.strip(), "ROLLWISE_RECORD_PREVIOUS_KEY_FILES")
            for part in raw.split(",")
            if part.strip()
        )
    if raw := get("ROLLWISE_ROLE_GROUPS"):
        out["role_groups"] = parse_role_groups(raw)
    port = port_number(raw, "ROLLWISE_WEBHOOK_PORT") if (raw := get("ROLLWISE_WEBHOOK_PORT")) else 0
    out["webhook_port"] = port
    if raw := get("ROLLWISE_WEBHOOK_LISTEN"):
        out["webhook_listen"] = host(raw, "ROLLWISE_WEBHOOK_LISTEN")
    if raw := get("ROLLWISE_WEBHOOK_HOST") or get("POD_IP"):
        out["webhook_host"] = host(raw, "ROLLWISE_WEBHOOK_HOST")
    for name, key in (
        ("ROLLWISE_WEBHOOK_CERT_FILE", "webhook_cert_file"),
        ("ROLLWISE_WEBHOOK_KEY_FILE", "webhook_key_file"),
        ("ROLLWISE_WEBHOOK_CA_FILE", "webhook_ca_file"),
        ("ROLLWISE_WEBHOOK_CLIENT_CA_FILE", "webhook_client_ca_file"),
        ("ROLLWISE_MLFLOW_TOKEN_FILE", "mlflow_token_file"),
    ):
        if raw := get(name):
            out[key] = path_setting(raw, name)
    if raw := get("ROLLWISE_WEBHOOK_MANAGED"):
        out["webhook_managed"] = boolean(raw, "ROLLWISE_WEBHOOK_MANAGED")
    if raw := get("ROLLWISE_WEBHOOK_CLIENT_AUTH"):
        if raw not in ("required", "none"):
            raise SettingsError(
                f"ROLLWISE_WEBHOOK_CLIENT_AUTH: {raw!r} is not one of required, none"
            )
        out["webhook_client_auth"] = raw == "required"
    if raw := get("ROLLWISE_WEBHOOK_CLIENT_NAMES"):
        out["webhook_client_names"] = tuple(
            dict.fromkeys(n.strip() for n in raw.split(",") if n.strip())
        )
    if port:
        missing = [
            name
            for name, key in (
                ("ROLLWISE_RECORD_KEY_FILE", "record_key_file"),
                ("ROLLWISE_WEBHOOK_CERT_FILE", "webhook_cert_file"),
                ("ROLLWISE_WEBHOOK_KEY_FILE", "webhook_key_file"),
            )
            if key not in out
        ]
        if out.get("webhook_client_auth", True) and "webhook_client_ca_file" not in out:
            missing.append("ROLLWISE_WEBHOOK_CLIENT_CA_FILE (or ROLLWISE_WEBHOOK_CLIENT_AUTH=none)")
        if missing:
            raise SettingsError(
                f"ROLLWISE_WEBHOOK_PORT: the webhook needs {', '.join(missing)} as well"
            )
    if raw := get("ROLLWISE_POLICY_CONFIGMAP"):
        out["policy_configmap"] = namespaced_name(raw, "ROLLWISE_POLICY_CONFIGMAP")
    if raw := get("ROLLWISE_FREEZE_CONFIGMAP"):
        out["freeze_configmap"] = namespaced_name(raw, "ROLLWISE_FREEZE_CONFIGMAP")
    if raw := get("ROLLWISE_LEDGER_CONFIGMAP"):
        out["ledger_configmap"] = namespaced_name(raw, "ROLLWISE_LEDGER_CONFIGMAP")
    elif raw := get("POD_NAMESPACE"):
        out["ledger_configmap"] = (check_name(raw, "POD_NAMESPACE"), DEFAULT_LEDGER)
    if raw := get("ROLLWISE_MLFLOW_URL"):
        out["mlflow_url"] = check_url(raw, "ROLLWISE_MLFLOW_URL")
    out.update(tenancy_env(get))
    return out


def budgets_env(environ: Mapping[str, str]) -> dict[str, object]:
    """The settings that keep tenants apart: allowed providers and per-namespace budgets."""

    def get(name: str) -> str:
        return environ.get(name, "").strip()

    out: dict[str, object] = {}
    if raw := get("ROLLWISE_PROMETHEUS_ALLOWED_URLS"):
        out["prometheus_allowed_urls"] = urls(raw, "ROLLWISE_PROMETHEUS_ALLOWED_URLS")
    if raw := get("ROLLWISE_WEB_PROVIDERS"):
        out["web_providers"] = parse_web_providers(raw, "ROLLWISE_WEB_PROVIDERS")
    if raw := get("ROLLWISE_MAX_QUERY_SECONDS"):
        out["max_query_seconds"] = positive_seconds(raw, "ROLLWISE_MAX_QUERY_SECONDS")
    for name, key, minimum in (
        ("ROLLWISE_NAMESPACE_PASSES", "namespace_passes", 0),
        ("ROLLWISE_QUERY_THREADS", "query_threads", 1),
        ("ROLLWISE_NAMESPACE_QUERIES", "namespace_queries", 0),
    ):
        if raw := get(name):
            out[key] = integer(raw, name, minimum=minimum)
    return out


#: The settings ConfigMap keys of the tenancy settings, with their environment variables.
TENANCY = (
    ("mlflowRegistries", "ROLLWISE_MLFLOW_REGISTRIES", "mlflow_registries", parse_registries),
    ("releasePolicy", "ROLLWISE_RELEASE_POLICY", "release_policy", parse_release_policy),
    ("evidencePolicy", "ROLLWISE_EVIDENCE_POLICY", "evidence_policy", parse_evidence_policy),
)


def notifications_env(environ: Mapping[str, str]) -> dict[str, object]:
    """The notification settings: on or off, where they may go, the delivery queue."""

    def get(name: str) -> str:
        return environ.get(name, "").strip()

    out: dict[str, object] = {}
    if raw := get("ROLLWISE_NOTIFICATIONS"):
        out["notifications"] = boolean(raw, "ROLLWISE_NOTIFICATIONS")
    if raw := get("ROLLWISE_NOTIFY_ALLOWED_HOSTS"):
        out["notify_allowed_hosts"] = tuple(h.lower() for h in name_list(raw))
    for name, key in (
        ("ROLLWISE_NOTIFY_DENIED_NETWORKS", "notify_denied_networks"),
        ("ROLLWISE_NOTIFY_ALLOWED_NETWORKS", "notify_allowed_networks"),
    ):
        if raw := get(name):
            try:
                parse_networks(name_list(raw))
            except ValueError as exc:
                raise SettingsError(f"{name}: {exc}") from None
            out[key] = name_list(raw)
    if raw := get("ROLLWISE_NOTIFY_SCHEMES"):
        schemes = tuple(s.lower() for s in name_list(raw))
        if not set(schemes) <= {"http", "https"}:
            raise SettingsError(f"ROLLWISE_NOTIFY_SCHEMES: {raw!r}: only http and https")
        out["notify_schemes"] = schemes
    for name, key, minimum in (
        ("ROLLWISE_NOTIFY_QUEUE", "notify_queue", 1),
        ("ROLLWISE_NOTIFY_WORKERS", "notify_workers", 1),
        ("ROLLWISE_NOTIFY_NAMESPACE_DELIVERIES", "notify_namespace_deliveries", 0),
    ):
        if raw := get(name):
            out[key] = integer(raw, name, minimum=minimum)
    return out


def tenancy_env(get: Any) -> dict[str, object]:
    """What the operator's settings decide for every tenant: registries, the release policy
    and the evidence policy, from the environment."""
    out: dict[str, object] = {}
    for _key, name, attribute, parse in TENANCY:
        if raw := get(name):
            out[attribute] = parse(raw, name)
    return out


__all__ = [
    "DEFAULT_LEDGER",
    "TENANCY",
    "budgets_env",
    "governance_env",
    "notifications_env",
    "tenancy_env",
]
