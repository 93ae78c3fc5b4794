"""Plain-dict access to the Kubernetes API, with every failure mapped to ``adapters.errors``:
the one Kubernetes gateway of the operator and of the ``kubectl rollwise`` plugin.

The official ``kubernetes`` client is synchronous; the runtime calls adapters from its asyncio
loop through ``asyncio.to_thread``. Objects go in and come out as the JSON dicts the API
server speaks: the typed models of the client validate bodies against the client's own
schema version and would refuse a pod template field newer than the client, while a Rollout
template is the user's and is passed through untouched. Requests go to the object's path
(``/apis/apps/v1/namespaces/shop/deployments/web``) through the client's ``ApiClient``, for
any resource, core group or not (``KubeAPI`` says why not through the typed API classes).

Error mapping (the status code of the API server's answer): 404 ``NotFound``; 409
``Conflict`` (retryable); 401/403 ``Forbidden``; 400/422 ``Invalid``; 429 and 5xx
``Unavailable`` (retryable, with the server's ``Retry-After``); connection failures and
timeouts ``Unavailable`` (with no status); anything else ``KubeError``. Each error keeps the
server's own sentence (``answer``) and, for a 404, the object its Status names (``named``;
empty when the resource type itself is not served).

Reads of a reconcile pass go through ``PassView`` (each object read at most once per pass),
which first asks the ``WatchCache`` the runtime's watches feed, when the pass was given one
(``KubeAPI.pass_view(cache)``); ``WatchCache`` says why that is as safe as reading the server.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from kubernetes.client.exceptions import ApiException

from rollwise import GROUP, VERSION
from rollwise import ROLLOUTS as ROLLOUT_PLURAL
from rollwise.adapters.errors import KubeError, NotFound
from rollwise.adapters.kube_status import (
    discard,
    error_from_status,
    kube_errors,
    translate,
    unreachable,
)
from rollwise.adapters.resources import Resource, copy_json
from rollwise.adapters.watch_cache import Key, WatchCache

#: Content type of a JSON merge patch (RFC 7386); the client's default is a JSON patch.
MERGE_PATCH = "application/merge-patch+json"

#: Seconds one API request may take before it counts as ``Unavailable``.
DEFAULT_TIMEOUT = 10.0


DEPLOYMENTS = Resource("apps", "v1", "deployments")
SERVICES = Resource("", "v1", "services")
HTTPROUTES = Resource("gateway.networking.k8s.io", "v1", "httproutes")
VIRTUALSERVICES = Resource("networking.istio.io", "v1", "virtualservices")
ROLLOUTS = Resource(GROUP, VERSION, ROLLOUT_PLURAL)
CONFIGMAPS = Resource("", "v1", "configmaps")
EVENTS = Resource("", "v1", "events")


def resource_path(resource: Resource, namespace: str | None = None, name: str | None = None) -> str:
    """The API path of a collection or an object: ``/api/v1/namespaces/shop/pods``,
    ``/apis/rollwise.dev/v1alpha1/namespaces/shop/rollouts/demo`` (no namespace: across all
    namespaces, or a cluster-scoped resource)."""
    group, version = resource.group, resource.version
    path = f"/apis/{group}/{version}" if group else f"/api/{version}"
    if namespace is not None:
        path += f"/namespaces/{quote(namespace, safe='')}"
    path += f"/{resource.plural}"
    if name is not None:
        path += f"/{quote(name, safe='')}"
    return path


def _as_dict(value: object) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else {}


class KubeAPI:
    """Get, list, create, patch, delete and watch objects as dicts, by API path.

    Every call goes through the ``ApiClient``'s own request (``param_serialize``,
    ``call_api``) to the object's path (:func:`resource_path`), never through the client's
    typed API classes: importing ``CoreV1Api`` builds the models of the whole core group, a
    good part of a second that a caller reading a few objects (the plugin) need not pay, and
    the typed classes serve one resource each where one path serves any. ``request`` is the
    one transport; the rest says what to ask."""

    def __init__(self, api_client: Any, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.api_client = api_client
        self.timeout = timeout

    # ------------------------------------------------------------------ transport

    def _send(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        content_type: str | None = None,
        timeout: float | tuple[float, float] | None = None,
    ) -> Any:
        """Sends one request; returns the client's unread answer (``RESTResponse``)."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        method_, url, headers_, body_, _ = self.api_client.param_serialize(
            method,
            path,
            query_params=list(query),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        return self.api_client.call_api(
            method_,
            url,
            header_params=headers_,
            body=body_,
            _request_timeout=self.timeout if timeout is None else timeout,
        )

    def request(
        self,
        method: str,
        path: str,
        what: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        content_type: str | None = None,
    ) -> dict[str, Any]:
        """One request and the JSON of its answer; any failure (``what`` names the operation)
        raises the ``KubeError`` subclass of the error mapping."""
        with kube_errors(what):
            response = self._send(method, path, query=query, body=body, content_type=content_type)
            try:
                data = response.read()
            finally:
                discard(response)
            if not 200 <= int(response.status) <= 299:
                raise ApiException(http_resp=response)
        try:
            return _as_dict(json.loads(data or b"{}"))
        except ValueError as exc:
            raise KubeError(
                f"{what}: the API server answered with no JSON", status=int(response.status)
            ) from exc

    # ------------------------------------------------------------------ objects

    def serves(self, resource: Resource) -> bool:
        """Whether the API server serves ``resource`` (for a custom resource: whether its CRD
        is installed), by the discovery document of its group and version."""
        path = f"/apis/{resource.group}/{resource.version}" if resource.group else "/api/v1"
        try:
            found = self.request("GET", path, f"discover {resource.group}/{resource.version}")
        except NotFound:
            return False
        resources = found.get("resources") or []
        return any(isinstance(r, dict) and r.get("name") == resource.plural for r in resources)

    def events(
        self, namespace: str, kind: str, name: str, uid: str | None = None
    ) -> list[dict[str, Any]]:
        """The core/v1 events about the ``kind`` object ``name``; with its ``uid``, about this
        object only, not an earlier one of the same name that was deleted."""
        selector = f"involvedObject.name={name},involvedObject.kind={kind}"
        if uid:
            selector += f",involvedObject.uid={uid}"
        return self.list(EVENTS, namespace, field_selector=selector)

    def get(self, resource: Resource, namespace: str, name: str) -> dict[str, Any]:
        path = resource_path(resource, namespace, name)
        return self.request("GET", path, f"get {resource} {namespace}/{name}")

    def get_cluster_scoped(self, resource: Resource, name: str) -> dict[str, Any]:
        """A cluster-scoped object (a ``ClusterAnalysisTemplate``)."""
        return self.request("GET", resource_path(resource, None, name), f"get {resource} {name}")

    def get_or_none(self, resource: Resource, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self.get(resource, namespace, name)
        except NotFound:
            return None

    def list(
        self,
        resource: Resource,
        namespace: str | None,
        label_selector: str | None = None,
        *,
        field_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        """The objects in ``namespace`` (None: in every namespace) matching the selectors."""
        query = [("labelSelector", label_selector)] if label_selector else []
        if field_selector:
            query.append(("fieldSelector", field_selector))
        where = f"in {namespace}" if namespace is not None else "in all namespaces"
        listing = self.request(
            "GET", resource_path(resource, namespace), f"list {resource} {where}", query=query
        )
        items = listing.get("items") or []
        return [_as_dict(item) for item in items if isinstance(item, dict)]

    def create(self, resource: Resource, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        name = (body.get("metadata") or {}).get("name", "?")
        return self.request(
            "POST",
            resource_path(resource, namespace),
            f"create {resource} {namespace}/{name}",
            body=body,
        )

    def create_cluster_scoped(self, resource: Resource, body: dict[str, Any]) -> dict[str, Any]:
        """Creates a cluster-scoped object (``Conflict`` when the name is taken)."""
        name = (body.get("metadata") or {}).get("name", "?")
        return self.request("POST", resource_path(resource), f"create {resource} {name}", body=body)

    def merge_patch(
        self, resource: Resource, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        """A JSON merge patch; a ``metadata.resourceVersion`` in ``patch`` makes it conditional
        (409 ``Conflict`` when the object changed since that version)."""
        return self.patch(resource, namespace, name, patch)

    def patch(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        patch: Any,
        content_type: str = MERGE_PATCH,
    ) -> dict[str, Any]:
        """A patch of ``content_type`` (a JSON merge patch unless it says otherwise: a JSON
        patch's ``test`` operations make it conditional too); the object as stored."""
        return self.request(
            "PATCH",
            resource_path(resource, namespace, name),
            f"patch {resource} {namespace}/{name}",
            body=patch,
            content_type=content_type,
        )

    def delete(self, resource: Resource, namespace: str, name: str) -> bool:
        """Deletes the object (background propagation); False when it was already gone."""
        try:
            self.request(
                "DELETE",
                resource_path(resource, namespace, name),
                f"delete {resource} {namespace}/{name}",
                query=[("propagationPolicy", "Background")],
            )
        except NotFound:
            return False
        return True

    def watch(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        resource_version: str,
        stream_seconds: int,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(type, object)`` for the changes of one object after ``resource_version``, for at
        most ``stream_seconds`` (the server ends the stream; the caller watches again).
        Bookmarks are passed over; an ``ERROR`` event raises its code's ``KubeError`` (a 410:
        the version is too old to watch from)."""
        what = f"watch {resource} {namespace}/{name}"
        query = [
            ("watch", "true"),
            ("fieldSelector", f"metadata.name={name}"),
            ("resourceVersion", resource_version),
            ("timeoutSeconds", str(stream_seconds)),
            ("allowWatchBookmarks", "true"),
        ]
        with kube_errors(what):
            response = self._send(
                "GET",
                resource_path(resource, namespace),
                query=query,
                timeout=(self.timeout, stream_seconds + self.timeout),
            )
        raw = response.response
        try:
            if not 200 <= int(response.status) <= 299:
                with kube_errors(what):
                    response.read()
                    raise ApiException(http_resp=response)
            lines = _lines(raw)
            while True:
                with kube_errors(what):
                    line = next(lines, None)
                if line is None:
                    return
                event = json.loads(line)
                kind = str(event.get("type"))
                obj = event.get("object")
                if kind == "ERROR" and isinstance(obj, dict):
                    raise error_from_status(
                        int(obj.get("code") or 500),
                        f"{what}: {obj.get('message') or obj.get('reason') or 'error'}",
                        answer=str(obj.get("message") or obj.get("reason") or ""),
                    )
                if isinstance(obj, dict) and kind != "BOOKMARK":
                    yield kind, obj
        finally:
            # A stream left before its end holds unread data: close the connection rather
            # than hand it back to the pool for the next request to read garbage from.
            raw.close()
            raw.release_conn()

    def pass_view(self, cache: WatchCache | None = None) -> PassView:
        """A read view for one reconcile pass over the same connection (see ``PassView``); it
        serves reads from ``cache`` (the ``WatchCache`` the runtime's watches feed), if any."""
        return PassView(self.api_client, timeout=self.timeout, cache=cache)


def _lines(response: Any) -> Iterator[bytes]:
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


class PassView(KubeAPI):
    """``KubeAPI`` for one reconcile pass: each object is read from the API server at most once.

    A pass observes the Rollout's Deployments, Services and route, then acts on the same
    objects; without this view every action re-read what the observation had just read. Here
    a ``get`` (found or not), each item of a ``list`` and the answer of every write are kept for
    the rest of the pass, and served as copies (callers may edit what they get). Nothing is
    kept across passes by the view itself: each pass builds a new one. With a ``WatchCache``
    (see there for why it is as safe as a read from the server), a read the pass has not made
    yet is first looked up in the cache, and whatever the view reads or writes is fed back
    into it. Writes stay as safe as before: conditional patches carry the resourceVersion the
    pass read and fail with ``Conflict`` when the object changed meanwhile, and a failed write
    forgets the object (here and in the cache) so that a retry reads it again. Thread-safe: a
    pass observes from several threads.
    """

    def __init__(
        self,
        api_client: Any,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        cache: WatchCache | None = None,
    ) -> None:
        super().__init__(api_client, timeout=timeout)
        self.cache = cache
        self._seen: dict[Key, dict[str, Any] | None] = {}
        self._lock = threading.Lock()
        self.requests_saved = 0

    def _remember(
        self,
        resource: Resource,
        namespace: str,
        obj: dict[str, Any] | None,
        name: str | None = None,
        *,
        owned: bool = False,
    ) -> None:
        """Keeps ``obj`` for the pass (``owned``: the view may keep it without a copy)."""
        key_name = name if name is not None else ((obj or {}).get("metadata") or {}).get("name")
        if key_name:
            kept = obj if owned or obj is None else copy_json(obj)
            with self._lock:
                self._seen[(resource, namespace, str(key_name))] = kept

    def _forget(self, resource: Resource, namespace: str, name: str) -> None:
        with self._lock:
            self._seen.pop((resource, namespace, name), None)
        if self.cache is not None:
            self.cache.forget(resource, namespace, name)

    def _recall(self, resource: Resource, namespace: str, name: str) -> tuple[bool, Any]:
        with self._lock:
            key = (resource, namespace, name)
            if key not in self._seen:
                return False, None
            self.requests_saved += 1
            return True, copy_json(self._seen[key])

    def _confirmed(self, resource: Resource, obj: Mapping[str, Any]) -> None:
        if self.cache is not None:
            self.cache.observe(resource, obj, confirmed=True)

    def get(self, resource: Resource, namespace: str, name: str) -> dict[str, Any]:
        known, obj = self._recall(resource, namespace, name)
        if known:
            if obj is None:
                raise NotFound(f"{resource} {namespace}/{name} not found", status=404)
            return dict(obj)
        cached = self.cache.lookup(resource, namespace, name) if self.cache is not None else None
        if cached is not None:
            self.requests_saved += 1
            found = copy_json(cached)
            self._remember(resource, namespace, copy_json(found), name, owned=True)
            return dict(found)
        try:
            found = super().get(resource, namespace, name)
        except NotFound:
            self._remember(resource, namespace, None, name)
            raise
        self._remember(resource, namespace, found, name)
        self._confirmed(resource, found)
        return found

    def list(
        self,
        resource: Resource,
        namespace: str | None,
        label_selector: str | None = None,
        *,
        field_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        if namespace is None or field_selector:  # not what a pass reads: straight through
            return super().list(resource, namespace, label_selector, field_selector=field_selector)
        if self.cache is not None:
            cached = self.cache.listing(resource, namespace, label_selector)
            if cached is not None:
                self.requests_saved += 1
                items = [copy_json(item) for item in cached]
                for item in items:
                    self._remember(resource, namespace, item)
                return items
        items = super().list(resource, namespace, label_selector)
        for item in items:
            self._remember(resource, namespace, item)
            self._confirmed(resource, item)
        if self.cache is not None:
            self.cache.primed(resource, namespace, label_selector)
        return items

    def create(self, resource: Resource, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        name = str((body.get("metadata") or {}).get("name", ""))
        try:
            created = super().create(resource, namespace, body)
        except KubeError:
            self._forget(resource, namespace, name)
            raise
        self._remember(resource, namespace, created, name)
        self._confirmed(resource, created)
        return created

    def patch(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        patch: Any,
        content_type: str = MERGE_PATCH,
    ) -> dict[str, Any]:
        try:
            patched = super().patch(resource, namespace, name, patch, content_type)
        except KubeError:
            self._forget(resource, namespace, name)
            raise
        self._remember(resource, namespace, patched, name)
        self._confirmed(resource, patched)
        return patched

    def delete(self, resource: Resource, namespace: str, name: str) -> bool:
        # A deleted object may linger (finalizers): the next pass reads it again.
        with self._lock:
            self._seen.pop((resource, namespace, name), None)
        try:
            return super().delete(resource, namespace, name)
        finally:
            with self._lock:
                self._seen.pop((resource, namespace, name), None)
            if self.cache is not None:
                self.cache.deleted(resource, namespace, name)


__all__ = [
    "CONFIGMAPS",
    "DEPLOYMENTS",
    "EVENTS",
    "HTTPROUTES",
    "MERGE_PATCH",
    "ROLLOUTS",
    "SERVICES",
    "VIRTUALSERVICES",
    "KubeAPI",
    "PassView",
    "discard",
    "error_from_status",
    "kube_errors",
    "resource_path",
    "translate",
    "unreachable",
]
