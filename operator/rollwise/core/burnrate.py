"""SLO burn rates over multiple windows (``sloBurnRate`` metrics), the SRE workbook's way.

Two pure functions frame the runtime's work: :func:`windows_to_query` says which windows to
count bad and total events over, given ``now`` and when the canary started; the runtime
queries them (for the canary) and :func:`evaluate_burn_rate` judges the counts it got back.

Definitions:

* **Error ratio** of a window: ``bad / total`` (``bad`` given, or ``total - good``),
  clamped to [0, 1] because ``increase()`` extrapolates each counter separately and can
  report slightly more bad than total events. No total, a zero or non-finite total, or no
  bad/good count is *no data*.
* **Too few events**: a window whose total is below the rule's ``min_events`` (default
  100) is judged as no data, in both directions: its burn is computed and reported, but it
  neither fires nor clears a pair. At a 99.9% objective a single bad event among fewer than
  70 burns above 14.4, so a window of a handful of requests would roll back on one stray
  error, and a clean one would vouch for nothing. Like ``minSamples`` of the other kinds,
  the floor makes thin evidence INCONCLUSIVE, never a pass or a fail.
* **Burn rate**: ``error ratio / (1 - objective)``; 1 spends the error budget exactly over
  the SLO period, 14.4 spends 2% of a 30-day budget in an hour.
* **Pairs** (defaults from the workbook's multi-window, multi-burn-rate alerts): a long and
  a short window and a rate. A pair *fires* when both windows burn above the rate (the long
  window proves the burn is significant, the short one that it is still going on); it is
  *clear* when either window is known to burn at or below the rate (then both cannot be
  above); otherwise it is *unknown* (no data where it matters).
* **Verdict**: a firing ``critical`` pair is FAIL (the workbook pages on it: roll back). A
  firing ``warning`` pair is INCONCLUSIVE: the workbook files a ticket, not a page, so the
  canary holds where it is and a human is asked to look before the budget runs out, but it
  is not rolled back. Any unknown pair is INCONCLUSIVE too (no data never passes). PASS
  needs every pair clear.
* **Young canaries**: a window longer than the canary's age is shortened to that age (it
  would otherwise count the stable revision's traffic or nothing), and every pair using a
  shortened window is rated LOW confidence. A canary younger than :data:`MIN_WINDOW_SECONDS`
  gets no window at all: its evidence is unknown.

Confidence of a pair: firing is HIGH (both windows agree above the rate); clear is HIGH when
both windows are known and agree (both at or below the rate), MEDIUM when only one is known
or they disagree (a burn that just stopped); unknown is LOW; any shortened window caps it at
LOW. A result's confidence: FAIL, the strongest firing critical pair; PASS, the weakest pair;
INCONCLUSIVE, the weakest of the pairs that made it so (firing warnings, unknowns).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import Field, model_validator

from rollwise.core.confidence import Confidence, capped, strongest, weakest
from rollwise.core.durations import format_seconds, parse_seconds
from rollwise.core.runs import Verdict
from rollwise.core.spec import DEFAULT_MIN_EVENTS, MAX_MIN_EVENTS, Duration, Model, PairSeverity

#: Shortest window worth querying (and shortest a pair may use): under a minute a rate sees a
#: couple of scrapes at best.
MIN_WINDOW_SECONDS = 60.0


class BurnWindowPair(Model):
    """A long and a short window and the burn rate both must exceed for the pair to fire."""

    long: Duration
    short: Duration
    rate: float = Field(gt=0, allow_inf_nan=False)
    severity: PairSeverity = PairSeverity.CRITICAL

    @model_validator(mode="after")
    def _windows(self) -> BurnWindowPair:
        for window in (self.long, self.short):
            # Whole seconds: a PromQL range states them exactly, and a window is only ever
            # shortened by a young canary, never by rounding.
            if parse_seconds(window) % 1:
                raise ValueError(f"window {window} is not a whole number of seconds")
        if parse_seconds(self.short) < MIN_WINDOW_SECONDS:
            raise ValueError(f"short window {self.short} is under a minute")
        if parse_seconds(self.short) >= parse_seconds(self.long):
            raise ValueError(f"short window {self.short} is not shorter than long {self.long}")
        return self

    @property
    def long_seconds(self) -> float:
        return parse_seconds(self.long)

    @property
    def short_seconds(self) -> float:
        return parse_seconds(self.short)

    @property
    def label(self) -> str:
        return f"{self.severity.value} pair {self.long}/{self.short}"


#: The SRE workbook's page-level pairs: 2% of a 30-day budget in an hour (critical) and 5%
#: in six hours (warning).
DEFAULT_PAIRS: tuple[BurnWindowPair, ...] = (
    BurnWindowPair(long="1h", short="5m", rate=14.4, severity=PairSeverity.CRITICAL),
    BurnWindowPair(long="6h", short="30m", rate=6.0, severity=PairSeverity.WARNING),
)


class BurnRateRule(Model):
    """How an ``sloBurnRate`` metric is judged (the ``sloBurnRate`` block of a metric)."""

    #: The SLO's target ratio of good events, e.g. 0.999.
    objective: float = Field(gt=0, lt=1)
    windows: list[BurnWindowPair] = Field(default_factory=lambda: list(DEFAULT_PAIRS), min_length=1)
    #: The SLO period the budget spans (30 days): how soon a burn exhausts it.
    period: Duration = "720h"
    #: Fewest events a window needs to be judged (module docstring).
    min_events: int = Field(default=DEFAULT_MIN_EVENTS, ge=1, le=MAX_MIN_EVENTS)

    @property
    def budget(self) -> float:
        """The allowed error ratio, ``1 - objective``."""
        return 1.0 - self.objective

    def window_seconds(self) -> tuple[float, ...]:
        """Every distinct window of the pairs, shortest first."""
        return tuple(sorted({s for p in self.windows for s in (p.long_seconds, p.short_seconds)}))


@dataclass(frozen=True)
class WindowQuery:
    """One window the runtime must count bad (or good) and total events over, ending now.

    ``window`` is the rule's duration in seconds, ``seconds`` the one to query (shorter when
    the canary is younger), whole seconds so that a PromQL range (:attr:`range`) states it
    exactly.
    """

    window: float
    seconds: float
    start: datetime
    end: datetime

    @property
    def shortened(self) -> bool:
        return self.seconds < self.window

    @property
    def range(self) -> str:
        """The PromQL range selector's duration, e.g. ``3600s``."""
        return f"{int(self.seconds)}s"


def canary_age(now: datetime, canary_started_at: datetime) -> timedelta:
    """How long the canary has served, never negative (a skewed clock reads as zero)."""
    return max(now - canary_started_at, timedelta(0))


def windows_to_query(
    rule: BurnRateRule, now: datetime, canary_started_at: datetime
) -> tuple[WindowQuery, ...]:
    """The windows to query now, shortest first: each of the rule's windows, shortened to the
    canary's age in whole seconds; none when the canary is younger than
    :data:`MIN_WINDOW_SECONDS`."""
    age = canary_age(now, canary_started_at).total_seconds()
    if age < MIN_WINDOW_SECONDS:
        return ()
    queries = []
    for window in rule.window_seconds():
        # Floored: a window must never reach back before the canary existed.
        seconds = float(math.floor(min(window, age)))
        queries.append(
            WindowQuery(
                window=window, seconds=seconds, start=now - timedelta(seconds=seconds), end=now
            )
        )
    return tuple(queries)


@dataclass(frozen=True)
class WindowCounts:
    """What the runtime counted over one :class:`WindowQuery`: total events and either bad
    or good ones (``bad`` wins when both are given). None means the query returned nothing."""

    query: WindowQuery
    total: float | None
    bad: float | None = None
    good: float | None = None


@dataclass(frozen=True)
class WindowBurn:
    """One window's burn: the counts, the error ratio and the burn rate (None: no data).
    ``seconds`` is 0 when the window was not queried."""

    window: float
    seconds: float
    total: float | None = None
    bad: float | None = None
    error_ratio: float | None = None
    burn: float | None = None

    @property
    def shortened(self) -> bool:
        return 0 < self.seconds < self.window

    def too_few(self, min_events: float) -> bool:
        """Whether the window counted a burn over fewer than ``min_events`` events (a window
        without a count, e.g. one read back from an older status, is not)."""
        return self.burn is not None and self.total is not None and self.total < min_events

    def usable_burn(self, min_events: float) -> float | None:
        """The burn as evidence: None without data or with too few events."""
        return None if self.too_few(min_events) else self.burn

    @property
    def label(self) -> str:
        shown = format_seconds(self.window)
        if self.shortened:
            return f"{shown} (shortened to {format_seconds(self.seconds)})"
        return shown


class PairState(StrEnum):
    FIRING = "Firing"
    CLEAR = "Clear"
    UNKNOWN = "Unknown"


@dataclass(frozen=True)
class PairResult:
    """One pair's state, its two windows, its confidence and, when firing, how soon the burn
    would exhaust a whole budget (``period / long burn``)."""

    pair: BurnWindowPair
    long: WindowBurn
    short: WindowBurn
    state: PairState
    confidence: Confidence
    exhaustion_seconds: float | None
    message: str


@dataclass(frozen=True)
class BurnRateResult:
    """The judgement of one SLO over all its pairs."""

    metric: str
    rule: BurnRateRule
    verdict: Verdict
    confidence: Confidence
    pairs: tuple[PairResult, ...]
    windows: tuple[WindowBurn, ...]
    message: str

    @property
    def shortened(self) -> bool:
        """Whether a window was shortened to the canary's age."""
        return any(w.shortened for w in self.windows)

    def firing(self, severity: PairSeverity) -> tuple[PairResult, ...]:
        return tuple(
            p for p in self.pairs if p.state is PairState.FIRING and p.pair.severity is severity
        )

    @property
    def unknown(self) -> tuple[PairResult, ...]:
        return tuple(p for p in self.pairs if p.state is PairState.UNKNOWN)

    @property
    def few_events(self) -> tuple[WindowBurn, ...]:
        """The windows judged as no data because they counted fewer than ``min_events``."""
        return tuple(w for w in self.windows if w.too_few(self.rule.min_events))

    @property
    def highest_burn(self) -> float | None:
        burns = [w.burn for w in self.windows if w.burn is not None]
        return max(burns) if burns else None


def _burn(window: float, counts: WindowCounts | None, budget: float) -> WindowBurn:
    if counts is None:
        return WindowBurn(window=window, seconds=0.0)
    seconds = counts.query.seconds
    total = counts.total
    if total is None or not math.isfinite(total) or total <= 0:
        return WindowBurn(window=window, seconds=seconds, total=total)
    if counts.bad is not None:
        bad = counts.bad
    elif counts.good is not None:
        bad = total - counts.good
    else:
        return WindowBurn(window=window, seconds=seconds, total=total)
    if not math.isfinite(bad):
        return WindowBurn(window=window, seconds=seconds, total=total)
    bad = min(max(bad, 0.0), total)
    ratio = bad / total
    return WindowBurn(
        window=window,
        seconds=seconds,
        total=total,
        bad=bad,
        error_ratio=ratio,
        burn=ratio / budget,
    )


def _shown(window: WindowBurn, min_events: float) -> str:
    if window.burn is None:
        return "no data"
    if window.too_few(min_events):
        return f"{window.burn:.2f} on {window.total:g} events (under minEvents {min_events:g})"
    return f"{window.burn:.2f}"


def _pair(
    pair: BurnWindowPair, long: WindowBurn, short: WindowBurn, period: float, min_events: float
) -> PairResult:
    rate = pair.rate
    long_burn, short_burn = long.usable_burn(min_events), short.usable_burn(min_events)
    known = [b for b in (long_burn, short_burn) if b is not None]
    exhaustion: float | None = None
    if long_burn is not None and short_burn is not None and min(long_burn, short_burn) > rate:
        state = PairState.FIRING
        confidence = Confidence.HIGH
        exhaustion = period / long_burn
        verdict = f"both above {rate:g}"
    elif any(b <= rate for b in known):
        state = PairState.CLEAR
        agree = len(known) == 2 and all(b <= rate for b in known)
        confidence = Confidence.HIGH if agree else Confidence.MEDIUM
        verdict = f"not both above {rate:g}"
    else:
        state = PairState.UNKNOWN
        confidence = Confidence.LOW
        verdict = f"cannot tell against {rate:g}"
    if long.shortened or short.shortened:
        confidence = capped(confidence, Confidence.LOW)
    message = (
        f"{pair.label}: burn {_shown(long, min_events)} over {long.label} and "
        f"{_shown(short, min_events)} over {short.label}, {verdict}"
    )
    return PairResult(
        pair=pair,
        long=long,
        short=short,
        state=state,
        confidence=confidence,
        exhaustion_seconds=exhaustion,
        message=message,
    )


def evaluate_burn_rate(
    rule: BurnRateRule, counts: Sequence[WindowCounts], *, metric: str
) -> BurnRateResult:
    """The verdict of the SLO ``metric`` from the counts of the windows
    :func:`windows_to_query` asked for (a window without counts is no data)."""
    by_window = {c.query.window: c for c in counts}
    windows = [_burn(w, by_window.get(w), rule.budget) for w in rule.window_seconds()]
    return judge_windows(rule, windows, metric=metric)


def judge_windows(
    rule: BurnRateRule, burns: Sequence[WindowBurn], *, metric: str
) -> BurnRateResult:
    """The verdict of the SLO ``metric`` from its windows' burns (those :func:`evaluate_burn_rate`
    computed, or the ones status recorded); a window of the rule without a burn is no data."""
    given = {w.window: w for w in burns}
    windows = {w: given.get(w, WindowBurn(window=w, seconds=0.0)) for w in rule.window_seconds()}
    period = parse_seconds(rule.period)
    pairs = tuple(
        _pair(p, windows[p.long_seconds], windows[p.short_seconds], period, rule.min_events)
        for p in rule.windows
    )
    critical = [
        p for p in pairs if p.state is PairState.FIRING and p.pair.severity is PairSeverity.CRITICAL
    ]
    holding = [
        p
        for p in pairs
        if p.state is PairState.UNKNOWN
        or (p.state is PairState.FIRING and p.pair.severity is PairSeverity.WARNING)
    ]
    if critical:
        verdict, confidence = Verdict.FAIL, strongest(p.confidence for p in critical)
    elif holding:
        verdict, confidence = Verdict.INCONCLUSIVE, weakest(p.confidence for p in holding)
    else:
        verdict, confidence = Verdict.PASS, weakest(p.confidence for p in pairs)
    message = (
        f"SLO {metric} (objective {rule.objective * 100:g}%): "
        + "; ".join(p.message for p in pairs)
        + f": {verdict.value.lower()}"
    )
    return BurnRateResult(
        metric=metric,
        rule=rule,
        verdict=verdict,
        confidence=confidence,
        pairs=pairs,
        windows=tuple(windows.values()),
        message=message,
    )


__all__ = [
    "DEFAULT_PAIRS",
    "MIN_WINDOW_SECONDS",
    "BurnRateResult",
    "BurnRateRule",
    "BurnWindowPair",
    "PairResult",
    "PairSeverity",
    "PairState",
    "WindowBurn",
    "WindowCounts",
    "WindowQuery",
    "canary_age",
    "evaluate_burn_rate",
    "judge_windows",
    "windows_to_query",
]
