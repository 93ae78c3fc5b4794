from __future__ import annotations

import pytest

from rollwise.core.traffic import Split, expected_weight, replica_ratio_weight, split


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
