"""The patches the plugin writes: manual requests as annotations, and ``spec.paused``.

The operator reads a manual request from the annotation ``rollwise.dev/<kind>`` whose value is
the request id (:func:`rollwise.core.observations.requests_from_annotations`), and handles each
id once (it remembers the last id per kind in ``status.handledRequests``). So every request the
plugin writes carries a fresh id: the time it was made plus a random suffix, readable in
``kubectl get -o yaml`` and unique even for two requests in the same second. Pure functions;
the caller supplies the clock and the randomness.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from rollwise.core.observations import RequestKind
from rollwise.core.status import format_time


def request_id(now: datetime, suffix: str | None = None) -> str:
    """A new request id: ``2026-11-22T01:40:05Z-3f9a1c`` (RFC 3339 UTC, second precision)."""
    stamp = format_time(now.replace(microsecond=0))
    return f"{stamp}-{suffix if suffix is not None else secrets.token_hex(3)}"


def request_patch(kind: RequestKind, request: str) -> dict[str, Any]:
    """The merge patch that files ``request`` of ``kind`` (only that annotation changes)."""
    return {"metadata": {"annotations": {kind.annotation: request}}}


def paused_patch(paused: bool) -> dict[str, Any]:
    """The merge patch that sets ``spec.paused``."""
    return {"spec": {"paused": paused}}


__all__ = ["paused_patch", "request_id", "request_patch"]
