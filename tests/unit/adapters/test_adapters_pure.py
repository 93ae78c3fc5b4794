"""Pure parts of the workload adapter and the metric providers: the revision Deployment
manifest, ``RevisionState`` from a Deployment, and Prometheus result shapes."""

from __future__ import annotations

import math
from typing import Any

import pytest
from prometheus_api_client.exceptions import PrometheusApiClientException

from rollwise.adapters.errors import ProviderUnavailable, QueryError
from rollwise.adapters.metrics import MetricProvider, NopProvider
from rollwise.adapters.metrics.prometheus import error_from_client, value_of
from rollwise.adapters.workloads import RolloutRef, revision_deployment, revision_state
from rollwise.core.observations import RevisionState

ROLLOUT = RolloutRef(
    "shop",
    "web",
    "uid-1",
    {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "Exists"}]},
)


def test_revision_deployment_keeps_the_selector_expressions_and_template() -> None:
    template: dict[str, Any] = {
        "metadata": {"labels": {"app": "web", "tier": "front"}},
        "spec": {"containers": [{"name": "web", "image": "web:1"}]},
    }
    dep = revision_deployment(ROLLOUT, "abc", 3, template)
    assert dep["metadata"]["name"] == "web-abc"
    assert dep["spec"]["replicas"] == 3
    assert dep["spec"]["selector"] == {
        "matchLabels": {"app": "web", "rollwise.dev/revision": "abc"},
        "matchExpressions": [{"key": "tier", "operator": "Exists"}],
    }
    assert dep["spec"]["template"]["metadata"]["labels"]["rollwise.dev/revision"] == "abc"
    assert "rollwise.dev/revision" not in template["metadata"]["labels"]  # input untouched


@pytest.mark.parametrize(
    ("deployment", "state"),
    [
        pytest.param(
            {"metadata": {"generation": 2}, "spec": {"replicas": 3}, "status": {}},
            RevisionState(3, current=False),
            id="never-observed",
        ),
        pytest.param(
            {
                "metadata": {"generation": 2},
                "spec": {"replicas": 3},
                "status": {
                    "observedGeneration": 1,
                    "updatedReplicas": 2,
                    "readyReplicas": 2,
                    "availableReplicas": 2,
                },
            },
            RevisionState(3, 2, 2, 2, current=False),
            id="stale-status",
        ),
        pytest.param(
            {
                "metadata": {"generation": 2},
                "spec": {"replicas": 3},
                "status": {
                    "observedGeneration": 2,
                    "updatedReplicas": 3,
                    "readyReplicas": 3,
                    "availableReplicas": 3,
                },
            },
            RevisionState(3, 3, 3, 3, current=True),
            id="ready",
        ),
        pytest.param(
            {"metadata": {"generation": 1}, "spec": {}, "status": {"observedGeneration": 1}},
            RevisionState(1, current=True),
            id="default-one-replica",
        ),
    ],
)
def test_revision_state(deployment: dict[str, Any], state: RevisionState) -> None:
    assert revision_state(deployment) == state


@pytest.mark.parametrize(
    ("result", "value"),
    [
        pytest.param([], None, id="empty-vector"),
        pytest.param([{"metric": {}, "value": [1.0, "0.25"]}], 0.25, id="one-sample"),
        pytest.param([1.0, "3"], 3.0, id="scalar"),
        pytest.param([{"metric": {}, "value": [1.0, "+Inf"]}], math.inf, id="inf"),
    ],
)
def test_value_of(result: Any, value: float | None) -> None:
    assert value_of(result, "q") == value


def test_value_of_nan() -> None:
    got = value_of([1.0, "NaN"], "q")
    assert got is not None
    assert math.isnan(got)


@pytest.mark.parametrize(
    ("result", "message"),
    [
        pytest.param(
            [{"metric": {"a": "1"}, "value": [1, "1"]}, {"metric": {"a": "2"}, "value": [1, "2"]}],
            "returned 2 series; it must return one",
            id="two-series",
        ),
        pytest.param([{"metric": {}, "values": [[1, "1"]]}], "range vector", id="matrix"),
        pytest.param([1.0, "abc"], "non-numeric", id="string"),
        pytest.param({"x": 1}, "unexpected result", id="not-a-list"),
    ],
)
def test_value_of_refuses(result: Any, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        value_of(result, "q")


@pytest.mark.parametrize(
    ("text", "cls", "message"),
    [
        pytest.param(
            'HTTP Status Code 400 (b\'{"status":"error","errorType":"bad_data",'
            '"error":"parse error"}\')',
            QueryError,
            "bad_data: parse error",
            id="400-json",
        ),
        pytest.param("HTTP Status Code 503 (b'overloaded')", ProviderUnavailable, "503", id="503"),
        pytest.param("something else", ProviderUnavailable, "something else", id="unparsed"),
    ],
)
def test_error_from_client(text: str, cls: type[Exception], message: str) -> None:
    error = error_from_client(PrometheusApiClientException(text), "q")
    assert type(error) is cls
    assert message in str(error)


def test_nop_provider_answers_from_its_table() -> None:
    provider = NopProvider({"a": 1.0, "b": QueryError("bad")}, default=None)
    assert isinstance(provider, MetricProvider)
    assert provider.query("a", 1) == 1.0
    assert provider.query("c", 1) is None
    with pytest.raises(QueryError):
        provider.query("b", 1)
    assert provider.queries == ["a", "c", "b"]
    assert provider.is_online()
