"""Which webhooks a request selects: rules, scopes and label selectors, as kube-apiserver's."""

from __future__ import annotations

from typing import Any

import pytest

from hack.lab.kube.admission import SelectorError, label_selector_matches, rule_matches
from hack.lab.kube.contracts import AdmissionAttributes, UserInfo


def request(**overrides: Any) -> AdmissionAttributes:
    values: dict[str, Any] = {
        "operation": "UPDATE",
        "group": "rollwise.dev",
        "version": "v1alpha1",
        "resource": "modelreleases",
        "subresource": "",
        "kind": "ModelRelease",
        "namespace": "ml",
        "name": "fraud",
        "user": UserInfo(username="bob"),
    }
    values.update(overrides)
    return AdmissionAttributes(**values)


def rule(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "operations": ["CREATE", "UPDATE"],
        "apiGroups": ["rollwise.dev"],
        "apiVersions": ["v1alpha1"],
        "resources": ["modelreleases"],
    }
    values.update(overrides)
    return values


NAMESPACE = {"group": "", "version": "v1", "resource": "namespaces", "kind": "Namespace"}


@pytest.mark.parametrize(
    ("the_rule", "the_request", "matches"),
    [
        pytest.param(rule(), request(), True, id="exact"),
        pytest.param(rule(), request(operation="DELETE"), False, id="operation-not-listed"),
        pytest.param(rule(operations=["*"]), request(operation="DELETE"), True, id="any-operation"),
        pytest.param(rule(), request(group="other.dev"), False, id="other-group"),
        pytest.param(rule(apiGroups=["*"]), request(group="other.dev"), True, id="any-group"),
        pytest.param(rule(), request(version="v1"), False, id="other-version"),
        pytest.param(rule(apiVersions=["*"]), request(version="v1"), True, id="any-version"),
        pytest.param(rule(), request(subresource="status"), False, id="plain-not-status"),
        pytest.param(
            rule(resources=["modelreleases/status"]),
            request(subresource="status"),
            True,
            id="resource-slash-subresource",
        ),
        pytest.param(
            rule(resources=["modelreleases/status"]), request(), False, id="status-rule-not-main"
        ),
        pytest.param(rule(resources=["*"]), request(), True, id="star-main-resource"),
        pytest.param(
            rule(resources=["*"]), request(subresource="status"), False, id="star-not-subresource"
        ),
        pytest.param(
            rule(resources=["*/*"]), request(subresource="scale"), True, id="star-star-all"
        ),
        pytest.param(
            rule(resources=["*/status"]), request(subresource="status"), True, id="any-status"
        ),
        pytest.param(
            rule(resources=["modelreleases/*"]),
            request(subresource="status"),
            True,
            id="any-subresource-of-resource",
        ),
        pytest.param(rule(scope="Namespaced"), request(), True, id="namespaced-scope"),
        pytest.param(rule(scope="Cluster"), request(), False, id="cluster-scope-namespaced-obj"),
        pytest.param(
            rule(scope="Cluster"), request(namespace=None), True, id="cluster-scope-cluster-obj"
        ),
        pytest.param(rule(scope="*"), request(namespace=None), True, id="any-scope"),
        pytest.param(
            rule(apiGroups=[""], apiVersions=["v1"], resources=["namespaces"], scope="Cluster"),
            request(**NAMESPACE, namespace="ml"),
            True,
            id="namespace-object-is-cluster-scoped",
        ),
        pytest.param(
            rule(apiGroups=[""], apiVersions=["v1"], resources=["namespaces"], scope="Namespaced"),
            request(**NAMESPACE, namespace="ml"),
            False,
            id="namespace-object-is-not-namespaced",
        ),
    ],
)
def test_rule_matches(
    the_rule: dict[str, Any], the_request: AdmissionAttributes, matches: bool
) -> None:
    assert rule_matches(the_rule, the_request) is matches


LABELS = {"env": "prod", "team": "ml"}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        pytest.param(None, True, id="absent"),
        pytest.param({}, True, id="empty"),
        pytest.param({"matchLabels": {"env": "prod"}}, True, id="match-labels"),
        pytest.param({"matchLabels": {"env": "dev"}}, False, id="match-labels-differ"),
        pytest.param(
            {"matchExpressions": [{"key": "env", "operator": "In", "values": ["dev", "prod"]}]},
            True,
            id="in",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]},
            False,
            id="not-in",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["x"]}]},
            True,
            id="not-in-absent-key",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "team", "operator": "Exists"}]}, True, id="exists"
        ),
        pytest.param(
            {"matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]},
            False,
            id="does-not-exist",
        ),
        pytest.param(
            {
                "matchLabels": {"env": "prod"},
                "matchExpressions": [{"key": "tier", "operator": "Exists"}],
            },
            False,
            id="all-requirements-must-hold",
        ),
    ],
)
def test_label_selector(selector: dict[str, Any] | None, matches: bool) -> None:
    assert label_selector_matches(selector, LABELS) is matches


def test_unknown_selector_operator_is_an_error() -> None:
    with pytest.raises(SelectorError, match="Near"):
        label_selector_matches({"matchExpressions": [{"key": "a", "operator": "Near"}]}, LABELS)
