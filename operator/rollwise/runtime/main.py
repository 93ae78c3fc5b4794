"""``rollwise-operator``: the operator process's entry point.

``rollwise-operator [--namespace NS]... [--liveness URL] [--verbose]`` reads its settings
(:mod:`rollwise.runtime.settings`), configures structlog, serves the operator's metrics,
logs in to the cluster (in-cluster first, else the kubeconfig), reads the settings ConfigMap
when one is named, creates the kopf peering object when ``ROLLWISE_PEERING`` is set (else runs
standalone), and hands over to ``kopf.run``: cluster-wide without ``--namespace``. kopf stops
cleanly on SIGTERM/SIGINT: running passes finish (daemons get
:data:`rollwise.runtime.rollout.handlers.CANCELLATION_TIMEOUT` seconds), then the process exits 0.
Invalid settings exit with status 2 and one line naming the problem.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import kopf

from rollwise.adapters.errors import AdapterError, Conflict, NotFound
from rollwise.adapters.gate_hooks import GateHooks
from rollwise.adapters.gates import GateEvaluator
from rollwise.adapters.kube import CONFIGMAPS, KubeAPI
from rollwise.adapters.notify import NotificationPolicies, SinkSecrets, SinkSender
from rollwise.adapters.objects import REQUEST_TIMEOUT, KubeCluster, api_client
from rollwise.adapters.registry.mlflow import MLflowRegistry
from rollwise.adapters.releases import ReleaseObjects
from rollwise.adapters.resources import Resource
from rollwise.adapters.watch_cache import WatchCache
from rollwise.core.signing import key_id
from rollwise.runtime import logging as rlog
from rollwise.runtime.admission import (
    AdmissionSetupError,
    read_keyring,
    refusal_events,
    setup_admission,
)
from rollwise.runtime.cluster import ProviderCache, build_ports, build_release_ports
from rollwise.runtime.delivery import DeliveryQueue
from rollwise.runtime.loops import Loops, PassSlots, diffbase_storage, operator_settings
from rollwise.runtime.measuring import QueryBudget
from rollwise.runtime.metrics import OperatorMetrics
from rollwise.runtime.notify import Notifier, register_notifications
from rollwise.runtime.release.handlers import register_releases
from rollwise.runtime.rollout.handlers import register
from rollwise.runtime.setting_values import SettingsError
from rollwise.runtime.settings import Settings, apply_configmap, from_sources

PEERING_GROUP, PEERING_VERSION = "kopf.dev", "v1"
PEERINGS = Resource(PEERING_GROUP, PEERING_VERSION, "kopfpeerings")
CLUSTER_PEERINGS = Resource(PEERING_GROUP, PEERING_VERSION, "clusterkopfpeerings")


def read_settings_configmap(api: Any, settings: Settings) -> Settings:
    """``settings`` completed from the settings ConfigMap, when one is named."""
    if settings.settings_configmap is None:
        return settings
    namespace, name = settings.settings_configmap
    found = KubeAPI(api, timeout=REQUEST_TIMEOUT).get(CONFIGMAPS, namespace, name)
    data = found.get("data")
    return apply_configmap(settings, dict(data) if isinstance(data, dict) else {})


def ensure_peering(api: Any, settings: Settings, log: Any) -> None:
    """Create the peering object(s) kopf coordinates replicas through, when missing."""
    if settings.peering is None:
        return
    kube = KubeAPI(api, timeout=REQUEST_TIMEOUT)
    body = {"metadata": {"name": settings.peering}}
    try:
        if settings.clusterwide:
            kube.create_cluster_scoped(
                CLUSTER_PEERINGS,
                {
                    "apiVersion": f"{PEERING_GROUP}/{PEERING_VERSION}",
                    "kind": "ClusterKopfPeering",
                    **body,
                },
            )
        else:
            for namespace in settings.namespaces:
                kube.create(
                    PEERINGS,
                    namespace,
                    {
                        "apiVersion": f"{PEERING_GROUP}/{PEERING_VERSION}",
                        "kind": "KopfPeering",
                        **body,
                    },
                )
    except Conflict:
        log.debug("peering object exists", peering=settings.peering)
    except NotFound:
        log.warning(
            "kopf peering CRDs are not installed; kopf will run without peering",
            peering=settings.peering,
        )
    except AdapterError as exc:
        log.warning("cannot create the peering object", peering=settings.peering, error=exc.message)


def read_secret_file(path: str | None) -> bytes | None:
    """The content of a mounted secret file, stripped; None when no file is configured."""
    if path is None:
        return None
    with open(path, "rb") as handle:
        return handle.read().strip() or None


def read_headers(directory: str | None) -> dict[str, str]:
    """The headers of a web provider: one per file in ``directory`` (a mounted Secret), named
    after the file, its content stripped of surrounding white space."""
    if directory is None:
        return {}
    headers: dict[str, str] = {}
    for path in sorted(Path(directory).iterdir()):
        # A mounted Secret also holds kubelet's "..data" links; the keys are plain names.
        if path.name.startswith(".") or not path.is_file():
            continue
        headers[path.name] = path.read_text(encoding="utf-8").strip()
    return headers


def read_registries(settings: Settings) -> dict[str, MLflowRegistry]:
    """The MLflow registries of the settings, with their tokens read from their files."""
    found: dict[str, MLflowRegistry] = {}
    for name, registry in settings.registries.items():
        token = read_secret_file(registry.token_file)
        found[name] = MLflowRegistry(
            name=name, url=registry.url, token=token.decode() if token else None
        )
    return found


def size_worker_pool(registry: kopf.OperatorRegistry, workers: int) -> None:
    """Registers a start-up activity that gives the event loop a default executor of
    ``workers`` threads. The passes' blocking calls run there (``asyncio.to_thread``); asyncio
    would size it from the CPU count, which in a pod is the node's, not the pod's share."""

    @kopf.on.startup(id="worker-pool", registry=registry)
    async def worker_pool(**_: Any) -> None:
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(workers, thread_name_prefix="rollwise-worker")
        )


#: Net new tracked objects between two young collections of the cyclic garbage collector
#: (CPython's default is 700); see :func:`tune_gc`.
GC_YOUNG_THRESHOLD = 50_000


def tune_gc() -> None:
    """Fewer and cheaper full collections of the cyclic garbage collector.

    A full collection scans every tracked object with the event loop stopped: with 1,000
    Rollouts, whose bodies the watch cache holds, that took up to 0.7 s, 25 times in one
    scale-benchmark run (11.8 s of the operator's CPU; ``docs/benchmarks.md``). What start-up
    made (modules, classes, the clients, kopf's registry) lives as long as the process: it is
    frozen out of every later scan. The young generation collects after
    ``GC_YOUNG_THRESHOLD`` net new objects instead of 700, so fewer short-lived objects are
    promoted and full collections, which wait for enough promoted objects, come less often.
    Garbage without cycles is freed at once by reference counting either way; only cyclic
    garbage waits for a young collection. Measured in the same run: collector time 22.6 ->
    7.1 s, longest pause 720 -> 420 ms, peak RSS +12 MiB."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def build_notifier(api: Any, settings: Settings, metrics: OperatorMetrics) -> Notifier | None:
    """The notifier of the settings (None when notifications are off): its queue sends through
    a sender under the settings' host policy, reads sinks' Secrets and writes policies' status
    over ``api``."""
    if not settings.notifications:
        return None
    queue = DeliveryQueue(
        SinkSender(settings.notify_host_policy),
        capacity=settings.notify_queue,
        workers=settings.notify_workers,
        per_namespace=settings.notify_namespace_deliveries or None,
        metrics=metrics,
    )
    return Notifier(
        queue,
        SinkSecrets(api, timeout=REQUEST_TIMEOUT),
        NotificationPolicies(api, timeout=REQUEST_TIMEOUT),
        namespaces=settings.namespaces,
        metrics=metrics,
    )


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = from_sources(argv)
    except SettingsError as exc:
        print(f"rollwise-operator: {exc}", file=sys.stderr)
        return 2
    rlog.configure(settings.log_format, verbose=settings.verbose, background=True)
    log = rlog.logger("rollwise.operator")

    api = api_client(connections=settings.workers)
    try:
        settings = read_settings_configmap(api, settings)
    except (SettingsError, AdapterError) as exc:
        log.error("cannot read the settings ConfigMap", error=str(exc))
        return 2
    metrics = OperatorMetrics()
    port = metrics.serve(settings.metrics_port)
    ensure_peering(api, settings, log)

    try:
        record_key = read_keyring(settings)
        registries = read_registries(settings)
    except (OSError, AdmissionSetupError) as exc:
        log.error("cannot read a secret file", error=str(exc))
        return 2
    try:
        web = {
            provider.name: (provider.url, read_headers(provider.headers_dir))
            for provider in settings.web_providers
        }
    except OSError as exc:
        log.error("cannot read a web provider's headers", error=str(exc))
        return 2
    providers = ProviderCache(web)
    notifier = build_notifier(api, settings, metrics)
    queries = QueryBudget(
        settings.query_threads,
        per_namespace=settings.namespace_queries or None,
        max_timeout=settings.max_query_seconds,
    )
    ports = build_ports(
        api,
        default_prometheus=settings.prometheus_url,
        metrics=metrics,
        instance=settings.pod_name,
        providers=providers,
        record_key=record_key,
        queries=queries,
        allowed_prometheus=settings.allowed_prometheus,
        web_providers=settings.web_provider_names,
        notifier=notifier,
        gate_hooks=GateHooks(SinkSender(settings.notify_host_policy)),
    )
    loops = Loops(
        resync_seconds=settings.resync_seconds,
        slots=PassSlots(2 * settings.workers, settings.namespace_passes or None),
        # The watches keep the cache current; a body nothing confirmed is read again after the
        # resync period, the same bound as the passes' own look-again (DESIGN §2). A shorter
        # bound costs a label-selected list per Rollout per period, which the API server
        # answers by scanning the namespace's Deployments (1,000 Rollouts: 17 lists a second).
        cache=WatchCache(max_age=settings.resync_seconds),
    )
    registry = kopf.OperatorRegistry()
    register(registry, loops, ports, metrics)
    gates = GateEvaluator(
        KubeAPI(api, timeout=REQUEST_TIMEOUT),
        policy_configmap=settings.policy_configmap,
        freeze_configmap=settings.freeze_configmap,
        access=settings.evidence_policy,
        registries=registries,
    )
    release_ports = build_release_ports(
        api,
        gates=gates,
        record_key=record_key,
        default_prometheus=settings.prometheus_url,
        metrics=metrics,
        instance=settings.pod_name,
        providers=providers,
        queries=queries,
        allowed_prometheus=settings.allowed_prometheus,
        web_providers=settings.web_provider_names,
        registries=registries,
        policy=settings.cluster_policy,
        ledger=settings.ledger_configmap,
        notifier=notifier,
    )
    register_releases(registry, loops, release_ports)
    if notifier is not None:
        register_notifications(registry, notifier)
    log.info(
        "starting",
        namespaces=list(settings.namespaces) or "cluster-wide",
        peering=settings.peering or "standalone",
        peering_priority=settings.peering_priority,
        metrics_port=port,
        prometheus=settings.prometheus_url,
        prometheus_allowed=sorted(settings.allowed_prometheus),
        namespace_passes=settings.namespace_passes or "unbounded",
        namespace_queries=settings.namespace_queries or "unbounded",
        notifications=(
            f"on (queue {settings.notify_queue}, {settings.notify_workers} workers)"
            if notifier is not None
            else "off"
        ),
        record_key=(
            f"{key_id(record_key)} (also accepted: "
            f"{', '.join(key_id(k) for k in record_key.previous) or 'none'})"
            if record_key is not None
            else "none (approvals, waivers and overrides never count)"
        ),
    )
    kopf_settings = operator_settings(settings.pod_name)
    kopf_settings.peering.lifetime = settings.peering_lifetime
    try:
        webhook = setup_admission(
            registry,
            kopf_settings,
            settings,
            serving=ReleaseObjects(
                KubeAPI(api, timeout=REQUEST_TIMEOUT), ledger=settings.ledger_configmap
            ),
            refusals=refusal_events(KubeCluster(api), log),
        )
    except AdmissionSetupError as exc:
        log.error("cannot start the admission webhook", error=str(exc))
        return 2
    if webhook:
        log.info(
            "admission webhook on",
            port=settings.webhook_port,
            managed=settings.webhook_managed,
        )
    # After every handler is registered: the choice depends on whether any is a change handler.
    kopf_settings.persistence.diffbase_storage = diffbase_storage(registry)
    size_worker_pool(registry, settings.workers)
    tune_gc()
    try:
        kopf.run(
            registry=registry,
            settings=kopf_settings,
            standalone=settings.peering is None,
            peering_name=settings.peering,
            priority=settings.peering_priority,
            liveness_endpoint=settings.liveness,
            clusterwide=settings.clusterwide,
            namespaces=settings.namespaces,
        )
    finally:
        queries.close()
        providers.close()
        metrics.stop()
        api.close()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
