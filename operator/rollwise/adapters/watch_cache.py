"""The read cache the operator's watches feed (:class:`WatchCache`).

kopf already watches every Rollout, revision Deployment and Service; each watch event is
observed here, and a reconcile pass (through ``rollwise.adapters.kube.PassView``) reads from
the cache instead of the API server. :class:`WatchCache` says why that is as safe as a fresh
read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rollwise.adapters.resources import Resource, _compact_copy

Key = tuple[Resource, str, str]


def _version(obj: Mapping[str, Any] | None) -> int | None:
    """The object's resourceVersion as an integer; None when absent or not a number."""
    value = ((obj or {}).get("metadata") or {}).get("resourceVersion")
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _equality_selector(selector: str | None) -> dict[str, str] | None:
    """``k=v,k2=v2`` as a dict; None for anything else (set-based, ``!=``, existence)."""
    if not selector:
        return {}
    terms: dict[str, str] = {}
    for term in selector.split(","):
        key, sep, value = term.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or key.endswith("!") or value.startswith("="):
            return None
        terms[key] = value
    return terms


@dataclass
class _Entry:
    body: dict[str, Any]
    version: int
    at: float


class WatchCache:
    """The latest body of each object the operator's watches deliver, so that a pass can read
    what the watch already brought instead of asking the API server again.

    Only resources declared with :meth:`watch` are kept, because only those are kept current:
    the runtime feeds every watch event in (:meth:`observe`, :meth:`observe_deleted`), and
    ``PassView`` feeds in what it reads from the server and the answers of its own writes, so
    an object the operator just wrote is read back as written (read-your-writes) even before
    the watch event of that write arrives.

    Why this keeps DESIGN §2's "the pass reads the object fresh": an entry is a body at a known
    resourceVersion, never older than the operator's own last write of it, and never replaced
    by an older one (events and answers arrive out of order across connections, so the higher
    resourceVersion wins). A write that depends on what was read is conditional on that
    resourceVersion (the Rollout's status patch): when the cached body was behind the server,
    the write conflicts, :meth:`forget` marks the entry stale, and the retried pass reads from
    the server. Writes that are not conditional (a Deployment's replicas, a Service's selector)
    set an absolute value the core derived; when the cache was behind, the watch event of the
    change it missed wakes the Rollout and the next pass corrects it, as with any informer.
    A write answered ``NotFound`` or ``Conflict`` forgets its object too. Entries are served
    for ``max_age`` seconds after they last changed or were confirmed: after that one read goes
    to the server, which bounds any drift (a watch gap the watch never reported).

    resourceVersions are compared as integers, which every API server in practice issues (etcd
    revisions). An object whose resourceVersion is not an integer is never cached: its reads
    always go to the server. Lists are served only for a declared resource whose watch covers
    the selector (the watch's required label is pinned by an equality term), and only after
    the same listing was read from the server once (``primed``) less than ``max_age`` ago.
    Bodies are kept without ``metadata.managedFields``, which no pass reads. Thread-safe;
    lookups return the stored bodies, which callers must not modify.
    """

    def __init__(
        self, *, max_age: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_age = max_age
        self.clock = clock
        self._watched: dict[Resource, str | None] = {}
        # (resource, namespace) -> name -> entry: a listing scans one namespace's objects.
        self._objects: dict[tuple[Resource, str], dict[str, _Entry]] = {}
        # (resource, namespace, value of the watch's required label) -> names: a listing
        # pinned to that label reads only its own objects.
        self._labelled: dict[tuple[Resource, str, str], set[str]] = {}
        self._gone: dict[Key, tuple[int, float]] = {}
        self._stale: set[Key] = set()
        self._listings: dict[tuple[Resource, str, str], float] = {}
        self._lock = threading.Lock()
        self.hits = 0

    def watch(self, resource: Resource, required_label: str | None = None) -> None:
        """Declares that a watch feeds ``resource`` (only objects carrying ``required_label``
        when given) into this cache."""
        self._watched[resource] = required_label

    def watches(self, resource: Resource) -> bool:
        return resource in self._watched

    @staticmethod
    def _key(resource: Resource, body: Mapping[str, Any]) -> Key | None:
        meta = body.get("metadata") or {}
        name, namespace = meta.get("name"), meta.get("namespace")
        return (resource, str(namespace), str(name)) if name and namespace else None

    def observe(
        self, resource: Resource, body: Mapping[str, Any], *, confirmed: bool = False
    ) -> None:
        """Keeps ``body`` unless a newer version is known. ``confirmed``: it comes from the
        server's answer to this operator (a read or a write), which clears a :meth:`forget`."""
        if resource not in self._watched:
            return
        key, version = self._key(resource, body), _version(body)
        if key is None or version is None:
            return
        now = self.clock()
        with self._lock:
            gone = self._gone.get(key)
            if gone is not None:
                if version <= gone[0]:
                    return
                del self._gone[key]
            bucket = self._objects.setdefault((resource, key[1]), {})
            entry = bucket.get(key[2])
            if entry is not None and entry.version > version:
                return
            if entry is not None and entry.version == version:
                entry.at = now
            else:
                if entry is not None:
                    self._unindex(resource, key[1], key[2], entry)
                kept: dict[str, Any] = _compact_copy(dict(body))
                # Nothing in a pass reads managedFields, and on a real API server they are
                # often the larger part of an object: not kept.
                (kept.get("metadata") or {}).pop("managedFields", None)
                entry = bucket[key[2]] = _Entry(kept, version, now)
                label = self._required_value(resource, entry.body)
                if label is not None:
                    self._labelled.setdefault((resource, key[1], label), set()).add(key[2])
            if confirmed:
                self._stale.discard(key)

    def _required_value(self, resource: Resource, body: Mapping[str, Any]) -> str | None:
        required = self._watched.get(resource)
        if required is None:
            return None
        value = ((body.get("metadata") or {}).get("labels") or {}).get(required)
        return None if value is None else str(value)

    def _unindex(self, resource: Resource, namespace: str, name: str, entry: _Entry) -> None:
        label = self._required_value(resource, entry.body)
        if label is not None:
            self._labelled.get((resource, namespace, label), set()).discard(name)

    def _drop(self, resource: Resource, namespace: str, name: str) -> _Entry | None:
        entry = self._objects.get((resource, namespace), {}).pop(name, None)
        if entry is not None:
            self._unindex(resource, namespace, name, entry)
        return entry

    def observe_deleted(self, resource: Resource, body: Mapping[str, Any]) -> None:
        """The object is gone (a watch ``DELETED``): older events of it are ignored."""
        key = self._key(resource, body)
        if key is not None:
            self.deleted(resource, key[1], key[2], _version(body))

    def deleted(
        self, resource: Resource, namespace: str, name: str, version: int | None = None
    ) -> None:
        """Drops the object; events no newer than ``version`` (else than the kept body) are
        ignored for ``max_age`` seconds, so a late event cannot bring it back."""
        key = (resource, namespace, name)
        now = self.clock()
        with self._lock:
            entry = self._drop(resource, namespace, name)
            self._stale.discard(key)
            floor = version if version is not None else (entry.version if entry else None)
            if floor is not None:
                self._gone.pop(key, None)
                self._gone[key] = (floor, now)
            # Tombstones are kept in insertion order: expire the old ones from the front.
            for old in list(self._gone):
                if now - self._gone[old][1] <= self.max_age:
                    break
                del self._gone[old]

    def forget(self, resource: Resource, namespace: str, name: str) -> None:
        """The entry may be behind the server (a write conflicted): until the server's answer
        is observed again, lookups miss."""
        key = (resource, namespace, name)
        with self._lock:
            self._drop(resource, namespace, name)
            if resource in self._watched:
                self._stale.add(key)

    def lookup(self, resource: Resource, namespace: str, name: str) -> dict[str, Any] | None:
        """The cached body (do not modify it), or None: not cached, stale or too old."""
        key = (resource, namespace, name)
        with self._lock:
            entry = self._objects.get((resource, namespace), {}).get(name)
            if entry is None or key in self._stale or self.clock() - entry.at > self.max_age:
                return None
            self.hits += 1
            return entry.body

    def primed(self, resource: Resource, namespace: str, selector: str | None) -> None:
        """A listing with ``selector`` was just read from the server (its items observed)."""
        if self._coverable(resource, selector):
            with self._lock:
                self._listings[(resource, namespace, selector or "")] = self.clock()

    def _coverable(self, resource: Resource, selector: str | None) -> bool:
        if resource not in self._watched:
            return False
        terms = _equality_selector(selector)
        required = self._watched[resource]
        return terms is not None and (required is None or required in terms)

    def listing(
        self, resource: Resource, namespace: str, selector: str | None
    ) -> list[dict[str, Any]] | None:
        """The cached objects matching ``selector`` (do not modify them), or None when the
        cache cannot answer for that listing."""
        if not self._coverable(resource, selector):
            return None
        terms = _equality_selector(selector) or {}
        now = self.clock()
        with self._lock:
            since = self._listings.get((resource, namespace, selector or ""))
            if since is None or now - since > self.max_age:
                return None
            bucket = self._objects.get((resource, namespace), {})
            required = self._watched[resource]
            if required is None:
                candidates = list(bucket.values())
            else:
                names = self._labelled.get((resource, namespace, terms[required]), set())
                candidates = [bucket[n] for n in names if n in bucket]
            found: list[dict[str, Any]] = []
            for entry in candidates:
                labels = (entry.body.get("metadata") or {}).get("labels") or {}
                if all(labels.get(k) == v for k, v in terms.items()):
                    found.append(entry.body)
            self.hits += 1
            return found


__all__ = ["WatchCache"]
