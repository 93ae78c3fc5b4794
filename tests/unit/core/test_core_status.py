from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from rollwise.core.conditions import ConditionStatus
from rollwise.core.modelrelease.status import ModelReleaseStatus, ReleaseConditionType
from rollwise.core.phases import Phase
from rollwise.core.reasons import EventType
from rollwise.core.rollout.reasons import ALL_REASONS
from rollwise.core.rollout.status import ConditionType, RolloutStatus
from rollwise.core.status_model import format_time

T = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_condition_keeps_transition_time_when_status_unchanged() -> None:
    s = RolloutStatus().with_condition(
        ConditionType.READY, ConditionStatus.FALSE, reason="A", message="a", now=T, generation=1
    )
    s = s.with_condition(
        ConditionType.READY,
        ConditionStatus.FALSE,
        reason="B",
        message="b",
        now=T + timedelta(minutes=1),
        generation=2,
    )
    cond = s.condition(ConditionType.READY)
    assert cond is not None
    assert cond.last_transition_time == T
    assert (cond.reason, cond.message, cond.observed_generation) == ("B", "b", 2)


def test_condition_moves_transition_time_on_status_change() -> None:
    later = T + timedelta(minutes=5)
    s = RolloutStatus().with_condition(
        ConditionType.READY, ConditionStatus.FALSE, reason="A", message="", now=T, generation=1
    )
    s = s.with_condition(
        ConditionType.READY, ConditionStatus.TRUE, reason="A", message="", now=later, generation=1
    )
    cond = s.condition(ConditionType.READY)
    assert cond is not None
    assert cond.last_transition_time == later
    assert s.is_true(ConditionType.READY)


def test_conditions_kept_in_stable_order() -> None:
    s = RolloutStatus()
    for type_ in reversed(list(ConditionType)):
        s = s.with_condition(
            type_, ConditionStatus.FALSE, reason="x", message="", now=T, generation=1
        )
    assert [c.type for c in s.conditions] == list(ConditionType)


def test_wire_form_is_camel_case_with_z_times() -> None:
    s = RolloutStatus(
        phase=Phase.HEALTHY,
        observed_generation=3,
        stable_revision="abc",
        step_started_at=datetime(2026, 1, 1, 13, 0, tzinfo=timezone(timedelta(hours=1))),
    )
    wire = s.to_wire()
    assert wire["phase"] == "Healthy"
    assert wire["observedGeneration"] == 3
    assert wire["stableRevision"] == "abc"
    assert wire["stepStartedAt"] == "2026-01-01T12:00:00Z"
    assert RolloutStatus.model_validate(wire) == s


def test_status_ignores_unknown_fields() -> None:
    s = RolloutStatus.model_validate({"phase": "Paused", "fromTheFuture": 1})
    assert s.phase is Phase.PAUSED


def test_format_time_keeps_microseconds() -> None:
    assert format_time(T.replace(microsecond=5)) == "2026-01-01T12:00:00.000005Z"


def test_reasons_are_unique_documented_and_typed() -> None:
    names = [r.name for r in ALL_REASONS]
    assert len(names) == len(set(names))
    for reason in ALL_REASONS:
        assert reason.doc
        assert reason.template
        assert reason.name[0].isupper()
        assert isinstance(reason.type, EventType)
    failing = {r.name for r in ALL_REASONS if r.type is EventType.WARNING}
    assert {"AnalysisFailed", "RolledBack", "Aborted", "InvalidSpec"} <= failing


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        pytest.param({"Ready": "True"}, True, id="true"),
        pytest.param({"Ready": "False"}, False, id="false"),
        pytest.param({"Ready": "Unknown"}, False, id="unknown"),
        pytest.param({"Degraded": "True"}, False, id="absent"),
    ],
)
def test_a_release_condition_is_true_only_when_present_and_true(
    conditions: dict[str, str], expected: bool
) -> None:
    status = ModelReleaseStatus.model_validate(
        {
            "conditions": [
                {
                    "type": t,
                    "status": v,
                    "reason": "R",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
                for t, v in conditions.items()
            ]
        }
    )
    assert status.is_true(ReleaseConditionType.READY) is expected


def test_the_wire_form_leaves_unset_fields_out() -> None:
    """A null in a status merge patch would delete the field: unset fields are absent."""
    wire = RolloutStatus(canary_weight=5).to_wire()
    assert "stableRevision" not in wire
    assert "canaryRevision" not in wire
    assert wire["canaryWeight"] == 5

    def nulls(value: object) -> bool:
        if isinstance(value, dict):
            return any(v is None or nulls(v) for v in value.values())
        if isinstance(value, list):
            return any(v is None or nulls(v) for v in value)
        return False

    assert not nulls(wire)


def _with(*types: ConditionType) -> RolloutStatus:
    status = RolloutStatus()
    for type_ in types:
        status = status.with_condition(
            type_, ConditionStatus.TRUE, reason="R", message="m", now=T, generation=1
        )
    return status


def test_without_condition_drops_only_that_condition() -> None:
    both = _with(ConditionType.READY, ConditionType.PAUSED)
    less = both.without_condition(ConditionType.PAUSED)
    assert [c.type for c in less.conditions] == [ConditionType.READY]
    assert [c.type for c in both.conditions] == [ConditionType.READY, ConditionType.PAUSED]


def test_without_an_absent_condition_is_the_same_status() -> None:
    ready = _with(ConditionType.READY)
    assert ready.without_condition(ConditionType.PAUSED) is ready
