"""Overrides as the Rollout sees them (the records themselves: :mod:`rollwise.core.overrides`).

:func:`rollout_effect` turns the override in effect into what the Rollout core observes (a
hold, manual requests, a waiting message); :func:`admit_child_requests` is the webhook's
decision on the manual requests written to a ModelRelease's child Rollout.

A promote override of a new revision that a confirmed post-promotion regression holds
(``onRegression: hold``) lifts the hold once a second person confirmed it.

Pure: no clock, no environment, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rollwise.core.observations import Hold, ManualRequest, RequestKind
from rollwise.core.overrides import (
    CHILD_REQUESTS,
    HANDLED_KEY,
    MODELRELEASE,
    ROLLOUT,
    Override,
    OverrideDecision,
    signed_request,
    waiting_message,
)
from rollwise.core.postpromotion import holding
from rollwise.core.rollout.status import PauseReason, RolloutStatus
from rollwise.core.signing import Admission


@dataclass(frozen=True)
class RolloutOverride:
    """What the Rollout core observes of the override in effect: a ``hold``, the manual
    ``requests`` it stands for (ids are the override's id), or a ``waiting`` message (a
    promote that needs a confirmation it does not have yet)."""

    hold: Hold | None = None
    requests: tuple[ManualRequest, ...] = ()
    waiting: str = ""


def regression_held(status: RolloutStatus | None, template_hash: str) -> bool:
    """Whether the Rollout's current revision is a new one a confirmed post-promotion
    regression with action ``hold`` keeps waiting (no canary runs, the watched revision is
    not the current one)."""
    if status is None or status.canary_revision is not None:
        return False
    watch = status.post_promotion
    if watch is None or not holding(watch):
        return False
    return template_hash not in (status.stable_revision, watch.revision)


def needs_confirmation(status: RolloutStatus | None, template_hash: str) -> bool:
    """Whether promoting the Rollout's current revision would go past a failed (rolled back)
    or inconclusive analysis, or past a confirmed regression that holds it."""
    if status is None:
        return False
    if regression_held(status, template_hash):
        return True
    if status.rolled_back_revision is not None and status.rolled_back_revision == template_hash:
        return True
    return (
        status.canary_revision == template_hash
        and status.pause_reason is PauseReason.ANALYSIS_INCONCLUSIVE
    )


def awaits_upstream(status: RolloutStatus | None, template_hash: str) -> bool:
    """Whether the Rollout's current revision waits for its upstream Rollouts
    (``spec.promotion.after``): promoting it past them needs a second person, as past a
    failed analysis."""
    return (
        status is not None
        and status.awaiting_upstream == template_hash
        and status.canary_revision is None
    )


def rollout_effect(
    override: Override | None, *, name: str, template_hash: str, status: RolloutStatus | None
) -> RolloutOverride:
    """The effect of ``override`` (the one :func:`in_effect` for the current revision) on the
    Rollout ``name``, given its last ``status``.

    ``hold``: a hold until a newer override or a new revision. ``rollback``: an abort.
    ``promote``: promote-full at once, or retry then promote-full once confirmed when the
    revision was rolled back or its analysis is inconclusive, or promote-full once confirmed
    when it waits for its upstream Rollouts (unconfirmed: a waiting message, nothing else). A
    new revision held by a confirmed post-promotion regression (action ``hold``): once
    confirmed, a promote that lifts the hold, the revision then going through its canary as
    any other (unconfirmed: the waiting message). Requests of an override already applied
    (``status.handledRequests``) are not repeated.
    """
    if override is None or (override.target != template_hash and not override.unverified):
        return RolloutOverride()
    if override.decision is OverrideDecision.HOLD:
        return RolloutOverride(
            hold=Hold(id=override.id, user=override.user, reason=override.reason)
        )
    handled = status is not None and status.handled_requests.get(HANDLED_KEY) == override.id
    if handled:
        return RolloutOverride()
    if override.decision is OverrideDecision.ROLLBACK:
        return RolloutOverride(requests=(ManualRequest(RequestKind.ABORT, override.id),))
    upstream = awaits_upstream(status, template_hash)
    if not upstream and not needs_confirmation(status, template_hash):
        return RolloutOverride(requests=(ManualRequest(RequestKind.PROMOTE_FULL, override.id),))
    if not override.confirmed:
        return RolloutOverride(waiting=waiting_message(override, ROLLOUT, name))
    if regression_held(status, template_hash):
        lift = ManualRequest(
            RequestKind.PROMOTE,
            override.id,
            user=override.user,
            confirmed_by=override.confirmed_by or "",
        )
        return RolloutOverride(requests=(lift,))
    if upstream:
        # Past the upstream Rollouts: the canary starts and completes at once.
        return RolloutOverride(requests=(ManualRequest(RequestKind.PROMOTE_FULL, override.id),))
    return RolloutOverride(
        requests=(
            ManualRequest(RequestKind.RETRY, override.id),
            ManualRequest(RequestKind.PROMOTE_FULL, override.id),
        )
    )


def admit_child_requests(
    *,
    old_annotations: Mapping[str, str] | None,
    new_annotations: Mapping[str, str] | None,
    pause_reason: str | None,
    release: str,
    subject: str,
    key: bytes,
) -> Admission:
    """The webhook's decision on the manual requests of a write to the child Rollout of the
    ModelRelease ``release``: refuses a retry, promote-full or (outside a plain pause step,
    ``pause_reason`` being the stored status's) promote that this write sets and the operator
    did not sign. Abort is always allowed: stopping is safe."""
    old = dict(old_annotations or {})
    new = dict(new_annotations or {})
    for kind in CHILD_REQUESTS:
        value = new.get(kind.annotation)
        if not value or value == old.get(kind.annotation):
            continue
        if signed_request(kind, value, subject, key):
            continue
        if kind is RequestKind.PROMOTE and pause_reason == PauseReason.PAUSE_STEP.value:
            continue
        return Admission(
            allowed=False,
            message=(
                f"{kind.annotation} on the child Rollout of ModelRelease {release} is the "
                "release's to decide: a promote past its canary is a promote override of the "
                f"release, confirmed by a second person (kubectl rollwise override "
                f"{MODELRELEASE}/{release} --decision promote)"
            ),
        )
    return Admission(allowed=True)
