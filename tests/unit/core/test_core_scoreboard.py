"""The scoreboard's classification: a KPI's status and delta against its targets, and the
targets a metric's pass rule states."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollwise.core.scoreboard import (
    DEFAULT_BAND,
    KpiDelta,
    KpiDirection,
    KpiStatus,
    KpiTarget,
    compare_targets,
    kpi_delta,
    kpi_status,
    score,
    threshold_targets,
    worst_status,
)
from rollwise.core.spec import Compare, Direction, Metric

LOWER, HIGHER = KpiDirection.LOWER_IS_BETTER, KpiDirection.HIGHER_IS_BETTER
ON, ATTENTION, OFF = KpiStatus.ON_TRACK, KpiStatus.ATTENTION, KpiStatus.OFF_TRACK


@pytest.mark.parametrize(
    ("value", "target", "direction", "band", "expected"),
    [
        pytest.param(0.01, 0.05, LOWER, 0.1, ON, id="lower-well-below"),
        pytest.param(0.0449, 0.05, LOWER, 0.1, ON, id="lower-just-outside-band"),
        pytest.param(0.046, 0.05, LOWER, 0.1, ATTENTION, id="lower-inside-band"),
        pytest.param(0.05, 0.05, LOWER, 0.1, ATTENTION, id="lower-exactly-at-target"),
        pytest.param(0.0501, 0.05, LOWER, 0.1, OFF, id="lower-just-past-target"),
        pytest.param(0.5, 0.05, LOWER, 0.1, OFF, id="lower-far-past-target"),
        pytest.param(0.995, 0.9, HIGHER, 0.1, ON, id="higher-well-above"),
        pytest.param(0.92, 0.9, HIGHER, 0.1, ATTENTION, id="higher-inside-band"),
        pytest.param(0.89, 0.9, HIGHER, 0.1, OFF, id="higher-below-target"),
        pytest.param(0.046, 0.05, LOWER, 0.0, ON, id="band-zero-never-attention"),
        pytest.param(0.05, 0.05, LOWER, 0.0, ON, id="band-zero-at-target-on-track"),
        pytest.param(0.03, 0.05, LOWER, 0.5, ATTENTION, id="wide-band"),
        pytest.param(0.0, 0.0, LOWER, 0.1, ON, id="zero-target-zero-value"),
        pytest.param(1e-9, 0.0, LOWER, 0.1, OFF, id="zero-target-any-move-off"),
        pytest.param(-4.0, -5.0, HIGHER, 0.1, ON, id="negative-target-higher"),
        pytest.param(-4.8, -5.0, HIGHER, 0.1, ATTENTION, id="negative-target-in-band"),
        pytest.param(-5.2, -5.0, HIGHER, 0.1, OFF, id="negative-target-past"),
        pytest.param(math.nan, 0.05, LOWER, 0.1, None, id="nan-value-no-status"),
        pytest.param(0.01, math.inf, LOWER, 0.1, None, id="infinite-target-no-status"),
    ],
)
def test_kpi_status(
    value: float, target: float, direction: KpiDirection, band: float, expected: KpiStatus | None
) -> None:
    assert kpi_status(value, target, direction, band) is expected


def test_the_default_band_is_ten_percent() -> None:
    assert DEFAULT_BAND == 0.1
    assert kpi_status(0.046, 0.05, LOWER) is ATTENTION
    assert kpi_status(0.044, 0.05, LOWER) is ON


@pytest.mark.parametrize("band", [-0.1, math.nan, math.inf])
def test_a_bad_band_is_refused(band: float) -> None:
    with pytest.raises(ValueError, match="attention band"):
        kpi_status(0.01, 0.05, LOWER, band)


@pytest.mark.parametrize(
    ("value", "reference", "direction", "expected"),
    [
        pytest.param(0.06, 0.05, LOWER, KpiDelta(0.01, 0.2), id="lower-worse-is-positive"),
        pytest.param(0.04, 0.05, LOWER, KpiDelta(-0.01, -0.2), id="lower-better-is-negative"),
        pytest.param(0.8, 0.9, HIGHER, KpiDelta(0.1, 0.1111111), id="higher-worse-positive"),
        pytest.param(0.95, 0.9, HIGHER, KpiDelta(-0.05, -0.0555556), id="higher-better-negative"),
        pytest.param(0.01, 0.0, LOWER, KpiDelta(0.01, None), id="zero-reference-no-relative"),
    ],
)
def test_kpi_delta(
    value: float, reference: float, direction: KpiDirection, expected: KpiDelta
) -> None:
    delta = kpi_delta(value, reference, direction)
    assert delta is not None
    assert delta.absolute == pytest.approx(expected.absolute)
    if expected.relative is None:
        assert delta.relative is None
    else:
        assert delta.relative == pytest.approx(expected.relative, rel=1e-5)


def test_kpi_delta_of_a_non_finite_number_is_none() -> None:
    assert kpi_delta(math.nan, 1.0, LOWER) is None
    assert kpi_delta(1.0, -math.inf, HIGHER) is None


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        pytest.param([ON, OFF, ATTENTION], OFF, id="off-wins"),
        pytest.param([ON, ATTENTION, None], ATTENTION, id="none-skipped"),
        pytest.param([ON], ON, id="single"),
        pytest.param([None, None], None, id="only-unknown"),
        pytest.param([], None, id="empty"),
    ],
)
def test_worst_status(statuses: list[KpiStatus | None], expected: KpiStatus | None) -> None:
    assert worst_status(statuses) is expected


@pytest.mark.parametrize(
    ("value", "targets", "status", "binding"),
    [
        pytest.param(
            1.5, [KpiTarget(0.1, HIGHER), KpiTarget(2.0, LOWER)], ON, 2.0, id="range-inside"
        ),
        pytest.param(
            1.9, [KpiTarget(0.1, HIGHER), KpiTarget(2.0, LOWER)], ATTENTION, 2.0, id="near-high"
        ),
        pytest.param(
            0.05, [KpiTarget(0.1, HIGHER), KpiTarget(2.0, LOWER)], OFF, 0.1, id="below-low"
        ),
    ],
)
def test_score_takes_the_binding_target(
    value: float, targets: list[KpiTarget], status: KpiStatus, binding: float
) -> None:
    scored = score(value, targets)
    assert scored is not None
    assert scored.status is status
    assert scored.target.value == binding


def test_score_without_target_or_number_is_none() -> None:
    assert score(0.1, []) is None
    assert score(math.nan, [KpiTarget(0.1, LOWER)]) is None


def _metric(**fields: object) -> Metric:
    return Metric.model_validate({"name": "m", **fields})


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param(
            {"successCondition": "result < 0.05"}, [KpiTarget(0.05, LOWER)], id="success-below"
        ),
        pytest.param(
            {"successCondition": "result >= 0.9"}, [KpiTarget(0.9, HIGHER)], id="success-above"
        ),
        pytest.param(
            {"failureCondition": "result > 0.02"}, [KpiTarget(0.02, LOWER)], id="failure-above"
        ),
        pytest.param(
            {"failureCondition": "result<=1e-3"}, [KpiTarget(0.001, HIGHER)], id="failure-below"
        ),
        pytest.param(
            {"thresholdRange": {"min": 0.1, "max": 2}},
            [KpiTarget(0.1, HIGHER), KpiTarget(2.0, LOWER)],
            id="range",
        ),
        pytest.param({"thresholdRange": {"max": 2}}, [KpiTarget(2.0, LOWER)], id="range-max"),
        pytest.param(
            {"successCondition": "result < 0.05 && result > 0"}, [], id="compound-unreadable"
        ),
        pytest.param(
            {"thresholdRange": {"max": 2}, "successCondition": "result[0] < 1"},
            [],
            id="half-readable-gives-none",
        ),
        pytest.param({}, [], id="no-rule"),
    ],
)
def test_threshold_targets(fields: dict[str, object], expected: list[KpiTarget]) -> None:
    assert list(threshold_targets(_metric(**fields))) == expected


@pytest.mark.parametrize(
    ("direction", "expected"),
    [
        pytest.param(Direction.INCREASE, [KpiTarget(0.22, LOWER)], id="increase"),
        pytest.param(Direction.DECREASE, [KpiTarget(0.18, HIGHER)], id="decrease"),
        pytest.param(
            Direction.EITHER, [KpiTarget(0.22, LOWER), KpiTarget(0.18, HIGHER)], id="either"
        ),
    ],
)
def test_compare_targets(direction: Direction, expected: list[KpiTarget]) -> None:
    rule = Compare.model_validate({"query": "q", "direction": direction.value, "tolerance": 0.1})
    found = compare_targets(0.2, rule)
    assert [t.direction for t in found] == [t.direction for t in expected]
    assert [t.value for t in found] == pytest.approx([t.value for t in expected])


def test_compare_targets_of_no_control_median() -> None:
    assert compare_targets(math.nan, Compare.model_validate({"query": "q"})) == ()


# -- properties ---------------------------------------------------------------------------------

_RANK = {ON: 0, ATTENTION: 1, OFF: 2}
_NUMBER = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
_BAND = st.floats(min_value=0, max_value=10, allow_nan=False)


@given(_NUMBER, _NUMBER, _NUMBER, _BAND, st.sampled_from([LOWER, HIGHER]))
def test_a_worse_value_never_has_a_better_status(
    a: float, b: float, target: float, band: float, direction: KpiDirection
) -> None:
    better, worse = (min(a, b), max(a, b)) if direction is LOWER else (max(a, b), min(a, b))
    first = kpi_status(better, target, direction, band)
    second = kpi_status(worse, target, direction, band)
    assert first is not None
    assert second is not None
    assert _RANK[first] <= _RANK[second]


@given(_NUMBER, _NUMBER, _BAND, _BAND, st.sampled_from([LOWER, HIGHER]))
def test_a_wider_band_never_improves_a_status_and_never_changes_off_track(
    value: float, target: float, a: float, b: float, direction: KpiDirection
) -> None:
    narrow = kpi_status(value, target, direction, min(a, b))
    wide = kpi_status(value, target, direction, max(a, b))
    assert narrow is not None
    assert wide is not None
    assert _RANK[narrow] <= _RANK[wide]
    assert (narrow is OFF) == (wide is OFF)  # the band never moves the limit itself


@given(_NUMBER, _NUMBER, st.sampled_from([LOWER, HIGHER]))
def test_off_track_exactly_when_the_delta_is_positive(
    value: float, target: float, direction: KpiDirection
) -> None:
    delta = kpi_delta(value, target, direction)
    assert delta is not None
    assert (kpi_status(value, target, direction) is OFF) == (delta.absolute > 0)
