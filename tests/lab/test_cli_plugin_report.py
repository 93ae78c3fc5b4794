"""``kubectl rollwise scoreboard`` and ``kubectl rollwise report`` as users run them: the real
kubectl finding the plugin on PATH, against the lab's API server. No operator runs: the test
applies the Gateway API example Rollout and the template-served example ModelRelease, writes
through the ``/status`` subresource what an operator leaves there (a canary judged at step
3/5 with its decision, analysis evidence and event log; a ModelRelease in Production whose
post-promotion watch confirmed a regression), adds an override record to the Rollout, and
reads everything back through the plugin; then runs the command of the nightly report example
(``examples/report-cronjob/``) with its service account's token.

Writing through the CRDs' structural schemas also shows what the API server keeps for the
plugin to read (``status.eventLog``, ``status.decision``, the evidence of each measurement;
``status.postPromotion`` on a ModelRelease, whose status keeps unknown fields).
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.cluster import Cluster
from hack.lab.testing.cluster_fixtures import Kubectl
from rollwise.core.decision import Mode
from rollwise.core.status_model import format_time
from tests.lab.test_cli_plugin import (
    EXAMPLE,
    VENV_BIN,
    canary_status,
    get_rollout,
    make_plugin,
    plugin_env,
)
from tests.lab.test_cli_plugin_release import EXAMPLE as RELEASE_EXAMPLE
from tests.lab.test_cli_plugin_release import NAME as RELEASE
from tests.lab.test_cli_plugin_release import get_release, staging_status
from tests.unit.cli import decision_builders as d

pytestmark = pytest.mark.lab


def patch_status(kubectl: Kubectl, namespace: str, kind: str, name: str, status: Any) -> None:
    kubectl(
        "patch",
        kind,
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
        namespace=namespace,
        check=True,
    )


def entry(
    seq: int, reason: str, message: str, at: datetime, type_: str = "Normal"
) -> dict[str, Any]:
    return {
        "seq": seq,
        "type": type_,
        "reason": reason,
        "message": message,
        "time": format_time(at),
    }


def judged_canary(kubectl: Kubectl, namespace: str, now: datetime) -> str:
    """The example Rollout at step 3/5 with the decision and evidence an operator wrote and
    its event log; a hold override recorded by carol. Returns the canary revision."""
    kubectl("apply", "-f", str(EXAMPLE), namespace=namespace, check=True)
    rollout = get_rollout(kubectl, namespace)
    status = canary_status(rollout, now)
    canary = status.canary_revision
    assert canary is not None
    decision, runs, compare, burn = d.evidence(now, mode=Mode.ADVISORY)
    wire = status.to_wire() | {
        "decision": d.decision_wire(decision),
        "analysis": d.analysis_wire(
            now, revision=canary, step_index=2, runs=runs, compare=compare, burn=burn
        ),
        "eventLog": {
            "seq": 4,
            "posted": 4,
            "entries": [
                entry(
                    1,
                    "WeightSet",
                    "step 1/5: canary weight set to 5% (stable 95%)",
                    now - timedelta(minutes=9),
                ),
                entry(
                    2,
                    "StepAdvanced",
                    "step 1/5 (setWeight 5%) complete; now at step 2/5",
                    now - timedelta(minutes=8),
                ),
                entry(
                    3,
                    "WeightSet",
                    "step 3/5: canary weight set to 25% (stable 75%)",
                    now - timedelta(minutes=5),
                ),
                entry(
                    4,
                    "DecisionChanged",
                    "step 3/5: decision hold at high confidence [SloBurnCritical, AdvisoryMode]: "
                    "hold (advisory mode; auto would roll back at high confidence)",
                    now - timedelta(seconds=30),
                ),
            ],
        },
    }
    patch_status(kubectl, namespace, "rollout", "demo", wire)
    record = {
        "id": "ovr-1",
        "decision": "hold",
        "reason": "checking the checkout dashboard",
        "user": "carol@example.com",
        "at": format_time(now - timedelta(minutes=2)),
        "target": canary,
        "n": 1,
        "sig": "00",
    }
    overrides = json.dumps({"version": 2, "seq": 1, "entries": [record], "sig": "00"})
    kubectl(
        "annotate",
        "rollout",
        "demo",
        f"rollwise.dev/overrides={overrides}",
        namespace=namespace,
        check=True,
    )
    return canary


def kpi(
    name: str,
    reason: str,
    state: str,
    *,
    value: float,
    target: float,
    previous: float,
    status: str,
    at: datetime,
    confirmed: bool,
    severity: str,
) -> dict[str, Any]:
    return {
        "name": name,
        "reason": reason,
        "severity": severity,
        "state": state,
        "value": value,
        "windows": {"short": value, "long": value},
        "target": target,
        "previous": previous,
        "delta": value - previous,
        "relativeDelta": (value - previous) / previous,
        "status": status,
        "badCount": 3 if state == "confirmed" else 0,
        "goodCount": 0,
        "episodes": 1,
        "confirmed": confirmed,
        "lastTransitionAt": format_time(at),
    }


def regressed_release(kubectl: Kubectl, namespace: str, now: datetime) -> None:
    """The example ModelRelease after promotion: its watch confirmed an error-rate
    regression (rolled back) and cleared an approval-rate blip without confirming it."""
    kubectl("apply", "-f", str(RELEASE_EXAMPLE), namespace=namespace, check=True)
    status = staging_status(now).to_wire()
    status["postPromotion"] = {
        "phase": "Regressed",
        "startedAt": format_time(now - timedelta(minutes=30)),
        "endsAt": format_time(now + timedelta(hours=23, minutes=30)),
        "previousRevision": "6",
        "action": "rollback",
        "kpis": [
            kpi(
                "error-rate",
                "error_rate_regression",
                "confirmed",
                value=0.031,
                target=0.02,
                previous=0.004,
                status="off_track",
                at=now - timedelta(minutes=5),
                confirmed=True,
                severity="critical",
            ),
            kpi(
                "approval-rate",
                "approval_rate_drop",
                "cleared",
                value=0.93,
                target=0.9,
                previous=0.94,
                status="on_track",
                at=now - timedelta(minutes=20),
                confirmed=False,
                severity="warning",
            ),
        ],
    }
    status["eventLog"] = {
        "seq": 1,
        "posted": 1,
        "entries": [
            entry(
                1,
                "ReleaseRolledBack",
                "version 7 rolled back at stage Production: error-rate regression confirmed",
                now - timedelta(minutes=5),
                "Warning",
            )
        ],
    }
    patch_status(kubectl, namespace, "modelrelease", RELEASE, status)


def test_scoreboard_and_report_read_what_the_operator_wrote(
    kubectl: Kubectl, namespace: str, kubeconfig: Path
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    plugin = make_plugin(kubeconfig)
    canary = judged_canary(kubectl, namespace, now)
    regressed_release(kubectl, namespace, now)
    # The API server kept what the plugin reads.
    assert len(get_rollout(kubectl, namespace)["status"]["eventLog"]["entries"]) == 4
    watch = get_release(kubectl, namespace)["status"]["postPromotion"]
    assert [k["state"] for k in watch["kpis"]] == ["confirmed", "cleared"]

    # scoreboard -A: other tests' namespaces may be on it too; this one's row is exact.
    board = plugin("scoreboard", "-A")
    assert board.returncode == 0, board.stderr
    assert board.stderr == ""
    assert board.stdout.startswith("Scoreboard: ")
    row = next(
        line.split() for line in board.stdout.splitlines() if line.startswith(namespace + " ")
    )
    assert row[:7] == [namespace, "2", "0", "0", "2", "0", "1"]
    regressions = board.stdout[board.stdout.index("Regressions open:") :].splitlines()
    regression = next(line.split() for line in regressions if f"modelrelease/{RELEASE} " in line)
    assert regression[regression.index("error-rate") + 1 : regression.index("error-rate") + 3] == [
        "critical",
        "confirmed",
    ]

    as_json = plugin("scoreboard", "-A", "-o", "json", "--attention-band", "5%")
    assert as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout)
    assert doc["attentionBand"] == pytest.approx(0.05)
    assert doc["namespaces"][namespace]["openRegressions"] == 1
    mine = {r["name"]: r for r in doc["releases"] if r["namespace"] == namespace}
    kpis = {k["name"]: k for k in mine["demo"]["kpis"]}
    assert kpis["error-ratio"]["status"] == "on_track"
    assert kpis["error-ratio"]["target"] == 0.05
    assert kpis["checkout-availability"]["status"] == "off_track"
    assert mine[RELEASE]["watch"] == "Regressed"

    # The decision report of this namespace, as JSON.
    report = plugin("report", "-n", namespace, "--since", "24h", "-o", "json")
    assert report.returncode == 0, report.stderr
    doc = json.loads(report.stdout)
    assert doc["releases"] == 2
    assert doc["summary"]["decisionsByAction"] == {"hold": 1}
    assert doc["summary"]["rollbacks"] == 1
    assert doc["summary"]["regressions"] == {
        "confirmed": 1,
        "false_positive": 1,
        "open": 0,
        "cleared": 0,
    }
    (override,) = doc["overrides"]
    assert (override["user"], override["decision"], override["target"]) == (
        "carol@example.com",
        "hold",
        canary,
    )
    assert {(c["source"], c["code"]) for c in doc["critical"]} == {
        ("decision", "SloBurnCritical"),
        ("regression", "error_rate_regression"),
    }

    # One release's record, as JSON and as Markdown.
    record = plugin("report", "rollout", "demo", "-n", namespace, "-o", "json")
    assert record.returncode == 0, record.stderr
    doc = json.loads(record.stdout)
    assert [s["step"] for s in doc["steps"]] == [1, 3]
    current = doc["steps"][-1]
    assert {m["metric"] for m in current["metrics"]} >= {"error-ratio", "checkout-availability"}
    assert current["decisionInForce"]["action"] == "hold"
    assert doc["outcome"] == f"Progressing: canary {canary} in progress at step 3/5"
    markdown = plugin("report", "mr", RELEASE, "-n", namespace, "-o", "markdown")
    assert markdown.returncode == 0, markdown.stderr
    lines = markdown.stdout.splitlines()
    assert lines[0] == f"# Release record: modelrelease {namespace}/{RELEASE}"
    assert "## After promotion" in lines
    assert any(line.startswith("| error-rate | confirmed | off_track |") for line in lines)


CRONJOB_EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "report-cronjob"


def test_the_nightly_report_example_runs_with_its_read_only_account(
    kubectl: Kubectl, namespace: str, lab_cluster: Cluster, tmp_path: Path
) -> None:
    """``examples/report-cronjob/`` applied as a user applies it: its CronJob's command, run
    with a token of its ServiceAccount, reports on the namespace; the account can read and
    nothing more (no write, no other namespace)."""
    now = datetime.now(UTC).replace(microsecond=0)
    judged_canary(kubectl, namespace, now)
    kubectl("apply", "-f", str(CRONJOB_EXAMPLE), namespace=namespace, check=True)
    (cronjob,) = [
        doc
        for doc in yaml.safe_load_all((CRONJOB_EXAMPLE / "cronjob.yaml").read_text())
        if doc and doc["kind"] == "CronJob"
    ]
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["serviceAccountName"] == "rollwise-report"
    assert container["command"] == ["kubectl-rollwise"]
    account = lab_cluster.write_service_account_kubeconfig(
        namespace, "rollwise-report", tmp_path / "report.kubeconfig"
    )
    env = {**plugin_env(account), "KUBECONFIG": str(account)}
    done = subprocess.run(
        [str(VENV_BIN / "kubectl-rollwise"), *container["args"]],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.startswith("# Rollwise decision report: last 24h\n")
    assert "- Decisions made: 1 (1 hold)" in done.stdout
    assert "carol@example.com" in done.stdout

    everywhere = subprocess.run(
        [str(VENV_BIN / "kubectl-rollwise"), "report", "-A"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert everywhere.returncode == 1
    assert everywhere.stdout == ""
    assert everywhere.stderr.startswith("error: ")
    assert everywhere.stderr.count("\n") == 1

    user = f"system:serviceaccount:{namespace}:rollwise-report"
    for verb, resource, allowed in (
        ("list", "rollouts.rollwise.dev", "yes"),
        ("get", "modelreleases.rollwise.dev", "yes"),
        ("list", "events", "yes"),
        ("patch", "rollouts.rollwise.dev", "no"),
        ("update", "rollouts.rollwise.dev/status", "no"),
        ("get", "secrets", "no"),
    ):
        answer = kubectl("auth", "can-i", verb, resource, "--as", user, namespace=namespace)
        assert answer.stdout.strip() == allowed, (verb, resource, answer.stdout, answer.stderr)
