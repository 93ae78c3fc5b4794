"""``FakeCluster``: the plugin's API layer (:class:`rollwise.cli.kube.Cluster`) over the
adapters' gateway (``KubeAPI``) whose one transport method, ``request``, is answered from
objects held in memory instead of an API server.

Everything above ``request`` is the plugin's and the gateway's own code: the paths asked for,
the label and field selectors, the owner-reference filtering, the error mapping and the
wording of 404s and 422s as one-line errors. The fake answers as kube-apiserver does for what
the plugin uses: GET of an object or a collection (``labelSelector`` with ``=`` and ``in``;
events by ``fieldSelector``), JSON merge patches and JSON patches (a failed ``test`` is a 422
with the server's sentence), a ``Status`` body naming the object on a 404, a bare 404 for a
type it does not serve. A patch that changes ``spec`` bumps ``metadata.generation``; every
write bumps ``resourceVersion``.
``watch_object`` plays back versions queued with :meth:`FakeCluster.then`.

Writes are recorded in ``FakeCluster.writes`` as ``(method, path, body, content type)``.
"""

from __future__ import annotations

import copy
import functools
import re
import time
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import unquote

from rollwise.adapters.errors import KubeError
from rollwise.adapters.kube import KubeAPI, error_from_status
from rollwise.cli.kube import Cluster

#: The collections the fake serves, by plural (the plugin's paths name each uniquely).
SERVED = frozenset({"rollouts", "modelreleases", "deployments", "replicasets", "pods", "events"})

_PATH = re.compile(
    r"^/(?:api/v1|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/(?P<namespace>[^/]+))?/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?$"
)


def _status(code: int, message: str, name: str | None = None) -> KubeError:
    """The error the gateway's mapping makes of a Status answer (``details.name``: ``name``)."""
    return error_from_status(code, f"{message} ({code})", answer=message, named=name or "")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]


def json_patch(target: Any, ops: Sequence[dict[str, Any]]) -> Any:
    """RFC 6902 ``test``, ``replace`` and ``add``; raises ``ValueError`` when one fails."""
    doc = copy.deepcopy(target)
    for op in ops:
        *parents, last = _pointer(op["path"])
        node = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        key: Any = int(last) if isinstance(node, list) else last
        if op["op"] == "test":
            if node[key] != op["value"]:
                raise ValueError(f"test of {op['path']} failed")
        elif op["op"] == "replace":
            if key not in (range(len(node)) if isinstance(node, list) else node):
                raise ValueError(f"{op['path']} does not exist")
            node[key] = copy.deepcopy(op["value"])
        elif op["op"] == "add":
            node[key] = copy.deepcopy(op["value"])
        else:
            raise ValueError(f"op {op['op']} is not supported by the fake")
    return doc


def _matches(labels: dict[str, Any], selector: str) -> bool:
    for raw in re.split(r",(?![^(]*\))", selector):
        term = raw.strip()
        found = re.fullmatch(r"(\S+) in \(([^)]*)\)", term)
        if found:
            if labels.get(found.group(1)) not in found.group(2).split(","):
                return False
            continue
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


def _field(obj: dict[str, Any], path: str) -> Any:
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


class FakeCluster(Cluster):
    """An in-memory API server behind the plugin's ``Cluster`` (see the module docstring)."""

    def __init__(
        self,
        *objects: dict[str, Any],
        namespace: str = "shop",
        served: frozenset[str] = SERVED,
    ) -> None:
        super().__init__(api=None, namespace=namespace, host="https://fake.invalid:6443")
        self.served_types = served
        self.store: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.version = 100
        self.writes: list[tuple[str, str, Any, str | None]] = []
        self.queued: list[dict[str, Any]] = []
        for obj in objects:
            self.add(obj)

    # ------------------------------------------------------------------ the test's side

    def add(self, obj: dict[str, Any]) -> dict[str, Any]:
        plural = obj["kind"].lower() + "s"
        stored = copy.deepcopy(obj)
        meta = stored.setdefault("metadata", {})
        meta.setdefault("namespace", self.namespace)
        meta.setdefault("generation", 1)
        self.version += 1
        meta["resourceVersion"] = str(self.version)
        self.store[(plural, meta["namespace"], meta["name"])] = stored
        return stored

    def object(self, plural: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        return self.store[(plural, namespace or self.namespace, name)]

    def then(self, obj: dict[str, Any]) -> None:
        """Queues a new version of an object for ``watch_object`` to hand over."""
        self.queued.append(copy.deepcopy(obj))

    # ------------------------------------------------------------------ the API server's side

    @functools.cached_property
    def kube(self) -> KubeAPI:
        return _Gateway(self)

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        content_type: str | None = None,
    ) -> dict[str, Any]:
        if method != "GET":
            self.writes.append((method, path, copy.deepcopy(body), content_type))
        found = _PATH.match(path)
        if found is None:
            if path.startswith("/apis/") and path.count("/") == 3:  # discovery of a group
                return {"resources": [{"name": p} for p in sorted(self.served_types)]}
            raise _status(404, f"the server could not find the requested resource ({path})")
        plural, name = found["plural"], found["name"]
        namespace = unquote(found["namespace"]) if found["namespace"] else None
        if plural not in self.served_types:
            raise _status(404, "the server could not find the requested resource")
        if name is None:
            return self._serve_list(plural, namespace, dict(query))
        key = (plural, namespace or "", unquote(name))
        if key not in self.store:
            raise _status(404, f'{plural} "{unquote(name)}" not found', unquote(name))
        if method == "GET":
            return copy.deepcopy(self.store[key])
        return self._serve_patch(key, body, content_type)

    def _serve_list(
        self, plural: str, namespace: str | None, query: dict[str, str]
    ) -> dict[str, Any]:
        items = []
        for (kind, ns, _), obj in sorted(self.store.items()):
            if kind != plural or (namespace is not None and ns != namespace):
                continue
            labels = obj["metadata"].get("labels") or {}
            if "labelSelector" in query and not _matches(labels, query["labelSelector"]):
                continue
            fields = query.get("fieldSelector", "")
            wanted = [t.partition("=") for t in fields.split(",") if t]
            if any(str(_field(obj, k)) != v for k, _, v in wanted):
                continue
            items.append(copy.deepcopy(obj))
        return {"kind": "List", "items": items}

    def _serve_patch(self, key: tuple[str, str, str], body: Any, content_type: str | None) -> Any:
        before = self.store[key]
        try:
            if content_type == "application/json-patch+json":
                after = json_patch(before, body)
            else:
                after = merge_patch(before, body)
        except (ValueError, KeyError, IndexError) as exc:
            raise _status(
                422, "the server rejected our request due to an error in our request"
            ) from exc
        if after.get("spec") != before.get("spec"):
            after["metadata"]["generation"] = before["metadata"].get("generation", 1) + 1
        self.version += 1
        after["metadata"]["resourceVersion"] = str(self.version)
        self.store[key] = after
        return copy.deepcopy(after)

    def watch_object(
        self, plural: str, namespace: str, name: str, resource_version: str, stream_seconds: int
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        if not self.queued:
            time.sleep(0.02)  # as a server holds an idle watch open
        while self.queued:
            obj = self.queued.pop(0)
            self.version += 1
            obj["metadata"]["resourceVersion"] = str(self.version)
            self.store[(plural, namespace, name)] = obj
            yield "MODIFIED", copy.deepcopy(obj)


class _Gateway(KubeAPI):
    """The adapters' ``KubeAPI`` whose transport is the fake's ``request``."""

    def __init__(self, fake: FakeCluster) -> None:
        super().__init__(None)
        self.fake = fake

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
        return self.fake.request(method, path, query=query, body=body, content_type=content_type)
