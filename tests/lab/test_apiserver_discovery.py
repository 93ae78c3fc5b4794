"""Conformance of the API emulator's discovery: legacy discovery documents, OpenAPI v3, and
CRDs becoming served (and unserved) resources at once; invalid CRDs refused."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from hack.lab.testing.kube_fixtures import WIDGET_CRD, RawAPI

pytestmark = pytest.mark.lab


def test_crd_lifecycle_updates_discovery(raw_api: RawAPI, namespace: str) -> None:
    crd = json.loads(json.dumps(WIDGET_CRD))
    crd["metadata"]["name"] = "gadgets.lab.rollwise.dev"
    crd["spec"]["names"] = {"plural": "gadgets", "kind": "Gadget"}
    crd_path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    assert raw_api("POST", crd_path, crd).status_code == 201
    got = raw_api("GET", f"{crd_path}/gadgets.lab.rollwise.dev").json()
    conditions = {c["type"]: c["status"] for c in got["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    assert got["status"]["acceptedNames"]["listKind"] == "GadgetList"
    resources = raw_api("GET", "/apis/lab.rollwise.dev/v1").json()["resources"]
    assert {"gadgets", "gadgets/status", "gadgets/scale"} <= {r["name"] for r in resources}
    path = f"/apis/lab.rollwise.dev/v1/namespaces/{namespace}/gadgets"
    assert (
        raw_api(
            "POST",
            path,
            {
                "apiVersion": "lab.rollwise.dev/v1",
                "kind": "Gadget",
                "metadata": {"name": "g"},
                "spec": {},
            },
        ).status_code
        == 201
    )
    assert raw_api("DELETE", f"{crd_path}/gadgets.lab.rollwise.dev").status_code == 200
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and raw_api("GET", path).status_code != 404:
        time.sleep(0.05)
    assert raw_api("GET", path).status_code == 404
    names = {
        r["name"] for r in raw_api("GET", "/apis/lab.rollwise.dev/v1").json().get("resources", [])
    }
    assert "gadgets" not in names


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(
            {"metadata": {"name": "wrong.lab.rollwise.dev"}},
            'must be spec.names.plural+"."+spec.group',
            id="name-mismatch",
        ),
        pytest.param(
            {"spec": {"scope": "Galaxy"}}, 'spec.scope: Unsupported value: "Galaxy"', id="scope"
        ),
        pytest.param(
            {"spec": {"versions": []}},
            "must have exactly one version marked as storage",
            id="no-storage-version",
        ),
    ],
)
def test_invalid_crds_are_refused(raw_api: RawAPI, change: dict[str, Any], message: str) -> None:
    crd = json.loads(json.dumps(WIDGET_CRD))
    crd["metadata"]["name"] = "things.lab.rollwise.dev"
    crd["spec"]["names"] = {"plural": "things", "kind": "Thing"}
    for key, value in change.items():
        crd[key].update(value)
    r = raw_api("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    assert r.status_code == 422, r.text
    assert message in r.json()["message"]
    assert "things" not in {
        res["name"]
        for res in raw_api("GET", "/apis/lab.rollwise.dev/v1").json().get("resources", [])
    }


def test_discovery_documents(raw_api: RawAPI, widgets: Any) -> None:
    assert raw_api("GET", "/version").json()["major"] == "1"
    assert raw_api("GET", "/api").json()["versions"] == ["v1"]
    groups = {g["name"]: g for g in raw_api("GET", "/apis").json()["groups"]}
    assert {
        "apps",
        "apiextensions.k8s.io",
        "coordination.k8s.io",
        "events.k8s.io",
        "lab.rollwise.dev",
    } <= set(groups)
    assert groups["lab.rollwise.dev"]["preferredVersion"]["groupVersion"] == "lab.rollwise.dev/v1"
    core = {r["name"]: r for r in raw_api("GET", "/api/v1").json()["resources"]}
    assert core["configmaps"]["namespaced"] is True
    assert core["namespaces"]["namespaced"] is False
    assert core["services"]["shortNames"] == ["svc"]
    apps = {r["name"]: r for r in raw_api("GET", "/apis/apps/v1").json()["resources"]}
    assert apps["deployments/scale"]["kind"] == "Scale"
    assert apps["deployments/status"]["verbs"] == ["get", "patch", "update"]
    lab = {r["name"]: r for r in raw_api("GET", "/apis/lab.rollwise.dev/v1").json()["resources"]}
    assert lab["widgets"]["categories"] == ["lab"]
    assert lab["widgets"]["shortNames"] == ["wg"]
    assert "watch" in lab["widgets"]["verbs"]
    aggregated = raw_api(
        "GET",
        "/apis",
        headers={
            "Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
            "application/json"
        },
    )
    assert aggregated.headers["Content-Type"].startswith("application/json")
    assert aggregated.json()["kind"] == "APIGroupList", "legacy discovery answers the fallback type"
    root = raw_api("GET", "/openapi/v3").json()["paths"]
    assert "apis/lab.rollwise.dev/v1" in root
    doc = raw_api("GET", root["apis/lab.rollwise.dev/v1"]["serverRelativeURL"]).json()
    assert (
        doc["components"]["schemas"]["dev.rollwise.lab.v1.Widget"]["properties"]["spec"][
            "description"
        ]
        == "What the widget should be."
    )
