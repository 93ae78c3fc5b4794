"""Rollout transitions under overrides (hold, rollback, promote), in the same table shape as
test_core_rollout: state in, one ``decide``, state out; and deciding again is quiet."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from rollwise.core.observations import OVERRIDE_HANDLED_KEY, Hold, ManualRequest, RequestKind
from rollwise.core.phases import Phase
from rollwise.core.rollout.analysis import due_metrics, soonest_due
from rollwise.core.rollout.canary import decide
from rollwise.core.rollout.status import ConditionType, PauseReason
from tests.unit.core.rollout_builders import R1, R2, V2, at, spec_of, value
from tests.unit.core.test_core_rollout import ANALYSIS, Case, _check, canary, healthy, rolled_back

HOLD = Hold(id="o1", user="alice", reason="checking the dashboard")
WAITING = "promote override by alice waits for a second person's confirmation"


def _override(kind: RequestKind, id_: str = "o1") -> ManualRequest:
    return ManualRequest(kind, id_)


def hold_pauses_and_stops_measuring() -> Case:
    status, cluster, spec = canary(analysis=ANALYSIS)
    return Case(
        spec=spec,
        status=status,
        obs=cluster.observe(V2, hold=HOLD, measurements={"error-ratio": value(0.9)}),
        now=at(70),
        phase=Phase.PAUSED,
        events=["Paused"],
        fields={"current_step_index": 0, "canary_weight": 5, "rolled_back_revision": None},
        requeue=None,
        message="held by alice (override o1): checking the dashboard; at step 1/3",
    )


def hold_released_resumes() -> Case:
    status, cluster, spec = canary(analysis=ANALYSIS)
    held = decide(spec, status, cluster.observe(V2, hold=HOLD), at(30))
    return Case(
        spec=spec,
        status=held.status,
        obs=cluster.observe(V2),
        now=at(40),
        phase=Phase.PROGRESSING,
        events=["Resumed"],
        fields={"current_step_index": 0},
    )


def hold_when_healthy() -> Case:
    status, cluster = healthy()
    return Case(
        spec=spec_of(),
        status=status,
        obs=cluster.observe(spec_of().template, hold=HOLD),
        now=at(50),
        phase=Phase.PAUSED,
        events=["Paused"],
        requeue=None,
        message="held by alice",
    )


def spec_paused_wins_over_hold() -> Case:
    status, cluster, _ = canary(analysis=ANALYSIS)
    return Case(
        spec=spec_of(image_template=V2, analysis=ANALYSIS, paused=True),
        status=status,
        obs=cluster.observe(V2, hold=HOLD),
        now=at(30),
        phase=Phase.PAUSED,
        events=["Paused"],
        requeue=None,
        message="paused by spec.paused",
    )


def rollback_override_aborts() -> Case:
    status, cluster, spec = canary(analysis=ANALYSIS)
    return Case(
        spec=spec,
        status=status,
        obs=cluster.observe(V2, override_requests=(_override(RequestKind.ABORT),)),
        now=at(30),
        phase=Phase.DEGRADED,
        events=["Aborted"],
        fields={
            "rolled_back_revision": R2,
            "aborted": True,
            "canary_revision": None,
            "handled_requests": {OVERRIDE_HANDLED_KEY: "o1"},
        },
    )


def rollback_override_acts_once() -> Case:
    status, cluster, spec = canary(analysis=ANALYSIS)
    handled = status.model_copy(update={"handled_requests": {OVERRIDE_HANDLED_KEY: "o1"}})
    return Case(
        spec=spec,
        status=handled,
        obs=cluster.observe(V2, override_requests=(_override(RequestKind.ABORT),)),
        now=at(30),
        phase=Phase.PROGRESSING,
        events=[],
        fields={"canary_revision": R2},
    )


def override_and_annotation_requests_kept_apart() -> Case:
    """An applied annotation abort and an applied rollback override of another id never
    re-trigger each other."""
    status, cluster, spec = rolled_back()
    both = status.model_copy(
        update={"handled_requests": {"abort": "x", OVERRIDE_HANDLED_KEY: "o1"}}
    )
    return Case(
        spec=spec,
        status=both,
        obs=cluster.observe(
            V2,
            requests=(ManualRequest(RequestKind.ABORT, "x"),),
            override_requests=(_override(RequestKind.ABORT),),
        ),
        now=at(100),
        phase=Phase.DEGRADED,
        events=[],
        fields={"handled_requests": {"abort": "x", OVERRIDE_HANDLED_KEY: "o1"}},
    )


def promote_override_waits_for_confirmation() -> Case:
    status, cluster, spec = rolled_back()
    waiting = f"{WAITING}: kubectl rollwise override rollout/web --confirm o1"
    return Case(
        spec=spec,
        status=status,
        obs=cluster.observe(V2, override_waiting=waiting),
        now=at(100),
        phase=Phase.DEGRADED,
        events=[],
        fields={"rolled_back_revision": R2, "canary_revision": None},
        message=f"stable {R1} serves all traffic; change the template or set rollwise.dev/retry "
        f"to try again; {waiting}",
    )


def confirmed_promote_override_retries_and_promotes() -> Case:
    status, cluster, spec = rolled_back()
    return Case(
        spec=spec,
        status=status,
        obs=cluster.observe(
            V2,
            override_requests=(
                _override(RequestKind.RETRY),
                _override(RequestKind.PROMOTE_FULL),
            ),
        ),
        now=at(100),
        phase=Phase.PROGRESSING,
        events=["RetryRequested", "PromotedFull"],
        fields={
            "rolled_back_revision": None,
            "canary_revision": R2,
            "current_step_index": 3,
            "handled_requests": {OVERRIDE_HANDLED_KEY: "o1"},
        },
        message="all steps done",
    )


def promote_override_of_healthy_canary() -> Case:
    status, cluster, spec = canary(analysis=ANALYSIS)
    return Case(
        spec=spec,
        status=status,
        obs=cluster.observe(V2, override_requests=(_override(RequestKind.PROMOTE_FULL),)),
        now=at(30),
        phase=Phase.PROGRESSING,
        events=["PromotedFull"],
        fields={"current_step_index": 3, "handled_requests": {OVERRIDE_HANDLED_KEY: "o1"}},
    )


CASES: list[Callable[[], Case]] = [
    hold_pauses_and_stops_measuring,
    hold_released_resumes,
    hold_when_healthy,
    spec_paused_wins_over_hold,
    rollback_override_aborts,
    rollback_override_acts_once,
    override_and_annotation_requests_kept_apart,
    promote_override_waits_for_confirmation,
    confirmed_promote_override_retries_and_promotes,
    promote_override_of_healthy_canary,
]


@pytest.mark.parametrize("make", [pytest.param(c, id=c.__name__.replace("_", "-")) for c in CASES])
def test_transition(make: Callable[[], Case]) -> None:
    case = make()
    _check(case, decide(case.spec, case.status, case.obs, case.now))


@pytest.mark.parametrize("make", [pytest.param(c, id=c.__name__.replace("_", "-")) for c in CASES])
def test_deciding_again_is_quiet(make: Callable[[], Case]) -> None:
    case = make()
    first = decide(case.spec, case.status, case.obs, case.now)
    second = decide(case.spec, first.status, case.obs, case.now)
    assert second.status == first.status
    assert second.events == ()
    assert second.actions == first.actions


def test_hold_shows_as_the_paused_condition_and_names_who() -> None:
    status, cluster, spec = canary(analysis=ANALYSIS)
    d = decide(spec, status, cluster.observe(V2, hold=HOLD), at(30))
    paused = d.status.condition(ConditionType.PAUSED)
    assert paused is not None
    assert paused.reason == PauseReason.OVERRIDE_HOLD.value
    assert "held by alice (override o1)" in paused.message
    assert d.status.pause_reason is not PauseReason.OVERRIDE_HOLD
    [event] = d.events
    assert event.message == "held by alice (override o1): checking the dashboard"
    resumed = decide(spec, d.status, cluster.observe(V2), at(40))
    assert "hold override ended; continuing at step 1/3" in [e.message for e in resumed.events]


def test_no_measurement_is_due_while_held() -> None:
    status, _, spec = canary(analysis=ANALYSIS)
    assert [d.metric.name for d in due_metrics(spec, status, at(70))] == ["error-ratio"]
    assert due_metrics(spec, status, at(70), held=True) == []
    assert soonest_due(spec, status, held=True) is None
