"""The identity records on a ModelRelease's annotations (and the override records on a
Rollout's), read for display and for the read-back after ``approve``, ``revoke``, ``waive`` and
``override``.

The operator's admission webhook turns a request annotation (``rollwise.dev/approve``, ...)
into a record stamped with the user the API server authenticated and signs it. The plugin has
no key, so it cannot check a signature: it shows the records as they are, and the operator
counts only the signed ones. Pure functions over the annotations; a record that is not
readable JSON of the expected shape is left out (it never counts for the operator either).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Record annotations, written by the operator's admission webhook only.
APPROVALS = "rollwise.dev/approvals"
OVERRIDES = "rollwise.dev/overrides"
REVOCATION = "rollwise.dev/revocation"
WAIVERS = "rollwise.dev/waivers"


@dataclass(frozen=True)
class RecordedApproval:
    role: str
    user: str
    version: str
    at: str


@dataclass(frozen=True)
class RecordedWaiver:
    gate: str
    reason: str
    user: str
    at: str
    expires_at: str


@dataclass(frozen=True)
class RecordedOverride:
    id: str
    decision: str
    reason: str
    user: str
    at: str
    target: str
    confirmed_by: str
    confirmed_at: str


@dataclass(frozen=True)
class RecordedRevocation:
    id: str
    reason: str
    user: str
    at: str


def _json(annotations: Mapping[str, Any] | None, key: str) -> Any:
    raw = (annotations or {}).get(key)
    if not isinstance(raw, str):
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _text(entry: Mapping[str, Any], key: str) -> str:
    value = entry.get(key)
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""


def approvals(annotations: Mapping[str, Any] | None) -> list[RecordedApproval]:
    """The approvals recorded in ``rollwise.dev/approvals``, in their order."""
    found = _json(annotations, APPROVALS)
    out = []
    for entry in found if isinstance(found, list) else []:
        if isinstance(entry, dict) and _text(entry, "role") and _text(entry, "user"):
            out.append(
                RecordedApproval(
                    role=_text(entry, "role"),
                    user=_text(entry, "user"),
                    version=_text(entry, "version"),
                    at=_text(entry, "at"),
                )
            )
    return out


def waivers(annotations: Mapping[str, Any] | None) -> list[RecordedWaiver]:
    """The waivers recorded in ``rollwise.dev/waivers``, in their order."""
    found = _json(annotations, WAIVERS)
    out = []
    for entry in found if isinstance(found, list) else []:
        if isinstance(entry, dict) and _text(entry, "gate") and _text(entry, "user"):
            out.append(
                RecordedWaiver(
                    gate=_text(entry, "gate"),
                    reason=_text(entry, "reason"),
                    user=_text(entry, "user"),
                    at=_text(entry, "at"),
                    expires_at=_text(entry, "expiresAt"),
                )
            )
    return out


def revocation(annotations: Mapping[str, Any] | None) -> RecordedRevocation | None:
    """The revocation recorded in ``rollwise.dev/revocation``, if any."""
    found = _json(annotations, REVOCATION)
    if not isinstance(found, dict) or not _text(found, "user"):
        return None
    return RecordedRevocation(
        id=_text(found, "id"),
        reason=_text(found, "reason"),
        user=_text(found, "user"),
        at=_text(found, "at"),
    )


def new_approval(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, role: str, version: str
) -> RecordedApproval | None:
    """The approval of ``role`` for ``version`` recorded between ``before`` and ``after``
    (approval records carry no request id; the webhook refuses a role approved twice, so a new
    record of this role and version is the request's)."""
    old = set(approvals(before))
    for record in approvals(after):
        if record.role == role and record.version == version and record not in old:
            return record
    return None


def approval_for(
    annotations: Mapping[str, Any] | None, role: str, version: str
) -> RecordedApproval | None:
    """The recorded approval of ``role`` for ``version``, if any (the webhook keeps one per
    role and version; a retried approval by the same person adds none)."""
    found = [r for r in approvals(annotations) if r.role == role and r.version == version]
    return found[-1] if found else None


def new_waiver(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, gate: str, reason: str
) -> RecordedWaiver | None:
    """The waiver of ``gate`` for ``reason`` recorded between ``before`` and ``after``."""
    old = set(waivers(before))
    for record in waivers(after):
        if record.gate == gate and record.reason == reason and record not in old:
            return record
    return None


def revocation_of(after: Mapping[str, Any] | None, request: str) -> RecordedRevocation | None:
    """The revocation recorded for the revoke request ``request``, if the webhook made one."""
    record = revocation(after)
    return record if record is not None and record.id == request else None


def overrides(annotations: Mapping[str, Any] | None) -> list[RecordedOverride]:
    """The override records (Rollout or ModelRelease), oldest first: the entries of the
    signed list (``{"version": 2, "seq", "entries", "sig"}``) in the order of their ``n``,
    or of a list of the first format (a JSON array) in its order."""
    found = _json(annotations, OVERRIDES)
    if isinstance(found, dict):
        listed = found.get("entries")
        found = sorted(
            (e for e in listed if isinstance(e, dict)) if isinstance(listed, list) else [],
            key=lambda e: e.get("n") if isinstance(e.get("n"), int) else 0,
        )
    out: list[RecordedOverride] = []
    for entry in found if isinstance(found, list) else []:
        if not isinstance(entry, dict):
            continue
        record = RecordedOverride(
            id=_text(entry, "id"),
            decision=_text(entry, "decision"),
            reason=_text(entry, "reason"),
            user=_text(entry, "user"),
            at=_text(entry, "at"),
            target=_text(entry, "target"),
            confirmed_by=_text(entry, "confirmedBy"),
            confirmed_at=_text(entry, "confirmedAt"),
        )
        if record.id and record.user:
            out.append(record)
    return out


def override_of(annotations: Mapping[str, Any] | None, override: str) -> RecordedOverride | None:
    """The newest override record with the id ``override``."""
    found = [r for r in overrides(annotations) if r.id == override]
    return found[-1] if found else None


__all__ = [
    "APPROVALS",
    "OVERRIDES",
    "REVOCATION",
    "WAIVERS",
    "RecordedApproval",
    "RecordedOverride",
    "RecordedRevocation",
    "RecordedWaiver",
    "approval_for",
    "approvals",
    "new_approval",
    "new_waiver",
    "override_of",
    "overrides",
    "revocation",
    "revocation_of",
    "waivers",
]
