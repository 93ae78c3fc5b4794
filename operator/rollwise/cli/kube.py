"""The plugin's calls to the API server, and every failure turned into one readable line
(:class:`CliError`).

How the plugin connects (kubeconfig, context, namespace, in-cluster) is
:mod:`rollwise.cli.connect`.

Every request goes through the adapters' Kubernetes gateway (:class:`rollwise.adapters.kube.
KubeAPI`), the operator's own: the same paths, the same transport and the same error mapping
(``NotFound``, ``Forbidden``, ``Unavailable``, ...). Answers are the JSON the API server sent;
this module only chooses what to ask and words each failure for a terminal. It talks to the
API server alone, never to the operator.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rollwise import ANALYSIS_TEMPLATES, CLUSTER_ANALYSIS_TEMPLATES
from rollwise.adapters.errors import Forbidden, KubeError, NotFound
from rollwise.adapters.kube import DEPLOYMENTS, MERGE_PATCH, KubeAPI
from rollwise.adapters.resources import Resource
from rollwise.cli.common import (
    GROUP,
    KIND_WORDS,
    KINDS,
    MODELRELEASES,
    ROLLOUTS,
    VERSION,
    CliError,
    NotServed,
    Refused,
)
from rollwise.core.observations import TemplateKey, TemplateRead

if TYPE_CHECKING:
    from rollwise.cli.render import ActualWeight

#: Seconds one request may take (connect and read) before the server counts as unreachable.
REQUEST_TIMEOUT = 10.0

#: Patch content type of a JSON patch (RFC 6902); a JSON merge patch is ``MERGE_PATCH``.
JSON_PATCH = "application/json-patch+json"

#: Labels the operator puts on a Rollout's revision Deployments (and, through the pod
#: template, the revision label on their ReplicaSets and pods).
ROLLOUT_LABEL = "rollwise.dev/rollout"
REVISION_LABEL = "rollwise.dev/revision"

REPLICASETS = Resource("apps", "v1", "replicasets")
PODS = Resource("", "v1", "pods")


def _ours(plural: str) -> Resource:
    """A resource of the rollwise.dev group (``rollouts``, ``modelreleases``, templates)."""
    return Resource(GROUP, VERSION, plural)


@dataclass(frozen=True)
class Workloads:
    """What runs a Rollout: its revision Deployments, their ReplicaSets and pods, as the API
    server returned them. ``replica_sets`` or ``pods`` is None when the server does not serve
    that resource (an API emulator without controllers)."""

    deployments: list[dict[str, Any]]
    replica_sets: list[dict[str, Any]] | None
    pods: list[dict[str, Any]] | None


def _as_dict(value: object) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()} if isinstance(value, Mapping) else {}


def _labels(obj: Mapping[str, Any]) -> dict[str, Any]:
    return _as_dict(_as_dict(obj.get("metadata")).get("labels"))


def _crd_missing(plural: str) -> NotServed:
    return NotServed(f"{plural}.{GROUP} is not installed in this cluster (kubectl apply -f crds/)")


def _errno_text(exc: BaseException) -> str:
    """The short cause of a connection failure: ``connection refused``, ``timed out``."""
    text = str(exc)
    found = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if found:
        return found.group(1).strip().lower()
    lowered = text.lower()
    for known in ("timed out", "certificate verify failed", "name or service not known"):
        if known in lowered:
            return known
    reason = getattr(exc, "reason", None)
    if reason is not None and reason is not exc:
        return _errno_text(reason) if isinstance(reason, BaseException) else str(reason)
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _failed_test(message: str) -> bool:
    """Whether a 422 to a JSON patch is a failed ``test`` operation: kube-apiserver says only
    that it "rejected our request due to an error in our request"."""
    lowered = message.lower()
    return "test" in lowered or "rejected our request" in lowered


def controlled_by(obj: Mapping[str, Any], uid: str) -> bool:
    """Whether ``obj``'s controller (owner reference with ``controller: true``) has ``uid``."""
    refs = _as_dict(obj.get("metadata")).get("ownerReferences") or []
    return any(
        isinstance(ref, Mapping) and ref.get("controller") and ref.get("uid") == uid for ref in refs
    )


@dataclass
class Cluster:
    """An API client, the namespace commands default to, and the server's address."""

    api: Any
    namespace: str
    host: str

    @functools.cached_property
    def kube(self) -> KubeAPI:
        """The adapters' Kubernetes gateway over the plugin's client."""
        return KubeAPI(self.api, timeout=REQUEST_TIMEOUT)

    # ---------------------------------------------------------------- failures

    def unreachable(self, exc: BaseException) -> CliError:
        return CliError(f"cannot reach the API server at {self.host}: {_errno_text(exc)}")

    def api_error(self, exc: KubeError, doing: str) -> CliError:
        """The failure of ``doing`` as one line, classified by the adapters' error mapping."""
        if exc.status is None:  # the server was not reached: no answer to quote
            return self.unreachable(exc.__cause__ or exc)
        if 200 <= exc.status <= 299:
            return CliError(f"{doing}: the API server at {self.host} answered with no JSON")
        if isinstance(exc, Forbidden):
            return CliError(f"{doing}: forbidden: {exc.answer}")
        return CliError(f"{doing}: {exc.answer} (HTTP {exc.status})")

    def served(self, plural: str) -> bool:
        """Whether the API server serves ``plural.rollwise.dev`` (its CRD is installed)."""
        try:
            return self.kube.serves(_ours(plural))
        except KubeError as exc:
            raise self.api_error(exc, f"discover {GROUP}/{VERSION}") from exc

    # ---------------------------------------------------------------- Rollouts, ModelReleases

    def get_object(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        """One ``plural`` object (``rollouts`` or ``modelreleases``)."""
        word = KIND_WORDS[plural]
        try:
            return self.kube.get(_ours(plural), namespace, name)
        except NotFound as exc:
            if not exc.named and not self.served(plural):
                raise _crd_missing(plural) from exc
            raise CliError(f'{word} "{name}" not found in namespace "{namespace}"') from exc
        except KubeError as exc:
            raise self.api_error(exc, f'get {word} "{name}"') from exc

    def get_rollout(self, namespace: str, name: str) -> dict[str, Any]:
        return self.get_object(ROLLOUTS, namespace, name)

    def analysis_templates(
        self, namespace: str, keys: Sequence[TemplateKey]
    ) -> dict[TemplateKey, TemplateRead | None]:
        """The spec of each referenced AnalysisTemplate (in ``namespace``) or
        ClusterAnalysisTemplate; None when it does not exist; a message when it could not be
        read (so that the view shows the spec as written rather than failing)."""
        found: dict[TemplateKey, TemplateRead | None] = {}
        for key in keys:
            try:
                if key.cluster_scope:
                    body = self.kube.get_cluster_scoped(_ours(CLUSTER_ANALYSIS_TEMPLATES), key.name)
                else:
                    body = self.kube.get(_ours(ANALYSIS_TEMPLATES), namespace, key.name)
            except KubeError as exc:
                if exc.status is None:
                    raise self.api_error(exc, f"get {key.name}") from exc
                found[key] = None if isinstance(exc, NotFound) else exc.answer
                continue
            spec = body.get("spec")
            found[key] = spec if isinstance(spec, dict) else {}
        return found

    def list_objects(self, plural: str, namespace: str | None) -> list[dict[str, Any]]:
        """Every ``plural`` object in ``namespace`` (None: all namespaces)."""
        try:
            return self.kube.list(_ours(plural), namespace)
        except NotFound as exc:
            raise _crd_missing(plural) from exc
        except KubeError as exc:
            raise self.api_error(exc, f"list {plural}") from exc

    def patch_object(
        self,
        plural: str,
        namespace: str,
        name: str,
        patch: Any,
        *,
        content_type: str = MERGE_PATCH,
    ) -> dict[str, Any]:
        """A patch on the object (not its status; a JSON merge patch unless ``content_type``
        says otherwise); returns the object as the API server stored it, after admission
        webhooks changed it.

        A ModelRelease request the API server refuses (an admission webhook's denial, whatever
        its code; or a 400, 403, 422) raises :class:`Refused` carrying the server's own
        sentence, which already says what to do."""
        word = KIND_WORDS[plural]
        try:
            return self.kube.patch(_ours(plural), namespace, name, patch, content_type)
        except NotFound as exc:
            raise CliError(f'{word} "{name}" not found in namespace "{namespace}"') from exc
        except KubeError as exc:
            message = exc.answer
            # kopf answers a refusal with code 500 unless its handler says otherwise: the
            # API server's wording, not the code, tells a webhook's refusal.
            if (
                plural == MODELRELEASES
                and exc.status is not None
                and (exc.status in (400, 403, 422) or "denied the request" in message)
            ):
                raise Refused(message) from exc
            if content_type == JSON_PATCH and exc.status == 422 and _failed_test(message):
                raise CliError(
                    f'{word} "{name}" changed between the plugin\'s read and its write (the '
                    "patch's test failed): run the command again"
                ) from exc
            raise self.api_error(exc, f'patch {word} "{name}"') from exc

    def patch_rollout(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """A JSON merge patch on the Rollout (not its status)."""
        return self.patch_object(ROLLOUTS, namespace, name, patch)

    def watch_rollout(
        self, namespace: str, name: str, resource_version: str, stream_seconds: int
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        return self.watch_object(ROLLOUTS, namespace, name, resource_version, stream_seconds)

    def watch_object(
        self, plural: str, namespace: str, name: str, resource_version: str, stream_seconds: int
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(type, object)`` for changes of one ``plural`` object after ``resource_version``,
        for at most ``stream_seconds`` (the server ends the stream; the caller watches again).

        Raises the adapters' ``KubeError`` (status 410 when the version is too old to watch
        from)."""
        return self.kube.watch(_ours(plural), namespace, name, resource_version, stream_seconds)

    # ---------------------------------------------------------------- around a Rollout

    def rollout_events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """The core/v1 events about the Rollout ``name``."""
        return self.object_events(ROLLOUTS, namespace, name)

    def object_events(
        self, plural: str, namespace: str, name: str, uid: str | None = None
    ) -> list[dict[str, Any]]:
        """The core/v1 events about the ``plural`` object ``name``; with its ``uid``, about
        this object only, not an earlier one of the same name that was deleted."""
        try:
            return self.kube.events(namespace, KINDS[plural], name, uid)
        except KubeError as exc:
            raise self.api_error(exc, f'list events of {KIND_WORDS[plural]} "{name}"') from exc

    def _list(
        self, resource: Resource, namespace: str, selector: str
    ) -> list[dict[str, Any]] | None:
        """Objects matching ``selector``; None when the server does not serve the type."""
        try:
            return self.kube.list(resource, namespace, selector)
        except NotFound:
            return None
        except KubeError as exc:
            raise self.api_error(exc, f"list {resource.plural}") from exc

    def revision_deployments(self, rollout: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The Deployments of the Rollout's revisions (labelled ``rollwise.dev/rollout`` and
        controlled by the Rollout, as the operator makes them)."""
        meta = _as_dict(rollout.get("metadata"))
        namespace = str(meta.get("namespace") or self.namespace)
        found = self._list(DEPLOYMENTS, namespace, f"{ROLLOUT_LABEL}={meta.get('name', '')}")
        uid = str(meta.get("uid") or "")
        return [d for d in found or [] if controlled_by(d, uid)]

    def workloads(self, rollout: Mapping[str, Any]) -> Workloads:
        """The revision Deployments of the Rollout, their ReplicaSets and their pods (by
        revision label, then owner references: another Rollout's pods of the same template
        are not mistaken for these)."""
        deployments = self.revision_deployments(rollout)
        namespace = str(_as_dict(rollout.get("metadata")).get("namespace") or self.namespace)
        revisions = sorted({rev for d in deployments if (rev := _labels(d).get(REVISION_LABEL))})
        if not revisions:
            return Workloads(deployments, [], [])
        selector = f"{REVISION_LABEL} in ({','.join(revisions)})"
        owners = {str(_as_dict(d.get("metadata")).get("uid")) for d in deployments}
        replica_sets = self._list(REPLICASETS, namespace, selector)
        if replica_sets is not None:
            replica_sets = [rs for rs in replica_sets if any(controlled_by(rs, u) for u in owners)]
        pods = self._list(PODS, namespace, selector)
        if pods is not None and replica_sets is not None:
            sets = {str(_as_dict(rs.get("metadata")).get("uid")) for rs in replica_sets}
            pods = [p for p in pods if any(controlled_by(p, u) for u in sets)]
        return Workloads(deployments, replica_sets, pods)

    def patch_deployment(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """A JSON merge patch on a Deployment; returns it as stored."""
        try:
            return self.kube.merge_patch(DEPLOYMENTS, namespace, name, patch)
        except NotFound as exc:
            raise CliError(f'deployment "{name}" not found in namespace "{namespace}"') from exc
        except KubeError as exc:
            raise self.api_error(exc, f'patch deployment "{name}"') from exc

    def actual_weight(self, rollout: dict[str, Any]) -> ActualWeight | None:
        """The canary weight the Rollout's traffic router reports, read the way the operator
        reads it (the same router adapters); None when there is no canary to weigh."""
        from rollwise.adapters.errors import AdapterError  # noqa: PLC0415 - see module doc
        from rollwise.adapters.traffic.base import RouterContext  # noqa: PLC0415
        from rollwise.adapters.traffic.registry import router_for  # noqa: PLC0415
        from rollwise.adapters.workloads import deployment_name  # noqa: PLC0415
        from rollwise.cli.render import ActualWeight  # noqa: PLC0415
        from rollwise.core.spec import TrafficRouting  # noqa: PLC0415

        meta = rollout.get("metadata") or {}
        spec = rollout.get("spec") or {}
        status = rollout.get("status") or {}
        canary_spec = (spec.get("strategy") or {}).get("canary") or {}
        stable, canary = status.get("stableRevision"), status.get("canaryRevision")
        if not stable or not canary:
            return None
        try:
            routing = (
                TrafficRouting.model_validate(canary_spec["trafficRouting"])
                if canary_spec.get("trafficRouting")
                else None
            )
        except ValueError:
            return None
        name = str(meta.get("name", ""))
        if routing is not None and routing.gateway_api is not None:
            source = f"HTTPRoute {routing.gateway_api.http_route.name}"
        elif routing is not None and routing.istio is not None:
            source = f"VirtualService {routing.istio.virtual_service.name}"
        else:
            source = "replica ratio"
        context = RouterContext(
            namespace=str(meta.get("namespace", self.namespace)),
            rollout=name,
            stable_service=str(canary_spec.get("stableService", "")),
            canary_service=str(canary_spec.get("canaryService", "")),
            replicas=int(spec.get("replicas", 1)),
            stable_deployment=deployment_name(name, str(stable)),
            canary_deployment=deployment_name(name, str(canary)),
        )
        try:
            router = router_for(routing, context, self.kube)
            weight = router.get_weight()
        except AdapterError as exc:
            return ActualWeight(None, source, exc.message.splitlines()[0][:200])
        return ActualWeight(weight, source, "" if weight is not None else "routes disagree")


__all__ = [
    "GROUP",
    "JSON_PATCH",
    "KINDS",
    "KIND_WORDS",
    "MERGE_PATCH",
    "MODELRELEASES",
    "REVISION_LABEL",
    "ROLLOUTS",
    "ROLLOUT_LABEL",
    "VERSION",
    "CliError",
    "Cluster",
    "NotServed",
    "Refused",
    "Workloads",
    "controlled_by",
]
