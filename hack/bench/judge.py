"""``python -m hack.bench.judge``: how often each way of judging a canary decides right, and
how fast.

    python -m hack.bench.judge [--seeds 10] [--step-minutes 10] [--scrape 5] [--quick]
                               [--scenarios healthy,errors-20,...] [--workers 2] [--workdir DIR]

The traffic is synthetic (there are no real users here); the queries and the maths are real.

**Scenarios** (labelled good or bad), each run ``--seeds`` times with different seeds: a
healthy canary; +2%, +5% and +20% errors; +50 ms and +300 ms on p95 latency; a noisy but
healthy service (latency jitter ten times the default, on every revision); low traffic
(1 request/s in all, so the 5% canary sees one request every 20 s); and +20% errors at that
low traffic (``low-traffic-errors-20``: an error ratio over one request per sample is mostly
zeros on both sides, the compare judge's blind spot while it read only medians). The stable
revision
answers 0.1% of its requests with a 500 in ``20 + uniform(0, 10)`` ms (the demo service's
default latency).

**Traffic.** Each request is drawn by the lab's demo service model
(:meth:`hack.lab.service.DemoService.draw` over a :class:`~hack.lab.service.Behaviour`, one
seeded DemoService per revision) and split by the router's weights as the lab's traffic
generator splits it (exact shares, no sampling noise): at a step of weight ``w`` the stable
revision gets ``100 - 2w``%, a baseline (the stable's behaviour) ``w``% and the canary ``w``%,
as ``canary.baseline: true`` splits traffic. Every judge sees the same runs; the judges without
a baseline use the stable revision as control (it carries 90% rather than 95% of the load at
the 5% step, which changes nothing but its sample count). The counters and the latency
histogram each revision would export are written every ``--scrape`` seconds, with timestamps,
as OpenMetrics, loaded with ``promtool tsdb create-blocks-from openmetrics`` into a fresh TSDB,
and served by the lab's real Prometheus (:class:`hack.lab.prometheus.PrometheusServer`). Real
time would take hours; backfilling the simulated hours takes seconds.

**Passes.** A default canary: steps 5% and 25% (then 100%: promoted). Each step is one
recorded segment of ``--step-minutes`` (its own series, a namespace per run and step); a judge
looks every 30 s (the analysis interval) and queries Prometheus over its HTTP API at that
historical ``time=`` (instant queries and range queries ending then). Each pass yields a
:func:`rollwise.core.decision.build_decision`: expand moves to the next step (promoted after
25%), rollback ends the run, hold looks again 30 s later; a step still holding at its end is
*held* (no decision).

**Judges**, on the same runs:

- ``thresholds``: today's checks, the gateway example's ``error-ratio`` (``result < 0.05``,
  ``count: 2``, ``failureLimit: 1``, ``sampleGuard`` 50 requests over 1m, read from
  ``examples/rollout-gateway-api/rollout.yaml``) and a ``p95-latency`` check written the same
  way (``thresholdRange.max`` 0.25 s, the same guard), through :mod:`rollwise.core.analysis`;
- ``compare/stable`` and ``compare/baseline``: :func:`rollwise.core.compare.judge_metric` of the
  canary's error ratio and p95 latency (each a range query over the step so far, one sample
  per ``--compare-step`` seconds from a ``rate()`` over the same span, default rule) against
  the stable revision's or the baseline's, scored together;
- ``burn-rate``: :func:`rollwise.core.burnrate.evaluate_burn_rate` with the default window
  pairs for two SLOs of the canary: availability 99.9% (5xx are bad) and latency 99% under
  250 ms (the ``le="0.25"`` bucket is good). The windows are shortened to the step's age
  (each step's segment has its own series, so the 25% step does not see the 5% step's
  requests).

**Figures** per judge: accuracy (good promoted, bad rolled back; held counts as wrong),
false-positive rate (good runs rolled back), false-negative rate (bad runs promoted), held
rate, median and p95 time to decision (from a step's start to its expand or rollback, over
every decided step), how often the low-traffic +20%-errors canary was rolled back (at any
step) and how often the +20%-errors canary was rolled back at the 5% step; with the goals
(accuracy > 90%, FP < 5%, p95 time to decision < 5 min, both 20%-errors canaries caught
>= 95%) marked PASS or FAIL. Two tables per scenario show each judge's outcomes and times.

``--compare-min-samples`` and ``--compare-tolerance`` change the compare rule (the core's
defaults otherwise), to see what a default would do; ``--scenarios`` picks scenarios by name.

Boundary: a measurement script; it asserts nothing. Bounded: about 80 s by default on the lab
machine (2 shared cores), ``--quick`` about 12 s.
"""

from __future__ import annotations

import argparse
import bisect
import math
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import requests
import yaml

from hack.bench._common import REPO, machine, percentile
from hack.lab.prometheus import PrometheusServer
from hack.lab.service import LATENCY_BUCKETS, LATENCY_METRIC, Behaviour, DemoService
from rollwise.core.analysis import (
    StepChecks,
    due_now,
    new_run,
    record,
    render_metric,
    render_sample_query,
)
from rollwise.core.burnrate import BurnRateRule, WindowCounts, evaluate_burn_rate, windows_to_query
from rollwise.core.compare import CompareRule, judge_metric
from rollwise.core.decision import Action, Decision, build_decision
from rollwise.core.observations import Measurement
from rollwise.core.runs import AnalysisRun
from rollwise.core.spec import AnalysisSpec, Metric

SERVICE = "demo"
STABLE, BASELINE, CANARY = "stable", "baseline", "canary"
ROLES = (STABLE, BASELINE, CANARY)
STEP_WEIGHTS = (5, 25)
PASS_EVERY = 30.0
EXAMPLE = REPO / "examples" / "rollout-gateway-api" / "rollout.yaml"
PROMTOOL = "promtool"

#: The stable revision: the demo service's default latency, 0.1% errors.
BASE = Behaviour(error_ratio=0.001, latency_ms=20.0, jitter_ms=10.0)
#: High variance but healthy: ten times the default jitter, on every revision.
NOISY = replace(BASE, jitter_ms=100.0)
#: Requests per second through the route (the gateway example's sizing).
RATE = 50.0
LOW_RATE = 1.0


@dataclass(frozen=True)
class Scenario:
    """One labelled case: how the stable (and baseline) and the canary answer, and the load."""

    name: str
    bad: bool
    canary: Behaviour
    stable: Behaviour = BASE
    rate: float = RATE

    @property
    def label(self) -> str:
        return "bad" if self.bad else "good"


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("healthy", False, BASE),
    Scenario("errors-2", True, replace(BASE, error_ratio=BASE.error_ratio + 0.02)),
    Scenario("errors-5", True, replace(BASE, error_ratio=BASE.error_ratio + 0.05)),
    Scenario("errors-20", True, replace(BASE, error_ratio=BASE.error_ratio + 0.20)),
    Scenario("p95-50ms", True, replace(BASE, latency_ms=BASE.latency_ms + 50)),
    Scenario("p95-300ms", True, replace(BASE, latency_ms=BASE.latency_ms + 300)),
    Scenario("noisy", False, NOISY, stable=NOISY),
    Scenario("low-traffic", False, BASE, rate=LOW_RATE),
    # The compare judge's blind spot once: an error ratio over one request per sample is
    # mostly zeros on both sides, so their medians cannot tell this canary from a healthy one.
    Scenario(
        "low-traffic-errors-20",
        True,
        replace(BASE, error_ratio=BASE.error_ratio + 0.20),
        rate=LOW_RATE,
    ),
)
ERRORS_20 = "errors-20"
LOW_TRAFFIC_ERRORS_20 = "low-traffic-errors-20"

# ------------------------------------------------------------------------------ the traffic


def weights_of(step_weight: int) -> dict[str, float]:
    """The router's split at a step: stable ``100 - 2w``, baseline ``w``, canary ``w``."""
    return {
        STABLE: (100 - 2 * step_weight) / 100,
        BASELINE: step_weight / 100,
        CANARY: step_weight / 100,
    }


def namespace_of(scenario: Scenario, seed: int, step_weight: int) -> str:
    return f"{scenario.name}-s{seed}-w{step_weight}"


@dataclass
class RoleSeries:
    """What one revision would export, cumulative at each scrape: requests by code, the
    latency histogram's buckets (``LATENCY_BUCKETS`` then +Inf), count and sum."""

    requests: dict[str, list[int]] = field(default_factory=lambda: {"200": [], "500": []})
    buckets: list[list[int]] = field(
        default_factory=lambda: [[] for _ in range(len(LATENCY_BUCKETS) + 1)]
    )
    total_seconds: list[float] = field(default_factory=list)

    @property
    def count(self) -> list[int]:
        return self.buckets[-1]


@dataclass
class Segment:
    """One step of one run, recorded: the scrape offsets (seconds from the step's start) and
    each revision's series."""

    scenario: Scenario
    seed: int
    step_weight: int
    offsets: list[float]
    roles: dict[str, RoleSeries]

    @property
    def namespace(self) -> str:
        return namespace_of(self.scenario, self.seed, self.step_weight)


def _seed(*parts: object) -> int:
    return zlib.crc32("/".join(str(p) for p in parts).encode())


def generate_segment(
    scenario: Scenario, seed: int, step_weight: int, duration: float, scrape: float
) -> Segment:
    """The step's traffic through the demo service model: ``scenario.rate`` requests per second
    at a fixed pace, split by :func:`weights_of` with exact shares, each request drawn by the
    revision's seeded :class:`DemoService`; scraped every ``scrape`` seconds from 0 to
    ``duration`` (the first scrape sees the zeroed series)."""
    namespace = namespace_of(scenario, seed, step_weight)
    behaviour = {STABLE: scenario.stable, BASELINE: scenario.stable, CANARY: scenario.canary}
    services = {
        role: DemoService(
            SERVICE,
            role,
            behaviour=behaviour[role],
            seed=_seed(scenario.name, seed, step_weight, role),
            namespace=namespace,
        )
        for role in ROLES
    }
    shares = weights_of(step_weight)
    roles = {role: RoleSeries() for role in ROLES}
    served = dict.fromkeys(ROLES, 0)
    errors = dict.fromkeys(ROLES, 0)
    in_bucket = {role: [0] * (len(LATENCY_BUCKETS) + 1) for role in ROLES}
    seconds_sum = dict.fromkeys(ROLES, 0.0)
    offsets: list[float] = []
    scrapes = int(duration // scrape)
    for index in range(scrapes + 1):
        offset = index * scrape
        arrived = math.floor(scenario.rate * offset + 1e-9)
        for role in ROLES:
            # Exact shares: by now the role has had round(arrived * share) requests.
            due = math.floor(arrived * shares[role] + 0.5)
            demo = services[role]
            for _ in range(due - served[role]):
                code, seconds = demo.draw()
                if code >= 500:
                    errors[role] += 1
                in_bucket[role][bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
                seconds_sum[role] += seconds
            served[role] = max(served[role], due)
            series = roles[role]
            series.requests["500"].append(errors[role])
            series.requests["200"].append(served[role] - errors[role])
            running = 0
            for le, n in enumerate(in_bucket[role]):
                running += n
                series.buckets[le].append(running)
            series.total_seconds.append(seconds_sum[role])
        offsets.append(offset)
    return Segment(scenario, seed, step_weight, offsets, roles)


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def write_openmetrics(segments: Sequence[Segment], start: float, out: TextIO) -> int:
    """``segments`` as one OpenMetrics exposition with timestamps (``start`` + offset), the
    metric names and labels of the demo service; returns the number of samples written."""
    written = 0
    out.write("# HELP http_requests HTTP requests served, by status code.\n")
    out.write("# TYPE http_requests counter\n")
    for segment in segments:
        for role, series in segment.roles.items():
            for code, values in series.requests.items():
                labels = _labels(
                    namespace=segment.namespace, service=SERVICE, revision=role, code=code
                )
                for offset, value in zip(segment.offsets, values, strict=True):
                    out.write(f"http_requests_total{labels} {value} {start + offset:.3f}\n")
                    written += 1
    out.write(f"# HELP {LATENCY_METRIC} Latency of HTTP requests (synthetic).\n")
    out.write(f"# TYPE {LATENCY_METRIC} histogram\n")
    bounds = [*(f"{b}" for b in LATENCY_BUCKETS), "+Inf"]
    for segment in segments:
        for role, series in segment.roles.items():
            base = {"namespace": segment.namespace, "service": SERVICE, "revision": role}
            plain = _labels(**base)
            bucket_labels = [_labels(**base, le=le) for le in bounds]
            for i, offset in enumerate(segment.offsets):
                at = f"{start + offset:.3f}"
                for le, labels in enumerate(bucket_labels):
                    out.write(f"{LATENCY_METRIC}_bucket{labels} {series.buckets[le][i]} {at}\n")
                out.write(f"{LATENCY_METRIC}_count{plain} {series.count[i]} {at}\n")
                out.write(f"{LATENCY_METRIC}_sum{plain} {series.total_seconds[i]!r} {at}\n")
                written += len(bucket_labels) + 2
    out.write("# EOF\n")
    return written


# ------------------------------------------------------------------------------- Prometheus


class Client:
    """Instant and range queries at historical times over Prometheus's HTTP API (one
    keep-alive session per thread)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()
        self._lock = threading.Lock()
        self.queries = 0

    def _get(self, path: str, params: dict[str, str]) -> Any:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False
            self._local.session = session
        answer = session.get(self.url + path, params=params, timeout=30)
        body = answer.json()
        with self._lock:
            self.queries += 1
        if body.get("status") != "success":
            raise RuntimeError(f"{params.get('query')!r}: {body.get('error', body)}")
        return body["data"]

    def instant(self, query: str, at: float) -> list[tuple[dict[str, str], float]]:
        data = self._get("/api/v1/query", {"query": query, "time": f"{at:.3f}"})
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        return [(item["metric"], float(item["value"][1])) for item in data["result"]]

    def value(self, query: str, at: float) -> float | None:
        """The single value of an instant query (None: no series)."""
        result = self.instant(query, at)
        if not result:
            return None
        if len(result) > 1:
            raise RuntimeError(f"{query!r} returned {len(result)} series")
        return result[0][1]

    def range(self, query: str, start: float, end: float, step: float) -> list[float]:
        """The values of a one-series range query (empty: no series)."""
        data = self._get(
            "/api/v1/query_range",
            {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"},
        )
        result = data["result"]
        if len(result) > 1:
            raise RuntimeError(f"{query!r} returned {len(result)} series")
        return [float(v) for _, v in result[0]["values"]] if result else []


def backfill(segments: Sequence[Segment], start: float, data_dir: Path) -> tuple[int, float]:
    """Writes ``segments`` into a TSDB at ``data_dir`` with promtool; (samples, seconds)."""
    began = time.monotonic()
    source = data_dir.parent / "series.om"
    with source.open("w") as out:
        samples = write_openmetrics(segments, start, out)
    result = subprocess.run(
        [PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"promtool failed: {result.stderr.strip()[-2000:]}")
    source.unlink()
    return samples, time.monotonic() - began


# ---------------------------------------------------------------------------------- judges


def _example_error_ratio() -> Metric:
    doc = yaml.safe_load(EXAMPLE.read_text())
    analysis = AnalysisSpec.model_validate(doc["spec"]["strategy"]["canary"]["analysis"])
    for metric in analysis.metrics:
        if metric.name == "error-ratio":
            return metric
    raise RuntimeError(f"{EXAMPLE} has no error-ratio metric")


def threshold_checks() -> StepChecks:
    """The gateway example's analysis with a p95 check written like its error check."""
    error_ratio = _example_error_ratio()
    assert error_ratio.sample_guard is not None
    p95 = Metric.model_validate(
        {
            "name": "p95-latency",
            "thresholdRange": {"max": 0.25},
            "count": 2,
            "sampleGuard": error_ratio.sample_guard.model_dump(by_alias=True),
            "provider": {
                "prometheus": {
                    "query": "histogram_quantile(0.95, sum by (le) (rate("
                    f'{LATENCY_METRIC}_bucket{{namespace="{{{{namespace}}}}",service="{SERVICE}",'
                    'revision="{{canaryRevision}}"}[1m])))'
                }
            },
        }
    )
    return StepChecks(
        metrics=(error_ratio, p95),
        interval="30s",
        failure_limit=1,
        inconclusive_limit=0,
        consecutive_error_limit=4,
    )


def _selector(namespace: str, revision: str, extra: str = "") -> str:
    return f'namespace="{namespace}",service="{SERVICE}",revision="{revision}"{extra}'


def compare_queries(namespace: str, revision: str, window: str) -> dict[str, str]:
    """The compare metrics' expressions for one revision: error ratio and p95 latency."""
    sel = _selector(namespace, revision)
    errors = _selector(namespace, revision, ',code=~"5.."')
    return {
        "error-ratio": f"sum(rate(http_requests_total{{{errors}}}[{window}])) / "
        f"sum(rate(http_requests_total{{{sel}}}[{window}]))",
        "p95-latency": "histogram_quantile(0.95, sum by (le) "
        f"(rate({LATENCY_METRIC}_bucket{{{sel}}}[{window}])))",
    }


AVAILABILITY = BurnRateRule(objective=0.999)
LATENCY_SLO = BurnRateRule(objective=0.99)
LATENCY_SLO_BOUND = "0.25"


@dataclass(frozen=True)
class StepView:
    """What a judge needs of one step: its segment's namespace, where it starts in Prometheus
    time, and how long the canary served before it."""

    namespace: str
    start: float
    before: float


class Judge(ABC):
    """One way of judging a canary step: a fresh state per step, a decision per pass."""

    name = ""

    def begin(self, step: StepView) -> None:
        self.step = step

    @abstractmethod
    def decide(self, client: Client, at: float) -> Decision:
        """The decision on the current step at Prometheus time ``at``."""

    def _now(self, at: float) -> datetime:
        return datetime.fromtimestamp(at, UTC)

    def _observed(self, at: float) -> timedelta:
        return timedelta(seconds=self.step.before + at - self.step.start)


class ThresholdJudge(Judge):
    name = "thresholds"

    def __init__(self, checks: StepChecks) -> None:
        self.checks = checks

    def begin(self, step: StepView) -> None:
        super().begin(step)
        self.run: AnalysisRun = new_run(0, CANARY, self.checks, self._now(step.start))

    def decide(self, client: Client, at: float) -> Decision:
        now = self._now(at)
        context = {
            "namespace": self.step.namespace,
            "name": SERVICE,
            "canaryRevision": CANARY,
            "stableRevision": STABLE,
            "baselineRevision": STABLE,
            "canaryService": f"{SERVICE}-canary",
            "stableService": f"{SERVICE}-stable",
        }
        for due in due_now(self.checks, self.run, now):
            metric = due.metric
            value = client.value(render_metric(metric, context), at)
            guard = render_sample_query(metric, context)
            samples = client.value(guard, at) if guard is not None else None
            runs = {m.name: m for m in self.run.metrics}
            done = record(
                self.checks, metric, runs[metric.name], Measurement(value, now, samples=samples)
            )
            runs[metric.name] = done.run
            self.run = self.run.model_copy(
                update={"metrics": [runs[m.name] for m in self.checks.metrics]}
            )
        return build_decision(now=now, observed=self._observed(at), thresholds=self.run.metrics)


class CompareJudge(Judge):
    def __init__(self, control: str, step: float, rule: CompareRule | None = None) -> None:
        self.control = control
        self.sample_step = step
        self.rule = rule or CompareRule()
        self.name = f"compare/{control}"

    def decide(self, client: Client, at: float) -> Decision:
        window = f"{self.sample_step:g}s"
        first = self.step.start + self.sample_step
        results = []
        canary = compare_queries(self.step.namespace, CANARY, window)
        control = compare_queries(self.step.namespace, self.control, window)
        for metric, query in canary.items():
            canary_samples = client.range(query, first, at, self.sample_step) if at >= first else []
            control_samples = (
                client.range(control[metric], first, at, self.sample_step) if at >= first else []
            )
            results.append(judge_metric(canary_samples, control_samples, self.rule, metric=metric))
        return build_decision(now=self._now(at), observed=self._observed(at), compares=results)


class BurnRateJudge(Judge):
    name = "burn-rate"

    def decide(self, client: Client, at: float) -> Decision:
        now = self._now(at)
        started = self._now(self.step.start)
        sel = _selector(self.step.namespace, CANARY)
        results = []
        for metric, rule in (("availability", AVAILABILITY), ("latency", LATENCY_SLO)):
            counts = []
            answers: dict[str, tuple[float | None, float | None]] = {}
            for window in windows_to_query(rule, now, started):
                if window.range not in answers:
                    answers[window.range] = self._count(client, metric, sel, window.range, at)
                bad, total = answers[window.range]
                counts.append(WindowCounts(query=window, total=total, bad=bad))
            results.append(evaluate_burn_rate(rule, counts, metric=metric))
        return build_decision(now=now, observed=self._observed(at), burn_rates=results)

    @staticmethod
    def _count(
        client: Client, metric: str, sel: str, window: str, at: float
    ) -> tuple[float | None, float | None]:
        """(bad, total) of the canary over ``window`` ending at ``at``."""
        if metric == "availability":
            rows = client.instant(
                f"sum by (code) (increase(http_requests_total{{{sel}}}[{window}]))", at
            )
            if not rows:
                return None, None
            total = sum(v for _, v in rows)
            bad = sum(v for labels, v in rows if labels.get("code", "").startswith("5"))
            return bad, total
        rows = client.instant(
            f"sum by (le) (increase({LATENCY_METRIC}_bucket"
            f'{{{sel},le=~"{LATENCY_SLO_BOUND}|\\\\+Inf"}}[{window}]))',
            at,
        )
        by_le = {labels.get("le"): v for labels, v in rows}
        if LATENCY_SLO_BOUND not in by_le or "+Inf" not in by_le:
            return None, None
        return by_le["+Inf"] - by_le[LATENCY_SLO_BOUND], by_le["+Inf"]


def judges(compare_step: float, compare_rule: CompareRule | None = None) -> list[Judge]:
    return [
        ThresholdJudge(threshold_checks()),
        CompareJudge(STABLE, compare_step, compare_rule),
        CompareJudge(BASELINE, compare_step, compare_rule),
        BurnRateJudge(),
    ]


# ---------------------------------------------------------------------------------- a run


PROMOTED, ROLLED_BACK, HELD = "promoted", "rolled back", "held"


@dataclass(frozen=True)
class Outcome:
    """How one judge ended one run: the outcome, the step it ended at (index into
    :data:`STEP_WEIGHTS`), and each decided step's time to decision in seconds."""

    judge: str
    scenario: str
    bad: bool
    seed: int
    result: str
    step: int
    decision_times: tuple[float, ...]
    message: str = ""


def walk(
    judge: Judge,
    client: Client,
    scenario: Scenario,
    seed: int,
    *,
    starts: Sequence[float],
    step_seconds: float,
) -> Outcome:
    """Runs ``judge`` pass by pass through the steps of one run."""
    before = 0.0
    times: list[float] = []
    decision: Decision | None = None
    for index, weight in enumerate(STEP_WEIGHTS):
        start = starts[index]
        judge.begin(StepView(namespace_of(scenario, seed, weight), start, before))
        elapsed = PASS_EVERY
        action = Action.HOLD
        while elapsed <= step_seconds + 1e-6:
            decision = judge.decide(client, start + elapsed)
            action = decision.action
            if action is not Action.HOLD:
                break
            elapsed += PASS_EVERY
        message = decision.message if decision is not None else ""
        if action is Action.HOLD:
            return Outcome(judge.name, scenario.name, scenario.bad, seed, HELD, index, (), message)
        times.append(elapsed)
        if action is Action.ROLLBACK:
            return Outcome(
                judge.name,
                scenario.name,
                scenario.bad,
                seed,
                ROLLED_BACK,
                index,
                tuple(times),
                message,
            )
        before += elapsed
    return Outcome(
        judge.name,
        scenario.name,
        scenario.bad,
        seed,
        PROMOTED,
        len(STEP_WEIGHTS) - 1,
        tuple(times),
        decision.message if decision is not None else "",
    )


# ------------------------------------------------------------------------------- the table


GOAL_ACCURACY = 0.90
GOAL_FALSE_POSITIVES = 0.05
GOAL_SECONDS = 300.0
GOAL_CAUGHT = 0.95


@dataclass(frozen=True)
class Row:
    judge: str
    runs: int
    accuracy: float
    false_positives: float
    false_negatives: float
    held: float
    median_seconds: float
    p95_seconds: float
    caught_at_5: float
    low_traffic_caught: float = float("nan")

    def goals(self) -> dict[str, bool]:
        return {
            "accuracy": self.accuracy > GOAL_ACCURACY,
            "fp": self.false_positives < GOAL_FALSE_POSITIVES,
            "time": not math.isnan(self.p95_seconds) and self.p95_seconds < GOAL_SECONDS,
            "low-traffic 20%": not math.isnan(self.low_traffic_caught)
            and self.low_traffic_caught >= GOAL_CAUGHT,
            "20% at 5%": not math.isnan(self.caught_at_5) and self.caught_at_5 >= GOAL_CAUGHT,
        }


def _share(part: int, whole: int) -> float:
    return part / whole if whole else float("nan")


def score(outcomes: Iterable[Outcome]) -> list[Row]:
    """One row per judge (in order of first appearance) from the runs' outcomes."""
    by_judge: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        by_judge.setdefault(outcome.judge, []).append(outcome)
    rows = []
    for name, runs in by_judge.items():
        good = [o for o in runs if not o.bad]
        bad = [o for o in runs if o.bad]
        right = sum(1 for o in runs if o.result == (ROLLED_BACK if o.bad else PROMOTED))
        times = [t for o in runs for t in o.decision_times]
        worst = [o for o in runs if o.scenario == ERRORS_20]
        sparse = [o for o in runs if o.scenario == LOW_TRAFFIC_ERRORS_20]
        rows.append(
            Row(
                judge=name,
                runs=len(runs),
                accuracy=_share(right, len(runs)),
                false_positives=_share(sum(o.result == ROLLED_BACK for o in good), len(good)),
                false_negatives=_share(sum(o.result == PROMOTED for o in bad), len(bad)),
                held=_share(sum(o.result == HELD for o in runs), len(runs)),
                median_seconds=statistics.median(times) if times else float("nan"),
                p95_seconds=percentile(times, 0.95),
                caught_at_5=_share(
                    sum(o.result == ROLLED_BACK and o.step == 0 for o in worst), len(worst)
                ),
                low_traffic_caught=_share(
                    sum(o.result == ROLLED_BACK for o in sparse), len(sparse)
                ),
            )
        )
    return rows


def _pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value * 100:.1f}%"


def _secs(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.0f}s"


def table(rows: Sequence[Row]) -> str:
    """The judges' figures and their goals, as a Markdown table."""
    lines = [
        "| judge | runs | accuracy | false pos. | false neg. | held | time median | "
        "time p95 | low-traffic 20% rolled back | 20% caught at 5% |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        goals = row.goals()

        def mark(key: str, shown: str, goals: dict[str, bool] = goals) -> str:
            return f"{shown} {'PASS' if goals[key] else 'FAIL'}"

        lines.append(
            f"| {row.judge} | {row.runs} | {mark('accuracy', _pct(row.accuracy))} | "
            f"{mark('fp', _pct(row.false_positives))} | {_pct(row.false_negatives)} | "
            f"{_pct(row.held)} | {_secs(row.median_seconds)} | "
            f"{mark('time', _secs(row.p95_seconds))} | "
            f"{mark('low-traffic 20%', _pct(row.low_traffic_caught))} | "
            f"{mark('20% at 5%', _pct(row.caught_at_5))} |"
        )
    return "\n".join(lines)


def scenario_table(outcomes: Sequence[Outcome]) -> str:
    """Outcomes per scenario and judge: promoted / rolled back / held counts."""
    judges_seen = list(dict.fromkeys(o.judge for o in outcomes))
    scenarios = list(dict.fromkeys(o.scenario for o in outcomes))
    lines = [
        "| scenario | label | " + " | ".join(judges_seen) + " |",
        "|---|---|" + "---|" * len(judges_seen),
    ]
    for name in scenarios:
        cells = []
        label = ""
        for judge in judges_seen:
            mine = [o for o in outcomes if o.scenario == name and o.judge == judge]
            label = "bad" if mine and mine[0].bad else "good"
            counts = [sum(o.result == r for o in mine) for r in (PROMOTED, ROLLED_BACK, HELD)]
            at_5 = sum(o.result != PROMOTED and o.step == 0 for o in mine)
            cells.append(f"{counts[0]}/{counts[1]}/{counts[2]} ({at_5} at 5%)")
        lines.append(f"| {name} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def time_table(outcomes: Sequence[Outcome]) -> str:
    """Time to decision per scenario and judge: median and max over the decided steps."""
    judges_seen = list(dict.fromkeys(o.judge for o in outcomes))
    scenarios = list(dict.fromkeys(o.scenario for o in outcomes))
    lines = [
        "| scenario | " + " | ".join(judges_seen) + " |",
        "|---|" + "---|" * len(judges_seen),
    ]
    for name in scenarios:
        cells = []
        for judge in judges_seen:
            times = [
                t
                for o in outcomes
                if o.scenario == name and o.judge == judge
                for t in o.decision_times
            ]
            cells.append(
                f"{_secs(statistics.median(times))} / {_secs(max(times))}" if times else "n/a"
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ main


@dataclass(frozen=True)
class Settings:
    seeds: int
    step_seconds: float
    scrape: float
    compare_step: float
    scenarios: tuple[Scenario, ...]
    workers: int
    compare_rule: CompareRule = field(default_factory=CompareRule)


def run(settings: Settings, workdir: Path, say: Callable[[str], None] = print) -> list[Outcome]:
    """Generates, backfills, serves and judges every run; the outcomes of every judge."""
    began = time.monotonic()
    runs = [(s, seed) for s in settings.scenarios for seed in range(settings.seeds)]
    segments = [
        generate_segment(s, seed, w, settings.step_seconds, settings.scrape)
        for s, seed in runs
        for w in STEP_WEIGHTS
    ]
    generated = time.monotonic() - began
    # Whole minutes, two hours back: inside the server's retention, before its head block.
    start = math.floor((time.time() - 2 * 3600 - settings.step_seconds) / 60) * 60
    data_dir = workdir / "data"
    samples, loaded = backfill(segments, start, data_dir)
    say(
        f"traffic: {len(segments)} step segments of {settings.step_seconds:g}s "
        f"({len(runs)} runs), drawn in {generated:.1f}s; {samples} samples backfilled with "
        f"promtool in {loaded:.1f}s"
    )
    outcomes: list[Outcome] = []
    with PrometheusServer(data_dir=workdir) as server:
        client = Client(server.url)
        judged = time.monotonic()

        def one(item: tuple[Scenario, int]) -> list[Outcome]:
            scenario, seed = item
            starts = [float(start)] * len(STEP_WEIGHTS)
            return [
                walk(
                    judge, client, scenario, seed, starts=starts, step_seconds=settings.step_seconds
                )
                for judge in judges(settings.compare_step, settings.compare_rule)
            ]

        with ThreadPoolExecutor(max_workers=settings.workers) as pool:
            for result in pool.map(one, runs):
                outcomes.extend(result)
        say(
            f"judged: {len(runs)} runs x 4 judges, "
            f"{client.queries} PromQL queries in {time.monotonic() - judged:.1f}s"
        )
    return outcomes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hack.bench.judge",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seeds", type=int, default=10, help="runs per scenario")
    parser.add_argument("--step-minutes", type=float, default=10.0, help="longest a step holds")
    parser.add_argument("--scrape", type=float, default=5.0, help="scrape interval, seconds")
    parser.add_argument(
        "--compare-step", type=float, default=10.0, help="compare sample spacing, seconds"
    )
    parser.add_argument(
        "--compare-min-samples",
        type=int,
        default=CompareRule().min_samples,
        help="the compare rule's minSamples (default: the core's)",
    )
    parser.add_argument(
        "--compare-tolerance",
        type=float,
        default=CompareRule().tolerance,
        help="the compare rule's tolerance (default: the core's)",
    )
    parser.add_argument(
        "--scenarios",
        default="",
        help="comma-separated names (default: all: " + ", ".join(s.name for s in SCENARIOS) + ")",
    )
    parser.add_argument("--workers", type=int, default=2, help="runs judged in parallel")
    parser.add_argument("--quick", action="store_true", help="2 seeds, 5-minute steps")
    parser.add_argument("--workdir", type=Path, default=None, help="kept when given")
    args = parser.parse_args(argv)
    chosen = SCENARIOS
    if args.scenarios:
        names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
        known = {s.name: s for s in SCENARIOS}
        unknown = [n for n in names if n not in known]
        if unknown:
            parser.error(f"unknown scenarios {unknown}; known: {', '.join(known)}")
        chosen = tuple(known[n] for n in names)
    if args.compare_min_samples < 5 or args.compare_tolerance < 0:
        parser.error("--compare-min-samples must be at least 5, --compare-tolerance >= 0")
    if args.seeds < 1 or args.step_minutes <= 0 or args.scrape <= 0 or args.compare_step <= 0:
        parser.error("--seeds, --step-minutes, --scrape and --compare-step must be positive")
    settings = Settings(
        seeds=2 if args.quick else args.seeds,
        step_seconds=(5.0 if args.quick else args.step_minutes) * 60,
        scrape=args.scrape,
        compare_step=args.compare_step,
        scenarios=chosen,
        workers=max(1, args.workers),
        compare_rule=CompareRule(
            min_samples=args.compare_min_samples, tolerance=args.compare_tolerance
        ),
    )
    print("judge benchmark: synthetic traffic (no real users), real PromQL on a real Prometheus")
    print("and the core's real maths")
    print(machine())
    print(
        f"settings: {settings.seeds} seeds x {len(chosen)} scenarios, steps "
        f"{'/'.join(f'{w}%' for w in STEP_WEIGHTS)} of at most {settings.step_seconds:g}s each, "
        f"a pass every {PASS_EVERY:g}s, scrape every {settings.scrape:g}s, compare samples "
        f"every {settings.compare_step:g}s (minSamples {settings.compare_rule.min_samples}, "
        f"tolerance {settings.compare_rule.tolerance:g}), {RATE:g} req/s ({LOW_RATE:g} for "
        "low-traffic)"
    )
    began = time.monotonic()
    own = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="judge-bench-")) if own else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        outcomes = run(settings, workdir)
    finally:
        if own:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(table(score(outcomes)))
    print()
    print("outcomes per scenario: promoted/rolled back/held (ended at the 5% step)")
    print(scenario_table(outcomes))
    print()
    print("time to decision per scenario: median / max over the decided steps")
    print(time_table(outcomes))
    print()
    print(
        f"goals: accuracy > {GOAL_ACCURACY:.0%}, false positives < {GOAL_FALSE_POSITIVES:.0%}, "
        f"p95 time to decision < {GOAL_SECONDS / 60:g} min, 20%-errors canary rolled back at "
        f"the 5% step >= {GOAL_CAUGHT:.0%}, 20%-errors canary at 1 request/s rolled back >= "
        f"{GOAL_CAUGHT:.0%}; total {time.monotonic() - began:.0f}s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
