"""Kayenta-style scoring: one 0-100 score and one verdict over weighted, judged metrics.

Pure arithmetic over verdicts; the metrics come judged (:mod:`rollwise.core.compare`).

With ``W`` the total weight and ``P``, ``F``, ``I`` the weight of the passed, failed and
inconclusive metrics:

* **score** = ``100 * P / (P + F)``: inconclusive metrics are left out of the denominator
  (none when ``P + F`` is 0);
* **best case** = ``100 * (P + I) / W``: the score if every inconclusive metric passed.

The verdict, first rule that applies:

1. a critical metric failed: FAIL (``CRITICAL_FAILED``), whatever the score;
2. best case below ``marginal``: FAIL (``BELOW_MARGINAL``): the failures are decisive even
   if every missing metric turned out fine;
3. a critical metric is inconclusive: INCONCLUSIVE (``CRITICAL_INCONCLUSIVE``): a critical
   metric is never passed unseen;
4. ``I / W`` above ``maxInconclusive``, nothing decided, or a score below ``marginal`` whose
   best case is not (the missing metrics could still lift it): INCONCLUSIVE
   (``TOO_MANY_INCONCLUSIVE``);
5. score at or above ``pass``: PASS (``PASSED``); at or above ``marginal``: INCONCLUSIVE
   (``MARGINAL``, a hold).

So missing data is bounded on the way up (at most ``maxInconclusive`` of the weight may be
unknown for a PASS) and never decisive on the way down (a FAIL holds whatever the unknown
metrics would have said): it neither promotes nor rolls back on its own (DESIGN §4).

Confidence of a score: the strongest critical failure for ``CRITICAL_FAILED`` (any one
suffices); the weakest failed metric for ``BELOW_MARGINAL`` and ``MARGINAL`` (the verdict
rests on all of them together); the weakest decided metric for ``PASSED``, at most MEDIUM
when any metric was left out as inconclusive; LOW otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from pydantic import Field, model_validator

from rollwise.core.confidence import Confidence, capped, strongest, weakest
from rollwise.core.runs import Verdict
from rollwise.core.spec import Model


class ScoreThresholds(Model):
    """The score's thresholds (Kayenta's ``scoreThresholds`` with its defaults)."""

    #: Score at or above which the metrics pass.
    passing: float = Field(default=95.0, ge=0, le=100, alias="pass")
    #: Score below which they fail; in between is a hold.
    marginal: float = Field(default=75.0, ge=0, le=100)
    #: Largest share of the total weight that may be inconclusive in a passing score.
    max_inconclusive: float = Field(default=0.25, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> ScoreThresholds:
        if self.marginal > self.passing:
            raise ValueError(f"marginal {self.marginal:g} is above pass {self.passing:g}")
        return self


class Scored(Protocol):
    """What the score needs of a judged metric."""

    @property
    def metric(self) -> str: ...

    @property
    def verdict(self) -> Verdict: ...

    @property
    def weight(self) -> float: ...

    @property
    def critical(self) -> bool: ...

    @property
    def confidence(self) -> Confidence: ...


class ScoreOutcome(StrEnum):
    """Which rule decided the score's verdict (see the module docstring)."""

    PASSED = "Passed"
    MARGINAL = "Marginal"
    BELOW_MARGINAL = "BelowMarginal"
    CRITICAL_FAILED = "CriticalFailed"
    CRITICAL_INCONCLUSIVE = "CriticalInconclusive"
    TOO_MANY_INCONCLUSIVE = "TooManyInconclusive"


@dataclass(frozen=True)
class Score:
    """The score of a set of metrics: the verdict, the rule that gave it, the numbers."""

    verdict: Verdict
    outcome: ScoreOutcome
    score: float | None
    best_case: float
    passed_weight: float
    failed_weight: float
    inconclusive_weight: float
    failed: tuple[str, ...]
    inconclusive: tuple[str, ...]
    critical_failed: tuple[str, ...]
    critical_inconclusive: tuple[str, ...]
    confidence: Confidence
    message: str

    @property
    def total_weight(self) -> float:
        return self.passed_weight + self.failed_weight + self.inconclusive_weight


def score_metrics(metrics: Sequence[Scored], thresholds: ScoreThresholds | None = None) -> Score:
    """The score and verdict of ``metrics`` under ``thresholds`` (Kayenta's defaults when
    None). No metrics at all is INCONCLUSIVE: nothing was judged."""
    limits = thresholds if thresholds is not None else ScoreThresholds()
    by = {verdict: [m for m in metrics if m.verdict is verdict] for verdict in Verdict}
    passed = sum(m.weight for m in by[Verdict.PASS])
    failed = sum(m.weight for m in by[Verdict.FAIL])
    unknown = sum(m.weight for m in by[Verdict.INCONCLUSIVE])
    total = passed + failed + unknown
    score = 100.0 * passed / (passed + failed) if passed + failed > 0 else None
    best = 100.0 * (passed + unknown) / total if total > 0 else 0.0
    critical_failed = [m for m in by[Verdict.FAIL] if m.critical]
    critical_unknown = [m for m in by[Verdict.INCONCLUSIVE] if m.critical]

    shown = "no score" if score is None else f"score {score:.1f}"
    weights = (
        f"{len(by[Verdict.PASS])} passed, {len(by[Verdict.FAIL])} failed, "
        f"{len(by[Verdict.INCONCLUSIVE])} inconclusive of {len(metrics)} metrics"
    )

    def names(items: Sequence[Scored]) -> str:
        return ", ".join(m.metric for m in items)

    outcome: ScoreOutcome
    if critical_failed:
        outcome, verdict = ScoreOutcome.CRITICAL_FAILED, Verdict.FAIL
        confidence = strongest(m.confidence for m in critical_failed)
        why = f"critical metric failed: {names(critical_failed)}"
    elif total > 0 and best < limits.marginal:
        outcome, verdict = ScoreOutcome.BELOW_MARGINAL, Verdict.FAIL
        confidence = weakest(m.confidence for m in by[Verdict.FAIL])
        why = (
            f"below marginal {limits.marginal:g} even if every inconclusive metric passed "
            f"(best case {best:.1f})"
        )
    elif critical_unknown:
        outcome, verdict = ScoreOutcome.CRITICAL_INCONCLUSIVE, Verdict.INCONCLUSIVE
        confidence = Confidence.LOW
        why = f"critical metric inconclusive: {names(critical_unknown)}"
    elif (
        total == 0
        or score is None
        or unknown / total > limits.max_inconclusive
        or score < limits.marginal
    ):
        outcome, verdict = ScoreOutcome.TOO_MANY_INCONCLUSIVE, Verdict.INCONCLUSIVE
        confidence = Confidence.LOW
        share = unknown / total if total > 0 else 1.0
        if total == 0:
            why = "nothing to score"
        elif score is None or share > limits.max_inconclusive:
            why = (
                f"{share * 100:.0f}% of the weight inconclusive (maxInconclusive "
                f"{limits.max_inconclusive * 100:g}%)"
            )
        else:
            why = (
                f"below marginal {limits.marginal:g}, but the inconclusive metrics could lift "
                f"it to {best:.1f}"
            )
    elif score >= limits.passing:
        outcome, verdict = ScoreOutcome.PASSED, Verdict.PASS
        confidence = weakest(m.confidence for m in (*by[Verdict.PASS], *by[Verdict.FAIL]))
        if unknown > 0:
            confidence = capped(confidence, Confidence.MEDIUM)
        why = f"at or above pass {limits.passing:g}"
    else:
        outcome, verdict = ScoreOutcome.MARGINAL, Verdict.INCONCLUSIVE
        confidence = weakest(m.confidence for m in by[Verdict.FAIL])
        why = f"between marginal {limits.marginal:g} and pass {limits.passing:g}"

    return Score(
        verdict=verdict,
        outcome=outcome,
        score=score,
        best_case=best,
        passed_weight=passed,
        failed_weight=failed,
        inconclusive_weight=unknown,
        failed=tuple(m.metric for m in by[Verdict.FAIL]),
        inconclusive=tuple(m.metric for m in by[Verdict.INCONCLUSIVE]),
        critical_failed=tuple(m.metric for m in critical_failed),
        critical_inconclusive=tuple(m.metric for m in critical_unknown),
        confidence=confidence,
        message=f"{shown} ({weights}): {why}",
    )


__all__ = ["Score", "ScoreOutcome", "ScoreThresholds", "Scored", "score_metrics"]
