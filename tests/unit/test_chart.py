"""The Helm chart (charts/rollwise), linted and rendered by the real `helm` (v3, installed by
hack/ensure-helm.sh through `make test`), and the operator image's contract with it.

Pins what a platform engineer reviews before installing an operator: strict lint passes in every
supported shape; every rendered object is well formed; the pod runs non-root on a read-only root
filesystem with kopf's liveness probe; RBAC grants exactly the least-privilege table below, with
no wildcard anywhere; values.schema.json refuses bad values inside helm itself; the chart's CRDs
are the bytes of crds/; the Dockerfile agrees with the chart on user, ports and entry point.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "rollwise"
RELEASE = "rollwise"
RELEASE_NAMESPACE = "rollwise-system"
WATCHED = ("team-a", "team-b")

Rule = tuple[str, str, str]  # (apiGroup, resource, verb)


def _grants(api_group: str, resources: tuple[str, ...], verbs: tuple[str, ...]) -> set[Rule]:
    return {(api_group, r, v) for r in resources for v in verbs}


READ = ("get", "list", "watch")
ROUTE = (*READ, "patch", "update")
PEERING = (*READ, "create", "patch")

#: Everything the operator does inside a namespace it watches.
NAMESPACED: frozenset[Rule] = frozenset(
    _grants("rollwise.dev", ("rollouts",), (*ROUTE, "create"))
    | _grants("rollwise.dev", ("modelreleases",), ROUTE)
    | _grants("rollwise.dev", ("analysistemplates",), READ)
    | _grants("rollwise.dev", ("rollouts/status", "modelreleases/status"), ("patch",))
    | _grants("rollwise.dev", ("rollouts/finalizers", "modelreleases/finalizers"), ("update",))
    | _grants("apps", ("deployments",), (*READ, "create", "patch", "update", "delete"))
    | _grants("", ("services",), ROUTE)
    | _grants("", ("configmaps",), (*READ, "create", "patch", "update"))
    | _grants("", ("events",), ("create", "patch"))
    | _grants("events.k8s.io", ("events",), ("create", "patch"))
    | _grants("gateway.networking.k8s.io", ("httproutes",), ROUTE)
    | _grants("networking.istio.io", ("virtualservices",), ROUTE)
    | _grants("serving.kserve.io", ("inferenceservices",), ROUTE)
    | _grants("rollwise.dev", ("notificationpolicies",), READ)
    | _grants("rollwise.dev", ("notificationpolicies/status",), ("patch",))
)
#: The ClusterRole that reads sinks' Secrets: get only, never list or watch; bound only where
#: notifications.secretAccess says (nowhere by default).
NOTIFICATION_SECRETS_ROLE = f"{RELEASE}-notification-secrets"
#: Cluster-scoped resources, granted by the ClusterRole in both scopes: kopf scans CRDs, and
#: lists and watches namespaces even when it is given exact names (a refusal is retried for
#: over a minute before it falls back to the names: found on the lab's real API server).
CLUSTER_ONLY: frozenset[Rule] = frozenset(
    _grants("apiextensions.k8s.io", ("customresourcedefinitions",), READ)
    | _grants("", ("namespaces",), ("list", "watch"))
    | _grants("rollwise.dev", ("clusteranalysistemplates",), READ)
)
CLUSTER_TEMPLATES: frozenset[Rule] = frozenset(
    _grants("rollwise.dev", ("clusteranalysistemplates",), READ)
)
#: webhook.configuration "operator": kopf creates its mutating (and an empty validating)
#: configuration, then patches them; it never reads them.
OPERATOR_WEBHOOK: frozenset[Rule] = frozenset(
    _grants(
        "admissionregistration.k8s.io",
        ("validatingwebhookconfigurations", "mutatingwebhookconfigurations"),
        ("create", "patch"),
    )
)
#: Cluster-wide watching: kopf lists and watches namespaces (also in namespace scope, above).
CLUSTER_WATCH: frozenset[Rule] = frozenset(_grants("", ("namespaces",), ("list", "watch")))
CLUSTER_PEERING: frozenset[Rule] = frozenset(_grants("kopf.dev", ("clusterkopfpeerings",), PEERING))
NAMESPACE_PEERING: frozenset[Rule] = frozenset(_grants("kopf.dev", ("kopfpeerings",), PEERING))


@dataclass(frozen=True)
class Scenario:
    """One supported shape of the chart: the --set flags and the exact RBAC it must render."""

    sets: tuple[str, ...]
    cluster_role: frozenset[Rule]
    role_namespaces: tuple[str, ...]
    role: frozenset[Rule]
    replicas: int


SCENARIOS = {
    "default": Scenario(
        sets=(),
        cluster_role=CLUSTER_ONLY | CLUSTER_WATCH | NAMESPACED,
        role_namespaces=(),
        role=frozenset(),
        replicas=1,
    ),
    "namespace-scope": Scenario(
        sets=("scope=namespace", "watchNamespaces={" + ",".join(WATCHED) + "}"),
        cluster_role=CLUSTER_ONLY,
        role_namespaces=WATCHED,
        role=NAMESPACED,
        replicas=1,
    ),
    "replicas-2": Scenario(
        sets=("replicas=2",),
        cluster_role=CLUSTER_ONLY | CLUSTER_WATCH | NAMESPACED | CLUSTER_PEERING,
        role_namespaces=(),
        role=frozenset(),
        replicas=2,
    ),
    "namespace-scope-replicas-2": Scenario(
        sets=("scope=namespace", "watchNamespaces={" + ",".join(WATCHED) + "}", "replicas=2"),
        cluster_role=CLUSTER_ONLY,
        role_namespaces=WATCHED,
        role=NAMESPACED | NAMESPACE_PEERING,
        replicas=2,
    ),
    "namespace-scope-no-cluster-templates": Scenario(
        sets=(
            "scope=namespace",
            "watchNamespaces={" + ",".join(WATCHED) + "}",
            "analysisTemplates.clusterTemplates=false",
        ),
        cluster_role=CLUSTER_ONLY - CLUSTER_TEMPLATES,
        role_namespaces=WATCHED,
        role=NAMESPACED,
        replicas=1,
    ),
    "operator-webhook": Scenario(
        sets=("webhook.configuration=operator",),
        cluster_role=CLUSTER_ONLY | OPERATOR_WEBHOOK | CLUSTER_WATCH | NAMESPACED,
        role_namespaces=(),
        role=frozenset(),
        replicas=1,
    ),
}
SCENARIO_PARAMS = [pytest.param(name, id=name) for name in SCENARIOS]


class Helm:
    """The real helm binary with private config, cache and data directories."""

    def __init__(self, binary: str, home: Path) -> None:
        self.binary = binary
        self.env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(home),
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"),
        }

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=self.env,
            check=False,
        )

    def template(self, *sets: str, extra: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        args = ["template", RELEASE, str(CHART), "--namespace", RELEASE_NAMESPACE, *extra]
        for item in sets:
            args += ["--set", item]
        proc = self(*args)
        assert proc.returncode == 0, proc.stderr
        return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    binary = shutil.which("helm")
    assert binary, "helm is missing: run `make system-deps` (hack/ensure-helm.sh installs it)"
    return Helm(binary, tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="module")
def rendered(helm: Helm) -> dict[str, list[dict[str, Any]]]:
    return {name: helm.template(*scenario.sets) for name, scenario in SCENARIOS.items()}


def _of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def _one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = _of_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def _rule_table(rules: list[dict[str, Any]]) -> set[Rule]:
    table: set[Rule] = set()
    for rule in rules:
        assert set(rule) <= {"apiGroups", "resources", "verbs"}, rule  # no resourceNames etc.
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    table.add((group, resource, verb))
    return table


def _walk_strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from _walk_strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk_strings(item)


def _container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    containers = _one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["operator"]
    return dict(containers[0])


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}


# --- helm lint ---------------------------------------------------------------------------------


def test_helm_is_version_3(helm: Helm) -> None:
    proc = helm("version", "--short")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("v3."), proc.stdout


@pytest.mark.parametrize("scenario", SCENARIO_PARAMS)
def test_strict_lint_passes(helm: Helm, scenario: str) -> None:
    args = ["lint", "--strict", str(CHART), "--namespace", RELEASE_NAMESPACE]
    for item in SCENARIOS[scenario].sets:
        args += ["--set", item]
    proc = helm(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout
    assert "[WARNING]" not in proc.stdout, proc.stdout
    assert "[ERROR]" not in proc.stdout, proc.stdout


# --- rendered objects --------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIO_PARAMS)
def test_every_object_is_well_formed(
    rendered: dict[str, list[dict[str, Any]]], scenario: str
) -> None:
    docs = rendered[scenario]
    assert docs
    cluster_scoped = {
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    }
    for doc in docs:
        assert doc.get("apiVersion"), doc
        assert doc.get("kind"), doc
        name = doc["metadata"]["name"]
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name), name
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        if doc["kind"] in cluster_scoped:
            assert "namespace" not in doc["metadata"], doc["kind"]
        else:
            assert doc["metadata"]["namespace"], doc["kind"]


@pytest.mark.parametrize(
    ("scenario", "expected_kinds"),
    [
        pytest.param(
            "default",
            [
                "ClusterRole",
                "ClusterRole",
                "ClusterRoleBinding",
                "Deployment",
                "MutatingWebhookConfiguration",
                "NetworkPolicy",
                "Secret",
                "Service",
                "Service",
                "ServiceAccount",
                "ValidatingWebhookConfiguration",
            ],
            id="default",
        ),
        pytest.param(
            "operator-webhook",
            [
                "ClusterRole",
                "ClusterRole",
                "ClusterRoleBinding",
                "Deployment",
                "NetworkPolicy",
                "Secret",
                "Service",
                "Service",
                "ServiceAccount",
            ],
            id="operator-webhook",
        ),
        pytest.param(
            "namespace-scope",
            [
                "ClusterRole",
                "ClusterRole",
                "ClusterRoleBinding",
                "Deployment",
                "MutatingWebhookConfiguration",
                "NetworkPolicy",
                "Role",
                "Role",
                "Role",
                "RoleBinding",
                "RoleBinding",
                "RoleBinding",
                "Secret",
                "Service",
                "Service",
                "ServiceAccount",
                "ValidatingWebhookConfiguration",
            ],
            id="namespace-scope",
        ),
        pytest.param(
            "replicas-2",
            [
                "ClusterRole",
                "ClusterRole",
                "ClusterRoleBinding",
                "CustomResourceDefinition",
                "CustomResourceDefinition",
                "Deployment",
                "MutatingWebhookConfiguration",
                "NetworkPolicy",
                "PodDisruptionBudget",
                "Secret",
                "Service",
                "Service",
                "ServiceAccount",
                "ValidatingWebhookConfiguration",
            ],
            id="replicas-2",
        ),
    ],
)
def test_rendered_kinds(
    rendered: dict[str, list[dict[str, Any]]], scenario: str, expected_kinds: list[str]
) -> None:
    assert sorted(doc["kind"] for doc in rendered[scenario]) == expected_kinds


@pytest.mark.parametrize("scenario", SCENARIO_PARAMS)
def test_pod_runs_unprivileged_on_a_read_only_root(
    rendered: dict[str, list[dict[str, Any]]], scenario: str
) -> None:
    docs = rendered[scenario]
    pod = _one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = _container(docs)
    ctx = container["securityContext"]
    assert ctx["runAsNonRoot"] is True
    assert ctx["runAsUser"] == 65532
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]
    # The read-only root needs a writable /tmp.
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert pod["serviceAccountName"] == RELEASE


@pytest.mark.parametrize("scenario", SCENARIO_PARAMS)
def test_kopf_liveness_probe_and_ports(
    rendered: dict[str, list[dict[str, Any]]], scenario: str
) -> None:
    container = _container(rendered[scenario])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": 8080, "metrics": 9102, "webhook": 9443}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert "--liveness=http://0.0.0.0:8080/healthz" in container["args"]
    services = {s["metadata"]["name"]: s for s in _of_kind(rendered[scenario], "Service")}
    assert set(services) == {f"{RELEASE}-metrics", f"{RELEASE}-webhook"}
    assert services[f"{RELEASE}-metrics"]["spec"]["ports"] == [
        {"name": "metrics", "port": 9102, "targetPort": "metrics", "protocol": "TCP"}
    ]
    assert services[f"{RELEASE}-webhook"]["spec"]["ports"] == [
        {"name": "webhook", "port": 9443, "targetPort": "webhook", "protocol": "TCP"}
    ]
    selector = _one(rendered[scenario], "Deployment")["spec"]["selector"]["matchLabels"]
    for service in services.values():
        assert service["spec"]["selector"] == selector


@pytest.mark.parametrize("scenario", SCENARIO_PARAMS)
def test_flags_and_environment_for_the_runtime(
    rendered: dict[str, list[dict[str, Any]]], scenario: str
) -> None:
    spec = SCENARIOS[scenario]
    container = _container(rendered[scenario])
    namespaces = [a.removeprefix("--namespace=") for a in container["args"] if "--namespace" in a]
    assert namespaces == list(spec.role_namespaces)
    env = _env(container)
    assert env["ROLLWISE_LOG_FORMAT"] == "json"
    assert env["ROLLWISE_METRICS_PORT"] == "9102"
    assert env["ROLLWISE_WORKERS"] == "6"
    assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert "ROLLWISE_SETTINGS_CONFIGMAP" not in env
    deployment = _one(rendered[scenario], "Deployment")
    assert deployment["spec"]["replicas"] == spec.replicas
    if spec.replicas > 1:
        assert env["ROLLWISE_PEERING"] == "rollwise"
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        pdb = _one(rendered[scenario], "PodDisruptionBudget")
        assert pdb["spec"]["minAvailable"] == 1
        assert pdb["spec"]["selector"] == deployment["spec"]["selector"]
    else:
        assert "ROLLWISE_PEERING" not in env
        assert deployment["spec"]["strategy"] == {"type": "Recreate"}
        assert not _of_kind(rendered[scenario], "PodDisruptionBudget")


def test_settings_configmap_and_image_overrides(helm: Helm) -> None:
    digest = "sha256:" + "ab" * 32
    docs = helm.template(
        "settingsConfigMap=rollwise-settings",
        "logFormat=console",
        "workers=16",
        "image.repository=registry.example/rollwise",
        f"image.digest={digest}",
    )
    container = _container(docs)
    env = _env(container)
    assert env["ROLLWISE_SETTINGS_CONFIGMAP"] == f"{RELEASE_NAMESPACE}/rollwise-settings"
    assert env["ROLLWISE_LOG_FORMAT"] == "console"
    assert env["ROLLWISE_WORKERS"] == "16"
    assert container["image"] == f"registry.example/rollwise@{digest}"
    default_image = _container(helm.template())["image"]
    assert default_image == "rollwise/rollwise-operator:0.1.0"


def test_peering_crds_are_kept_on_uninstall(rendered: dict[str, list[dict[str, Any]]]) -> None:
    crds = _of_kind(rendered["replicas-2"], "CustomResourceDefinition")
    by_name = {crd["metadata"]["name"]: crd for crd in crds}
    assert set(by_name) == {"clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"}
    assert by_name["clusterkopfpeerings.kopf.dev"]["spec"]["scope"] == "Cluster"
    assert by_name["kopfpeerings.kopf.dev"]["spec"]["scope"] == "Namespaced"
    for crd in crds:
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        version = crd["spec"]["versions"][0]
        status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
        assert status["x-kubernetes-preserve-unknown-fields"] is True


# --- RBAC --------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIO_PARAMS)
def test_rbac_has_no_wildcards(rendered: dict[str, list[dict[str, Any]]], scenario: str) -> None:
    for doc in rendered[scenario]:
        if doc["kind"] in {"ClusterRole", "Role"}:
            strings = list(_walk_strings(doc["rules"]))
            assert strings
            assert not [s for s in strings if "*" in s], doc["kind"]


@pytest.mark.parametrize("scenario", SCENARIO_PARAMS)
def test_rbac_is_exactly_the_least_privilege_table(
    rendered: dict[str, list[dict[str, Any]]], scenario: str
) -> None:
    spec = SCENARIOS[scenario]
    docs = rendered[scenario]
    cluster_role = _named(docs, "ClusterRole", RELEASE)
    assert _rule_table(cluster_role["rules"]) == set(spec.cluster_role)
    secrets = _named(docs, "ClusterRole", NOTIFICATION_SECRETS_ROLE)
    assert _rule_table(secrets["rules"]) == {("", "secrets", "get")}
    roles = [r for r in _of_kind(docs, "Role") if r["metadata"]["name"] != LEDGER_ROLE]
    assert sorted(r["metadata"]["namespace"] for r in roles) == sorted(spec.role_namespaces)
    for role in roles:
        assert _rule_table(role["rules"]) == set(spec.role)
    # Nothing namespaced leaks into the ClusterRole of a namespace-scoped install.
    if spec.role_namespaces:
        assert not _rule_table(cluster_role["rules"]) & NAMESPACED


@pytest.mark.parametrize("scenario", SCENARIO_PARAMS)
def test_bindings_grant_the_roles_to_the_operator_service_account(
    rendered: dict[str, list[dict[str, Any]]], scenario: str
) -> None:
    docs = rendered[scenario]
    account = _one(docs, "ServiceAccount")
    subject = {
        "kind": "ServiceAccount",
        "name": account["metadata"]["name"],
        "namespace": RELEASE_NAMESPACE,
    }
    binding = _one(docs, "ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": RELEASE,
    }
    assert binding["subjects"] == [subject]
    role_bindings = _of_kind(docs, "RoleBinding")
    ledger = 1 if SCENARIOS[scenario].role_namespaces else 0
    assert len(role_bindings) == len(SCENARIOS[scenario].role_namespaces) + ledger
    for role_binding in role_bindings:
        assert role_binding["roleRef"]["kind"] == "Role"
        assert role_binding["subjects"] == [subject]


LEDGER_ROLE = f"{RELEASE}-ledger"


@pytest.mark.parametrize("scenario", SCENARIO_PARAMS)
def test_the_ledger_in_the_operators_namespace_is_granted_by_name(
    rendered: dict[str, list[dict[str, Any]]], scenario: str
) -> None:
    docs = rendered[scenario]
    ledger = [r for r in _of_kind(docs, "Role") if r["metadata"]["name"] == LEDGER_ROLE]
    if not SCENARIOS[scenario].role_namespaces:
        assert ledger == [], "the ClusterRole grants ConfigMaps everywhere"
        return
    [role] = ledger
    assert role["metadata"]["namespace"] == RELEASE_NAMESPACE
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["rollwise-revocations"],
            "verbs": ["get", "patch", "update"],
        },
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]},
    ]
    binding = _named(docs, "RoleBinding", LEDGER_ROLE)
    assert binding["roleRef"]["name"] == LEDGER_ROLE


def test_rbac_can_be_left_to_the_cluster_admin(helm: Helm) -> None:
    docs = helm.template(
        "rbac.create=false", "serviceAccount.create=false", "serviceAccount.name=platform-operator"
    )
    kinds = {doc["kind"] for doc in docs}
    assert not kinds & {
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "ServiceAccount",
    }
    pod = _one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "platform-operator"


# --- values.schema.json and value checks, enforced by helm -------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        pytest.param("replicas: two\n", "replicas: Invalid type", id="replicas-not-integer"),
        pytest.param(
            "replicas: 0\n", "replicas: Must be greater than or equal to 1", id="replicas-zero"
        ),
        pytest.param("bogus: 1\n", "Additional property bogus is not allowed", id="unknown-key"),
        pytest.param("scope: everywhere\n", "scope: scope must be one of", id="unknown-scope"),
        pytest.param("logFormat: xml\n", "logFormat: logFormat must be one of", id="log-format"),
        pytest.param(
            "scope: namespace\n",
            "watchNamespaces: Array must have at least 1 items",
            id="namespace-scope-without-namespaces",
        ),
        pytest.param(
            "watchNamespaces: [team-a]\n",
            "watchNamespaces: Array must have at most 0",
            id="cluster-scope-with-namespaces",
        ),
        pytest.param(
            "watchNamespaces: [Team_A]\nscope: namespace\n",
            "watchNamespaces.0: Does not match pattern",
            id="bad-namespace-name",
        ),
        pytest.param(
            "securityContext:\n  privileged: yes please\n",
            "securityContext.privileged: Invalid type",
            id="security-context-type",
        ),
        pytest.param(
            "metrics:\n  port: 70000\n",
            "metrics.port: Must be less than or equal to",
            id="port-range",
        ),
        pytest.param(
            "image:\n  digest: latest\n", "image.digest: Does not match pattern", id="bad-digest"
        ),
        pytest.param(
            "prometheus:\n  url: prometheus:9090\n",
            "prometheus.url: Does not match pattern",
            id="prometheus-url-without-scheme",
        ),
        pytest.param(
            "tenancy:\n  queryThreads: 0\n",
            "tenancy.queryThreads: Must be greater than or equal to 1",
            id="no-query-thread",
        ),
    ],
)
def test_schema_rejects_bad_values(helm: Helm, tmp_path: Path, values: str, message: str) -> None:
    bad = tmp_path / "values.yaml"
    bad.write_text(values)
    for command in (["template", RELEASE], ["lint", "--strict"]):
        proc = helm(*command, str(CHART), "--values", str(bad))
        assert proc.returncode != 0, proc.stdout
        assert message in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_settings_configmap_must_be_watched_in_namespace_scope(helm: Helm) -> None:
    proc = helm(
        "template",
        RELEASE,
        str(CHART),
        "--namespace",
        RELEASE_NAMESPACE,
        "--set",
        "scope=namespace",
        "--set",
        "watchNamespaces={team-a}",
        "--set",
        "settingsConfigMap=rollwise-settings",
    )
    assert proc.returncode != 0
    assert "must then be one of watchNamespaces" in proc.stderr


def _undescribed(schema: dict[str, Any], node: dict[str, Any], value: Any, path: str) -> list[str]:
    """Keys of a default value that the schema does not name (open maps excepted)."""
    while "$ref" in node:
        node = schema["definitions"][node["$ref"].rsplit("/", 1)[-1]]
    if not isinstance(value, dict) or "properties" not in node:
        return []
    missing: list[str] = []
    for key, child in value.items():
        if key not in node["properties"]:
            missing.append(f"{path}{key}")
        else:
            missing += _undescribed(schema, node["properties"][key], child, f"{path}{key}.")
    return missing


def test_schema_is_draft_07_closed_and_describes_every_default() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["additionalProperties"] is False
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    assert _undescribed(schema, schema, defaults, "") == []
    assert set(schema["properties"]) - {"global"} == set(defaults)


# --- ModelRelease governance: record key, webhook, gate inputs ----------------------------------


def _named(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, got {len(found)}"
    return found[0]


def _mounts(docs: list[dict[str, Any]]) -> dict[str, str]:
    container = _container(docs)
    return {m["name"]: m["mountPath"] for m in container["volumeMounts"]}


def _volumes(docs: list[dict[str, Any]]) -> dict[str, Any]:
    pod = _one(docs, "Deployment")["spec"]["template"]["spec"]
    return {v["name"]: v for v in pod["volumes"]}


def test_chart_webhook_is_scoped_fails_closed_and_trusts_the_generated_ca(
    rendered: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    docs = rendered["default"]
    config = _one(docs, "MutatingWebhookConfiguration")
    [hook, rollout_hook, guarded_hook] = config["webhooks"]
    assert hook["name"] == "records.rollwise.dev"
    assert hook["failurePolicy"] == "Fail"
    assert hook["sideEffects"] == "None"
    assert hook["rules"] == [
        {
            "apiGroups": ["rollwise.dev"],
            "apiVersions": ["v1alpha1"],
            "resources": ["modelreleases"],
            "operations": ["CREATE", "UPDATE"],
            "scope": "Namespaced",
        }
    ]
    assert "namespaceSelector" not in hook
    assert hook["clientConfig"]["service"] == {
        "name": f"{RELEASE}-webhook",
        "namespace": RELEASE_NAMESPACE,
        "port": 9443,
        "path": "/records",
    }
    # Overrides on Rollouts: the same server, the Rollout handler's path, and Ignore (records
    # are signed; Fail would block every Rollout write while the operator is down).
    assert rollout_hook["name"] == "rollout-records.rollwise.dev"
    assert rollout_hook["failurePolicy"] == "Ignore"
    assert rollout_hook["sideEffects"] == "None"
    assert rollout_hook["rules"] == [
        {
            "apiGroups": ["rollwise.dev"],
            "apiVersions": ["v1alpha1"],
            "resources": ["rollouts"],
            "operations": ["CREATE", "UPDATE"],
            "scope": "Namespaced",
        }
    ]
    assert rollout_hook["clientConfig"]["service"] == {
        **hook["clientConfig"]["service"],
        "path": "/rollout-records",
    }
    assert rollout_hook["clientConfig"]["caBundle"] == hook["clientConfig"]["caBundle"]
    # Guarded Rollouts (overrides recorded, or a ModelRelease's child) fail closed, and the
    # two Rollout entries split every Rollout between them by the label.
    guard = "rollwise.dev/guarded"
    assert rollout_hook["objectSelector"] == {
        "matchExpressions": [{"key": guard, "operator": "DoesNotExist"}]
    }
    assert guarded_hook["name"] == "guarded-rollout-records.rollwise.dev"
    assert guarded_hook["failurePolicy"] == "Fail"
    assert guarded_hook["objectSelector"] == {
        "matchExpressions": [{"key": guard, "operator": "Exists"}]
    }
    assert guarded_hook["rules"] == rollout_hook["rules"]
    assert guarded_hook["clientConfig"]["service"] == {
        **hook["clientConfig"]["service"],
        "path": "/guarded-rollout-records",
    }
    tls = _named(docs, "Secret", f"{RELEASE}-webhook-tls")
    assert tls["type"] == "kubernetes.io/tls"
    assert hook["clientConfig"]["caBundle"] == tls["data"]["ca.crt"]
    ca, cert = tmp_path / "ca.crt", tmp_path / "tls.crt"
    ca.write_bytes(base64.b64decode(tls["data"]["ca.crt"]))
    cert.write_bytes(base64.b64decode(tls["data"]["tls.crt"]))
    verified = subprocess.run(
        ["openssl", "verify", "-CAfile", str(ca), str(cert)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    sans = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-ext", "subjectAltName"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert f"DNS:{RELEASE}-webhook.{RELEASE_NAMESPACE}.svc" in sans
    env = _env(_container(docs))
    assert env["ROLLWISE_WEBHOOK_PORT"] == "9443"
    assert env["ROLLWISE_WEBHOOK_MANAGED"] == "false", "the chart owns the configuration"
    assert env["ROLLWISE_WEBHOOK_CERT_FILE"] == "/etc/rollwise/webhook-tls/tls.crt"
    assert env["ROLLWISE_WEBHOOK_KEY_FILE"] == "/etc/rollwise/webhook-tls/tls.key"
    assert _mounts(docs)["webhook-tls"] == "/etc/rollwise/webhook-tls"
    assert _volumes(docs)["webhook-tls"]["secret"]["secretName"] == f"{RELEASE}-webhook-tls"


def test_chart_webhook_in_namespace_scope_selects_the_watched_namespaces(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    hooks = _one(rendered["namespace-scope"], "MutatingWebhookConfiguration")["webhooks"]
    assert len(hooks) == 3
    for hook in hooks:
        assert hook["namespaceSelector"] == {
            "matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": list(WATCHED)}
            ]
        }


def test_an_offline_render_generates_no_key(
    rendered: dict[str, list[dict[str, Any]]], helm: Helm
) -> None:
    """helm template cannot look the stored key up: a key it made would be a new one on every
    render, voiding every signed record. The generation itself (online, once, then kept) is
    tested against the lab's API server: tests/lab/test_chart_lab.py."""
    docs = rendered["default"]
    names = {s["metadata"]["name"] for s in _of_kind(docs, "Secret")}
    assert names == {f"{RELEASE}-webhook-tls"}
    assert [
        s["data"]["key"] for s in _of_kind(helm.template(), "Secret") if "key" in s["data"]
    ] == []
    assert _env(_container(docs))["ROLLWISE_RECORD_KEY_FILE"] == "/etc/rollwise/record-key/key"
    assert _mounts(docs)["record-key"] == "/etc/rollwise/record-key"
    assert _volumes(docs)["record-key"]["secret"]["secretName"] == f"{RELEASE}-record-key"


def test_operator_managed_webhook_configuration(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["operator-webhook"]
    assert not _of_kind(docs, "MutatingWebhookConfiguration")
    env = _env(_container(docs))
    assert env["ROLLWISE_WEBHOOK_MANAGED"] == "true"
    assert env["ROLLWISE_WEBHOOK_HOST"] == f"{RELEASE}-webhook.{RELEASE_NAMESPACE}.svc"
    assert env["ROLLWISE_WEBHOOK_CA_FILE"] == "/etc/rollwise/webhook-tls/ca.crt"


def test_governance_values_become_settings(helm: Helm) -> None:
    docs = helm.template(
        "governance.roleGroups.security={sec-team,sre}",
        "governance.roleGroups.product={pm}",
        "governance.policyConfigMap=rollwise-system/policies",
        "governance.freezeConfigMap=rollwise-system/freeze",
        "governance.mlflow.url=http://mlflow.ml:5000",
        "governance.mlflow.tokenSecret.name=mlflow-token",
    )
    env = _env(_container(docs))
    assert env["ROLLWISE_ROLE_GROUPS"] == "product=pm;security=sec-team,sre"
    assert env["ROLLWISE_POLICY_CONFIGMAP"] == "rollwise-system/policies"
    assert env["ROLLWISE_FREEZE_CONFIGMAP"] == "rollwise-system/freeze"
    assert env["ROLLWISE_MLFLOW_URL"] == "http://mlflow.ml:5000"
    assert env["ROLLWISE_MLFLOW_TOKEN_FILE"] == "/etc/rollwise/mlflow/token"
    assert _volumes(docs)["mlflow-token"]["secret"] == {
        "secretName": "mlflow-token",
        "items": [{"key": "token", "path": "token"}],
    }


def test_earlier_record_keys_are_mounted_for_the_rotations_overlap(helm: Helm) -> None:
    from rollwise.runtime.settings import from_sources  # noqa: PLC0415

    docs = helm.template("governance.recordKey.previousSecrets={key-2025,key-2024}")
    env = _env(_container(docs))
    assert env["ROLLWISE_RECORD_PREVIOUS_KEY_FILES"] == (
        "/etc/rollwise/record-key-previous-0/key,/etc/rollwise/record-key-previous-1/key"
    )
    volumes, mounts = _volumes(docs), _mounts(docs)
    for index, name in enumerate(("key-2025", "key-2024")):
        volume = f"record-key-previous-{index}"
        assert volumes[volume]["secret"] == {
            "secretName": name,
            "items": [{"key": "key", "path": "key"}],
        }
        assert mounts[volume] == f"/etc/rollwise/record-key-previous-{index}"
    settings = from_sources([], {k: v for k, v in env.items() if isinstance(v, str)}, isatty=False)
    assert settings.record_previous_key_files == (
        "/etc/rollwise/record-key-previous-0/key",
        "/etc/rollwise/record-key-previous-1/key",
    )


def test_existing_secrets_replace_the_generated_ones(helm: Helm) -> None:
    docs = helm.template(
        "governance.recordKey.existingSecret=vault-record-key",
        "webhook.certificate.existingSecret=cert-manager-tls",
        "webhook.certificate.caBundle=Q0E=",
        "webhook.clientAuth.caConfigMap=apiserver-client-ca",
    )
    assert not _of_kind(docs, "Secret")
    volumes = _volumes(docs)
    assert volumes["record-key"]["secret"]["secretName"] == "vault-record-key"
    assert volumes["webhook-tls"]["secret"]["secretName"] == "cert-manager-tls"
    hooks = _one(docs, "MutatingWebhookConfiguration")["webhooks"]
    assert [h["clientConfig"]["caBundle"] for h in hooks] == ["Q0E=", "Q0E=", "Q0E="]


def test_webhook_off_keeps_the_record_key_for_the_reconcile(helm: Helm) -> None:
    docs = helm.template("webhook.enabled=false")
    assert not _of_kind(docs, "MutatingWebhookConfiguration")
    assert [s["metadata"]["name"] for s in _of_kind(docs, "Secret")] == []
    assert [s["metadata"]["name"] for s in _of_kind(docs, "Service")] == [f"{RELEASE}-metrics"]
    env = _env(_container(docs))
    assert "ROLLWISE_WEBHOOK_PORT" not in env
    assert env["ROLLWISE_RECORD_KEY_FILE"] == "/etc/rollwise/record-key/key"


#: An operator run outside the cluster (a developer's machine, the lab): no Deployment, the
#: webhook called at a URL and trusted through the CA that signed that server's certificate.
OUT_OF_CLUSTER = (
    "deployment.enabled=false",
    "webhook.url=https://192.0.2.10:9443",
    "webhook.certificate.caBundle=Q0E=",
)


def test_out_of_cluster_operator_gets_everything_but_the_deployment(helm: Helm) -> None:
    docs = helm.template(*OUT_OF_CLUSTER)
    # Rendered offline, no record key is generated (tests/lab/test_chart_lab.py installs it),
    # and with no pods there is nothing for a NetworkPolicy to select.
    assert sorted(doc["kind"] for doc in docs) == [
        "ClusterRole",
        "ClusterRole",
        "ClusterRoleBinding",
        "MutatingWebhookConfiguration",
        "ServiceAccount",
        "ValidatingWebhookConfiguration",
    ]
    hooks = _one(docs, "MutatingWebhookConfiguration")["webhooks"]
    assert [h["clientConfig"] for h in hooks] == [
        {"url": "https://192.0.2.10:9443/records", "caBundle": "Q0E="},
        {"url": "https://192.0.2.10:9443/rollout-records", "caBundle": "Q0E="},
        {"url": "https://192.0.2.10:9443/guarded-rollout-records", "caBundle": "Q0E="},
    ]
    [serving] = _one(docs, "ValidatingWebhookConfiguration")["webhooks"]
    assert serving["clientConfig"] == {
        "url": "https://192.0.2.10:9443/serving-gate",
        "caBundle": "Q0E=",
    }
    assert [h["failurePolicy"] for h in hooks] == ["Fail", "Ignore", "Fail"]
    assert _rule_table(_named(docs, "ClusterRole", RELEASE)["rules"]) == set(
        CLUSTER_ONLY | CLUSTER_WATCH | NAMESPACED
    )


def test_out_of_cluster_in_namespace_scope_with_peering(helm: Helm) -> None:
    docs = helm.template(
        *OUT_OF_CLUSTER, "scope=namespace", "watchNamespaces={team-a}", "replicas=2"
    )
    assert not _of_kind(docs, "PodDisruptionBudget"), "no pods to keep"
    assert len(_of_kind(docs, "CustomResourceDefinition")) == 2, "the peering CRDs"
    [role] = [r for r in _of_kind(docs, "Role") if r["metadata"]["namespace"] == "team-a"]
    assert _rule_table(role["rules"]) == set(NAMESPACED | NAMESPACE_PEERING)
    for hook in _one(docs, "MutatingWebhookConfiguration")["webhooks"]:
        assert hook["namespaceSelector"]["matchExpressions"][0]["values"] == ["team-a"]


def test_in_cluster_operator_behind_a_webhook_url(helm: Helm) -> None:
    docs = helm.template(
        "webhook.url=https://webhook.example:8443/rollwise",
        "webhook.certificate.caBundle=Q0E=",
        "webhook.certificate.existingSecret=cert-manager-tls",
    )
    assert [s["metadata"]["name"] for s in _of_kind(docs, "Service")] == [f"{RELEASE}-metrics"]
    hooks = _one(docs, "MutatingWebhookConfiguration")["webhooks"]
    assert hooks[0]["clientConfig"]["url"] == "https://webhook.example:8443/rollwise/records"
    assert _volumes(docs)["webhook-tls"]["secret"]["secretName"] == "cert-manager-tls"


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        pytest.param(
            ("deployment.enabled=false", "webhook.url=https://192.0.2.10:9443"),
            "webhook.url needs webhook.certificate.caBundle",
            id="url-without-ca",
        ),
        pytest.param(
            ("webhook.url=https://192.0.2.10:9443", "webhook.certificate.caBundle=Q0E="),
            "webhook.url with deployment.enabled needs webhook.certificate.existingSecret",
            id="url-in-cluster-without-certificate",
        ),
        pytest.param(
            (*OUT_OF_CLUSTER, "webhook.configuration=operator"),
            'webhook.url is used with webhook.configuration "chart"',
            id="url-with-operator-configuration",
        ),
        pytest.param(
            ("webhook.url=http://192.0.2.10:9443",),
            "webhook.url: Does not match pattern",
            id="url-not-https",
        ),
        pytest.param(
            ("deployment.enabled=maybe",),
            "deployment.enabled: Invalid type",
            id="deployment-enabled-not-boolean",
        ),
    ],
)
def test_out_of_cluster_values_are_checked(helm: Helm, sets: tuple[str, ...], message: str) -> None:
    args = ["template", RELEASE, str(CHART), "--namespace", RELEASE_NAMESPACE]
    for item in sets:
        args += ["--set", item]
    proc = helm(*args)
    assert proc.returncode != 0, proc.stdout
    assert message in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        pytest.param(
            ("webhook.certificate.existingSecret=tls",),
            "webhook.certificate.existingSecret needs webhook.certificate.caBundle",
            id="existing-cert-without-ca",
        ),
        pytest.param(
            ("scope=namespace", "watchNamespaces={team-a}", "governance.policyConfigMap=x/p"),
            "governance.policyConfigMap must be in one of watchNamespaces",
            id="policy-outside-watched",
        ),
        pytest.param(
            ("webhook.configuration=cluster",),
            "webhook.configuration: webhook.configuration must be one of",
            id="configuration",
        ),
        pytest.param(
            ("governance.policyConfigMap=policies",),
            "governance.policyConfigMap: Does not match pattern",
            id="policy-not-namespaced",
        ),
        pytest.param(
            ("governance.roleGroups.security={a;b}",),
            "Does not match pattern",
            id="bad-group",
        ),
        pytest.param(
            ("governance.releasePolicy.requiredGates={approvals}",),
            "governance.releasePolicy.requiredGates.0: governance.releasePolicy.requiredGates.0 "
            "must be one of",
            id="approvals-cannot-be-a-required-gate",
        ),
        pytest.param(
            ("webhook.clientAuth.mode=optional",),
            "webhook.clientAuth.mode: webhook.clientAuth.mode must be one of",
            id="client-auth-mode",
        ),
        pytest.param(
            ("governance.evidencePolicy.allowedHosts={http://x/}",),
            "governance.evidencePolicy.allowedHosts.0: Does not match pattern",
            id="evidence-host-is-a-url",
        ),
        pytest.param(
            ("governance.mlflow.registries.Main.url=http://m",),
            "Does not match pattern",
            id="registry-name",
        ),
    ],
)
def test_governance_values_are_checked(helm: Helm, sets: tuple[str, ...], message: str) -> None:
    args = ["template", RELEASE, str(CHART), "--namespace", RELEASE_NAMESPACE]
    for item in sets:
        args += ["--set", item]
    proc = helm(*args)
    assert proc.returncode != 0, proc.stdout
    assert message in proc.stderr, proc.stderr


# --- who may reach the webhook, and what the settings decide for every tenant ----------------


def test_the_webhook_requires_the_api_servers_client_certificate_by_default(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    docs = rendered["default"]
    env = _env(_container(docs))
    assert env["ROLLWISE_WEBHOOK_CLIENT_CA_FILE"] == "/etc/rollwise/webhook-client-ca/ca.crt"
    assert "ROLLWISE_WEBHOOK_CLIENT_AUTH" not in env, "required is the operator's default"
    assert _mounts(docs)["webhook-client-ca"] == "/etc/rollwise/webhook-client-ca"
    assert _volumes(docs)["webhook-client-ca"]["secret"] == {
        "secretName": f"{RELEASE}-webhook-client",
        "items": [{"key": "ca.crt", "path": "ca.crt"}],
    }, "the operator gets the CA only, never the API server's client key"
    # Offline, no CA is generated (a new one per render would lock the API server out); the
    # generation itself is tested online: tests/lab/test_chart_lab.py.
    assert f"{RELEASE}-webhook-client" not in {
        s["metadata"]["name"] for s in _of_kind(docs, "Secret")
    }


@pytest.mark.parametrize(
    ("sets", "volume", "env"),
    [
        pytest.param(
            ("webhook.clientAuth.caConfigMap=apiserver-client-ca",),
            {
                "configMap": {
                    "name": "apiserver-client-ca",
                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                }
            },
            {"ROLLWISE_WEBHOOK_CLIENT_CA_FILE": "/etc/rollwise/webhook-client-ca/ca.crt"},
            id="own-ca",
        ),
        pytest.param(
            ("webhook.clientAuth.mode=none",),
            None,
            {"ROLLWISE_WEBHOOK_CLIENT_AUTH": "none"},
            id="none",
        ),
        pytest.param(
            ("webhook.clientAuth.allowedNames={kube-apiserver-admission}",),
            {
                "secret": {
                    "secretName": f"{RELEASE}-webhook-client",
                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                }
            },
            {"ROLLWISE_WEBHOOK_CLIENT_NAMES": "kube-apiserver-admission"},
            id="names",
        ),
    ],
)
def test_webhook_client_auth_values(
    helm: Helm, sets: tuple[str, ...], volume: dict[str, Any] | None, env: dict[str, str]
) -> None:
    docs = helm.template(*sets)
    rendered_env = _env(_container(docs))
    assert {k: rendered_env.get(k) for k in env} == env
    volumes = _volumes(docs)
    if volume is None:
        assert "webhook-client-ca" not in volumes
        assert "ROLLWISE_WEBHOOK_CLIENT_CA_FILE" not in rendered_env
        assert f"{RELEASE}-webhook-client" not in [
            s["metadata"]["name"] for s in _of_kind(docs, "Secret")
        ]
    else:
        assert {k: v for k, v in volumes["webhook-client-ca"].items() if k != "name"} == volume


def test_network_policy_admits_the_webhook_and_closes_the_rest_by_default(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    docs = rendered["default"]
    policy = _one(docs, "NetworkPolicy")
    deployment = _one(docs, "Deployment")
    assert policy["spec"]["podSelector"] == deployment["spec"]["selector"]
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["ingress"] == [
        {
            "ports": [{"port": 9443, "protocol": "TCP"}],
            "from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}, {"ipBlock": {"cidr": "::/0"}}],
        }
    ], "metrics closed until a scraper is named"


@pytest.mark.parametrize(
    ("sets", "ingress"),
    [
        pytest.param(
            ("networkPolicy.metrics.from[0].namespaceSelector.matchLabels.team=monitoring",),
            [
                {
                    "ports": [{"port": 9443, "protocol": "TCP"}],
                    "from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}, {"ipBlock": {"cidr": "::/0"}}],
                },
                {
                    "ports": [{"port": 9102, "protocol": "TCP"}],
                    "from": [{"namespaceSelector": {"matchLabels": {"team": "monitoring"}}}],
                },
            ],
            id="metrics-scraper",
        ),
        pytest.param(
            ("networkPolicy.webhook.from[0].ipBlock.cidr=10.0.0.10/32",),
            [
                {
                    "ports": [{"port": 9443, "protocol": "TCP"}],
                    "from": [{"ipBlock": {"cidr": "10.0.0.10/32"}}],
                }
            ],
            id="control-plane-only",
        ),
        pytest.param(("webhook.enabled=false",), [], id="nothing-to-admit"),
    ],
)
def test_network_policy_values(
    helm: Helm, sets: tuple[str, ...], ingress: list[dict[str, Any]]
) -> None:
    assert _one(helm.template(*sets), "NetworkPolicy")["spec"]["ingress"] == ingress


def test_network_policy_can_be_left_out(helm: Helm) -> None:
    assert not _of_kind(helm.template("networkPolicy.enabled=false"), "NetworkPolicy")


def test_tenancy_values_become_settings_the_operator_accepts(helm: Helm, tmp_path: Path) -> None:
    from rollwise.runtime.settings import from_sources  # noqa: PLC0415

    values = tmp_path / "tenancy.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "governance": {
                    "mlflow": {
                        "registries": {
                            "main": {
                                "url": "https://mlflow.mlops:5000",
                                "tokenSecret": {"name": "mlflow-main", "key": "token"},
                            },
                            "eu": {"url": "https://mlflow.eu"},
                        }
                    },
                    "releasePolicy": {
                        "requiredGates": ["sbom"],
                        "modelOwners": {"fraud-*": "team-a"},
                        "namespaces": {"sandbox": {"requiredRoles": []}},
                    },
                    "evidencePolicy": {
                        "allowedHosts": ["artifacts.example.com"],
                        "filePathPrefixes": ["/models"],
                    },
                }
            }
        )
    )
    docs = helm.template(extra=("--values", str(values)))
    env = _env(_container(docs))
    assert json.loads(env["ROLLWISE_MLFLOW_REGISTRIES"]) == {
        "eu": {"url": "https://mlflow.eu"},
        "main": {
            "url": "https://mlflow.mlops:5000",
            "tokenFile": "/etc/rollwise/registries/main/token",
        },
    }
    assert _mounts(docs)["registry-main"] == "/etc/rollwise/registries/main"
    assert _volumes(docs)["registry-main"]["secret"] == {
        "secretName": "mlflow-main",
        "items": [{"key": "token", "path": "token"}],
    }
    assert "registry-eu" not in _volumes(docs)
    plain = {k: v for k, v in env.items() if isinstance(v, str)}
    settings = from_sources([], plain, isatty=False)
    assert set(settings.registries) == {"main", "eu"}
    policy = settings.cluster_policy
    assert policy.required_roles == ("security", "product")
    assert policy.required_gates == ("sbom",)
    assert policy.owner_of("fraud-us") == "team-a"
    assert policy.rules_for("sandbox", "m").required_roles == ()
    assert settings.evidence_policy.host_allowed("artifacts.example.com", 443)
    assert settings.evidence_policy.file_prefixes == ("/models",)


def test_the_chart_defaults_are_the_strict_settings(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    from rollwise.runtime.settings import from_sources  # noqa: PLC0415

    env = _env(_container(rendered["default"]))
    settings = from_sources([], {k: v for k, v in env.items() if isinstance(v, str)}, isatty=False)
    assert settings.webhook_client_auth
    assert settings.cluster_policy.required_roles == ("security", "product")
    assert settings.cluster_policy.model_owners == ()
    assert settings.registries == {}
    assert settings.evidence_policy.allowed_schemes == ("https",)
    assert settings.evidence_policy.allowed_hosts == ()
    assert settings.evidence_policy.file_prefixes == ()


# --- CRDs --------------------------------------------------------------------------------------


def test_chart_crds_are_verified_copies_of_crds() -> None:
    proc = subprocess.run(
        ["bash", str(ROOT / "hack" / "verify-chart-crds.sh")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    names = sorted(p.name for p in (CHART / "crds").glob("*.yaml"))
    assert names == sorted(p.name for p in (ROOT / "crds").glob("*.yaml"))
    assert names


def test_verify_script_fails_with_a_diff_on_drift(tmp_path: Path) -> None:
    source = tmp_path / "crds"
    copy = tmp_path / "chart-crds"
    shutil.copytree(ROOT / "crds", source)
    shutil.copytree(ROOT / "crds", copy)
    edited = sorted(copy.glob("*.yaml"))[0]
    edited.write_text(edited.read_text() + "# drift\n")
    (copy / "stale.yaml").write_text("kind: Stale\n")
    proc = subprocess.run(
        ["bash", str(ROOT / "hack" / "verify-chart-crds.sh"), str(source), str(copy)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 1
    assert "+# drift" in proc.stdout
    assert "extra file in the chart: charts/rollwise/crds/stale.yaml" in proc.stdout
    assert "hack/sync-chart-crds.sh" in proc.stderr


def test_helm_installs_the_crds_of_crds_dir(helm: Helm) -> None:
    with_crds = helm.template(extra=("--include-crds",))
    rendered = {
        doc["metadata"]["name"]: doc
        for doc in with_crds
        if doc["kind"] == "CustomResourceDefinition"
    }
    expected = {
        doc["metadata"]["name"]: doc
        for path in sorted((ROOT / "crds").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    }
    assert rendered == expected


# --- the image ---------------------------------------------------------------------------------


def _final_stage(dockerfile: str) -> list[str]:
    lines = [line.strip() for line in dockerfile.splitlines()]
    starts = [i for i, line in enumerate(lines) if line.startswith("FROM ")]
    assert len(starts) >= 2, "the Dockerfile is multi-stage"
    return lines[starts[-1] :]


def test_image_agrees_with_the_chart() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    pinned = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile, re.MULTILINE)
    assert pinned
    assert re.fullmatch(r"python:3\.11[.0-9]*-slim-bookworm@sha256:[0-9a-f]{64}", pinned[1])
    final = _final_stage(dockerfile)
    assert final[0] == "FROM ${PYTHON_IMAGE}"
    assert "USER 65532:65532" in final
    assert 'ENTRYPOINT ["rollwise-operator"]' in final
    assert "EXPOSE 8080 9102" in final
    assert any(line.startswith("COPY --from=build ") for line in final)
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["securityContext"]["runAsUser"] == 65532
    assert (values["health"]["port"], values["metrics"]["port"]) == (8080, 9102)
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[ignored.index("*") + 1 :][:3] == ["!pyproject.toml", "!README.md", "!operator/"]


def test_prometheus_and_tenancy_values_reach_the_operator(helm: Helm) -> None:
    defaults = _env(_container(helm.template()))
    assert "ROLLWISE_PROMETHEUS_URL" not in defaults
    assert "ROLLWISE_PROMETHEUS_ALLOWED_URLS" not in defaults
    assert defaults["ROLLWISE_MAX_QUERY_SECONDS"] == "30"
    assert defaults["ROLLWISE_NAMESPACE_PASSES"] == "3"
    assert defaults["ROLLWISE_QUERY_THREADS"] == "8"
    assert defaults["ROLLWISE_NAMESPACE_QUERIES"] == "2"
    env = _env(
        _container(
            helm.template(
                "prometheus.url=http://prometheus-operated.monitoring:9090",
                "prometheus.allowedURLs={http://a:9090,http://b:9090}",
                "tenancy.namespacePasses=5",
            )
        )
    )
    assert env["ROLLWISE_PROMETHEUS_URL"] == "http://prometheus-operated.monitoring:9090"
    assert env["ROLLWISE_PROMETHEUS_ALLOWED_URLS"] == "http://a:9090,http://b:9090"
    assert env["ROLLWISE_NAMESPACE_PASSES"] == "5"


def test_web_providers_reach_the_operator_with_their_headers_mounted(helm: Helm) -> None:
    docs = helm.template(
        "webProviders[0].name=slo",
        "webProviders[0].url=https://slo.example/api",
        "webProviders[0].headersSecret=slo-token",
        "webProviders[1].name=public",
        "webProviders[1].url=https://status.example",
    )
    container = _container(docs)
    providers = json.loads(_env(container)["ROLLWISE_WEB_PROVIDERS"])
    assert providers == [
        {"name": "slo", "url": "https://slo.example/api", "headersDir": "/etc/rollwise/web/slo"},
        {"name": "public", "url": "https://status.example"},
    ]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["web-slo"]["mountPath"] == "/etc/rollwise/web/slo"
    assert mounts["web-slo"]["readOnly"] is True
    volumes = {
        v["name"]: v for v in _one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]
    }
    assert volumes["web-slo"]["secret"]["secretName"] == "slo-token"
    assert "web-public" not in volumes
    assert "ROLLWISE_WEB_PROVIDERS" not in _env(_container(helm.template()))


def _locked(path: Path) -> dict[str, list[str]]:
    """Package name -> its sha256 hashes, from a pip-compile --generate-hashes file."""
    found: dict[str, list[str]] = {}
    current = ""
    for line in path.read_text().splitlines():
        entry = re.match(r"^([A-Za-z0-9._-]+)==\S+", line)
        if entry:
            current = entry[1].lower().replace("_", "-")
            found[current] = []
        elif hashed := re.match(r"^\s+--hash=sha256:([0-9a-f]{64})", line):
            found[current].append(hashed[1])
    return found


def test_the_image_installs_locked_dependencies_by_hash() -> None:
    import tomllib  # noqa: PLC0415

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    runtime = _locked(ROOT / "requirements.lock")
    build = _locked(ROOT / "requirements-build.lock")
    for requirement in project["project"]["dependencies"]:
        name = re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower()
        assert name in runtime, f"{name} is not locked"
    for requirement in project["build-system"]["requires"]:
        name = re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower()
        assert name in build, f"{name} (build) is not locked"
    assert all(runtime.values()), "every locked file has its hash"
    assert all(build.values()), "every locked build file has its hash"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --require-hashes --no-deps -r requirements.lock" in dockerfile
    assert "pip install --require-hashes --no-deps -r requirements-build.lock" in dockerfile
    assert "--no-build-isolation" in dockerfile, "the build backend is the locked one"
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert {"!requirements.lock", "!requirements-build.lock"} <= set(ignored)


@pytest.mark.parametrize("policy", ["Fail", "Ignore"])
def test_serving_gate_configuration(helm: Helm, policy: str) -> None:
    docs = helm.template(
        f"webhook.servingGate.failurePolicy={policy}", *SCENARIOS["namespace-scope"].sets
    )
    [hook] = _one(docs, "ValidatingWebhookConfiguration")["webhooks"]
    assert hook["name"] == "serving-gate.rollwise.dev"
    assert hook["failurePolicy"] == policy
    assert hook["clientConfig"]["service"]["path"] == "/serving-gate"
    assert [(r["apiGroups"], r["resources"]) for r in hook["rules"]] == [
        (["apps"], ["deployments"]),
        (["serving.kserve.io"], ["inferenceservices"]),
    ]
    assert hook["objectSelector"] == {
        "matchExpressions": [{"key": "rollwise.dev/model-version", "operator": "Exists"}]
    }
    assert hook["namespaceSelector"]["matchExpressions"][0]["values"] == list(WATCHED)
    off = helm.template("webhook.servingGate.enabled=false")
    assert not _of_kind(off, "ValidatingWebhookConfiguration")
    bad = helm(
        "template", "rollwise", str(CHART), "--set", "webhook.servingGate.failurePolicy=Maybe"
    )
    assert bad.returncode != 0
    assert "failurePolicy" in bad.stderr
