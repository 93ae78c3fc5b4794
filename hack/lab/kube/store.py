"""The emulator's storage: objects in memory, the resource-type registry, resourceVersions
and the bounded per-resource event history that watches replay from.

Every commit is synchronous and happens under one lock, so a watch's history replay and its
subscription are atomic (no event can fall between them). ``resourceVersion`` is a global
counter, as etcd's revision is; every committed change takes the next value.

Boundary: the store checks only what storage checks (existence, resourceVersion
preconditions); API semantics (defaults, status isolation, admission, finalizers) are the
registry's (``hack.lab.kube.registry``).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from hack.lab.kube.errors import already_exists, conflict, not_found
from hack.lab.kube.patching import copy_json
from hack.lab.kube.resources import ResourceType, StorageKey, builtin_types
from hack.lab.kube.selectors import FieldSelector, LabelSelector

ObjectKey = tuple[str, str]  # (namespace or "", name)


@dataclass(frozen=True)
class Change:
    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    obj: dict[str, Any]  # stored form; never mutated after commit
    old: dict[str, Any] | None
    #: The watch event line as sent, by (apiVersion, event type): every watcher of the same
    #: version gets the same bytes, so the object is encoded once, not once per watcher.
    encoded: dict[tuple[str, str], bytes] = field(default_factory=dict, compare=False, repr=False)


#: Queue items that are not changes.
DROP = "drop"  # fault injection: close the stream abruptly
END = "end"  # the resource is no longer served: end the stream cleanly


class StaleError(Exception):
    """The stored object changed since the caller read it."""


@dataclass(eq=False)
class Watcher:
    storage: StorageKey
    namespace: str | None
    loop: asyncio.AbstractEventLoop
    plural: str
    queue: asyncio.Queue[Change | str] = field(default_factory=asyncio.Queue)

    def offer(self, item: Change | str) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self.queue.put_nowait(item)
        else:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)


@dataclass
class Bucket:
    history_limit: int
    objects: dict[ObjectKey, dict[str, Any]] = field(default_factory=dict)
    history: deque[Change] = field(default_factory=deque)
    compacted: int = 0  # changes with rv <= compacted are no longer replayable
    watchers: set[Watcher] = field(default_factory=set)

    def record(self, change: Change) -> None:
        if len(self.history) >= self.history_limit:
            self.compacted = self.history.popleft().rv
        self.history.append(change)
        for watcher in list(self.watchers):
            if watcher.namespace is None or _ns(change.obj) == watcher.namespace:
                watcher.offer(change)


def _ns(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


def key_of(obj: dict[str, Any]) -> ObjectKey:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


class Store:
    def __init__(self, *, watch_history: int = 10000) -> None:
        self.watch_history = max(1, watch_history)
        self.lock = threading.RLock()
        self.rv = 1
        self.types: dict[tuple[str, str, str], ResourceType] = {}
        self.types_version = 0  # moves whenever the served types change (discovery caches)
        self.buckets: dict[StorageKey, Bucket] = {}
        self.uids: dict[str, tuple[StorageKey, ObjectKey]] = {}
        self.listeners: list[Callable[[StorageKey, Change], None]] = []
        for rt in builtin_types():
            self.register(rt)

    # ---------------------------------------------------------------------------- types

    def register(self, rt: ResourceType) -> None:
        with self.lock:
            self.types_version += 1
            self.types[(rt.group, rt.version, rt.plural)] = rt
            self.buckets.setdefault(rt.storage_key, Bucket(self.watch_history))

    def unregister_crd(self, crd_name: str, *, drop_storage: bool) -> None:
        with self.lock:
            self.types_version += 1
            gone = [k for k, rt in self.types.items() if rt.crd == crd_name]
            storages = {self.types[k].storage_key for k in gone}
            for k in gone:
                del self.types[k]
            if drop_storage:
                for storage in storages:
                    bucket = self.buckets.pop(storage, None)
                    if bucket is None:
                        continue
                    for obj in bucket.objects.values():
                        self.uids.pop(obj["metadata"].get("uid", ""), None)
                    for watcher in bucket.watchers:
                        watcher.offer(END)

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self.types.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        for rt in self.types.values():
            if rt.group == group and rt.version == version and rt.kind == kind:
                return rt
        return None

    def served(self) -> list[ResourceType]:
        return list(self.types.values())

    # ---------------------------------------------------------------------------- reads

    def view(self, rt: ResourceType, stored: dict[str, Any]) -> dict[str, Any]:
        """A caller-owned copy of a stored object, as ``rt``'s version shows it."""
        obj: dict[str, Any] = copy_json(stored)
        if rt.from_storage is not None:
            obj = rt.from_storage(obj)
        else:
            obj["apiVersion"] = rt.api_version
        obj["kind"] = rt.kind
        return obj

    def to_storage(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        return rt.to_storage(obj) if rt.to_storage is not None else obj

    def stored(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any] | None:
        bucket = self.buckets.get(rt.storage_key)
        return None if bucket is None else bucket.objects.get((namespace, name))

    def get(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            stored = self.stored(rt, namespace, name)
            return None if stored is None else self.view(rt, stored)

    def iter_stored(
        self, storage: StorageKey, namespace: str | None = None
    ) -> Iterator[dict[str, Any]]:
        bucket = self.buckets.get(storage)
        if bucket is None:
            return
        for (ns, _), obj in list(bucket.objects.items()):
            if namespace is None or ns == namespace:
                yield obj

    def list_objects(
        self,
        rt: ResourceType,
        namespace: str | None,
        labels: LabelSelector,
        fields: FieldSelector,
    ) -> tuple[list[dict[str, Any]], int]:
        """Matching objects sorted by (namespace, name), and the list's resourceVersion."""
        with self.lock:
            bucket = self.buckets.get(rt.storage_key)
            keys = sorted(bucket.objects) if bucket else []
            out = []
            for key in keys:
                if namespace is not None and key[0] != namespace:
                    continue
                assert bucket is not None
                stored = bucket.objects[key]
                if labels and not labels.matches(stored):
                    continue
                obj = self.view(rt, stored)
                if fields and not fields.matches(obj):
                    continue
                out.append(obj)
            return out, self.rv

    def locate_uid(self, uid: str) -> tuple[StorageKey, ObjectKey] | None:
        return self.uids.get(uid)

    # ---------------------------------------------------------------------------- writes

    def _next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def _emit(self, storage: StorageKey, change: Change) -> None:
        self.buckets[storage].record(change)
        for listener in self.listeners:
            listener(storage, change)

    def insert(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """Stores a new object (storage form); returns the stored object."""
        with self.lock:
            bucket = self.buckets[rt.storage_key]
            key = key_of(obj)
            if key in bucket.objects:
                raise already_exists(rt.plural, rt.group, key[1])
            rv = self._next_rv()
            stored: dict[str, Any] = copy_json(obj)
            stored["metadata"]["resourceVersion"] = str(rv)
            bucket.objects[key] = stored
            self.uids[stored["metadata"]["uid"]] = (rt.storage_key, key)
            self._emit(rt.storage_key, Change(rv, "ADDED", stored, None))
            return stored

    def replace(self, rt: ResourceType, obj: dict[str, Any], expected_rv: str) -> dict[str, Any]:
        with self.lock:
            bucket = self.buckets.get(rt.storage_key)
            key = key_of(obj)
            old = bucket.objects.get(key) if bucket else None
            if old is None:
                raise not_found(rt.plural, rt.group, key[1])
            if old["metadata"]["resourceVersion"] != expected_rv:
                raise StaleError
            assert bucket is not None
            rv = self._next_rv()
            stored: dict[str, Any] = copy_json(obj)
            stored["metadata"]["resourceVersion"] = str(rv)
            bucket.objects[key] = stored
            self._emit(rt.storage_key, Change(rv, "MODIFIED", stored, old))
            return stored

    def remove(
        self, rt: ResourceType, namespace: str, name: str, expected_rv: str | None
    ) -> dict[str, Any]:
        with self.lock:
            bucket = self.buckets.get(rt.storage_key)
            old = bucket.objects.get((namespace, name)) if bucket else None
            if old is None:
                raise not_found(rt.plural, rt.group, name)
            if expected_rv is not None and old["metadata"]["resourceVersion"] != expected_rv:
                raise StaleError
            assert bucket is not None
            del bucket.objects[(namespace, name)]
            self.uids.pop(old["metadata"].get("uid", ""), None)
            rv = self._next_rv()
            final: dict[str, Any] = copy_json(old)
            final["metadata"]["resourceVersion"] = str(rv)
            self._emit(rt.storage_key, Change(rv, "DELETED", final, old))
            return final

    # ---------------------------------------------------------------------------- watch

    def watch(
        self,
        rt: ResourceType,
        namespace: str | None,
        since: int | None,
        loop: asyncio.AbstractEventLoop,
    ) -> tuple[Watcher, list[Change], int]:
        """Subscribes and returns (watcher, changes to send first, store rv at subscription).

        ``since`` None: the current objects as synthetic ADDED changes. Otherwise the recorded
        changes after ``since``; raises ``gone`` when they are no longer all recorded.
        """
        with self.lock:
            bucket = self.buckets.get(rt.storage_key)
            if bucket is None:
                raise not_found(rt.plural, rt.group, "")
            if since is None:
                first = [
                    Change(int(o["metadata"]["resourceVersion"]), "ADDED", o, None)
                    for k, o in sorted(bucket.objects.items())
                    if namespace is None or k[0] == namespace
                ]
            else:
                if since < bucket.compacted:
                    raise TooOld(since, bucket.compacted + 1)
                first = [
                    c
                    for c in bucket.history
                    if c.rv > since and (namespace is None or _ns(c.obj) == namespace)
                ]
            watcher = Watcher(rt.storage_key, namespace, loop, rt.plural)
            bucket.watchers.add(watcher)
            return watcher, first, self.rv

    def unwatch(self, watcher: Watcher) -> None:
        with self.lock:
            bucket = self.buckets.get(watcher.storage)
            if bucket is not None:
                bucket.watchers.discard(watcher)

    def watchers(self) -> list[Watcher]:
        with self.lock:
            return [w for b in self.buckets.values() for w in b.watchers]


class TooOld(Exception):
    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.message = f"too old resource version: {requested} ({oldest})"


__all__ = [
    "DROP",
    "END",
    "Bucket",
    "Change",
    "StaleError",
    "Store",
    "TooOld",
    "Watcher",
    "conflict",
]
