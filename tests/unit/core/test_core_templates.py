"""Analysis templates resolved in the core (:mod:`rollwise.core.templates`): args bound
(defaults, required, types), interpolation, merging with inline metrics, and each problem an
InvalidSpec naming the template and the arg; then ``decide`` on a Rollout that uses them."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from rollwise.core.modelrelease.observations import ReleaseObservations
from rollwise.core.modelrelease.release import decide_release
from rollwise.core.modelrelease.spec import child_rollout_spec
from rollwise.core.observations import Observations, TemplateKey, TemplateRead
from rollwise.core.rollout import reasons as R
from rollwise.core.rollout.canary import decide
from rollwise.core.rollout.status import ConditionType
from rollwise.core.spec import Metric, RolloutSpec
from rollwise.core.templates import (
    TEMPLATE_RECHECK_SECONDS,
    arg_placeholders,
    interpolate,
    release_template_keys,
    resolve_release,
    resolve_rollout,
    rollout_template_keys,
)
from rollwise.core.validation import MSG_UNIQUE_ARGS, load_rollout_spec
from tests.unit.core.modelrelease_builders import release
from tests.unit.core.rollout_builders import V2, at, metric, raw_spec, spec_of, value
from tests.unit.core.test_core_rollout import healthy

ERROR_RATE = TemplateKey(cluster_scope=False, name="error-rate")
SHARED = TemplateKey(cluster_scope=True, name="error-rate")


def error_rate_template(**extra_args: dict[str, Any]) -> dict[str, Any]:
    """An AnalysisTemplate's spec: an error ratio over a service arg, judged against a number
    arg, with a sample guard."""
    return {
        "args": [
            {"name": "service", "required": True},
            {"name": "maxErrorRatio", "default": "0.05", "type": "number"},
            {"name": "window", "default": "1m"},
            *extra_args.values(),
        ],
        "metrics": [
            {
                "name": "error-ratio",
                "provider": {
                    "prometheus": {
                        "query": (
                            'sum(rate(errors{svc="{{args.service}}",rev="{{canaryRevision}}"}'
                            "[{{ args.window }}]))"
                        )
                    }
                },
                "successCondition": "result < {{args.maxErrorRatio}}",
                "sampleGuard": {
                    "query": 'sum(increase(requests{svc="{{args.service}}"}[{{args.window}}]))',
                    "minSamples": 50,
                },
            }
        ],
    }


def ref(name: str = "error-rate", cluster: bool = False, **args: str) -> dict[str, Any]:
    out: dict[str, Any] = {"templateName": name}
    if cluster:
        out["clusterScope"] = True
    if args:
        out["args"] = [{"name": k, "value": v} for k, v in args.items()]
    return out


def spec_with(analysis: dict[str, Any], steps: list[dict[str, Any]] | None = None) -> RolloutSpec:
    spec, errors = load_rollout_spec(raw_spec(analysis=analysis, steps=steps))
    assert errors == []
    assert spec is not None
    return spec


def resolve(
    analysis: dict[str, Any],
    reads: dict[TemplateKey, TemplateRead | None],
    steps: list[dict[str, Any]] | None = None,
) -> tuple[RolloutSpec, list[str]]:
    return resolve_rollout(spec_with(analysis, steps), reads)


def only_metric(spec: RolloutSpec) -> Metric:
    analysis = spec.strategy.canary.analysis
    assert analysis is not None
    (found,) = analysis.metrics
    return found


# --------------------------------------------------------------------------------------------
# Interpolation


@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [
        pytest.param("a{{args.x}}b", {"x": "1"}, "a1b", id="plain"),
        pytest.param("{{ args.x }}", {"x": "v"}, "v", id="spaces"),
        pytest.param(
            "{{canaryRevision}}/{{args.x}}", {"x": "v"}, "{{canaryRevision}}/v", id="keep"
        ),
        pytest.param("{{args.y}}", {"x": "v"}, "{{args.y}}", id="unknown-kept"),
        pytest.param("{{args.x}}{{args.x}}", {"x": "{{"}, "{{{{", id="value-not-reread"),
    ],
)
def test_interpolate(text: str, values: dict[str, str], expected: str) -> None:
    assert interpolate(text, values) == expected


def test_arg_placeholders() -> None:
    assert arg_placeholders("{{args.a}} {{ args.b }} {{name}} {{args.a}}") == ["a", "b", "a"]


# --------------------------------------------------------------------------------------------
# Resolution: values


def test_args_given_defaults_and_interpolation() -> None:
    spec, errors = resolve(
        {"templates": [ref(service="checkout")]}, {ERROR_RATE: error_rate_template()}
    )
    assert errors == []
    found = only_metric(spec)
    assert found.provider.prometheus is not None
    assert found.provider.prometheus.query == (
        'sum(rate(errors{svc="checkout",rev="{{canaryRevision}}"}[1m]))'
    )
    assert found.success_condition == "result < 0.05"
    assert found.sample_guard is not None
    assert found.sample_guard.query == 'sum(increase(requests{svc="checkout"}[1m]))'
    assert spec.strategy.canary.analysis is not None
    assert spec.strategy.canary.analysis.templates is None


def test_given_value_beats_default() -> None:
    spec, errors = resolve(
        {"templates": [ref(service="checkout", maxErrorRatio="0.01", window="5m")]},
        {ERROR_RATE: error_rate_template()},
    )
    assert errors == []
    found = only_metric(spec)
    assert found.success_condition == "result < 0.01"
    assert found.provider.prometheus is not None
    assert "[5m]" in found.provider.prometheus.query


def test_optional_arg_without_default_is_empty() -> None:
    spec, errors = resolve(
        {"templates": [ref(service="checkout")]},
        {ERROR_RATE: error_rate_template(extra={"name": "extra"})},
    )
    assert errors == []
    assert only_metric(spec).name == "error-ratio"


def test_template_metrics_come_before_inline_ones() -> None:
    spec, errors = resolve(
        {"templates": [ref(service="checkout")], "metrics": [metric("latency")]},
        {ERROR_RATE: error_rate_template()},
    )
    assert errors == []
    assert spec.strategy.canary.analysis is not None
    assert [m.name for m in spec.strategy.canary.analysis.metrics] == ["error-ratio", "latency"]


def test_cluster_template_and_step_templates() -> None:
    steps = [
        {"setWeight": 5},
        {"analysis": {"templates": [ref(cluster=True, service="checkout")]}},
        {"setWeight": 100},
    ]
    spec, errors = resolve({"metrics": [metric("latency")]}, {SHARED: error_rate_template()}, steps)
    assert errors == []
    step = spec.strategy.canary.steps[1].analysis
    assert step is not None
    # A step with templates and no own metrics measures the templates' metrics only.
    assert step.metrics is not None
    assert [m.name for m in step.metrics] == ["error-ratio"]
    assert rollout_template_keys(spec_with({"metrics": [metric("latency")]}, steps)) == (SHARED,)


def test_without_references_the_spec_is_unchanged() -> None:
    spec = spec_with({"metrics": [metric()]})
    assert resolve_rollout(spec, {}) == (spec, [])


# --------------------------------------------------------------------------------------------
# Resolution: problems, each naming the template and the arg

WHERE = "spec.strategy.canary.analysis.templates[0]"


@pytest.mark.parametrize(
    ("analysis", "reads", "expected"),
    [
        pytest.param(
            {"templates": [ref(service="x")]},
            {},
            f"{WHERE}: AnalysisTemplate error-rate not found in the namespace",
            id="missing-template",
        ),
        pytest.param(
            {"templates": [ref(cluster=True, service="x")]},
            {SHARED: None},
            f"{WHERE}: ClusterAnalysisTemplate error-rate not found in the cluster",
            id="missing-cluster-template",
        ),
        pytest.param(
            {"templates": [ref(cluster=True, service="x")]},
            {SHARED: "the operator may not read it (forbidden)"},
            f"{WHERE}: ClusterAnalysisTemplate error-rate could not be read: the operator may "
            "not read it (forbidden)",
            id="unreadable-template",
        ),
        pytest.param(
            {"templates": [ref()]},
            {ERROR_RATE: error_rate_template()},
            f"{WHERE}.args: AnalysisTemplate error-rate needs arg 'service' (required, not given)",
            id="missing-required-arg",
        ),
        pytest.param(
            {"templates": [ref(service="x", colour="red")]},
            {ERROR_RATE: error_rate_template()},
            f"{WHERE}.args[1]: AnalysisTemplate error-rate has no arg 'colour' (its args: "
            "service, maxErrorRatio, window)",
            id="unknown-arg",
        ),
        pytest.param(
            {"templates": [ref(service="x", maxErrorRatio="five percent")]},
            {ERROR_RATE: error_rate_template()},
            f"{WHERE}.args: AnalysisTemplate error-rate arg 'maxErrorRatio' must be a number, "
            "got 'five percent'",
            id="number-arg-not-a-number",
        ),
        pytest.param(
            {"templates": [ref(service="x")], "metrics": [metric("error-ratio")]},
            {ERROR_RATE: error_rate_template()},
            "spec.strategy.canary.analysis.metrics: metric names must be unique within an "
            "analysis (duplicated: error-ratio (from AnalysisTemplate error-rate and inline "
            "metrics))",
            id="name-clash-with-inline",
        ),
        pytest.param(
            {"templates": [ref(service="x"), ref(cluster=True, service="y")]},
            {ERROR_RATE: error_rate_template(), SHARED: error_rate_template()},
            "spec.strategy.canary.analysis.metrics: metric names must be unique within an "
            "analysis (duplicated: error-ratio (from AnalysisTemplate error-rate and "
            "ClusterAnalysisTemplate error-rate))",
            id="name-clash-between-templates",
        ),
        pytest.param(
            {"templates": [ref()]},
            {
                ERROR_RATE: {
                    "metrics": [
                        metric(success="result < {{args.limit}}"),
                    ]
                }
            },
            f"{WHERE}: AnalysisTemplate error-rate metric error-ratio uses {{{{args.limit}}}}, "
            "not one of its args",
            id="undeclared-arg-in-template",
        ),
        pytest.param(
            {"templates": [ref(service="x")]},
            {ERROR_RATE: {"metrics": []}},
            f"{WHERE}: AnalysisTemplate error-rate has no metrics",
            id="template-without-metrics",
        ),
        pytest.param(
            {"templates": [ref()]},
            {ERROR_RATE: {"metrics": [{"name": "x"}]}},
            f"{WHERE}: AnalysisTemplate error-rate: spec.metrics[0]: each metric needs exactly "
            "one kind",
            id="template-invalid",
        ),
        pytest.param(
            {"templates": [ref(op="<<")]},
            {
                ERROR_RATE: {
                    "args": [{"name": "op"}],
                    "metrics": [metric(success="result {{args.op}} 1")],
                }
            },
            f"{WHERE}: AnalysisTemplate error-rate: spec.metrics[0].successCondition: "
            "'result << 1' must be a CEL bool expression",
            id="interpolated-condition-invalid",
        ),
    ],
)
def test_problems(
    analysis: dict[str, Any], reads: dict[TemplateKey, TemplateRead | None], expected: str
) -> None:
    _, errors = resolve(analysis, reads)
    assert any(e.startswith(expected) for e in errors), errors


def test_arg_given_twice_is_refused_before_any_template_is_read() -> None:
    raw = raw_spec(
        analysis={
            "templates": [
                {
                    "templateName": "t",
                    "args": [{"name": "a", "value": "1"}, {"name": "a", "value": "2"}],
                }
            ]
        }
    )
    spec, errors = load_rollout_spec(raw)
    assert spec is None
    assert errors == [f"{WHERE}.args: {MSG_UNIQUE_ARGS} (duplicated: a)"]


def test_analysis_step_with_templates_only_is_valid() -> None:
    raw = raw_spec(
        steps=[{"analysis": {"templates": [ref(service="x")]}}, {"setWeight": 100}],
    )
    assert load_rollout_spec(raw)[1] == []


# --------------------------------------------------------------------------------------------
# decide: a Rollout whose analysis is a template


def canary_with_template(
    reads: dict[TemplateKey, TemplateRead | None],
) -> tuple[Any, Any, RolloutSpec, Observations]:
    analysis = {"templates": [ref(service="checkout")]}
    status, cluster = healthy(analysis={"metrics": [metric()]})
    spec = spec_of(image_template=V2, analysis=analysis)
    first = replace(cluster.observe(V2), templates=reads)
    return status, cluster, spec, first


def test_decide_measures_the_template_metrics() -> None:
    reads: dict[TemplateKey, TemplateRead | None] = {ERROR_RATE: error_rate_template()}
    status, cluster, spec, _ = canary_with_template(reads)
    for now in (10, 20, 30):
        d = decide(spec, status, cluster.observe(V2, templates=reads), at(now))
        assert not d.status.is_true(ConditionType.INVALID_SPEC)
        cluster.apply(d)
        status = d.status
    assert status.canary_weight == 5
    # Too few requests (the template's sample guard): inconclusive, never a pass or a fail.
    few = replace(value(0.2), samples=10.0)
    few_obs = cluster.observe(V2, measurements={"error-ratio": few}, templates=reads)
    d = decide(spec, status, few_obs, at(70))
    assert d.status.rolled_back_revision is None
    assert d.status.phase is not None
    assert d.status.phase.value == "Paused"
    assert any("the 50 required (minSamples)" in e.message for e in d.events)
    enough = replace(value(0.2), samples=500.0)
    measured = cluster.observe(V2, measurements={"error-ratio": enough}, templates=reads)
    d = decide(spec, status, measured, at(70))
    # The template's condition (result < 0.05, the arg's default) failed: rolled back.
    assert d.status.rolled_back_revision is not None
    assert "error-ratio" in (d.status.message or "")


def test_decide_missing_template_is_invalid_and_looks_again() -> None:
    status, _, spec, first = canary_with_template({})
    d = decide(spec, status, first, at(10))
    assert d.status.is_true(ConditionType.INVALID_SPEC)
    assert d.actions == ()
    assert d.requeue_after == TEMPLATE_RECHECK_SECONDS
    (event,) = [e for e in d.events if e.reason is R.INVALID_SPEC]
    assert event.type.value == "Warning"
    assert "AnalysisTemplate error-rate not found" in event.message


def test_decide_template_created_later_proceeds() -> None:
    status, _cluster, spec, first = canary_with_template({})
    d = decide(spec, status, first, at(10))
    assert d.status.is_true(ConditionType.INVALID_SPEC)
    reads: dict[TemplateKey, TemplateRead | None] = {ERROR_RATE: error_rate_template()}
    d = decide(spec, d.status, replace(first, templates=reads), at(25))
    assert not d.status.is_true(ConditionType.INVALID_SPEC)
    assert d.actions != ()


def test_decide_wrong_arg_is_invalid_without_recheck() -> None:
    reads: dict[TemplateKey, TemplateRead | None] = {ERROR_RATE: error_rate_template()}
    analysis = {"templates": [ref()]}
    status, cluster = healthy(analysis={"metrics": [metric()]})
    spec = spec_of(image_template=V2, analysis=analysis)
    d = decide(spec, status, replace(cluster.observe(V2), templates=reads), at(10))
    assert d.status.is_true(ConditionType.INVALID_SPEC)
    assert "needs arg 'service'" in (d.status.message or "")
    assert d.requeue_after is None


# --------------------------------------------------------------------------------------------
# ModelRelease: its own canary (KServe) resolves; a pod-template release hands references on


def test_kserve_release_resolves_its_canary() -> None:
    spec = release(backend="kserve", analysis={"templates": [ref(service="fraud")]})
    assert release_template_keys(spec) == (ERROR_RATE,)
    resolved, errors = resolve_release(spec, {ERROR_RATE: error_rate_template()})
    assert errors == []
    assert resolved.canary.analysis is not None
    assert [m.name for m in resolved.canary.analysis.metrics] == ["error-ratio"]
    _, errors = resolve_release(spec, {})
    assert errors == [
        "spec.canary.analysis.templates[0]: AnalysisTemplate error-rate not found in the namespace"
    ]


def test_template_release_hands_references_to_its_child_rollout() -> None:
    spec = release(analysis={"templates": [ref(service="fraud")]})
    assert release_template_keys(spec) == ()
    assert resolve_release(spec, {}) == (spec, [])
    child = child_rollout_spec(spec)
    assert child["strategy"]["canary"]["analysis"]["templates"] == [
        {
            "templateName": "error-rate",
            "clusterScope": False,
            "args": [{"name": "service", "value": "fraud"}],
        }
    ]
    # The child Rollout's spec is valid as it is: it resolves the reference on its own passes.
    assert load_rollout_spec(child)[1] == []


def test_kserve_release_with_a_missing_template_is_invalid_and_looks_again() -> None:
    spec = release(backend="kserve", analysis={"templates": [ref(service="fraud")]})
    d = decide_release(spec, None, ReleaseObservations(name="fraud-7", generation=1), at(0))
    assert d.status.phase is not None
    assert d.status.phase.value == "Degraded"
    assert "AnalysisTemplate error-rate not found" in (d.status.message or "")
    assert d.requeue_after == TEMPLATE_RECHECK_SECONDS
    found = ReleaseObservations(
        name="fraud-7", generation=1, templates={ERROR_RATE: error_rate_template()}
    )
    d = decide_release(spec, d.status, found, at(20))
    assert "not found" not in (d.status.message or "")
