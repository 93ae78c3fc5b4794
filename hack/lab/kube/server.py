"""The lab's Kubernetes API server: HTTP routing, discovery, OpenAPI, list/watch, tables.

Written for the project: the semantics it exists to prove (resourceVersion, generation and
uid assignment, watch replay from a resourceVersion, PUT and generateName, status isolation,
schema validation) are its core, so it owns them rather than extending a generic HTTP mock.

Boundary: this module turns HTTP into registry calls (``hack.lab.kube.registry``) and store
reads (``hack.lab.kube.store``) and renders the answers as kube-apiserver does (JSON,
``Status`` errors, ``Table`` for kubectl, newline-delimited watch events). Authentication and
admission are pluggable (``hack.lab.kube.contracts``).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import ipaddress
import json
import ssl
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from aiohttp import web

from hack.lab.kube import openapi
from hack.lab.kube.admission import WebhookAdmission, load_admission_config
from hack.lab.kube.contracts import ANONYMOUS_ADMIN, Admission, Authenticator, UserInfo
from hack.lab.kube.errors import APIError, bad_request, gone, method_not_allowed, not_found
from hack.lab.kube.faults import FaultInjector
from hack.lab.kube.registry import Registry
from hack.lab.kube.resources import BUILTIN_GROUP_ORDER, ResourceType, default_table, now_rfc3339
from hack.lab.kube.selectors import FieldSelector, LabelSelector
from hack.lab.kube.store import DROP, END, Change, Store, TooOld

T = TypeVar("T")

VERSION_INFO = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-rollwise-lab",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.23.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}
_JSON = "application/json"
_OPENAPI_V2 = {
    "swagger": "2.0",
    "info": {"title": "Kubernetes", "version": "v1.32.0"},
    "paths": {},
    "definitions": {},
}


def _proto_string(field: int, value: bytes) -> bytes:
    return bytes([field << 3 | 2, len(value)]) + value


#: ``openapi.v2.Document{swagger: "2.0", info: {title, version}}`` in protobuf wire format.
_OPENAPI_V2_PROTO = _proto_string(1, b"2.0") + _proto_string(
    2, _proto_string(1, b"Kubernetes") + _proto_string(2, b"v1.32.0")
)
_OPENAPI_V2_PROTO_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
_DEFAULT_WATCH_TIMEOUT = 1800.0


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(body=_dumps(body), status=status, content_type=_JSON, headers=headers)


def _status_response(err: APIError) -> web.Response:
    return _json_response(err.status(), err.code, err.headers)


def _wants_table(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return "as=Table" in accept


class _Route:
    def __init__(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str | None,
        subresource: str,
        watch: bool,
    ) -> None:
        self.rt = rt
        self.namespace = namespace
        self.name = name
        self.subresource = subresource
        self.watch = watch


class APIServer:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        authenticator: Authenticator | None = None,
        admission: Admission | None = None,
        admission_config: str | Path | None = None,
        watch_history: int = 10000,
        gc: bool = True,
        builtin_crds: Iterable[dict[str, Any]] = (),
        bookmark_interval: float = 60.0,
        tls: bool | None = None,
    ) -> None:
        self.host = host
        # kubectl sends bearer tokens over https only: serve TLS when there are tokens.
        self.tls = authenticator is not None if tls is None else tls
        self.ca_file: Path | None = None
        self.ca_pem = b""
        self.port = port
        self.authenticator = authenticator
        self.bookmark_interval = bookmark_interval
        self.store = Store(watch_history=watch_history)
        # Like kube-apiserver, the server always runs its webhook admission plugins; a caller
        # may replace them (contracts.NoAdmission admits everything unchanged).
        # ``admission_config``: kube-apiserver's --admission-control-config-file (the client
        # certificates webhooks are called with).
        if admission is None:
            admission = WebhookAdmission(
                self.list_webhook_configurations,
                self.get_namespace,
                client_credentials=(
                    load_admission_config(admission_config)
                    if admission_config is not None
                    else None
                ),
            )
        self.registry = Registry(self.store, admission)
        self.faults = FaultInjector()
        self.faults._attach(self._drop_watches)
        self.gc_enabled = gc
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._openapi_cache: tuple[int, dict[str, dict[str, Any]]] | None = None
        #: Requests served per (client product, verb, resource[/subresource]), for benchmarks:
        #: GET /lab/stats reads them, DELETE /lab/stats resets them.
        self.request_counts: collections.Counter[tuple[str, str, str]] = collections.Counter()
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self._bootstrap_namespace(ns)
        for crd in builtin_crds:
            self.registry.install_crd(crd)

    # ---------------------------------------------------------------------------- callables
    # for the admission plugin

    def list_webhook_configurations(self, kind: str) -> list[dict[str, Any]]:
        """``kind`` "validating" or "mutating": the stored webhook configurations."""
        plural = f"{kind}webhookconfigurations"
        rt = self.store.lookup("admissionregistration.k8s.io", "v1", plural)
        if rt is None:
            raise ValueError(f"unknown webhook configuration kind {kind!r}")
        items, _ = self.store.list_objects(rt, None, LabelSelector(), FieldSelector())
        return items

    def get_namespace(self, name: str) -> dict[str, Any] | None:
        rt = self.store.lookup("", "v1", "namespaces")
        assert rt is not None
        return self.store.get(rt, "", name)

    # ---------------------------------------------------------------------------- lifecycle

    def _bootstrap_namespace(self, name: str) -> None:
        rt = self.store.lookup("", "v1", "namespaces")
        assert rt is not None
        obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        assert rt.default is not None
        rt.default(obj)
        obj["metadata"].update(uid=str(uuid.uuid4()), creationTimestamp=now_rfc3339())
        self.store.insert(rt, obj)

    def _ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        directory = Path(tempfile.mkdtemp(prefix="lab-apiserver-tls-"))
        cert, key = directory / "apiserver.crt", directory / "apiserver.key"
        names = ["DNS:localhost", "IP:127.0.0.1"]
        try:
            ipaddress.ip_address(self.host)
            names.append(f"IP:{self.host}")
        except ValueError:
            names.append(f"DNS:{self.host}")
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                str(key),
                "-out",
                str(cert),
                "-days",
                "7",
                "-subj",
                "/CN=rollwise-lab-apiserver",
                "-addext",
                f"subjectAltName={','.join(dict.fromkeys(names))}",
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        self.ca_file, self.ca_pem = cert, cert.read_bytes()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(cert), str(key))
        return context

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # handler_cancellation: a watch whose client went away ends at once (and unsubscribes).
        self._runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=1.0,
            handler_cancellation=True,
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self._ssl_context())
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1]
        self.url = f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"
        if self.gc_enabled:
            self.registry.start_gc()

    async def stop(self) -> None:
        for watcher in self.store.watchers():
            watcher.offer(END)
        await self.registry.stop_gc()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _drop_watches(self, resource: str | None) -> int:
        dropped = 0
        for watcher in self.store.watchers():
            if resource is None or watcher.plural == resource:
                watcher.offer(DROP)
                dropped += 1
        return dropped

    # ---------------------------------------------------------------------------- routing

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            path = request.path.rstrip("/") or "/"
            # Public as with kube-apiserver's anonymous access (system:public-info-viewer).
            if path in ("/healthz", "/livez", "/readyz"):
                return web.Response(text="ok")
            if path == "/version":
                return _json_response(VERSION_INFO)
            user = self._authenticate(request)
            if path.startswith("/lab/"):
                return await self._lab(request)
            if path.startswith("/openapi"):
                return self._openapi(path, request.headers.get("Accept", ""))
            parts = path.strip("/").split("/")
            if parts[0] == "api" and len(parts) <= 2:
                return self._discovery_core(request, parts)
            if parts[0] == "apis" and len(parts) <= 3:
                return self._discovery_groups(parts)
            if parts[0] not in ("api", "apis"):
                raise not_found("", "", "")
            route = self._route(parts)
            return await self._serve(request, route, user)
        except APIError as err:
            return _status_response(err)

    def _authenticate(self, request: web.Request) -> UserInfo:
        if self.authenticator is None:
            return ANONYMOUS_ADMIN
        user = self.authenticator.authenticate(request.headers.get("Authorization"))
        if user is None:
            raise APIError(401, "Unauthorized", "Unauthorized")
        return user

    def _route(self, parts: list[str]) -> _Route:
        if parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        else:
            group, version, rest = parts[1], parts[2], parts[3:]
        watch = False
        if rest and rest[0] == "watch":
            watch, rest = True, rest[1:]
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            candidate = self.store.lookup(group, version, rest[2])
            if candidate is not None and candidate.namespaced:
                namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise _no_resource()
        rt = self.store.lookup(group, version, rest[0])
        if rt is None:
            raise _no_resource()
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else ""
        if rt.namespaced and namespace is None and name is not None:
            raise _no_resource()
        if not rt.namespaced and namespace is not None:
            raise _no_resource()
        if (sub and sub not in ("status", "scale")) or (sub == "status" and not rt.status):
            raise _no_resource()
        if sub == "scale" and rt.scale is None:
            raise _no_resource()
        return _Route(rt, namespace, name, sub, watch)

    async def _serve(
        self, request: web.Request, route: _Route, user: UserInfo
    ) -> web.StreamResponse:
        q = request.query
        method = request.method
        rt = route.rt
        is_watch = route.watch or q.get("watch") in ("true", "1")
        verb = {
            "GET": "watch" if is_watch else ("get" if route.name else "list"),
            "POST": "create",
            "PUT": "update",
            "PATCH": "patch",
            "DELETE": "delete" if route.name else "deletecollection",
        }.get(method)
        if verb is None:
            raise method_not_allowed()
        resource = f"{rt.plural}/{route.subresource}" if route.subresource else rt.plural
        self.request_counts[(_client_product(request), verb, resource)] += 1
        delay, failure = self.faults.take(verb, resource, route.namespace)
        if delay:
            await asyncio.sleep(delay)
        if failure is not None:
            raise APIError(failure.code, failure.reason, failure.message, headers=failure.headers)
        if verb not in rt.verbs and not route.subresource:
            raise method_not_allowed()
        dry_run = q.get("dryRun") == "All"
        fv = q.get("fieldValidation", "Warn")
        ns = route.namespace
        reg = self.registry

        if verb == "watch":
            return await self._watch(request, route)
        if verb == "list":
            return self._list(request, route)
        if verb == "get":
            assert route.name is not None
            if route.subresource == "scale":
                return _json_response(await reg.get_scale(rt, ns or "", route.name))
            obj = self.store.get(rt, ns or "", route.name)
            if obj is None:
                raise not_found(rt.plural, rt.group, route.name)
            if _wants_table(request) and not route.subresource:
                return _json_response(
                    self._table(request, rt, [obj], obj["metadata"]["resourceVersion"])
                )
            return _json_response(obj)
        if verb == "deletecollection":
            return await self._delete_collection(request, route, user, dry_run)
        if verb == "create":
            if route.name is not None or (rt.namespaced and ns is None):
                raise method_not_allowed()
            body = await self._body(request)
            created, warnings = await reg.create(
                rt, ns, body, user=user, dry_run=dry_run, field_validation=fv
            )
            return _json_response(created, 201, _warning_headers(warnings))
        assert route.name is not None
        name = route.name
        if verb == "delete":
            options = await self._body(request, optional=True) or {}
            for key in ("propagationPolicy", "gracePeriodSeconds"):
                if key in q:
                    options[key] = q[key]
            obj, deleted = await reg.delete(rt, ns, name, options, user=user, dry_run=dry_run)
            if deleted and not rt.return_deleted:
                details = {"name": name, "kind": rt.plural, "uid": obj["metadata"].get("uid")}
                if rt.group:
                    details["group"] = rt.group
                return _json_response(
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "metadata": {},
                        "status": "Success",
                        "details": details,
                    }
                )
            return _json_response(obj)
        body = await self._body(request)
        if route.subresource == "scale":
            if verb == "update":
                result = await reg.write_scale(
                    rt, ns or "", name, lambda _s: body, user=user, dry_run=dry_run
                )
            else:
                result = await reg.write_scale(
                    rt,
                    ns or "",
                    name,
                    lambda s: _apply_scale_patch(request.content_type, s, body),
                    user=user,
                    dry_run=dry_run,
                )
            return _json_response(result)
        if verb == "update":
            obj, warnings = await reg.update(
                rt,
                ns,
                name,
                body,
                subresource=route.subresource,
                user=user,
                dry_run=dry_run,
                field_validation=fv,
            )
        else:
            obj, warnings = await reg.patch(
                rt,
                ns,
                name,
                request.content_type,
                body,
                subresource=route.subresource,
                user=user,
                dry_run=dry_run,
                field_validation=fv,
            )
        return _json_response(obj, 200, _warning_headers(warnings))

    async def _body(self, request: web.Request, *, optional: bool = False) -> Any:
        raw = await request.read()
        if not raw.strip():
            if optional:
                return None
            raise bad_request("the request body is empty")
        if "protobuf" in request.content_type or "cbor" in request.content_type:
            # The lab speaks JSON only. A 415 is what a real server answers for an encoding it
            # does not accept, and client-go (kubectl, helm) then retries the request in JSON.
            raise APIError(
                415,
                "UnsupportedMediaType",
                f"the lab API emulator accepts JSON and YAML bodies, not {request.content_type}",
            )
        if "yaml" in request.content_type:
            if request.content_type == "application/apply-patch+yaml":
                raise APIError(
                    415,
                    "UnsupportedMediaType",
                    "server-side apply is not supported by the lab API emulator",
                )
            try:
                return yaml.safe_load(raw)
            except yaml.YAMLError as err:
                raise bad_request(f"invalid YAML: {err}") from None
        try:
            return json.loads(raw)
        except ValueError as err:
            raise bad_request(f"invalid JSON: {err}") from None

    # ---------------------------------------------------------------------------- lists

    def _selectors(
        self, request: web.Request, rt: ResourceType
    ) -> tuple[LabelSelector, FieldSelector]:
        labels = LabelSelector.parse(request.query.get("labelSelector"))
        fields = FieldSelector.parse(request.query.get("fieldSelector"), rt.supports_field)
        return labels, fields

    def _list(self, request: web.Request, route: _Route) -> web.Response:
        rt = route.rt
        labels, fields = self._selectors(request, rt)
        items, rv = self.store.list_objects(rt, route.namespace, labels, fields)
        q = request.query
        cont = q.get("continue")
        if cont:
            try:
                token = json.loads(base64.urlsafe_b64decode(cont.encode()))
                start = (token["ns"], token["name"])
                rv = int(token["rv"])
            except (ValueError, KeyError, TypeError):
                raise bad_request(
                    "continue key is not valid: incorrect encoded start "
                    "resourceVersion (version meta.k8s.io/v1)"
                ) from None
            items = [i for i in items if _okey(i) > start]
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        limit = int(q.get("limit") or 0)
        if limit > 0 and len(items) > limit:
            remaining = len(items) - limit
            items = items[:limit]
            last = _okey(items[-1])
            token = {"rv": rv, "ns": last[0], "name": last[1]}
            meta["continue"] = base64.urlsafe_b64encode(_dumps(token)).decode()
            meta["remainingItemCount"] = remaining
        if _wants_table(request):
            table = self._table(request, rt, items, str(rv))
            table["metadata"].update(meta)
            return _json_response(table)
        return _json_response(
            {
                "kind": f"{rt.kind}List",
                "apiVersion": rt.api_version,
                "metadata": meta,
                "items": items,
            }
        )

    def _table(
        self, request: web.Request, rt: ResourceType, items: list[dict[str, Any]], rv: str
    ) -> dict[str, Any]:
        columns, row = (rt.table or default_table)()
        include = request.query.get("includeObject", "Metadata")
        rows = []
        for obj in items:
            entry: dict[str, Any] = {"cells": row(obj)}
            if include == "Object":
                entry["object"] = obj
            elif include != "None":
                entry["object"] = {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": obj.get("metadata", {}),
                }
            rows.append(entry)
        return {
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": rv},
            "columnDefinitions": columns,
            "rows": rows,
        }

    async def _delete_collection(
        self, request: web.Request, route: _Route, user: UserInfo, dry_run: bool
    ) -> web.Response:
        rt = route.rt
        labels, fields = self._selectors(request, rt)
        items, _ = self.store.list_objects(rt, route.namespace, labels, fields)
        options = await self._body(request, optional=True) or {}
        if "propagationPolicy" in request.query:
            options["propagationPolicy"] = request.query["propagationPolicy"]
        deleted = []
        for item in items:
            meta = item["metadata"]
            with contextlib.suppress(APIError):
                obj, _ = await self.registry.delete(
                    rt, meta.get("namespace"), meta["name"], options, user=user, dry_run=dry_run
                )
                deleted.append(obj)
        return _json_response(
            {
                "kind": f"{rt.kind}List",
                "apiVersion": rt.api_version,
                "metadata": {"resourceVersion": str(self.store.rv)},
                "items": deleted,
            }
        )

    # ---------------------------------------------------------------------------- watch

    async def _watch(self, request: web.Request, route: _Route) -> web.StreamResponse:
        rt = route.rt
        q = request.query
        labels, fields = self._selectors(request, rt)
        name = route.name
        if name is not None:  # legacy /watch/.../NAME
            fields = FieldSelector((*fields.terms, ("metadata.name", True, name)))
        initial_events = q.get("sendInitialEvents") == "true"
        rv_param = q.get("resourceVersion", "")
        since: int | None
        if initial_events or rv_param in ("", "0"):
            since = None
        else:
            try:
                since = int(rv_param)
            except ValueError:
                raise bad_request(f'invalid resource version "{rv_param}"') from None
        timeout = float(q.get("timeoutSeconds") or _DEFAULT_WATCH_TIMEOUT)
        bookmarks = q.get("allowWatchBookmarks") in ("true", "1")
        as_table = _wants_table(request)
        loop = asyncio.get_running_loop()

        resp = web.StreamResponse(status=200, headers={"Content-Type": _JSON})
        resp.enable_chunked_encoding()
        try:
            watcher, first, _ = self.store.watch(rt, route.namespace, since, loop)
        except TooOld as err:
            await resp.prepare(request)
            await resp.write(
                _dumps({"type": "ERROR", "object": gone(err.message).status()}) + b"\n"
            )
            await resp.write_eof()
            return resp
        try:
            await resp.prepare(request)
            for change in first:
                await self._send(resp, request, rt, change, (labels, fields), as_table=as_table)
            if initial_events:
                await self._bookmark(resp, rt, initial_end=True)
            deadline = loop.time() + timeout
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                wait = min(remaining, self.bookmark_interval) if bookmarks else remaining
                try:
                    item = await asyncio.wait_for(watcher.queue.get(), timeout=wait)
                except TimeoutError:
                    if bookmarks and watcher.queue.empty() and loop.time() < deadline:
                        await self._bookmark(resp, rt)
                    continue
                if item == DROP:
                    if request.transport is not None:
                        request.transport.abort()
                    return resp
                if item == END:
                    break
                assert isinstance(item, Change)
                await self._send(resp, request, rt, item, (labels, fields), as_table=as_table)
            with contextlib.suppress(ConnectionError):
                await resp.write_eof()
        except ConnectionError:
            pass
        finally:
            self.store.unwatch(watcher)
        return resp

    async def _bookmark(
        self, resp: web.StreamResponse, rt: ResourceType, *, initial_end: bool = False
    ) -> None:
        meta: dict[str, Any] = {"resourceVersion": str(self.store.rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        obj = {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta}
        await resp.write(_dumps({"type": "BOOKMARK", "object": obj}) + b"\n")

    async def _send(
        self,
        resp: web.StreamResponse,
        request: web.Request,
        rt: ResourceType,
        change: Change,
        selectors: tuple[LabelSelector, FieldSelector],
        *,
        as_table: bool,
    ) -> None:
        labels, fields = selectors
        # A kind without a storage conversion is served as stored (plus apiVersion and kind,
        # which no selector reads): match and encode the stored object without copying it.
        plain = rt.from_storage is None

        def shown(stored: dict[str, Any]) -> dict[str, Any]:
            if plain:
                return {**stored, "apiVersion": rt.api_version, "kind": rt.kind}
            return self.store.view(rt, stored)

        obj = shown(change.obj)
        etype = change.type
        if labels or fields:
            now = (not labels or labels.matches(obj)) and (not fields or fields.matches(obj))
            before = False
            if change.old is not None and etype == "MODIFIED":
                old = shown(change.old)
                before = (not labels or labels.matches(old)) and (not fields or fields.matches(old))
            if etype == "MODIFIED":
                if now and not before:
                    etype = "ADDED"
                elif before and not now:
                    etype = "DELETED"
                elif not now:
                    return
            elif not now:
                return
        if as_table:
            body = self._table(request, rt, [obj], obj["metadata"]["resourceVersion"])
            await resp.write(_dumps({"type": etype, "object": body}) + b"\n")
            return
        key = (rt.api_version, etype)
        line = change.encoded.get(key)
        if line is None:
            line = change.encoded[key] = _dumps({"type": etype, "object": obj}) + b"\n"
        await resp.write(line)

    # ---------------------------------------------------------------------------- discovery

    def _groups(self) -> dict[str, list[str]]:
        """group -> served versions (preferred first), for every group but core."""
        groups: dict[str, list[str]] = {}
        for rt in self.store.served():
            if rt.group:
                versions = groups.setdefault(rt.group, [])
                if rt.version not in versions:
                    versions.append(rt.version)
        for versions in groups.values():
            versions.sort(key=_version_priority)
        order = {g: i for i, g in enumerate(BUILTIN_GROUP_ORDER)}
        return dict(sorted(groups.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))

    def _discovery_core(self, request: web.Request, parts: list[str]) -> web.Response:
        if len(parts) == 1:
            return _json_response(
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [
                        {"clientCIDR": "0.0.0.0/0", "serverAddress": f"{self.host}:{self.port}"}
                    ],
                }
            )
        if parts[1] != "v1":
            raise _no_resource()
        return _json_response(self._resource_list("", "v1"))

    def _discovery_groups(self, parts: list[str]) -> web.Response:
        groups = self._groups()
        if len(parts) == 1:
            return _json_response(
                {
                    "kind": "APIGroupList",
                    "apiVersion": "v1",
                    "groups": [_group_body(g, v) for g, v in groups.items()],
                }
            )
        group = parts[1]
        if group not in groups:
            raise _no_resource()
        if len(parts) == 2:
            return _json_response(
                {"kind": "APIGroup", "apiVersion": "v1", **_group_body(group, groups[group])}
            )
        if parts[2] not in groups[group]:
            raise _no_resource()
        return _json_response(self._resource_list(group, parts[2]))

    def _resource_list(self, group: str, version: str) -> dict[str, Any]:
        resources = []
        for rt in sorted(self.store.served(), key=lambda r: r.plural):
            if rt.group != group or rt.version != version:
                continue
            entry: dict[str, Any] = {
                "name": rt.plural,
                "singularName": rt.singular,
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": rt.verbs,
            }
            if rt.short_names:
                entry["shortNames"] = rt.short_names
            if rt.categories:
                entry["categories"] = rt.categories
            resources.append(entry)
            sub = {
                "singularName": "",
                "namespaced": rt.namespaced,
                "verbs": ["get", "patch", "update"],
            }
            if rt.status:
                resources.append({"name": f"{rt.plural}/status", "kind": rt.kind, **sub})
            if rt.scale is not None:
                resources.append(
                    {
                        "name": f"{rt.plural}/scale",
                        "group": "autoscaling",
                        "version": "v1",
                        "kind": "Scale",
                        **sub,
                    }
                )
        gv = f"{group}/{version}" if group else version
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": gv,
            "resources": resources,
        }

    def _openapi(self, path: str, accept: str) -> web.Response:
        if path in ("/openapi/v2", "/swagger.json"):
            # An empty document, only so that kubectl's fallback for kinds nobody serves ends in
            # its own "no matches for kind" error; the v3 documents carry the schemas.
            if "protobuf" in accept:
                return web.Response(body=_OPENAPI_V2_PROTO, content_type=_OPENAPI_V2_PROTO_TYPE)
            return _json_response(_OPENAPI_V2)
        docs = self._openapi_docs()
        if path == "/openapi/v3":
            return _json_response(openapi.root(docs))
        key = path[len("/openapi/v3/") :]
        if key not in docs:
            raise not_found("", "", "")
        return _json_response(docs[key])

    def _openapi_docs(self) -> dict[str, dict[str, Any]]:
        key = self.store.types_version
        if self._openapi_cache is None or self._openapi_cache[0] != key:
            self._openapi_cache = (key, openapi.documents(self.store.served()))
        return self._openapi_cache[1]

    # ---------------------------------------------------------------------------- lab control

    async def _lab(self, request: web.Request) -> web.Response:
        if request.path.rstrip("/") == "/lab/stats":
            return self._stats(request)
        if request.path.rstrip("/") != "/lab/faults":
            raise not_found("", "", "")
        if request.method == "GET":
            return _json_response(self.faults.describe())
        if request.method == "DELETE":
            self.faults.clear()
            return _json_response(self.faults.describe())
        if request.method != "POST":
            raise method_not_allowed()
        body = await self._body(request)
        if not isinstance(body, dict):
            raise bad_request("expected a JSON object")
        try:
            return _json_response(self.faults.apply_json(body))
        except (TypeError, ValueError) as err:
            raise bad_request(str(err)) from None

    def _stats(self, request: web.Request) -> web.Response:
        if request.method == "DELETE":
            self.request_counts.clear()
        elif request.method != "GET":
            raise method_not_allowed()
        rows = [
            {"client": client, "verb": verb, "resource": resource, "count": count}
            for (client, verb, resource), count in sorted(self.request_counts.items())
        ]
        return _json_response({"requests": rows})


def _client_product(request: web.Request) -> str:
    """The product token of the User-Agent ("kopf/1.37 ..." -> "kopf"), "" when absent."""
    agent = request.headers.get("User-Agent", "").strip()
    return agent.split("/", 1)[0].split(" ", 1)[0] if agent else ""


def _no_resource() -> APIError:
    return APIError(404, "NotFound", "the server could not find the requested resource")


def _okey(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _warning_headers(warnings: list[str]) -> dict[str, str] | None:
    if not warnings:
        return None
    return {
        "Warning": ", ".join(f'299 - "{w.replace(chr(34), chr(92) + chr(34))}"' for w in warnings)
    }


def _version_priority(version: str) -> tuple[int, int, int]:
    """Kubernetes version ordering: GA > beta > alpha, higher numbers first."""
    import re  # noqa: PLC0415 - only discovery needs it

    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not m:
        return (3, 0, 0)
    stage = {"": 0, "beta": 1, "alpha": 2}[m.group(2) or ""]
    return (stage, -int(m.group(1)), -int(m.group(3) or 0))


def _group_body(group: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": entries, "preferredVersion": entries[0]}


def _apply_scale_patch(content_type: str, scale: dict[str, Any], patch: Any) -> dict[str, Any]:
    from hack.lab.kube import patching  # noqa: PLC0415 - keeps the server's imports small

    if content_type == "application/json-patch+json":
        result = patching.json_patch(scale, patch)
    elif content_type in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
        result = patching.merge_patch(scale, patch)
    else:
        raise APIError(415, "UnsupportedMediaType", f"unsupported patch type {content_type}")
    if not isinstance(result, dict):
        raise bad_request("the patch did not produce an object")
    return result


# -------------------------------------------------------------------------------- threads


class BackgroundAPIServer:
    """An :class:`APIServer` on its own event loop in a daemon thread, for synchronous code."""

    def __init__(self, **apiserver_kwargs: Any) -> None:
        self._kwargs = apiserver_kwargs
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.server: APIServer
        self.url = ""

    def start(self) -> None:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                self.server = APIServer(**self._kwargs)
                loop.run_until_complete(self.server.start())
            except BaseException as err:  # reported to the starting thread
                failure.append(err)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.server.stop())
            loop.close()

        self._thread = threading.Thread(target=run, name="lab-apiserver", daemon=True)
        self._thread.start()
        if not ready.wait(30):
            raise RuntimeError("the lab API server did not start within 30s")
        if failure:
            raise failure[0]
        self.url = self.server.url

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> BackgroundAPIServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Runs a coroutine on the server's loop (e.g. ``server.registry.create(...)``)."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def call(self, fn: Callable[..., T], *args: Any, timeout: float = 30) -> T:
        """Runs a function on the server's loop, where the store may be changed safely."""

        async def wrapper() -> T:
            return fn(*args)

        return self.run(wrapper(), timeout)

    def write_kubeconfig(
        self,
        path: Path,
        *,
        token: str | None = None,
        user: str = "lab-admin",
        namespace: str = "default",
    ) -> Path:
        return write_kubeconfig(
            path,
            self.url,
            token=token,
            user=user,
            namespace=namespace,
            certificate_authority_data=self.server.ca_pem or None,
        )


def write_kubeconfig(
    path: Path,
    server_url: str,
    *,
    token: str | None = None,
    user: str = "lab-admin",
    namespace: str = "default",
    certificate_authority_data: bytes | None = None,
) -> Path:
    """Writes a kubeconfig whose current context points at ``server_url`` (an https server's
    self-signed certificate goes in as ``certificate_authority_data``, PEM)."""
    credentials: dict[str, Any] = {"token": token} if token else {}
    cluster: dict[str, Any] = {"server": server_url}
    if certificate_authority_data:
        cluster["certificate-authority-data"] = base64.b64encode(
            certificate_authority_data
        ).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "lab", "cluster": cluster}],
        "users": [{"name": user, "user": credentials}],
        "contexts": [
            {"name": "lab", "context": {"cluster": "lab", "user": user, "namespace": namespace}}
        ],
        "current-context": "lab",
        "preferences": {},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
