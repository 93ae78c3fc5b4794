"""``kubectl rollwise explain`` as users run it: the real kubectl finding the plugin on PATH,
against the lab's API server with the Gateway API example applied. No operator runs: the test
writes, through the ``/status`` subresource as an operator does, a canary's status with the
decision the core builds (real compare and burn-rate results, its wire form) and the analysis
evidence behind it, then reads it back through the plugin as text and as JSON.

The write goes through the CRD's structural schema, so the test also shows that the API
server keeps ``status.decision`` and each measurement's ``compare``, ``burnRate`` and
``samples`` (pruning would drop an unknown field silently, and the plugin would have nothing
to explain).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hack.lab.testing.cluster_fixtures import Kubectl
from rollwise.core.decision import Mode
from tests.lab.test_cli_plugin import EXAMPLE, canary_status, get_rollout, make_plugin
from tests.unit.cli import decision_builders as d

pytestmark = pytest.mark.lab


def patch_status(kubectl: Kubectl, namespace: str, status: dict[str, Any]) -> None:
    kubectl(
        "patch",
        "rollout",
        "demo",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
        namespace=namespace,
        check=True,
    )


def test_explain_reads_the_decision_an_operator_wrote(
    kubectl: Kubectl, namespace: str, kubeconfig: Path
) -> None:
    kubectl("apply", "-f", str(EXAMPLE), namespace=namespace, check=True)
    rollout = get_rollout(kubectl, namespace)
    now = datetime.now(UTC).replace(microsecond=0)
    plugin = make_plugin(kubeconfig)

    # An operator that records no decision yet: said, exit 0.
    status = canary_status(rollout, now)
    patch_status(kubectl, namespace, status.to_wire())
    before = plugin("explain", "rollout", "demo", "-n", namespace)
    assert before.returncode == 0, before.stderr
    assert before.stderr == ""
    assert "Decision:    none yet: the operator recorded none for this canary yet" in before.stdout

    decision, runs, compare, burn = d.evidence(
        now, mode=Mode.ADVISORY, errors_taken=2, latency_taken=1
    )
    wire = d.decision_wire(decision)
    canary = status.canary_revision
    assert canary is not None
    analysis = d.analysis_wire(
        now, revision=canary, step_index=2, runs=runs, compare=compare, burn=burn
    )
    patch_status(kubectl, namespace, {"decision": wire, "analysis": analysis})
    stored = get_rollout(kubectl, namespace)["status"]
    assert stored["decision"] == wire
    kept = {m["name"]: m["measurements"][-1] for m in stored["analysis"]["metrics"]}
    assert kept["latency-vs-baseline"]["compare"] == d.compare_wire(compare)
    assert kept["checkout-availability"]["burnRate"] == d.burn_wire(burn)
    assert kept["error-ratio"]["samples"] == d.GUARD_COUNTS[-1]

    shown = plugin("explain", "rollout", "demo", "-n", namespace)
    assert shown.returncode == 0, shown.stderr
    assert shown.stderr == ""
    lines = shown.stdout.splitlines()
    assert lines[:3] == [
        f"Rollout:     {namespace}/demo",
        f"Canary:      {canary} at step 3/5, 25% of traffic",
        "Decision:    HOLD (advisory mode: auto would ROLLBACK), confidence high",
    ]
    reasons = [line.split()[:5] for line in lines if "SloBurnCritical" in line]
    assert reasons == [["critical", "SloBurnCritical", "checkout-availability", "15", "14.4"]]
    assert any(line.split()[:2] == ["high", "abort-by-hand"] for line in lines)
    assert [
        "error-ratio",
        "0.011",
        "<",
        "0.05;",
        ">=",
        "50",
        "samples",
        "PASS",
        "(2/2)",
        "160",
        "(min",
        "50)",
    ] in [line.split() for line in lines]
    assert "latency-vs-baseline   baseline   6/6" in shown.stdout
    assert ["1h/5m", "14.4", "critical", "Firing"] in [line.split() for line in lines]

    as_json = plugin("explain", "rwr", "demo", "-n", namespace, "-o", "json")
    assert as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout)
    assert doc["decision"] == wire
    assert doc["canary"] == {"revision": canary, "stepIndex": 2, "weight": 25}
    kinds = {m["name"]: m["kind"] for m in doc["evidence"]["metrics"]}
    assert kinds == {
        "error-ratio": "threshold",
        "p99-latency": "threshold",
        "latency-vs-baseline": "compare",
        "checkout-availability": "burnRate",
    }


def test_explain_of_an_unknown_rollout_is_one_line(namespace: str, kubeconfig: Path) -> None:
    result = make_plugin(kubeconfig)("explain", "rollout", "nope", "-n", namespace)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == f'error: rollout "nope" not found in namespace "{namespace}"\n'
