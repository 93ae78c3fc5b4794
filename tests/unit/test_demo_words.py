"""The demo says a measurement without a number in the operator's words: its ``measure``
lines agree with the plugin's VALUE column and the status messages' "(last ...)" summaries
(``no data``, ``nan``, ``error``), never "no data" for a failed query or a NaN."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from hack.demo import Demo, Snapshot, Style

AT = "2026-01-01T12:00:00Z"


class _NoEvents:
    def list_namespaced_event(self, *args: Any, **kwargs: Any) -> Any:
        return SimpleNamespace(items=[])


@pytest.mark.parametrize(
    ("measurement", "word"),
    [
        pytest.param({"verdict": "Inconclusive", "at": AT}, "no data", id="no-data"),
        pytest.param({"verdict": "Inconclusive", "at": AT, "nonFinite": "nan"}, "nan", id="nan"),
        pytest.param(
            {"verdict": "Inconclusive", "at": AT, "error": True, "message": "timeout"},
            "error",
            id="error",
        ),
        pytest.param({"verdict": "Pass", "at": AT, "value": 0.0123}, "0.012", id="a-number"),
    ],
)
def test_a_measure_line_uses_the_operators_word(measurement: dict[str, Any], word: str) -> None:
    out = io.StringIO()
    demo = Demo(out, Style(False), workdir=Path("."))
    demo.core = _NoEvents()
    demo.steps = 3
    status = {
        "phase": "Progressing",
        "currentStepIndex": 0,
        "canaryRevision": "r2",
        "analysis": {
            "revision": "r2",
            "stepIndex": 0,
            "metrics": [{"name": "error-ratio", "measurements": [measurement]}],
        },
    }
    demo.report(Snapshot({"status": status}, 0, datetime.now(UTC)))
    [line] = [row for row in out.getvalue().splitlines() if "measure" in row]
    assert f" {word} " in line, line
