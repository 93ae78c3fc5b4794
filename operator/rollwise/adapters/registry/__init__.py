"""Model-registry alias stores: where the ``production`` alias of a model lives.

- ``base``: the ``AliasStore`` interface, ``AliasTarget``, ``EXPECT_UNSET`` and the in-memory
  ``NopAliasStore``;
- ``configmap``: ``ConfigMapAliasStore`` (the default), aliases as keys of one ConfigMap;
- ``mlflow``: ``MLflowAliasStore``, the MLflow model registry's aliases over its REST API.

``alias_store_for`` builds the store a ModelRelease's ``spec.alias.store`` names. A new store is
one module here, one branch in ``alias_store_for`` and one entry in the shared contract test.
"""

from __future__ import annotations

from typing import Any

from rollwise.adapters.registry.base import EXPECT_UNSET, AliasStore, AliasTarget, NopAliasStore
from rollwise.adapters.registry.configmap import ConfigMapAliasStore
from rollwise.adapters.registry.mlflow import MLflowAliasStore
from rollwise.core.spec import AliasStore as AliasStoreSpec

#: The ConfigMap used when a ModelRelease names no store.
DEFAULT_CONFIGMAP = "rollwise-aliases"


def alias_store_for(
    spec: AliasStoreSpec | None,
    *,
    namespace: str,
    kube: Any,
    mlflow_token: str | None = None,
    timeout: float = 10.0,
) -> AliasStore:
    """The store ``spec`` names: MLflow when ``mlflow`` is set, else the ConfigMap (named, or
    ``DEFAULT_CONFIGMAP``) in ``namespace``. ``kube`` is a ``KubeAPI`` or an ``ApiClient``."""
    if spec is not None and spec.mlflow is not None:
        return MLflowAliasStore(spec.mlflow.tracking_uri, token=mlflow_token, timeout=timeout)
    name = spec.config_map.name if spec is not None and spec.config_map is not None else None
    return ConfigMapAliasStore(kube, namespace, name or DEFAULT_CONFIGMAP)


__all__ = [
    "DEFAULT_CONFIGMAP",
    "EXPECT_UNSET",
    "AliasStore",
    "AliasTarget",
    "ConfigMapAliasStore",
    "MLflowAliasStore",
    "NopAliasStore",
    "alias_store_for",
]
