"""Conformance of the API emulator's watch: replay from a resourceVersion without loss,
synthetic ADDED for the current state, bookmarks, 410 Gone past the history, timeouts,
selectors (objects entering and leaving a selection), all-namespace watches, dropped streams
and departed clients."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
import requests

from hack.lab.kube.server import BackgroundAPIServer
from hack.lab.testing.kube_fixtures import RawAPI

pytestmark = pytest.mark.lab


def cm_path(ns: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{ns}/configmaps" + (f"/{name}" if name else "")


def events(raw_api: RawAPI, path: str, **params: Any) -> list[dict[str, Any]]:
    params.setdefault("timeoutSeconds", "1")
    r = raw_api("GET", path, params={"watch": "true", **params}, timeout=15)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    return [json.loads(line) for line in r.text.splitlines() if line.strip()]


def test_watch_without_resource_version_sends_current_state_then_live(
    apiserver: BackgroundAPIServer, raw_api: RawAPI, namespace: str
) -> None:
    raw_api("POST", cm_path(namespace), {"metadata": {"name": "before"}})
    got: list[dict[str, Any]] = []

    def consume() -> None:
        got.extend(events(raw_api, cm_path(namespace), timeoutSeconds="2"))

    t = threading.Thread(target=consume)
    t.start()
    time.sleep(0.5)
    raw_api("POST", cm_path(namespace), {"metadata": {"name": "after"}})
    raw_api("DELETE", cm_path(namespace, "before"))
    t.join(10)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in got] == [
        ("ADDED", "before"),
        ("ADDED", "after"),
        ("DELETED", "before"),
    ]
    assert got[2]["object"]["kind"] == "ConfigMap"


def test_watch_from_resource_version_replays_every_change(raw_api: RawAPI, namespace: str) -> None:
    start = raw_api("GET", cm_path(namespace)).json()["metadata"]["resourceVersion"]
    raw_api("POST", cm_path(namespace), {"metadata": {"name": "r"}, "data": {"v": "1"}})
    raw_api(
        "PATCH",
        cm_path(namespace, "r"),
        {"data": {"v": "2"}},
        content_type="application/merge-patch+json",
    )
    raw_api("DELETE", cm_path(namespace, "r"))
    got = events(raw_api, cm_path(namespace), resourceVersion=start)
    assert [e["type"] for e in got] == ["ADDED", "MODIFIED", "DELETED"]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in got]
    assert rvs == sorted(rvs)
    assert rvs[0] > int(start)
    middle = str(rvs[0])
    assert [e["type"] for e in events(raw_api, cm_path(namespace), resourceVersion=middle)] == [
        "MODIFIED",
        "DELETED",
    ]


def test_too_old_resource_version_is_410_gone(raw_api: RawAPI, namespace: str) -> None:
    first = raw_api("POST", cm_path(namespace), {"metadata": {"name": "old"}}).json()
    rv = first["metadata"]["resourceVersion"]
    for i in range(210):  # the module's server keeps 200 changes per resource
        raw_api(
            "PATCH",
            cm_path(namespace, "old"),
            {"data": {"i": str(i)}},
            content_type="application/merge-patch+json",
        )
    got = events(raw_api, cm_path(namespace), resourceVersion=rv)
    assert len(got) == 1
    assert got[0]["type"] == "ERROR"
    status = got[0]["object"]
    assert status["kind"] == "Status"
    assert status["code"] == 410
    assert status["reason"] == "Expired"
    assert status["message"].startswith(f"too old resource version: {rv} (")


def test_bookmarks_carry_the_current_resource_version(raw_api: RawAPI, namespace: str) -> None:
    rv = raw_api("GET", cm_path(namespace)).json()["metadata"]["resourceVersion"]
    got = events(
        raw_api,
        cm_path(namespace),
        resourceVersion=rv,
        allowWatchBookmarks="true",
        timeoutSeconds="2",
    )
    bookmarks = [e for e in got if e["type"] == "BOOKMARK"]
    assert len(bookmarks) >= 2  # the module's server sends one every 0.5s
    assert bookmarks[-1]["object"]["kind"] == "ConfigMap"
    assert int(bookmarks[-1]["object"]["metadata"]["resourceVersion"]) >= int(rv)


def test_watch_timeout_is_honoured(raw_api: RawAPI, namespace: str) -> None:
    start = time.monotonic()
    assert events(raw_api, cm_path(namespace), timeoutSeconds="1") == []
    assert 0.9 <= time.monotonic() - start < 5


def test_selectors_apply_to_watches(raw_api: RawAPI, namespace: str) -> None:
    rv = raw_api("GET", cm_path(namespace)).json()["metadata"]["resourceVersion"]
    raw_api("POST", cm_path(namespace), {"metadata": {"name": "s1", "labels": {"app": "x"}}})
    raw_api("POST", cm_path(namespace), {"metadata": {"name": "s2", "labels": {"app": "y"}}})
    merge = "application/merge-patch+json"
    raw_api(
        "PATCH",
        cm_path(namespace, "s2"),
        {"metadata": {"labels": {"app": "x"}}},
        content_type=merge,
    )
    raw_api(
        "PATCH",
        cm_path(namespace, "s1"),
        {"metadata": {"labels": {"app": "z"}}},
        content_type=merge,
    )
    got = events(raw_api, cm_path(namespace), resourceVersion=rv, labelSelector="app=x")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in got] == [
        ("ADDED", "s1"),
        ("ADDED", "s2"),
        ("DELETED", "s1"),
    ]
    named = events(
        raw_api, cm_path(namespace), resourceVersion=rv, fieldSelector="metadata.name=s2"
    )
    assert {e["object"]["metadata"]["name"] for e in named} == {"s2"}


def test_all_namespaces_watch(raw_api: RawAPI, namespace: str) -> None:
    rv = raw_api("GET", "/api/v1/configmaps").json()["metadata"]["resourceVersion"]
    other = f"{namespace}-b"
    raw_api("POST", "/api/v1/namespaces", {"metadata": {"name": other}})
    raw_api("POST", cm_path(namespace), {"metadata": {"name": "n1"}})
    raw_api("POST", cm_path(other), {"metadata": {"name": "n2"}})
    got = events(raw_api, "/api/v1/configmaps", resourceVersion=rv)
    assert [
        (e["object"]["metadata"]["namespace"], e["object"]["metadata"]["name"]) for e in got
    ] == [(namespace, "n1"), (other, "n2")]
    legacy = events(raw_api, f"/api/v1/watch/namespaces/{other}/configmaps", resourceVersion=rv)
    assert [e["object"]["metadata"]["name"] for e in legacy] == ["n2"]


def test_drop_watches_breaks_open_streams(apiserver: BackgroundAPIServer, namespace: str) -> None:
    url = f"{apiserver.url}{cm_path(namespace)}?watch=true&timeoutSeconds=30"
    outcome: dict[str, Any] = {}

    def consume() -> None:
        start = time.monotonic()
        try:
            with requests.get(url, stream=True, timeout=30) as r:
                for _ in r.iter_lines():
                    pass
            outcome["error"] = None
        except requests.RequestException as err:
            outcome["error"] = err
        outcome["elapsed"] = time.monotonic() - start

    t = threading.Thread(target=consume)
    t.start()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not apiserver.server.store.watchers():
        time.sleep(0.05)
    assert apiserver.server.faults.drop_watches("configmaps") >= 1
    t.join(10)
    assert outcome["elapsed"] < 5
    assert outcome["error"] is not None, "the stream ends abruptly, not with a clean EOF"


def test_watch_opened_during_writes_loses_nothing(raw_api: RawAPI, namespace: str) -> None:
    created = raw_api("POST", cm_path(namespace), {"metadata": {"name": "busy"}}).json()
    rv = created["metadata"]["resourceVersion"]
    writer = RawAPI(raw_api.base)
    total = 80

    def write() -> None:
        for i in range(total):
            writer(
                "PATCH",
                cm_path(namespace, "busy"),
                {"data": {"i": str(i)}},
                content_type="application/merge-patch+json",
            )

    t = threading.Thread(target=write)
    t.start()
    time.sleep(0.05)  # the watch below connects while the writer is busy
    got = events(raw_api, cm_path(namespace), resourceVersion=rv, timeoutSeconds="3")
    t.join(10)
    values = [int(e["object"]["data"]["i"]) for e in got if e["type"] == "MODIFIED"]
    assert values == list(range(total))


def test_watch_of_a_departed_client_is_unsubscribed(
    apiserver: BackgroundAPIServer, namespace: str
) -> None:
    before = len(apiserver.server.store.watchers())
    url = f"{apiserver.url}{cm_path(namespace)}?watch=true"
    with requests.get(url, stream=True, timeout=10) as r:
        assert r.status_code == 200
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(apiserver.server.store.watchers()) == before:
            time.sleep(0.02)
        assert len(apiserver.server.store.watchers()) == before + 1
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(apiserver.server.store.watchers()) > before:
        time.sleep(0.02)
    assert len(apiserver.server.store.watchers()) == before
