"""The override in effect as the ModelRelease core observes it (:class:`ReleaseOverride`,
made by :func:`release_override` from the kernel's :class:`rollwise.core.overrides.Override`).
The Rollout's counterpart is :mod:`rollwise.core.rollout.overrides`."""

from __future__ import annotations

from dataclasses import dataclass

from rollwise.core.overrides import MODELRELEASE, Override, confirm_hint


@dataclass(frozen=True)
class ReleaseOverride:
    """The override in effect for this version, as the webhook recorded it
    (:func:`release_override`): ``decision`` is ``promote``, ``hold``
    or ``rollback``; ``confirmed_by`` the second person who confirmed a promote (never
    ``user``); ``confirm_hint`` the command that confirms it."""

    id: str
    decision: str
    user: str
    reason: str
    confirmed_by: str | None = None
    confirm_hint: str = ""

    @property
    def confirmed(self) -> bool:
        return self.confirmed_by is not None and self.confirmed_by != self.user


def release_override(
    override: Override | None, *, name: str, version: str
) -> ReleaseOverride | None:
    """What the ModelRelease core observes of ``override`` (the one :func:`in_effect` for
    ``version``) on the release ``name``; None when it is for another version."""
    if override is None or (override.target != version and not override.unverified):
        return None
    return ReleaseOverride(
        id=override.id,
        decision=override.decision.value,
        user=override.user,
        reason=override.reason,
        confirmed_by=override.confirmed_by,
        confirm_hint=confirm_hint(MODELRELEASE, name, override.id),
    )


__all__ = ["ReleaseOverride", "release_override"]
