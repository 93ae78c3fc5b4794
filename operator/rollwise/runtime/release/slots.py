"""The slot of a (model, alias) pair and what other releases of the namespace tell a pass.

Releases of one (model, alias) in a namespace run one at a time: the one that holds the slot
(:func:`slot_holder`) is a release in Production whose post-promotion watch confirmed a
regression with action hold (until it clears), else the earliest-created one in Staging or
Approved, else the earliest-created Candidate that is not refused or invalid.
:func:`approved_before` finds the same content Approved before; :func:`revoked_elsewhere` a
revocation of this version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from rollwise.core.modelrelease.spec import (
    changed_fields,
    parse_release_spec,
    release_content,
)
from rollwise.core.modelrelease.status import ReleasePhase, Stage
from rollwise.core.postpromotion import PostPromotionStatus, holding
from rollwise.core.spec_release import ModelReleaseSpec


def _stage_of(body: Mapping[str, Any]) -> str | None:
    status = body.get("status")
    stage = status.get("stage") if isinstance(status, Mapping) else None
    return stage if isinstance(stage, str) else None


def _phase_of(body: Mapping[str, Any]) -> str | None:
    status = body.get("status")
    phase = status.get("phase") if isinstance(status, Mapping) else None
    return phase if isinstance(phase, str) else None


def _slot_of(body: Mapping[str, Any]) -> tuple[str, str] | None:
    spec = body.get("spec")
    if not isinstance(spec, Mapping):
        return None
    alias = spec.get("alias")
    alias_name = alias.get("name") if isinstance(alias, Mapping) else None
    return str(spec.get("model") or ""), str(alias_name or "production")


def _creation_key(body: Mapping[str, Any]) -> tuple[str, str]:
    meta = body.get("metadata") or {}
    return str(meta.get("creationTimestamp") or ""), str(meta.get("name") or "")


_RUNNING = (Stage.STAGING.value, Stage.APPROVED.value)


def _regression_hold(body: Mapping[str, Any]) -> bool:
    """Whether a release in Production keeps the slot: its post-promotion watch confirmed a
    regression whose action is hold, not cleared yet."""
    if _stage_of(body) != Stage.PRODUCTION.value:
        return False
    status = body.get("status")
    watch = status.get("postPromotion") if isinstance(status, Mapping) else None
    if not isinstance(watch, Mapping):
        return False
    try:
        return holding(PostPromotionStatus.model_validate(watch))
    except ValidationError:
        return False


def slot_holder(releases: Sequence[Mapping[str, Any]], model: str, alias: str) -> str | None:
    """The release holding the (model, alias) slot among ``releases`` (see the module doc)."""
    same = [r for r in releases if _slot_of(r) == (model, alias)]
    held = sorted((r for r in same if _regression_hold(r)), key=_creation_key)
    if held:
        return _creation_key(held[0])[1]
    running = sorted((r for r in same if _stage_of(r) in _RUNNING), key=_creation_key)
    if running:
        return _creation_key(running[0])[1]
    waiting = sorted(
        (
            r
            for r in same
            if _stage_of(r) in (None, Stage.CANDIDATE.value)
            and _phase_of(r) != ReleasePhase.DEGRADED.value
        ),
        key=_creation_key,
    )
    return _creation_key(waiting[0])[1] if waiting else None


#: What may differ between a standard change and the release approved before it: the
#: version and where the same bytes (same digest) are read from, and the gates, which every
#: release passes anew. Everything else that decides what runs must be what was approved.
_PRE_APPROVAL_FREE = ("spec.version", "spec.artifact", "spec.gates", "spec.policyDigest")


def approved_before(
    releases: Sequence[Mapping[str, Any]], name: str, spec: ModelReleaseSpec
) -> bool:
    """Whether another release of the namespace was Approved with the same artifact digest
    and the same everything else that decides what runs (model, serving, alias)."""
    mine = release_content(spec)
    for other in releases:
        meta = other.get("metadata") or {}
        if meta.get("name") == name:
            continue
        artifact = (other.get("spec") or {}).get("artifact") or {}
        if artifact.get("digest") != spec.artifact.digest:
            continue
        history = (other.get("status") or {}).get("history") or []
        if not any(
            isinstance(h, Mapping) and h.get("stage") == Stage.APPROVED.value for h in history
        ):
            continue
        parsed = parse_release_spec(other.get("spec") or {})
        if isinstance(parsed, list):
            continue
        changed = changed_fields(release_content(parsed), mine)
        if all(f in _PRE_APPROVAL_FREE for f in changed):
            return True
    return False


def revoked_elsewhere(
    releases: Sequence[Mapping[str, Any]], name: str, model: str, version: str
) -> bool:
    for other in releases:
        if (other.get("metadata") or {}).get("name") == name:
            continue
        spec = other.get("spec") or {}
        if (spec.get("model"), spec.get("version")) == (model, version) and _stage_of(
            other
        ) == Stage.REVOKED.value:
            return True
    return False
