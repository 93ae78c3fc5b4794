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
* **Means when the medians are pinned**: when more than half of the samples of *each* side
  are one same value, both medians are that value whatever the other samples do: the median
  cannot see the difference the test may find. That is the rule, not an accident, for a
  ratio sampled over few events: an error ratio over 10 s windows of one request each is 0 or
  1, 80% zeros for a canary failing 20% of its requests, so both medians are 0 however bad
  the canary. The effect is then measured on the means (the *basis* is ``mean``), as
  Kayenta's mean ratio does: the mean of such samples is the share of failed requests, which
  is what the tolerance is about. The medians are still reported. Identical means keep the
  median basis (no difference either way), and so do medians that merely happen to be equal
  (quantized values with less than half of a side at the median: the median still moves
  with the distribution).
* **Breach**: the basis (medians, or means when the medians are pinned) moved in the bad
  ``direction`` by more than ``tolerance`` times its control value (``tolerance`` 0.1: the
  canary may be up to 10% worse). With a zero control value any move in the bad direction
  is a breach.
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
  *and* the basis breaches the tolerance; PASS otherwise, with one exception (next item). A
  significant but tolerated difference passes (the tolerance says it does not matter); a
  breach of the medians that is not significant passes too, at low confidence (the samples
  cannot tell it from noise). On two
  identical distributions a FAIL therefore happens at most as often as ``significance``
  (less with a tolerance).
* **Unconfirmed breach on the means**: a breach on the mean basis whose test leans the bad
  way without reaching the level (``significance <= p < 10 * significance``, at most 0.5:
  0.01 to 0.1 by default) is INCONCLUSIVE, not PASS. Samples tied at one value leave the
  rank test little power (20 one-request samples, four of them failed, against 20 zeros:
  p = 0.02), so "not significant" there is no evidence of health: the canary is held for
  more samples (the window grows with each measurement) rather than passed on a mean
  already beyond tolerance. A weaker lean (``p >= 10 * significance``) passes at low
  confidence: one odd sample moves a mean near zero by more than any relative tolerance,
  and holding on it would stop healthy canaries. A breach on the medians keeps the pass
  (the usual case, a noisy difference of continuous values). Measured by
  ``hack/bench/judge.py`` (``docs/benchmarks.md``).
* **Default significance 0.01**, as Kayenta's judge (a 98% two-sided interval, 1% a side): a
  canary is judged on several metrics at once, and at 0.05 ten metrics of an identical canary
  would show a false regression somewhere in 40% of the runs.

Confidence of a result (:attr:`CompareResult.confidence`): INCONCLUSIVE is LOW. FAIL is HIGH
when ``p < significance / 10`` and both sides have at least twice ``minSamples``, else
MEDIUM. PASS is LOW when the basis breaches the tolerance (an underpowered pass), HIGH when
both sides have at least twice ``minSamples``, else MEDIUM.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
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

#: What a result's effect size measures: the medians, or the means when the medians are pinned
#: (more than half of each side at one value).
BASIS_MEDIAN = "median"
BASIS_MEAN = "mean"
#: On the mean basis, a breach whose p-value is below this many times ``significance`` (at
#: most :data:`MAX_LEANING_P`) but not below ``significance`` holds: the ranks lean the bad way.
LEANING_FACTOR = 10
MAX_LEANING_P = 0.5


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

    ``p_value``, the medians, the means, ``shift`` and ``effect_size`` are None when the
    samples were too few to compute them. ``basis`` says what ``shift`` and ``effect_size``
    measure: ``median`` (the medians) or ``mean`` (the means, when the medians are pinned at
    ``pinned``, the value more than half of each side's samples hold);
    ``effect_size`` is also None when the control's value on that basis is zero and the
    canary's differs (or the ratio overflows). ``method`` is ``exact``, ``asymptotic``,
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
    canary_mean: float | None = None
    control_mean: float | None = None
    basis: str = BASIS_MEDIAN
    pinned: float | None = None
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
    def unconfirmed(self) -> bool:
        """A breach the test could not confirm and that therefore holds (inconclusive rather
        than pass): only on the mean basis, where tied samples leave the test little power."""
        return (
            self.verdict is Verdict.INCONCLUSIVE
            and self.p_value is not None
            and self.breach
            and self.basis == BASIS_MEAN
        )

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


def _mean(samples: Sequence[float]) -> float | None:
    """The mean, None when it overflows (samples near the float limits)."""
    try:
        mean = statistics.fmean(samples)
    except OverflowError:
        return None
    return mean if math.isfinite(mean) else None


def pinned_value(canary: Sequence[float], control: Sequence[float]) -> float | None:
    """The value more than half of the samples of each side hold (both medians are then that
    value, whatever the rest), or None."""
    if not canary or not control:
        return None
    (value, count), *_ = Counter(canary).most_common(1)
    if 2 * count <= len(canary) or 2 * Counter(control)[value] <= len(control):
        return None
    return value


def effect_basis(
    pinned: float | None,
    medians: tuple[float, float],
    means: tuple[float | None, float | None],
) -> tuple[str, float, float]:
    """What the effect is measured on: ``(basis, canary value, control value)``. The medians,
    unless they are pinned while the means differ (module docstring): then the means."""
    canary_mean, control_mean = means
    if (
        pinned is not None
        and canary_mean is not None
        and control_mean is not None
        and canary_mean != control_mean
    ):
        return BASIS_MEAN, canary_mean, control_mean
    return BASIS_MEDIAN, *medians


def leaning_level(rule: CompareRule) -> float:
    """The p-value below which an unconfirmed breach on the means holds rather than passes."""
    return min(LEANING_FACTOR * rule.significance, MAX_LEANING_P)


def breaches(rule: CompareRule, canary: float, control: float) -> bool:
    """Whether ``canary`` moved from ``control`` in the rule's bad direction by more than
    ``tolerance`` times ``|control|`` (any bad move when ``control`` is zero)."""
    shift = canary - control
    bad_shift = {
        Direction.INCREASE: shift,
        Direction.DECREASE: -shift,
        Direction.EITHER: abs(shift),
    }[rule.direction]
    return bad_shift > rule.tolerance * abs(control)


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
    canary_mean, control_mean = _mean(usable_canary), _mean(usable_control)
    pinned = pinned_value(usable_canary, usable_control)
    basis, canary_centre, control_centre = effect_basis(
        pinned, (canary_median, control_median), (canary_mean, control_mean)
    )
    shift = canary_centre - control_centre
    if not math.isfinite(shift):
        # Samples near the float limits overflow the medians' arithmetic; nothing sane
        # produces them, and no verdict can rest on them.
        return replace(
            result,
            message=f"{head}: samples too large to compare ({sizes}) (inconclusive)",
        )
    scale = abs(control_centre)
    effect: float | None = shift / scale if scale > 0 else (0.0 if shift == 0 else None)
    if effect is not None and not math.isfinite(effect):
        effect = None
    result = replace(
        result,
        canary_median=canary_median,
        control_median=control_median,
        canary_mean=canary_mean,
        control_mean=control_mean,
        basis=basis,
        pinned=pinned if basis == BASIS_MEAN else None,
        shift=shift,
        effect_size=effect,
        breach=breaches(rule, canary_centre, control_centre),
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
        else f"shift {format_value(shift)} over a zero control {basis}"
    )
    significant = p_value < rule.significance
    verdict = Verdict.FAIL if significant and result.breach else Verdict.PASS
    if verdict is Verdict.FAIL:
        judgement = f"canary is worse ({rule.direction.value} is bad): fail"
    elif result.breach and basis == BASIS_MEAN and p_value < leaning_level(rule):
        verdict = Verdict.INCONCLUSIVE
        judgement = "beyond tolerance on the means, not significant yet (inconclusive)"
    elif result.breach:
        judgement = "beyond tolerance but not significant: pass"
    elif significant:
        judgement = "significant but within tolerance: pass"
    else:
        judgement = "pass"
    tie = f" (medians pinned at {format_value(canary_median)})" if basis == BASIS_MEAN else ""
    message = (
        f"{head}: canary {basis} {format_value(canary_centre)} vs control "
        f"{format_value(control_centre)}{tie} ({effect_text}, tolerance "
        f"{rule.tolerance * 100:g}%), "
        f"p = {p_value:.3g} {'<' if significant else '>='} {rule.significance:g} {sided}, "
        f"{sizes}: {judgement}"
    )
    return replace(result, verdict=verdict, message=message, p_value=p_value, method=method)


__all__ = [
    "BASIS_MEAN",
    "BASIS_MEDIAN",
    "EXACT_MAX_SAMPLES",
    "LEANING_FACTOR",
    "MAX_LEANING_P",
    "CompareResult",
    "CompareRule",
    "Direction",
    "breaches",
    "effect_basis",
    "judge_metric",
    "leaning_level",
    "pinned_value",
]
