"""``python -m hack.bench.watch``: how often the post-promotion regression watch fires on a
healthy revision, and how long a real regression takes to be confirmed (and so rolled back).

    python -m hack.bench.watch [--seeds 20] [--quick] [--hours 24] [--windows-agree] [--workers 2]

The traffic is synthetic (there are no real users here); the watch is the kernel's own:
:func:`rollwise.core.postpromotion.start` and :func:`~rollwise.core.postpromotion.evaluate`
(over :mod:`rollwise.core.regression`'s state machine and the analysis' one evaluator), with
the default rule values of ``postPromotion`` (``interval`` 5m, windows 1h and 24h,
``confirmAfter`` 3, ``clearAfter`` 3, ``confirmWhenWindowsAgree`` false, ``attentionBand``
0.1, ``onRegression`` critical rollback / warning hold / info alert) and the KPIs and metrics
of ``examples/rollout-post-promotion/rollout.yaml`` (``error-ratio``: ``result < 0.05``,
critical, target 0.01; ``p99-latency``: at most 0.5 s, warning, target 0.3 s).
``--windows-agree`` sets ``confirmWhenWindowsAgree`` as the example does.

**Series.** The promoted revision serves all the traffic at the judge benchmark's rate (50
requests/s) with the behaviours of the judge benchmark's scenarios
(:data:`hack.bench.judge.SCENARIOS`: ``healthy``, ``noisy`` with ten times the latency jitter,
``errors-20``, ``errors-5``); the revision it replaced served the stable behaviour for the day
before. Each minute's requests are drawn as the demo service model draws them
(:meth:`hack.lab.service.DemoService.draw`: a 500 with the error ratio, a latency of
``latencyMs + uniform(0, jitterMs)``), counted per minute in one draw: the 500s binomially, the
latency histogram's buckets (:data:`hack.lab.service.LATENCY_BUCKETS`) multinomially, the same
distribution as one draw per request, summed. A window's value is what the example's queries
give over the minutes inside it: the error ratio of the increases, and the histogram's 0.99
quantile interpolated in its bucket as ``histogram_quantile`` does. There is no Prometheus
here (the judge benchmark measures the queries themselves); windows older than the
promotion only hold the minutes since it, as the promoted revision's series begin then.

**Runs**, ``--seeds`` each (``--hours`` of watch, 24 by default):

- ``healthy`` and ``noisy``: the promoted revision is as good as the one it replaced;
- ``regression errors-20`` and ``regression errors-5``: from a random minute (uniform in the
  watch, at least an hour after promotion and three hours before its end) the revision answers
  as the judge's ``errors-20`` (``errors-5``) canary, to the end;
- ``blip Nm``: the ``errors-20`` behaviour for N minutes (5, 10, 15, 20) at a random minute,
  healthy before and after.

**Figures**: the false-positive rate (runs of ``healthy`` and ``noisy`` with a confirmed
regression), the detected-then-cleared rate (runs with at least one episode counted by
``rollwise_regression_false_positive_total``), the time from the regression's start to its
confirmation (p50, p95, max) and the confirmation rate of each regression, and each blip's
outcome (nothing detected, detected then cleared, confirmed). A confirmation of a critical
KPI is the fast-track rollback of the same pass: the time to rollback is the time to
confirmation; the rollback's own writes follow in that pass's actions (not measured here).

Boundary: a measurement script; it asserts nothing. Bounded: about 20 s of CPU by default (the
CEL evaluator of ``successCondition`` takes most of it), split over ``--workers`` processes:
about 10-15 s on the lab machine's 2 cores when they are free, longer when other work shares
them; ``--quick`` (4 seeds, 6-hour watches) a few seconds.
"""

from __future__ import annotations

import argparse
import math
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import yaml

from hack.bench._common import REPO, machine, percentile
from hack.bench.judge import BASE, RATE, SCENARIOS
from hack.lab.service import LATENCY_BUCKETS, Behaviour
from rollwise.core.durations import parse_seconds
from rollwise.core.observations import Measurement
from rollwise.core.postpromotion import (
    LONG,
    PREVIOUS,
    SHORT,
    PostPromotionStatus,
    evaluate,
    key,
    next_due,
    start,
)
from rollwise.core.regression import Transition
from rollwise.core.spec import Metric, PostPromotion, RegressionAction

EXAMPLE = REPO / "examples" / "rollout-post-promotion" / "rollout.yaml"
ERROR_RATIO = "error-ratio"
P99_LATENCY = "p99-latency"
MINUTE = 60.0
#: Where the simulated clock starts (any fixed instant: the core only compares times).
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
BLIP_MINUTES = (5, 10, 15, 20)
#: A regression starts at least this long after the promotion and before the watch's end.
REGRESSION_MARGIN_MINUTES = (60, 180)

BEHAVIOUR = {s.name: s.canary for s in SCENARIOS}
HEALTHY, NOISY = "healthy", "noisy"
REGRESSIONS = ("errors-20", "errors-5")
BLIP = "errors-20"

# ------------------------------------------------------------------------------- the watch


def example_watch(*, windows_agree: bool = False) -> tuple[PostPromotion, list[Metric]]:
    """The example's KPIs and metrics under the default rule values."""
    doc = yaml.safe_load(EXAMPLE.read_text())
    given = doc["spec"]["strategy"]["canary"]["postPromotion"]
    watch = PostPromotion.model_validate(
        {
            "kpis": given["kpis"],
            "metrics": given["metrics"],
            "confirmWhenWindowsAgree": windows_agree,
        }
    )
    names = [m.name for m in watch.metrics]
    if names != [ERROR_RATIO, P99_LATENCY]:
        raise RuntimeError(f"{EXAMPLE}: expected the metrics error-ratio, p99-latency: {names}")
    return watch, list(watch.metrics)


# ------------------------------------------------------------------------------ the series


def bucket_shares(behaviour: Behaviour) -> list[float]:
    """The share of requests in each latency bucket (``LATENCY_BUCKETS`` then +Inf, not
    cumulative) when latencies are ``latencyMs + uniform(0, jitterMs)``."""
    low = behaviour.latency_ms / 1000.0
    width = behaviour.jitter_ms / 1000.0

    def below(bound: float) -> float:
        if width == 0:
            return 1.0 if low <= bound else 0.0
        return min(1.0, max(0.0, (bound - low) / width))

    cumulative = [below(b) for b in LATENCY_BUCKETS] + [1.0]
    return [c - p for p, c in zip([0.0, *cumulative[:-1]], cumulative, strict=True)]


@dataclass
class Series:
    """One revision's traffic, minute by minute: requests, 500s and the latency histogram's
    buckets (not cumulative), with running sums for window queries."""

    requests: np.ndarray[Any, np.dtype[np.int64]]
    errors: np.ndarray[Any, np.dtype[np.int64]]
    buckets: np.ndarray[Any, np.dtype[np.int64]]

    def __post_init__(self) -> None:
        zero = np.zeros(1, dtype=np.int64)
        self._requests = np.concatenate([zero, np.cumsum(self.requests)])
        self._errors = np.concatenate([zero, np.cumsum(self.errors)])
        self._buckets = np.vstack(
            [np.zeros((1, self.buckets.shape[1]), dtype=np.int64), np.cumsum(self.buckets, 0)]
        )

    @property
    def minutes(self) -> int:
        return int(self.requests.shape[0])

    def _span(self, end: int, window: int) -> tuple[int, int]:
        end = max(0, min(end, self.minutes))
        return max(0, end - window), end

    def error_ratio(self, end: int, window: int) -> float | None:
        """500s over requests in the ``window`` minutes before minute ``end`` (None: none)."""
        a, b = self._span(end, window)
        total = int(self._requests[b] - self._requests[a])
        if total == 0:
            return None
        return int(self._errors[b] - self._errors[a]) / total

    def quantile(self, q: float, end: int, window: int) -> float | None:
        a, b = self._span(end, window)
        counts = (self._buckets[b] - self._buckets[a]).tolist()
        return histogram_quantile(q, counts)


def histogram_quantile(q: float, counts: Sequence[int]) -> float | None:
    """Prometheus' ``histogram_quantile`` over one histogram's bucket counts (not cumulative,
    ``LATENCY_BUCKETS`` then +Inf): linear interpolation inside the bucket holding the rank,
    the first bucket starting at 0, the +Inf bucket answered by the highest finite bound."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(counts):
        if seen + count >= rank and count > 0:
            if i == len(LATENCY_BUCKETS):
                return LATENCY_BUCKETS[-1]
            lower = LATENCY_BUCKETS[i - 1] if i > 0 else 0.0
            upper = LATENCY_BUCKETS[i]
            return lower + (upper - lower) * (rank - seen) / count
        seen += count
    return LATENCY_BUCKETS[-1]


def draw_series(
    timeline: Callable[[int], Behaviour], minutes: int, rng: np.random.Generator
) -> Series:
    """``minutes`` of traffic at :data:`RATE` requests/s, minute ``m`` answered as
    ``timeline(m)``."""
    per_minute = round(RATE * MINUTE)
    requests = np.full(minutes, per_minute, dtype=np.int64)
    errors = np.zeros(minutes, dtype=np.int64)
    buckets = np.zeros((minutes, len(LATENCY_BUCKETS) + 1), dtype=np.int64)
    shares: dict[Behaviour, list[float]] = {}
    for m in range(minutes):
        behaviour = timeline(m)
        if behaviour not in shares:
            shares[behaviour] = bucket_shares(behaviour)
        errors[m] = rng.binomial(per_minute, behaviour.error_ratio)
        buckets[m] = rng.multinomial(per_minute, shares[behaviour])
    return Series(requests, errors, buckets)


# --------------------------------------------------------------------------------- the runs


@dataclass(frozen=True)
class Case:
    """One kind of run: the behaviour before, during and after a bad period (none for a
    healthy run), the bad period's length (None: to the end) and whether it is a regression
    whose confirmation is right."""

    name: str
    steady: Behaviour
    bad: Behaviour | None = None
    bad_minutes: int | None = None

    @property
    def healthy(self) -> bool:
        return self.bad is None

    @property
    def regression(self) -> bool:
        return self.bad is not None and self.bad_minutes is None


def cases() -> list[Case]:
    return [
        Case(HEALTHY, BEHAVIOUR[HEALTHY]),
        Case(NOISY, BEHAVIOUR[NOISY]),
        *(Case(f"regression {name}", BASE, BEHAVIOUR[name]) for name in REGRESSIONS),
        *(Case(f"blip {n}m", BASE, BEHAVIOUR[BLIP], n) for n in BLIP_MINUTES),
    ]


@dataclass(frozen=True)
class Run:
    """What the watch did in one run: each KPI's transitions with the minute (from the
    promotion) of the pass that made them, the bad period's start, and the action taken."""

    case: str
    seed: int
    bad_from: int | None
    transitions: tuple[tuple[int, str, Transition], ...]
    action: RegressionAction | None
    evaluations: int

    def first(self, transition: Transition, kpi: str | None = None) -> int | None:
        for minute, name, move in self.transitions:
            if move is transition and (kpi is None or name == kpi):
                return minute
        return None

    def count(self, transition: Transition) -> int:
        return sum(1 for _, _, move in self.transitions if move is transition)


def _seed(*parts: object) -> int:
    return zlib.crc32("/".join(str(p) for p in parts).encode())


def measurements_at(
    metrics: Sequence[Metric], series: Series, minute: int, *, windows: dict[str, int], at: datetime
) -> dict[str, Measurement]:
    """The watch's measurements of ``series`` at ``minute``, one per metric and window
    (``windows``: the kernel's name of a window, its length in minutes), under the kernel's
    keys."""
    taken: dict[str, Measurement] = {}
    for metric in metrics:
        for name, window in windows.items():
            if metric.name == ERROR_RATIO:
                value = series.error_ratio(minute, window)
            else:
                value = series.quantile(0.99, minute, window)
            taken[key(metric.name, name)] = Measurement(value, at)
    return taken


def _minutes(text: str) -> int:
    return round(parse_seconds(text) / MINUTE)


def run_one(
    case: Case, seed: int, watch: PostPromotion, metrics: Sequence[Metric], hours: float
) -> Run:
    """One watch of ``hours`` over ``case``'s series drawn with ``seed``, pass by pass when
    the kernel says the next one is due."""
    rng = np.random.default_rng(_seed(case.name, seed))
    minutes = round(hours * 60)
    short, long = _minutes(watch.windows.short), _minutes(watch.windows.long)
    bad_from: int | None = None
    if case.bad is not None:
        first, last = REGRESSION_MARGIN_MINUTES
        if case.bad_minutes is not None:
            last = case.bad_minutes + 60
        bad_from = int(rng.integers(first, max(first + 1, minutes - last)))
    bad, steady, length = case.bad, case.steady, case.bad_minutes

    def timeline(m: int) -> Behaviour:
        if bad is None or bad_from is None or m < bad_from:
            return steady
        if length is not None and m >= bad_from + length:
            return steady
        return bad

    promoted = draw_series(timeline, minutes, rng)
    replaced = draw_series(lambda _m: BASE, long, rng)
    watch = watch.model_copy(update={"duration": f"{minutes}m"})
    status: PostPromotionStatus = start(
        watch, metrics, revision="promoted", previous="replaced", now=EPOCH
    )
    at = EPOCH
    moves: list[tuple[int, str, Transition]] = []
    while True:
        due = next_due(watch, status)
        if due is None:
            break
        at = max(at, due)
        minute = round((at - EPOCH).total_seconds() / MINUTE)
        if not status.previous_captured:
            taken = measurements_at(metrics, replaced, long, windows={PREVIOUS: long}, at=at)
        else:
            taken = measurements_at(
                metrics, promoted, minute, windows={SHORT: short, LONG: long}, at=at
            )
        outcome = evaluate(watch, metrics, status, taken, at)
        status = outcome.status
        for change in outcome.changes:
            moves.extend((minute, change.record.name, t) for t in change.transitions)
        if outcome.ended or status.ended_at is not None:
            break
    return Run(case.name, seed, bad_from, tuple(moves), status.action, status.evaluations)


# ------------------------------------------------------------------------------- the figures


NOTHING, CLEARED, CONFIRMED = "nothing detected", "detected then cleared", "confirmed"


def outcome_of(run: Run) -> str:
    if run.count(Transition.CONFIRMED):
        return CONFIRMED
    if run.count(Transition.DETECTED):
        return CLEARED if run.count(Transition.FALSE_POSITIVE) else "detected, still open"
    return NOTHING


@dataclass(frozen=True)
class Figures:
    """The watch's figures over a set of runs (rates are shares of runs; times in minutes)."""

    healthy_runs: int
    false_positive_rate: float
    cleared_rate: float
    regressions: dict[str, tuple[int, float, float, float, float]]
    """Per regression case: runs, confirmed share, p50, p95 and max minutes to confirm."""
    blips: dict[str, dict[str, int]]
    false_positive_counts: dict[str, int]
    """``rollwise_regression_false_positive_total`` increments per case, summed over runs."""


def _share(part: int, whole: int) -> float:
    return part / whole if whole else float("nan")


def figures(runs: Sequence[Run]) -> Figures:
    by_case: dict[str, list[Run]] = {}
    for run in runs:
        by_case.setdefault(run.case, []).append(run)
    good = [r for r in runs if r.case in (HEALTHY, NOISY)]
    regressions: dict[str, tuple[int, float, float, float, float]] = {}
    blips: dict[str, dict[str, int]] = {}
    for name, mine in by_case.items():
        if name.startswith("regression "):
            times = [
                float(c - r.bad_from)
                for r in mine
                if r.bad_from is not None
                and (c := r.first(Transition.CONFIRMED, ERROR_RATIO)) is not None
            ]
            regressions[name] = (
                len(mine),
                _share(len(times), len(mine)),
                percentile(times, 0.5),
                percentile(times, 0.95),
                max(times) if times else float("nan"),
            )
        elif name.startswith("blip "):
            counts: dict[str, int] = {}
            for run in mine:
                counts[outcome_of(run)] = counts.get(outcome_of(run), 0) + 1
            blips[name] = counts
    return Figures(
        healthy_runs=len(good),
        false_positive_rate=_share(
            sum(1 for r in good if r.count(Transition.CONFIRMED)), len(good)
        ),
        cleared_rate=_share(sum(1 for r in good if r.count(Transition.FALSE_POSITIVE)), len(good)),
        regressions=regressions,
        blips=blips,
        false_positive_counts={
            name: sum(r.count(Transition.FALSE_POSITIVE) for r in mine)
            for name, mine in by_case.items()
        },
    )


def _pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value * 100:.1f}%"


def _mins(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.0f} min"


def report(found: Figures, runs: Sequence[Run], interval_minutes: int) -> str:
    """The figures as Markdown: the summary lines, then one table per kind of run."""
    cases_seen = list(dict.fromkeys(r.case for r in runs))
    lines = [
        f"false positives (healthy and noisy runs with a confirmed regression): "
        f"{_pct(found.false_positive_rate)} of {found.healthy_runs} runs",
        f"detected then cleared (healthy and noisy runs counted by "
        f"rollwise_regression_false_positive_total): {_pct(found.cleared_rate)} of "
        f"{found.healthy_runs} runs",
    ]
    for name, (n, rate, p50, p95, worst) in found.regressions.items():
        lines.append(
            f"{name}: confirmed (= fast-track rollback, same pass) in {_pct(rate)} of {n} runs; "
            f"time from regression start p50 {_mins(p50)}, p95 {_mins(p95)}, max {_mins(worst)}"
        )
    lines += [
        "",
        "| run | runs | nothing detected | detected then cleared | confirmed | "
        "false-positive counter | actions |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in cases_seen:
        mine = [r for r in runs if r.case == name]
        outcomes = [outcome_of(r) for r in mine]
        actions = sorted({r.action.value for r in mine if r.action is not None})
        lines.append(
            f"| {name} | {len(mine)} | {outcomes.count(NOTHING)} | {outcomes.count(CLEARED)} | "
            f"{outcomes.count(CONFIRMED)} | {found.false_positive_counts.get(name, 0)} | "
            f"{', '.join(actions) or '-'} |"
        )
    lines.append("")
    lines.append(
        f"(a pass every {interval_minutes} min; times are from the minute the regression "
        "started to the pass that confirmed it)"
    )
    return "\n".join(lines)


@dataclass(frozen=True)
class Settings:
    seeds: int
    hours: float
    windows_agree: bool
    workers: int = 1


def _one(item: tuple[Case, int, Settings]) -> Run:
    case, seed, settings = item
    watch, metrics = example_watch(windows_agree=settings.windows_agree)
    return run_one(case, seed, watch, metrics, settings.hours)


def run(settings: Settings, say: Callable[[str], None] = print) -> list[Run]:
    """Every run, in ``settings.workers`` processes (the CEL evaluator is CPU-bound)."""
    items = [(case, seed, settings) for case in cases() for seed in range(settings.seeds)]
    began = time.monotonic()
    if settings.workers > 1:
        with ProcessPoolExecutor(max_workers=settings.workers) as pool:
            runs = list(pool.map(_one, items, chunksize=4))
    else:
        runs = [_one(item) for item in items]
    evaluations = sum(r.evaluations for r in runs)
    say(f"watched: {len(runs)} runs, {evaluations} evaluations in {time.monotonic() - began:.1f}s")
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hack.bench.watch",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seeds", type=int, default=20, help="runs per kind of run")
    parser.add_argument("--hours", type=float, default=24.0, help="the watch's duration")
    parser.add_argument(
        "--windows-agree", action="store_true", help="confirmWhenWindowsAgree: true"
    )
    parser.add_argument("--workers", type=int, default=2, help="processes running the runs")
    parser.add_argument("--quick", action="store_true", help="4 seeds, 6-hour watches")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.hours <= 0:
        parser.error("--seeds and --hours must be positive")
    hours = 6.0 if args.quick else args.hours
    if hours * 60 < sum(REGRESSION_MARGIN_MINUTES) + max(BLIP_MINUTES):
        parser.error("--hours must leave room for a regression: at least 5")
    settings = Settings(
        seeds=4 if args.quick else args.seeds,
        hours=hours,
        windows_agree=args.windows_agree,
        workers=max(1, args.workers),
    )
    watch, _ = example_watch(windows_agree=settings.windows_agree)
    interval = _minutes(watch.interval)
    print("watch benchmark: synthetic traffic (no real users), the kernel's real watch")
    print(machine())
    print(
        f"settings: {settings.seeds} seeds x {len(cases())} kinds of run, {hours:g} h watches, "
        f"interval {watch.interval}, windows {watch.windows.short}/{watch.windows.long}, "
        f"confirmAfter {watch.confirm_after}, clearAfter {watch.clear_after}, "
        f"confirmWhenWindowsAgree {str(watch.confirm_when_windows_agree).lower()}, "
        f"attentionBand {watch.attention_band:g}, {RATE:g} req/s"
    )
    began = time.monotonic()
    runs = run(settings)
    print()
    print(report(figures(runs), runs, interval))
    print(f"total {time.monotonic() - began:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = [
    "Case",
    "Figures",
    "Run",
    "Series",
    "bucket_shares",
    "cases",
    "draw_series",
    "example_watch",
    "figures",
    "histogram_quantile",
    "main",
    "outcome_of",
    "report",
    "run_one",
]
