"""The web metric provider's pure parts: picking the value, keeping the path on its host."""

from __future__ import annotations

import math
from typing import Any

import pytest

from rollwise.adapters.errors import QueryError
from rollwise.adapters.metrics.web import join_path, value_at


@pytest.mark.parametrize(
    ("document", "path", "value"),
    [
        pytest.param({"data": {"value": 0.02}}, "$.data.value", 0.02, id="a-number"),
        pytest.param({"data": {"value": "0.5"}}, "$.data.value", 0.5, id="a-number-string"),
        pytest.param({"data": {"value": 3}}, "$.data.value", 3.0, id="an-integer"),
        pytest.param({"data": {}}, "$.data.value", None, id="no-match-is-no-data"),
        pytest.param({"data": {"value": None}}, "$.data.value", None, id="null-is-no-data"),
        pytest.param(
            {"series": [{"name": "p50", "v": 1}, {"name": "p99", "v": 9}]},
            "$.series[?(@.name == 'p99')].v",
            9.0,
            id="a-filter",
        ),
    ],
)
def test_value_at(document: Any, path: str, value: float | None) -> None:
    assert value_at(document, path) == value


def test_nan_stays_nan() -> None:
    got = value_at({"v": "NaN"}, "$.v")
    assert got is not None
    assert math.isnan(got)


@pytest.mark.parametrize(
    ("document", "path", "message"),
    [
        pytest.param({"v": [1, 2]}, "$.v[*]", "selected 2 values", id="two-values"),
        pytest.param({"v": True}, "$.v", "boolean", id="a-boolean"),
        pytest.param({"v": "high"}, "$.v", "not a number", id="a-word"),
        pytest.param({"v": {"a": 1}}, "$.v", "dict, not a number", id="an-object"),
    ],
)
def test_value_at_refuses(document: Any, path: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        value_at(document, path)


@pytest.mark.parametrize(
    ("base", "path", "url"),
    [
        pytest.param("https://slo.internal/api", "/v1/slo", "https://slo.internal/api/v1/slo"),
        pytest.param("https://slo.internal/api/", "/v1", "https://slo.internal/api/v1"),
        pytest.param("https://slo.internal/q", "?svc=demo", "https://slo.internal/q?svc=demo"),
        pytest.param("https://slo.internal", "", "https://slo.internal"),
    ],
)
def test_join_path_keeps_the_base(base: str, path: str, url: str) -> None:
    assert join_path(base, path) == url


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("@evil.example/x", id="user-info"),
        pytest.param("/../admin", id="dot-dot"),
        pytest.param("evil.example", id="no-slash"),
        pytest.param("/x@evil.example", id="at-in-path"),
        pytest.param("/\\evil", id="backslash"),
    ],
)
def test_join_path_refuses_a_path_that_could_leave_the_host(path: str) -> None:
    with pytest.raises(QueryError):
        join_path("https://slo.internal", path)
