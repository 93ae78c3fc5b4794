"""Keeps ``hack/bench`` from rotting: its pure helpers on known inputs, and a tiny run of the
scale benchmark (3 Rollouts, short bounds) on a lab cluster of its own with the real operator
process.

The figures themselves are not checked here (they are measured by ``python -m hack.bench.*``
and recorded in docs/benchmarks.md); only that the benchmark drives a rollout to the end and
computes them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hack.bench._common import percentile
from hack.bench.scale import bench_steps, operator_writes, run_size, step_lags


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        pytest.param([3.0, 1.0, 2.0], 0.5, 2.0, id="median-of-three"),
        pytest.param([float(i) for i in range(1, 101)], 0.99, 99.0, id="p99-of-100"),
        pytest.param([5.0], 0.99, 5.0, id="single-value"),
    ],
)
def test_percentile_is_the_nearest_rank(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == expected


def test_operator_writes_split_status_events_and_other_and_ignore_other_users() -> None:
    operator = "system:serviceaccount:bench:rollwise-bench"
    kcm = "system:serviceaccount:kube-system:deployment-controller"

    def row(user: str, verb: str, resource: str) -> dict[str, object]:
        return {"user": user, "verb": verb, "resource": resource, "namespace": "bench", "code": 200}

    rows = [
        *[row(operator, "patch", "rollouts/status")] * 4,
        *[row(operator, "create", "events")] * 3,
        *[row(operator, "patch", "rollouts")] * 2,
        *[row(operator, "get", "deployments")] * 9,
        *[row(kcm, "update", "deployments/status")] * 7,
    ]
    assert operator_writes(rows, operator) == {
        "status": 4,
        "events": 3,
        "other:patch rollouts": 2,
    }


def test_step_lags_subtract_what_each_step_waits_for() -> None:
    def view(phase: str, step: int | None, stable: str, canary: str | None) -> dict[str, object]:
        return {"phase": phase, "step": step, "weight": 0, "stable": stable, "canary": canary}

    changes = {
        "r": [
            (0.0, view("Healthy", None, "old", None)),
            (11.0, view("Progressing", 0, "old", "new")),
            (12.0, view("Progressing", 1, "old", "new")),
            (13.5, view("Progressing", 2, "old", "new")),
            (14.5, view("Healthy", None, "new", None)),
        ]
    }
    lags, starts = step_lags(["r"], changes, {"r": 10.0}, {"r": "old"}, [0.5, 0.5, 0.5])
    assert lags == [0.5, 1.0, 0.5]
    assert starts == [1.0]


def test_step_lags_subtract_a_pause_step_s_duration() -> None:
    def view(phase: str, step: int | None, stable: str, canary: str | None) -> dict[str, object]:
        return {"phase": phase, "step": step, "weight": 0, "stable": stable, "canary": canary}

    changes = {
        "r": [
            (11.0, view("Progressing", 0, "old", "new")),
            (12.0, view("Paused", 1, "old", "new")),
            (32.5, view("Progressing", 2, "old", "new")),
            (33.5, view("Healthy", None, "new", None)),
        ]
    }
    waits = [0.5, 20.0, 0.5]
    lags, _ = step_lags(["r"], changes, {"r": 10.0}, {"r": "old"}, waits)
    assert lags == [0.5, 0.5, 0.5]
    assert [s for s in bench_steps(20) if "pause" in s] == [
        {"pause": {"duration": "20s"}},
        {"pause": {"duration": "20s"}},
    ]
    assert bench_steps(0) == [{"setWeight": 5}, {"setWeight": 25}, {"setWeight": 100}]


@pytest.mark.lab
@pytest.mark.timeout(180)
def test_a_tiny_scale_run_completes_and_reports_its_figures(tmp_path: Path) -> None:
    result = run_size(3, tmp_path, timeout=60, noop_seconds=1, quiet_for=1)
    assert result.completed == 3, result.lines
    # With one replica a pass may take more than one step (nothing to wait for between 5% and
    # 25%: the canary has its one pod either way), so a Rollout shows 2 or 3 steps.
    assert 6 <= len(result.step_lags) <= 9, result.lines
    assert result.writes is not None
    assert result.writes > 0
    assert result.noop_writes is not None
    assert any("step lag" in line for line in result.lines)
