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


class MeasurementRecord(StatusModel):
    """One measurement kept in status (the last few per metric)."""

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
