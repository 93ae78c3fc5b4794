from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rollwise.core.analysis import (
    QueryTemplateError,
    StepChecks,
    assess,
    check_condition,
    checks_for_step,
    evaluate_condition,
    format_value,
    new_run,
    record,
    render_query,
    rule_text,
    run_verdict,
)
from rollwise.core.expressions import _bounded
from rollwise.core.observations import Measurement
from rollwise.core.rollout.analysis import due_metrics, query_context, soonest_due
from rollwise.core.rollout.status import BaselineStatus, RolloutStatus
from rollwise.core.runs import MetricRun, Verdict
from rollwise.core.spec import Metric
from tests.unit.core.rollout_builders import metric, spec_of

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def m(**kwargs: Any) -> Metric:
    return Metric.model_validate(metric(**kwargs))


def checks(
    *metrics: Metric, failure: int = 0, inconclusive: int = 0, errors: int = 4
) -> StepChecks:
    return StepChecks(
        metrics=metrics,
        interval="1m",
        failure_limit=failure,
        inconclusive_limit=inconclusive,
        consecutive_error_limit=errors,
    )


# ------------------------------------------------------------------ single measurements


@pytest.mark.parametrize(
    ("rule", "value", "err", "verdict", "fragment"),
    [
        pytest.param({}, 0.01, None, Verdict.PASS, "passed successCondition", id="success-true"),
        pytest.param(
            {},
            0.2,
            None,
            Verdict.FAIL,
            "metric error-ratio = 0.200 failed successCondition 'result < 0.05'",
            id="success-false",
        ),
        pytest.param(
            {"success": None, "failure": "result > 0.1"},
            0.05,
            None,
            Verdict.PASS,
            "passed failureCondition",
            id="only-failure-false-passes",
        ),
        pytest.param(
            {"success": None, "failure": "result > 0.1"},
            0.5,
            None,
            Verdict.FAIL,
            "met failureCondition 'result > 0.1'",
            id="only-failure-true-fails",
        ),
        pytest.param(
            {"success": "result < 0.05", "failure": "result > 0.1"},
            0.2,
            None,
            Verdict.FAIL,
            "met failureCondition",
            id="both-failure-wins",
        ),
        pytest.param(
            {"success": "result < 0.5", "failure": "result > 0.1"},
            0.2,
            None,
            Verdict.FAIL,
            "met failureCondition",
            id="both-true-failure-wins",
        ),
        pytest.param(
            {"success": "result < 0.05", "failure": "result > 0.1"},
            0.07,
            None,
            Verdict.INCONCLUSIVE,
            "met neither",
            id="both-neither-inconclusive",
        ),
        pytest.param(
            {"success": "result < 0.05", "failure": "result > 0.1"},
            0.01,
            None,
            Verdict.PASS,
            "passed successCondition",
            id="both-success",
        ),
        pytest.param(
            {"threshold": {"min": 0.0, "max": 0.05}},
            0.05,
            None,
            Verdict.PASS,
            "within thresholdRange",
            id="range-inclusive-max",
        ),
        pytest.param(
            {"threshold": {"min": 0.0, "max": 0.05}},
            0.06,
            None,
            Verdict.FAIL,
            "outside thresholdRange [0.000, 0.050]",
            id="range-above",
        ),
        pytest.param(
            {"threshold": {"min": 10.0}},
            9.0,
            None,
            Verdict.FAIL,
            "thresholdRange [10.000, +inf]",
            id="range-min-only",
        ),
        pytest.param({}, None, None, Verdict.INCONCLUSIVE, "no data", id="no-data"),
        pytest.param({}, math.nan, None, Verdict.INCONCLUSIVE, "nan", id="nan"),
        pytest.param({}, math.inf, None, Verdict.INCONCLUSIVE, "inf", id="inf"),
        pytest.param(
            {}, None, "timeout", Verdict.INCONCLUSIVE, "query failed: timeout", id="error"
        ),
        pytest.param(
            {"success": "result == 1"},
            1.0,
            None,
            Verdict.INCONCLUSIVE,
            "evaluation failed",
            id="cel-eval-error-inconclusive",
        ),
        pytest.param(
            {"success": "result + 1.0"},
            1.0,
            None,
            Verdict.INCONCLUSIVE,
            "condition yields float, not a bool (inconclusive)",
            id="cel-non-bool-inconclusive",
        ),
    ],
)
def test_assess(
    rule: dict[str, Any], value: float | None, err: str | None, verdict: Verdict, fragment: str
) -> None:
    result = assess(m(**rule), Measurement(value, NOW, error=err))
    assert result.verdict is verdict
    assert fragment in result.message
    assert result.error is (err is not None)


# The 20%-errors canary at 5% weight: a ratio of 0.000 over a few requests is no evidence.
@pytest.mark.parametrize(
    ("rule", "value", "samples", "verdict", "fragment"),
    [
        pytest.param(
            {},
            0.0,
            12.0,
            Verdict.INCONCLUSIVE,
            "metric error-ratio = 0.000: 12 samples, fewer than the 100 required (minSamples) "
            "(inconclusive)",
            id="below-bound-inconclusive-not-pass",
        ),
        pytest.param(
            {"success": None, "failure": "result > 0.1"},
            0.5,
            99.0,
            Verdict.INCONCLUSIVE,
            "99 samples, fewer than the 100 required",
            id="below-bound-inconclusive-not-fail",
        ),
        pytest.param(
            {},
            0.0,
            99.5,
            Verdict.INCONCLUSIVE,
            "99.500 samples, fewer than the 100 required",
            id="below-bound-fractional-count",
        ),
        pytest.param({}, 0.0, 100.0, Verdict.PASS, "passed successCondition", id="at-bound"),
        pytest.param({}, 0.0, 5000.0, Verdict.PASS, "passed successCondition", id="above-bound"),
        pytest.param(
            {}, 0.2, 5000.0, Verdict.FAIL, "failed successCondition", id="above-bound-judged"
        ),
        pytest.param(
            {"threshold": {"max": 0.05}},
            0.0,
            3.0,
            Verdict.INCONCLUSIVE,
            "3 samples, fewer than the 100 required",
            id="threshold-range-guarded",
        ),
        pytest.param(
            {},
            0.0,
            None,
            Verdict.INCONCLUSIVE,
            "sample count has no data, not the 100 required (minSamples)",
            id="count-no-data",
        ),
        pytest.param(
            {},
            0.0,
            math.nan,
            Verdict.INCONCLUSIVE,
            "sample count is nan, not the 100 required",
            id="count-nan",
        ),
        pytest.param(
            {},
            None,
            5.0,
            Verdict.INCONCLUSIVE,
            "metric error-ratio = no data: 5 samples",
            id="no-value-few-samples",
        ),
    ],
)
def test_assess_with_a_sample_guard(
    rule: dict[str, Any],
    value: float | None,
    samples: float | None,
    verdict: Verdict,
    fragment: str,
) -> None:
    result = assess(m(min_samples=100, **rule), Measurement(value, NOW, samples=samples))
    assert result.verdict is verdict
    assert fragment in result.message
    assert not result.error


def test_a_metric_without_a_guard_ignores_the_count() -> None:
    assert assess(m(), Measurement(0.0, NOW, samples=None)).verdict is Verdict.PASS


def test_a_query_error_stays_an_error_under_a_guard() -> None:
    result = assess(m(min_samples=100), Measurement(None, NOW, error="boom", samples=None))
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.error


def test_too_few_samples_count_towards_the_inconclusive_limit() -> None:
    guarded = m(min_samples=100, count=3)
    few = record(
        checks(guarded), guarded, MetricRun(name=guarded.name), Measurement(0.0, NOW, samples=12.0)
    )
    assert few.run.inconclusive == 1
    assert few.run.successful == 0
    assert few.run.verdict is Verdict.INCONCLUSIVE
    assert "inconclusiveLimit 0" in few.run.message


@pytest.mark.parametrize(
    ("guard", "samples", "kept"),
    [
        pytest.param(100, 12.0, 12.0, id="guarded-few"),
        pytest.param(100, 250.0, 250.0, id="guarded-enough"),
        pytest.param(100, math.nan, None, id="guarded-nan"),
        pytest.param(100, None, None, id="guarded-no-count"),
        pytest.param(None, 250.0, None, id="unguarded"),
    ],
)
def test_the_guard_count_is_kept_with_the_measurement(
    guard: int | None, samples: float | None, kept: float | None
) -> None:
    metric_ = m(min_samples=guard) if guard is not None else m()
    done = record(
        checks(metric_),
        metric_,
        MetricRun(name=metric_.name),
        Measurement(0.01, NOW, samples=samples),
    )
    last = done.run.measurements[-1]
    assert last.samples == kept
    wire = last.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert wire.get("samples") == kept


@pytest.mark.parametrize(
    ("rule", "text"),
    [
        pytest.param(
            {"threshold": {"min": 0.0, "max": 0.05}},
            "thresholdRange [0.000, 0.050]",
            id="range-both-bounds",
        ),
        pytest.param({"threshold": {"max": 0.5}}, "thresholdRange [-inf, 0.500]", id="range-max"),
        pytest.param({"threshold": {"min": 10.0}}, "thresholdRange [10.000, +inf]", id="range-min"),
        pytest.param({}, "successCondition 'result < 0.05'", id="success"),
        pytest.param(
            {"success": None, "failure": "result > 0.1"},
            "failureCondition 'result > 0.1'",
            id="failure",
        ),
        pytest.param(
            {"success": "result < 0.05", "failure": "result > 0.1"},
            "successCondition 'result < 0.05' and failureCondition 'result > 0.1'",
            id="success-and-failure",
        ),
    ],
)
def test_rule_text_quotes_the_rule(rule: dict[str, Any], text: str) -> None:
    assert rule_text(m(**rule)) == text


def test_rule_text_of_a_metric_without_a_rule() -> None:
    bare = m().model_copy(update={"success_condition": None})
    assert rule_text(bare) == "no rule"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param(None, "no data", id="none"),
        pytest.param(math.nan, "nan", id="nan"),
        pytest.param(-math.inf, "-inf", id="minus-inf"),
        pytest.param(0.0, "0.000", id="zero"),
        pytest.param(0.2, "0.200", id="fixed"),
        pytest.param(0.001, "0.001", id="fixed-lower-bound"),
        pytest.param(0.000999, "0.000999", id="below-fixed"),
        pytest.param(-0.5, "-0.500", id="negative"),
        pytest.param(999999.0, "999999.000", id="fixed-upper-bound"),
        pytest.param(1e6, "1e+06", id="above-fixed"),
        pytest.param(1.5e-05, "1.5e-05", id="tiny"),
    ],
)
def test_format_value(value: float | None, text: str) -> None:
    assert format_value(value) == text


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        pytest.param('matches(string(result), "1.*")', "matches()", id="matches-function"),
        pytest.param('string(result).matches("1.*")', "matches()", id="matches-method"),
        pytest.param("[result].all(x, x < 1.0)", "all()", id="all"),
        pytest.param("[result].exists(x, x < 1.0)", "exists()", id="exists"),
        pytest.param("exists_one([1], x, x > 0)", "exists_one()", id="exists-one"),
        pytest.param("size([result].map(x, x)) == 1", "map()", id="map"),
        pytest.param("size([result].filter(x, x > 0.0)) == 1", "filter()", id="filter"),
    ],
)
def test_costly_cel_calls_are_refused(expression: str, problem: str) -> None:
    assert check_condition(expression) == (
        f"{problem} is not allowed in a condition (it may cost too much)"
    )


class _Tree:
    """A compiled condition of ``size`` plain syntax nodes."""

    def __init__(self, size: int) -> None:
        self.size = size

    def iter_subtrees(self) -> list[Any]:
        return [type("Node", (), {"data": "expr", "children": []})() for _ in range(self.size)]


@pytest.mark.parametrize(
    ("nodes", "problem"),
    [
        pytest.param(200, None, id="200-nodes-allowed"),
        pytest.param(201, "too complex: 201 syntax nodes, at most 200", id="201-nodes-refused"),
    ],
)
def test_a_condition_has_at_most_200_syntax_nodes(nodes: int, problem: str | None) -> None:
    assert _bounded(_Tree(nodes)) == problem


def test_condition_is_compiled_once_and_evaluates_doubles() -> None:
    assert evaluate_condition("result < 5", 1.0) is True
    assert evaluate_condition("result >= 0.5 && result <= 2.0", 3.0) is False
    assert check_condition("result < 5") is None
    assert "does not compile" in (check_condition("result <") or "")
    assert "evaluation failed" in (check_condition("foo < 1") or "")


# ------------------------------------------------------------------ limits


def feed(c: StepChecks, metric_: Metric, values: list[float | str | None]) -> MetricRun:
    """The run after ``values`` (a str is a provider error), measured one minute apart.

    A verdict ends a metric's run, as it ends it in the rollout: the operator takes no further
    measurement of a finished metric. So a verdict reached before the last value is an error of
    the case itself (its values go on past the end), and each case's verdict is pinned to its
    last value: a limit off by one either ends the run early (this raises) or late (the
    verdict is missing).
    """
    run = MetricRun(name=metric_.name)
    for i, v in enumerate(values):
        when = NOW + timedelta(minutes=i)
        meas = Measurement(None, when, error=v) if isinstance(v, str) else Measurement(v, when)
        recorded = record(c, metric_, run, meas)
        run = recorded.run
        if recorded.decided and i < len(values) - 1:
            pytest.fail(
                f"verdict {run.verdict} ({run.message}) after value {i + 1} of {len(values)}"
            )
    return run


@pytest.mark.parametrize(
    ("count", "limits", "values", "verdict", "counters"),
    [
        pytest.param(3, {}, [0.01, 0.01], None, (2, 0, 0, 0, 0), id="running"),
        pytest.param(3, {}, [0.01, 0.01, 0.01], Verdict.PASS, (3, 0, 0, 0, 0), id="count-reached"),
        pytest.param(3, {}, [0.2], Verdict.FAIL, (0, 1, 0, 0, 0), id="fail-limit-0-immediate"),
        pytest.param(5, {"failure": 1}, [0.2, 0.01], None, (1, 1, 0, 0, 0), id="fail-within-limit"),
        pytest.param(
            5, {"failure": 1}, [0.2, 0.01, 0.2], Verdict.FAIL, (1, 2, 0, 0, 0), id="fail-over-limit"
        ),
        pytest.param(
            2, {"failure": 1}, [0.2, 0.01], Verdict.PASS, (1, 1, 0, 0, 0), id="pass-with-failure"
        ),
        pytest.param(3, {}, [None], Verdict.INCONCLUSIVE, (0, 0, 1, 0, 0), id="no-data-limit-0"),
        pytest.param(
            3, {"inconclusive": 1}, [None, 0.01], None, (1, 0, 1, 0, 0), id="no-data-within"
        ),
        pytest.param(
            3, {"errors": 2}, ["down", "down"], None, (0, 0, 0, 2, 2), id="errors-within-limit"
        ),
        pytest.param(
            3,
            {"errors": 2},
            ["down", "down", "down"],
            Verdict.INCONCLUSIVE,
            (0, 0, 0, 3, 3),
            id="errors-over-limit-inconclusive",
        ),
        pytest.param(
            3,
            {"errors": 2},
            ["down", "down", 0.01, "down", "down"],
            None,
            (1, 0, 0, 4, 2),
            id="success-resets-consecutive",
        ),
        pytest.param(
            1, {"errors": 2}, ["down", 0.01], Verdict.PASS, (1, 0, 0, 1, 0), id="errors-not-counted"
        ),
        # Each limit at exactly its value (the run goes on) and one past it (the verdict).
        pytest.param(
            9,
            {"failure": 2},
            [0.2, 0.2],
            None,
            (0, 2, 0, 0, 0),
            id="failureLimit-2-at-2-failures-goes-on",
        ),
        pytest.param(
            9,
            {"failure": 2},
            [0.2, 0.2, 0.2],
            Verdict.FAIL,
            (0, 3, 0, 0, 0),
            id="failureLimit-2-at-3-failures-fails",
        ),
        pytest.param(
            9,
            {"inconclusive": 2},
            [None, None],
            None,
            (0, 0, 2, 0, 0),
            id="inconclusiveLimit-2-at-2-goes-on",
        ),
        pytest.param(
            9,
            {"inconclusive": 2},
            [None, None, None],
            Verdict.INCONCLUSIVE,
            (0, 0, 3, 0, 0),
            id="inconclusiveLimit-2-at-3-inconclusive",
        ),
        pytest.param(
            9,
            {"inconclusive": 1},
            [None, 0.01, 0.01],
            None,
            (2, 0, 1, 0, 0),
            id="inconclusiveLimit-1-at-1-then-passes-go-on",
        ),
        pytest.param(
            9,
            {"errors": 2},
            ["down", "down"],
            None,
            (0, 0, 0, 2, 2),
            id="consecutiveErrorLimit-2-at-2-goes-on",
        ),
        pytest.param(
            9,
            {"errors": 2},
            ["down", "down", "down"],
            Verdict.INCONCLUSIVE,
            (0, 0, 0, 3, 3),
            id="consecutiveErrorLimit-2-at-3-inconclusive",
        ),
        pytest.param(
            9,
            {"errors": 0},
            ["down"],
            Verdict.INCONCLUSIVE,
            (0, 0, 0, 1, 1),
            id="consecutiveErrorLimit-0-first-error-inconclusive",
        ),
        pytest.param(3, {}, [0.01, 0.01], None, (2, 0, 0, 0, 0), id="count-3-one-short-goes-on"),
        pytest.param(
            3, {}, [0.01, 0.01, 0.01], Verdict.PASS, (3, 0, 0, 0, 0), id="count-3-at-3-passes"
        ),
        pytest.param(
            3,
            {"failure": 1, "inconclusive": 1},
            [0.2, None, 0.01],
            Verdict.PASS,
            (1, 1, 1, 0, 0),
            id="count-counts-failed-and-inconclusive-measurements",
        ),
        pytest.param(
            2,
            {"errors": 5},
            ["down", 0.01, "down"],
            None,
            (1, 0, 0, 2, 1),
            id="count-does-not-count-errors",
        ),
    ],
)
def test_limits(
    count: int,
    limits: dict[str, int],
    values: list[float | str | None],
    verdict: Verdict | None,
    counters: tuple[int, int, int, int, int],
) -> None:
    metric_ = m(count=count)
    run = feed(checks(metric_, **limits), metric_, values)
    assert run.verdict is verdict
    assert (
        run.successful,
        run.failed,
        run.inconclusive,
        run.error,
        run.consecutive_errors,
    ) == counters


@pytest.mark.parametrize(
    ("count", "limits", "values", "message"),
    [
        pytest.param(
            9, {"failure": 2}, [0.2] * 3, "failures 3 > failureLimit 2", id="failure-limit"
        ),
        pytest.param(
            9,
            {"inconclusive": 2},
            [None] * 3,
            "inconclusive 3 > inconclusiveLimit 2",
            id="inconclusive-limit",
        ),
        pytest.param(
            9,
            {"errors": 2},
            ["down"] * 3,
            "3 consecutive query errors > consecutiveErrorLimit 2",
            id="consecutive-error-limit",
        ),
        pytest.param(
            3,
            {"failure": 1},
            [0.01, 0.2, 0.01],
            "2/3 measurements passed",
            id="count-reached",
        ),
        pytest.param(3, {}, [0.01], "", id="running-says-nothing"),
    ],
)
def test_a_verdict_says_which_limit_decided_it(
    count: int, limits: dict[str, int], values: list[float | str | None], message: str
) -> None:
    metric_ = m(count=count)
    run = feed(checks(metric_, **limits), metric_, values)
    assert run.message == message


def test_each_measurement_keeps_its_own_message() -> None:
    metric_ = m(count=9)
    run = feed(checks(metric_, failure=5), metric_, [0.01, 0.2, "down"])
    assert [r.message for r in run.measurements] == [
        "metric error-ratio = 0.010 passed successCondition 'result < 0.05'",
        "metric error-ratio = 0.200 failed successCondition 'result < 0.05'",
        "metric error-ratio query failed: down",
    ]


def test_a_metric_without_a_verdict_rule_is_inconclusive() -> None:
    bare = m().model_copy(update={"success_condition": None})
    result = assess(bare, Measurement(0.01, NOW))
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.message == "metric error-ratio = 0.010: metric has no verdict rule"


def test_status_keeps_last_ten_measurements() -> None:
    metric_ = m(count=50)
    run = feed(checks(metric_), metric_, [0.01] * 15)
    assert len(run.measurements) == 10
    assert run.successful == 15


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        pytest.param([Verdict.PASS, Verdict.PASS], Verdict.PASS, id="all-pass"),
        pytest.param([Verdict.PASS, None], None, id="running"),
        pytest.param([Verdict.FAIL, None], Verdict.FAIL, id="fail-early"),
        pytest.param([Verdict.INCONCLUSIVE, None], None, id="inconclusive-waits-for-others"),
        pytest.param([Verdict.INCONCLUSIVE, Verdict.PASS], Verdict.INCONCLUSIVE, id="inconclusive"),
        pytest.param([Verdict.INCONCLUSIVE, Verdict.FAIL], Verdict.FAIL, id="fail-beats-inconc"),
    ],
)
def test_run_verdict(verdicts: list[Verdict | None], expected: Verdict | None) -> None:
    metrics = [m(name=f"m{i}") for i in range(len(verdicts))]
    c = checks(*metrics)
    run = new_run(0, "rev", c, NOW)
    run = run.model_copy(
        update={"metrics": [MetricRun(name=f"m{i}", verdict=v) for i, v in enumerate(verdicts)]}
    )
    assert run_verdict(c, run) is expected


# ------------------------------------------------------------------ which checks apply


@pytest.mark.parametrize(
    ("own", "limits"),
    [
        pytest.param({}, (1, 2, 3), id="inherited"),
        pytest.param({"failureLimit": 4}, (4, 2, 3), id="own-failureLimit"),
        pytest.param({"inconclusiveLimit": 5}, (1, 5, 3), id="own-inconclusiveLimit"),
        pytest.param({"consecutiveErrorLimit": 6}, (1, 2, 6), id="own-consecutiveErrorLimit"),
    ],
)
def test_a_step_analysis_overrides_each_limit_it_names(
    own: dict[str, int], limits: tuple[int, int, int]
) -> None:
    spec = spec_of(
        steps=[{"setWeight": 10}, {"analysis": own}, {"setWeight": 100}],
        analysis={
            "interval": "1m",
            "failureLimit": 1,
            "inconclusiveLimit": 2,
            "consecutiveErrorLimit": 3,
            "metrics": [metric()],
        },
    )
    step = checks_for_step(spec, 1)
    assert step is not None
    assert (step.failure_limit, step.inconclusive_limit, step.consecutive_error_limit) == limits


def test_checks_for_steps_with_overrides() -> None:
    spec = spec_of(
        steps=[
            {"setWeight": 10},
            {"pause": {}},
            {"analysis": {"failureLimit": 2, "interval": "10s"}},
            {"analysis": {"metrics": [metric("latency", success="result < 300.0")]}},
            {"setWeight": 100},
        ],
        analysis={"interval": "1m", "inconclusiveLimit": 1, "metrics": [metric()]},
    )
    weight = checks_for_step(spec, 0)
    assert weight is not None
    assert [x.name for x in weight.metrics] == ["error-ratio"]
    assert checks_for_step(spec, 1) is None
    inherited = checks_for_step(spec, 2)
    assert inherited is not None
    assert (inherited.failure_limit, inherited.inconclusive_limit, inherited.interval) == (
        2,
        1,
        "10s",
    )
    own = checks_for_step(spec, 3)
    assert own is not None
    assert [x.name for x in own.metrics] == ["latency"]
    assert checks_for_step(spec, 99) is None


def test_no_canary_analysis_means_no_checks_on_weight_steps() -> None:
    assert checks_for_step(spec_of(), 0) is None


# ------------------------------------------------------------------ due metrics


def running_status(spec_steps: int = 0) -> tuple[Any, RolloutStatus]:
    spec = spec_of(
        analysis={
            "interval": "1m",
            "metrics": [metric(count=3), metric("latency", interval="20s", count=2)],
        }
    )
    c = checks_for_step(spec, spec_steps)
    assert c is not None
    status = RolloutStatus(
        stable_revision="a",
        canary_revision="b",
        current_step_index=spec_steps,
        canary_weight=5,
        analysis=new_run(spec_steps, "b", c, NOW),
    )
    return spec, status


@pytest.mark.parametrize(
    ("seconds", "names"),
    [
        pytest.param(0, [], id="nothing-at-start"),
        pytest.param(19, [], id="before-first-interval"),
        pytest.param(20, ["latency"], id="own-interval"),
        pytest.param(60, ["error-ratio", "latency"], id="both"),
    ],
)
def test_due_metrics_schedule(seconds: int, names: list[str]) -> None:
    spec, status = running_status()
    due = due_metrics(spec, status, NOW + timedelta(seconds=seconds))
    assert [d.metric.name for d in due] == names


def test_due_after_a_measurement_waits_one_interval() -> None:
    spec, status = running_status()
    c = checks_for_step(spec, 0)
    assert c is not None
    assert status.analysis is not None
    latency = c.metrics[1]
    updated = record(
        c, latency, MetricRun(name="latency"), Measurement(0.01, NOW + timedelta(seconds=20))
    )
    run = status.analysis.model_copy(update={"metrics": [status.analysis.metrics[0], updated.run]})
    status = status.model_copy(update={"analysis": run})
    assert [d.metric.name for d in due_metrics(spec, status, NOW + timedelta(seconds=39))] == []
    assert [d.metric.name for d in due_metrics(spec, status, NOW + timedelta(seconds=40))] == [
        "latency"
    ]
    assert soonest_due(spec, status) == NOW + timedelta(seconds=40)


def test_nothing_due_when_spec_paused_or_no_canary() -> None:
    spec, status = running_status()
    later = NOW + timedelta(hours=1)
    paused = spec.model_copy(update={"paused": True})
    assert due_metrics(paused, status, later) == []
    assert due_metrics(spec, None, later) == []
    assert due_metrics(spec, status.model_copy(update={"canary_revision": None}), later) == []
    finished = (
        status.analysis.model_copy(update={"verdict": Verdict.PASS}) if status.analysis else None
    )
    assert due_metrics(spec, status.model_copy(update={"analysis": finished}), later) == []


# ------------------------------------------------------------------ query templates


CONTEXT = {
    "namespace": "shop",
    "name": "web",
    "stableRevision": "aaa",
    "canaryRevision": "bbb",
    "stableService": "web-stable",
    "canaryService": "web-canary",
}


@pytest.mark.parametrize(
    ("template", "rendered"),
    [
        pytest.param("up", "up", id="no-placeholder"),
        pytest.param(
            'rate(x{ns="{{namespace}}",rev="{{canaryRevision}}"}[1m])',
            'rate(x{ns="shop",rev="bbb"}[1m])',
            id="two",
        ),
        pytest.param("{{ stableService }}/{{name}}", "web-stable/web", id="spaces"),
    ],
)
def test_render_query(template: str, rendered: str) -> None:
    assert render_query(template, CONTEXT) == rendered


def test_render_query_unknown_placeholder() -> None:
    with pytest.raises(QueryTemplateError, match=r"unknown placeholder \{\{pod\}\}"):
        render_query("x{pod='{{pod}}'}", CONTEXT)


def test_render_query_missing_value() -> None:
    with pytest.raises(QueryTemplateError, match="no value"):
        render_query("{{name}}", {})


@pytest.mark.parametrize(
    ("status", "revisions"),
    [
        pytest.param(
            RolloutStatus(stable_revision="aaa", canary_revision="bbb"),
            {"stableRevision": "aaa", "canaryRevision": "bbb", "baselineRevision": "aaa"},
            id="canary-running",
        ),
        pytest.param(
            RolloutStatus(
                stable_revision="aaa",
                canary_revision="bbb",
                baseline=BaselineStatus(revision="aaa-baseline", stable_revision="aaa"),
            ),
            {
                "stableRevision": "aaa",
                "canaryRevision": "bbb",
                "baselineRevision": "aaa-baseline",
            },
            id="baseline-running",
        ),
        pytest.param(
            RolloutStatus(stable_revision="aaa"),
            {"stableRevision": "aaa", "canaryRevision": "aaa", "baselineRevision": "aaa"},
            id="no-canary-is-the-stable",
        ),
        pytest.param(
            None,
            {"stableRevision": "", "canaryRevision": "", "baselineRevision": ""},
            id="no-status",
        ),
        pytest.param(
            RolloutStatus(),
            {"stableRevision": "", "canaryRevision": "", "baselineRevision": ""},
            id="empty",
        ),
    ],
)
def test_query_context_from_status(status: RolloutStatus | None, revisions: dict[str, str]) -> None:
    assert query_context("shop", "web", spec_of(), status) == {**CONTEXT, **revisions}
