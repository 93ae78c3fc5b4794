"""What a pass does with its router (``adapters.traffic.route``): the weight read, a routing
object that is missing or not accepted, and the weight written, for a router that carries
the weight itself and for one that carries it by the revisions' replica counts."""

from __future__ import annotations

import pytest

from rollwise.adapters.errors import RouteMisconfigured, RouteNotFound
from rollwise.adapters.traffic.base import NopRouter
from rollwise.adapters.traffic.route import RouteReading, read_route, write_weight


class _Router(NopRouter):
    """A ``NopRouter`` whose reads can fail, whose ``verify`` can say "not accepted", and
    which counts its resets."""

    def __init__(
        self,
        weight: int = 0,
        *,
        scales: bool = False,
        fails: Exception | None = None,
        accepted: bool = True,
    ) -> None:
        super().__init__(weight)
        self.scales_revisions = scales
        self.fails = fails
        self.accepted = accepted
        self.resets = 0
        self.verified: list[int] = []

    def get_weight(self) -> int | None:
        if self.fails is not None:
            raise self.fails
        return super().get_weight()

    def verify(self, weight: int) -> bool:
        self.verified.append(weight)
        return self.accepted and super().verify(weight)

    def reset(self) -> None:
        self.resets += 1
        super().reset()


@pytest.mark.parametrize(
    ("router", "expected"),
    [
        pytest.param(_Router(25), RouteReading(weight=25), id="accepted"),
        pytest.param(
            _Router(25, accepted=False), RouteReading(weight=25, rejected=True), id="not-accepted"
        ),
        pytest.param(
            _Router(fails=RouteNotFound("HTTPRoute shop/web not found")),
            RouteReading(weight=None, problem="HTTPRoute shop/web not found"),
            id="route-missing",
        ),
        pytest.param(
            _Router(fails=RouteMisconfigured("no rule to the stable Service")),
            RouteReading(weight=None, problem="no rule to the stable Service"),
            id="route-misconfigured",
        ),
        pytest.param(
            _Router(fails=RouteNotFound("stable Deployment shop/web-1 not found"), scales=True),
            RouteReading(weight=None),
            id="replica-ratio-before-its-deployment-exists",
        ),
        pytest.param(
            _Router(40, scales=True, accepted=False),
            RouteReading(weight=40),
            id="replica-ratio-has-nothing-to-accept",
        ),
    ],
)
def test_read_route(router: _Router, expected: RouteReading) -> None:
    assert read_route(router) == expected


def test_read_route_verifies_the_weight_it_read() -> None:
    router = _Router(5)
    read_route(router)
    assert router.verified == [5]


def test_write_weight_sets_a_canary_share_and_resets_to_stable() -> None:
    router = _Router(0)
    assert write_weight(router, 25)
    assert (router.weight, router.resets) == (25, 0)
    assert write_weight(router, 0)
    assert (router.weight, router.resets) == (0, 1)


def test_write_weight_leaves_a_replica_ratio_router_to_the_scale_actions() -> None:
    router = _Router(5, scales=True)
    assert not write_weight(router, 25)
    assert not write_weight(router, 0)
    assert (router.weight, router.writes, router.resets) == (5, 0, 0)
