"""Wiring: the real ports of each kind's pass, built from the adapters.

:func:`build_ports` wires the Kubernetes gateway (:class:`rollwise.adapters.objects.KubeCluster`
for the Rollout itself, its status and events), the revision Deployments and Services, the
traffic routers and one cached :class:`PrometheusProvider` per address into a Rollout's
ports; :func:`build_release_ports` does the same for a ModelRelease.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from rollwise.adapters.errors import QueryError
from rollwise.adapters.kube import KubeAPI
from rollwise.adapters.metrics.base import MetricProvider
from rollwise.adapters.metrics.prometheus import PrometheusProvider
from rollwise.adapters.metrics.web import WebMetricProvider
from rollwise.adapters.objects import REQUEST_TIMEOUT, KubeCluster
from rollwise.adapters.registry import alias_store_for
from rollwise.adapters.registry.base import AliasStore
from rollwise.adapters.registry.mlflow import MLflowRegistry
from rollwise.adapters.releases import (
    ReleaseObjects,
)
from rollwise.adapters.serving import InferenceServices
from rollwise.adapters.templates import AnalysisTemplates
from rollwise.adapters.traffic.base import RouterContext, TrafficRouter
from rollwise.adapters.traffic.registry import router_for
from rollwise.adapters.workloads import Workloads
from rollwise.core.modelrelease.policy import ClusterPolicy
from rollwise.core.spec import TrafficRouting
from rollwise.core.spec_release import ModelReleaseSpec
from rollwise.runtime.measuring import WEB_PREFIX, QueryBudget
from rollwise.runtime.metrics import OperatorMetrics
from rollwise.runtime.passes import NotifierPort
from rollwise.runtime.release.ports import GatesPort, ReleasePorts
from rollwise.runtime.rollout.ports import GateHooksPort, Ports


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
    settings (keys ``web:<name>``, see ``runtime.measuring.resolve_address``)."""

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
    gate_hooks: GateHooksPort | None = None,
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
            templates=AnalysisTemplates(view),
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
            gate_hooks=gate_hooks,
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
            templates=AnalysisTemplates(view),
            alias_store_for=stores,
            gates=gates,
            provider_for=provider_for,
            record_key=record_key,
            default_prometheus=default_prometheus,
            metrics=metrics,
            for_pass=lambda cache: over(kube.pass_view(cache)),
            queries=queries,
            allowed_prometheus=allowed_prometheus,
            web_providers=web_providers,
            policy=policy if policy is not None else ClusterPolicy(),
            notifier=notifier,
        )

    return over(kube)


__all__ = ["MissingProvider", "ProviderCache", "build_ports", "build_release_ports"]
