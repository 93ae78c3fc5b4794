"""Analysis runs as status keeps them: verdicts, measurements, per-metric counters and runs.

The kernel's record of a canary analysis, shared by both kinds (a Rollout's step analysis and a
ModelRelease's canary analysis are the same run). Frozen pydantic models, camelCase on the
wire (see :mod:`rollwise.core.status_model`).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from rollwise.core.status_model import StatusModel, Time


class Verdict(StrEnum):
    """Three-valued outcome of a measurement, a metric or a step's analysis."""

    PASS = "Pass"
    FAIL = "Fail"
    INCONCLUSIVE = "Inconclusive"


class CompareEvidence(StatusModel):
    """What a ``compare`` measurement saw: the test's p-value and method, the relative effect
    on its basis (``median``, or ``mean`` when more than half of each side's samples are one
    value, which pins both medians to it), each side's median, mean and
    usable sample count. ``control`` names what the canary was compared with (``stable`` or
    ``baseline``). Numbers are None when too few samples left nothing to compute."""

    p_value: float | None = None
    effect_size: float | None = None
    effect_basis: str = "median"
    canary_median: float | None = None
    control_median: float | None = None
    canary_mean: float | None = None
    control_mean: float | None = None
    canary_samples: int = 0
    control_samples: int = 0
    control: str = "stable"
    method: str = ""


class BurnWindowRecord(StatusModel):
    """One window of an ``sloBurnRate`` measurement: the rule's window, the burn rate over it
    (None: no data), the events it counted (the total query's answer; fewer than
    ``minEvents`` and the burn is not judged), the time actually observed, and whether that is
    shorter than the window (a canary younger than it)."""

    window: str
    burn_rate: float | None = None
    events: float | None = None
    observed: str = ""
    shortened: bool = False


class BurnPairRecord(StatusModel):
    """One window pair of an ``sloBurnRate`` measurement: its windows, the burn rate both must
    exceed, its severity and its state (Firing, Clear or Unknown)."""

    long: str
    short: str
    threshold: float
    severity: str
    state: str


class BurnRateEvidence(StatusModel):
    """What an ``sloBurnRate`` measurement saw, window by window and pair by pair."""

    windows: list[BurnWindowRecord] = Field(default_factory=list)
    pairs: list[BurnPairRecord] = Field(default_factory=list)


class MeasurementRecord(StatusModel):
    """One measurement kept in status (the last few per metric), with the evidence of a
    ``compare`` or ``sloBurnRate`` metric."""

    value: float | None = None
    verdict: Verdict
    at: Time
    message: str = ""
    error: bool = False
    non_finite: str | None = None
    """What the query returned when it was not a finite number (``nan``, ``inf``, ``-inf``);
    ``value`` is then absent (JSON has no such numbers)."""
    samples: float | None = None
    """The metric's ``sampleGuard`` count for this measurement, when it has a guard and the
    count was a finite number (what ``kubectl rollwise explain`` shows beside the value)."""
    compare: CompareEvidence | None = None
    burn_rate: BurnRateEvidence | None = None


#: How many measurements per metric the status keeps (the counters keep the totals).
KEPT_MEASUREMENTS = 10


class MetricRun(StatusModel):
    """Counters and recent measurements of one metric within one step's analysis."""

    name: str
    measurements: list[MeasurementRecord] = Field(default_factory=list)
    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    error: int = 0
    consecutive_errors: int = 0
    verdict: Verdict | None = None
    message: str = ""

    @property
    def taken(self) -> int:
        """Measurements that count towards ``count`` (provider errors do not)."""
        return self.successful + self.failed + self.inconclusive

    @property
    def last_at(self) -> datetime | None:
        return self.measurements[-1].at if self.measurements else None


class AnalysisRun(StatusModel):
    """The analysis of one step of one canary revision."""

    step_index: int
    revision: str
    started_at: Time
    metrics: list[MetricRun] = Field(default_factory=list)
    verdict: Verdict | None = None
    message: str = ""

    def metric(self, name: str) -> MetricRun | None:
        for run in self.metrics:
            if run.name == name:
                return run
        return None
