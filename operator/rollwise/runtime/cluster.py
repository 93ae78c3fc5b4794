"""The real ports of a reconcile pass: the Kubernetes API and Prometheus.

:func:`api_client` logs in the way every Kubernetes tool does (in-cluster service account
first, else the kubeconfig ``KUBECONFIG`` names or ``~/.kube/config``). :class:`KubeCluster`
reads a Rollout, merge-patches its ``/status`` subresource and posts core/v1 Events about it;
:func:`build_ports` wires it with the adapters (revision Deployments and Services, the traffic
routers, one cached :class:`PrometheusProvider` per address) into :class:`Ports`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, config

from rollwise import GROUP, MODELRELEASES, ROLLOUTS, VERSION
from rollwise.adapters.errors import Conflict, NotFound, QueryError
from rollwise.adapters.kube import MERGE_PATCH, KubeAPI, discard, kube_errors
from rollwise.adapters.metrics.base import MetricProvider
from rollwise.adapters.metrics.prometheus import PrometheusProvider
from rollwise.adapters.metrics.web import WebMetricProvider
from rollwise.adapters.registry import alias_store_for
from rollwise.adapters.registry.base import AliasStore
from rollwise.adapters.registry.mlflow import MLflowRegistry
from rollwise.adapters.releases import (
    MODELRELEASE_API_VERSION,
    MODELRELEASE_KIND,
    ReleaseObjects,
    ReleaseRef,
)
from rollwise.adapters.serving import InferenceServices
from rollwise.adapters.traffic.base import RouterContext, TrafficRouter
from rollwise.adapters.traffic.registry import router_for
from rollwise.adapters.workloads import ROLLOUT_API_VERSION, ROLLOUT_KIND, Workloads
from rollwise.core.events import Event, LoggedEvent, event_name
from rollwise.core.modelrelease.policy import ClusterPolicy
from rollwise.core.spec import ModelReleaseSpec, TrafficRouting
from rollwise.core.status_model import format_time
from rollwise.runtime.metrics import OperatorMetrics
from rollwise.runtime.passes import WEB_PREFIX, NotifierPort, QueryBudget
from rollwise.runtime.release.ports import GatesPort, ReleasePorts
from rollwise.runtime.rollout.ports import Ports, RolloutObject

PLURAL, RELEASE_PLURAL = ROLLOUTS, MODELRELEASES

#: ``source.component`` / ``reportingComponent`` of the operator's events.
COMPONENT = "rollwise-operator"

#: Seconds one API request of a pass may take.
REQUEST_TIMEOUT = 10.0


def api_client(connections: int | None = None) -> Any:
    """A ``kubernetes.client.ApiClient``: in-cluster configuration first, else kubeconfig.
    ``connections`` sizes its connection pool (the client's default is 5 per CPU of the
    machine, which in a pod is the node's CPU count, not the pod's share)."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    if connections is not None:
        configuration.connection_pool_maxsize = connections
    return client.ApiClient(configuration)


class KubeCluster:
    """The Rollout object and its events, through the Kubernetes API."""

    def __init__(self, api: Any, *, instance: str | None = None) -> None:
        self.api = api
        self.instance = instance or COMPONENT
        self._custom = client.CustomObjectsApi(api)
        self._core = client.CoreV1Api(api)

    def read_rollout(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            with kube_errors(f"get rollout {namespace}/{name}"):
                obj = self._custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, name, _request_timeout=REQUEST_TIMEOUT
                )
        except NotFound:
            return None
        return dict(obj) if isinstance(obj, dict) else None

    def patch_status(
        self, namespace: str, name: str, patch: dict[str, Any], resource_version: str | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"status": patch}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        with kube_errors(f"patch rollout {namespace}/{name} status"):
            obj = self._custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                name,
                body,
                _content_type=MERGE_PATCH,
                _request_timeout=REQUEST_TIMEOUT,
            )
        return dict(obj) if isinstance(obj, dict) else {}

    def post_event(self, rollout: RolloutObject, event: Event) -> None:
        self._post_event(
            rollout.namespace, rollout.name, rollout.uid, (ROLLOUT_API_VERSION, ROLLOUT_KIND), event
        )

    def post_logged(self, rollout: RolloutObject, entry: LoggedEvent) -> bool:
        return self._post_logged(
            rollout.namespace, rollout.name, rollout.uid, (ROLLOUT_API_VERSION, ROLLOUT_KIND), entry
        )

    # -- ModelReleases -----------------------------------------------------------------------

    def read_release(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The ModelRelease as the API server has it now; None when it is gone."""
        try:
            with kube_errors(f"get modelrelease {namespace}/{name}"):
                obj = self._custom.get_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    namespace,
                    RELEASE_PLURAL,
                    name,
                    _request_timeout=REQUEST_TIMEOUT,
                )
        except NotFound:
            return None
        return dict(obj) if isinstance(obj, dict) else None

    def patch_release_status(
        self, namespace: str, name: str, patch: dict[str, Any], resource_version: str | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"status": patch}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        with kube_errors(f"patch modelrelease {namespace}/{name} status"):
            obj = self._custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                namespace,
                RELEASE_PLURAL,
                name,
                body,
                _content_type=MERGE_PATCH,
                _request_timeout=REQUEST_TIMEOUT,
            )
        return dict(obj) if isinstance(obj, dict) else {}

    def post_release_logged(self, release: ReleaseRef, entry: LoggedEvent) -> bool:
        return self._post_logged(
            release.namespace,
            release.name,
            release.uid,
            (MODELRELEASE_API_VERSION, MODELRELEASE_KIND),
            entry,
        )

    def post_release_event(self, release: ReleaseRef, event: Event) -> None:
        self._post_event(
            release.namespace,
            release.name,
            release.uid,
            (MODELRELEASE_API_VERSION, MODELRELEASE_KIND),
            event,
        )

    def _post_logged(
        self, namespace: str, name: str, uid: str, kind: tuple[str, str], entry: LoggedEvent
    ) -> bool:
        """Creates the Event of a logged transition under its deterministic name; False when
        it exists already (posted before: done)."""
        body = self._event_body(
            namespace,
            {"name": event_name(name, uid, entry.seq), "namespace": namespace},
            (name, uid, kind),
            (entry.type, entry.reason, entry.message),
            entry.time,
        )
        try:
            with kube_errors(f"post event {entry.reason} #{entry.seq} on {namespace}/{name}"):
                discard(
                    self._core.create_namespaced_event(
                        namespace,
                        body,  # type: ignore[arg-type]  # the dict goes out as JSON as it is
                        _preload_content=False,
                        _request_timeout=REQUEST_TIMEOUT,
                    )
                )
        except Conflict:
            return False
        return True

    def _event_body(
        self,
        namespace: str,
        metadata: dict[str, str],
        regarding: tuple[str, str, tuple[str, str]],
        what: tuple[str, str, str],
        at: datetime,
    ) -> dict[str, Any]:
        name, uid, (api_version, kind_name) = regarding
        event_type, reason, message = what
        stamp = format_time(at.astimezone(UTC).replace(microsecond=0))
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": metadata,
            "involvedObject": {
                "apiVersion": api_version,
                "kind": kind_name,
                "name": name,
                "namespace": namespace,
                "uid": uid,
            },
            "reason": reason,
            "message": message,
            "type": event_type,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": self.instance,
            "action": reason,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "eventTime": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "count": 1,
        }

    def _post_event(
        self, namespace: str, name: str, uid: str, kind: tuple[str, str], event: Event
    ) -> None:
        """Posts an event that is not a logged transition (a failed action, a rejected
        record: reports of this process), under a generated name."""
        body = self._event_body(
            namespace,
            {"generateName": f"{name}.", "namespace": namespace},
            (name, uid, kind),
            (event.type.value, event.reason.name, event.message),
            datetime.now(UTC),
        )
        with kube_errors(f"post event {event.reason.name} on {namespace}/{name}"):
            discard(
                self._core.create_namespaced_event(
                    namespace,
                    body,  # type: ignore[arg-type]  # the dict goes out as JSON as it is
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT,
                )
            )


class MissingProvider:
    """The provider of a web provider name the operator does not know (validation refuses
    such specs first; this only keeps an embedding that skips it from crashing)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def query(self, query: str, timeout_s: float) -> float | None:
        raise QueryError(f"no web provider named {self.name!r}")

    def parse(self, query: str, timeout_s: float) -> None:
        return None

    def is_online(self) -> bool:
        return False


class ProviderCache:
    """The metric providers, shared by every pass (thread-safe): one
    :class:`PrometheusProvider` per address, and the named web providers of the operator's
    settings (keys ``web:<name>``, see ``runtime.passes.resolve_address``)."""

    def __init__(self, web: Mapping[str, tuple[str, Mapping[str, str]]] | None = None) -> None:
        self._providers: dict[str, PrometheusProvider | WebMetricProvider] = {}
        self._web = dict(web or {})
        self._lock = threading.Lock()

    def __call__(self, address: str) -> MetricProvider:
        with self._lock:
            provider = self._providers.get(address)
            if provider is not None:
                return provider
            if address.startswith(WEB_PREFIX):
                name = address.removeprefix(WEB_PREFIX)
                known = self._web.get(name)
                if known is None:
                    return MissingProvider(name)
                url, headers = known
                provider = WebMetricProvider(url, headers=headers)
            else:
                provider = PrometheusProvider(address)
            self._providers[address] = provider
            return provider

    def close(self) -> None:
        with self._lock:
            for provider in self._providers.values():
                provider.close()
            self._providers.clear()


def build_ports(
    api: Any,
    *,
    default_prometheus: str | None,
    metrics: OperatorMetrics | None,
    instance: str | None = None,
    providers: ProviderCache | None = None,
    record_key: bytes | None = None,
    queries: QueryBudget | None = None,
    allowed_prometheus: frozenset[str] | None = None,
    web_providers: frozenset[str] | None = None,
    notifier: NotifierPort | None = None,
) -> Ports:
    """The production ports over one ``ApiClient``; ``for_pass`` gives each reconcile pass
    its own read view (``PassView``), so a pass reads each object at most once."""
    kube = KubeAPI(api, timeout=REQUEST_TIMEOUT)
    cluster = KubeCluster(api, instance=instance)
    provider_for = providers if providers is not None else ProviderCache()

    def over(view: KubeAPI) -> Ports:
        def routers(routing: TrafficRouting | None, ctx: RouterContext) -> TrafficRouter:
            return router_for(routing, ctx, view)

        return Ports(
            cluster=cluster,
            workloads=Workloads(view),
            router_for=routers,
            provider_for=provider_for,
            default_prometheus=default_prometheus,
            metrics=metrics,
            for_pass=lambda cache: over(kube.pass_view(cache)),
            record_key=record_key,
            queries=queries,
            allowed_prometheus=allowed_prometheus,
            web_providers=web_providers,
            notifier=notifier,
        )

    return over(kube)


def build_release_ports(
    api: Any,
    *,
    gates: GatesPort,
    record_key: bytes | None,
    default_prometheus: str | None,
    metrics: OperatorMetrics | None,
    instance: str | None = None,
    providers: ProviderCache | None = None,
    queries: QueryBudget | None = None,
    allowed_prometheus: frozenset[str] | None = None,
    web_providers: frozenset[str] | None = None,
    registries: Mapping[str, MLflowRegistry] | None = None,
    policy: ClusterPolicy | None = None,
    ledger: tuple[str, str] | None = None,
    notifier: NotifierPort | None = None,
) -> ReleasePorts:
    """The production ports of the ModelRelease pass over one ``ApiClient``: ``registries``
    are the MLflow registries of the operator's settings, ``policy`` its cluster policy,
    ``ledger`` the cluster's revocation ledger ConfigMap."""
    kube = KubeAPI(api, timeout=REQUEST_TIMEOUT)
    cluster = KubeCluster(api, instance=instance)
    provider_for = providers if providers is not None else ProviderCache()
    known = dict(registries or {})

    def over(view: KubeAPI) -> ReleasePorts:
        def stores(spec: ModelReleaseSpec, namespace: str) -> AliasStore:
            return alias_store_for(
                spec.alias.store, namespace=namespace, kube=view, registries=known
            )

        return ReleasePorts(
            cluster=cluster,
            objects=ReleaseObjects(view, ledger=ledger),
            serving=InferenceServices(view),
            alias_store_for=stores,
            gates=gates,
            provider_for=provider_for,
            record_key=record_key,
            default_prometheus=default_prometheus,
            metrics=metrics,
            for_pass=lambda: over(kube.pass_view()),
            queries=queries,
            allowed_prometheus=allowed_prometheus,
            web_providers=web_providers,
            policy=policy if policy is not None else ClusterPolicy(),
            notifier=notifier,
        )

    return over(kube)


__all__ = [
    "COMPONENT",
    "GROUP",
    "PLURAL",
    "RELEASE_PLURAL",
    "VERSION",
    "KubeCluster",
    "ProviderCache",
    "api_client",
    "build_ports",
    "build_release_ports",
]
