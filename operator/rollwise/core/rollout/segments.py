"""Header-routed segments of a canary: which header routes a Rollout wants in effect.

A ``setHeaderRoute`` step sends the requests that match its headers (or its cookie) to the
canary whatever the weight; the route stays from that step on until a later step of the same
name removes it (no ``match``) or the canary ends (completion, rollback, abort): then the
operator removes every route it added. A cookie match is a ``Cookie`` header regex
(:func:`rollwise.core.traffic.cookie_pattern`).

Pure: the routes follow from the steps and the current step index alone.
"""

from __future__ import annotations

from collections.abc import Sequence

from rollwise.core.spec import HeaderRouteStep, Step
from rollwise.core.traffic import HeaderMatch, HeaderRoute, MatchKind, cookie_pattern


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


__all__ = ["header_routes", "route_of", "uses_header_routes"]
