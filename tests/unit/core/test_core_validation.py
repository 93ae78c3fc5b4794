from __future__ import annotations

from typing import Any

import pytest

from rollwise.core.analysis import placeholders_of, render_query, unknown_placeholders
from rollwise.core.spec import MAX_QUERY_LENGTH, LabelSelector, RolloutSpec
from rollwise.core.validation import (
    MSG_ANALYSIS_STEP_METRICS,
    MSG_LAST_WEIGHT_100,
    MSG_METRIC_KIND,
    MSG_ONE_ROUTER,
    MSG_RANGE_BOUNDS,
    MSG_RANGE_EXCLUSIVE,
    MSG_SELECTOR_MATCHES,
    MSG_SERVICES_DIFFER,
    MSG_STEP_ONE_KIND,
    MSG_UNIQUE_METRICS,
    MSG_WEIGHTS_NON_DECREASING,
    load_rollout_spec,
    parse_rollout_spec,
    selector_matches,
    selector_string,
    validate_rollout,
)
from tests.unit.core.rollout_builders import metric, raw_spec


def with_canary(**fields: Any) -> dict[str, Any]:
    raw = raw_spec()
    raw["strategy"]["canary"].update(fields)
    return raw


def test_valid_spec_has_no_errors() -> None:
    raw = raw_spec(
        steps=[
            {"setWeight": 10},
            {"pause": {"duration": "1m"}},
            {"analysis": {}},
            {"setWeight": 100},
        ],
        analysis={"metrics": [metric()]},
    )
    spec, errors = load_rollout_spec(raw)
    assert errors == []
    assert isinstance(spec, RolloutSpec)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(
            with_canary(steps=[{"setWeight": 10, "pause": {}}, {"setWeight": 100}]),
            f"spec.strategy.canary.steps[0]: {MSG_STEP_ONE_KIND}",
            id="step-two-kinds",
        ),
        pytest.param(
            with_canary(steps=[{}, {"setWeight": 100}]),
            f"spec.strategy.canary.steps[0]: {MSG_STEP_ONE_KIND}",
            id="step-no-kind",
        ),
        pytest.param(
            with_canary(steps=[{"setWeight": 50}, {"setWeight": 20}, {"setWeight": 100}]),
            f"spec.strategy.canary.steps[1].setWeight: {MSG_WEIGHTS_NON_DECREASING}",
            id="decreasing-weight",
        ),
        pytest.param(
            with_canary(steps=[{"setWeight": 50}]),
            f"spec.strategy.canary.steps: {MSG_LAST_WEIGHT_100}",
            id="last-weight-not-100",
        ),
        pytest.param(
            with_canary(
                trafficRouting={
                    "gatewayAPI": {"httpRoute": {"name": "a"}},
                    "istio": {"virtualService": {"name": "b"}},
                }
            ),
            f"spec.strategy.canary.trafficRouting: {MSG_ONE_ROUTER}",
            id="two-routers",
        ),
        pytest.param(
            with_canary(trafficRouting={}),
            f"spec.strategy.canary.trafficRouting: {MSG_ONE_ROUTER}",
            id="empty-router",
        ),
        pytest.param(
            with_canary(canaryService="web-stable"),
            f"spec.strategy.canary: {MSG_SERVICES_DIFFER}",
            id="same-services",
        ),
        pytest.param(
            with_canary(analysis={"metrics": [metric(), metric()]}),
            f"spec.strategy.canary.analysis.metrics: {MSG_UNIQUE_METRICS} "
            "(duplicated: error-ratio)",
            id="duplicate-metrics",
        ),
        pytest.param(
            with_canary(analysis={"metrics": [metric(success=None)]}),
            f"spec.strategy.canary.analysis.metrics[0]: {MSG_METRIC_KIND}",
            id="metric-without-rule",
        ),
        pytest.param(
            with_canary(analysis={"metrics": [{**metric(), "thresholdRange": {"max": 1.0}}]}),
            f"spec.strategy.canary.analysis.metrics[0]: {MSG_RANGE_EXCLUSIVE}",
            id="range-and-condition",
        ),
        pytest.param(
            with_canary(analysis={"metrics": [metric(threshold={"min": 2.0, "max": 1.0})]}),
            f"spec.strategy.canary.analysis.metrics[0].thresholdRange: {MSG_RANGE_BOUNDS}",
            id="range-inverted",
        ),
        pytest.param(
            with_canary(analysis={"metrics": [metric(threshold={})]}),
            f"spec.strategy.canary.analysis.metrics[0].thresholdRange: {MSG_RANGE_BOUNDS}",
            id="range-empty",
        ),
        pytest.param(
            with_canary(analysis={"metrics": [metric(success="result <")]}),
            "spec.strategy.canary.analysis.metrics[0].successCondition: 'result <' must be a "
            "CEL bool expression over result (a double): does not compile",
            id="cel-does-not-compile",
        ),
        pytest.param(
            with_canary(analysis={"metrics": [metric(failure="errors > 1")]}),
            "spec.strategy.canary.analysis.metrics[0].failureCondition: 'errors > 1' must be a "
            "CEL bool expression",
            id="cel-unknown-variable",
        ),
        pytest.param(
            with_canary(
                analysis={
                    "metrics": [
                        {**metric(), "provider": {"prometheus": {"query": "x{p='{{pod}}'}"}}}
                    ]
                }
            ),
            "spec.strategy.canary.analysis.metrics[0].provider.prometheus.query: unknown "
            "placeholder {{pod}}",
            id="unknown-placeholder",
        ),
        pytest.param(
            with_canary(analysis={"interval": "0s", "metrics": [metric()]}),
            "spec.strategy.canary.analysis.interval: duration must be greater than 0",
            id="zero-interval",
        ),
        pytest.param(
            with_canary(steps=[{"analysis": {}}, {"setWeight": 100}]),
            f"spec.strategy.canary.steps[0].analysis: {MSG_ANALYSIS_STEP_METRICS}",
            id="analysis-step-without-metrics",
        ),
        pytest.param(
            {**raw_spec(), "selector": {"matchLabels": {"app": "other"}}},
            f"spec.selector: {MSG_SELECTOR_MATCHES}",
            id="selector-mismatch",
        ),
    ],
)
def test_cross_field_rules(raw: dict[str, Any], expected: str) -> None:
    spec = parse_rollout_spec(raw)
    assert isinstance(spec, RolloutSpec)
    errors = validate_rollout(spec)
    assert any(e.startswith(expected) for e in errors), errors
    assert load_rollout_spec(raw) == (None, errors)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(
            lambda r: r["strategy"]["canary"].update(steps=[{"setWeight": 101}]),
            "spec.strategy.canary.steps[0].setWeight: Input should be less than or equal to 100",
            id="weight-bound",
        ),
        pytest.param(
            lambda r: r.pop("selector"), "spec.selector: Field required", id="missing-selector"
        ),
        pytest.param(
            lambda r: r.update(surprise=1), "spec.surprise: Extra inputs", id="unknown-field"
        ),
        pytest.param(
            lambda r: r["strategy"]["canary"].update(steps=[{"pause": {"duration": "5 minutes"}}]),
            "spec.strategy.canary.steps[0].pause.duration: String should match pattern",
            id="bad-duration",
        ),
    ],
)
def test_parse_failures_become_messages(mutate: Any, expected: str) -> None:
    raw = raw_spec()
    mutate(raw)
    result = parse_rollout_spec(raw)
    assert isinstance(result, list)
    assert any(e.startswith(expected) for e in result), result


@pytest.mark.parametrize(
    ("selector", "labels", "ok"),
    [
        pytest.param({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True, id="labels"),
        pytest.param({"matchLabels": {"a": "1"}}, {"a": "2"}, False, id="labels-differ"),
        pytest.param(
            {"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]},
            {"a": "2"},
            True,
            id="in",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]},
            {"a": "1"},
            False,
            id="notin",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {}, False, id="exists"
        ),
        pytest.param(
            {"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]},
            {},
            True,
            id="does-not-exist",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]},
            {"a": "3"},
            False,
            id="in-other-value",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]},
            {},
            False,
            id="in-absent",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]},
            {},
            True,
            id="notin-absent",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]},
            {"a": "1"},
            False,
            id="does-not-exist-present",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "a", "operator": "Exists"}]},
            {"a": ""},
            True,
            id="exists-empty-value",
        ),
    ],
)
def test_selector_matches(selector: dict[str, Any], labels: dict[str, str], ok: bool) -> None:
    assert selector_matches(LabelSelector.model_validate(selector), labels) is ok


def test_selector_string() -> None:
    selector = LabelSelector.model_validate(
        {
            "matchLabels": {"b": "2", "a": "1"},
            "matchExpressions": [
                {"key": "t", "operator": "In", "values": ["x", "y"]},
                {"key": "e", "operator": "Exists"},
                {"key": "o", "operator": "NotIn", "values": ["z"]},
                {"key": "n", "operator": "DoesNotExist"},
            ],
        }
    )
    assert selector_string(selector) == "a=1,b=2,t in (x,y),e,o notin (z),!n"


# ------------------------------------------------------------------ tenant input stays cheap

NESTED_ALL = (
    "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20].all(x, "
    "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20].all(y, "
    "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20].all(z, result >= 0.0)))"
)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        pytest.param(NESTED_ALL, "all() is not allowed", id="nested-comprehensions"),
        pytest.param("[1, 2].exists(x, x > result)", "exists() is not allowed", id="exists"),
        pytest.param("[result].map(x, x * 2)[0] > 1.0", "map() is not allowed", id="map"),
        pytest.param("string(result).matches('(a+)+$')", "matches() is not allowed", id="regex"),
        pytest.param("&&".join(["result>0.0"] * 20), "too complex", id="too-many-nodes"),
        pytest.param("result < 0.05 " + " " * 600, "at most 512 characters", id="too-long"),
    ],
)
def test_conditions_that_could_cost_too_much_are_refused(condition: str, expected: str) -> None:
    raw = raw_spec(analysis={"metrics": [metric(success=condition)]})
    spec, errors = load_rollout_spec(raw)
    assert spec is None
    assert any(expected in e for e in errors), errors


@pytest.mark.timeout(60)
def test_an_unclosed_placeholder_with_many_spaces_is_validated_in_linear_time() -> None:
    """An unclosed ``{{`` followed by spaces made the placeholder pattern backtrack in cubic
    time (3,000 spaces: 13 s on the event loop). 200,000 spaces would take days that way;
    the linear grammar reads them at once (the pytest timeout is the guard)."""
    query = "sum(rate(x[1m])) {{" + " " * 200_000
    assert placeholders_of(query) == []
    assert unknown_placeholders(query) == []
    assert render_query(query, {}) == query
    assert placeholders_of("{{ canaryRevision }} {{{ name }}") == ["canaryRevision", "name"]


def test_queries_and_conditions_have_a_length_limit() -> None:
    raw = raw_spec(analysis={"metrics": [metric()]})
    raw["strategy"]["canary"]["analysis"]["metrics"][0]["provider"]["prometheus"]["query"] = "x" * (
        MAX_QUERY_LENGTH + 1
    )
    spec, errors = load_rollout_spec(raw)
    assert spec is None
    assert any("provider.prometheus.query" in e for e in errors), errors


def web_metric(**web: Any) -> dict[str, Any]:
    found = metric()
    found["provider"] = {"web": {"name": "slo", "jsonPath": "$.data.value", **web}}
    return found


@pytest.mark.parametrize(
    ("web", "expected"),
    [
        pytest.param({"jsonPath": "$.data[?("}, "is not a JSONPath", id="bad-json-path"),
        pytest.param({"body": "{}"}, "body is sent only with method POST", id="body-with-get"),
        pytest.param(
            {"path": "/x?rev={{ revision }}"}, "unknown placeholder {{revision}}", id="placeholder"
        ),
        pytest.param({"timeout": "0s"}, "provider.web.timeout", id="zero-timeout"),
    ],
)
def test_web_provider_rules(web: dict[str, Any], expected: str) -> None:
    spec, errors = load_rollout_spec(raw_spec(analysis={"metrics": [web_metric(**web)]}))
    assert spec is None
    assert any(expected in e for e in errors), errors


def test_a_valid_web_metric_and_exactly_one_provider() -> None:
    spec, errors = load_rollout_spec(
        raw_spec(analysis={"metrics": [web_metric(method="POST", body="{}")]})
    )
    assert errors == []
    assert spec is not None
    both = metric()
    both["provider"]["web"] = {"name": "slo", "jsonPath": "$.v"}
    _, errors = load_rollout_spec(raw_spec(analysis={"metrics": [both]}))
    assert any("exactly one of prometheus or web" in e for e in errors), errors


def guarded(**guard: Any) -> dict[str, Any]:
    found = metric(min_samples=100)
    found["sampleGuard"].update(guard)
    return found


@pytest.mark.parametrize(
    ("found", "expected"),
    [
        pytest.param(guarded(minSamples=0), "sampleGuard.minSamples", id="min-samples-zero"),
        pytest.param(
            guarded(minSamples=1_000_001), "sampleGuard.minSamples", id="min-samples-too-many"
        ),
        pytest.param(
            guarded(query="x" * (MAX_QUERY_LENGTH + 1)), "sampleGuard.query", id="query-too-long"
        ),
        pytest.param(guarded(query=""), "sampleGuard.query", id="query-empty"),
        pytest.param(
            guarded(query="sum(x{rev='{{ revision }}'})"),
            "sampleGuard.query: unknown placeholder {{revision}}",
            id="unknown-placeholder",
        ),
        pytest.param(
            {**web_metric(), "sampleGuard": {"query": "sum(x)", "minSamples": 10}},
            "sampleGuard: sampleGuard needs a prometheus provider",
            id="web-provider",
        ),
    ],
)
def test_sample_guard_rules(found: dict[str, Any], expected: str) -> None:
    spec, errors = load_rollout_spec(raw_spec(analysis={"metrics": [found]}))
    assert spec is None
    assert any(expected in e for e in errors), errors


def test_a_valid_sample_guard() -> None:
    spec, errors = load_rollout_spec(raw_spec(analysis={"metrics": [guarded(minSamples=1)]}))
    assert errors == []
    assert spec is not None
