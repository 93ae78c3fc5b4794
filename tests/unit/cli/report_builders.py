"""Objects for the scoreboard and the reports, as the operator leaves them in status: a Rollout
whose canary is judged (the decision and the analysis evidence of :mod:`decision_builders`,
with a compare metric in its spec so that its KPI has a target, an event log of its steps
and override records), and a ModelRelease in Production whose post-promotion watch records
KPIs in each episode state (``status.postPromotion``, the regression watch's wire form)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from rollwise.core.decision import Mode
from tests.unit.cli import cli_builders as b
from tests.unit.cli import decision_builders as d
from tests.unit.cli import release_builders as r

NOW = b.NOW

COMPARE_METRIC = {
    "name": "latency-vs-baseline",
    "compare": {
        "query": 'histogram_quantile(0.99, rate(latency{revision="{{revision}}"}[1m]))',
        "tolerance": 0.1,
    },
}


def log_entry(
    seq: int, reason: str, message: str, seconds_ago: float, type_: str = "Normal"
) -> dict[str, Any]:
    return {
        "seq": seq,
        "type": type_,
        "reason": reason,
        "message": message,
        "time": b.stamp(seconds_ago),
    }


#: The Rollout's event log: step 1 passed, step 2 under analysis with a decision.
ROLLOUT_LOG = [
    log_entry(1, "RevisionDetected", f"new revision {b.CANARY} detected (stable {b.STABLE})", 900),
    log_entry(2, "WeightSet", "step 1/5: canary weight set to 5% (stable 95%)", 890),
    log_entry(3, "AnalysisPassed", "step 1/5: analysis passed (error-ratio 3/3)", 600),
    log_entry(4, "StepAdvanced", "step 1/5 (setWeight 5%) complete; now at step 2/5", 590),
    log_entry(5, "WeightSet", "step 2/5: canary weight set to 25% (stable 75%)", 589),
    log_entry(
        6,
        "DecisionChanged",
        "step 2/5: decision hold at high confidence [SloBurnCritical, AdvisoryMode]: hold "
        "(advisory mode; auto would roll back at high confidence)",
        30,
    ),
]


def override_records(*entries: dict[str, Any]) -> dict[str, str]:
    """``rollwise.dev/overrides`` in the signed list format (the plugin shows the records,
    it does not check signatures)."""
    numbered = [{**e, "n": i + 1, "sig": "00"} for i, e in enumerate(entries)]
    body = {"version": 2, "seq": len(numbered), "entries": numbered, "sig": "00"}
    return {"rollwise.dev/overrides": json.dumps(body)}


HOLD_BY_CAROL = {
    "id": "ovr-1",
    "decision": "hold",
    "reason": "checking the checkout dashboard",
    "user": "carol@example.com",
    "at": b.stamp(120),
    "target": b.CANARY,
}
OLD_PROMOTE = {
    "id": "ovr-0",
    "decision": "promote",
    "reason": "an older revision",
    "user": "dave@example.com",
    "at": b.stamp(3 * 86400),
    "target": b.STABLE,
    "confirmedBy": "erin@example.com",
    "confirmedAt": b.stamp(3 * 86400 - 60),
}


def judged_rollout(mode: Mode = Mode.ADVISORY) -> dict[str, Any]:
    """A Rollout at step 2/5 (25%) whose canary is judged: threshold metrics on track, a
    compare metric inside the attention band, an SLO burning past its pair's rate."""
    decision, runs, compare, burn = d.evidence(NOW, mode=mode)
    obj = b.rollout(b.canary_at_step_2())
    obj["spec"]["strategy"]["canary"]["analysis"]["metrics"].append(dict(COMPARE_METRIC))
    obj["metadata"]["uid"] = "uid-web"
    obj["metadata"]["annotations"] = override_records(OLD_PROMOTE, HOLD_BY_CAROL)
    status = obj["status"]
    status["decision"] = d.decision_wire(decision)
    status["analysis"] = d.analysis_wire(
        NOW, revision=b.CANARY, step_index=1, runs=runs, compare=compare, burn=burn
    )
    status["eventLog"] = {"seq": 6, "posted": 6, "entries": [dict(e) for e in ROLLOUT_LOG]}
    return obj


def kpi(
    name: str,
    reason: str,
    state: str,
    *,
    value: float,
    target: float,
    previous: float,
    status: str,
    severity: str = "critical",
    confirmed: bool = False,
    seconds_ago: float = 600,
) -> dict[str, Any]:
    """One ``status.postPromotion.kpis`` entry as the watch records it."""
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
        "relativeDelta": (value - previous) / abs(previous),
        "status": status,
        "badCount": 3 if state == "confirmed" else 0,
        "goodCount": 0,
        "episodes": 1 if state != "ok" else 0,
        "confirmed": confirmed,
        "lastTransitionAt": b.stamp(seconds_ago),
    }


WATCHED_KPIS = [
    kpi(
        "error-rate",
        "error_rate_regression",
        "confirmed",
        value=0.031,
        target=0.02,
        previous=0.004,
        status="off_track",
        confirmed=True,
        seconds_ago=300,
    ),
    kpi(
        "approval-rate",
        "approval_rate_drop",
        "cleared",
        value=0.93,
        target=0.9,
        previous=0.94,
        status="on_track",
        severity="warning",
        seconds_ago=1200,
    ),
    kpi(
        "p95-latency",
        "latency_regression",
        "detected",
        value=0.41,
        target=0.4,
        previous=0.3,
        status="attention",
        severity="warning",
        seconds_ago=60,
    ),
]


def watched_release() -> dict[str, Any]:
    """A ModelRelease in Production whose watch confirmed an error-rate regression (rolled
    back on the fast track), saw a blip of its approval rate clear unconfirmed, and has a
    latency regression detected."""
    obj = r.release(r.production())
    obj["metadata"]["uid"] = "uid-fraud"
    status = obj["status"]
    status["postPromotion"] = {
        "phase": "Regressed",
        "startedAt": b.stamp(1800),
        "endsAt": (NOW + timedelta(hours=23, minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "previousRevision": "6",
        "action": "rollback",
        "kpis": [dict(k) for k in WATCHED_KPIS],
    }
    status["eventLog"] = {
        "seq": 2,
        "posted": 2,
        "entries": [
            log_entry(1, "PromotedToProduction", r.PRODUCTION_MESSAGE, 1800),
            log_entry(
                2,
                "ReleaseRolledBack",
                "version 7 rolled back at stage Production: error-rate regression confirmed",
                290,
                "Warning",
            ),
        ],
    }
    return obj


def quiet_rollout(name: str, namespace: str, days_ago: float) -> dict[str, Any]:
    """A Healthy Rollout whose last recorded transition is ``days_ago`` old."""
    obj = b.rollout(b.healthy())
    obj["metadata"] |= {"name": name, "namespace": namespace, "uid": f"uid-{name}"}
    obj["status"]["eventLog"] = {
        "seq": 1,
        "posted": 1,
        "entries": [log_entry(1, "RolloutCompleted", "revision x is stable", days_ago * 86400)],
    }
    return obj
