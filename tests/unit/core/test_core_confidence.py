"""The confidence scale and its arithmetic, and the cap by observed time."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rollwise.core.confidence import Confidence, capped, observation_cap, strongest, weakest

LOW, MEDIUM, HIGH = Confidence.LOW, Confidence.MEDIUM, Confidence.HIGH


def test_the_scale_is_ordered() -> None:
    assert [c.rank for c in (LOW, MEDIUM, HIGH)] == [0, 1, 2]
    assert [c.value for c in Confidence] == ["low", "medium", "high"]


@pytest.mark.parametrize(
    ("ratings", "weakest_", "strongest_"),
    [
        pytest.param([HIGH, LOW, MEDIUM], LOW, HIGH, id="mixed"),
        pytest.param([MEDIUM, HIGH], MEDIUM, HIGH, id="no-low"),
        pytest.param([HIGH], HIGH, HIGH, id="single"),
        pytest.param([], LOW, LOW, id="none-defaults-to-low"),
    ],
)
def test_weakest_and_strongest(
    ratings: list[Confidence], weakest_: Confidence, strongest_: Confidence
) -> None:
    assert weakest(ratings) is weakest_
    assert strongest(ratings) is strongest_


@pytest.mark.parametrize(
    ("rating", "cap", "expected"),
    [
        pytest.param(HIGH, MEDIUM, MEDIUM, id="lowered"),
        pytest.param(LOW, HIGH, LOW, id="never-raised"),
        pytest.param(MEDIUM, MEDIUM, MEDIUM, id="equal"),
    ],
)
def test_capped(rating: Confidence, cap: Confidence, expected: Confidence) -> None:
    assert capped(rating, cap) is expected


@pytest.mark.parametrize(
    ("observed", "cap"),
    [
        pytest.param(timedelta(0), LOW, id="nothing"),
        pytest.param(timedelta(minutes=5) - timedelta(microseconds=1), LOW, id="just-under-5m"),
        pytest.param(timedelta(minutes=5), MEDIUM, id="5m"),
        pytest.param(timedelta(minutes=59, seconds=59), MEDIUM, id="just-under-1h"),
        pytest.param(timedelta(hours=1), HIGH, id="1h"),
        pytest.param(timedelta(days=3), HIGH, id="days"),
    ],
)
def test_observation_cap(observed: timedelta, cap: Confidence) -> None:
    assert observation_cap(observed) is cap
