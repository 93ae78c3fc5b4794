"""How far a piece of evidence, or a decision built on it, can be trusted: low, medium, high.

Only the scale and its arithmetic live here; each kind of evidence rates itself in the module
that knows it (:mod:`rollwise.core.compare`, :mod:`rollwise.core.burnrate`, the threshold
rule in :mod:`rollwise.core.decision`), and the decision combines the ratings. Confidence is
always derived from the evidence (samples, p-values, windows, time observed), never set by
hand.

The one rule that belongs to no single kind is the cap by observation time
(:func:`observation_cap`): a canary observed for minutes has not met the traffic patterns
an hour brings, however clean its numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from enum import StrEnum


class Confidence(StrEnum):
    """Low, medium or high, ordered: ``Confidence.LOW < Confidence.HIGH`` by :attr:`rank`."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Confidence.LOW: 0, Confidence.MEDIUM: 1, Confidence.HIGH: 2}


def weakest(ratings: Iterable[Confidence], default: Confidence = Confidence.LOW) -> Confidence:
    """The lowest rating (``default`` when there is none): what a conclusion resting on
    *all* of them is worth."""
    return min(ratings, key=lambda c: c.rank, default=default)


def strongest(ratings: Iterable[Confidence], default: Confidence = Confidence.LOW) -> Confidence:
    """The highest rating (``default`` when there is none): what a conclusion that *any one*
    of them suffices for is worth."""
    return max(ratings, key=lambda c: c.rank, default=default)


def capped(rating: Confidence, cap: Confidence) -> Confidence:
    """``rating``, but no higher than ``cap``."""
    return rating if rating.rank <= cap.rank else cap


#: Below this much observed canary time a decision is at most LOW: the shortest window of
#: the SRE workbook's fast-burn alert (5m), a few scrapes' worth of traffic.
LOW_OBSERVATION = timedelta(minutes=5)

#: Below this much observed canary time a decision is at most MEDIUM: the workbook's fast-burn
#: long window (1h), the least time over which it trusts an error rate to page on.
MEDIUM_OBSERVATION = timedelta(hours=1)


def observation_cap(observed: timedelta) -> Confidence:
    """The highest confidence ``observed`` canary time supports: LOW under
    :data:`LOW_OBSERVATION`, MEDIUM under :data:`MEDIUM_OBSERVATION`, HIGH from then on."""
    if observed < LOW_OBSERVATION:
        return Confidence.LOW
    if observed < MEDIUM_OBSERVATION:
        return Confidence.MEDIUM
    return Confidence.HIGH


__all__ = [
    "LOW_OBSERVATION",
    "MEDIUM_OBSERVATION",
    "Confidence",
    "capped",
    "observation_cap",
    "strongest",
    "weakest",
]
