from __future__ import annotations

from typing import Any

import pytest

from rollwise.core.spec import LabelSelector, RolloutSpec
from rollwise.core.validation import (
    MSG_ANALYSIS_STEP_METRICS,
    MSG_LAST_WEIGHT_100,
    MSG_METRIC_RULE,
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
            f"spec.strategy.canary.analysis.metrics[0]: {MSG_METRIC_RULE}",
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
                {"key": "n", "operator": "DoesNotExist"},
            ],
        }
    )
    assert selector_string(selector) == "a=1,b=2,t in (x,y),e,!n"
