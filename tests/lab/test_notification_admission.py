"""What the lab cluster's kube-apiserver admits under the NotificationPolicy CRD: the defaults
are the core's, its CEL rules refuse what ``rollwise.core.notification`` refuses with the same
meaning, and the example in ``examples/notifications`` is admitted and valid. Every manifest is
sent with ``dryRun=All`` (nothing is stored)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.cluster import Cluster
from rollwise.core.notification import load_policy_spec
from tests.lab.test_crd_admission import Admit

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "notifications" / "notificationpolicy.yaml"


@pytest.fixture
def admit(lab_cluster: Cluster, namespace: str) -> Admit:
    return Admit(lab_cluster, namespace)


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


def test_defaults_are_the_models(admit: Admit) -> None:
    admitted, errors = admit(manifest(copy.deepcopy(GOOD)))
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
def test_the_schema_refuses_what_the_core_refuses(
    admit: Admit, change: dict[str, Any], message: str
) -> None:
    spec = {**copy.deepcopy(GOOD), **change}
    _, errors = admit(manifest(spec))
    assert any(message in str(e) for e in errors), errors


def test_an_unknown_reason_passes_the_schema_and_is_invalid_spec_on_the_policy(
    admit: Admit,
) -> None:
    spec = {**copy.deepcopy(GOOD), "triggers": {"reasons": ["RolledBak"]}}
    admitted, errors = admit(manifest(spec))
    assert errors == []
    parsed, problems = load_policy_spec(admitted["spec"])
    assert parsed is None
    assert problems == ["spec.triggers.reasons[0]: 'RolledBak' is not an event reason of Rollwise"]


def test_the_example_is_admitted_and_valid(admit: Admit) -> None:
    docs = [d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d]
    policies = [d for d in docs if d["kind"] == "NotificationPolicy"]
    assert policies
    secrets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}
    for policy in policies:
        admitted, errors = admit(policy)
        assert errors == []
        parsed, problems = load_policy_spec(admitted["spec"])
        assert problems == []
        assert parsed is not None
        for sink in parsed.sinks:
            secret = secrets[sink.secret_ref.name]
            assert secret["metadata"]["labels"]["rollwise.dev/notification-sink"] == "true"
            assert "url" in secret["stringData"]
