"""The chart's notification, dashboard and alert values: what RBAC each secretAccess grants
(get on Secrets only, only where asked), the settings the operator receives (and accepts), and
the dashboard ConfigMap Grafana's sidecar selects."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from rollwise.runtime.settings import from_sources
from tests.unit.test_chart import (
    CHART,
    RELEASE,
    RELEASE_NAMESPACE,
    Helm,
    _container,
    _env,
    _named,
    _of_kind,
    _rule_table,
)

SECRETS_ROLE = f"{RELEASE}-notification-secrets"


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    binary = shutil.which("helm")
    assert binary, "helm is missing: run `make system-deps`"
    return Helm(binary, tmp_path_factory.mktemp("helm-home"))


def _secret_grants(docs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(kind, namespace) of every binding of the notification-secrets ClusterRole."""
    return sorted(
        (doc["kind"], doc["metadata"].get("namespace", ""))
        for doc in docs
        if doc["kind"] in {"RoleBinding", "ClusterRoleBinding"}
        and doc["roleRef"]["name"] == SECRETS_ROLE
    )


def test_by_default_secrets_are_readable_nowhere_until_a_namespace_opts_in(helm: Helm) -> None:
    docs = helm.template()
    role = _named(docs, "ClusterRole", SECRETS_ROLE)
    assert _rule_table(role["rules"]) == {("", "secrets", "get")}
    assert _secret_grants(docs) == []


def test_secret_namespaces_get_a_role_binding_each(helm: Helm) -> None:
    docs = helm.template("notifications.secretNamespaces={shop,payments}")
    assert _secret_grants(docs) == [("RoleBinding", "payments"), ("RoleBinding", "shop")]
    for binding in _of_kind(docs, "RoleBinding"):
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": RELEASE, "namespace": RELEASE_NAMESPACE}
        ]


def test_secret_access_all_follows_the_scope(helm: Helm) -> None:
    cluster = helm.template("notifications.secretAccess=all")
    assert _secret_grants(cluster) == [("ClusterRoleBinding", "")]
    namespaced = helm.template(
        "notifications.secretAccess=all", "scope=namespace", "watchNamespaces={team-a,team-b}"
    )
    assert _secret_grants(namespaced) == [("RoleBinding", "team-a"), ("RoleBinding", "team-b")]


def test_notifications_off_grant_nothing(helm: Helm) -> None:
    docs = helm.template("notifications.enabled=false")
    assert [r for r in _of_kind(docs, "ClusterRole") if r["metadata"]["name"] == SECRETS_ROLE] == []
    rules = _rule_table(_named(docs, "ClusterRole", RELEASE)["rules"])
    assert not {r for r in rules if r[1].startswith("notificationpolicies")}
    assert _env(_container(docs))["ROLLWISE_NOTIFICATIONS"] == "false"


def test_the_host_policy_is_set_without_notifications_too(helm: Helm) -> None:
    """It also guards a Rollout's gating webhooks, which run with notifications off."""
    docs = helm.template(
        "notifications.enabled=false",
        "notifications.allowedHosts={gate.example.com}",
        "notifications.allowedNetworks={10.0.0.0/8}",
        "notifications.schemes={https}",
    )
    env = {k: v for k, v in _env(_container(docs)).items() if isinstance(v, str)}
    settings = from_sources([], env)
    assert settings.notifications is False
    assert settings.notify_allowed_hosts == ("gate.example.com",)
    assert settings.notify_schemes == ("https",)
    assert [str(n) for n in settings.notify_host_policy.allowed] == ["10.0.0.0/8"]
    assert "ROLLWISE_NOTIFY_QUEUE" not in env


def test_notification_values_become_settings_the_operator_accepts(helm: Helm) -> None:
    docs = helm.template(
        "notifications.allowedHosts={hooks.slack.com,*.example.com}",
        "notifications.allowedNetworks={10.0.0.0/8}",
        "notifications.deniedNetworks={169.254.0.0/16}",
        "notifications.schemes={https}",
        "notifications.queue=50",
        "notifications.workers=2",
        "notifications.namespaceDeliveries=1",
    )
    env = {k: v for k, v in _env(_container(docs)).items() if isinstance(v, str)}
    settings = from_sources([], env)
    assert settings.notifications is True
    assert settings.notify_allowed_hosts == ("hooks.slack.com", "*.example.com")
    assert settings.notify_schemes == ("https",)
    assert (settings.notify_queue, settings.notify_workers) == (50, 2)
    assert settings.notify_namespace_deliveries == 1
    policy = settings.notify_host_policy
    assert [str(n) for n in policy.denied] == ["169.254.0.0/16"]
    assert [str(n) for n in policy.allowed] == ["10.0.0.0/8"]


def test_the_dashboard_configmap_is_for_grafanas_sidecar(helm: Helm) -> None:
    docs = helm.template("dashboards.enabled=true", "dashboards.namespace=monitoring")
    configmap = _named(docs, "ConfigMap", f"{RELEASE}-dashboard")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["namespace"] == "monitoring"
    shipped = json.loads((CHART / "dashboards" / "rollwise.json").read_text())
    assert json.loads(configmap["data"]["rollwise.json"]) == shipped
    assert shipped["uid"] == "rollwise"
    names = [v["name"] for v in shipped["templating"]["list"]]
    assert names == ["datasource", "namespace", "rollout", "service", "job"]


def test_the_chart_ships_every_file_the_templates_read() -> None:
    ignored = (CHART / ".helmignore").read_text()
    assert "dashboards" not in ignored
    assert Path(CHART / "dashboards" / "rollwise.json").is_file()
