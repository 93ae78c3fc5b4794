"""Keeps ``hack/bench/watch.py`` honest: its series are the demo service model's traffic, its
window values are what the example's queries compute, its runs go through the kernel's watch,
and ``--quick`` prints figures that parse, one row per kind of run.

The figures themselves are measured by ``python -m hack.bench.watch`` (docs/benchmarks.md);
nothing here checks a time.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

from hack.bench.judge import BASE, NOISY
from hack.bench.watch import (
    ERROR_RATIO,
    P99_LATENCY,
    Case,
    bucket_shares,
    cases,
    draw_series,
    example_watch,
    histogram_quantile,
    main,
    outcome_of,
    run_one,
)
from hack.lab.service import LATENCY_BUCKETS, Behaviour, DemoService
from rollwise.core.regression import Transition
from rollwise.core.spec import RegressionAction


def test_the_watch_is_the_example_s_kpis_under_the_default_rule() -> None:
    watch, metrics = example_watch()
    assert [m.name for m in metrics] == [ERROR_RATIO, P99_LATENCY]
    assert (watch.interval, watch.windows.short, watch.windows.long) == ("5m", "1h", "24h")
    assert (watch.confirm_after, watch.clear_after) == (3, 3)
    assert watch.confirm_when_windows_agree is False
    assert example_watch(windows_agree=True)[0].confirm_when_windows_agree is True


@pytest.mark.parametrize("behaviour", [BASE, NOISY], ids=["base", "noisy"])
def test_bucket_shares_are_what_the_demo_service_draws(behaviour: Behaviour) -> None:
    shares = bucket_shares(behaviour)
    assert len(shares) == len(LATENCY_BUCKETS) + 1
    assert sum(shares) == pytest.approx(1.0)
    demo = DemoService(behaviour=behaviour, seed=7)
    drawn: Counter[int] = Counter()
    n = 20_000
    for _ in range(n):
        _, seconds = demo.draw()
        drawn[next(i for i, b in enumerate(LATENCY_BUCKETS) if seconds <= b)] += 1
    for i, share in enumerate(shares):
        assert drawn[i] / n == pytest.approx(share, abs=0.015)


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        pytest.param([0] * 12, None, id="no-requests"),
        pytest.param([0, 0, 100] + [0] * 9, 0.01 + 0.015 * 0.99, id="one-bucket"),
        pytest.param([0, 0, 80, 0, 20] + [0] * 7, 0.05 + 0.05 * 0.95, id="interpolated"),
        pytest.param([100] + [0] * 11, 0.005 * 0.99, id="first-bucket-from-zero"),
        pytest.param([0] * 11 + [5], LATENCY_BUCKETS[-1], id="inf-bucket"),
    ],
)
def test_histogram_quantile_interpolates_as_prometheus_does(
    counts: list[int], expected: float | None
) -> None:
    got = histogram_quantile(0.99, counts)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected)


def test_a_series_counts_each_minute_and_windows_stop_at_the_promotion() -> None:
    bad = Behaviour(error_ratio=0.5)
    series = draw_series(lambda m: bad if m >= 10 else BASE, 20, np.random.default_rng(1))
    assert series.minutes == 20
    assert series.requests.tolist() == [3000] * 20
    first = series.error_ratio(10, 60)  # the window reaches back before minute 0
    assert first is not None
    assert first < 0.01
    late = series.error_ratio(20, 10)
    assert late is not None
    assert late == pytest.approx(0.5, abs=0.03)
    assert series.error_ratio(0, 60) is None


def test_a_sustained_regression_is_confirmed_after_it_starts_and_rolled_back() -> None:
    watch, metrics = example_watch()
    regression = next(c for c in cases() if c.name == "regression errors-20")
    run = run_one(regression, 3, watch, metrics, hours=6)
    assert run.bad_from is not None
    confirmed = run.first(Transition.CONFIRMED, ERROR_RATIO)
    detected = run.first(Transition.DETECTED, ERROR_RATIO)
    assert detected is not None
    assert confirmed is not None
    assert run.bad_from < detected < confirmed
    assert run.action is RegressionAction.ROLLBACK
    assert outcome_of(run) == "confirmed"
    # The rollback ends the watch: nothing is evaluated after the confirming pass.
    assert max(minute for minute, _, _ in run.transitions) == confirmed


def test_a_healthy_run_watches_the_whole_period_and_fires_nothing() -> None:
    watch, metrics = example_watch()
    run = run_one(Case("healthy", BASE), 0, watch, metrics, hours=6)
    assert run.transitions == ()
    assert run.action is None
    # A pass every 5 minutes from 5 to 355; the one at 360 ends the watch.
    assert run.evaluations == 6 * 12 - 1
    assert outcome_of(run) == "nothing detected"


def test_quick_prints_figures_that_parse(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--quick", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    fp = re.search(r"false positives \(.*\): (\d+\.\d)% of (\d+) runs", out)
    cleared = re.search(r"detected then cleared \(.*\): (\d+\.\d)% of (\d+) runs", out)
    assert fp is not None
    assert cleared is not None
    assert int(fp.group(2)) == int(cleared.group(2)) == 2 * 4  # healthy + noisy, 4 seeds
    assert 0.0 <= float(fp.group(1)) <= 100.0
    times = re.findall(
        r"regression (\S+): confirmed \(= fast-track rollback, same pass\) in (\S+)% of 4 runs; "
        r"time from regression start p50 (\S+) min, p95 (\S+) min, max (\S+) min",
        out,
    )
    assert [t[0] for t in times] == ["errors-20", "errors-5"]
    for _, rate, p50, p95, worst in times:
        assert 0.0 <= float(rate) <= 100.0
        assert 0 <= float(p50) <= float(p95) <= float(worst)
    rows = [line for line in out.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[0].startswith("| run | runs | nothing detected |")
    assert [r.split(" | ")[0][2:] for r in rows[1:]] == [c.name for c in cases()]
    for row in rows[1:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        runs, nothing, cleared_n, confirmed = (int(c) for c in cells[1:5])
        assert runs == 4
        assert nothing + cleared_n + confirmed <= runs


@pytest.mark.parametrize(
    "args", [["--seeds", "0"], ["--hours", "2"]], ids=["no-seeds", "too-short"]
)
def test_bad_settings_are_refused(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert "must" in capsys.readouterr().err
