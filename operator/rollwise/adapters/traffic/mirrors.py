"""Mirrors on a routing object: how the operator marks the ones it added and tells which are
in effect.

A mirror is not a rule of its own: it is carried by the entries that hold the split (an
HTTPRoute rule's ``RequestMirror`` filter, a VirtualService http route's ``mirror`` and
``mirrorPercentage``), so it copies the requests whatever backend the weights choose. The
operator records the mirrors it added in the routing object's annotation
``rollwise.dev/mirror-routes`` (a JSON list of :meth:`MirrorRoute.to_wire`). A mirror is *in
effect* when the annotation names it and every entry holding the split carries it as rendered:
one edited or removed behind the operator's back is not, so the core waits and the next pass
writes it again. Mirrors people wrote are never removed: only a rendered, annotated mirror is.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from rollwise.core.traffic import MirrorRoute

#: The routing object's annotation listing the mirrors the operator added.
ANNOTATION = "rollwise.dev/mirror-routes"

RenderMirror = Callable[[MirrorRoute], dict[str, Any]]


def recorded(obj: dict[str, Any]) -> list[MirrorRoute]:
    """The mirrors the annotation records (none when absent or unreadable)."""
    raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION)
    if not raw:
        return []
    try:
        return [MirrorRoute.from_wire(item) for item in json.loads(raw)]
    except (ValueError, TypeError, KeyError, AttributeError):
        return []


def annotation_value(routes: Sequence[MirrorRoute]) -> str | None:
    """The annotation's value for ``routes`` (None: remove it)."""
    return json.dumps([route.to_wire() for route in routes]) if routes else None


__all__ = ["ANNOTATION", "RenderMirror", "annotation_value", "recorded"]
