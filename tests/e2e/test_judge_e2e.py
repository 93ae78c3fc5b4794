"""The judge end to end, as a user drives it: the real operator process in the lab, the
example's Rollout with its analysis replaced by a ``compare`` metric (against the stable
revision, or against a baseline with ``examples/rollout-baseline``), an ``sloBurnRate``
metric, or left as it is in ``advisory`` mode; the lab's demo service raising errors on the
canary; real Prometheus. Checked through the API only (status, events, the route)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rollwise.core.observations import baseline_revision_of, revision_of
from tests.e2e.support import (
    INTERVAL,
    NAME,
    Cluster,
    StartOperator,
    demo_docs,
    eventually,
    example_docs,
    rollout_of,
)
from tests.lab.test_cli_plugin import make_plugin

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(240),
    pytest.mark.lab_only("runs operator processes of its own and the lab's traffic generator"),
]

CANARY_ERRORS = [
    {
        "op": "replace",
        "path": "/spec/template/spec/containers/0/image",
        "value": "ghcr.io/rollwise/demo-service:1.1.0",
    },
    {
        "op": "add",
        "path": "/spec/template/metadata/annotations",
        "value": {"lab.rollwise.dev/error-ratio": "0.2"},
    },
]
HEALTHY_CANARY = CANARY_ERRORS[:1]

SELECT = 'namespace="{{namespace}}",service="demo",revision="{{revision}}"'
COMPARE_ERRORS = {
    "name": "error-ratio",
    "compare": {
        "query": (
            f'sum(rate(http_requests_total{{{SELECT},code=~"5.."}}[5s]))'
            f" / sum(rate(http_requests_total{{{SELECT}}}[5s]))"
        ),
        "step": "1s",
        "minSamples": 5,
        "critical": True,
    },
    "count": 3,
}
CANARY = 'namespace="{{namespace}}",service="demo",revision="{{canaryRevision}}"'
BURN_RATE = {
    "name": "availability",
    "sloBurnRate": {
        "objective": 0.99,
        "badQuery": f'sum(increase(http_requests_total{{{CANARY},code=~"5.."}}[{{{{window}}}}]))',
        "totalQuery": f"sum(increase(http_requests_total{{{CANARY}}}[{{{{window}}}}]))",
        "pairs": [{"long": "5m", "short": "1m", "rate": 5, "severity": "critical"}],
    },
    "count": 3,
}


def docs_with(cluster: Cluster, metrics: list[dict[str, Any]] | None, mode: str = "auto") -> Any:
    docs = demo_docs(cluster.test_id)
    canary = rollout_of(docs)["spec"]["strategy"]["canary"]
    canary["decisionMode"] = mode
    if metrics is not None:
        canary["analysis"]["metrics"] = metrics
        # Early samples of a young canary are too few: they pause nothing, the judge waits.
        canary["analysis"]["inconclusiveLimit"] = 30
    return docs


def baseline_docs_with(cluster: Cluster, metrics: list[dict[str, Any]]) -> Any:
    """``examples/rollout-baseline`` (a baseline beside the canary, its own Service in the
    route) with the demo's test-sized steps and ``metrics`` as its analysis."""
    docs = example_docs("rollout-baseline", cluster.test_id)
    canary = rollout_of(docs)["spec"]["strategy"]["canary"]
    assert (canary["baseline"], canary["baselineService"]) == (True, "demo-baseline")
    canary["decisionMode"] = "auto"
    canary["steps"] = [{"setWeight": 5}, {"setWeight": 25}, {"setWeight": 100}]
    canary["scaleDownDelaySeconds"] = 2
    canary["analysis"] = {
        "interval": f"{INTERVAL:g}s",
        "metrics": metrics,
        # Until the baseline's pods serve, its side has no samples: the judge waits.
        "inconclusiveLimit": 30,
    }
    return docs


def start(cluster: Cluster, start_operator: StartOperator, docs: Any) -> str:
    cluster.apply(docs)
    start_operator("--namespace", cluster.namespace)
    cluster.k("wait", "--for=condition=Ready", f"rollout/{NAME}", "--timeout=30s")
    cluster.the_lab.start_traffic(f"httproute/{cluster.namespace}/{NAME}", rate=50)
    return str(cluster.status()["stableRevision"])


def new_revision(cluster: Cluster, ops: list[dict[str, Any]]) -> str:
    cluster.patch_template(ops)
    return revision_of(cluster.rollout()["spec"]["template"])


def degraded(cluster: Cluster, timeout: float) -> dict[str, Any]:
    return eventually(
        lambda: (s := cluster.status()).get("phase") == "Degraded" and s,
        timeout=timeout,
        what="phase Degraded",
    )


def test_a_compare_metric_rolls_back_a_canary_worse_than_stable(
    cluster: Cluster, start_operator: StartOperator
) -> None:
    stable = start(cluster, start_operator, docs_with(cluster, [COMPARE_ERRORS]))
    bad = new_revision(cluster, CANARY_ERRORS)
    eventually(lambda: cluster.route_weight() == 5, timeout=20, what="the canary at 5%")
    status = degraded(cluster, 60)
    assert status["rolledBackRevision"] == bad
    assert cluster.route_weight() == 0
    (metric,) = status["analysis"]["metrics"]
    failed = [m for m in metric["measurements"] if m["verdict"] == "Fail"]
    assert failed, metric
    evidence = failed[-1]["compare"]
    assert evidence["control"] == "stable"
    assert evidence["canarySamples"] >= 5
    assert evidence["controlSamples"] >= 5
    assert evidence["pValue"] < 0.01
    assert evidence["canaryMedian"] > evidence["controlMedian"]
    decision = status["decision"]
    assert (decision["action"], decision["recommended"]) == ("rollback", "rollback")
    assert decision["reasons"][0]["code"] == "CriticalMetricFailed"
    assert status["stableRevision"] == stable
    assert "DecisionChanged" in cluster.reasons()
    # The plugin explains the operator's decision with the evidence it rests on.
    plugin = make_plugin(cluster.kubeconfig)
    shown = plugin("explain", "rollout", NAME, "-n", cluster.namespace)
    assert shown.returncode == 0, shown.stderr
    headline = next(line for line in shown.stdout.splitlines() if line.startswith("Decision:"))
    assert "ROLLBACK" in headline, shown.stdout
    assert "CriticalMetricFailed" in shown.stdout
    compare_rows = [line.split() for line in shown.stdout.splitlines() if "error-ratio" in line]
    assert any(row[1] == "stable" for row in compare_rows if len(row) > 1), shown.stdout
    as_json = plugin("explain", "rollout", NAME, "-n", cluster.namespace, "-o", "json")
    assert as_json.returncode == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    assert document["decision"] == decision
    (explained,) = document["evidence"]["metrics"]
    assert explained["kind"] == "compare"


def test_a_compare_metric_rolls_back_a_canary_worse_than_its_baseline(
    cluster: Cluster, start_operator: StartOperator
) -> None:
    docs = baseline_docs_with(cluster, [COMPARE_ERRORS])
    cluster.apply(docs)
    start_operator("--namespace", cluster.namespace)
    cluster.k("wait", "--for=condition=Ready", f"rollout/{NAME}", "--timeout=30s")
    stable = str(cluster.status()["stableRevision"])
    baseline = baseline_revision_of(stable)
    generator = cluster.the_lab.start_traffic(f"httproute/{cluster.namespace}/{NAME}", rate=50)
    bad = new_revision(cluster, CANARY_ERRORS)
    eventually(
        lambda: f"{NAME}-{baseline}" in cluster.deployments(),
        timeout=20,
        what="the baseline's Deployment",
    )
    eventually(
        lambda: cluster.status().get("baseline", {}).get("revision") == baseline,
        timeout=20,
        what="the baseline in the status",
    )
    status = degraded(cluster, 60)
    assert status["rolledBackRevision"] == bad
    assert status["stableRevision"] == stable
    (metric,) = status["analysis"]["metrics"]
    failed = [m for m in metric["measurements"] if m["verdict"] == "Fail"]
    assert failed, metric
    # Judged against the baseline (the stable template in fresh pods), not the stable.
    evidence = failed[-1]["compare"]
    assert evidence["control"] == "baseline"
    assert evidence["canarySamples"] >= 5
    assert evidence["controlSamples"] >= 5
    assert evidence["pValue"] < 0.01
    assert evidence["canaryMedian"] > evidence["controlMedian"]
    decision = status["decision"]
    assert (decision["action"], decision["recommended"]) == ("rollback", "rollback")
    assert decision["reasons"][0]["code"] == "CriticalMetricFailed"

    # The baseline served the stable's behaviour: no 5xx; the canary's did fail.
    codes = generator.stats.codes
    assert codes.get((baseline, 200), 0) > 0, codes
    assert codes.get((baseline, 500), 0) == 0, codes
    assert codes.get((bad, 500), 0) > 0, codes

    # Traffic back on the stable revision, the baseline removed.
    # The status is written ahead of the pass's actions: the route follows the Degraded phase.
    back = {"demo-stable": 100, "demo-canary": 0, "demo-baseline": 0}

    def weights() -> dict[str, int]:
        refs = cluster.route()["spec"]["rules"][0]["backendRefs"]
        return {r["name"]: int(r.get("weight", 1)) for r in refs}

    eventually(lambda: weights() == back, timeout=30, what=f"the route back to stable {back}")
    assert "baseline" not in status
    eventually(
        lambda: f"{NAME}-{baseline}" not in cluster.deployments(),
        timeout=15,
        what="the baseline's Deployment deleted",
    )
    eventually(
        lambda: {r for r, w in generator.weights.items() if round(100 * w)} == {stable},
        timeout=10,
        what="all traffic back on the stable revision",
    )
    assert "DecisionChanged" in cluster.reasons()


def test_an_slo_burning_its_budget_rolls_the_canary_back(
    cluster: Cluster, start_operator: StartOperator
) -> None:
    start(cluster, start_operator, docs_with(cluster, [BURN_RATE]))
    bad = new_revision(cluster, CANARY_ERRORS)
    eventually(lambda: cluster.route_weight() == 5, timeout=20, what="the canary at 5%")
    # The first burn-rate measurement waits for a one-minute window.
    status = degraded(cluster, 150)
    assert status["rolledBackRevision"] == bad
    (metric,) = status["analysis"]["metrics"]
    failed = [m for m in metric["measurements"] if m["verdict"] == "Fail"]
    assert failed, metric
    evidence = failed[-1]["burnRate"]
    windows = {w["window"]: w for w in evidence["windows"]}
    # 20% errors against a 1% budget: a burn rate near 20 over both windows.
    assert 10 < windows["1m"]["burnRate"] < 30
    # Judged because each window counted at least minEvents (default 100) requests: about
    # 150 a minute reach the 5% canary at 50 requests/s.
    assert all(w["events"] >= 100 for w in windows.values()), windows
    assert windows["5m"]["shortened"] is True
    (pair,) = evidence["pairs"]
    assert (pair["long"], pair["short"], pair["threshold"], pair["state"]) == (
        "5m",
        "1m",
        5,
        "Firing",
    )
    decision = status["decision"]
    assert decision["action"] == "rollback"
    assert decision["reasons"][0]["code"] == "SloBurnCritical"
    # The burn-rate queries were parsed by Prometheus when the spec was first seen.
    verified = {c["type"]: c for c in status["conditions"]}["QueriesVerified"]
    assert (verified["status"], verified["reason"]) == ("True", "Verified")


def test_advisory_mode_holds_until_a_human_promotes(
    cluster: Cluster, start_operator: StartOperator
) -> None:
    start(cluster, start_operator, docs_with(cluster, None, mode="advisory"))
    new_revision(cluster, HEALTHY_CANARY)
    status = eventually(
        lambda: (s := cluster.status()).get("pauseReason") == "AwaitingDecision" and s,
        timeout=60,
        what="the canary held at its first gate",
    )
    assert cluster.route_weight() == 5
    assert status["currentStepIndex"] == 0
    decision = status["decision"]
    assert (decision["action"], decision["recommended"]) == ("hold", "expand")
    assert decision["requiredActions"][0]["id"] == "promote-by-hand"
    assert "AwaitingDecision" in cluster.reasons()
    cluster.k("annotate", f"rollout/{NAME}", "rollwise.dev/promote=p1")
    eventually(lambda: cluster.route_weight() == 25, timeout=30, what="the canary at 25%")
    assert "Promoted" in cluster.reasons()
