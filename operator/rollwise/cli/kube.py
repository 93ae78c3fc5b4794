"""The plugin's connection to the API server: the calls it makes, and every
failure turned into one readable line (:class:`CliError`).

How the plugin connects (kubeconfig, context, namespace, in-cluster) is
:mod:`rollwise.cli.connect`.

Requests go through the client's ``ApiClient`` by path (``/apis/apps/v1/namespaces/...``) and
answers are read as the JSON the API server sent, never through the client's typed API
classes: importing ``CoreV1Api`` alone builds the models of the whole core group, most of a
second before the first request, and the views want plain dicts anyway.

Only this module (and :mod:`rollwise.cli.watch`, through :meth:`Cluster.watch_object`)
touches the client; it talks to the API server alone, never to the operator. What an answer
or a client failure means is the adapters' mapping (``adapters.kube``: ``error_from_status``,
``unreachable``), the operator's own; this module only words it for a terminal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from rollwise import ANALYSIS_TEMPLATES, CLUSTER_ANALYSIS_TEMPLATES
from rollwise.adapters.errors import Forbidden
from rollwise.adapters.kube import error_from_status, unreachable
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

#: Patch content types: JSON merge patch (RFC 7386) and JSON patch (RFC 6902).
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"

#: Labels the operator puts on a Rollout's revision Deployments (and, through the pod
#: template, the revision label on their ReplicaSets and pods).
ROLLOUT_LABEL = "rollwise.dev/rollout"
REVISION_LABEL = "rollwise.dev/revision"

T = TypeVar("T")


class ApiStatus(Exception):
    """An answer of the API server other than 2xx: its code and its body (a ``Status``)."""

    def __init__(self, status: int, body: str, reason: str = "") -> None:
        super().__init__(f"HTTP {status}: {body[:200] or reason}")
        self.status = status
        self.body = body
        self.reason = reason

    def parsed(self) -> dict[str, Any]:
        try:
            found = json.loads(self.body) if self.body else None
        except ValueError:
            return {}
        return found if isinstance(found, dict) else {}

    @property
    def message(self) -> str:
        """The server's own sentence (``Status.message``), else the body's first line."""
        message = self.parsed().get("message")
        if message:
            return str(message)
        text = self.body.strip()
        return text.splitlines()[0][:300] if text else (self.reason or "no reason given")

    @property
    def names_object(self) -> bool:
        """Whether a 404 names an object (``details.name``) rather than a missing type."""
        details = self.parsed().get("details")
        return isinstance(details, dict) and bool(details.get("name"))


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


def _items(listing: Mapping[str, Any]) -> list[dict[str, Any]]:
    items = listing.get("items")
    return [dict(i) for i in items or [] if isinstance(i, dict)]


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


def resource_path(
    group: str,
    version: str,
    plural: str,
    namespace: str | None = None,
    name: str | None = None,
) -> str:
    """The API path of a collection or an object: ``/api/v1/namespaces/shop/pods``,
    ``/apis/rollwise.dev/v1alpha1/namespaces/shop/rollouts/demo``."""
    path = f"/apis/{group}/{version}" if group else f"/api/{version}"
    if namespace is not None:
        path += f"/namespaces/{quote(namespace, safe='')}"
    path += f"/{plural}"
    if name is not None:
        path += f"/{quote(name, safe='')}"
    return path


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

    # ---------------------------------------------------------------- transport

    def call(self, what: Callable[[], T]) -> T:
        """Runs one API call, translating transport failures (API errors are the caller's)."""
        try:
            return what()
        except Exception as exc:
            if unreachable(exc):
                raise self.unreachable(exc) from exc
            raise

    def unreachable(self, exc: BaseException) -> CliError:
        return CliError(f"cannot reach the API server at {self.host}: {_errno_text(exc)}")

    def api_error(self, exc: ApiStatus, doing: str) -> CliError:
        """The failure of ``doing`` as one line, classified by the adapters' error mapping."""
        if isinstance(error_from_status(exc.status, exc.message), Forbidden):
            return CliError(f"{doing}: forbidden: {exc.message}")
        return CliError(f"{doing}: {exc.message} (HTTP {exc.status})")

    def _send(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        content_type: str | None = None,
        timeout: float | tuple[float, float] = REQUEST_TIMEOUT,
    ) -> Any:
        """Sends one request; returns the client's unread response (status checked by the
        caller)."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        method_, url, headers_, body_, _ = self.api.param_serialize(
            method,
            path,
            query_params=list(query),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        return self.call(
            lambda: self.api.call_api(
                method_, url, header_params=headers_, body=body_, _request_timeout=timeout
            )
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        content_type: str | None = None,
    ) -> dict[str, Any]:
        """One request and its JSON answer; :class:`ApiStatus` for any non-2xx answer."""
        response = self._send(method, path, query=query, body=body, content_type=content_type)
        data = self.call(response.read)
        status = int(response.status)
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data or "")
        if not 200 <= status <= 299:
            raise ApiStatus(status, text, str(response.reason or ""))
        try:
            return _as_dict(json.loads(text or "{}"))
        except ValueError as exc:
            raise CliError(
                f"the API server at {self.host} answered {method} {path} with no JSON"
            ) from exc

    def served(self, plural: str) -> bool:
        """Whether the API server serves ``plural.rollwise.dev`` (its CRD is installed)."""
        try:
            found = self.request("GET", f"/apis/{GROUP}/{VERSION}")
        except ApiStatus as exc:
            if exc.status == 404:
                return False
            raise self.api_error(exc, f"discover {GROUP}/{VERSION}") from exc
        resources = found.get("resources") or []
        return any(isinstance(r, dict) and r.get("name") == plural for r in resources)

    # ---------------------------------------------------------------- Rollouts, ModelReleases

    def get_object(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        """One ``plural`` object (``rollouts`` or ``modelreleases``)."""
        word = KIND_WORDS[plural]
        try:
            return self.request("GET", resource_path(GROUP, VERSION, plural, namespace, name))
        except ApiStatus as exc:
            if exc.status == 404:
                if not exc.names_object and not self.served(plural):
                    raise _crd_missing(plural) from exc
                raise CliError(f'{word} "{name}" not found in namespace "{namespace}"') from exc
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
            plural = CLUSTER_ANALYSIS_TEMPLATES if key.cluster_scope else ANALYSIS_TEMPLATES
            where = None if key.cluster_scope else namespace
            try:
                body = self.request("GET", resource_path(GROUP, VERSION, plural, where, key.name))
            except ApiStatus as exc:
                found[key] = None if exc.status == 404 else exc.message
                continue
            spec = body.get("spec")
            found[key] = spec if isinstance(spec, dict) else {}
        return found

    def list_objects(self, plural: str, namespace: str | None) -> list[dict[str, Any]]:
        """Every ``plural`` object in ``namespace`` (None: all namespaces)."""
        try:
            listing = self.request("GET", resource_path(GROUP, VERSION, plural, namespace))
        except ApiStatus as exc:
            if exc.status == 404:
                raise _crd_missing(plural) from exc
            raise self.api_error(exc, f"list {plural}") from exc
        return _items(listing)

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
            return self.request(
                "PATCH",
                resource_path(GROUP, VERSION, plural, namespace, name),
                body=patch,
                content_type=content_type,
            )
        except ApiStatus as exc:
            if exc.status == 404:
                raise CliError(f'{word} "{name}" not found in namespace "{namespace}"') from exc
            message = exc.message
            # kopf answers a refusal with code 500 unless its handler says otherwise: the
            # API server's wording, not the code, tells a webhook's refusal.
            if plural == MODELRELEASES and (
                exc.status in (400, 403, 422) or "denied the request" in message
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

        Raises :class:`ApiStatus` 410 when the version is too old to watch from."""
        query = [
            ("watch", "true"),
            ("fieldSelector", f"metadata.name={name}"),
            ("resourceVersion", resource_version),
            ("timeoutSeconds", str(stream_seconds)),
            ("allowWatchBookmarks", "true"),
        ]
        response = self._send(
            "GET",
            resource_path(GROUP, VERSION, plural, namespace),
            query=query,
            timeout=(REQUEST_TIMEOUT, stream_seconds + REQUEST_TIMEOUT),
        )
        raw = response.response
        try:
            status = int(response.status)
            if not 200 <= status <= 299:
                data = self.call(response.read)
                text = data.decode("utf-8", "replace") if isinstance(data, bytes) else ""
                raise ApiStatus(status, text, str(response.reason or ""))
            lines = list_lines(raw)
            while True:
                line = self.call(lambda: next(lines, None))
                if line is None:
                    return
                event = json.loads(line)
                kind = str(event.get("type"))
                obj = event.get("object")
                if kind == "ERROR" and isinstance(obj, dict):
                    raise ApiStatus(
                        int(obj.get("code") or 500), json.dumps(obj), str(obj.get("reason", ""))
                    )
                if isinstance(obj, dict) and kind != "BOOKMARK":
                    yield kind, obj
        finally:
            # A stream left before its end holds unread data: close the connection rather
            # than hand it back to the pool for the next request to read garbage from.
            raw.close()
            raw.release_conn()

    # ---------------------------------------------------------------- around a Rollout

    def rollout_events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """The core/v1 events about the Rollout ``name``."""
        return self.object_events(ROLLOUTS, namespace, name)

    def object_events(
        self, plural: str, namespace: str, name: str, uid: str | None = None
    ) -> list[dict[str, Any]]:
        """The core/v1 events about the ``plural`` object ``name``; with its ``uid``, about
        this object only, not an earlier one of the same name that was deleted."""
        selector = f"involvedObject.name={name},involvedObject.kind={KINDS[plural]}"
        if uid:
            selector += f",involvedObject.uid={uid}"
        try:
            listing = self.request(
                "GET",
                resource_path("", "v1", "events", namespace),
                query=[("fieldSelector", selector)],
            )
        except ApiStatus as exc:
            raise self.api_error(exc, f'list events of {KIND_WORDS[plural]} "{name}"') from exc
        return _items(listing)

    def _list(
        self, group: str, version: str, plural: str, namespace: str, selector: str
    ) -> list[dict[str, Any]] | None:
        """Objects matching ``selector``; None when the server does not serve the type."""
        try:
            listing = self.request(
                "GET",
                resource_path(group, version, plural, namespace),
                query=[("labelSelector", selector)],
            )
        except ApiStatus as exc:
            if exc.status == 404:
                return None
            raise self.api_error(exc, f"list {plural}") from exc
        return _items(listing)

    def revision_deployments(self, rollout: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The Deployments of the Rollout's revisions (labelled ``rollwise.dev/rollout`` and
        controlled by the Rollout, as the operator makes them)."""
        meta = _as_dict(rollout.get("metadata"))
        namespace = str(meta.get("namespace") or self.namespace)
        found = self._list(
            "apps", "v1", "deployments", namespace, f"{ROLLOUT_LABEL}={meta.get('name', '')}"
        )
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
        replica_sets = self._list("apps", "v1", "replicasets", namespace, selector)
        if replica_sets is not None:
            replica_sets = [rs for rs in replica_sets if any(controlled_by(rs, u) for u in owners)]
        pods = self._list("", "v1", "pods", namespace, selector)
        if pods is not None and replica_sets is not None:
            sets = {str(_as_dict(rs.get("metadata")).get("uid")) for rs in replica_sets}
            pods = [p for p in pods if any(controlled_by(p, u) for u in sets)]
        return Workloads(deployments, replica_sets, pods)

    def patch_deployment(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """A JSON merge patch on a Deployment; returns it as stored."""
        try:
            return self.request(
                "PATCH",
                resource_path("apps", "v1", "deployments", namespace, name),
                body=patch,
                content_type=MERGE_PATCH,
            )
        except ApiStatus as exc:
            if exc.status == 404:
                raise CliError(f'deployment "{name}" not found in namespace "{namespace}"') from exc
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
            router = router_for(routing, context, _router_reads(self))
            weight = router.get_weight()
        except AdapterError as exc:
            return ActualWeight(None, source, exc.message.splitlines()[0][:200])
        return ActualWeight(weight, source, "" if weight is not None else "routes disagree")


def _router_reads(cluster: Cluster) -> Any:
    """The operator's ``KubeAPI`` for the routers' reads, its ``get`` served by the plugin's
    own requests: the client's ``CustomObjectsApi``, which ``KubeAPI`` reads with, costs a
    good part of a second to import on a busy machine, for the one or two objects a router
    reads here."""
    from rollwise.adapters.kube import KubeAPI, error_from_status  # noqa: PLC0415
    from rollwise.adapters.resources import Resource  # noqa: PLC0415

    class RouterReads(KubeAPI):
        def get(self, resource: Resource, namespace: str, name: str) -> dict[str, Any]:
            path = resource_path(resource.group, resource.version, resource.plural, namespace, name)
            try:
                return cluster.request("GET", path)
            except ApiStatus as exc:
                what = f"get {resource} {namespace}/{name}"
                raise error_from_status(exc.status, f"{what}: {exc.message}") from exc
            except CliError as exc:  # unreachable: the router reports it as its own failure
                raise error_from_status(503, str(exc)) from exc

    return RouterReads(cluster.api, timeout=REQUEST_TIMEOUT)


def list_lines(response: Any) -> Iterator[bytes]:
    """The lines of a streamed answer, each as soon as it arrived (a watch's events)."""
    buffer = bytearray()
    for segment in response.stream(amt=None, decode_content=False):
        buffer.extend(segment if isinstance(segment, bytes) else str(segment).encode())
        while (end := buffer.find(b"\n")) != -1:
            line = bytes(buffer[:end]).strip()
            del buffer[: end + 1]
            if line:
                yield line
    if buffer.strip():
        yield bytes(buffer).strip()


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
    "ApiStatus",
    "CliError",
    "Cluster",
    "NotServed",
    "Refused",
    "Workloads",
    "controlled_by",
    "list_lines",
    "resource_path",
]
