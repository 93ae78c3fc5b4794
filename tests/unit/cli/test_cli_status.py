"""``kubectl rollwise status``: one line and an exit code a script can branch on (0 Healthy,
1 Degraded, 3 not finished), a status of an older generation never read as the current one,
and ``--watch`` that waits through Progressing and Paused until the Rollout is final."""

from __future__ import annotations

import copy
import io
from typing import Any

import pytest

from rollwise.cli.main import run
from rollwise.cli.status import DEGRADED, HEALTHY, NOT_DONE, rollout_state
from rollwise.core.phases import Phase
from tests.unit.cli import workload_builders as w
from tests.unit.cli.fake_cluster import FakeCluster

INVALID = "invalid spec: spec.strategy.canary.steps[1].setWeight: weights must not decrease"


def state_of(**changes: Any) -> dict[str, Any]:
    rollout = w.rollout(w.STABLE_TEMPLATE)
    rollout["status"].update(changes.pop("status", {}))
    rollout["metadata"].update(changes.pop("metadata", {}))
    rollout["spec"].update(changes.pop("spec", {}))
    assert not changes
    return rollout


@pytest.mark.parametrize(
    ("rollout", "line", "code"),
    [
        pytest.param(
            state_of(status={"message": "revision 1a18 is stable at 100% (4/4 available)"}),
            "Healthy - revision 1a18 is stable at 100% (4/4 available)",
            HEALTHY,
            id="healthy",
        ),
        pytest.param(
            state_of(status={"phase": "Degraded", "message": "revision 8247 was rolled back"}),
            "Degraded - revision 8247 was rolled back",
            DEGRADED,
            id="degraded",
        ),
        pytest.param(
            state_of(status={"phase": "Degraded", "message": INVALID}),
            f"Degraded - {INVALID}",
            DEGRADED,
            id="invalid-spec",
        ),
        pytest.param(
            state_of(status={"phase": "Progressing", "message": "step 1/3: waiting for canary"}),
            "Progressing - step 1/3: waiting for canary",
            NOT_DONE,
            id="progressing",
        ),
        pytest.param(
            state_of(status={"phase": "Paused", "message": "step 2/3: paused until promoted"}),
            "Paused - step 2/3: paused until promoted",
            NOT_DONE,
            id="paused",
        ),
        pytest.param(
            state_of(status={"phase": "Paused", "message": "step 2/3"}, spec={"paused": True}),
            "Paused - step 2/3 (spec.paused: kubectl rollwise resume web)",
            NOT_DONE,
            id="spec-paused",
        ),
        pytest.param(
            state_of(metadata={"generation": 3}),
            "Progressing - waiting for the operator to observe generation 3 of the spec "
            "(status is of generation 2)",
            NOT_DONE,
            id="healthy-but-of-an-older-spec",
        ),
        pytest.param(
            {"metadata": {"name": "web", "generation": 1}, "spec": {}},
            "Progressing - waiting for the Rollwise operator: the rollout has no status yet",
            NOT_DONE,
            id="no-status",
        ),
        pytest.param(state_of(status={"message": "a\nb"}), "Healthy - a b", HEALTHY, id="one-line"),
    ],
)
def test_rollout_state(rollout: dict[str, Any], line: str, code: int) -> None:
    state = rollout_state(rollout)
    assert state.line() == line
    assert state.code == code
    assert state.final == (code in (HEALTHY, DEGRADED))


def run_with(cluster: FakeCluster, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), out, err, connector=lambda *_: cluster, environ={})
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    ("phase", "code"),
    [
        pytest.param(Phase.HEALTHY, 0, id="healthy"),
        pytest.param(Phase.DEGRADED, 1, id="degraded"),
        pytest.param(Phase.PAUSED, 3, id="paused"),
        pytest.param(Phase.PROGRESSING, 3, id="progressing"),
    ],
)
def test_status_prints_one_line_and_exits_with_the_phase_code(phase: Phase, code: int) -> None:
    cluster = FakeCluster(w.rollout(w.STABLE_TEMPLATE, phase=phase, message="m"))
    assert run_with(cluster, "status", "web") == (code, f"{phase.value} - m\n", "")


def test_status_of_a_missing_rollout() -> None:
    code, out, err = run_with(FakeCluster(), "status", "web")
    assert (code, out) == (1, "")
    assert err == 'error: rollout "web" not found in namespace "shop"\n'


def progress(rollout: dict[str, Any], phase: str, message: str) -> dict[str, Any]:
    after = copy.deepcopy(rollout)
    after["status"].update(phase=phase, message=message, observedGeneration=3)
    return after


def test_watch_waits_through_progressing_and_paused_until_healthy() -> None:
    """After ``set image`` the status is still the old Healthy one: that is not the answer."""
    start = w.rollout(w.CANARY_TEMPLATE, generation=3, observed=2)
    cluster = FakeCluster(start)
    cluster.then(progress(start, "Progressing", "step 1/3: waiting for canary"))
    cluster.then(progress(start, "Progressing", "step 1/3: waiting for canary"))  # no new line
    cluster.then(progress(start, "Paused", "step 2/3: paused for 30s"))
    cluster.then(progress(start, "Healthy", "revision 8247 is stable at 100%"))
    code, out, err = run_with(cluster, "status", "web", "--watch", "--timeout", "20s")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "Progressing - waiting for the operator to observe generation 3 of the spec "
        "(status is of generation 2)",
        "Progressing - step 1/3: waiting for canary",
        "Paused - step 2/3: paused for 30s",
        "Healthy - revision 8247 is stable at 100%",
    ]


def test_watch_ends_at_degraded_with_exit_code_1() -> None:
    start = w.rollout(w.CANARY_TEMPLATE, canary=w.CANARY, step=0, phase=Phase.PROGRESSING)
    cluster = FakeCluster(start)
    cluster.then(progress(start, "Degraded", "revision 8247 was rolled back (error-ratio 0.2)"))
    code, out, _ = run_with(cluster, "status", "web", "-w")
    assert code == 1
    assert out.splitlines()[-1] == "Degraded - revision 8247 was rolled back (error-ratio 0.2)"


def test_watch_times_out_with_exit_code_3_and_says_so() -> None:
    cluster = FakeCluster(w.rollout(w.CANARY_TEMPLATE, phase=Phase.PAUSED, message="paused"))
    code, out, err = run_with(cluster, "status", "web", "--watch", "--timeout", "0.3")
    assert code == 3
    assert out == "Paused - paused\n"
    assert err == 'error: timed out after 0.3s waiting for rollout "web" to be Healthy (Paused)\n'


def test_watch_of_a_rollout_already_final_returns_at_once() -> None:
    cluster = FakeCluster(w.rollout(w.STABLE_TEMPLATE, message="stable"))
    assert run_with(cluster, "status", "web", "--watch") == (0, "Healthy - stable\n", "")
