"""Plain-dict access to the Kubernetes API, with every failure mapped to ``adapters.errors``.

The official ``kubernetes`` client is synchronous; the runtime calls adapters from its asyncio
loop through ``asyncio.to_thread``. Objects go in and come out as the JSON dicts the API
server speaks: the typed models of the client validate bodies against the client's own
schema version and would refuse a pod template field newer than the client, while a Rollout
template is the user's and is passed through untouched. Resources under ``/apis`` go through
``CustomObjectsApi`` (a generic path, Deployments included); the one core resource the
operator touches, Service, through ``CoreV1Api`` with raw responses.

Error mapping (the status code of the API server's answer): 404 ``NotFound``; 409
``Conflict`` (retryable); 401/403 ``Forbidden``; 400/422 ``Invalid``; 429 and 5xx
``Unavailable`` (retryable, with the server's ``Retry-After``); connection failures and
timeouts ``Unavailable``; anything else ``KubeError``.

Reads of a reconcile pass go through ``PassView`` (each object read at most once per pass),
which first asks the ``WatchCache`` the runtime's watches feed, when the pass was given one
(``KubeAPI.pass_view(cache)``); ``WatchCache`` says why that is as safe as reading the server.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from rollwise import GROUP, VERSION
from rollwise import ROLLOUTS as ROLLOUT_PLURAL
from rollwise.adapters.errors import (
    Conflict,
    Forbidden,
    Invalid,
    KubeError,
    NotFound,
    Unavailable,
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


def _status_message(exc: ApiException) -> str:
    """The ``message`` of the API server's Status body, else the HTTP reason."""
    body = exc.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body:
        try:
            parsed = json.loads(body)
        except ValueError:
            return body.strip()[:500]
        if isinstance(parsed, dict) and parsed.get("message"):
            return str(parsed["message"])
    return str(exc.reason or "no reason given")


def _retry_after(exc: ApiException) -> float | None:
    headers = getattr(exc, "headers", None) or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def error_from_status(
    status: int | None, message: str, retry_after: float | None = None
) -> KubeError:
    """The ``KubeError`` subclass for an HTTP status of the API server."""
    if status == 404:
        return NotFound(message, status=status)
    if status == 409:
        return Conflict(message, status=status)
    if status in (401, 403):
        return Forbidden(message, status=status)
    if status in (400, 422):
        return Invalid(message, status=status)
    if status is not None and (status == 429 or status >= 500):
        return Unavailable(message, status=status, retry_after=retry_after)
    return KubeError(message, status=status)


def translate(exc: BaseException, what: str) -> KubeError | None:
    """The adapter error for a client exception raised while doing ``what`` (None: not a
    client failure, let it propagate as the bug it is)."""
    if isinstance(exc, ApiException):
        status = exc.status if isinstance(exc.status, int) and exc.status > 0 else None
        return error_from_status(
            status, f"{what}: {_status_message(exc)} ({status})", _retry_after(exc)
        )
    if unreachable(exc):
        return Unavailable(f"{what}: API server unreachable: {exc}")
    return None


def unreachable(exc: BaseException) -> bool:
    """Whether a client exception means the API server could not be reached (connection,
    TLS, timeout), as opposed to an answer of the server."""
    return isinstance(exc, urllib3.exceptions.HTTPError | OSError | TimeoutError)


@contextmanager
def kube_errors(what: str) -> Iterator[None]:
    """Translates client exceptions raised inside the block (``what`` names the operation)."""
    try:
        yield
    except Exception as exc:
        mapped = translate(exc, what)
        if mapped is None:
            raise
        raise mapped from exc


def discard(response: Any) -> None:
    """Reads and drops the body of a ``_preload_content=False`` answer. Unread, the answer
    keeps its pooled connection, which is then closed when the answer is collected: every such
    call would open a new TCP connection to the API server."""
    _ = getattr(response, "data", None)  # reading ``data`` consumes the body to its end
    release = getattr(response, "release_conn", None)
    if callable(release):
        release()


def _as_dict(value: object) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else {}


class KubeAPI:
    """Get, list, create, merge-patch and delete namespaced objects as dicts."""

    def __init__(self, api_client: Any, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.api_client = api_client
        self.timeout = timeout

    # The client's API classes are built on first use: importing ``CoreV1Api`` builds the
    # models of the whole core group, a good part of a second that a caller reading only
    # custom resources (the plugin's routers) need not pay.
    @functools.cached_property
    def _custom(self) -> Any:
        return client.CustomObjectsApi(self.api_client)

    @functools.cached_property
    def _core(self) -> Any:
        return client.CoreV1Api(self.api_client)

    @staticmethod
    def _check_core(resource: Resource) -> None:
        if resource != SERVICES:
            raise ValueError(f"KubeAPI handles only Services in the core group, not {resource}")

    @staticmethod
    def _json(response: Any) -> dict[str, Any]:
        try:
            return _as_dict(json.loads(response.data or b"{}"))
        finally:
            discard(response)

    def get(self, resource: Resource, namespace: str, name: str) -> dict[str, Any]:
        with kube_errors(f"get {resource} {namespace}/{name}"):
            if resource.group:
                obj = self._custom.get_namespaced_custom_object(
                    resource.group,
                    resource.version,
                    namespace,
                    resource.plural,
                    name,
                    _request_timeout=self.timeout,
                )
                return _as_dict(obj)
            self._check_core(resource)
            return self._json(
                self._core.read_namespaced_service(
                    name, namespace, _preload_content=False, _request_timeout=self.timeout
                )
            )

    def get_cluster_scoped(self, resource: Resource, name: str) -> dict[str, Any]:
        """A cluster-scoped custom object (a ``ClusterAnalysisTemplate``)."""
        with kube_errors(f"get {resource} {name}"):
            obj = self._custom.get_cluster_custom_object(
                resource.group,
                resource.version,
                resource.plural,
                name,
                _request_timeout=self.timeout,
            )
            return _as_dict(obj)

    def get_or_none(self, resource: Resource, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self.get(resource, namespace, name)
        except NotFound:
            return None

    def list(
        self, resource: Resource, namespace: str, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        with kube_errors(f"list {resource} in {namespace}"):
            if resource.group:
                listing = self._custom.list_namespaced_custom_object(
                    resource.group,
                    resource.version,
                    namespace,
                    resource.plural,
                    label_selector=label_selector,
                    _request_timeout=self.timeout,
                )
            else:
                self._check_core(resource)
                listing = self._json(
                    self._core.list_namespaced_service(
                        namespace,
                        label_selector=label_selector,
                        _preload_content=False,
                        _request_timeout=self.timeout,
                    )
                )
        items = _as_dict(listing).get("items") or []
        return [_as_dict(item) for item in items if isinstance(item, dict)]

    def create(self, resource: Resource, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        name = (body.get("metadata") or {}).get("name", "?")
        with kube_errors(f"create {resource} {namespace}/{name}"):
            if resource.group:
                obj = self._custom.create_namespaced_custom_object(
                    resource.group,
                    resource.version,
                    namespace,
                    resource.plural,
                    body,
                    _request_timeout=self.timeout,
                )
                return _as_dict(obj)
            # The operator never creates Services (it points the user's).
            raise ValueError(f"KubeAPI creates only resources under /apis, not {resource}")

    def merge_patch(
        self, resource: Resource, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        """A JSON merge patch; a ``metadata.resourceVersion`` in ``patch`` makes it conditional
        (409 ``Conflict`` when the object changed since that version)."""
        with kube_errors(f"patch {resource} {namespace}/{name}"):
            if resource.group:
                obj = self._custom.patch_namespaced_custom_object(
                    resource.group,
                    resource.version,
                    namespace,
                    resource.plural,
                    name,
                    patch,
                    _content_type=MERGE_PATCH,
                    _request_timeout=self.timeout,
                )
                return _as_dict(obj)
            self._check_core(resource)
            return self._json(
                self._core.patch_namespaced_service(
                    name,
                    namespace,
                    patch,
                    _content_type=MERGE_PATCH,
                    _preload_content=False,
                    _request_timeout=self.timeout,
                )
            )

    def delete(self, resource: Resource, namespace: str, name: str) -> bool:
        """Deletes the object (background propagation); False when it was already gone."""
        try:
            with kube_errors(f"delete {resource} {namespace}/{name}"):
                if resource.group:
                    self._custom.delete_namespaced_custom_object(
                        resource.group,
                        resource.version,
                        namespace,
                        resource.plural,
                        name,
                        propagation_policy="Background",
                        _request_timeout=self.timeout,
                    )
                else:
                    self._check_core(resource)
                    self._core.delete_namespaced_service(
                        name, namespace, _preload_content=False, _request_timeout=self.timeout
                    )
        except NotFound:
            return False
        return True

    def pass_view(self, cache: WatchCache | None = None) -> PassView:
        """A read view for one reconcile pass over the same connection (see ``PassView``); it
        serves reads from ``cache`` (the ``WatchCache`` the runtime's watches feed), if any."""
        return PassView(self.api_client, timeout=self.timeout, cache=cache)


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
        self, resource: Resource, namespace: str, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
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

    def merge_patch(
        self, resource: Resource, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        try:
            patched = super().merge_patch(resource, namespace, name, patch)
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
    "DEPLOYMENTS",
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
    "translate",
    "unreachable",
]
