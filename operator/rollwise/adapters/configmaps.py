"""ConfigMaps as dicts: get, create and conditional merge patch.

Read and written through ``KubeAPI`` (its path, its connection, its error mapping), never
through a pass's ``PassView``: a ConfigMap written under a resourceVersion (the revocation
ledger, the alias store) must be read fresh, not from what a pass already saw. Used by the
gates (SBOMs, the policy snapshot, freeze windows: read-only) and by the ModelRelease's objects
(release manifests, the revocation ledger).
"""

from __future__ import annotations

from typing import Any

from rollwise.adapters.kube import CONFIGMAPS, KubeAPI


class ConfigMaps:
    """ConfigMaps through one ``KubeAPI``'s connection and timeout."""

    def __init__(self, kube: KubeAPI) -> None:
        self.timeout = kube.timeout
        self._kube = KubeAPI(kube.api_client, timeout=kube.timeout)

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The ConfigMap ``namespace/name``; None when it does not exist; raises ``KubeError``
        subclasses on failures."""
        return self._kube.get_or_none(CONFIGMAPS, namespace, name)

    def create(self, namespace: str, body: dict[str, Any]) -> None:
        """Creates ``body`` (``Conflict`` when the name is taken)."""
        self._kube.create(CONFIGMAPS, namespace, body)

    def merge_patch(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        """A JSON merge patch; a ``metadata.resourceVersion`` in ``patch`` makes it conditional
        (``Conflict`` when the ConfigMap changed since)."""
        self._kube.merge_patch(CONFIGMAPS, namespace, name, patch)


def resource_version(configmap: dict[str, Any]) -> str:
    """The ConfigMap's ``metadata.resourceVersion`` ("" when absent)."""
    return str((configmap.get("metadata") or {}).get("resourceVersion") or "")


__all__ = ["ConfigMaps", "resource_version"]
