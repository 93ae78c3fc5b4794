"""Header-routed segments of a canary: which header routes a Rollout wants in effect.

A ``setHeaderRoute`` step sends the requests that match its headers (or its cookie) to the
canary whatever the weight; the route stays from that step on until a later step of the same
name removes it (no ``match``) or the canary ends (completion, rollback, abort): then the
operator removes every route it added. A cookie match is a ``Cookie`` header regex
(:func:`rollwise.core.traffic.cookie_pattern`).

A ``setMirrorRoute`` step copies a percentage of the requests the router sends on (all of
them stable's at weight 0) to the canary, whose responses are discarded: shadow traffic. It
stays, like a header route, until a later step of the same name removes it (``percentage: 0``)
or the canary ends. One mirror at a time: a VirtualService route has a single ``mirror``.

Pure: the routes follow from the steps and the current step index alone.
"""

from __future__ import annotations

from collections.abc import Sequence

from rollwise.core.spec import HeaderRouteStep, MirrorRouteStep, Step
from rollwise.core.traffic import HeaderMatch, HeaderRoute, MatchKind, MirrorRoute, cookie_pattern


def route_of(step: HeaderRouteStep) -> HeaderRoute | None:
    """The route a ``setHeaderRoute`` step sets; None for a step that removes its route."""
    if not step.match:
        return None
    matches: list[HeaderMatch] = []
    for match in step.match:
        if match.cookie is not None:
            pattern = cookie_pattern(match.cookie.name, match.cookie.value)
            matches.append(HeaderMatch("Cookie", MatchKind.REGEX, pattern))
            continue
        value = match.header_value
        if match.header_name is None or value is None:
            continue  # refused by validation; never routed
        if value.exact is not None:
            matches.append(HeaderMatch(match.header_name, MatchKind.EXACT, value.exact))
        elif value.prefix is not None:
            matches.append(HeaderMatch(match.header_name, MatchKind.PREFIX, value.prefix))
        elif value.regex is not None:
            matches.append(HeaderMatch(match.header_name, MatchKind.REGEX, value.regex))
    return HeaderRoute(step.name, tuple(matches))


def header_routes(steps: Sequence[Step], upto: int) -> tuple[HeaderRoute, ...]:
    """The routes in effect once the steps before ``upto`` (exclusive) have run, in the order
    their names first appeared; a later step of the same name replaces or removes a route."""
    routes: dict[str, HeaderRoute | None] = {}
    for step in steps[: max(upto, 0)]:
        if step.set_header_route is not None:
            routes[step.set_header_route.name] = route_of(step.set_header_route)
    return tuple(route for route in routes.values() if route is not None)


def uses_header_routes(steps: Sequence[Step]) -> bool:
    return any(step.set_header_route is not None for step in steps)


def mirror_of(step: MirrorRouteStep) -> MirrorRoute | None:
    """The mirror a ``setMirrorRoute`` step sets; None for a step that removes it."""
    if step.percentage <= 0:
        return None
    return MirrorRoute(step.name, step.percentage)


def mirror_routes(steps: Sequence[Step], upto: int) -> tuple[MirrorRoute, ...]:
    """The mirrors in effect once the steps before ``upto`` (exclusive) have run, in the order
    their names first appeared; a later step of the same name replaces or removes one."""
    routes: dict[str, MirrorRoute | None] = {}
    for step in steps[: max(upto, 0)]:
        if step.set_mirror_route is not None:
            routes[step.set_mirror_route.name] = mirror_of(step.set_mirror_route)
    return tuple(route for route in routes.values() if route is not None)


def most_mirrors(steps: Sequence[Step]) -> int:
    """The largest number of mirrors the steps keep in effect at once."""
    return max((len(mirror_routes(steps, upto)) for upto in range(len(steps) + 1)), default=0)


def uses_mirror_routes(steps: Sequence[Step]) -> bool:
    return any(step.set_mirror_route is not None for step in steps)


__all__ = [
    "header_routes",
    "mirror_of",
    "mirror_routes",
    "most_mirrors",
    "route_of",
    "uses_header_routes",
    "uses_mirror_routes",
]
