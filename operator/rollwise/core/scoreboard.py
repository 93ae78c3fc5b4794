"""The KPI scoreboard's classification: where a KPI's value stands against its target.

A KPI has a value, a target and a direction. The target is a limit: for a KPI where lower
is better (an error ratio, a latency) the value must stay at or below it; where higher is
better (a success ratio, a conversion rate) at or above it. :func:`kpi_status` says

* ``off_track``: the value is past the target (on the bad side);
* ``attention``: the value still meets the target but is within the attention band of it,
  ``band`` times ``|target|`` (default 10%): the margin is nearly used up;
* ``on_track``: the value meets the target with more margin than the band.

A zero target has a zero band: any move past it is off track, nothing is ever attention.
:func:`kpi_delta` gives the absolute and relative distance of the value from a reference
(the target, or the previous revision's value), signed so that a positive delta is always
the bad way; the relative delta is None when the reference is zero.

Both the plugin's scoreboard (canary KPIs, read from the analysis in status) and the
post-promotion watch (watched KPIs) classify with these functions. Pure: numbers in,
a status out; non-finite numbers have no status (None), never a guessed one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from rollwise.core.spec import Compare, Direction, Metric

#: The attention band when none is given: 10% of the target.
DEFAULT_BAND = 0.10


class KpiDirection(StrEnum):
    """Which way a KPI is good."""

    #: The value must stay at or below the target (error ratio, latency).
    LOWER_IS_BETTER = "lower"
    #: The value must stay at or above the target (success ratio, conversion).
    HIGHER_IS_BETTER = "higher"


class KpiStatus(StrEnum):
    """Where a KPI stands against its target, from best to worst."""

    ON_TRACK = "on_track"
    ATTENTION = "attention"
    OFF_TRACK = "off_track"


#: Each status's rank, worst last (:func:`worst_status`).
_RANK = {KpiStatus.ON_TRACK: 0, KpiStatus.ATTENTION: 1, KpiStatus.OFF_TRACK: 2}


@dataclass(frozen=True)
class KpiDelta:
    """How far a value is from a reference, positive the bad way: ``absolute`` in the
    KPI's unit, ``relative`` as a fraction of ``|reference|`` (None for a zero reference)."""

    absolute: float
    relative: float | None


def _finite(*numbers: float) -> bool:
    return all(math.isfinite(n) for n in numbers)


def kpi_delta(value: float, reference: float, direction: KpiDirection) -> KpiDelta | None:
    """The signed distance of ``value`` from ``reference``: positive when ``value`` is worse
    than the reference in ``direction``. None when either number is not finite."""
    if not _finite(value, reference):
        return None
    absolute = value - reference
    if direction is KpiDirection.HIGHER_IS_BETTER:
        absolute = -absolute
    relative = absolute / abs(reference) if reference != 0 else None
    return KpiDelta(absolute=absolute, relative=relative)


def kpi_status(
    value: float, target: float, direction: KpiDirection, band: float = DEFAULT_BAND
) -> KpiStatus | None:
    """``value``'s status against ``target`` (module docstring); ``band`` is the attention
    band as a fraction of ``|target|`` (0 turns attention off). None when a number is not
    finite. A negative band is a caller's mistake: ``ValueError``."""
    if band < 0 or not math.isfinite(band):
        raise ValueError(f"the attention band must be a finite fraction >= 0, got {band!r}")
    delta = kpi_delta(value, target, direction)
    if delta is None:
        return None
    if delta.absolute > 0:
        return KpiStatus.OFF_TRACK
    if delta.absolute > -band * abs(target):
        return KpiStatus.ATTENTION
    return KpiStatus.ON_TRACK


def worst_status(statuses: Iterable[KpiStatus | None]) -> KpiStatus | None:
    """The worst of ``statuses`` (None ones skipped); None when there is none."""
    known = [s for s in statuses if s is not None]
    return max(known, key=_RANK.__getitem__) if known else None


@dataclass(frozen=True)
class KpiTarget:
    """One limit a KPI must meet: a value and the way the KPI is good."""

    value: float
    direction: KpiDirection


@dataclass(frozen=True)
class KpiScore:
    """A KPI's value classified against its targets: the status, the target that binds
    (the one the value is worst against) and the value's delta from it."""

    status: KpiStatus
    target: KpiTarget
    delta: KpiDelta


def score(
    value: float, targets: Sequence[KpiTarget], band: float = DEFAULT_BAND
) -> KpiScore | None:
    """``value`` against every target: the worst status, with its target and delta (ties:
    the larger delta). None without a target or for a non-finite number."""
    scored: list[KpiScore] = []
    for target in targets:
        status = kpi_status(value, target.value, target.direction, band)
        delta = kpi_delta(value, target.value, target.direction)
        if status is None or delta is None:
            return None
        scored.append(KpiScore(status, target, delta))
    if not scored:
        return None
    return max(scored, key=lambda s: (_RANK[s.status], s.delta.absolute))


#: ``result OP NUMBER``, the one condition shape whose limit reads off without evaluating.
_SIMPLE = re.compile(r"^\s*result\s*(<=|>=|<|>)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


def _condition_target(expression: str | None, *, success: bool) -> KpiTarget | None:
    match = _SIMPLE.match(expression or "")
    if match is None:
        return None
    op, number = match.groups()
    below = op in ("<", "<=")
    # A success condition ``result < X`` and a failure condition ``result > X`` both say
    # that lower is better, with X the limit.
    lower = below if success else not below
    direction = KpiDirection.LOWER_IS_BETTER if lower else KpiDirection.HIGHER_IS_BETTER
    return KpiTarget(float(number), direction)


def threshold_targets(metric: Metric) -> tuple[KpiTarget, ...]:
    """The targets a threshold metric's pass rule states: its ``thresholdRange`` bounds and
    a ``successCondition`` / ``failureCondition`` of the form ``result OP NUMBER``. Other
    conditions (CEL over several values, arguments) state no target the scoreboard can read:
    none."""
    found: list[KpiTarget] = []
    rng = metric.threshold_range
    if rng is not None and rng.min is not None:
        found.append(KpiTarget(rng.min, KpiDirection.HIGHER_IS_BETTER))
    if rng is not None and rng.max is not None:
        found.append(KpiTarget(rng.max, KpiDirection.LOWER_IS_BETTER))
    for expression, success in (
        (metric.success_condition, True),
        (metric.failure_condition, False),
    ):
        target = _condition_target(expression, success=success)
        if target is not None:
            found.append(target)
        elif expression:
            return ()  # part of the rule cannot be read: no target rather than half of one
    return tuple(found)


def compare_targets(control_median: float, compare: Compare) -> tuple[KpiTarget, ...]:
    """The targets of a compare metric: the control's median moved by the tolerance in the
    bad direction (the breach limit of :mod:`rollwise.core.compare`)."""
    if not math.isfinite(control_median):
        return ()
    margin = compare.tolerance * abs(control_median)
    up = KpiTarget(control_median + margin, KpiDirection.LOWER_IS_BETTER)
    down = KpiTarget(control_median - margin, KpiDirection.HIGHER_IS_BETTER)
    if compare.direction is Direction.INCREASE:
        return (up,)
    if compare.direction is Direction.DECREASE:
        return (down,)
    return (up, down)


__all__ = [
    "DEFAULT_BAND",
    "KpiDelta",
    "KpiDirection",
    "KpiScore",
    "KpiStatus",
    "KpiTarget",
    "compare_targets",
    "kpi_delta",
    "kpi_status",
    "score",
    "threshold_targets",
    "worst_status",
]
