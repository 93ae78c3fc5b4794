"""Conformance of the API emulator's object semantics, over plain HTTP.

Each test proves one behaviour of kube-apiserver the project relies on: server-side
metadata, generateName, conflicts, status isolation, generation, no-op writes, the patch
formats, finalizers, garbage collection, selectors, Events, scale, validation, faults.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from hack.lab.kube.server import BackgroundAPIServer
from hack.lab.testing.kube_fixtures import KOPF_PEERING_CRDS, RawAPI

pytestmark = pytest.mark.lab

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"


def cm_path(ns: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{ns}/configmaps" + (f"/{name}" if name else "")


def widget_path(ns: str, name: str = "", sub: str = "") -> str:
    path = f"/apis/lab.rollwise.dev/v1/namespaces/{ns}/widgets"
    if name:
        path += f"/{name}"
    if sub:
        path += f"/{sub}"
    return path


def deploy_path(ns: str, name: str = "", sub: str = "") -> str:
    path = f"/apis/apps/v1/namespaces/{ns}/deployments"
    if name:
        path += f"/{name}"
    if sub:
        path += f"/{sub}"
    return path


def widget(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "lab.rollwise.dev/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": spec or {"color": "red"},
    }


def deployment(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "demo:1",
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                        }
                    ]
                },
            },
        },
    }


def test_create_assigns_server_metadata(raw_api: RawAPI, namespace: str) -> None:
    r = raw_api("POST", cm_path(namespace), {"metadata": {"name": "a"}, "data": {"k": "v"}})
    assert r.status_code == 201, r.text
    meta = r.json()["metadata"]
    assert meta["namespace"] == namespace
    assert len(meta["uid"]) == 36
    assert meta["resourceVersion"].isdigit()
    assert meta["creationTimestamp"].endswith("Z")
    r2 = raw_api("POST", cm_path(namespace), {"metadata": {"name": "b"}})
    assert int(r2.json()["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
    got = raw_api("GET", cm_path(namespace, "a")).json()
    assert got["kind"] == "ConfigMap"
    assert got["apiVersion"] == "v1"
    assert got["metadata"]["uid"] == meta["uid"]


def test_generate_name_gives_unique_names(raw_api: RawAPI, namespace: str) -> None:
    names = set()
    for _ in range(5):
        r = raw_api("POST", cm_path(namespace), {"metadata": {"generateName": "gen-"}})
        assert r.status_code == 201, r.text
        names.add(r.json()["metadata"]["name"])
    assert len(names) == 5
    assert all(n.startswith("gen-") and len(n) == len("gen-") + 5 for n in names)


@pytest.mark.usefixtures("widgets")
def test_create_conflicts_and_missing_objects_answer_status(
    raw_api: RawAPI, namespace: str
) -> None:
    assert raw_api("POST", cm_path(namespace), {"metadata": {"name": "x"}}).status_code == 201
    dup = raw_api("POST", cm_path(namespace), {"metadata": {"name": "x"}})
    assert dup.status_code == 409
    assert dup.json()["reason"] == "AlreadyExists"
    assert dup.json()["message"] == 'configmaps "x" already exists'
    missing = raw_api("GET", widget_path(namespace, "nope"))
    assert missing.status_code == 404
    body = missing.json()
    assert body["kind"] == "Status"
    assert body["reason"] == "NotFound"
    assert body["message"] == 'widgets.lab.rollwise.dev "nope" not found'


def test_namespace_mismatch_is_bad_request(raw_api: RawAPI, namespace: str) -> None:
    body = {"metadata": {"name": "m", "namespace": "elsewhere"}}
    r = raw_api("POST", cm_path(namespace), body)
    assert r.status_code == 400
    assert r.json()["reason"] == "BadRequest"
    missing_ns = raw_api("POST", cm_path("no-such-ns"), {"metadata": {"name": "m"}})
    assert missing_ns.status_code == 404
    assert missing_ns.json()["message"] == 'namespaces "no-such-ns" not found'


def test_list_has_kind_resource_version_and_pages(raw_api: RawAPI, namespace: str) -> None:
    for i in range(7):
        raw_api("POST", cm_path(namespace), {"metadata": {"name": f"p{i}"}})
    first = raw_api("GET", cm_path(namespace), params={"limit": 3}).json()
    assert first["kind"] == "ConfigMapList"
    assert first["apiVersion"] == "v1"
    assert first["metadata"]["resourceVersion"].isdigit()
    assert first["metadata"]["remainingItemCount"] == 4
    names = [i["metadata"]["name"] for i in first["items"]]
    token = first["metadata"]["continue"]
    while token:
        page = raw_api("GET", cm_path(namespace), params={"limit": 3, "continue": token}).json()
        names += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue")
    assert names == [f"p{i}" for i in range(7)]


def test_put_with_stale_resource_version_conflicts(raw_api: RawAPI, namespace: str) -> None:
    created = raw_api(
        "POST", cm_path(namespace), {"metadata": {"name": "c"}, "data": {"v": "1"}}
    ).json()
    stale = created["metadata"]["resourceVersion"]
    fresh = dict(created, data={"v": "2"})
    ok = raw_api("PUT", cm_path(namespace, "c"), fresh)
    assert ok.status_code == 200, ok.text
    assert ok.json()["metadata"]["resourceVersion"] != stale
    again = dict(created, data={"v": "3"})
    again["metadata"] = dict(created["metadata"], resourceVersion=stale)
    r = raw_api("PUT", cm_path(namespace, "c"), again)
    assert r.status_code == 409
    assert r.json()["reason"] == "Conflict"
    assert r.json()["message"] == (
        'Operation cannot be fulfilled on configmaps "c": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    assert raw_api("GET", cm_path(namespace, "c")).json()["data"] == {"v": "2"}


@pytest.mark.usefixtures("widgets")
def test_status_subresource_is_isolated_both_ways(raw_api: RawAPI, namespace: str) -> None:
    created = raw_api(
        "POST", widget_path(namespace), dict(widget("w"), status={"phase": "X"})
    ).json()
    assert "status" not in created, "status is dropped on create"
    assert created["metadata"]["generation"] == 1
    assert created["spec"]["replicas"] == 1, "schema default applied"
    # Main resource: status changes are ignored, spec changes bump generation.
    main = raw_api(
        "PATCH",
        widget_path(namespace, "w"),
        {"spec": {"color": "blue"}, "status": {"phase": "Ignored"}},
        content_type=MERGE,
    ).json()
    assert main["spec"]["color"] == "blue"
    assert "status" not in main
    assert main["metadata"]["generation"] == 2
    # Status: only status changes; generation does not move.
    st = raw_api(
        "PATCH",
        widget_path(namespace, "w", "status"),
        {"spec": {"color": "green"}, "status": {"phase": "Ready"}},
        content_type=MERGE,
    )
    assert st.status_code == 200, st.text
    body = st.json()
    assert body["status"] == {"phase": "Ready"}
    assert body["spec"]["color"] == "blue"
    assert body["metadata"]["generation"] == 2
    assert int(body["metadata"]["resourceVersion"]) > int(main["metadata"]["resourceVersion"])
    # Labels through the status endpoint are ignored too.
    lab = raw_api(
        "PATCH",
        widget_path(namespace, "w", "status"),
        {"metadata": {"labels": {"x": "y"}}},
        content_type=MERGE,
    ).json()
    assert "labels" not in lab["metadata"]


@pytest.mark.usefixtures("widgets")
def test_metadata_change_keeps_generation_and_noop_keeps_resource_version(
    raw_api: RawAPI, namespace: str
) -> None:
    created = raw_api("POST", widget_path(namespace), widget("g")).json()
    labelled = raw_api(
        "PATCH",
        widget_path(namespace, "g"),
        {"metadata": {"labels": {"a": "b"}}},
        content_type=MERGE,
    ).json()
    assert labelled["metadata"]["generation"] == 1
    assert labelled["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]
    rv = labelled["metadata"]["resourceVersion"]
    same = raw_api(
        "PATCH", widget_path(namespace, "g"), {"spec": {"color": "red"}}, content_type=MERGE
    )
    assert same.status_code == 200
    assert same.json()["metadata"]["resourceVersion"] == rv, "a no-op write keeps resourceVersion"
    put_same = raw_api("PUT", widget_path(namespace, "g"), same.json())
    assert put_same.json()["metadata"]["resourceVersion"] == rv
    history = raw_api(
        "GET",
        widget_path(namespace),
        params={"watch": "true", "resourceVersion": rv, "timeoutSeconds": "1"},
    )
    assert history.text.strip() == "", "no watch event for a no-op write"


@pytest.mark.usefixtures("widgets")
def test_json_patch_ops_and_failed_test(raw_api: RawAPI, namespace: str) -> None:
    raw_api("POST", widget_path(namespace), widget("j", color="red", items=["a", "b"]))
    ops = [
        {"op": "test", "path": "/spec/color", "value": "red"},
        {"op": "add", "path": "/spec/items/-", "value": "c"},
        {"op": "add", "path": "/spec/items/0", "value": "z"},
        {"op": "remove", "path": "/spec/items/1"},
        {"op": "replace", "path": "/spec/color", "value": "green"},
        {"op": "copy", "from": "/spec/items/0", "path": "/spec/items/-"},
        {"op": "move", "from": "/spec/items/0", "path": "/spec/items/-"},
    ]
    r = raw_api("PATCH", widget_path(namespace, "j"), ops, content_type=JSON_PATCH)
    assert r.status_code == 200, r.text
    assert r.json()["spec"]["items"] == ["b", "c", "z", "z"]
    assert r.json()["spec"]["color"] == "green"
    failed = raw_api(
        "PATCH",
        widget_path(namespace, "j"),
        [{"op": "test", "path": "/spec/color", "value": "red"}],
        content_type=JSON_PATCH,
    )
    assert failed.status_code == 422
    assert failed.json()["kind"] == "Status"
    assert "test failed" in failed.json()["message"]


def test_strategic_merge_patch_merges_lists_by_key(raw_api: RawAPI, namespace: str) -> None:
    assert raw_api("POST", deploy_path(namespace), deployment("s")).status_code == 201
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "env": [{"name": "B", "value": "3"}, {"name": "A", "$patch": "delete"}],
                        },
                        {"name": "side", "image": "side:1"},
                    ]
                }
            }
        }
    }
    r = raw_api("PATCH", deploy_path(namespace, "s"), patch, content_type=STRATEGIC)
    assert r.status_code == 200, r.text
    containers = r.json()["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["app", "side"]
    assert containers[0]["image"] == "demo:1"
    assert containers[0]["env"] == [{"name": "B", "value": "3"}]


@pytest.mark.usefixtures("widgets")
def test_strategic_merge_on_custom_resource_is_merge(raw_api: RawAPI, namespace: str) -> None:
    raw_api("POST", widget_path(namespace), widget("sm", color="red", items=["a"]))
    r = raw_api(
        "PATCH", widget_path(namespace, "sm"), {"spec": {"items": ["b"]}}, content_type=STRATEGIC
    )
    assert r.status_code == 200, r.text
    assert r.json()["spec"] == {"color": "red", "items": ["b"], "replicas": 1}


def test_unknown_fields_of_built_in_kinds_are_warned_about_or_refused(
    raw_api: RawAPI, namespace: str
) -> None:
    body = deployment("typo")
    body["spec"]["replica"] = 3
    r = raw_api("POST", deploy_path(namespace), body)
    assert r.status_code == 201, r.text
    assert r.headers["Warning"] == '299 - "unknown field \\"spec.replica\\""'
    strict = raw_api(
        "POST",
        deploy_path(namespace),
        dict(body, metadata={"name": "typo2"}),
        params={"fieldValidation": "Strict"},
    )
    assert strict.status_code == 400
    assert strict.json()["message"] == (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
        'unknown field "spec.replica"'
    )


def test_deployment_defaults_and_service_cluster_ip(raw_api: RawAPI, namespace: str) -> None:
    d = raw_api("POST", deploy_path(namespace), deployment("dd")).json()
    assert d["spec"]["replicas"] == 1
    assert d["spec"]["strategy"]["type"] == "RollingUpdate"
    assert d["metadata"]["generation"] == 1
    svc = {"metadata": {"name": "web"}, "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]}}
    s = raw_api("POST", f"/api/v1/namespaces/{namespace}/services", svc).json()
    assert s["spec"]["clusterIP"].startswith("10.96.")
    assert s["spec"]["ports"][0] == {"port": 80, "protocol": "TCP", "targetPort": 80}
    bad = deployment("bad")
    bad["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    r = raw_api("POST", deploy_path(namespace), bad)
    assert r.status_code == 422
    assert "`selector` does not match template `labels`" in r.json()["message"]


def test_scale_subresource_for_deployments(raw_api: RawAPI, namespace: str) -> None:
    raw_api("POST", deploy_path(namespace), deployment("sc"))
    scale = raw_api("GET", deploy_path(namespace, "sc", "scale")).json()
    assert scale["kind"] == "Scale"
    assert scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"]["replicas"] == 1
    assert scale["status"]["selector"] == "app=sc"
    r = raw_api(
        "PATCH",
        deploy_path(namespace, "sc", "scale"),
        {"spec": {"replicas": 4}},
        content_type=MERGE,
    )
    assert r.status_code == 200, r.text
    assert r.json()["spec"]["replicas"] == 4
    d = raw_api("GET", deploy_path(namespace, "sc")).json()
    assert d["spec"]["replicas"] == 4
    assert d["metadata"]["generation"] == 2


@pytest.mark.usefixtures("widgets")
def test_scale_subresource_for_custom_resources(raw_api: RawAPI, namespace: str) -> None:
    raw_api("POST", widget_path(namespace), widget("ws", replicas=2))
    raw_api(
        "PATCH",
        widget_path(namespace, "ws", "status"),
        {"status": {"replicas": 2, "selector": "app=ws"}},
        content_type=MERGE,
    )
    scale = raw_api("GET", widget_path(namespace, "ws", "scale")).json()
    assert scale["spec"]["replicas"] == 2
    assert scale["status"] == {"replicas": 2, "selector": "app=ws"}
    put = dict(scale, spec={"replicas": 5})
    assert (
        raw_api("PUT", widget_path(namespace, "ws", "scale"), put).json()["spec"]["replicas"] == 5
    )
    assert raw_api("GET", widget_path(namespace, "ws")).json()["spec"]["replicas"] == 5


@pytest.mark.usefixtures("widgets")
def test_schema_validation_answers_invalid_with_causes(raw_api: RawAPI, namespace: str) -> None:
    r = raw_api("POST", widget_path(namespace), widget("bad", color="pink", replicas=-1))
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["reason"] == "Invalid"
    assert body["message"].startswith('Widget.lab.rollwise.dev "bad" is invalid: [')
    fields = {c["field"] for c in body["details"]["causes"]}
    assert {"spec.color", "spec.replicas"} <= fields
    cel = raw_api("POST", widget_path(namespace), widget("cel", color="red", replicas=11))
    assert cel.status_code == 422
    assert "at most 10 replicas" in cel.json()["message"]
    assert not cel.json()["message"].split("is invalid: ")[1].startswith("["), (
        "one error: no brackets"
    )
    raw_api("POST", widget_path(namespace), widget("ok"))
    st = raw_api(
        "PATCH",
        widget_path(namespace, "ok", "status"),
        {"status": {"replicas": "many"}},
        content_type=MERGE,
    )
    assert st.status_code == 422, "status writes are validated as well"


@pytest.mark.usefixtures("widgets")
def test_finalizers_hold_deletion_until_removed(raw_api: RawAPI, namespace: str) -> None:
    body = widget("f")
    body["metadata"]["finalizers"] = ["lab.rollwise.dev/hold"]
    raw_api("POST", widget_path(namespace), body)
    d = raw_api("DELETE", widget_path(namespace, "f"))
    assert d.status_code == 200
    held = raw_api("GET", widget_path(namespace, "f")).json()
    assert held["metadata"]["deletionTimestamp"]
    assert held["metadata"]["deletionGracePeriodSeconds"] == 0
    assert held["metadata"]["generation"] == 2, "setting deletionTimestamp bumps generation"
    added = raw_api(
        "PATCH",
        widget_path(namespace, "f"),
        {"metadata": {"finalizers": ["lab.rollwise.dev/hold", "new"]}},
        content_type=MERGE,
    )
    assert added.status_code == 422, "no new finalizers on an object being deleted"
    rv = held["metadata"]["resourceVersion"]
    gone = raw_api(
        "PATCH", widget_path(namespace, "f"), {"metadata": {"finalizers": None}}, content_type=MERGE
    )
    assert gone.status_code == 200
    assert raw_api("GET", widget_path(namespace, "f")).status_code == 404
    events = raw_api(
        "GET",
        widget_path(namespace),
        params={"watch": "1", "resourceVersion": rv, "timeoutSeconds": "1"},
    ).text
    assert '"type":"DELETED"' in events


def _wait_gone(raw_api: RawAPI, path: str, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if raw_api("GET", path).status_code == 404:
            return True
        time.sleep(0.05)
    return False


def _owned_cm(raw_api: RawAPI, ns: str, name: str, owner: dict[str, Any]) -> None:
    ref = {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
    }
    r = raw_api("POST", cm_path(ns), {"metadata": {"name": name, "ownerReferences": [ref]}})
    assert r.status_code == 201


@pytest.mark.usefixtures("widgets")
@pytest.mark.parametrize(
    ("policy", "dependent_survives"),
    [
        pytest.param("Background", False, id="background"),
        pytest.param("Foreground", False, id="foreground"),
        pytest.param("Orphan", True, id="orphan"),
    ],
)
def test_garbage_collection_by_propagation_policy(
    raw_api: RawAPI, namespace: str, policy: str, dependent_survives: bool
) -> None:
    owner = raw_api("POST", widget_path(namespace), widget("owner")).json()
    _owned_cm(raw_api, namespace, "dep", owner)
    r = raw_api("DELETE", widget_path(namespace, "owner"), {"propagationPolicy": policy})
    assert r.status_code == 200
    assert _wait_gone(raw_api, widget_path(namespace, "owner"))
    if dependent_survives:
        time.sleep(0.5)
        dep = raw_api("GET", cm_path(namespace, "dep")).json()
        assert "ownerReferences" not in dep["metadata"]
    else:
        assert _wait_gone(raw_api, cm_path(namespace, "dep"))


@pytest.mark.usefixtures("widgets")
def test_garbage_collector_reads_only_owned_or_deleting_objects(
    apiserver: BackgroundAPIServer, raw_api: RawAPI, namespace: str
) -> None:
    # The collector's working set is indexed (Registry._gc_objects): a pass costs the objects
    # with owners or a deletionTimestamp, not every stored object (Events included).
    owner = raw_api("POST", widget_path(namespace), widget("owner")).json()
    _owned_cm(raw_api, namespace, "dep", owner)
    for index in range(20):
        raw_api("POST", cm_path(namespace), {"metadata": {"name": f"plain-{index}"}})
    registry = apiserver.server.registry
    names = {
        obj["metadata"]["name"]
        for _, obj in registry._gc_objects()
        if obj["metadata"].get("namespace") == namespace
    }
    assert names == {"dep"}
    raw_api("DELETE", widget_path(namespace, "owner"), {"propagationPolicy": "Background"})
    assert _wait_gone(raw_api, cm_path(namespace, "dep"))
    assert all(obj["metadata"].get("namespace") != namespace for _, obj in registry._gc_objects())
    assert raw_api("GET", cm_path(namespace, "plain-3")).status_code == 200


def test_label_selectors(raw_api: RawAPI, namespace: str) -> None:
    for name, labels in [
        ("a", {"tier": "web", "env": "prod"}),
        ("b", {"tier": "db", "env": "prod"}),
        ("c", {"tier": "web"}),
        ("d", {}),
    ]:
        raw_api("POST", cm_path(namespace), {"metadata": {"name": name, "labels": labels}})

    def names(selector: str) -> list[str]:
        r = raw_api("GET", cm_path(namespace), params={"labelSelector": selector})
        assert r.status_code == 200, r.text
        return [i["metadata"]["name"] for i in r.json()["items"]]

    assert names("tier=web") == ["a", "c"]
    assert names("tier==web,env=prod") == ["a"]
    assert names("tier!=web") == ["b", "d"]
    assert names("tier in (web, db)") == ["a", "b", "c"]
    assert names("tier notin (web)") == ["b", "d"]
    assert names("env") == ["a", "b"]
    assert names("!env") == ["c", "d"]


def test_field_selectors_and_unsupported_field(raw_api: RawAPI, namespace: str) -> None:
    raw_api("POST", cm_path(namespace), {"metadata": {"name": "one"}})
    raw_api("POST", cm_path(namespace), {"metadata": {"name": "two"}})
    r = raw_api("GET", cm_path(namespace), params={"fieldSelector": "metadata.name=two"})
    assert [i["metadata"]["name"] for i in r.json()["items"]] == ["two"]
    r = raw_api("GET", cm_path(namespace), params={"fieldSelector": "metadata.name!=two"})
    assert [i["metadata"]["name"] for i in r.json()["items"]] == ["one"]
    bad = raw_api("GET", cm_path(namespace), params={"fieldSelector": "data.x=1"})
    assert bad.status_code == 400
    assert bad.json()["reason"] == "BadRequest"
    assert "field label not supported: data.x" in bad.json()["message"]


@pytest.mark.usefixtures("widgets")
def test_field_selectors_on_crd_selectable_fields(raw_api: RawAPI, namespace: str) -> None:
    raw_api("POST", widget_path(namespace), widget("red", color="red"))
    raw_api("POST", widget_path(namespace), widget("blue", color="blue"))
    r = raw_api("GET", widget_path(namespace), params={"fieldSelector": "spec.color=blue"})
    assert [i["metadata"]["name"] for i in r.json()["items"]] == ["blue"]
    bad = raw_api("GET", widget_path(namespace), params={"fieldSelector": "spec.replicas=1"})
    assert bad.status_code == 400


def test_events_are_one_store_with_two_versions(raw_api: RawAPI, namespace: str) -> None:
    core = {
        "metadata": {"name": "ev1"},
        "involvedObject": {"kind": "Widget", "name": "w1", "namespace": namespace, "uid": "u1"},
        "reason": "StepAdvanced",
        "message": "to 25%",
        "type": "Normal",
    }
    assert raw_api("POST", f"/api/v1/namespaces/{namespace}/events", core).status_code == 201
    new = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "ev2"},
        "regarding": {"kind": "Widget", "name": "w2", "namespace": namespace},
        "note": "rolled back",
        "reason": "RolledBack",
        "type": "Warning",
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "reportingController": "rollwise",
        "reportingInstance": "rollwise-0",
        "action": "Rollback",
    }
    path = f"/apis/events.k8s.io/v1/namespaces/{namespace}/events"
    assert raw_api("POST", path, new).status_code == 201
    as_new = raw_api("GET", f"{path}/ev1").json()
    assert as_new["regarding"]["name"] == "w1"
    assert as_new["note"] == "to 25%"
    found = raw_api(
        "GET",
        f"/api/v1/namespaces/{namespace}/events",
        params={"fieldSelector": "involvedObject.name=w2,type=Warning"},
    ).json()["items"]
    assert [e["message"] for e in found] == ["rolled back"]
    by_reason = raw_api("GET", path, params={"fieldSelector": "reason=StepAdvanced"}).json()[
        "items"
    ]
    assert [e["metadata"]["name"] for e in by_reason] == ["ev1"]


def test_fault_injection_in_process_and_over_http(
    apiserver: BackgroundAPIServer, raw_api: RawAPI, namespace: str
) -> None:
    apiserver.server.faults.fail_next(2, status=429, verb="list", resource="configmaps")
    for _ in range(2):
        r = raw_api("GET", cm_path(namespace))
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "1"
        assert r.json()["reason"] == "TooManyRequests"
    assert raw_api("GET", cm_path(namespace)).status_code == 200
    ctl = raw_api(
        "POST",
        "/lab/faults",
        {"action": "fail_next", "n": 1, "status": 500, "verb": "create", "resource": "configmaps"},
    )
    assert ctl.status_code == 200, ctl.text
    assert raw_api("POST", cm_path(namespace), {"metadata": {"name": "f1"}}).status_code == 500
    assert raw_api("POST", cm_path(namespace), {"metadata": {"name": "f1"}}).status_code == 201
    raw_api("POST", "/lab/faults", {"action": "delay", "seconds": 0.3, "verb": "get"})
    start = time.monotonic()
    raw_api("GET", cm_path(namespace, "f1"))
    assert time.monotonic() - start >= 0.3
    assert raw_api("DELETE", "/lab/faults").status_code == 200
    start = time.monotonic()
    raw_api("GET", cm_path(namespace, "f1"))
    assert time.monotonic() - start < 0.3


def test_without_status_subresource_status_is_desired_state(
    apiserver: BackgroundAPIServer, raw_api: RawAPI
) -> None:
    crd_path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    if raw_api("GET", f"{crd_path}/clusterkopfpeerings.kopf.dev").status_code == 404:
        assert raw_api("POST", crd_path, KOPF_PEERING_CRDS[0]).status_code == 201
    path = "/apis/kopf.dev/v1/clusterkopfpeerings"
    name = f"p-{time.monotonic_ns()}"
    created = raw_api(
        "POST",
        path,
        {
            "apiVersion": "kopf.dev/v1",
            "kind": "ClusterKopfPeering",
            "metadata": {"name": name},
            "status": {"a": 1},
        },
    ).json()
    assert created["status"] == {"a": 1}, "no status subresource: status is written on create"
    patched = raw_api("PATCH", f"{path}/{name}", {"status": {"b": 2}}, content_type=MERGE).json()
    assert patched["status"] == {"a": 1, "b": 2}
    assert patched["metadata"]["generation"] == 2
    assert raw_api("GET", f"{path}/{name}/status").status_code == 404


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        pytest.param(
            {"labels": {"app": "not valid!"}},
            'metadata.labels: Invalid value: "not valid!": a valid label must be',
            id="label-value",
        ),
        pytest.param(
            {"labels": {"app": "x" * 64}},
            "must be no more than 63 characters",
            id="label-value-length",
        ),
        pytest.param(
            {"labels": {"Bad_Prefix/app": "x"}},
            "prefix part a lowercase RFC 1123",
            id="label-key-prefix",
        ),
        pytest.param(
            {"annotations": {"a b": "x"}},
            'metadata.annotations: Invalid value: "a b"',
            id="annotation-key",
        ),
        pytest.param(
            {"finalizers": ["hold"]},
            "name is neither a standard finalizer name nor is it fully qualified",
            id="unqualified-finalizer",
        ),
    ],
)
def test_object_metadata_is_validated(
    raw_api: RawAPI, namespace: str, metadata: dict[str, Any], message: str
) -> None:
    r = raw_api("POST", cm_path(namespace), {"metadata": {"name": "meta", **metadata}})
    assert r.status_code == 422, r.text
    assert r.json()["reason"] == "Invalid"
    assert message in r.json()["message"]


def test_patch_carrying_a_stale_resource_version_conflicts(raw_api: RawAPI, namespace: str) -> None:
    created = raw_api("POST", cm_path(namespace), {"metadata": {"name": "occ"}}).json()
    stale = created["metadata"]["resourceVersion"]
    raw_api("PATCH", cm_path(namespace, "occ"), {"data": {"a": "1"}}, content_type=MERGE)
    r = raw_api(
        "PATCH",
        cm_path(namespace, "occ"),
        {"metadata": {"resourceVersion": stale}, "data": {"a": "2"}},
        content_type=MERGE,
    )
    assert r.status_code == 409
    assert r.json()["reason"] == "Conflict"
    assert raw_api("GET", cm_path(namespace, "occ")).json()["data"] == {"a": "1"}


def test_delete_collection_by_label_and_dry_run(raw_api: RawAPI, namespace: str) -> None:
    for name, tier in [("a", "web"), ("b", "web"), ("c", "db")]:
        raw_api("POST", cm_path(namespace), {"metadata": {"name": name, "labels": {"tier": tier}}})
    dry = raw_api("POST", cm_path(namespace), {"metadata": {"name": "d"}}, params={"dryRun": "All"})
    assert dry.status_code == 201
    assert dry.json()["metadata"]["name"] == "d"
    assert raw_api("GET", cm_path(namespace, "d")).status_code == 404, "dry run persists nothing"
    r = raw_api("DELETE", cm_path(namespace), params={"labelSelector": "tier=web"})
    assert r.status_code == 200
    left = raw_api("GET", cm_path(namespace)).json()["items"]
    assert [i["metadata"]["name"] for i in left] == ["c"]


def test_service_update_keeps_cluster_ip(raw_api: RawAPI, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/services"
    svc = {"metadata": {"name": "keep"}, "spec": {"ports": [{"port": 80}]}}
    created = raw_api("POST", path, svc).json()
    ip = created["spec"]["clusterIP"]
    replaced = dict(svc, metadata=created["metadata"], spec={"ports": [{"port": 81}]})
    updated = raw_api("PUT", f"{path}/keep", replaced).json()
    assert updated["spec"]["clusterIP"] == ip
    assert updated["spec"]["ports"][0]["port"] == 81


def test_namespace_deletion_removes_its_objects(raw_api: RawAPI, namespace: str) -> None:
    raw_api("POST", cm_path(namespace), {"metadata": {"name": "inside"}})
    r = raw_api("DELETE", f"/api/v1/namespaces/{namespace}")
    assert r.status_code == 200
    assert r.json()["status"]["phase"] == "Terminating"
    assert _wait_gone(raw_api, f"/api/v1/namespaces/{namespace}")
    assert raw_api("GET", cm_path(namespace, "inside")).status_code == 404


@pytest.mark.parametrize("plural", [pytest.param("configmaps"), pytest.param("secrets")])
def test_immutable_data_cannot_change_but_metadata_can(
    raw_api: RawAPI, namespace: str, plural: str
) -> None:
    path = f"/api/v1/namespaces/{namespace}/{plural}"
    body = {"metadata": {"name": "sealed"}, "immutable": True, "data": {"k": "djE="}}
    assert raw_api("POST", path, body).status_code == 201
    changed = raw_api("PATCH", f"{path}/sealed", {"data": {"k": "djI="}}, content_type=MERGE)
    assert changed.status_code == 422
    message = changed.json()["message"]
    assert "data: Forbidden: field is immutable when `immutable` is set" in message
    unset = raw_api("PATCH", f"{path}/sealed", {"immutable": False}, content_type=MERGE)
    assert unset.status_code == 422
    assert "immutable: Forbidden" in unset.json()["message"]
    labelled = raw_api(
        "PATCH", f"{path}/sealed", {"metadata": {"labels": {"a": "b"}}}, content_type=MERGE
    )
    assert labelled.status_code == 200
    assert labelled.json()["data"] == {"k": "djE="}
