"""``hack/bench/judge.py`` against the lab's real Prometheus: backfilled series read back as
written, and ``--quick`` run end to end (about 15 s; the benchmark itself stays out of the
suite, its figures are in docs/benchmarks.md)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hack.bench.judge import (
    CANARY,
    LATENCY_METRIC,
    SCENARIOS,
    Client,
    backfill,
    generate_segment,
    main,
)
from hack.lab.prometheus import PrometheusServer

pytestmark = pytest.mark.lab

SCENARIO = {s.name: s for s in SCENARIOS}


def test_backfilled_series_answer_instant_and_range_queries_at_their_time(
    tmp_path: Path,
) -> None:
    segment = generate_segment(
        SCENARIO["errors-20"], seed=2, step_weight=25, duration=120, scrape=5
    )
    start = float(int(time.time()) // 60 * 60 - 3 * 3600)
    samples, _ = backfill([segment], start, tmp_path / "data")
    assert samples == 3 * 25 * 16
    canary = segment.roles[CANARY]
    sel = f'namespace="{segment.namespace}",revision="{CANARY}"'
    with PrometheusServer(data_dir=tmp_path) as server:
        client = Client(server.url)
        at_end = client.instant(f"http_requests_total{{{sel}}}", start + 120)
        by_code = {labels["code"]: value for labels, value in at_end}
        assert by_code == {"200": canary.requests["200"][-1], "500": canary.requests["500"][-1]}
        # Halfway, the counters read what they were then, not at the end.
        assert client.value(f'http_requests_total{{{sel},code="500"}}', start + 60) == float(
            canary.requests["500"][12]
        )
        # Ten-second rates over the first minute: one sample per step.
        values = client.range(
            f"sum(rate({LATENCY_METRIC}_count{{{sel}}}[10s]))", start + 10, start + 60, 10
        )
        assert len(values) == 6
        # 25% of 50 requests/s, exact shares.
        assert all(abs(v - 12.5) < 0.2 for v in values)


def test_quick_run_judges_every_scenario_on_real_prometheus(
    capsys: pytest.CaptureFixture[str],
) -> None:
    began = time.monotonic()
    assert main(["--quick", "--workers", "1"]) == 0
    took = time.monotonic() - began
    out = capsys.readouterr().out
    assert took < 60, f"--quick took {took:.0f}s"
    assert "synthetic traffic (no real users), real PromQL on a real Prometheus" in out
    rows = {
        line.split("|")[1].strip(): line
        for line in out.splitlines()
        if line.startswith("| ") and "runs" not in line
    }
    for judge in ("thresholds", "compare/stable", "compare/baseline", "burn-rate"):
        # 18 runs: 9 scenarios x 2 seeds; the 20%-errors canary is caught at 5% by all.
        assert rows[judge].split("|")[2].strip() == "18"
        assert rows[judge].rstrip(" |").endswith("100.0% PASS")
    section = out.split("outcomes per scenario")[1].split("\n\n")[0]
    per_scenario = {
        line.split("|")[1].strip(): line for line in section.splitlines() if line.startswith("| ")
    }
    assert len(per_scenario) == 1 + len(SCENARIOS)  # the header and one row each
    # Two seeds, promoted/rolled back/held by each of the four judges.
    assert per_scenario["healthy"].count("2/0/0 (0 at 5%)") == 4
    assert per_scenario["errors-20"].count("0/2/0 (2 at 5%)") == 4
