"""ConfigMaps as dicts: get, create and conditional merge patch.

``KubeAPI`` serves resources under ``/apis`` and Services only, so ConfigMaps (core group) go
through the same ``ApiClient`` with ``CoreV1Api`` raw responses and the same error mapping
(``kube_errors``). Used by the gates (SBOMs, the policy snapshot, freeze windows: read-only)
and by the ModelRelease's objects (release manifests, the revocation ledger).
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client

from rollwise.adapters.errors import NotFound
from rollwise.adapters.kube import MERGE_PATCH, KubeAPI, discard, kube_errors


class ConfigMaps:
    """ConfigMaps through one ``KubeAPI``'s connection and timeout."""

    def __init__(self, kube: KubeAPI) -> None:
        self.timeout = kube.timeout
        # Typed as Any: bodies go in and come out as dicts, not the client's typed models.
        self._core: Any = client.CoreV1Api(kube.api_client)

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The ConfigMap ``namespace/name``; None when it does not exist; raises ``KubeError``
        subclasses on failures."""
        try:
            with kube_errors(f"get configmap {namespace}/{name}"):
                response = self._core.read_namespaced_config_map(
                    name, namespace, _preload_content=False, _request_timeout=self.timeout
                )
        except NotFound:
            return None
        try:
            body = json.loads(response.data or b"{}")
        finally:
            discard(response)
        return body if isinstance(body, dict) else {}

    def create(self, namespace: str, body: dict[str, Any]) -> None:
        """Creates ``body`` (``Conflict`` when the name is taken)."""
        name = (body.get("metadata") or {}).get("name", "?")
        with kube_errors(f"create configmap {namespace}/{name}"):
            discard(
                self._core.create_namespaced_config_map(
                    namespace, body, _preload_content=False, _request_timeout=self.timeout
                )
            )

    def merge_patch(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        """A JSON merge patch; a ``metadata.resourceVersion`` in ``patch`` makes it conditional
        (``Conflict`` when the ConfigMap changed since)."""
        with kube_errors(f"patch configmap {namespace}/{name}"):
            discard(
                self._core.patch_namespaced_config_map(
                    name,
                    namespace,
                    patch,
                    _content_type=MERGE_PATCH,
                    _preload_content=False,
                    _request_timeout=self.timeout,
                )
            )


def resource_version(configmap: dict[str, Any]) -> str:
    """The ConfigMap's ``metadata.resourceVersion`` ("" when absent)."""
    return str((configmap.get("metadata") or {}).get("resourceVersion") or "")


__all__ = ["ConfigMaps", "resource_version"]
