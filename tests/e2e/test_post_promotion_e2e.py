"""The post-promotion regression watch end to end, as a user drives it: the
``examples/rollout-post-promotion`` Rollout with test-sized timings, the real operator process
in the lab, real Prometheus, and the lab's demo service whose error ratio a test raises on the
promoted revision after its canary completed. Checked through the API only (status, events,
Service selectors, the route)."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from rollwise.core.observations import revision_of
from tests.e2e.support import (
    NAME,
    Cluster,
    StartOperator,
    eventually,
    example_docs,
    fast_metric,
    free_port,
    http_get,
    rollout_of,
)

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(300),
    pytest.mark.lab_only("raises the error ratio of a revision's demo service in the lab"),
]

NEW_IMAGE = [
    {
        "op": "replace",
        "path": "/spec/template/spec/containers/0/image",
        "value": "ghcr.io/rollwise/demo-service:1.1.0",
    }
]


def watched_docs(cluster: Cluster, **watch: Any) -> list[dict[str, Any]]:
    """The example with the demo's test-sized canary and a watch of seconds: every 2 s over
    4 s and 20 s windows, confirmed after ``confirmAfter`` bad evaluations."""
    docs = example_docs("rollout-post-promotion", cluster.test_id)
    canary = rollout_of(docs)["spec"]["strategy"]["canary"]
    canary["steps"] = [{"setWeight": 25}, {"setWeight": 100}]
    canary["scaleDownDelaySeconds"] = 2
    analysis = canary["analysis"]
    analysis["interval"] = "1s"
    for metric in analysis["metrics"]:
        fast_metric(metric)
    post = canary["postPromotion"]
    post.update(
        {
            "duration": "240s",
            "interval": "2s",
            "windows": {"short": "4s", "long": "20s"},
            "confirmAfter": 2,
            "clearAfter": 2,
            "confirmWhenWindowsAgree": False,
        }
    )
    # The latency KPI stays in the example; only the error ratio is exercised here.
    post.update(watch)
    return docs


def promoted(
    cluster: Cluster, start_operator: StartOperator, docs: list[dict[str, Any]], **env: str
) -> tuple[str, str]:
    """The Rollout applied, its first revision stable, a canary of a new image run to 100%
    and its watch started with the previous revision's values captured."""
    cluster.apply(docs)
    start_operator("--namespace", cluster.namespace, **env)
    cluster.k("wait", "--for=condition=Ready", f"rollout/{NAME}", "--timeout=30s")
    cluster.the_lab.start_traffic(f"httproute/{cluster.namespace}/{NAME}", rate=50)
    old = str(cluster.status()["stableRevision"])
    cluster.patch_template(NEW_IMAGE)
    new = revision_of(cluster.rollout()["spec"]["template"])
    eventually(
        lambda: (
            (s := cluster.status()).get("stableRevision") == new
            and (s.get("postPromotion") or {}).get("previousCaptured")
        ),
        timeout=60,
        what="the new revision promoted and watched",
    )
    return old, new


def samples(port: int, name: str) -> list[tuple[dict[str, str], float]]:
    """The operator's samples of ``name``, from its metrics endpoint."""
    answer = http_get(f"http://127.0.0.1:{port}/metrics")
    assert answer is not None
    assert answer[0] == 200
    return [
        (dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(answer[1])
        for sample in family.samples
        if sample.name == name
    ]


def regression_counters(port: int) -> dict[str, tuple[dict[str, str], float]]:
    """The regression counters with a sample, by name (each has one series here)."""
    found = {}
    for which in ("detected", "confirmed", "false_positive"):
        name = f"rollwise_regression_{which}_total"
        for labels, value in samples(port, name):
            found[name] = (labels, value)
    return found


def watch(cluster: Cluster) -> dict[str, Any]:
    return dict(cluster.status()["postPromotion"])


def kpi(cluster: Cluster, name: str = "error-ratio") -> dict[str, Any]:
    return next(k for k in watch(cluster)["kpis"] if k["name"] == name)


def test_a_confirmed_regression_rolls_back_on_the_fast_track(
    cluster: Cluster, start_operator: StartOperator
) -> None:
    port = free_port()
    docs = watched_docs(cluster)
    old, new = promoted(cluster, start_operator, docs, ROLLWISE_METRICS_PORT=str(port))
    pp = watch(cluster)
    assert (pp["phase"], pp["revision"], pp["previousRevision"]) == ("Watching", new, old)
    # The previous revision stays warm at its full size for the watch.
    eventually(
        lambda: any(old in name and ready >= 1 for name, (_, ready) in cluster.replicas().items()),
        timeout=30,
        what="the previous revision warm",
    )
    assert cluster.selector("demo-stable")["rollwise.dev/revision"] == new
    cluster.the_lab.demo(new).configure(error_ratio=0.5)
    status = eventually(
        lambda: (s := cluster.status()).get("phase") == "Degraded" and s,
        timeout=60,
        what="the fast-track rollback",
    )
    assert status["stableRevision"] == old
    assert status["rolledBackRevision"] == new
    post = status["postPromotion"]
    assert (post["phase"], post["action"]) == ("Regressed", "rollback")
    (errors,) = [k for k in post["kpis"] if k["name"] == "error-ratio"]
    assert errors["state"] == "confirmed"
    assert errors["reason"] == "error_rate_regression"
    assert errors["previous"] is not None
    assert errors["value"] > errors["previous"]
    degraded = cluster.condition("Degraded")
    assert degraded is not None
    assert degraded["reason"] == "RegressionRollback"
    assert status["decision"]["action"] == "rollback"
    assert status["decision"]["reasons"][0]["code"] == "RegressionConfirmed"
    # The previous revision serves all traffic: the stable Service selects it, the route
    # sends nothing to the canary Service, and the regressed revision is scaled away.
    assert cluster.selector("demo-stable")["rollwise.dev/revision"] == old
    assert cluster.route_weight() == 0
    eventually(
        lambda: all(spec == 0 for name, (spec, _) in cluster.replicas().items() if new in name),
        timeout=30,
        what="the regressed revision scaled to zero",
    )
    reasons = eventually(
        lambda: (r := cluster.reasons()).count("RegressionRollback") == 1 and r,
        timeout=20,
        what="the rollback's events",
    )
    assert reasons.count("RegressionDetected") == 1
    assert reasons.count("RegressionConfirmed") == 1
    labels = {
        "namespace": cluster.namespace,
        "name": NAME,
        "severity": "critical",
        "reason": "error_rate_regression",
    }
    assert regression_counters(port) == {
        "rollwise_regression_detected_total": (labels, 1.0),
        "rollwise_regression_confirmed_total": (labels, 1.0),
    }
    rollbacks = samples(port, "rollwise_rollbacks_total")
    assert rollbacks == [
        ({"namespace": cluster.namespace, "rollout": NAME, "reason": "RegressionRollback"}, 1.0)
    ]


def test_a_blip_is_one_false_positive_and_no_rollback(
    cluster: Cluster, start_operator: StartOperator
) -> None:
    # Eight bad evaluations in a row confirm (16 s): a blip of about a second stays shorter.
    port = free_port()
    docs = watched_docs(cluster, confirmAfter=8)
    old, new = promoted(cluster, start_operator, docs, ROLLWISE_METRICS_PORT=str(port))
    demo = cluster.the_lab.demo(new)
    demo.configure(error_ratio=0.6)
    eventually(
        lambda: kpi(cluster)["state"] == "detected",
        timeout=30,
        what="the blip detected",
        every=0.05,
    )
    demo.configure(error_ratio=0.0)
    eventually(
        lambda: kpi(cluster)["state"] == "cleared",
        timeout=60,
        what="the blip cleared",
    )
    errors = kpi(cluster)
    assert errors["episodes"] == 1
    assert errors["confirmed"] is False
    status = cluster.status()
    assert status["stableRevision"] == new
    assert status["phase"] == "Healthy"
    assert "action" not in status["postPromotion"]
    assert cluster.selector("demo-stable")["rollwise.dev/revision"] == new
    reasons = eventually(
        lambda: "RegressionCleared" in (r := cluster.reasons()) and r,
        timeout=20,
        what="the cleared event",
    )
    assert reasons.count("RegressionDetected") == 1
    assert reasons.count("RegressionCleared") == 1
    assert "RegressionConfirmed" not in reasons
    assert "RegressionRollback" not in reasons
    cleared = next(e for e in cluster.events() if e["reason"] == "RegressionCleared")
    assert "false positive" in cleared["message"]
    assert old != new
    # One detection and one false positive counted, labelled as the contract says.
    counted = regression_counters(port)
    labels = {
        "namespace": cluster.namespace,
        "name": NAME,
        "severity": "critical",
        "reason": "error_rate_regression",
    }
    assert counted == {
        "rollwise_regression_detected_total": (labels, 1.0),
        "rollwise_regression_false_positive_total": (labels, 1.0),
    }


def test_alert_only_alerts(cluster: Cluster, start_operator: StartOperator) -> None:
    docs = watched_docs(cluster, onRegression={"critical": "alert"})
    old, new = promoted(cluster, start_operator, docs)
    cluster.the_lab.demo(new).configure(error_ratio=0.5)
    eventually(
        lambda: watch(cluster).get("action") == "alert",
        timeout=60,
        what="the regression confirmed with action alert",
    )
    status = cluster.status()
    assert status["stableRevision"] == new
    assert status["phase"] == "Healthy"
    assert "rolledBackRevision" not in status
    assert status["decision"]["reasons"][0]["code"] == "RegressionConfirmed"
    assert cluster.selector("demo-stable")["rollwise.dev/revision"] == new
    reasons = eventually(
        lambda: "RegressionConfirmed" in (r := cluster.reasons()) and r,
        timeout=20,
        what="the confirmation's event",
    )
    assert reasons.count("RegressionConfirmed") == 1
    assert "RegressionRollback" not in reasons
    assert old != new
