"""The operator under test, installed as a user installs it and run as a process of this machine.

``install_operator`` runs ``helm install`` of ``charts/rollwise`` against a lab cluster: the
ServiceAccount, the RBAC, the record-key Secret and the MutatingWebhookConfiguration are the
chart's own. Pods cannot run containers under kwok, so the chart goes in without its Deployment
(``deployment.enabled=false``) and the operator runs here, as ``rollwise-operator`` with a
kubeconfig holding a token of the chart's ServiceAccount (TokenRequest): every request it makes
is authorized by the chart's RBAC, and a verb the chart forgot fails. The API server calls the
operator's webhook at ``webhook.url`` (``https://127.0.0.1:PORT``) with a serving certificate
the cluster CA signed (the configuration's ``caBundle``).

One release per namespace: with ``scope=namespace`` (the default here) its Role, and its webhook
configuration's ``namespaceSelector``, cover that namespace alone, so releases in several
namespaces of one cluster (one per test) never see each other's objects or webhooks. The
release's cluster-scoped objects (ClusterRole, ClusterRoleBinding, webhook configuration) carry
the release's name: ``OperatorRelease.remove`` deletes them.

The API server presents ``Cluster.webhook_client_cert`` to every webhook it calls; a webhook
that requires it trusts ``Cluster.webhook_client_ca`` (``OperatorRelease.webhook_client_ca``).
"""

from __future__ import annotations

import base64
import os
import socket
import ssl
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hack.cluster import Cluster, ClusterError
from hack.lab.prometheus import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "rollwise"
#: ``rollwise-operator`` of the environment running the lab.
OPERATOR = Path(sys.executable).parent / "rollwise-operator"

#: Labels every object of a chart release carries.
INSTANCE_LABEL = "app.kubernetes.io/instance"


class InstallError(RuntimeError):
    """helm could not install the chart; the message carries its output."""


def helm_env(cluster: Cluster) -> dict[str, str]:
    """helm's environment for ``cluster``: its admin kubeconfig, and helm's caches and
    client-go's discovery cache kept in the cluster's directory (a later cluster on the same
    port may serve other resources)."""
    home = cluster.directory / "helm"
    return {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig),
        "HOME": str(home),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }


def helm(cluster: Cluster, *args: str, timeout: float = 120.0) -> str:
    proc = subprocess.run(
        ["helm", *args],
        env=helm_env(cluster),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise InstallError(f"helm {' '.join(args[:2])} failed:\n{proc.stdout}{proc.stderr}")
    return proc.stdout


#: The ConfigMap (in the release's namespace) holding the CA of kube-apiserver's webhook client
#: certificate (key ``ca.crt``).
WEBHOOK_CLIENT_CA_CONFIGMAP = "kube-apiserver-webhook-client-ca"


def release_name(namespace: str) -> str:
    """The release of ``namespace``: unique in the cluster, since its ClusterRole and webhook
    configuration are named after it (helm allows 53 characters)."""
    return f"rollwise-{namespace}"[:53].rstrip("-")


@dataclass
class OperatorRelease:
    """One installed release and what a process needs to act as its operator."""

    cluster: Cluster
    namespace: str
    name: str
    scope: str
    webhook: bool
    webhook_port: int
    directory: Path
    kubeconfig: Path = field(init=False)
    record_key: Path = field(init=False)
    serving_cert: Path = field(init=False)
    serving_key: Path = field(init=False)

    @property
    def fullname(self) -> str:
        """The chart's ``rollwise.fullname``: the release's name (it contains "rollwise")."""
        return self.name

    @property
    def service_account(self) -> str:
        return self.fullname

    @property
    def user(self) -> str:
        """The operator's user name, as the API server (and its audit log) knows it."""
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"

    @property
    def webhook_configuration(self) -> str:
        return self.fullname

    @property
    def webhook_url(self) -> str:
        return f"https://127.0.0.1:{self.webhook_port}"

    @property
    def webhook_client_ca(self) -> Path:
        """The CA of the client certificate the API server presents to the webhook."""
        return self.cluster.webhook_client_ca

    def webhook_serving(self) -> bool:
        """Whether the webhook answers a TLS handshake with the certificate the API server
        trusts (the operator serves it a moment after it starts)."""
        context = ssl.create_default_context(cafile=str(self.cluster.ca_cert))
        try:
            with (
                socket.create_connection(("127.0.0.1", self.webhook_port), timeout=2) as raw,
                context.wrap_socket(raw, server_hostname="127.0.0.1"),
            ):
                return True
        except (OSError, ssl.SSLError):
            return False

    def write_credentials(self) -> None:
        """The ServiceAccount's kubeconfig (a fresh TokenRequest token), the record key read
        from the chart's Secret, and the webhook's serving certificate."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.kubeconfig = self.cluster.write_service_account_kubeconfig(
            self.namespace, self.service_account, self.directory / "operator.kubeconfig"
        )
        secret = self.cluster.api(
            "GET", f"/api/v1/namespaces/{self.namespace}/secrets/{self.fullname}-record-key"
        )
        self.record_key = self.directory / "record-key"
        self.record_key.write_bytes(base64.b64decode(secret["data"]["key"]))
        self.record_key.chmod(0o600)
        pair = self.cluster.serving_certificate(self.directory / "webhook-tls")
        self.serving_cert, self.serving_key = pair.cert, pair.key

    def environment(
        self, *, prometheus_url: str | None = None, extra: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """What the chart's Deployment would give the operator, for a process of this machine:
        the kubeconfig instead of the in-cluster token, files instead of mounted Secrets, the
        webhook on loopback at the release's URL."""
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "ROLLWISE_LOG_FORMAT": "json",
            "ROLLWISE_METRICS_PORT": "0",
            "ROLLWISE_RECORD_KEY_FILE": str(self.record_key),
            "POD_NAMESPACE": self.namespace,
        }
        if prometheus_url is not None:
            env["ROLLWISE_PROMETHEUS_URL"] = prometheus_url
        if self.webhook:
            env.update(
                {
                    "ROLLWISE_WEBHOOK_PORT": str(self.webhook_port),
                    "ROLLWISE_WEBHOOK_LISTEN": "127.0.0.1",
                    "ROLLWISE_WEBHOOK_CERT_FILE": str(self.serving_cert),
                    "ROLLWISE_WEBHOOK_KEY_FILE": str(self.serving_key),
                    # The chart owns the configuration (with webhook.url).
                    "ROLLWISE_WEBHOOK_MANAGED": "false",
                    # kube-apiserver's client certificate is required, as the chart's
                    # webhook.clientAuth.mode "required" does (the ConfigMap's ca.crt).
                    "ROLLWISE_WEBHOOK_CLIENT_CA_FILE": str(self.webhook_client_ca),
                }
            )
        env.update(extra or {})
        return env

    def watch_arguments(self) -> list[str]:
        """The chart's ``--namespace`` arguments for its scope."""
        return ["--namespace", self.namespace] if self.scope == "namespace" else []

    def start(
        self,
        *args: str,
        log: Path,
        prometheus_url: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """``rollwise-operator ARGS`` as the release's operator, logging to ``log``."""
        with log.open("ab") as out:
            return subprocess.Popen(
                [str(OPERATOR), *args],
                env=self.environment(prometheus_url=prometheus_url, extra=env),
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def remove(self) -> None:
        """Deletes the release's cluster-scoped objects (its namespaced ones go with the
        namespace); the webhook configuration first, so nothing calls a stopped webhook."""
        selector = {"labelSelector": f"{INSTANCE_LABEL}={self.name}"}
        for path in (
            "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        ):
            self.cluster.api("DELETE", path, params=selector, missing_ok=True)


def install_operator(
    cluster: Cluster,
    namespace: str,
    directory: Path,
    *,
    scope: str = "namespace",
    replicas: int = 1,
    webhook: bool = True,
    values: Sequence[str] = (),
    also_watch: Sequence[str] = (),
) -> OperatorRelease:
    """``helm install`` of the chart into ``namespace`` (which must exist), for an operator
    run on this machine; ``values`` are more ``--set`` arguments. With ``scope="cluster"`` the
    release's ClusterRole covers every namespace and its webhook every namespace too; with
    ``scope="namespace"`` its Roles cover ``namespace`` and the namespaces of ``also_watch``
    (which must exist)."""
    name = release_name(namespace)
    port = free_port()
    if webhook:
        # The CA of the client certificate kube-apiserver presents to webhooks, as a ConfigMap
        # the chart names (webhook.clientAuth.caConfigMap) instead of generating a CA of its own.
        cluster.api(
            "POST",
            f"/api/v1/namespaces/{namespace}/configmaps",
            body={
                "metadata": {"name": WEBHOOK_CLIENT_CA_CONFIGMAP},
                "data": {"ca.crt": cluster.webhook_client_ca.read_text()},
            },
            conflict_ok=True,
        )
    ca_bundle = base64.b64encode(cluster.ca_cert.read_bytes()).decode()
    sets = [
        "deployment.enabled=false",
        f"replicas={replicas}",
        # The lab installs kopf's peering CRDs once (two releases cannot both own them).
        "peering.installCRDs=false",
        f"webhook.enabled={'true' if webhook else 'false'}",
        f"webhook.url=https://127.0.0.1:{port}",
        f"webhook.certificate.caBundle={ca_bundle}",
        f"webhook.clientAuth.caConfigMap={WEBHOOK_CLIENT_CA_CONFIGMAP}",
        f"scope={scope}",
        *values,
    ]
    if scope == "namespace":
        sets.append(f"watchNamespaces={{{','.join([namespace, *also_watch])}}}")
    args = ["install", name, str(CHART), "--namespace", namespace, "--skip-crds"]
    for item in sets:
        args += ["--set", item]
    helm(cluster, *args)
    release = OperatorRelease(
        cluster=cluster,
        namespace=namespace,
        name=name,
        scope=scope,
        webhook=webhook,
        webhook_port=port,
        directory=directory,
    )
    release.write_credentials()
    return release


def peering_crds(cluster: Cluster) -> list[dict[str, Any]]:
    """kopf's peering CRDs as the chart renders them (with ``replicas`` > 1)."""
    import yaml  # noqa: PLC0415 - only the lab's start needs it

    out = helm(
        cluster,
        "template",
        "rollwise",
        str(CHART),
        "--set",
        "replicas=2",
        "--show-only",
        "templates/kopf-peering-crds.yaml",
    )
    docs = [d for d in yaml.safe_load_all(out) if d]
    if len(docs) != 2:
        raise ClusterError(f"expected kopf's two peering CRDs from the chart, got {len(docs)}")
    return docs
