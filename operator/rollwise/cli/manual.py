"""The patches the plugin writes: manual requests as annotations, and ``spec.paused``.

The operator reads a manual request from the annotation ``rollwise.dev/<kind>`` whose value is
the request id (:func:`rollwise.core.observations.requests_from_annotations`), and handles each
id once (it remembers the last id per kind in ``status.handledRequests``). So every request the
plugin writes carries a fresh id: the time it was made plus a random suffix, readable in
``kubectl get -o yaml`` and unique even for two requests in the same second. Pure functions;
the caller supplies the clock and the randomness.

An override (``rollwise.dev/override``: ``{"id", "decision", "reason"}``) and its
confirmation (``rollwise.dev/confirm-override``: ``{"id": "<override id>"}``) are JSON
requests on a Rollout or a ModelRelease, recorded the same way.

A ModelRelease request (approve, revoke, waive) is a JSON object in the annotation
``rollwise.dev/<kind>``, carrying its id and its arguments. The operator's admission webhook
turns it into a record stamped with the user the API server authenticated and removes the
request; without the webhook, an unsigned revoke is still honoured, approvals and waivers are
not.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any

from rollwise.cli.common import OVERRIDE_DECISIONS
from rollwise.core.observations import RequestKind
from rollwise.core.status_model import format_time


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


#: ModelRelease request annotations (written by users through the plugin).
APPROVE = "rollwise.dev/approve"
REVOKE = "rollwise.dev/revoke"
WAIVE = "rollwise.dev/waive"


def _annotation_patch(annotation: str, value: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"annotations": {annotation: json.dumps(value)}}}


def approve_patch(request: str, role: str, version: str) -> dict[str, Any]:
    """Approve ``version`` of a ModelRelease in ``role``."""
    return _annotation_patch(APPROVE, {"id": request, "role": role, "version": version})


def revoke_patch(request: str, reason: str) -> dict[str, Any]:
    """Revoke a ModelRelease, for ``reason``."""
    return _annotation_patch(REVOKE, {"id": request, "reason": reason})


def waive_patch(request: str, gate: str, reason: str, duration: str) -> dict[str, Any]:
    """Waive the failing ``gate`` of a ModelRelease for ``duration`` (``24h``), for ``reason``."""
    return _annotation_patch(
        WAIVE, {"id": request, "gate": gate, "reason": reason, "for": duration}
    )


#: Override requests, on a Rollout or a ModelRelease.
OVERRIDE = "rollwise.dev/override"
CONFIRM_OVERRIDE = "rollwise.dev/confirm-override"


def override_patch(request: str, decision: str, reason: str) -> dict[str, Any]:
    """Override the object's course: ``decision`` (promote, hold, rollback), for ``reason``."""
    return _annotation_patch(OVERRIDE, {"id": request, "decision": decision, "reason": reason})


def confirm_patch(override: str) -> dict[str, Any]:
    """Confirm the promote override ``override`` (a second person's confirmation)."""
    return _annotation_patch(CONFIRM_OVERRIDE, {"id": override})


__all__ = [
    "APPROVE",
    "CONFIRM_OVERRIDE",
    "OVERRIDE",
    "OVERRIDE_DECISIONS",
    "REVOKE",
    "WAIVE",
    "approve_patch",
    "confirm_patch",
    "override_patch",
    "paused_patch",
    "request_id",
    "request_patch",
    "revoke_patch",
    "waive_patch",
]
