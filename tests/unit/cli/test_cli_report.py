"""``kubectl rollwise report``: the decision report over a window (decisions, rollbacks,
regressions by outcome, critical items, overrides with who made them) and one release's
record phase by phase, merged from the status event log and the Kubernetes Events; text,
Markdown and JSON, with the coverage note in each."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import Any

import pytest

from rollwise.cli import report_commands
from rollwise.cli.main import run
from rollwise.cli.report import (
    COVERAGE,
    Subject,
    fleet_report,
    merged_entries,
    release_report,
)
from rollwise.cli.report_render import render_fleet, render_release_report
from tests.unit.cli import cli_builders as b
from tests.unit.cli import report_builders as rb
from tests.unit.cli.fake_cluster import FakeCluster

NOW = rb.NOW
DAY = timedelta(hours=24)


def subjects() -> list[Subject]:
    return [
        Subject("rollouts", rb.judged_rollout()),
        Subject("modelreleases", rb.watched_release()),
        Subject("rollouts", rb.quiet_rollout("old", "shop", days_ago=10)),
    ]


def k8s_event(seq: int | None, reason: str, message: str, seconds_ago: float) -> dict[str, Any]:
    """An Event about the Rollout ``web``; the operator's carry the entry's sequence number
    at the end of their name."""
    name = f"web.uid-web.{seq:010d}" if seq is not None else f"web.{reason.lower()}"
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": "shop"},
        "involvedObject": {"kind": "Rollout", "name": "web", "namespace": "shop", "uid": "uid-web"},
        "reason": reason,
        "message": message,
        "type": "Normal",
        "lastTimestamp": b.stamp(seconds_ago),
    }


# ---------------------------------------------------------------------- the merged record


def test_events_still_listed_fill_in_what_the_log_dropped() -> None:
    obj = rb.judged_rollout()
    log = obj["status"]["eventLog"]
    log["entries"] = log["entries"][3:]  # the log kept seq 4..6 only
    events = [
        k8s_event(2, "WeightSet", "step 1/5: canary weight set to 5% (stable 95%)", 890),
        k8s_event(3, "AnalysisPassed", "step 1/5: analysis passed (error-ratio 3/3)", 600),
        k8s_event(5, "WeightSet", "step 2/5: canary weight set to 25% (stable 75%)", 589),
        k8s_event(None, "Custom", "posted by someone else", 100),
    ]
    entries = merged_entries(obj["status"], events, "uid-web")
    assert [(e.seq, e.reason) for e in entries] == [
        (2, "WeightSet"),
        (3, "AnalysisPassed"),
        (4, "StepAdvanced"),
        (5, "WeightSet"),
        (None, "Custom"),
        (6, "DecisionChanged"),
    ]
    assert [e.step for e in entries] == [1, 1, 1, 2, None, 2]


def test_only_the_objects_own_event_names_give_a_sequence_number() -> None:
    obj = rb.judged_rollout()
    other = k8s_event(4, "WeightSet", "step 2/5: another object's event", 100)
    other["metadata"]["name"] = "web.uid-other.0000000004"
    hexadecimal = k8s_event(None, "Pulled", "image pulled", 50)
    hexadecimal["metadata"]["name"] = "web.1789012345"  # kubectl's style, all digits by chance
    entries = merged_entries(obj["status"], [other, hexadecimal], "uid-web")
    extra = [(e.seq, e.reason) for e in entries if e.reason in ("WeightSet", "Pulled")]
    assert (None, "WeightSet") in extra  # kept as an Event of its own, not taken for seq 4
    assert (None, "Pulled") in extra
    assert sum(1 for e in entries if e.seq == 4) == 1


def test_an_event_without_sequence_already_in_the_log_is_not_doubled() -> None:
    obj = rb.judged_rollout()
    first = rb.ROLLOUT_LOG[1]
    events = [k8s_event(None, first["reason"], first["message"], 890)]
    assert len(merged_entries(obj["status"], events)) == len(rb.ROLLOUT_LOG)


# ---------------------------------------------------------------------- the decision report


def test_the_decision_report_counts_what_happened_in_the_window() -> None:
    doc = fleet_report(subjects(), NOW, DAY)
    assert doc["window"] == {
        "since": "24h",
        "from": "2026-11-21T12:00:00Z",
        "to": "2026-11-22T12:00:00Z",
    }
    assert doc["releases"] == 3
    assert doc["summary"] == {
        "decisions": 1,
        "decisionsByAction": {"hold": 1},
        "rollbacks": 1,
        "regressions": {"confirmed": 1, "false_positive": 1, "open": 1, "cleared": 0},
        "critical": 2,
        "overrides": 1,
    }
    (decision,) = doc["decisions"]
    assert (decision["name"], decision["action"], decision["confidence"]) == ("web", "hold", "high")
    (rollback,) = doc["rollbacks"]
    assert (rollback["kind"], rollback["reason"]) == ("ModelRelease", "ReleaseRolledBack")
    outcomes = {r["kpi"]: r["outcome"] for r in doc["regressions"]}
    assert outcomes == {
        "approval-rate": "false_positive",
        "error-rate": "confirmed",
        "p95-latency": "open",
    }
    assert [(c["source"], c["code"]) for c in doc["critical"]] == [
        ("decision", "SloBurnCritical"),
        ("regression", "error_rate_regression"),
    ]
    # The override of three days ago is outside the window; carol's hold is in it.
    (override,) = doc["overrides"]
    assert (override["user"], override["decision"], override["confirmedBy"]) == (
        "carol@example.com",
        "hold",
        None,
    )
    assert doc["coverage"] == COVERAGE


def test_a_cleared_kpi_of_a_watch_that_does_not_say_whether_it_was_confirmed() -> None:
    obj = rb.watched_release()
    for kpi in obj["status"]["postPromotion"]["kpis"]:
        del kpi["confirmed"]
    doc = fleet_report([Subject("modelreleases", obj)], NOW, DAY)
    outcomes = {r["kpi"]: r["outcome"] for r in doc["regressions"]}
    assert outcomes["approval-rate"] == "cleared"  # not counted as a false positive
    assert outcomes["error-rate"] == "confirmed"
    assert doc["summary"]["regressions"]["false_positive"] == 0


def test_a_wider_window_brings_the_older_override_with_its_confirmation() -> None:
    doc = fleet_report(subjects(), NOW, timedelta(days=7))
    first = doc["overrides"][0]
    assert (first["user"], first["decision"], first["confirmedBy"]) == (
        "dave@example.com",
        "promote",
        "erin@example.com",
    )
    assert doc["window"]["since"] == "7d"


def test_a_window_that_saw_nothing_says_so() -> None:
    doc = fleet_report(subjects(), NOW + timedelta(days=5), timedelta(hours=1))
    assert doc["summary"]["decisions"] == 0
    text = render_fleet(doc)
    assert "Decisions made: 0" in text
    assert "Rollbacks\n---------\nNone recorded in the window." in text


def test_decision_report_as_text_and_markdown() -> None:
    doc = fleet_report(subjects(), NOW, DAY)
    text = render_fleet(doc)
    assert text.splitlines()[:2] == [
        "Rollwise decision report: last 24h",
        "==================================",
    ]
    assert "  Regressions: 1 confirmed, 1 false positive(s), 1 open" in text
    assert "carol@example.com" in text
    markdown = render_fleet(doc, markdown=True)
    lines = markdown.splitlines()
    assert lines[0] == "# Rollwise decision report: last 24h"
    assert "- Decisions made: 1 (1 hold)" in lines
    start = lines.index("## Overrides")
    assert lines[start + 2 : start + 5] == [
        "| TIME | RELEASE | DECISION | BY | CONFIRMED BY | REASON |",
        "|---|---|---|---|---|---|",
        "| 2026-11-22T11:58:00Z | shop/rollout/web | hold | carol@example.com | - | "
        "checking the checkout dashboard |",
    ]
    assert lines[-1] == COVERAGE


# ---------------------------------------------------------------------- one release's record


def test_a_rollouts_record_step_by_step() -> None:
    doc = release_report(Subject("rollouts", rb.judged_rollout()), NOW)
    assert doc["outcome"] == f"Progressing: canary {b.CANARY} in progress at step 2/5"
    steps = doc["steps"]
    assert [s["step"] for s in steps] == [1, 2]
    one, two = steps
    assert (one["startedAt"], one["endedAt"]) == (b.stamp(890), b.stamp(589))
    assert one["metrics"] is None
    assert [e["reason"] for e in one["events"]] == ["WeightSet", "AnalysisPassed", "StepAdvanced"]
    assert two["startedAt"] == b.stamp(589)
    assert two["endedAt"] is None
    metrics = {m["metric"]: m for m in two["metrics"]}
    assert metrics["latency-vs-baseline"]["control"] == "baseline"
    assert metrics["latency-vs-baseline"]["controlValue"] == pytest.approx(0.215)
    assert metrics["latency-vs-baseline"]["status"] == "attention"
    assert metrics["error-ratio"]["verdict"] == "Pass"
    assert metrics["error-ratio"]["target"] == 0.05
    assert two["decisionInForce"]["action"] == "hold"
    assert [d["reason"] for d in two["decisions"]] == ["DecisionChanged"]
    assert [u["reason"] for u in doc["unstepped"]] == ["RevisionDetected"]
    assert [o["user"] for o in doc["overrides"]] == ["dave@example.com", "carol@example.com"]
    assert doc["postPromotion"] is None


def test_a_model_releases_record_with_stages_approvals_and_the_watch() -> None:
    doc = release_report(Subject("modelreleases", rb.watched_release()), NOW)
    assert [s["stage"] for s in doc["stages"]] == ["Candidate", "Staging", "Approved", "Production"]
    assert [(a["role"], a["user"]) for a in doc["approvals"]] == [
        ("security", "alice"),
        ("product", "bob"),
    ]
    assert doc["outcome"] == (
        "stage Production, phase Healthy; after promotion: watch Regressed (action rollback)"
    )
    assert doc["canaryRollout"] == "fraud-detector-production"
    watch = doc["postPromotion"]
    assert (watch["phase"], watch["previousRevision"]) == ("Regressed", "6")
    assert [k["state"] for k in watch["kpis"]] == ["confirmed", "cleared", "detected"]


def test_release_record_as_markdown() -> None:
    text = render_release_report(
        release_report(Subject("rollouts", rb.judged_rollout()), NOW), markdown=True
    )
    lines = text.splitlines()
    assert lines[0] == "# Release record: rollout shop/web"
    assert f"- Outcome: Progressing: canary {b.CANARY} in progress at step 2/5" in lines
    assert f"### Step 1: started {b.stamp(890)}, ended {b.stamp(589)}" in lines
    assert "Metrics: not kept (status keeps the current step's analysis only)." in lines
    header = "| METRIC | CANARY | CONTROL | CONTROL VALUE | TARGET | DELTA | STATUS | VERDICT |"
    start = lines.index(header)
    assert lines[start - 1] == ""  # a Markdown table needs a blank line before it
    assert (
        lines[start + 2]
        == "| error-ratio | 0.011 | - | - | 0.05 | -0.039 (-78.0%) | on_track | Pass |"
    )
    assert lines[start + 4] == (
        "| latency-vs-baseline | 0.2175 | baseline | 0.215 | 0.2365 | -0.019 (-8.0%) | "
        "attention | running |"
    )
    assert any(line.startswith("- Decision in force: hold at high confidence") for line in lines)
    assert "## Coverage" in lines


def test_release_record_as_text() -> None:
    text = render_release_report(
        release_report(Subject("modelreleases", rb.watched_release()), NOW)
    )
    assert "Release record: modelrelease ml/fraud-detector-7" in text
    assert (
        "The canary runs as the Rollout fraud-detector-production: its steps are that "
        "Rollout's record (kubectl rollwise report rollout fraud-detector-production -n ml)."
    ) in text
    after = text[text.index("After promotion") :]
    assert "Watch Regressed from" in after
    row = next(line for line in after.splitlines() if line.strip().startswith("error-rate"))
    assert row.split()[:6] == ["error-rate", "confirmed", "off_track", "0.031", "0.02", "0.004"]


# ------------------------------------------------------------------------- the command


def run_with(
    cluster: FakeCluster, *argv: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    monkeypatch.setattr(report_commands, "now", lambda: NOW)
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), out, err, connector=lambda *_: cluster, environ={})
    return code, out.getvalue(), err.getvalue()


def cluster(*extra: dict[str, Any], namespace: str = "shop") -> FakeCluster:
    return FakeCluster(*(s.obj for s in subjects()), *extra, namespace=namespace)


def test_report_json_over_all_namespaces(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = run_with(
        cluster(), "report", "-A", "--since", "24h", "-o", "json", monkeypatch=monkeypatch
    )
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert doc["summary"]["rollbacks"] == 1
    assert doc["releases"] == 3


def test_report_reads_the_events_of_active_releases(monkeypatch: pytest.MonkeyPatch) -> None:
    event = k8s_event(None, "Aborted", "revision x aborted by request r at step 2/5", 20)
    code, out, err = run_with(cluster(event), "report", "-o", "json", monkeypatch=monkeypatch)
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert [r["reason"] for r in doc["rollbacks"]] == ["Aborted"]  # namespace shop only


def test_report_of_one_release_as_markdown(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = run_with(
        cluster(namespace="ml"),
        "report",
        "mr",
        "fraud-detector-7",
        "-n",
        "ml",
        "-o",
        "markdown",
        monkeypatch=monkeypatch,
    )
    assert (code, err) == (0, "")
    assert out.startswith("# Release record: modelrelease ml/fraud-detector-7\n")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["report", "rollout"], "report rollout needs the NAME", id="no-name"),
        pytest.param(
            ["report", "rollout", "web", "--since", "1h"], "--since and -A apply", id="since"
        ),
        pytest.param(["report", "rollout", "nope"], 'rollout "nope" not found', id="unknown"),
    ],
)
def test_report_errors_are_one_line(
    argv: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run_with(cluster(), *argv, monkeypatch=monkeypatch)
    assert code == 1
    assert out == ""
    assert err.startswith("error: ")
    assert message in err
    assert err.count("\n") == 1
