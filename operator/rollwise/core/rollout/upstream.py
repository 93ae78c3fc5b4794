"""Upstream promotion: a new revision's canary starts only once every Rollout of
``spec.promotion.after`` has run the same pod template Healthy for its soak time.

"The same pod template" is the revision id (:func:`rollwise.core.observations.revision_of`):
a hash of the whole template, images (with their digests) included, and independent of the
Rollout's name and namespace, so a staging and a production Rollout of one template have one
revision id. An upstream counts once that revision is its stable revision, no canary runs
there, its phase is Healthy, and ``status.healthySince`` (when its stable revision last became
Healthy, recorded in its status, so restart-safe) is at least the soak time ago.

Pure: no clock (``now`` is an argument), no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from rollwise.core.durations import add_seconds, parse_seconds
from rollwise.core.observations import UpstreamRead
from rollwise.core.phases import Phase
from rollwise.core.spec import UpstreamRollout
from rollwise.core.status_model import format_time


@dataclass(frozen=True)
class UpstreamStanding:
    """Where one upstream stands for ``revision``: ``ready`` once soaked; otherwise ``why``
    says what it waits for, and ``until`` when the soak ends (None: not soaking yet)."""

    upstream: UpstreamRollout
    ready: bool
    why: str
    until: datetime | None = None

    @property
    def name(self) -> str:
        return f"{self.upstream.namespace}/{self.upstream.rollout}"


def standing(
    upstream: UpstreamRollout, read: UpstreamRead | None, revision: str, now: datetime
) -> UpstreamStanding:
    """Whether ``upstream`` has run ``revision`` Healthy for its soak time by ``now``."""
    soak = upstream.soak
    if read is None:
        return UpstreamStanding(upstream, False, "not read yet")
    if not read.found:
        return UpstreamStanding(upstream, False, "Rollout not found")
    if read.canary_revision == revision:
        return UpstreamStanding(upstream, False, f"revision {revision} is still a canary there")
    if read.stable_revision != revision:
        stable = read.stable_revision or "none"
        return UpstreamStanding(
            upstream,
            False,
            f"has not run revision {revision} (its stable revision is {stable}): not yet the "
            "same template",
        )
    if read.phase != Phase.HEALTHY.value or read.healthy_since is None:
        phase = read.phase or "unknown"
        return UpstreamStanding(
            upstream, False, f"runs revision {revision} but is not Healthy (phase {phase})"
        )
    until = add_seconds(read.healthy_since, parse_seconds(soak))
    if now < until:
        return UpstreamStanding(
            upstream,
            False,
            f"Healthy since {format_time(read.healthy_since)}, soaking {soak} until "
            f"{format_time(until)}",
            until,
        )
    return UpstreamStanding(
        upstream, True, f"Healthy since {format_time(read.healthy_since)} (soak {soak})", until
    )


def standings(
    after: Sequence[UpstreamRollout],
    reads: Mapping[tuple[str, str], UpstreamRead],
    revision: str,
    now: datetime,
) -> list[UpstreamStanding]:
    """Every upstream's standing for ``revision``, in the spec's order."""
    return [standing(u, reads.get((u.namespace, u.rollout)), revision, now) for u in after]


def describe(found: Sequence[UpstreamStanding], *, ready: bool) -> str:
    """The upstreams that are (``ready``) or are not ready, each named with its state."""
    return "; ".join(f"{s.name} {s.why}" for s in found if s.ready is ready)


__all__ = ["UpstreamStanding", "describe", "standing", "standings"]
