"""The cluster side of a ModelRelease: its child Rollout, release manifest and revocation ledger.

:class:`ReleaseObjects` is what the ModelRelease reconcile reads and writes besides the release
itself (``runtime.cluster.KubeCluster``), the alias store (``adapters.registry``), the KServe
InferenceService (``adapters.serving``) and the gate evaluator (``adapters.gates``):

* **Child Rollout** (template serving): one Rollout per (model, alias), shared by the successive
  releases of that model so that each release canaries against the one before. Every release
  that drives it adds itself to the child's ``ownerReferences`` (not as controller), so the
  child is garbage-collected only once every release that served through it is gone. The
  ``rollwise.dev/model-release`` label names the release driving it now (the operator wakes
  that release when the child's status changes); ``rollwise.dev/guarded`` puts its writes
  under the webhook's ``failurePolicy: Fail`` entry.
* **Release manifest**: ConfigMap ``<release>-manifest`` with ``release_manifest.json``,
  owned by the release. Written once: an existing manifest is never overwritten; a manifest
  for another version under the same name raises ``ManifestRefused``.
* **Revocation ledger**: one ConfigMap for the whole cluster, in the operator's own namespace
  (``ledger``, default ``rollwise-revocations``), one key per revoked (scope, model, version),
  written by the operator only: people who may edit a team's namespace cannot un-revoke a
  version there. The scope is where the model's alias lives: a shared registry
  (``registry/NAME``: one model for the whole cluster) or the release's namespace
  (``namespace/NS``, for the namespace's ConfigMap store). It outlives the ModelRelease that
  revoked the version, so a revoked version stays refused even after that object is deleted.
  A ledger of an earlier release of the operator in the release's namespace is still read (an
  entry there only ever refuses more); without a cluster ledger (an operator run outside a
  cluster, knowing no namespace of its own) that namespace ledger is written.

ConfigMaps go through ``adapters.configmaps``. Everything here is synchronous; the runtime
calls it from worker threads.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rollwise import API_VERSION, GROUP, VERSION
from rollwise import MODELRELEASES as MODELRELEASE_PLURAL
from rollwise.adapters.configmaps import ConfigMaps
from rollwise.adapters.errors import Conflict, ManifestRefused
from rollwise.adapters.kube import ROLLOUTS, KubeAPI
from rollwise.adapters.resources import Resource
from rollwise.core.overrides import GUARDED_LABEL

MODELRELEASES = Resource(GROUP, VERSION, MODELRELEASE_PLURAL)
MODELRELEASE_API_VERSION = API_VERSION
MODELRELEASE_KIND = "ModelRelease"

#: Label on a child Rollout naming the release that drives it now.
RELEASE_LABEL = "rollwise.dev/model-release"
#: Label on every object the operator creates for a release.
MANAGED_BY = {"app.kubernetes.io/managed-by": "rollwise"}
#: A child Rollout's writes always go through the webhook (failurePolicy Fail), which refuses
#: the manual requests only its release may make.
GUARDED = {GUARDED_LABEL: "true"}

MANIFEST_KEY = "release_manifest.json"
LEDGER_NAME = "rollwise-revocations"
#: Annotation on a child Rollout: the spec the operator applied last (JSON), so that the next
#: update removes what the operator no longer asks for and keeps the API server's defaults.
LAST_APPLIED = "rollwise.dev/last-applied-spec"
#: Annotation a reverting release sets on the child Rollout (the Rollout's promote-full request).
PROMOTE_FULL = "rollwise.dev/promote-full"


@dataclass(frozen=True)
class ReleaseRef:
    """The release an object belongs to (its owner)."""

    namespace: str
    name: str
    uid: str


def owner_reference(release: ReleaseRef, *, controller: bool) -> dict[str, Any]:
    return {
        "apiVersion": MODELRELEASE_API_VERSION,
        "kind": MODELRELEASE_KIND,
        "name": release.name,
        "uid": release.uid,
        "controller": controller,
        "blockOwnerDeletion": controller,
    }


def manifest_name(release: str) -> str:
    return f"{release}-manifest"


def ledger_key(model: str, version: str, scope: str = "") -> str:
    """The ledger's key of ``model``/``version`` in ``scope`` (empty: a namespace ledger's key;
    ConfigMap keys allow ``[-._a-zA-Z0-9]``)."""
    text = f"{scope}\0{model}\0{version}" if scope else f"{model}\0{version}"
    digest = hashlib.sha256(text.encode()).hexdigest()[:20]
    return f"{'s' if scope else 'v'}-{digest}"


def three_way_patch(
    last: Mapping[str, Any], current: Mapping[str, Any], desired: Mapping[str, Any]
) -> dict[str, Any]:
    """The merge patch taking ``current`` to ``desired`` without undoing what the API server
    added (defaults): keys ``desired`` sets are written where ``current`` differs; keys the
    operator applied last time (``last``) and ``desired`` no longer has are removed (null);
    keys neither mentions are left alone. Lists are replaced whole."""
    patch: dict[str, Any] = {key: None for key in last if key not in desired and key in current}
    for key, value in desired.items():
        prior = current.get(key)
        if isinstance(value, Mapping) and isinstance(prior, Mapping):
            before = last.get(key)
            nested = three_way_patch(before if isinstance(before, Mapping) else {}, prior, value)
            if nested:
                patch[key] = nested
        elif key not in current or prior != value:
            patch[key] = value
    return patch


class ReleaseObjects:
    """Child Rollouts, release manifests and the revocation ledger of ModelReleases."""

    def __init__(self, kube: KubeAPI, *, ledger: tuple[str, str] | None = None) -> None:
        """``ledger``: (namespace, name) of the cluster's revocation ledger; None: each
        release's namespace keeps its own (module doc)."""
        self.kube = kube
        self.configmaps = ConfigMaps(kube)
        self.ledger = ledger

    # -- ModelReleases -----------------------------------------------------------------------

    def list_releases(self, namespace: str) -> list[dict[str, Any]]:
        return self.kube.list(MODELRELEASES, namespace)

    # -- the child Rollout -------------------------------------------------------------------

    def read_child(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.kube.get_or_none(ROLLOUTS, namespace, name)

    def ensure_child(
        self,
        release: ReleaseRef,
        name: str,
        spec: Mapping[str, Any],
        *,
        annotations: Mapping[str, str] | None = None,
    ) -> bool:
        """Creates the child Rollout or brings its spec, labels, owners and ``annotations`` to
        what is asked; True when it wrote."""
        current = self.kube.get_or_none(ROLLOUTS, release.namespace, name)
        owner = owner_reference(release, controller=False)
        applied = json.dumps(dict(spec), sort_keys=True, separators=(",", ":"))
        if current is None:
            body = {
                "apiVersion": MODELRELEASE_API_VERSION,
                "kind": "Rollout",
                "metadata": {
                    "name": name,
                    "namespace": release.namespace,
                    "labels": {**MANAGED_BY, RELEASE_LABEL: release.name, **GUARDED},
                    "annotations": {**(annotations or {}), LAST_APPLIED: applied},
                    "ownerReferences": [owner],
                },
                "spec": dict(spec),
            }
            # A Conflict: created meanwhile (another pass or replica); the next pass updates it.
            with contextlib.suppress(Conflict):
                self.kube.create(ROLLOUTS, release.namespace, body)
            return True
        meta = current.get("metadata") or {}
        existing = meta.get("annotations") or {}
        try:
            last = json.loads(existing.get(LAST_APPLIED) or "{}")
        except ValueError:
            last = {}
        patch: dict[str, Any] = {}
        spec_patch = three_way_patch(
            last if isinstance(last, dict) else {}, current.get("spec") or {}, spec
        )
        if spec_patch:
            patch["spec"] = spec_patch
        labels = meta.get("labels") or {}
        wanted_labels = {RELEASE_LABEL: release.name, **GUARDED}
        if any(labels.get(k) != v for k, v in wanted_labels.items()):
            patch.setdefault("metadata", {})["labels"] = wanted_labels
        owners = [r for r in meta.get("ownerReferences") or [] if isinstance(r, dict)]
        if not any(r.get("uid") == release.uid for r in owners):
            patch.setdefault("metadata", {})["ownerReferences"] = [*owners, owner]
        asked = {**(annotations or {}), LAST_APPLIED: applied}
        wanted = {k: v for k, v in asked.items() if existing.get(k) != v}
        if wanted:
            patch.setdefault("metadata", {})["annotations"] = wanted
        if not patch:
            return False
        patch.setdefault("metadata", {})["resourceVersion"] = meta.get("resourceVersion")
        self.kube.merge_patch(ROLLOUTS, release.namespace, name, patch)
        return True

    # -- the release manifest ----------------------------------------------------------------

    def read_manifest(self, namespace: str, release: str) -> dict[str, Any] | None:
        """The release manifest's content; None when there is none (or it is unreadable)."""
        configmap = self.configmaps.get(namespace, manifest_name(release))
        if configmap is None:
            return None
        raw = (configmap.get("data") or {}).get(MANIFEST_KEY)
        try:
            content = json.loads(raw) if isinstance(raw, str) else None
        except ValueError:
            return {}
        return content if isinstance(content, dict) else {}

    def write_manifest(self, release: ReleaseRef, name: str, content: Mapping[str, Any]) -> bool:
        """Writes the manifest ConfigMap ``name`` once; True when it wrote. An existing one
        for the same model version is left as it is; one for another version raises
        ``ManifestRefused``."""
        existing = self.configmaps.get(release.namespace, name)
        if existing is None:
            body = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": name,
                    "namespace": release.namespace,
                    "labels": {**MANAGED_BY, RELEASE_LABEL: release.name, **GUARDED},
                    "ownerReferences": [owner_reference(release, controller=True)],
                },
                "immutable": True,
                "data": {MANIFEST_KEY: json.dumps(dict(content), indent=2, sort_keys=True)},
            }
            try:
                self.configmaps.create(release.namespace, body)
            except Conflict:
                existing = self.configmaps.get(release.namespace, name)
            else:
                return True
        raw = ((existing or {}).get("data") or {}).get(MANIFEST_KEY)
        try:
            old = json.loads(raw) if isinstance(raw, str) else {}
        except ValueError:
            old = {}
        same = isinstance(old, dict) and (old.get("model"), old.get("version")) == (
            content.get("model"),
            content.get("version"),
        )
        if not same:
            raise ManifestRefused(
                f"ConfigMap {release.namespace}/{name} already holds a release manifest "
                "for another version; manifests are never overwritten"
            )
        return False

    # -- the revocation ledger ---------------------------------------------------------------

    def _ledger_record(self, where: tuple[str, str], key: str) -> dict[str, Any] | None:
        configmap = self.configmaps.get(*where)
        raw = ((configmap or {}).get("data") or {}).get(key)
        if raw is None:
            return None
        try:
            record = json.loads(raw) if isinstance(raw, str) else None
        except ValueError:
            record = None
        # An entry that does not read is still an entry: the version stays refused.
        return record if isinstance(record, dict) else {"unreadable": key}

    def revoked(
        self, namespace: str, model: str, version: str, scope: str = ""
    ) -> dict[str, Any] | None:
        """The ledgers' record of ``model``/``version`` (the cluster's, in ``scope``, then the
        release namespace's); None when it was never revoked."""
        if self.ledger is not None and scope:
            found = self._ledger_record(self.ledger, ledger_key(model, version, scope))
            if found is not None:
                return found
        return self._ledger_record((namespace, LEDGER_NAME), ledger_key(model, version))

    def record_revocation(self, namespace: str, record: Mapping[str, Any], scope: str = "") -> bool:
        """Adds ``record`` (``model``, ``version``, ``release``, ``reason``, ``user``, ``at``)
        to the cluster's ledger (in ``scope``), else to the namespace's; True when it wrote.
        Conditional on the resourceVersion read."""
        if self.ledger is not None and scope:
            where = self.ledger
            key = ledger_key(str(record["model"]), str(record["version"]), scope)
            content = {**record, "namespace": namespace, "scope": scope}
        else:
            where = (namespace, LEDGER_NAME)
            key = ledger_key(str(record["model"]), str(record["version"]))
            content = dict(record)
        value = json.dumps(content, sort_keys=True)
        ledger_ns, ledger_name = where
        for _ in range(5):
            configmap = self.configmaps.get(ledger_ns, ledger_name)
            if configmap is None:
                body = {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": ledger_name, "namespace": ledger_ns, "labels": MANAGED_BY},
                    "data": {key: value},
                }
                try:
                    self.configmaps.create(ledger_ns, body)
                except Conflict:
                    continue
                return True
            if key in (configmap.get("data") or {}):
                return False
            patch = {
                "metadata": {"resourceVersion": configmap["metadata"]["resourceVersion"]},
                "data": {key: value},
            }
            try:
                self.configmaps.merge_patch(ledger_ns, ledger_name, patch)
            except Conflict:
                continue
            return True
        raise Conflict(f"ConfigMap {ledger_ns}/{ledger_name} kept changing under the write")


__all__ = [
    "LAST_APPLIED",
    "LEDGER_NAME",
    "MANIFEST_KEY",
    "MODELRELEASES",
    "MODELRELEASE_API_VERSION",
    "MODELRELEASE_KIND",
    "PROMOTE_FULL",
    "RELEASE_LABEL",
    "ManifestRefused",
    "ReleaseObjects",
    "ReleaseRef",
    "ledger_key",
    "manifest_name",
    "owner_reference",
    "three_way_patch",
]
