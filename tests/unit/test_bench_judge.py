"""Keeps ``hack/bench/judge.py`` honest without Prometheus: the scenario generator's traffic
(shares, counts, error ratio, latency histogram, seeds), its OpenMetrics output, a judge's walk
through the steps, and the scoring table on known outcomes.

The figures themselves are measured by ``python -m hack.bench.judge`` (docs/benchmarks.md);
``tests/lab/test_bench_judge_lab.py`` runs ``--quick`` against a real Prometheus.
"""

from __future__ import annotations

import io
import math
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from hack.bench.judge import (
    BASE,
    CANARY,
    HELD,
    PROMOTED,
    ROLLED_BACK,
    SCENARIOS,
    STABLE,
    Client,
    Judge,
    Outcome,
    Scenario,
    StepView,
    generate_segment,
    main,
    scenario_table,
    score,
    table,
    threshold_checks,
    time_table,
    walk,
    weights_of,
    write_openmetrics,
)
from hack.lab.service import LATENCY_BUCKETS
from rollwise.core.confidence import Confidence
from rollwise.core.decision import Action, Decision, Mode

SCENARIO = {s.name: s for s in SCENARIOS}


def test_the_router_split_gives_baseline_and_canary_the_step_weight() -> None:
    assert weights_of(5) == {"stable": 0.90, "baseline": 0.05, "canary": 0.05}
    assert weights_of(25) == {"stable": 0.50, "baseline": 0.25, "canary": 0.25}


def test_a_segment_splits_the_requests_by_weight_with_exact_shares() -> None:
    segment = generate_segment(SCENARIO["healthy"], seed=0, step_weight=5, duration=60, scrape=5)
    assert segment.offsets == [5.0 * i for i in range(13)]
    served = {role: s.count[-1] for role, s in segment.roles.items()}
    # 50 req/s for 60 s: 3000 requests, 90/5/5.
    assert served == {"stable": 2700, "baseline": 150, "canary": 150}
    for series in segment.roles.values():
        assert series.count[0] == 0
        assert series.count == [a + b for a, b in zip(*series.requests.values(), strict=True)]
        for earlier, later in zip(series.buckets, series.buckets[1:], strict=False):
            assert all(a <= b for a, b in zip(earlier, later, strict=True))  # cumulative in le
        assert all(a <= b for a, b in zip(series.count, series.count[1:], strict=False))


def test_low_traffic_gives_the_canary_one_request_every_twenty_seconds() -> None:
    segment = generate_segment(
        SCENARIO["low-traffic"], seed=1, step_weight=5, duration=60, scrape=5
    )
    assert segment.roles[CANARY].count[-1] == 3


def test_the_canary_answers_as_its_behaviour_draws() -> None:
    segment = generate_segment(
        SCENARIO["errors-20"], seed=3, step_weight=25, duration=300, scrape=5
    )
    canary = segment.roles[CANARY]
    ratio = canary.requests["500"][-1] / canary.count[-1]
    # 3750 canary requests at 20.1%: three standard deviations are 2 points.
    assert abs(ratio - 0.201) < 0.02
    stable = segment.roles[STABLE]
    assert stable.requests["500"][-1] / stable.count[-1] < 0.005

    slow = generate_segment(SCENARIO["p95-300ms"], seed=3, step_weight=5, duration=60, scrape=5)
    bucket_of_half_a_second = LATENCY_BUCKETS.index(0.5)
    canary = slow.roles[CANARY]
    # 320-330 ms: nothing at or below 250 ms, everything at or below 500 ms.
    assert canary.buckets[bucket_of_half_a_second - 1][-1] == 0
    assert canary.buckets[bucket_of_half_a_second][-1] == canary.count[-1]
    assert 0.320 * canary.count[-1] <= canary.total_seconds[-1] <= 0.330 * canary.count[-1]


def test_a_seed_replays_the_same_traffic_and_another_draws_other() -> None:
    scenario = SCENARIO["noisy"]
    first = generate_segment(scenario, seed=4, step_weight=5, duration=30, scrape=5)
    again = generate_segment(scenario, seed=4, step_weight=5, duration=30, scrape=5)
    other = generate_segment(scenario, seed=5, step_weight=5, duration=30, scrape=5)
    assert first.roles[STABLE].total_seconds == again.roles[STABLE].total_seconds
    assert first.roles[STABLE].total_seconds != other.roles[STABLE].total_seconds


def test_openmetrics_carries_the_demo_service_names_with_timestamps() -> None:
    segment = generate_segment(SCENARIO["healthy"], seed=0, step_weight=5, duration=10, scrape=5)
    out = io.StringIO()
    written = write_openmetrics([segment], 1_000.0, out)
    lines = out.getvalue().splitlines()
    assert lines[-1] == "# EOF"
    samples = [line for line in lines if not line.startswith("#")]
    assert len(samples) == written
    # 3 revisions x 3 scrapes x (2 codes + 12 buckets + count + sum)
    assert written == 3 * 3 * 16
    assert (
        'http_requests_total{namespace="healthy-s0-w5",service="demo",revision="canary",'
        'code="200"} 25 1010.000'
    ) in samples
    assert any(
        line.startswith(
            'http_request_duration_seconds_bucket{namespace="healthy-s0-w5",service="demo",'
            'revision="stable",le="+Inf"} 450 1010.000'
        )
        for line in samples
    )


def test_the_threshold_judge_uses_the_example_s_error_check_and_a_p95_check() -> None:
    checks = threshold_checks()
    names = [m.name for m in checks.metrics]
    assert names == ["error-ratio", "p95-latency"]
    error_ratio, p95 = checks.metrics
    assert error_ratio.success_condition == "result < 0.05"
    assert error_ratio.sample_guard is not None
    assert error_ratio.sample_guard.min_samples == 50
    assert p95.sample_guard == error_ratio.sample_guard
    assert p95.threshold_range is not None
    assert p95.threshold_range.max == 0.25
    assert (checks.interval, checks.failure_limit, checks.inconclusive_limit) == ("30s", 1, 0)


class _Scripted(Judge):
    """A judge answering a fixed list of actions, one per pass."""

    name = "scripted"

    def __init__(self, actions: list[Action]) -> None:
        self.actions = list(actions)
        self.steps: list[StepView] = []

    def begin(self, step: StepView) -> None:
        super().begin(step)
        self.steps.append(step)

    def decide(self, client: Client, at: float) -> Decision:
        action = self.actions.pop(0)
        now = datetime.fromtimestamp(at, UTC)
        return Decision(
            action=action,
            recommended=action,
            mode=Mode.AUTO,
            confidence=Confidence.LOW,
            message=f"{action.value} at {at:g}",
            decided_at=now,
        )


@pytest.mark.parametrize(
    ("actions", "result", "step", "times"),
    [
        pytest.param(
            [Action.HOLD, Action.EXPAND, Action.EXPAND], PROMOTED, 1, (60.0, 30.0), id="promoted"
        ),
        pytest.param([Action.ROLLBACK], ROLLED_BACK, 0, (30.0,), id="rolled-back-at-5"),
        pytest.param(
            [Action.EXPAND, Action.HOLD, Action.HOLD, Action.ROLLBACK],
            ROLLED_BACK,
            1,
            (30.0, 90.0),
            id="rolled-back-at-25",
        ),
        pytest.param([Action.HOLD] * 4, HELD, 0, (), id="held-at-5"),
    ],
)
def test_a_walk_follows_the_decisions_through_the_steps(
    actions: list[Action], result: str, step: int, times: tuple[float, ...]
) -> None:
    judge = _Scripted(actions)
    outcome = walk(
        judge,
        Client("http://unused"),
        SCENARIO["healthy"],
        7,
        starts=[100.0, 900.0],
        step_seconds=120.0,
    )
    assert (outcome.result, outcome.step, outcome.decision_times) == (result, step, times)
    assert judge.steps[0] == StepView("healthy-s7-w5", 100.0, 0.0)
    if len(judge.steps) > 1:
        # The 25% step starts on its own segment; the canary served the 5% step before it.
        assert judge.steps[1] == StepView("healthy-s7-w25", 900.0, times[0])


def _outcome(judge: str, scenario: Scenario, result: str, step: int, *times: float) -> Outcome:
    return Outcome(judge, scenario.name, scenario.bad, 0, result, step, tuple(times))


def test_the_scoring_table_counts_accuracy_errors_and_times() -> None:
    healthy, worst, latency = SCENARIO["healthy"], SCENARIO["errors-20"], SCENARIO["p95-50ms"]
    sparse = SCENARIO["low-traffic-errors-20"]
    outcomes = [
        _outcome("a", healthy, PROMOTED, 1, 60, 60),
        _outcome("a", healthy, ROLLED_BACK, 0, 30),
        _outcome("a", worst, ROLLED_BACK, 0, 30),
        _outcome("a", worst, ROLLED_BACK, 1, 60, 90),
        _outcome("a", latency, PROMOTED, 1, 60, 60),
        _outcome("a", latency, HELD, 0),
        _outcome("b", healthy, PROMOTED, 1, 30, 30),
        _outcome("a", sparse, ROLLED_BACK, 1, 60, 60),
        _outcome("a", sparse, HELD, 0),
        _outcome("b", worst, ROLLED_BACK, 0, 30),
        _outcome("b", sparse, ROLLED_BACK, 0, 90),
    ]
    a, b = score(outcomes)
    assert a.judge == "a"
    assert a.runs == 8
    assert a.accuracy == pytest.approx(4 / 8)
    assert a.false_positives == pytest.approx(1 / 2)
    assert a.false_negatives == pytest.approx(1 / 6)
    assert a.held == pytest.approx(2 / 8)
    # Every decided step: 60 60 30 30 60 90 60 60 60 60.
    assert a.median_seconds == 60
    assert a.p95_seconds == 90
    assert a.caught_at_5 == pytest.approx(1 / 2)
    # Rolled back at any step counts for the low-traffic canary.
    assert a.low_traffic_caught == pytest.approx(1 / 2)
    assert b.low_traffic_caught == 1.0
    assert a.goals() == {
        "accuracy": False,
        "fp": False,
        "time": True,
        "low-traffic 20%": False,
        "20% at 5%": False,
    }
    assert all(b.goals().values())

    shown = table([a, b]).splitlines()
    assert shown[0].endswith("| time p95 | low-traffic 20% rolled back | 20% caught at 5% |")
    assert shown[2] == (
        "| a | 8 | 50.0% FAIL | 50.0% FAIL | 16.7% | 25.0% | 60s | 90s PASS | 50.0% FAIL | "
        "50.0% FAIL |"
    )
    assert shown[3].startswith("| b | 3 | 100.0% PASS | 0.0% PASS | 0.0% | 0.0% | 30s |")
    per_scenario = scenario_table(outcomes).splitlines()
    assert per_scenario[0] == "| scenario | label | a | b |"
    assert per_scenario[2] == "| healthy | good | 1/1/0 (1 at 5%) | 1/0/0 (0 at 5%) |"
    assert per_scenario[3] == "| errors-20 | bad | 0/2/0 (1 at 5%) | 0/1/0 (1 at 5%) |"
    times = time_table(outcomes).splitlines()
    assert times[2] == "| healthy | 60s / 60s | 30s / 30s |"
    assert times[4] == "| p95-50ms | 60s / 60s | n/a |"


def test_a_judge_without_decided_steps_has_no_time_and_fails_the_time_goal() -> None:
    held = _outcome("c", SCENARIO["low-traffic"], HELD, 0)
    (row,) = score([held])
    assert math.isnan(row.median_seconds)
    assert math.isnan(row.p95_seconds)
    assert math.isnan(row.caught_at_5)
    assert row.goals()["time"] is False
    assert row.goals()["20% at 5%"] is False
    assert row.goals()["low-traffic 20%"] is False
    assert "n/a" in table([row])


def test_unknown_scenarios_are_refused_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--scenarios", "healthy,flaky"])
    assert exit_info.value.code == 2
    assert "unknown scenarios ['flaky']" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "said"),
    [
        pytest.param(["--seeds", "0"], "must be positive", id="no-seeds"),
        pytest.param(["--compare-step", "0"], "must be positive", id="no-compare-step"),
        pytest.param(["--compare-min-samples", "4"], "at least 5", id="min-samples-below-5"),
    ],
)
def test_bad_settings_are_refused_before_anything_runs(
    args: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert said in capsys.readouterr().err


def test_scenarios_differ_from_the_stable_only_where_their_name_says() -> None:
    assert SCENARIO["healthy"].canary == BASE
    assert not SCENARIO["healthy"].bad
    assert SCENARIO["errors-5"].canary == replace(BASE, error_ratio=BASE.error_ratio + 0.05)
    assert SCENARIO["p95-50ms"].canary.latency_ms == BASE.latency_ms + 50
    noisy = SCENARIO["noisy"]
    assert noisy.stable == noisy.canary
    assert noisy.canary.jitter_ms == 10 * BASE.jitter_ms
    assert SCENARIO["low-traffic"].rate == 1.0
    sparse = SCENARIO["low-traffic-errors-20"]
    assert (sparse.bad, sparse.rate) == (True, 1.0)
    assert sparse.canary == SCENARIO["errors-20"].canary
    assert [s.label for s in SCENARIOS].count("good") == 3
