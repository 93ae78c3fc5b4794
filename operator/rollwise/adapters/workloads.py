"""A Rollout's revision Deployments and the Services it points: the Kubernetes side of the
core's ``EnsureRevision``, ``ScaleRevision``, ``DeleteRevision``, ``PointStableService`` and
``PointCanaryService`` actions, plus the observations they feed back (``RevisionState``).

Every method is idempotent and reads the object before writing it, so applying the same action
twice changes nothing the second time (no write, no new resourceVersion).

A revision's Deployment is named ``<rollout>-<revision>`` and labelled ``rollwise.dev/rollout``
and ``rollwise.dev/revision``; its selector is the Rollout's plus the revision label, its pod
template the Rollout's with the revision label added; it is controlled by the Rollout
(``ownerReferences`` with ``controller`` and ``blockOwnerDeletion``), so deleting the Rollout
deletes its revisions. A Deployment of that name that the Rollout does not control is never
touched (``NotOwned``).

A baseline (``strategy.canary.baseline``) is a revision Deployment like the others, named and
labelled by its own revision id (``<stable>-baseline``), whose pod template is copied from the
stable revision's Deployment: the same pods as the stable fleet, fresh, and told apart in
metrics by their ``rollwise.dev/revision``. It also carries ``rollwise.dev/role: baseline``
and ``rollwise.dev/baseline-of: <stable>`` (on the Deployment and its pods).

The operator never creates Services: it points the ones the user made (``spec.selector`` gains
``rollwise.dev/revision``) and reports whether they exist.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rollwise import API_VERSION
from rollwise.adapters.errors import Conflict, NotFound, NotOwned
from rollwise.adapters.kube import DEPLOYMENTS, SERVICES, KubeAPI
from rollwise.core.observations import REVISION_LABEL, RevisionState

#: Label naming the Rollout on the Deployments it owns.
ROLLOUT_LABEL = "rollwise.dev/rollout"
#: Label giving the part a revision Deployment plays, set on a baseline (``baseline``).
ROLE_LABEL = "rollwise.dev/role"
BASELINE_ROLE = "baseline"
#: Label naming, on a baseline, the stable revision whose template it runs.
BASELINE_OF_LABEL = "rollwise.dev/baseline-of"

ROLLOUT_API_VERSION = API_VERSION
ROLLOUT_KIND = "Rollout"


@dataclass(frozen=True)
class RolloutRef:
    """The Rollout that owns the revisions: enough to name, label and own them."""

    namespace: str
    name: str
    uid: str
    selector: Mapping[str, Any]
    """The Rollout's ``spec.selector`` (wire form: ``matchLabels``/``matchExpressions``)."""


def deployment_name(rollout: str, revision: str) -> str:
    return f"{rollout}-{revision}"


def owner_reference(rollout: RolloutRef) -> dict[str, Any]:
    return {
        "apiVersion": ROLLOUT_API_VERSION,
        "kind": ROLLOUT_KIND,
        "name": rollout.name,
        "uid": rollout.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def revision_deployment(
    rollout: RolloutRef, revision: str, replicas: int, template: Mapping[str, Any]
) -> dict[str, Any]:
    """The Deployment manifest of one revision (pure: no I/O)."""
    pod_template = copy.deepcopy(dict(template))
    metadata = dict(pod_template.get("metadata") or {})
    metadata["labels"] = {**(metadata.get("labels") or {}), REVISION_LABEL: revision}
    pod_template["metadata"] = metadata

    selector = copy.deepcopy(dict(rollout.selector))
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), REVISION_LABEL: revision}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": deployment_name(rollout.name, revision),
            "namespace": rollout.namespace,
            "labels": {ROLLOUT_LABEL: rollout.name, REVISION_LABEL: revision},
            "ownerReferences": [owner_reference(rollout)],
        },
        "spec": {"replicas": replicas, "selector": selector, "template": pod_template},
    }


def baseline_deployment(
    rollout: RolloutRef,
    revision: str,
    stable_revision: str,
    replicas: int,
    stable: Mapping[str, Any],
) -> dict[str, Any]:
    """The Deployment manifest of a baseline: the pod template of the ``stable`` Deployment
    (as read from the API server) under the baseline's revision id and role (pure: no I/O)."""
    template = copy.deepcopy(dict((stable.get("spec") or {}).get("template") or {}))
    body = revision_deployment(rollout, revision, replicas, template)
    role = {ROLE_LABEL: BASELINE_ROLE, BASELINE_OF_LABEL: stable_revision}
    body["metadata"]["labels"].update(role)
    pod_metadata = body["spec"]["template"]["metadata"]
    pod_metadata["labels"] = {**pod_metadata["labels"], **role}
    return body


def revision_state(deployment: Mapping[str, Any]) -> RevisionState:
    """What the core needs to know about a revision's Deployment (pure: no I/O)."""
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    generation = (deployment.get("metadata") or {}).get("generation")
    observed = status.get("observedGeneration")
    current = generation is None or (observed is not None and observed >= generation)
    return RevisionState(
        desired_replicas=int(spec.get("replicas", 1)),
        updated_replicas=int(status.get("updatedReplicas") or 0),
        ready_replicas=int(status.get("readyReplicas") or 0),
        available_replicas=int(status.get("availableReplicas") or 0),
        current=current,
    )


def controlled_by(obj: Mapping[str, Any], uid: str) -> bool:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("controller") and ref.get("uid") == uid for ref in refs)


class Workloads:
    """Revision Deployments and Service selectors of one namespace."""

    def __init__(self, kube: KubeAPI) -> None:
        self.kube = kube

    # ------------------------------------------------------------------------ revisions

    def _owned(self, rollout: RolloutRef, revision: str) -> dict[str, Any] | None:
        name = deployment_name(rollout.name, revision)
        found = self.kube.get_or_none(DEPLOYMENTS, rollout.namespace, name)
        if found is not None and not controlled_by(found, rollout.uid):
            raise NotOwned(
                f"Deployment {rollout.namespace}/{name} exists and is not controlled by "
                f"Rollout {rollout.name}: rename or delete it"
            )
        return found

    def ensure_revision(
        self, rollout: RolloutRef, revision: str, replicas: int, template: Mapping[str, Any]
    ) -> RevisionState:
        """Creates the revision's Deployment when missing, else scales it to ``replicas``.

        An existing Deployment keeps its template: its name is the template's hash, so a
        different template is a different revision.
        """
        found = self._owned(rollout, revision)
        if found is None:
            body = revision_deployment(rollout, revision, replicas, template)
            try:
                return revision_state(self.kube.create(DEPLOYMENTS, rollout.namespace, body))
            except Conflict:
                # Created meanwhile (another pass or operator replica): scale what is there.
                found = self._owned(rollout, revision)
                if found is None:
                    raise
        return self._scale(rollout, found, replicas)

    def ensure_baseline(
        self, rollout: RolloutRef, revision: str, stable_revision: str, replicas: int
    ) -> RevisionState:
        """Creates the baseline's Deployment from the stable revision's pod template when
        missing, else scales it to ``replicas``; ``NotFound`` when the stable revision's
        Deployment is gone (there is no template to copy)."""
        found = self._owned(rollout, revision)
        if found is None:
            stable = self._owned(rollout, stable_revision)
            if stable is None:
                name = deployment_name(rollout.name, stable_revision)
                raise NotFound(
                    f"Deployment {rollout.namespace}/{name} not found: the baseline copies its "
                    "pod template",
                    status=404,
                )
            body = baseline_deployment(rollout, revision, stable_revision, replicas, stable)
            try:
                return revision_state(self.kube.create(DEPLOYMENTS, rollout.namespace, body))
            except Conflict:
                found = self._owned(rollout, revision)
                if found is None:
                    raise
        return self._scale(rollout, found, replicas)

    def scale_revision(self, rollout: RolloutRef, revision: str, replicas: int) -> RevisionState:
        """Scales an existing revision; ``NotFound`` when it does not exist (never creates)."""
        found = self._owned(rollout, revision)
        if found is None:
            name = deployment_name(rollout.name, revision)
            raise NotFound(f"Deployment {rollout.namespace}/{name} not found", status=404)
        return self._scale(rollout, found, replicas)

    def _scale(
        self, rollout: RolloutRef, deployment: dict[str, Any], replicas: int
    ) -> RevisionState:
        if (deployment.get("spec") or {}).get("replicas") == replicas:
            return revision_state(deployment)
        name = deployment["metadata"]["name"]
        patched = self.kube.merge_patch(
            DEPLOYMENTS, rollout.namespace, name, {"spec": {"replicas": replicas}}
        )
        return revision_state(patched)

    def delete_revision(self, rollout: RolloutRef, revision: str) -> bool:
        """Deletes the revision's Deployment; False when it was already gone."""
        found = self._owned(rollout, revision)
        if found is None:
            return False
        return self.kube.delete(DEPLOYMENTS, rollout.namespace, found["metadata"]["name"])

    def revisions(self, rollout: RolloutRef) -> dict[str, RevisionState]:
        """Every revision Deployment this Rollout controls, by revision id."""
        found: dict[str, RevisionState] = {}
        selector = f"{ROLLOUT_LABEL}={rollout.name}"
        for item in self.kube.list(DEPLOYMENTS, rollout.namespace, selector):
            revision = ((item.get("metadata") or {}).get("labels") or {}).get(REVISION_LABEL)
            if revision and controlled_by(item, rollout.uid):
                found[revision] = revision_state(item)
        return found

    # -------------------------------------------------------------------------- services

    def service_exists(self, namespace: str, name: str) -> bool:
        return self.kube.get_or_none(SERVICES, namespace, name) is not None

    def point_service(self, namespace: str, name: str, revision: str | None) -> bool:
        """Sets (or, with None, removes) the revision label of a Service's selector; True when
        it wrote. ``NotFound`` when the Service does not exist."""
        service = self.kube.get(SERVICES, namespace, name)
        selector = (service.get("spec") or {}).get("selector") or {}
        if selector.get(REVISION_LABEL) == revision:
            return False
        self.kube.merge_patch(
            SERVICES, namespace, name, {"spec": {"selector": {REVISION_LABEL: revision}}}
        )
        return True


__all__ = [
    "BASELINE_OF_LABEL",
    "BASELINE_ROLE",
    "ROLE_LABEL",
    "ROLLOUT_LABEL",
    "RolloutRef",
    "Workloads",
    "baseline_deployment",
    "controlled_by",
    "deployment_name",
    "owner_reference",
    "revision_deployment",
    "revision_state",
]
