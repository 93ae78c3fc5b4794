"""The Rollout's phase: what its ``status.phase`` says.

In the kernel because both kinds read it: a Rollout writes it, a ModelRelease reads it from
the child Rollout that serves its template.
"""

from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    """The one-word summary ``kubectl get rollouts`` shows.

    ``Progressing``: a revision is being rolled out (or the first one is becoming available).
    ``Paused``: waiting for a human or a timer (pause step, spec.paused, inconclusive analysis).
    ``Healthy``: one stable revision serves all traffic and is available.
    ``Degraded``: rolled back, aborted, invalid spec or progress deadline exceeded.
    ``Waiting``: a new revision waits for its upstream Rollouts (``spec.promotion.after``) to
    have run it Healthy for their soak time; the stable revision keeps serving all traffic.
    """

    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    HEALTHY = "Healthy"
    DEGRADED = "Degraded"
    WAITING = "Waiting"
