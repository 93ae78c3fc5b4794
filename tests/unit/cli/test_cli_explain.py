"""``kubectl rollwise explain``: the decision the core built (real compare and burn-rate
results through :func:`rollwise.core.decision.build_decision`, stored in its wire form) and
the analysis evidence behind it, as text and as JSON; no decision yet is said and exits 0; an
unknown object is the usual one-line error."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import Any

import pytest

from rollwise.cli.colour import COLOUR, strip, visible_len
from rollwise.cli.explain import explain_document, render_explain
from rollwise.cli.main import run
from rollwise.cli.text import ASCII, UNICODE
from rollwise.core.compare import CompareRule, judge_metric
from rollwise.core.decision import Mode, build_decision
from rollwise.core.runs import AnalysisRun, MeasurementRecord, MetricRun, Verdict
from tests.unit.cli import cli_builders as b
from tests.unit.cli import decision_builders as d
from tests.unit.cli import release_builders as r
from tests.unit.cli.fake_cluster import FakeCluster

NOW = b.NOW
GUARD = {"minSamples": 50, "query": "sum(increase(requests_total[1m]))"}


def guarded(obj: dict[str, Any]) -> dict[str, Any]:
    """The Rollout with a sampleGuard on its error-ratio metric."""
    obj["spec"]["strategy"]["canary"]["analysis"]["metrics"][0]["sampleGuard"] = dict(GUARD)
    return obj


def judged_rollout(
    mode: Mode = Mode.ADVISORY, canary_samples: list[float] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A Rollout at step 2/5 (25%) with the decision and the analysis the operator wrote;
    returns it and the decision's wire form."""
    decision, runs, compare, burn = d.evidence(NOW, mode=mode, canary_samples=canary_samples)
    obj = guarded(b.rollout(b.canary_at_step_2()))
    wire = d.decision_wire(decision)
    obj["status"]["decision"] = wire
    obj["status"]["analysis"] = d.analysis_wire(
        NOW, revision=b.CANARY, step_index=1, runs=runs, compare=compare, burn=burn
    )
    return obj, wire


def run_with(cluster: FakeCluster, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), out, err, connector=lambda *_: cluster, environ={})
    return code, out.getvalue(), err.getvalue()


def section(text: str, title: str) -> list[list[str]]:
    """The rows of the table under ``title``, split on runs of 2+ spaces."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(title))
    indent = len(lines[start]) - len(lines[start].lstrip())
    rows: list[list[str]] = []
    for line in lines[start + 1 :]:
        if not line.strip() or len(line) - len(line.lstrip()) <= indent:
            break
        rows.append([cell for cell in line.strip().split("   ") if cell])
    return [[cell.strip() for cell in row] for row in rows]


# ------------------------------------------------------------------------------ the text view


def test_advisory_decision_with_its_reasons_actions_and_evidence() -> None:
    obj, _ = judged_rollout()
    text = render_explain(obj, "rollouts", NOW)
    lines = text.splitlines()
    assert lines[:6] == [
        "Rollout:     shop/web",
        f"Canary:      {b.CANARY} at step 2/5, 25% of traffic",
        "Decision:    HOLD (advisory mode: auto would ROLLBACK), confidence high",
        "Score:       100 (compare metrics)",
        "Decided:     0s ago (2026-11-22T12:00:00Z)",
        "Message:     hold (advisory mode; auto would roll back at high confidence): SLO "
        "checkout-availability (objective 99.9%): critical pair 1h/5m: burn 15.00 over 1h and "
        "20.00 over 5m, both above 14.4; at this rate the whole budget lasts 48h",
    ]
    reasons = section(text, "Reasons:")
    assert reasons[0] == ["SEVERITY", "CODE", "METRIC", "OBSERVED", "THRESHOLD", "MESSAGE"]
    assert [row[:5] for row in reasons[1:3]] == [
        ["critical", "SloBurnCritical", "checkout-availability", "15", "14.4"],
        ["warning", "SloBurnWarning", "checkout-availability", "6.25", "6"],
    ]
    assert [row[1] for row in reasons[3:]] == [
        "ThresholdsPassed",
        "ScorePassed",
        "SloWindowShortened",
        "AdvisoryMode",
    ]
    actions = section(text, "Required actions:")
    assert [row[:4] for row in actions[1:]] == [
        ["high", "abort-by-hand", "in 2d (2026-11-24T12:00:00Z)", "human"],
        ["high", "investigate/checkout-availability", "in 2d (2026-11-24T12:00:00Z)", "human"],
    ]
    assert actions[1][4].startswith("auto mode would roll back: check the reasons")


def test_evidence_of_each_kind_of_metric() -> None:
    obj, _ = judged_rollout()
    text = render_explain(obj, "rollouts", NOW)
    assert f"Evidence: analysis of step 2/5, revision {b.CANARY}, started 4m ago: RUNNING" in text
    assert section(text, "Threshold metrics:") == [
        ["METRIC", "LAST", "PASS IF", "RESULT", "SAMPLES"],
        ["error-ratio", "0.011", "< 0.05; >= 50 samples", "PASS (3/3)", "160 (min 50)"],
        ["p99-latency", "0.228", "<= 0.500", "PASS (2/2)", "-"],
    ]
    compare = section(text, "Compare metrics")
    assert compare[1] == [
        "latency-vs-baseline",
        "baseline",
        "6/6",
        "0.217",
        "0.215",
        "+1.2%",
        "0.436",
        "asymptotic",
        "PASS",
    ]
    lines = text.splitlines()
    slo = lines.index("    checkout-availability: FAIL")
    assert lines[slo + 1].split() == ["WINDOW", "BURN", "EVENTS", "OBSERVED"]
    windows = [line.split(None, 4) for line in lines[slo + 2 : slo + 6]]
    assert windows == [
        ["5m", "20.00", "12000", "5m"],
        ["30m", "10.00", "70000", "30m"],
        ["1h", "15.00", "140000", "1h"],
        ["6h", "6.25", "400000", "3h", "shortened to the canary's age"],
    ]
    assert [line.split() for line in lines[slo + 6 : slo + 9]] == [
        ["PAIR", "ABOVE", "SEVERITY", "STATE"],
        ["1h/5m", "14.4", "critical", "Firing"],
        ["6h/30m", "6", "warning", "Firing"],
    ]


def test_auto_mode_rollback_is_applied_by_the_operator() -> None:
    obj, wire = judged_rollout(Mode.AUTO, canary_samples=d.CANARY_WORSE)
    text = render_explain(obj, "rollouts", NOW)
    assert wire["action"] == "rollback"
    assert "Decision:    ROLLBACK, confidence high (auto mode)" in text
    actions = section(text, "Required actions:")
    assert actions[1][:4] == ["high", "rollback", "-", "operator"]
    codes = [row[1] for row in section(text, "Reasons:")[1:]]
    assert "CompareRegression" in codes
    compare = section(text, "Compare metrics")[1]
    assert compare[5:9] == ["+23.3%", "0.00108", "exact", "FAIL"]


def test_a_count_below_the_guard_is_shown_against_its_minimum() -> None:
    obj, _ = judged_rollout()
    metrics = obj["status"]["analysis"]["metrics"]
    metrics[0]["measurements"][-1]["samples"] = 12
    text = render_explain(obj, "rollouts", NOW)
    assert section(text, "Threshold metrics:")[1][-1] == "12 < 50"


def test_colour_marks_the_words_and_changes_nothing_else() -> None:
    obj, _ = judged_rollout(Mode.AUTO, canary_samples=d.CANARY_WORSE)
    plain = render_explain(obj, "rollouts", NOW)
    coloured = render_explain(obj, "rollouts", NOW, palette=COLOUR)
    assert "\x1b[31mROLLBACK\x1b[0m" in coloured
    assert "\x1b[32mhigh\x1b[0m" in coloured  # the confidence
    assert "\x1b[31mcritical\x1b[0m" in coloured
    assert strip(coloured) == plain


@pytest.mark.parametrize("width", [140, 170])
def test_messages_are_fitted_to_the_terminal(width: int) -> None:
    obj, _ = judged_rollout()
    text = render_explain(obj, "rollouts", NOW, width=width, symbols=ASCII)
    lines = text.splitlines()
    for title in ("Reasons:", "Required actions:"):
        start = lines.index(title)
        rows = lines[start + 1 : lines.index("", start)]
        assert all(visible_len(row) <= width for row in rows), rows
        assert any(row.endswith("...") for row in rows)
    whole = render_explain(obj, "rollouts", NOW, symbols=UNICODE)
    assert "at this rate the whole budget lasts 48h" in section(whole, "Reasons:")[1][-1]


# ------------------------------------------------------------------------------ no decision


def test_no_canary_no_decision_exits_zero() -> None:
    cluster = FakeCluster(b.rollout(b.healthy()))
    code, out, err = run_with(cluster, "explain", "rollout", "web")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "Rollout:     shop/web",
        "Canary:      - (none in progress)",
        "Decision:    none yet: no canary in progress: decisions are made while a canary runs",
    ]


def test_an_operator_that_records_no_decision_still_shows_the_evidence() -> None:
    cluster = FakeCluster(b.rollout(b.canary_at_step_2()))
    code, out, err = run_with(cluster, "explain", "rollout", "web")
    assert (code, err) == (0, "")
    assert (
        "Decision:    none yet: the operator recorded none for this canary yet (an operator "
        "version older than decisions never writes status.decision)"
    ) in out
    assert section(out, "Threshold metrics:")[1][:4] == [
        "error-ratio",
        "0.012",
        "< 0.05",
        "RUNNING (2/3)",
    ]


def test_no_status_at_all() -> None:
    cluster = FakeCluster(b.rollout(None))
    code, out, _ = run_with(cluster, "explain", "rollout", "web", "-o", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["decision"] is None
    assert doc["note"] == (
        "no decision yet: the object has no status yet (is the Rollwise operator running?)"
    )


def test_a_decision_left_after_the_canary_ended_is_marked_as_the_last_one() -> None:
    obj, _ = judged_rollout(Mode.AUTO, canary_samples=d.CANARY_WORSE)
    rolled_back = b.rollout(b.rolled_back())
    rolled_back["status"]["decision"] = obj["status"]["decision"]
    text = render_explain(rolled_back, "rollouts", NOW)
    assert "             (the last decision recorded; no canary runs now)" in text
    # The rolled-back revision's run is still the evidence, of a step no longer current.
    assert f"Evidence (an earlier step): analysis of step 2/5, revision {b.CANARY}" in text
    assert "FAIL (2/3, 2 failed)" in text


# ------------------------------------------------------------------------------ JSON, errors


def test_json_is_the_decision_as_stored_and_the_evidence_as_numbers() -> None:
    obj, wire = judged_rollout()
    code, out, err = run_with(FakeCluster(obj), "explain", "rollout", "web", "-o", "json")
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert doc["decision"] == wire
    assert (doc["kind"], doc["namespace"], doc["name"]) == ("Rollout", "shop", "web")
    assert doc["canary"] == {"revision": b.CANARY, "stepIndex": 1, "weight": 25}
    assert "note" not in doc
    metrics = {m["name"]: m for m in doc["evidence"]["metrics"]}
    assert {n: m["kind"] for n, m in metrics.items()} == {
        "error-ratio": "threshold",
        "p99-latency": "threshold",
        "latency-vs-baseline": "compare",
        "checkout-availability": "burnRate",
    }
    assert metrics["error-ratio"]["last"]["samples"] == 160
    assert metrics["error-ratio"]["taken"] == 3
    compare = metrics["latency-vs-baseline"]["compare"]
    assert compare["pValue"] == pytest.approx(0.436, abs=5e-4)
    assert (compare["canarySamples"], compare["controlSamples"]) == (6, 6)
    pairs = metrics["checkout-availability"]["burnRate"]["pairs"]
    assert [(p["long"], p["short"], p["state"]) for p in pairs] == [
        ("1h", "5m", "Firing"),
        ("6h", "30m", "Firing"),
    ]


def test_unknown_object_is_the_usual_error() -> None:
    cluster = FakeCluster(b.rollout(b.healthy()))
    code, out, err = run_with(cluster, "explain", "rollout", "nope")
    assert (code, out) == (1, "")
    assert err == 'error: rollout "nope" not found in namespace "shop"\n'
    code, out, err = run_with(cluster, "explain", "mr", "nope")
    assert (code, out) == (1, "")
    assert err == 'error: modelrelease "nope" not found in namespace "shop"\n'


def test_a_bad_output_format_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        run(["explain", "rollout", "web", "-o", "yaml"], io.StringIO(), io.StringIO())
    assert exited.value.code == 2
    assert "invalid choice: 'yaml'" in capsys.readouterr().err


# ------------------------------------------------------------------------------ ModelRelease


def release_with_decision() -> tuple[dict[str, Any], dict[str, Any]]:
    decision, *_ = d.evidence(NOW, mode=Mode.AUTO, observed=timedelta(minutes=2))
    obj = r.release(r.staging_canary())
    obj["status"]["decision"] = d.decision_wire(decision)
    return obj, obj["status"]["decision"]


def test_model_release_decision_and_its_canary_evidence() -> None:
    obj, wire = release_with_decision()
    text = render_explain(obj, "modelreleases", NOW)
    lines = text.splitlines()
    assert lines[:3] == [
        "ModelRelease: ml/fraud-detector-7",
        f"Canary:      {r.REVISION} at step 3/5, 50% of traffic",
        f"Decision:    {wire['action'].upper()}, confidence {wire['confidence']} (auto mode)",
    ]
    assert f"Evidence: analysis of step 3/5, revision {r.REVISION}" in text
    assert section(text, "Threshold metrics:")[1] == [
        "error-ratio",
        "0.004",
        "< 0.02",
        "RUNNING (1/3)",
        "-",
    ]


def test_a_decision_mirrored_from_the_child_rollout_is_shown_as_is() -> None:
    # A template-served release has no analysis of its own: its status.decision is the child
    # Rollout's, and explain shows it like any other.
    obj, wire = release_with_decision()
    obj["status"]["serving"].pop("analysis")
    text = render_explain(obj, "modelreleases", NOW)
    lines = text.splitlines()
    assert lines[2] == (
        f"Decision:    {wire['action'].upper()}, confidence {wire['confidence']} (auto mode)"
    )
    assert "Evidence:    <none> (no analysis run for this canary)" in text


def test_model_release_json_and_a_finished_release() -> None:
    obj, wire = release_with_decision()
    code, out, _ = run_with(
        FakeCluster(obj, namespace="ml"),
        "explain",
        "modelrelease",
        "fraud-detector-7",
        "-o",
        "json",
    )
    assert code == 0
    doc = json.loads(out)
    assert (doc["kind"], doc["decision"]) == ("ModelRelease", wire)
    assert doc["canary"] == {"revision": r.REVISION, "stepIndex": 2, "weight": 50}
    assert [m["name"] for m in doc["evidence"]["metrics"]] == ["error-ratio"]

    done = FakeCluster(r.release(r.production()), namespace="ml")
    code, out, _ = run_with(done, "explain", "mr", "fraud-detector-7")
    assert code == 0
    assert "Decision:    none yet: no canary in progress" in out


def test_an_unreadable_analysis_is_said_not_raised() -> None:
    obj, _ = judged_rollout()
    obj["status"]["analysis"]["stepIndex"] = "two"
    text = render_explain(obj, "rollouts", NOW)
    assert "Evidence:    <unreadable> (the analysis in status could not be read)" in text


def test_a_metric_measured_once_without_evidence_is_a_threshold_metric() -> None:
    obj, _ = judged_rollout()
    run_ = AnalysisRun(
        step_index=1,
        revision=b.CANARY,
        started_at=NOW,
        metrics=[
            MetricRun(
                name="p99-latency",
                measurements=[MeasurementRecord(value=0.3, verdict=Verdict.PASS, at=NOW)],
                successful=1,
            )
        ],
    )
    obj["status"]["analysis"] = run_.model_dump(mode="json", by_alias=True, exclude_none=True)
    text = render_explain(obj, "rollouts", NOW)
    assert "Compare metrics" not in text
    assert "SLO burn rates" not in text
    assert section(text, "Threshold metrics:")[1][:4] == [
        "p99-latency",
        "0.300",
        "<= 0.500",
        "RUNNING (1/2)",
    ]


# ------------------------------------------------------------------------------ list -o wide


def test_list_wide_adds_the_decision_column() -> None:
    advisory, _ = judged_rollout()
    auto, _ = judged_rollout(Mode.AUTO, canary_samples=d.CANARY_WORSE)
    auto["metadata"]["name"] = "api"
    release, wire = release_with_decision()
    release["metadata"]["namespace"] = "shop"
    cluster = FakeCluster(advisory, auto, b.rollout(b.healthy()) | {"metadata": {"name": "old"}})
    cluster.add(release)
    code, out, err = run_with(cluster, "list", "-o", "wide")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == [
        "NAME",
        "PHASE",
        "STEP",
        "WEIGHT",
        "STABLE",
        "CANARY",
        "DECISION",
        "AGE",
    ]
    cells = {line.split()[0]: line.split("   ") for line in lines[1:4]}
    decisions = {name: [c.strip() for c in row if c.strip()][-2] for name, row in cells.items()}
    assert decisions == {
        "api": "rollback/high",
        "old": "-",
        "web": "hold/high (advisory: rollback)",
    }
    releases = lines[lines.index("") + 1 :]
    assert "DECISION" in releases[0].split()
    assert f"{wire['action']}/{wire['confidence']}" in releases[1]
    # Without -o wide the tables are as before.
    code, out, _ = run_with(cluster, "list")
    assert code == 0
    assert "DECISION" not in out


def test_a_status_of_another_shape_still_displays() -> None:
    """A decision or evidence of an unexpected shape (another operator version, a hand edit)
    is shown as far as it reads, never a traceback."""
    obj = b.rollout(b.canary_at_step_2())
    obj["status"]["decision"] = {
        "action": 5,
        "score": "x",
        "reasons": "nope",
        "requiredActions": [1, {"id": None, "dueBy": "garbage", "priority": 3}],
        "decidedAt": 7,
    }
    metrics = obj["status"]["analysis"]["metrics"]
    metrics[0]["measurements"][0]["compare"] = {"pValue": "a", "canarySamples": None}
    metrics[1]["measurements"][0]["burnRate"] = {
        "windows": [{"window": "1h", "burnRate": None}, 3],
        "pairs": [{"long": None}],
    }
    text = render_explain(obj, "rollouts", NOW)
    assert "Decision:    5, confidence ? (auto mode)" in text
    assert "Reasons:     <none>" in text
    assert section(text, "Required actions:")[1] == ["3", "?", "-", "human"]
    assert section(text, "Compare metrics")[1][:3] == ["error-ratio", "-", "-/-"]
    assert "      1h       no data   -        -" in text.splitlines()
    doc = json.loads(json.dumps(explain_document(obj, "rollouts")))
    assert [m["kind"] for m in doc["evidence"]["metrics"]] == ["compare", "burnRate"]
    obj["status"]["decision"] = "not an object"
    assert "Decision:    none yet:" in render_explain(obj, "rollouts", NOW)


def test_a_step_that_measures_nothing_has_a_decision_and_no_evidence() -> None:
    decision = build_decision(now=NOW, observed=timedelta(minutes=30))
    obj = b.rollout(b.paused_step())
    obj["status"]["decision"] = d.decision_wire(decision)
    text = render_explain(obj, "rollouts", NOW)
    assert "Decision:    EXPAND, confidence low (auto mode)" in text
    assert [row[:2] for row in section(text, "Reasons:")[1:]] == [["info", "NoChecks"]]
    assert section(text, "Required actions:")[1][:4] == ["low", "expand", "-", "operator"]
    assert text.endswith("Evidence:    <none> (no analysis run for this canary)\n")


def test_a_compare_metric_judged_on_its_means_says_so() -> None:
    sparse = judge_metric(
        [1.0] * 6 + [0.0] * 14, [0.0] * 20, CompareRule(), metric="latency-vs-baseline"
    )
    obj, _ = judged_rollout()
    measurement = obj["status"]["analysis"]["metrics"][-2]["measurements"][-1]
    measurement["compare"] = d.compare_wire(sparse)
    measurement["verdict"] = "Fail"
    text = render_explain(obj, "rollouts", NOW)
    rows = section(text, "Compare metrics")
    # A zero control mean leaves the relative effect undefined: "-", marked as on the means.
    assert rows[1][3:6] == ["0.000", "0.000", "- (means)"]
    lines = text.splitlines()
    assert (
        "    latency-vs-baseline: more than half of each side is 0.000, so the effect is on the "
        "means: canary 0.300 vs control 0.000"
    ) in lines
