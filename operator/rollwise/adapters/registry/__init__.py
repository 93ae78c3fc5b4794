"""Model-registry alias stores: where the ``production`` alias of a model lives.

- ``base``: the ``AliasStore`` interface, ``AliasTarget``, ``EXPECT_UNSET`` and the in-memory
  ``NopAliasStore``;
- ``configmap``: ``ConfigMapAliasStore`` (the default), aliases as keys of one ConfigMap;
- ``mlflow``: ``MLflowAliasStore``, the MLflow model registry's aliases over its REST API.

``alias_store_for`` builds the store a ModelRelease's ``spec.alias.store`` names: an MLflow
store is one of the registries of the operator's settings, looked up by the name the spec gives
(``UnknownRegistry`` for a name the settings do not have; the core refuses such a spec before
it gets here). A new store is one module here, one branch in ``alias_store_for`` and one entry
in the shared contract test.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rollwise.adapters.errors import RegistryError
from rollwise.adapters.registry.base import EXPECT_UNSET, AliasStore, AliasTarget, NopAliasStore
from rollwise.adapters.registry.configmap import ConfigMapAliasStore
from rollwise.adapters.registry.mlflow import MLflowAliasStore, MLflowRegistry
from rollwise.core.spec_release import AliasStore as AliasStoreSpec

#: The ConfigMap used when a ModelRelease names no store.
DEFAULT_CONFIGMAP = "rollwise-aliases"


class UnknownRegistry(RegistryError):
    """A spec names a registry the operator's settings do not have."""


def alias_store_for(
    spec: AliasStoreSpec | None,
    *,
    namespace: str,
    kube: Any,
    registries: Mapping[str, MLflowRegistry],
    timeout: float = 10.0,
) -> AliasStore:
    """The store ``spec`` names: the MLflow registry of ``registries`` it names when
    ``mlflow`` is set, else the ConfigMap (named, or ``DEFAULT_CONFIGMAP``) in ``namespace``.
    ``kube`` is a ``KubeAPI`` or an ``ApiClient``."""
    if spec is not None and spec.mlflow is not None:
        name = spec.mlflow.registry or ""
        registry = registries.get(name)
        if registry is None:
            raise UnknownRegistry(f"no MLflow registry named {name!r} in the operator's settings")
        return MLflowAliasStore(registry, timeout=timeout)
    configmap = spec.config_map.name if spec is not None and spec.config_map is not None else None
    return ConfigMapAliasStore(kube, namespace, configmap or DEFAULT_CONFIGMAP)


__all__ = [
    "DEFAULT_CONFIGMAP",
    "EXPECT_UNSET",
    "AliasStore",
    "AliasTarget",
    "ConfigMapAliasStore",
    "MLflowAliasStore",
    "MLflowRegistry",
    "NopAliasStore",
    "UnknownRegistry",
    "alias_store_for",
]
