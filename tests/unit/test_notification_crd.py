"""The NotificationPolicy CRD: it agrees with ``rollwise.core.notification`` field by field, is
complete for ``kubectl explain`` and ``kubectl get``, and its CEL rules refuse what the core's
validation refuses, with the same meaning. The example in ``examples/`` is admitted and valid.

Admission goes through the lab's structural-schema engine (``hack.lab.kube.schema``); the real
API server takes the CRD in ``tests/cluster/test_notifications_cluster.py``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.lab.kube.schema import StructuralSchema, admit_custom_resource
from rollwise.core.notification import NotificationPolicySpec, load_policy_spec
from tests.unit.test_crds import compare_model, walk

ROOT = Path(__file__).resolve().parents[2]
CRD = yaml.safe_load((ROOT / "crds" / "notificationpolicies.rollwise.dev.yaml").read_text())
VERSION = CRD["spec"]["versions"][0]
OPENAPI = VERSION["schema"]["openAPIV3Schema"]
SCHEMA = StructuralSchema(OPENAPI)
EXAMPLE = ROOT / "examples" / "notifications" / "notificationpolicy.yaml"


def test_names_categories_and_status_subresource() -> None:
    names = CRD["spec"]["names"]
    assert (names["kind"], names["plural"]) == ("NotificationPolicy", "notificationpolicies")
    assert names["categories"] == ["rollwise"]
    assert CRD["spec"]["scope"] == "Namespaced"
    assert VERSION["subresources"] == {"status": {}}
    columns = [(c["name"], c["jsonPath"]) for c in VERSION["additionalPrinterColumns"]]
    assert columns[0] == ("Ready", '.status.conditions[?(@.type=="Ready")].status')
    assert columns[-1] == ("Age", ".metadata.creationTimestamp")


def test_every_property_has_a_description() -> None:
    undocumented = [
        f"{path}.{name}" if path else name
        for path, node in walk(OPENAPI)
        for name, sub in node.get("properties", {}).items()
        if not str(sub.get("description", "")).strip() and (path, name) != ("", "metadata")
    ]
    assert undocumented == []


def test_crd_spec_matches_the_model() -> None:
    problems: list[str] = []
    compare_model(NotificationPolicySpec, OPENAPI["properties"]["spec"], "spec", problems)
    assert problems == []


def manifest(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "rollwise.dev/v1alpha1",
        "kind": "NotificationPolicy",
        "metadata": {"name": "p", "namespace": "shop"},
        "spec": spec,
    }


GOOD: dict[str, Any] = {
    "triggers": {"reasons": ["RolledBack"]},
    "sinks": [{"name": "a", "secretRef": {"name": "s"}, "cloudEvents": {}}],
}


def test_defaults_are_the_models() -> None:
    admitted, errors = admit_custom_resource(SCHEMA, manifest(copy.deepcopy(GOOD)))
    assert errors == []
    spec = admitted["spec"]
    assert spec["selector"]["kinds"] == ["Rollout", "ModelRelease"]
    assert spec["delivery"] == {"timeoutSeconds": 5, "retries": 3}
    assert spec["sinks"][0]["cloudEvents"] == {"mode": "structured"}
    parsed, problems = load_policy_spec(spec)
    assert problems == []
    assert parsed is not None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(
            {"sinks": [{"name": "a", "secretRef": {"name": "s"}}]},
            "set exactly one of webhook, cloudEvents, slack",
            id="no-type",
        ),
        pytest.param(
            {"sinks": [{"name": "a", "secretRef": {"name": "s"}, "webhook": {}, "slack": {}}]},
            "set exactly one of webhook, cloudEvents, slack",
            id="two-types",
        ),
        pytest.param(
            {
                "sinks": [
                    {"name": "a", "secretRef": {"name": "s"}, "webhook": {}},
                    {"name": "a", "secretRef": {"name": "s"}, "slack": {}},
                ]
            },
            "sink names must be unique",
            id="duplicate-names",
        ),
        pytest.param(
            {"selector": {"matchExpressions": [{"key": "k", "operator": "In"}]}},
            "In and NotIn need values",
            id="in-without-values",
        ),
        pytest.param(
            {"selector": {"kinds": ["Rollout", "Rollout"]}},
            "a kind is listed twice",
            id="duplicate-kind",
        ),
        pytest.param(
            {"delivery": {"timeoutSeconds": 30}}, "less than or equal to 10", id="timeout"
        ),
        pytest.param({"triggers": {"reasons": ["rolled back"]}}, "should match", id="reason-shape"),
    ],
)
def test_the_schema_refuses_what_the_core_refuses(change: dict[str, Any], message: str) -> None:
    spec = {**copy.deepcopy(GOOD), **change}
    _, errors = admit_custom_resource(SCHEMA, manifest(spec))
    assert any(message in str(e) for e in errors), errors


def test_an_unknown_reason_passes_the_schema_and_is_invalid_spec_on_the_policy() -> None:
    spec = {**copy.deepcopy(GOOD), "triggers": {"reasons": ["RolledBak"]}}
    admitted, errors = admit_custom_resource(SCHEMA, manifest(spec))
    assert errors == []
    parsed, problems = load_policy_spec(admitted["spec"])
    assert parsed is None
    assert problems == ["spec.triggers.reasons[0]: 'RolledBak' is not an event reason of Rollwise"]


def test_the_example_is_admitted_and_valid() -> None:
    docs = [d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d]
    policies = [d for d in docs if d["kind"] == "NotificationPolicy"]
    assert policies
    secrets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}
    for policy in policies:
        admitted, errors = admit_custom_resource(SCHEMA, policy)
        assert errors == []
        parsed, problems = load_policy_spec(admitted["spec"])
        assert problems == []
        assert parsed is not None
        for sink in parsed.sinks:
            secret = secrets[sink.secret_ref.name]
            assert secret["metadata"]["labels"]["rollwise.dev/notification-sink"] == "true"
            assert "url" in secret["stringData"]
