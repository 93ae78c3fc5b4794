"""Calls whose answer the operator drops (events, ConfigMap writes) give their pooled connection
back: under concurrent passes, an unread answer kept its connection until it was collected,
so each such call opened a new TCP connection to the API server (and against a real cluster,
a new TLS handshake)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import urllib3.connectionpool
from kubernetes import client

from rollwise.adapters.configmaps import ConfigMaps
from rollwise.adapters.kube import KubeAPI
from rollwise.adapters.objects import KubeCluster
from rollwise.core.events import Event
from rollwise.core.rollout import reasons as R
from rollwise.runtime.rollout.ports import RolloutObject

pytestmark = pytest.mark.lab

THREADS = 6
CALLS = 120


def new_connections(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that grows by one for every TCP connection urllib3 opens from now on."""
    opened: list[int] = []
    original = urllib3.connectionpool.HTTPConnectionPool._new_conn

    def counting(self: Any) -> Any:
        opened.append(1)
        return original(self)

    monkeypatch.setattr(urllib3.connectionpool.HTTPConnectionPool, "_new_conn", counting)
    return opened


def in_threads(call: Callable[[int], object]) -> None:
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(call, range(CALLS)))


def test_posting_events_reuses_connections(
    kube_client: Any, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = KubeCluster(kube_client)
    rollout = RolloutObject.from_body(
        {"metadata": {"namespace": namespace, "name": "web", "uid": "u-1"}, "spec": {}}
    )
    event = Event.of(R.WEIGHT_SET, step=1, steps=3, weight=5, split="5 of 20 pods")
    opened = new_connections(monkeypatch)
    in_threads(lambda _: cluster.post_event(rollout, event))
    listed = client.CoreV1Api(kube_client).list_namespaced_event(namespace)
    assert len(listed.items) == CALLS
    # At most one connection per thread; before the fix it was one per event.
    assert len(opened) <= THREADS, f"{len(opened)} connections for {CALLS} events"


def test_configmap_writes_reuse_connections(
    kube_client: Any, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    maps = ConfigMaps(KubeAPI(kube_client))
    counter = itertools.count()
    opened = new_connections(monkeypatch)

    def write(index: int) -> None:
        name = f"cm-{index % 10}"
        if index < 10:
            maps.create(namespace, {"metadata": {"name": name}, "data": {"n": "0"}})
        else:
            maps.merge_patch(namespace, name, {"data": {"n": str(next(counter))}})

    for index in range(10):  # the ConfigMaps first, so that every patch finds its object
        write(index)
    in_threads(lambda index: write(index + 10))
    assert maps.get(namespace, "cm-3") is not None
    assert len(opened) <= THREADS, f"{len(opened)} connections for {CALLS + 10} writes"
