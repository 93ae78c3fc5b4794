"""The operator's settings: command-line flags, environment and the optional settings ConfigMap.

Sources, highest precedence first: flags (``--namespace``, ``--liveness``, ``--verbose``), the
environment (what the Helm chart sets), the settings ConfigMap named by
``ROLLWISE_SETTINGS_CONFIGMAP`` (read once at start-up, see :func:`apply_configmap`), built-in
defaults. Every value is validated here, so a typo fails the start with a message naming the
variable instead of surfacing later as a strange reconcile error.

Environment:

* ``ROLLWISE_LOG_FORMAT``: ``json`` or ``console``; unset: JSON unless stdout is a terminal.
* ``ROLLWISE_PEERING``: kopf peering name; unset means standalone (one replica).
* ``ROLLWISE_PEERING_PRIORITY``: this replica's kopf peering priority. Replicas of equal
  priority all pause (kopf cannot tell which should act), so replicas that share a peering
  need distinct priorities; the highest live one acts, the others stand by. Unset, it is
  derived from the process's start time (:func:`seniority_priority`): the replicas of one
  Deployment, which cannot be given distinct values, get distinct priorities, and the longest
  running one keeps acting while newer ones (a rolling update, a restart) join as standbys.
* ``ROLLWISE_PEERING_LIFETIME``: seconds a replica's peering record stays valid without a
  keep-alive (default 60): how long a standby waits before it takes over from a dead peer.
* ``ROLLWISE_SETTINGS_CONFIGMAP``: ``NAMESPACE/NAME`` of the settings ConfigMap.
* ``ROLLWISE_WORKERS``: threads that make the blocking API and Prometheus calls of the
  reconcile passes, and connections kept to the API server (default 6). Twice as many passes
  run at once; the others wait their turn before they read anything, so that a pass acts on
  what it has just seen rather than on what it saw before waiting in a queue.
* ``ROLLWISE_METRICS_PORT``: port of the Prometheus endpoint (default 9102, 0 turns it off).
* ``ROLLWISE_PROMETHEUS_URL``: Prometheus queried for metrics whose provider names no address.
* ``ROLLWISE_PROMETHEUS_ALLOWED_URLS``: further Prometheus URLs a spec may name in
  ``provider.prometheus.address`` (comma-separated). The operator queries no other address:
  a spec naming one is invalid. Spec authors are tenants; the hosts the operator calls are
  the cluster admin's choice.
* ``ROLLWISE_MAX_QUERY_SECONDS``: longest a metric query may take, whatever the spec's
  ``timeout`` says (default 30).
* ``ROLLWISE_NAMESPACE_PASSES``: most reconcile passes of one namespace in flight at once
  (default 3; 0: no bound besides the total), so that one tenant's slow endpoints cannot take
  every pass slot.
* ``ROLLWISE_WEB_PROVIDERS``: the web metric providers specs may name, a JSON list of
  ``{"name": ..., "url": ..., "headersDir": ...}``: a spec's ``provider.web.name`` picks one,
  its ``path`` is appended to ``url``, and every file in ``headersDir`` (a mounted Secret) is
  sent as a header named after the file. A spec never chooses a host or a credential.
* ``ROLLWISE_QUERY_THREADS``: threads that run metric queries, apart from the passes' other
  calls (default 8); ``ROLLWISE_NAMESPACE_QUERIES``: most queries of one namespace in flight
  at once (default 2; 0: no bound besides the threads).
* ``ROLLWISE_NOTIFICATIONS``: ``true`` (default) or ``false``: NotificationPolicies are
  followed and their sinks notified (docs/notifications.md).
* ``ROLLWISE_NOTIFY_ALLOWED_HOSTS``: hosts notifications may go to (comma-separated;
  ``*.example.com`` for subdomains, ``host:port`` to pin a port); unset: any host outside the
  denied networks.
* ``ROLLWISE_NOTIFY_DENIED_NETWORKS``: CIDRs never notified (default: loopback, link-local
  with the cloud metadata addresses, the unspecified addresses; a value replaces the list);
  ``ROLLWISE_NOTIFY_ALLOWED_NETWORKS``: CIDRs allowed again despite it (e.g. a local relay).
* ``ROLLWISE_NOTIFY_SCHEMES``: URL schemes of sinks (default ``https,http``).
* ``ROLLWISE_NOTIFY_QUEUE`` (default 1000), ``ROLLWISE_NOTIFY_WORKERS`` (default 4) and
  ``ROLLWISE_NOTIFY_NAMESPACE_DELIVERIES`` (default 2; 0: no bound besides the workers): the
  delivery queue's room, its workers, and the deliveries of one namespace in flight at once.
* ``POD_NAME`` / ``POD_NAMESPACE``: the operator's own pod (event reporting instance, peering).
* ``POD_IP``: the pod's address, the default webhook host.

ModelRelease governance (see docs/governance.md):

* ``ROLLWISE_RECORD_KEY_FILE``: file holding the key that signs identity records (its content,
  stripped of surrounding white space). Required when the webhook is on; without it the
  reconcile trusts no approval or waiver record.
* ``ROLLWISE_RECORD_PREVIOUS_KEY_FILES``: comma-separated files of earlier record keys, still
  accepted when verifying (a rotation's overlap); records are signed with the current key only.
* ``ROLLWISE_ROLE_GROUPS``: which groups may approve as which role, ``ROLE=GROUP,GROUP;...``,
  e.g. ``security=sec-team,sre;product=pm;executive=cto``. A role not listed has no approver.
* ``ROLLWISE_WEBHOOK_PORT``: port of the mutating admission webhook that records identities
  (unset or 0: no webhook).
* ``ROLLWISE_WEBHOOK_LISTEN``: address the webhook binds (default ``0.0.0.0``).
* ``ROLLWISE_WEBHOOK_CLIENT_CA_FILE``: CA bundle (PEM) the webhook verifies its callers'
  client certificates by: the API server presents one through its admission configuration
  (docs/security.md). Required when the webhook is on, unless
  ``ROLLWISE_WEBHOOK_CLIENT_AUTH=none``.
* ``ROLLWISE_WEBHOOK_CLIENT_AUTH``: ``required`` (default): a caller without a certificate
  signed by that CA gets no answer; ``none``: any caller is answered (the webhook then signs
  whatever identity a request claims: only where nothing but the API server can reach it).
* ``ROLLWISE_WEBHOOK_CLIENT_NAMES``: comma-separated names (certificate common name or DNS
  subject alternative name) a caller's certificate must carry; unset: any certificate the CA
  signed.
* ``ROLLWISE_WEBHOOK_HOST``: host name or IP the API server calls (default ``POD_IP``, else
  ``127.0.0.1``); used only when the operator manages the webhook configuration.
* ``ROLLWISE_WEBHOOK_CERT_FILE`` / ``ROLLWISE_WEBHOOK_KEY_FILE``: the webhook's serving
  certificate and key (PEM), both required when the webhook is on.
* ``ROLLWISE_WEBHOOK_CA_FILE``: CA bundle the API server trusts the certificate by (default:
  the certificate itself).
* ``ROLLWISE_WEBHOOK_MANAGED``: ``true`` (default): the operator (kopf) creates and keeps its
  ``MutatingWebhookConfiguration`` named ``rollwise.dev``; ``false``: someone else (the Helm
  chart) installs it and the operator only serves.
* ``ROLLWISE_LEDGER_CONFIGMAP``: ``NAMESPACE/NAME`` of the cluster's revocation ledger, which
  only the operator writes (default ``POD_NAMESPACE/rollwise-revocations``; without either,
  each release's namespace keeps its own).
* ``ROLLWISE_POLICY_CONFIGMAP``: ``NAMESPACE/NAME`` of the ConfigMap with the policy digests.
* ``ROLLWISE_FREEZE_CONFIGMAP``: ``NAMESPACE/NAME`` of the ConfigMap with the freeze windows.
* ``ROLLWISE_MLFLOW_REGISTRIES``: the MLflow registries specs may name (YAML or JSON):
  ``{NAME: {url: URL, tokenFile: PATH}}``. Their addresses and credentials stay here: a spec
  names a registry, the operator sends the token to that registry's URL only.
* ``ROLLWISE_MLFLOW_URL`` / ``ROLLWISE_MLFLOW_TOKEN_FILE``: shorthand for the registry named
  ``default`` (also where ``models:/`` artifacts of releases without an MLflow store are read).
* ``ROLLWISE_RELEASE_POLICY``: the cluster policy of ModelReleases (YAML or JSON;
  :func:`rollwise.core.modelrelease.policy.parse_cluster_policy`): ``requiredRoles``
  (default security and product), ``requiredGates``, ``namespaces`` and ``modelOwners``.
* ``ROLLWISE_EVIDENCE_POLICY``: where gate evidence may be read from (YAML or JSON):
  ``allowedSchemes`` (default ``[https]``), ``allowedHosts`` (default none) and
  ``filePathPrefixes`` (default none: ``file://`` refused); see
  :mod:`rollwise.adapters.gates.access`.
* ``KUBECONFIG``: used by the Kubernetes client outside a cluster (in-cluster config first).

The ConfigMap may carry ``prometheusURL``, ``prometheusAllowedURLs`` (comma- or
newline-separated), ``maxQuerySeconds``, ``webProviders`` (the JSON list above),
``resyncSeconds``, ``mlflowRegistries``, ``releasePolicy`` and ``evidencePolicy`` (the last
three as YAML); environment variables win.
No I/O happens here except :func:`apply_configmap`, which the caller hands the ConfigMap's
``data`` it read.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from rollwise import GROUP
from rollwise.adapters.gates.access import EvidenceAccess
from rollwise.adapters.notify import (
    DEFAULT_DENIED_NETWORKS,
    DEFAULT_SCHEMES,
    HostPolicy,
    parse_networks,
)
from rollwise.core.modelrelease.policy import (
    ClusterPolicy,
    parse_cluster_policy,
)
from rollwise.runtime.setting_groups import (
    TENANCY,
    budgets_env,
    governance_env,
    notifications_env,
)
from rollwise.runtime.setting_values import (
    RegistrySetting,
    SettingsError,
    WebProviderSetting,
    check_name,
    check_url,
    integer,
    namespaced_name,
    parse_web_providers,
    port_number,
    positive_seconds,
    urls,
)

DEFAULT_METRICS_PORT = 9102

#: kopf's default lifetime of a peering record, in seconds.
DEFAULT_PEERING_LIFETIME = 60

#: Longest wait between two looks at a Rollout with nothing pending (a safety net for missed
#: watch events; a healthy rollout costs one cheap pass per period).
DEFAULT_RESYNC_SECONDS = 300.0

#: Worker threads for the passes' blocking calls (asyncio's default on 2 CPUs; set explicitly
#: because a pod sees the node's CPU count, not its own share).
DEFAULT_WORKERS = 6

#: A tenant's budget: passes of one namespace in flight, query threads, queries of one
#: namespace in flight, and the longest query.
DEFAULT_NAMESPACE_PASSES = 3
DEFAULT_QUERY_THREADS = 8
DEFAULT_NAMESPACE_QUERIES = 2
DEFAULT_MAX_QUERY_SECONDS = 30.0


#: The name of the MutatingWebhookConfiguration the operator manages (kopf's ``managed``).
WEBHOOK_CONFIGURATION = GROUP
#: The webhook binds every interface by default: the API server calls it from outside the pod.
DEFAULT_WEBHOOK_LISTEN = "0.0.0.0"
DEFAULT_WEBHOOK_HOST = "127.0.0.1"


#: The registry ``ROLLWISE_MLFLOW_URL`` defines.
DEFAULT_REGISTRY = "default"


class LogFormat(StrEnum):
    JSON = "json"
    CONSOLE = "console"


@dataclass(frozen=True)
class Settings:
    """Everything the operator process is configured with."""

    namespaces: tuple[str, ...] = ()
    liveness: str | None = None
    verbose: bool = False
    log_format: LogFormat = LogFormat.JSON
    peering: str | None = None
    peering_priority: int = 0
    peering_lifetime: int = DEFAULT_PEERING_LIFETIME
    settings_configmap: tuple[str, str] | None = None
    metrics_port: int = DEFAULT_METRICS_PORT
    prometheus_url: str | None = None
    prometheus_allowed_urls: tuple[str, ...] = ()
    web_providers: tuple[WebProviderSetting, ...] = ()
    max_query_seconds: float = DEFAULT_MAX_QUERY_SECONDS
    namespace_passes: int = DEFAULT_NAMESPACE_PASSES
    query_threads: int = DEFAULT_QUERY_THREADS
    namespace_queries: int = DEFAULT_NAMESPACE_QUERIES
    pod_name: str | None = None
    pod_namespace: str | None = None
    resync_seconds: float = DEFAULT_RESYNC_SECONDS
    workers: int = DEFAULT_WORKERS
    record_key_file: str | None = None
    record_previous_key_files: tuple[str, ...] = ()
    role_groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    webhook_port: int = 0
    webhook_listen: str = DEFAULT_WEBHOOK_LISTEN
    webhook_host: str = DEFAULT_WEBHOOK_HOST
    webhook_cert_file: str | None = None
    webhook_key_file: str | None = None
    webhook_ca_file: str | None = None
    webhook_client_ca_file: str | None = None
    webhook_client_auth: bool = True
    webhook_client_names: tuple[str, ...] = ()
    webhook_managed: bool = True
    policy_configmap: tuple[str, str] | None = None
    freeze_configmap: tuple[str, str] | None = None
    ledger_configmap: tuple[str, str] | None = None
    mlflow_url: str | None = None
    mlflow_token_file: str | None = None
    mlflow_registries: Mapping[str, RegistrySetting] = field(default_factory=dict)
    release_policy: ClusterPolicy = field(
        default_factory=lambda: parse_cluster_policy(None, "ROLLWISE_RELEASE_POLICY")
    )
    evidence_policy: EvidenceAccess = field(default_factory=EvidenceAccess)
    notifications: bool = True
    notify_allowed_hosts: tuple[str, ...] = ()
    notify_denied_networks: tuple[str, ...] = DEFAULT_DENIED_NETWORKS
    notify_allowed_networks: tuple[str, ...] = ()
    notify_schemes: tuple[str, ...] = DEFAULT_SCHEMES
    notify_queue: int = 1000
    notify_workers: int = 4
    notify_namespace_deliveries: int = 2

    @property
    def notify_host_policy(self) -> HostPolicy:
        """Where notifications may go (``adapters.notify.HostPolicy``)."""
        return HostPolicy(
            schemes=self.notify_schemes,
            hosts=self.notify_allowed_hosts,
            denied=parse_networks(self.notify_denied_networks),
            allowed=parse_networks(self.notify_allowed_networks),
        )

    @property
    def registries(self) -> dict[str, RegistrySetting]:
        """Every MLflow registry: ``ROLLWISE_MLFLOW_URL`` as ``default``, then the named ones."""
        found: dict[str, RegistrySetting] = {}
        if self.mlflow_url is not None:
            found[DEFAULT_REGISTRY] = RegistrySetting(self.mlflow_url, self.mlflow_token_file)
        found.update(self.mlflow_registries)
        return found

    @property
    def cluster_policy(self) -> ClusterPolicy:
        """The release policy, knowing the registries' names."""
        return replace(self.release_policy, registries=frozenset(self.registries))

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces

    @property
    def webhook_enabled(self) -> bool:
        return self.webhook_port > 0

    @property
    def web_provider_names(self) -> frozenset[str]:
        return frozenset(p.name for p in self.web_providers)

    @property
    def allowed_prometheus(self) -> frozenset[str]:
        """The Prometheus URLs a spec may name: the default and the allowed ones."""
        urls = [*self.prometheus_allowed_urls]
        if self.prometheus_url:
            urls.append(self.prometheus_url)
        return frozenset(u.rstrip("/") for u in urls)


def _one_default(settings: Settings) -> Settings:
    """``settings``, unless the registry ``default`` is defined twice."""
    if settings.mlflow_url is not None and DEFAULT_REGISTRY in settings.mlflow_registries:
        raise SettingsError(
            f"mlflowRegistries: {DEFAULT_REGISTRY!r} is also defined by ROLLWISE_MLFLOW_URL; "
            "keep one"
        )
    return settings


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(
        prog="rollwise-operator",
        description="The Rollwise operator: progressive delivery of Rollouts.",
    )
    parse.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=[],
        metavar="NS",
        help="watch this namespace (repeatable); none: the whole cluster",
    )
    parse.add_argument(
        "--liveness",
        metavar="URL",
        help="serve kopf's liveness probe, e.g. http://0.0.0.0:8080/healthz",
    )
    parse.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    return parse


def seniority_priority(started_at: float) -> int:
    """A peering priority that is higher the earlier the process started (in milliseconds)."""
    return -int(started_at * 1000)


def from_sources(
    argv: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    *,
    isatty: bool | None = None,
    started_at: float | None = None,
) -> Settings:
    """Settings from flags and environment (the ConfigMap comes later, see
    :func:`apply_configmap`). ``started_at`` (epoch seconds, default now) seeds the peering
    priority when none is given. Raises :class:`SettingsError`; argparse exits on bad flags."""
    environ = os.environ if env is None else env
    args = parser().parse_args(list(argv) if argv is not None else None)
    namespaces = tuple(dict.fromkeys(check_name(ns, "--namespace") for ns in args.namespace))
    liveness = check_url(args.liveness, "--liveness") if args.liveness else None

    raw_format = environ.get("ROLLWISE_LOG_FORMAT", "").strip().lower()
    if raw_format:
        try:
            log_format = LogFormat(raw_format)
        except ValueError:
            raise SettingsError(
                f"ROLLWISE_LOG_FORMAT: {raw_format!r} is not one of json, console"
            ) from None
    else:
        tty = sys.stdout.isatty() if isatty is None else isatty
        log_format = LogFormat.CONSOLE if tty else LogFormat.JSON

    peering = environ.get("ROLLWISE_PEERING", "").strip() or None
    if peering is not None:
        check_name(peering, "ROLLWISE_PEERING")
    raw_priority = environ.get("ROLLWISE_PEERING_PRIORITY", "").strip()
    if raw_priority:
        priority = integer(raw_priority, "ROLLWISE_PEERING_PRIORITY")
    elif peering is not None:
        priority = seniority_priority(time.time() if started_at is None else started_at)
    else:
        priority = 0
    raw_lifetime = environ.get("ROLLWISE_PEERING_LIFETIME", "").strip()
    lifetime = (
        integer(raw_lifetime, "ROLLWISE_PEERING_LIFETIME", minimum=1)
        if raw_lifetime
        else DEFAULT_PEERING_LIFETIME
    )

    configmap: tuple[str, str] | None = None
    raw_cm = environ.get("ROLLWISE_SETTINGS_CONFIGMAP", "").strip()
    if raw_cm:
        configmap = namespaced_name(raw_cm, "ROLLWISE_SETTINGS_CONFIGMAP")

    raw_port = environ.get("ROLLWISE_METRICS_PORT", "").strip()
    metrics_port = (
        port_number(raw_port, "ROLLWISE_METRICS_PORT") if raw_port else DEFAULT_METRICS_PORT
    )
    raw_url = environ.get("ROLLWISE_PROMETHEUS_URL", "").strip()
    prometheus_url = check_url(raw_url, "ROLLWISE_PROMETHEUS_URL") if raw_url else None
    raw_workers = environ.get("ROLLWISE_WORKERS", "").strip()
    workers = (
        integer(raw_workers, "ROLLWISE_WORKERS", minimum=1) if raw_workers else DEFAULT_WORKERS
    )
    budgets = budgets_env(environ)
    notifications = notifications_env(environ)

    governance = governance_env(environ)
    settings = Settings(
        namespaces=namespaces,
        liveness=liveness,
        verbose=bool(args.verbose),
        log_format=log_format,
        peering=peering,
        peering_priority=priority,
        peering_lifetime=lifetime,
        settings_configmap=configmap,
        metrics_port=metrics_port,
        prometheus_url=prometheus_url,
        workers=workers,
        **budgets,  # type: ignore[arg-type]
        pod_name=environ.get("POD_NAME") or None,
        pod_namespace=environ.get("POD_NAMESPACE") or None,
        **governance,  # type: ignore[arg-type]
        **notifications,  # type: ignore[arg-type]
    )
    return _one_default(settings)


def apply_configmap(
    settings: Settings, data: Mapping[str, str], env: Mapping[str, str] | None = None
) -> Settings:
    """``settings`` completed from the settings ConfigMap's ``data`` (environment wins).
    Unknown keys are refused: a misspelt key would otherwise be silently ignored."""
    environ = os.environ if env is None else env
    known = {
        "prometheusURL",
        "prometheusAllowedURLs",
        "maxQuerySeconds",
        "webProviders",
        "resyncSeconds",
        *(key for key, *_ in TENANCY),
    }
    unknown = sorted(set(data) - known)
    if unknown:
        raise SettingsError(
            f"settings ConfigMap: unknown key(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}"
        )
    changes: dict[str, object] = {}
    url = (data.get("prometheusURL") or "").strip()
    if url and not environ.get("ROLLWISE_PROMETHEUS_URL"):
        changes["prometheus_url"] = check_url(url, "settings ConfigMap prometheusURL")
    allowed = (data.get("prometheusAllowedURLs") or "").strip()
    if allowed and not environ.get("ROLLWISE_PROMETHEUS_ALLOWED_URLS"):
        changes["prometheus_allowed_urls"] = urls(
            allowed, "settings ConfigMap prometheusAllowedURLs"
        )
    web = (data.get("webProviders") or "").strip()
    if web and not environ.get("ROLLWISE_WEB_PROVIDERS"):
        changes["web_providers"] = parse_web_providers(web, "settings ConfigMap webProviders")
    longest = (data.get("maxQuerySeconds") or "").strip()
    if longest and not environ.get("ROLLWISE_MAX_QUERY_SECONDS"):
        changes["max_query_seconds"] = positive_seconds(
            longest, "settings ConfigMap maxQuerySeconds"
        )
    resync = (data.get("resyncSeconds") or "").strip()
    if resync:
        changes["resync_seconds"] = positive_seconds(resync, "settings ConfigMap resyncSeconds")
    for key, name, attribute, parse in TENANCY:
        text = (data.get(key) or "").strip()
        if text and not environ.get(name, "").strip():
            changes[attribute] = parse(text, f"settings ConfigMap {key}")
    return _one_default(replace(settings, **changes)) if changes else settings  # type: ignore[arg-type]


__all__ = [
    "DEFAULT_MAX_QUERY_SECONDS",
    "DEFAULT_METRICS_PORT",
    "DEFAULT_NAMESPACE_PASSES",
    "DEFAULT_NAMESPACE_QUERIES",
    "DEFAULT_PEERING_LIFETIME",
    "DEFAULT_QUERY_THREADS",
    "DEFAULT_REGISTRY",
    "DEFAULT_RESYNC_SECONDS",
    "DEFAULT_WORKERS",
    "WEBHOOK_CONFIGURATION",
    "LogFormat",
    "Settings",
    "apply_configmap",
    "from_sources",
    "parser",
    "seniority_priority",
]
