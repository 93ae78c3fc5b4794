"""Header routes on a routing object: how the operator marks the ones it added, renders them
for a router and tells which are in effect.

The operator keeps the routes it added in the routing object's annotation
``rollwise.dev/header-routes`` (a JSON list of :meth:`HeaderRoute.to_wire`), and renders each
as the router's own rule (an HTTPRoute rule, a VirtualService http route) sending the matching
requests to the canary Service. A route is *in effect* when the annotation names it and its
rendered rule is present as written: a rule edited or removed behind the operator's back is
not, so the core waits and the next pass writes it again. Rules people wrote are never touched:
only rules equal to a rendered annotated route are removed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from rollwise.core.traffic import HeaderRoute

#: The routing object's annotation listing the header routes the operator added.
ANNOTATION = "rollwise.dev/header-routes"

Render = Callable[[HeaderRoute], dict[str, Any]]


def recorded(obj: dict[str, Any]) -> list[HeaderRoute]:
    """The routes the annotation records (none when absent or unreadable)."""
    raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION)
    if not raw:
        return []
    try:
        items = json.loads(raw)
        return [HeaderRoute.from_wire(item) for item in items]
    except (ValueError, TypeError, KeyError, AttributeError):
        return []


def in_effect(
    obj: dict[str, Any], entries: list[dict[str, Any]], render: Render
) -> tuple[HeaderRoute, ...]:
    """The recorded routes whose rendered rule is among ``entries``, in recorded order."""
    return tuple(route for route in recorded(obj) if render(route) in entries)


def replaced(
    obj: dict[str, Any],
    entries: list[dict[str, Any]],
    routes: Sequence[HeaderRoute],
    render: Render,
    *,
    first: bool,
) -> tuple[list[dict[str, Any]], str | None]:
    """``entries`` without the rules of the recorded routes, with ``routes`` rendered before
    (``first``: a router whose first matching entry wins) or after the others; and the new
    annotation value (None: remove it)."""
    old = [render(route) for route in recorded(obj)]
    kept = [entry for entry in entries if entry not in old]
    new = [render(route) for route in routes]
    out = [*new, *kept] if first else [*kept, *new]
    value = json.dumps([route.to_wire() for route in routes]) if routes else None
    return out, value


__all__ = ["ANNOTATION", "Render", "in_effect", "recorded", "replaced"]
