"""The statistical judge of ``compare`` metrics: the canary's samples against a control's.

For a step's window the runtime range-queries one expression twice, for the canary and for
the control (a baseline of the stable revision started with the canary, or the stable
revision itself), and hands the two sample arrays to :func:`judge_metric`. No I/O here: the
module only judges numbers.

Definitions (``docs/analysis.md`` shows worked examples):

* **Usable samples**: the finite ones. NaN and infinities (a ratio over zero traffic) are
  dropped and counted.
* **Too few samples**: fewer than ``minSamples`` usable samples on either side is
  INCONCLUSIVE, never PASS.
* **Effect size**: the relative difference of medians,
  ``(median(canary) - median(control)) / |median(control)|``. Medians are what an SRE reads
  off a latency dashboard, are robust to the odd outlier scrape, and cost O(n log n) whatever
  the window (the Hodges-Lehmann shift would need every canary-control pair). With a zero
  control median the relative effect is undefined (``None``) unless the medians are equal.
* **Breach**: the median moved in the bad ``direction`` by more than ``tolerance`` times
  ``|median(control)|`` (``tolerance`` 0.1: the canary's median may be up to 10% worse). With
  a zero control median any move in the bad direction is a breach.
* **Test**: Mann-Whitney U of canary against control, one-sided in the bad direction
  (``increase``: is the canary stochastically greater; ``decrease``: smaller) or two-sided
  for ``either``. Exact p-values when there are no ties and neither side has more than
  :data:`EXACT_MAX_SAMPLES` samples; otherwise the normal approximation with the
  tie-corrected variance and a continuity correction. Prometheus samples are often quantized
  (histogram buckets, counters), so ties are the rule; the continuity correction makes the
  discrete statistic's p-value slightly larger, which errs against a rollback on borderline
  evidence. When every usable sample of both sides is the same value there is no difference
  to test: p is 1 and the effect 0 (no NaN ever leaves this module).
* **Verdict** (Kayenta's rule): FAIL when the test is significant (``p < significance``)
  *and* the medians breach the tolerance; PASS otherwise. A significant but tolerated
  difference passes (the tolerance says it does not matter); a breach that is not
  significant passes too, at low confidence (the samples cannot tell it from noise). On two
  identical distributions a FAIL therefore happens at most as often as ``significance``
  (less with a tolerance).
* **Default significance 0.01**, as Kayenta's judge (a 98% two-sided interval, 1% a side): a
  canary is judged on several metrics at once, and at 0.05 ten metrics of an identical canary
  would show a false regression somewhere in 40% of the runs.

Confidence of a result (:attr:`CompareResult.confidence`): INCONCLUSIVE is LOW. FAIL is HIGH
when ``p < significance / 10`` and both sides have at least twice ``minSamples``, else
MEDIUM. PASS is LOW when the medians breach the tolerance (an underpowered pass), HIGH when
both sides have at least twice ``minSamples``, else MEDIUM.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from pydantic import Field

from rollwise.core.analysis import format_value
from rollwise.core.confidence import Confidence
from rollwise.core.runs import Verdict
from rollwise.core.spec import Direction, Model

#: Largest sample count per side for which p-values are computed exactly (when there are no
#: ties): scipy's exact distribution takes a few milliseconds at 50 x 50 but grows quickly,
#: and the normal approximation is accurate long before that size.
EXACT_MAX_SAMPLES = 50


class CompareRule(Model):
    """How a ``compare`` metric is judged (the ``compare`` block of a metric's spec)."""

    direction: Direction = Direction.INCREASE
    #: Relative move of the median tolerated in the bad direction (0.1: 10% worse is fine).
    tolerance: float = Field(default=0.1, ge=0, allow_inf_nan=False)
    #: The test's level: a FAIL needs ``p < significance``.
    significance: float = Field(default=0.01, gt=0, le=0.5)
    #: Usable samples needed on each side; fewer is INCONCLUSIVE. At least 5: with 4 a side even
    #: a complete separation gives p = 1/70 at best, never below the default 0.01. Default 10:
    #: a decision within three minutes at a 15 s step; measured by ``hack/bench/judge.py``
    #: (docs/benchmarks.md), 10 caught every bad scenario as 20 did, with no false rollback.
    min_samples: int = Field(default=10, ge=5)
    #: A failing critical metric fails the whole analysis, whatever the score.
    critical: bool = False
    #: The metric's weight in the score.
    weight: float = Field(default=1.0, gt=0, allow_inf_nan=False)


@dataclass(frozen=True)
class CompareResult:
    """The judgement of one compare metric, with the numbers that explain it.

    ``p_value``, the medians, ``shift`` and ``effect_size`` are None when the samples were
    too few to compute them; ``effect_size`` is also None when the control median is zero and
    the medians differ (or the ratio overflows). ``method`` is ``exact``, ``asymptotic``,
    ``identical`` (every sample equal, nothing to test) or empty (not tested).
    """

    metric: str
    rule: CompareRule
    verdict: Verdict
    message: str
    canary_samples: int
    control_samples: int
    canary_dropped: int = 0
    control_dropped: int = 0
    p_value: float | None = None
    canary_median: float | None = None
    control_median: float | None = None
    shift: float | None = None
    effect_size: float | None = None
    breach: bool = False
    method: str = ""

    @property
    def weight(self) -> float:
        return self.rule.weight

    @property
    def critical(self) -> bool:
        return self.rule.critical

    @property
    def dropped(self) -> int:
        """Non-finite samples dropped from both sides."""
        return self.canary_dropped + self.control_dropped

    @property
    def confidence(self) -> Confidence:
        """How far this result can be trusted (rules in the module docstring)."""
        if self.verdict is Verdict.INCONCLUSIVE:
            return Confidence.LOW
        plenty = min(self.canary_samples, self.control_samples) >= 2 * self.rule.min_samples
        if self.verdict is Verdict.FAIL:
            strong = self.p_value is not None and self.p_value < self.rule.significance / 10
            return Confidence.HIGH if strong and plenty else Confidence.MEDIUM
        if self.breach:
            return Confidence.LOW
        return Confidence.HIGH if plenty else Confidence.MEDIUM


def mannwhitneyu(*args: Any, **kwargs: Any) -> Any:
    """``scipy.stats.mannwhitneyu``, imported on first use: scipy takes most of a second to
    import, and what only reads a status (the kubectl plugin, validation) never tests."""
    from scipy.stats import mannwhitneyu as test  # noqa: PLC0415 - see above

    return test(*args, **kwargs)


_ALTERNATIVE = {
    Direction.INCREASE: "greater",
    Direction.DECREASE: "less",
    Direction.EITHER: "two-sided",
}


def _finite(samples: Sequence[float]) -> list[float]:
    return [float(x) for x in samples if math.isfinite(float(x))]


def _percent(value: float) -> str:
    return f"{value * 100:+.1f}%"


def judge_metric(
    canary: Sequence[float], control: Sequence[float], rule: CompareRule, *, metric: str
) -> CompareResult:
    """The verdict of ``metric`` from its canary and control samples under ``rule``."""
    usable_canary, usable_control = _finite(canary), _finite(control)
    n_canary, n_control = len(usable_canary), len(usable_control)
    result = CompareResult(
        metric=metric,
        rule=rule,
        verdict=Verdict.INCONCLUSIVE,
        message="",
        canary_samples=n_canary,
        control_samples=n_control,
        canary_dropped=len(canary) - n_canary,
        control_dropped=len(control) - n_control,
    )
    dropped_text = f", {result.dropped} non-finite dropped" if result.dropped else ""
    head = f"metric {metric}"
    sizes = f"{n_canary} canary / {n_control} control samples{dropped_text}"

    if min(n_canary, n_control) < rule.min_samples:
        return replace(
            result,
            message=f"{head}: {sizes}, fewer than minSamples {rule.min_samples} on a side "
            "(inconclusive)",
        )

    canary_median = statistics.median(usable_canary)
    control_median = statistics.median(usable_control)
    shift = canary_median - control_median
    if not math.isfinite(shift):
        # Samples near the float limits overflow the medians' arithmetic; nothing sane
        # produces them, and no verdict can rest on them.
        return replace(
            result,
            message=f"{head}: samples too large to compare ({sizes}) (inconclusive)",
        )
    scale = abs(control_median)
    effect: float | None = shift / scale if scale > 0 else (0.0 if shift == 0 else None)
    if effect is not None and not math.isfinite(effect):
        effect = None
    bad_shift = {
        Direction.INCREASE: shift,
        Direction.DECREASE: -shift,
        Direction.EITHER: abs(shift),
    }[rule.direction]
    result = replace(
        result,
        canary_median=canary_median,
        control_median=control_median,
        shift=shift,
        effect_size=effect,
        breach=bad_shift > rule.tolerance * scale,
    )

    pooled = usable_canary + usable_control
    if min(pooled) == max(pooled):
        # Nothing differs: the U statistic's variance is zero and scipy's answer would be NaN
        # in some versions. Identical evidence is a pass, stated as such.
        return replace(
            result,
            verdict=Verdict.PASS,
            message=f"{head}: canary and control are all {format_value(pooled[0])} ({sizes}): pass",
            p_value=1.0,
            method="identical",
        )

    ties = len(set(pooled)) < len(pooled)
    method = "exact" if not ties and max(n_canary, n_control) <= EXACT_MAX_SAMPLES else "asymptotic"
    test = mannwhitneyu(
        usable_canary,
        usable_control,
        alternative=_ALTERNATIVE[rule.direction],
        method=method,
        use_continuity=True,
    )
    p_value = float(test.pvalue)
    if not math.isfinite(p_value):
        return replace(
            result,
            message=f"{head}: the Mann-Whitney test is undefined for these samples ({sizes}) "
            "(inconclusive)",
            method=method,
        )
    p_value = min(max(p_value, 0.0), 1.0)

    sided = "two-sided" if rule.direction is Direction.EITHER else "one-sided"
    effect_text = (
        _percent(effect)
        if effect is not None
        else f"shift {format_value(shift)} over a zero control median"
    )
    significant = p_value < rule.significance
    verdict = Verdict.FAIL if significant and result.breach else Verdict.PASS
    if verdict is Verdict.FAIL:
        judgement = f"canary is worse ({rule.direction.value} is bad): fail"
    elif result.breach:
        judgement = "beyond tolerance but not significant: pass"
    elif significant:
        judgement = "significant but within tolerance: pass"
    else:
        judgement = "pass"
    message = (
        f"{head}: canary median {format_value(canary_median)} vs control "
        f"{format_value(control_median)} ({effect_text}, tolerance {rule.tolerance * 100:g}%), "
        f"p = {p_value:.3g} {'<' if significant else '>='} {rule.significance:g} {sided}, "
        f"{sizes}: {judgement}"
    )
    return replace(result, verdict=verdict, message=message, p_value=p_value, method=method)


__all__ = [
    "EXACT_MAX_SAMPLES",
    "CompareResult",
    "CompareRule",
    "Direction",
    "judge_metric",
]
