"""Plumbing shared by the lab's own parts: a small Kubernetes HTTP client with list+watch
informers, and an asyncio loop running in a background thread.

The lab controller and the traffic generator talk to the lab cluster's kube-apiserver over
HTTPS exactly as a controller in a cluster would, with the administrator's token. The client
understands the subset of the API the lab needs: get, list, create, merge-patch (also on
``/status``), and watch as newline-delimited JSON events.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import json
import logging
import ssl
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import yaml

log = logging.getLogger(__name__)

T = TypeVar("T")


class ApiError(Exception):
    """A non-2xx answer from the API server, with its HTTP status and Status body."""

    def __init__(self, status: int, body: Any) -> None:
        message = body.get("message") if isinstance(body, dict) else str(body)
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.body = body


@dataclass(frozen=True)
class Resource:
    """A REST resource: API group ("" for core), version and plural name."""

    group: str
    version: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None = None, name: str | None = None, sub: str = "") -> str:
        base = f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        if sub:
            base += f"/{sub}"
        return base


DEPLOYMENTS = Resource("apps", "v1", "deployments")
SERVICES = Resource("", "v1", "services")
NAMESPACES = Resource("", "v1", "namespaces", namespaced=False)
HTTPROUTES = Resource("gateway.networking.k8s.io", "v1", "httproutes")
VIRTUALSERVICES = Resource("networking.istio.io", "v1", "virtualservices")
INFERENCESERVICES = Resource("serving.kserve.io", "v1beta1", "inferenceservices")
CRDS = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", namespaced=False)


@dataclass(frozen=True)
class KubeEndpoint:
    """Where the API server is and how to authenticate to it."""

    url: str
    token: str | None = None
    ca_file: str | None = None
    insecure: bool = False
    #: PEM of the CA (the kubeconfig's ``certificate-authority-data``, decoded).
    ca_data: str | None = None

    @classmethod
    def from_kubeconfig(cls, path: str | Path) -> KubeEndpoint:
        """The current context's server and bearer token (the lab writes token kubeconfigs)."""
        config = yaml.safe_load(Path(path).read_text())
        context_name = config.get("current-context")
        contexts = {c["name"]: c["context"] for c in config.get("contexts", [])}
        context = contexts[context_name] if context_name else next(iter(contexts.values()))
        clusters = {c["name"]: c["cluster"] for c in config.get("clusters", [])}
        users = {u["name"]: u.get("user") or {} for u in config.get("users", [])}
        cluster = clusters[context["cluster"]]
        user = users.get(context.get("user", ""), {})
        ca_data = cluster.get("certificate-authority-data")
        return cls(
            url=cluster["server"].rstrip("/"),
            token=user.get("token"),
            ca_file=cluster.get("certificate-authority"),
            insecure=bool(cluster.get("insecure-skip-tls-verify", False)),
            ca_data=base64.b64decode(ca_data).decode() if ca_data else None,
        )


class KubeHTTP:
    """An async client for the handful of API calls the simulators make."""

    def __init__(self, endpoint: KubeEndpoint) -> None:
        self.endpoint = endpoint
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            headers = {"Accept": "application/json"}
            if self.endpoint.token:
                headers["Authorization"] = f"Bearer {self.endpoint.token}"
            ssl_context: ssl.SSLContext | bool = True
            if self.endpoint.insecure:
                ssl_context = False
            elif self.endpoint.ca_file or self.endpoint.ca_data:
                ssl_context = ssl.create_default_context(
                    cafile=self.endpoint.ca_file, cadata=self.endpoint.ca_data
                )
            connector = aiohttp.TCPConnector(ssl=ssl_context, limit=32)
            self._session = aiohttp.ClientSession(
                base_url=self.endpoint.url, headers=headers, connector=connector
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else None
        timeout = aiohttp.ClientTimeout(total=10)
        async with self.session.request(
            method, path, data=data, params=params, headers=headers, timeout=timeout
        ) as resp:
            text = await resp.text()
            try:
                payload = json.loads(text) if text else None
            except json.JSONDecodeError:
                payload = text
            if resp.status >= 300:
                raise ApiError(resp.status, payload)
            return payload

    async def get(self, res: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", res.path(namespace, name))
        return result

    async def get_or_none(
        self, res: Resource, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        try:
            return await self.get(res, namespace, name)
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    async def list(
        self, res: Resource, namespace: str | None = None, label_selector: str | None = None
    ) -> dict[str, Any]:
        params = {"labelSelector": label_selector} if label_selector else None
        result: dict[str, Any] = await self.request("GET", res.path(namespace), params=params)
        return result

    async def create(self, res: Resource, namespace: str | None, obj: dict[str, Any]) -> Any:
        return await self.request("POST", res.path(namespace), body=obj)

    async def merge_patch(
        self, res: Resource, namespace: str | None, name: str, patch: dict[str, Any], sub: str = ""
    ) -> Any:
        return await self.request(
            "PATCH",
            res.path(namespace, name, sub),
            body=patch,
            content_type="application/merge-patch+json",
        )

    async def apply_object(self, obj: dict[str, Any], res: Resource) -> Any:
        """Create ``obj``, or merge its spec over the existing one when it already exists."""
        namespace = obj.get("metadata", {}).get("namespace")
        try:
            return await self.create(res, namespace, obj)
        except ApiError as err:
            if err.status != 409:
                raise
        name = obj["metadata"]["name"]
        return await self.merge_patch(res, namespace, name, obj)

    async def watch_events(
        self,
        res: Resource,
        resource_version: str,
        timeout_seconds: int = 60,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Yields the watch events (dicts) of one watch request until the server ends it."""
        params = {
            "watch": "1",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        if label_selector:
            params["labelSelector"] = label_selector
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=timeout_seconds + 15)
        path = res.path(namespace)
        async with self.session.get(path, params=params, timeout=timeout) as resp:
            if resp.status >= 300:
                text = await resp.text()
                raise ApiError(resp.status, _json_or_text(text))
            buffer = b""
            async for chunk in resp.content.iter_any():
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)


def freeze_after_full_collections() -> None:
    """After each full collection of the cyclic garbage collector, moves every surviving
    object to the permanent generation (``gc.freeze``), so that the next full collection does
    not scan them again.

    The lab's processes keep every stored object (Events included) for their whole life: a
    full collection scanned all of them, and with 1,000 Rollouts stepping it stopped the API
    server for 0.4-0.5 s every 15-20 s (measured with ``gc.callbacks``). Stored objects are
    plain JSON, freed by reference counting when deleted; what the freeze keeps for good is
    only cyclic garbage made of objects that were alive at a full collection. For the
    long-running processes of ``python -m hack.lab`` only, not for a test process."""
    if _freeze_survivors not in gc.callbacks:
        gc.callbacks.append(_freeze_survivors)


def _freeze_survivors(phase: str, info: dict[str, Any]) -> None:
    if phase == "stop" and info.get("generation") == 2:
        gc.freeze()


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


EventHandler = Callable[[str, dict[str, Any]], Awaitable[None]]


class Informer:
    """Keeps a cache of one resource (all namespaces, or one ``namespace``; optionally only
    the objects a ``label_selector`` selects) in step with the API server.

    Lists, then watches from the list's resourceVersion; relists when the watch history is gone
    (410) and retries while the resource is not served yet (a CRD not installed: 404). Every
    change calls ``handler(event_type, obj)``; a relist reports vanished objects as DELETED.
    """

    def __init__(
        self,
        api: KubeHTTP,
        res: Resource,
        handler: EventHandler | None = None,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> None:
        self.api = api
        self.res = res
        self.handler = handler
        self.namespace = namespace
        self.label_selector = label_selector
        self.cache: dict[tuple[str, str], dict[str, Any]] = {}
        self.synced = asyncio.Event()
        self.served = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def items(self) -> list[dict[str, Any]]:
        return list(self.cache.values())

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.cache.get((namespace, name))

    @staticmethod
    def key(obj: dict[str, Any]) -> tuple[str, str]:
        meta = obj.get("metadata", {})
        return meta.get("namespace") or "", meta.get("name", "")

    async def _emit(self, event_type: str, obj: dict[str, Any]) -> None:
        if self.handler is None:
            return
        try:
            await self.handler(event_type, obj)
        except Exception:
            log.exception("informer handler failed for %s %s", self.res.plural, self.key(obj))

    async def _relist(self) -> str:
        listing = await self.api.list(self.res, self.namespace, self.label_selector)
        fresh = {self.key(obj): obj for obj in listing.get("items", [])}
        gone = [key for key in self.cache if key not in fresh]
        for key in gone:
            await self._emit("DELETED", self.cache.pop(key))
        for key, obj in fresh.items():
            previous = self.cache.get(key)
            self.cache[key] = obj
            await self._emit("ADDED" if previous is None else "MODIFIED", obj)
        self.served = True
        self.synced.set()
        return str(listing.get("metadata", {}).get("resourceVersion", ""))

    async def _run(self) -> None:
        resource_version = ""
        while True:
            try:
                if not resource_version:
                    resource_version = await self._relist()
                async for event in self.api.watch_events(
                    self.res,
                    resource_version,
                    namespace=self.namespace,
                    label_selector=self.label_selector,
                ):
                    kind = event.get("type")
                    obj = event.get("object") or {}
                    if kind == "ERROR":
                        # 410 Gone or another failure: start again from a fresh list.
                        resource_version = ""
                        await asyncio.sleep(0 if obj.get("code") == 410 else 0.2)
                        break
                    rv = obj.get("metadata", {}).get("resourceVersion")
                    if rv:
                        resource_version = str(rv)
                    if kind == "BOOKMARK":
                        continue
                    key = self.key(obj)
                    if kind == "DELETED":
                        self.cache.pop(key, None)
                    else:
                        self.cache[key] = obj
                    await self._emit(str(kind), obj)
            except asyncio.CancelledError:
                raise
            except ApiError as err:
                if err.status == 410:
                    resource_version = ""
                    continue
                # 404: the CRD is not installed (yet); anything else: back off and relist.
                resource_version = ""
                await asyncio.sleep(1.0 if err.status == 404 else 0.5)
            except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError, OSError):
                resource_version = ""
                await asyncio.sleep(0.5)


class BackgroundLoop:
    """An asyncio event loop on a daemon thread, for driving async parts from sync code."""

    def __init__(self, name: str = "lab-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._started = False

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def start(self) -> BackgroundLoop:
        if not self._started:
            self._thread.start()
            self._started = True
        return self

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Runs ``coro`` on the loop and waits (bounded) for its result."""
        return self.submit(coro).result(timeout)

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """Runs a plain function on the loop's thread (for state the loop owns)."""

        async def wrapper() -> T:
            return fn()

        return self.run(wrapper(), timeout)

    def stop(self) -> None:
        if not self._started:
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()
        self._started = False
