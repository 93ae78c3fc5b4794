from __future__ import annotations

import pytest

from rollwise.core.traffic import (
    Split,
    TrafficSplit,
    expected_weight,
    replica_ratio_weight,
    split,
    weights,
)


@pytest.mark.parametrize(
    ("replicas", "weight", "router", "expected"),
    [
        pytest.param(4, 5, True, Split(1, 4), id="router-min-one-canary"),
        pytest.param(10, 25, True, Split(3, 10), id="router-ceil"),
        pytest.param(4, 100, True, Split(4, 4), id="router-full-stable-stays"),
        pytest.param(4, 0, True, Split(1, 4), id="router-weight0-warm-canary"),
        pytest.param(0, 50, True, Split(0, 0), id="router-zero-replicas"),
        pytest.param(10, 25, False, Split(3, 7), id="ratio-split"),
        pytest.param(1, 5, False, Split(1, 1), id="ratio-keeps-one-stable"),
        pytest.param(4, 100, False, Split(4, 0), id="ratio-full"),
        pytest.param(4, 0, False, Split(0, 4), id="ratio-zero"),
        pytest.param(1, 5, True, Split(1, 1), id="router-one-replica-still-one-canary"),
        pytest.param(0, 50, False, Split(0, 0), id="ratio-zero-replicas"),
        pytest.param(201, 1, False, Split(3, 198), id="ratio-ceil-just-over-a-pod"),
    ],
)
def test_split(replicas: int, weight: int, router: bool, expected: Split) -> None:
    assert split(replicas, weight, router=router) == expected


@pytest.mark.parametrize(
    ("replicas", "weight", "router", "expected"),
    [
        pytest.param(4, 25, True, 25, id="router-exact"),
        pytest.param(10, 25, False, 30, id="ratio-approximate"),
        pytest.param(1, 5, False, 50, id="ratio-coarse"),
        pytest.param(4, 100, False, 100, id="ratio-full"),
    ],
)
def test_expected_weight(replicas: int, weight: int, router: bool, expected: int) -> None:
    assert expected_weight(replicas, weight, router=router) == expected


@pytest.mark.parametrize(
    ("canary", "stable", "weight"),
    [
        pytest.param(0, 0, 0, id="no-pods"),
        pytest.param(1, 0, 100, id="one-canary-pod-only"),
        pytest.param(0, 1, 0, id="one-stable-pod-only"),
        pytest.param(1, 3, 25, id="one-of-four"),
        pytest.param(1, 2, 33, id="rounded-down"),
        pytest.param(2, 1, 67, id="rounded-up"),
    ],
)
def test_replica_ratio_weight(canary: int, stable: int, weight: int) -> None:
    assert replica_ratio_weight(canary, stable) == weight


# ------------------------------------------------------------------------------------ baseline


@pytest.mark.parametrize(
    ("weight", "expected"),
    [
        pytest.param(0, TrafficSplit(canary=0, stable=100, baseline=0), id="no-traffic-yet"),
        pytest.param(5, TrafficSplit(canary=5, stable=90, baseline=5), id="5-step"),
        pytest.param(25, TrafficSplit(canary=25, stable=50, baseline=25), id="25-step"),
        pytest.param(50, TrafficSplit(canary=50, stable=0, baseline=50), id="half-no-stable"),
        pytest.param(60, TrafficSplit(canary=60, stable=0, baseline=40), id="over-half-rest"),
        pytest.param(100, TrafficSplit(canary=100, stable=0, baseline=0), id="100-step"),
        pytest.param(150, TrafficSplit(canary=100, stable=0, baseline=0), id="clamped-high"),
        pytest.param(-5, TrafficSplit(canary=0, stable=100, baseline=0), id="clamped-low"),
    ],
)
def test_three_way_weights(weight: int, expected: TrafficSplit) -> None:
    assert weights(weight, baseline=True) == expected


@pytest.mark.parametrize("weight", range(0, 101))
@pytest.mark.parametrize("baseline", [True, False])
def test_weights_sum_to_100_and_baseline_never_exceeds_the_canary(
    weight: int, baseline: bool
) -> None:
    shares = weights(weight, baseline=baseline)
    assert shares.canary + shares.stable + shares.baseline == 100
    assert shares.canary == weight
    assert shares.baseline <= shares.canary
    assert (shares.baseline == 0) == (not baseline or weight in (0, 100))


@pytest.mark.parametrize("weight", [0, 5, 25, 100])
def test_without_baseline_the_split_is_the_two_way_one(weight: int) -> None:
    assert weights(weight, baseline=False) == TrafficSplit(canary=weight, stable=100 - weight)


@pytest.mark.parametrize(
    ("canary", "stable", "baseline"),
    [
        pytest.param(5, 90, 6, id="sums-over-100"),
        pytest.param(5, 90, 0, id="sums-under-100"),
        pytest.param(-5, 100, 5, id="negative"),
        pytest.param(101, 0, -1, id="over-100"),
    ],
)
def test_a_split_that_does_not_sum_to_100_is_refused(
    canary: int, stable: int, baseline: int
) -> None:
    with pytest.raises(ValueError, match="summing to 100"):
        TrafficSplit(canary=canary, stable=stable, baseline=baseline)


@pytest.mark.parametrize(
    ("replicas", "weight", "router", "expected"),
    [
        pytest.param(4, 5, True, Split(1, 4, 1), id="router-baseline-as-many-as-canary"),
        pytest.param(10, 25, True, Split(3, 10, 3), id="router-ceil"),
        pytest.param(4, 100, True, Split(4, 4, 0), id="router-100-no-baseline"),
        pytest.param(4, 0, True, Split(1, 4, 0), id="router-weight0-no-baseline-yet"),
        pytest.param(20, 5, False, Split(1, 18, 1), id="ratio-5-of-20"),
        pytest.param(20, 25, False, Split(5, 10, 5), id="ratio-25-of-20"),
        pytest.param(10, 50, False, Split(5, 1, 4), id="ratio-half-keeps-one-stable"),
        pytest.param(3, 5, False, Split(1, 1, 1), id="ratio-three-pods-a-third-each"),
        pytest.param(2, 5, False, Split(1, 1, 0), id="ratio-too-few-for-a-baseline"),
        pytest.param(1, 5, False, Split(1, 1, 0), id="ratio-one-replica"),
        pytest.param(4, 100, False, Split(4, 0, 0), id="ratio-full"),
        pytest.param(0, 25, False, Split(0, 0, 0), id="ratio-zero-replicas"),
    ],
)
def test_split_with_baseline(replicas: int, weight: int, router: bool, expected: Split) -> None:
    assert split(replicas, weight, router=router, baseline=True) == expected


@pytest.mark.parametrize(
    ("replicas", "weight", "router", "expected"),
    [
        pytest.param(4, 25, True, 25, id="router-exact"),
        pytest.param(20, 5, False, 5, id="ratio-5-of-20"),
        pytest.param(20, 25, False, 25, id="ratio-25-of-20"),
        pytest.param(3, 5, False, 33, id="ratio-coarse"),
        pytest.param(10, 100, False, 100, id="ratio-full"),
    ],
)
def test_expected_weight_with_baseline(
    replicas: int, weight: int, router: bool, expected: int
) -> None:
    assert expected_weight(replicas, weight, router=router, baseline=True) == expected


def test_replica_ratio_weight_counts_baseline_pods() -> None:
    assert replica_ratio_weight(1, 18, 1) == 5
    assert replica_ratio_weight(1, 2) == replica_ratio_weight(1, 2, 0)
