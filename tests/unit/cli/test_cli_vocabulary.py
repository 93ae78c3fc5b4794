"""One vocabulary for a measurement without a usable number, wherever it is shown: the
measurement's own message (``= no data``, ``= nan``, ``query failed``), the status message's
"(last ...)" summary the operator writes, and the plugin's VALUE column agree on ``no data``,
``nan`` (``inf``) and ``error``."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rollwise.cli.render import last_value, render_rollout
from rollwise.core.analysis import checks_for_step, measured_text, new_run, record
from rollwise.core.observations import Measurement, RevisionState
from rollwise.core.rollout.canary import decide
from rollwise.core.runs import MeasurementRecord, MetricRun, Verdict
from tests.unit.core.rollout_builders import R1, R2, V2, Cluster, metric, obs, spec_of

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

#: Room for a few measurements without a number before the step stops inconclusive.
ANALYSIS = {"interval": "1m", "inconclusiveLimit": 2, "metrics": [metric(count=3)]}

CASES = [
    pytest.param(Measurement(None, T0), "no data", "= no data", id="no-data"),
    pytest.param(Measurement(math.nan, T0), "nan", "= nan", id="nan"),
    pytest.param(Measurement(math.inf, T0), "inf", "= inf", id="infinity"),
    pytest.param(Measurement(None, T0, error="timeout"), "error", "query failed", id="error"),
    pytest.param(Measurement(0.0123, T0), "0.012", "= 0.012", id="a-number"),
]


def _spec() -> Any:
    return spec_of(
        image_template=V2,
        steps=[{"setWeight": 10}, {"setWeight": 100}],
        analysis=ANALYSIS,
    )


@pytest.mark.parametrize(("measurement", "word", "said"), CASES)
def test_the_record_keeps_the_word_its_message_used(
    measurement: Measurement, word: str, said: str
) -> None:
    spec = _spec()
    checks = checks_for_step(spec, 0)
    assert checks is not None
    recorded = record(checks, checks.metrics[0], MetricRun(name="error-ratio"), measurement)
    kept = recorded.run.measurements[-1]
    assert said in kept.message
    assert measured_text(kept) == word
    assert last_value(recorded.run) == word
    # What the status stores is JSON: a value that is not a finite number is not kept as one.
    wire = kept.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert "value" not in wire or math.isfinite(wire["value"])
    assert MeasurementRecord.model_validate(wire) == kept


@pytest.mark.parametrize(("measurement", "word", "said"), CASES)
def test_the_status_summary_and_the_plugin_say_the_same_word(
    measurement: Measurement, word: str, said: str
) -> None:
    """The operator's "analysis running (error-ratio 1/3 (last WORD))" and the plugin's VALUE
    column, for a canary measured once."""
    spec = _spec()
    cluster = Cluster()
    cluster.revisions = {R1: RevisionState(4, 4, 4, 4), R2: RevisionState(1, 1, 1, 1)}
    cluster.weight = 10
    status = decide(spec, None, obs(V2), T0).status
    checks = checks_for_step(spec, 0)
    assert checks is not None
    status = status.model_copy(
        update={
            "stable_revision": R1,
            "canary_revision": R2,
            "current_step_index": 0,
            "canary_weight": 10,
            "analysis": new_run(0, R2, checks, T0),
        }
    )
    later = T0 + timedelta(minutes=1)
    taken = Measurement(measurement.value, later, error=measurement.error)
    decision = decide(spec, status, cluster.observe(V2, measurements={"error-ratio": taken}), later)
    message = decision.status.message
    assert f"(last {word})" in message, message
    rollout = {
        "metadata": {"name": "web", "namespace": "shop", "generation": 1},
        "spec": {
            "replicas": 4,
            "selector": {"matchLabels": {"app": "web"}},
            "template": V2,
            "strategy": {
                "canary": {
                    "stableService": "web-stable",
                    "canaryService": "web-canary",
                    "steps": [{"setWeight": 10}, {"setWeight": 100}],
                    "analysis": ANALYSIS,
                }
            },
        },
        "status": decision.status.to_wire(),
    }
    text = render_rollout(rollout, [], later)
    row = next(line for line in text.splitlines() if line.startswith("  error-ratio "))
    assert row.split("   ")[1].strip() == word, text


def test_an_old_record_without_the_field_still_reads() -> None:
    """A measurement an older operator recorded (no ``nonFinite``) reads as before."""
    old = MeasurementRecord.model_validate(
        {"verdict": "Inconclusive", "at": "2026-01-01T00:00:00Z", "message": "x = nan"}
    )
    assert measured_text(old) == "no data"
    assert old.verdict is Verdict.INCONCLUSIVE
