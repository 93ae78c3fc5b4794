"""A fault proxy in front of the lab cluster's kube-apiserver, for the faults the real processes
cannot produce on demand.

The real control plane gives most faults as they happen in production: kill -9 and restart of
kube-apiserver or etcd, watches answered 410 after an etcd compaction, 429s from API Priority
and Fairness, conflicts between writers (``hack.cluster.Cluster``). What it cannot give is a
precise, repeatable failure of *the next N* requests of one kind ("the next patch of this
HTTPRoute answers 409"), a slow answer, or a cut watch stream of one client. ``FaultProxy``
forwards every request of a client unchanged (method, path, query, headers with the client's
own bearer token, body; responses streamed, so watches work) to the API server, and injects:

- ``fail_next(n, status, verb=, resource=, namespace=)``: the next ``n`` matching requests are
  answered with a ``Status`` of code ``status`` (429 with ``Retry-After``) without reaching the
  API server;
- ``delay(seconds, verb=, resource=, namespace=, times=)``: matching answers come late;
- ``drop_watches(resource=)``: open watch streams are cut mid-stream.

Matching uses the Kubernetes verb (get, list, watch, create, update, patch, delete,
deletecollection), the resource (plural, or ``plural/subresource``) and the namespace; None
matches anything. The proxy serves TLS with a certificate the cluster CA signs, so a client's
kubeconfig only changes its ``server`` (``FaultProxy.write_kubeconfig``). It runs on a
``BackgroundLoop`` of the process that controls it; tests call it in process.

Everything else is the API server's own: authentication, RBAC, admission, the answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType

import aiohttp
import yaml
from aiohttp import web

from hack.cluster import Cluster
from hack.lab._support import BackgroundLoop

_REASONS = {
    400: "BadRequest",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}

#: Hop-by-hop headers (RFC 9110 section 7.6.1) and those aiohttp sets itself.
_SKIP_HEADERS = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}


#: How many forwarded requests (with their bodies) the proxy remembers.
FORWARDED_KEPT = 1000


@dataclass
class _Rule:
    verb: str | None
    resource: str | None
    namespace: str | None

    def matches(self, verb: str, resource: str, namespace: str | None) -> bool:
        return (
            (self.verb is None or self.verb == verb)
            and (self.resource is None or self.resource == resource)
            and (self.namespace is None or self.namespace == namespace)
        )


@dataclass
class _Failure(_Rule):
    remaining: int
    status: int
    message: str
    retry_after: int


@dataclass
class _Delay(_Rule):
    seconds: float
    remaining: int | None


@dataclass(frozen=True)
class RequestInfo:
    """What kube-apiserver's request-info resolver would make of a request (and, once
    forwarded, the body the client sent)."""

    verb: str
    resource: str  # plural, or plural/subresource; "" for non-resource paths
    namespace: str | None
    name: str | None
    body: bytes = b""


def request_info(method: str, path: str, query: dict[str, str]) -> RequestInfo:
    """The Kubernetes verb, resource, namespace and name of ``method path?query``."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 2:
        rest = parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        rest = parts[3:]
    else:
        return RequestInfo(method.lower(), "", None, None)
    if rest[:1] == ["watch"]:  # the legacy /watch/ paths
        rest = rest[1:]
        query = {**query, "watch": "true"}
    namespace = None
    if len(rest) >= 2 and rest[0] == "namespaces":
        namespace = rest[1]
        # namespaces/NAME, namespaces/NAME/status and /finalize are the Namespace itself.
        if len(rest) >= 3 and rest[2] not in ("status", "finalize"):
            rest = rest[2:]
    if not rest:
        return RequestInfo(method.lower(), "", namespace, None)
    resource = rest[0]
    name = rest[1] if len(rest) >= 2 else None
    if len(rest) >= 3:
        resource = f"{resource}/{rest[2]}"
    watching = query.get("watch", "").lower() in ("true", "1")
    verb = {
        "GET": "watch" if watching else ("get" if name else "list"),
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete" if name else "deletecollection",
    }.get(method.upper(), method.lower())
    return RequestInfo(verb, resource, namespace, name)


class FaultProxy:
    """A TLS reverse proxy to ``cluster``'s API server that injects faults on demand."""

    def __init__(self, cluster: Cluster, directory: str | Path) -> None:
        self.cluster = cluster
        self.directory = Path(directory)
        self.port = 0
        self.forwarded: list[RequestInfo] = []
        self.injected: list[RequestInfo] = []
        self._lock = threading.Lock()
        self._failures: list[_Failure] = []
        self._delays: list[_Delay] = []
        self._watches: dict[asyncio.Task[object], str] = {}
        self._loop = BackgroundLoop("fault-proxy")
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ faults

    def fail_next(
        self,
        n: int = 1,
        status: int = 500,
        verb: str | None = None,
        resource: str | None = None,
        namespace: str | None = None,
        *,
        message: str | None = None,
        retry_after: int = 1,
    ) -> None:
        """The next ``n`` matching requests fail with a ``Status`` of code ``status``
        (429 carries ``Retry-After``); they never reach the API server."""
        text = message or f"injected by the lab's fault proxy: {status} {_REASONS.get(status, '')}"
        with self._lock:
            self._failures.append(_Failure(verb, resource, namespace, n, status, text, retry_after))

    def delay(
        self,
        seconds: float,
        verb: str | None = None,
        resource: str | None = None,
        namespace: str | None = None,
        *,
        times: int | None = None,
    ) -> None:
        """Delays matching requests by ``seconds`` (the next ``times`` ones, or all)."""
        with self._lock:
            self._delays.append(_Delay(verb, resource, namespace, seconds, times))

    def clear(self) -> None:
        with self._lock:
            self._failures.clear()
            self._delays.clear()

    def pending_failures(self) -> int:
        """How many injected failures are still to come."""
        with self._lock:
            return sum(f.remaining for f in self._failures)

    def drop_watches(self, resource: str | None = None) -> int:
        """Cuts the open watch streams (of ``resource``) mid-stream; returns how many."""

        async def drop() -> int:
            victims = [t for t, r in self._watches.items() if resource in (None, r)]
            for task in victims:
                task.cancel()
            return len(victims)

        return self._loop.run(drop())

    def _take(self, info: RequestInfo) -> tuple[float, _Failure | None]:
        with self._lock:
            delay = 0.0
            for d in list(self._delays):
                if d.matches(info.verb, info.resource, info.namespace):
                    delay = max(delay, d.seconds)
                    if d.remaining is not None:
                        d.remaining -= 1
                        if d.remaining <= 0:
                            self._delays.remove(d)
            for f in self._failures:
                if f.matches(info.verb, info.resource, info.namespace):
                    f.remaining -= 1
                    if f.remaining <= 0:
                        self._failures.remove(f)
                    return delay, f
            return delay, None

    # ------------------------------------------------------------------ serving

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        info = request_info(request.method, request.path, dict(request.query))
        delay, failure = self._take(info)
        if delay:
            await asyncio.sleep(delay)
        if failure is not None:
            with self._lock:
                self.injected.append(info)
            headers = {"Retry-After": str(failure.retry_after)} if failure.status == 429 else {}
            body = {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": failure.message,
                "reason": _REASONS.get(failure.status, "InternalError"),
                "code": failure.status,
            }
            return web.json_response(body, status=failure.status, headers=headers)
        assert self._client is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _SKIP_HEADERS}
        payload = await request.read()
        with self._lock:
            self.forwarded.append(replace(info, body=payload))
            del self.forwarded[:-FORWARDED_KEPT]
        upstream = await self._client.request(
            request.method,
            self.cluster.server + request.rel_url.raw_path_qs,
            headers=headers,
            data=payload or None,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
        )
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        for key, value in upstream.headers.items():
            if key.lower() not in _SKIP_HEADERS and key.lower() != "content-encoding":
                response.headers[key] = value
        task = asyncio.current_task()
        watching = info.verb == "watch" and task is not None
        if watching:
            assert task is not None
            self._watches[task] = info.resource
        try:
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
        except asyncio.CancelledError:
            # drop_watches: the stream ends without its final chunk, as a cut connection.
            if request.transport is not None:
                request.transport.close()
            raise
        finally:
            upstream.release()
            if watching:
                assert task is not None
                self._watches.pop(task, None)
        return response

    async def _start(self) -> None:
        upstream_tls = ssl.create_default_context(cafile=str(self.cluster.ca_cert))
        self._client = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=upstream_tls, limit=0),
            auto_decompress=False,
            # The client's own headers only: kube-apiserver reads a body without Content-Type
            # as JSON (the kubernetes client sends it so), and refuses aiohttp's default.
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
        )
        pair = self.cluster.serving_certificate(self.directory / "tls")
        serving = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        serving.load_cert_chain(str(pair.cert), str(pair.key))
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=serving)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def _stop(self) -> None:
        for task in list(self._watches):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._client is not None:
            await self._client.close()
            self._client = None

    def start(self) -> FaultProxy:
        self._loop.start()
        self._loop.run(self._start())
        return self

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError):
            self._loop.run(self._stop())
        self._loop.stop()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ clients

    def write_kubeconfig(self, source: str | Path, path: str | Path) -> Path:
        """A copy of the kubeconfig ``source`` (same user and credentials) whose server is
        the proxy."""
        config = yaml.safe_load(Path(source).read_text(encoding="utf-8"))
        for entry in config.get("clusters", []):
            entry["cluster"]["server"] = self.url
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        target.chmod(0o600)
        return target

    def describe(self) -> str:
        with self._lock:
            return json.dumps(
                {
                    "failures": [f.__dict__ for f in self._failures],
                    "delays": [d.__dict__ for d in self._delays],
                }
            )
