"""The analysis template CRDs and the Rollout's template references on the lab's real API
server (``dryRun=All``: nothing is stored): what the schemas and CEL rules admit and refuse,
and the defaults they fill in."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from hack.cluster import Cluster
from hack.lab.testing.cluster_fixtures import Kubectl
from tests.lab.test_crd_admission import PLURALS, Admit, metric, rollout

pytestmark = pytest.mark.lab

PLURALS.setdefault("AnalysisTemplate", "analysistemplates")


def template(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "args": [{"name": "service", "required": True}],
        "metrics": [metric(successCondition="result < {{args.limit}}")],
    }
    body.update(spec)
    return {
        "apiVersion": "rollwise.dev/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "error-rate"},
        "spec": body,
    }


@pytest.fixture
def admit(lab_cluster: Cluster, namespace: str) -> Admit:
    return Admit(lab_cluster, namespace)


def test_a_template_gets_its_defaults(admit: Admit) -> None:
    stored, errors = admit(
        template(args=[{"name": "service", "required": True}, {"name": "limit", "default": "0.05"}])
    )
    assert errors == []
    args = stored["spec"]["args"]
    assert args[0] == {"name": "service", "required": True, "type": "string"}
    assert args[1] == {"name": "limit", "default": "0.05", "required": False, "type": "string"}
    assert stored["spec"]["metrics"][0]["count"] == 1


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param({"metrics": []}, "should have at least 1 items", id="no-metrics"),
        pytest.param(
            {"args": [{"name": "x", "required": True, "default": "1"}]},
            "a required arg has no default",
            id="required-with-default",
        ),
        pytest.param(
            {"args": [{"name": "x", "type": "number", "default": "five"}]},
            "the default of a number arg must be a number",
            id="number-default-not-a-number",
        ),
        pytest.param(
            {"args": [{"name": "x", "type": "integer"}]},
            'Unsupported value: "integer"',
            id="unknown-type",
        ),
        pytest.param({"args": [{"name": "x"}, {"name": "x"}]}, "Duplicate value", id="dup-args"),
        pytest.param({"args": [{"name": "a-b"}]}, "should match", id="arg-name-pattern"),
        pytest.param(
            {"metrics": [metric(), metric()]},
            "metric names must be unique within an analysis",
            id="dup-metrics",
        ),
        pytest.param(
            {"metrics": [metric(successCondition=None)]},
            "each metric needs exactly one kind",
            id="metric-rules-are-the-rollouts",
        ),
    ],
)
def test_invalid_templates_are_refused(admit: Admit, spec: dict[str, Any], message: str) -> None:
    _, errors = admit(template(**spec))
    assert any(message in e for e in errors), errors


def test_a_number_default_is_admitted(admit: Admit) -> None:
    _, errors = admit(template(args=[{"name": "limit", "type": "number", "default": "1e-3"}]))
    assert errors == []


REF = {"templateName": "error-rate", "args": [{"name": "service", "value": "demo"}]}


def test_a_rollout_with_references_is_admitted_with_defaults(admit: Admit) -> None:
    manifest = rollout(
        analysis={"templates": [REF]},
        steps=[{"setWeight": 5}, {"analysis": {"templates": [REF]}}, {"setWeight": 100}],
    )
    stored, errors = admit(manifest)
    assert errors == []
    canary = stored["spec"]["strategy"]["canary"]
    assert canary["analysis"]["templates"][0]["clusterScope"] is False
    assert canary["analysis"]["metrics"] == []
    assert canary["steps"][1]["analysis"]["templates"][0]["templateName"] == "error-rate"


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        pytest.param({"templateName": "Error_Rate"}, "should match", id="bad-name"),
        pytest.param({"args": []}, "templateName: Required value", id="no-name"),
        pytest.param(
            {
                "templateName": "t",
                "args": [{"name": "a", "value": "1"}, {"name": "a", "value": "2"}],
            },
            "Duplicate value",
            id="arg-given-twice",
        ),
        pytest.param(
            {"templateName": "t", "args": [{"name": "a"}]}, "value: Required value", id="no-value"
        ),
    ],
)
def test_invalid_references_are_refused(admit: Admit, ref: dict[str, Any], message: str) -> None:
    _, errors = admit(rollout(analysis={"templates": [copy.deepcopy(ref)]}))
    assert any(message in e for e in errors), errors


def test_an_analysis_step_with_only_templates_is_admitted(admit: Admit) -> None:
    _, errors = admit(rollout(steps=[{"analysis": {"templates": [REF]}}, {"setWeight": 100}]))
    assert errors == []


def test_kubectl_explain_and_the_rollwise_category(kubectl: Kubectl, namespace: str) -> None:
    explained = kubectl(
        "explain", "analysistemplate.spec.args", namespace=namespace, check=True
    ).stdout
    assert "The args the metrics use as {{args.NAME}}." in explained
    assert "required" in explained
    explained = kubectl(
        "explain", "clusteranalysistemplate.spec", namespace=namespace, check=True
    ).stdout
    assert "Metrics to reuse across Rollouts and ModelReleases" in explained
    explained = kubectl(
        "explain",
        "rollout.spec.strategy.canary.analysis.templates",
        namespace=namespace,
        check=True,
    ).stdout
    assert "Analysis templates whose metrics join this analysis" in explained
    resources = kubectl("api-resources", "--categories=rollwise", "-o", "name", check=True).stdout
    assert "analysistemplates.rollwise.dev" in resources.split()
    assert "clusteranalysistemplates.rollwise.dev" in resources.split()
