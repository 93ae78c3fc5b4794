"""A ModelRelease's post-promotion watch end to end: version 2 of a model reaches Production
over version 1 (the real operator process in the lab, the real MLflow registry, Prometheus,
``examples/modelrelease-template`` with the watch of ``examples/modelrelease-mlflow`` at
test-sized timings, half of version 1's replicas kept warm), then its demo service's error
ratio is raised. The regression is detected, confirmed, and rolled back on the fast track:
MLflow's own API shows the alias back on version 1 and the child Rollout serves version 1's
revision again. With ``onRegression`` alert the regression is only recorded and counted;
with hold the next version waits Queued until it clears; a blip shorter than the
confirmation is one false positive. Checked through the API only
(status, events, MLflow's REST API, the child Rollout, the operator's metrics endpoint)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hack.lab.mlflow import MLflowServer
from tests.e2e.support import REPO, Cluster, StartOperator, eventually, free_port
from tests.e2e.test_modelrelease_e2e import (
    APP,
    CLIENT_SERVICE,
    REGISTRY,
    TemplateModel,
    child_rollout,
    events_of,
    load_docs,
    mlflow_alias,
    operator_policies,
    set_lab_behaviour,
    status_of,
    to_production,
    wait_stage,
)
from tests.e2e.test_post_promotion_e2e import regression_counters

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(300),
    pytest.mark.lab_only("raises the error ratio of a revision's demo service in the lab"),
]

MLFLOW_EXAMPLE = REPO / "examples" / "modelrelease-mlflow"


def example_watch() -> dict[str, Any]:
    """``examples/modelrelease-mlflow``'s watch with the template example's service and
    test-sized timings: every 2 s over 4 s and 20 s windows, confirmed after 2 bad
    evaluations."""
    (release,) = [d for d in load_docs(MLFLOW_EXAMPLE) if d["kind"] == "ModelRelease"]
    watch: dict[str, Any] = copy.deepcopy(release["spec"]["canary"]["postPromotion"])
    watch.update(
        {
            "duration": "240s",
            "interval": "2s",
            "windows": {"short": "4s", "long": "20s"},
            "confirmAfter": 2,
            "clearAfter": 2,
            "previousRevisionReplicas": 50,
        }
    )
    for metric in watch["metrics"]:
        source = metric["provider"]["prometheus"]
        source["query"] = source["query"].replace('service="recommender"', f'service="{APP}"')
    return watch


def revision_replicas(cluster: Cluster, revision: str) -> tuple[int, int] | None:
    """(spec.replicas, status.readyReplicas) of the child Rollout's Deployment of
    ``revision``; None when there is none."""
    listing = cluster.apps.list_namespaced_deployment(
        cluster.namespace, label_selector=f"rollwise.dev/revision={revision}"
    )
    for deployment in listing.items:
        ready = deployment.status.ready_replicas if deployment.status is not None else 0
        return int(deployment.spec.replicas or 0), int(ready or 0)
    return None


@dataclass
class Watched:
    """Version 2 of a model in Production over version 1, its watch started with version 1's
    values captured."""

    model: str
    name: str
    old: str
    new: str
    port: int
    watch: dict[str, Any]
    fraud: TemplateModel


def watched_release(
    cluster: Cluster,
    start_operator: StartOperator,
    mlflow_server: MLflowServer,
    tmp_path: Path,
    **watch: Any,
) -> Watched:
    """The operator (its metrics on a port of its own), version 1 then version 2 in
    Production with ``example_watch()`` updated by ``watch``, traffic through the client
    Service, and the watch started."""
    model = f"fraud-{cluster.test_id}"
    fraud = TemplateModel(cluster, tmp_path, model, {"mlflow": {"registry": REGISTRY}})
    fraud.register(mlflow_server, "1", "2")
    port = free_port()
    operator = start_operator(
        "--namespace",
        cluster.namespace,
        ROLLWISE_METRICS_PORT=str(port),
        **operator_policies(tmp_path, cluster.namespace, mlflow_server.url),
    )
    start_operator.wait_webhook(operator)

    first = to_production(cluster, fraud.docs("1"), fraud.name("1"))
    old = str(first["serving"]["revision"])
    assert mlflow_alias(mlflow_server, model) == "1"
    cluster.the_lab.start_traffic(f"service/{cluster.namespace}/{CLIENT_SERVICE}", rate=50)

    name = fraud.name("2")
    docs = fraud.docs("2")
    release = next(d for d in docs if d["kind"] == "ModelRelease")
    release["spec"]["canary"]["postPromotion"] = {**example_watch(), **watch}
    second = to_production(cluster, docs, name, timeout=60)
    new = str(second["serving"]["revision"])
    assert new != old
    assert mlflow_alias(mlflow_server, model) == "2"
    # The watch runs on the release, against the version the alias pointed at before.
    started = eventually(
        lambda: (
            (pp := status_of(cluster, name).get("postPromotion") or {}).get("previousCaptured")
            and pp
        ),
        timeout=30,
        what="the watch started with the previous version's values captured",
    )
    return Watched(model, name, old, new, port, started, fraud)


def test_a_regression_after_production_flips_the_mlflow_alias_back(
    cluster: Cluster,
    start_operator: StartOperator,
    mlflow_server: MLflowServer,
    tmp_path: Path,
) -> None:
    watched = watched_release(cluster, start_operator, mlflow_server, tmp_path)
    model, name, old, new, port = (
        watched.model,
        watched.name,
        watched.old,
        watched.new,
        watched.port,
    )
    watch = watched.watch
    assert (watch["phase"], watch["revision"], watch["previousRevision"]) == ("Watching", "2", "1")
    assert [k["name"] for k in watch["kpis"]] == ["error-ratio"]
    # The child keeps version 1's revision warm for the watch: half of its 4 replicas.
    canary = child_rollout(cluster, model)["spec"]["strategy"]["canary"]
    assert (canary["scaleDownDelaySeconds"], canary["scaleDownDelayReplicas"]) == (242, 50)
    eventually(
        lambda: revision_replicas(cluster, old) == (2, 2),
        timeout=30,
        what="version 1's revision warm at 2 of 4 replicas",
    )

    set_lab_behaviour(cluster, new, 0.5)

    def rolled_back() -> dict[str, Any] | None:
        status = status_of(cluster, name)
        return status if status.get("stage") == "RolledBack" else None

    status = eventually(rolled_back, timeout=90, what=f"{name} rolled back", every=0.2)
    pp = status["postPromotion"]
    assert (pp["phase"], pp["action"]) == ("Regressed", "rollback")
    kpi = pp["kpis"][0]
    assert (kpi["state"], kpi["confirmed"], kpi["episodes"]) == ("confirmed", True, 1)
    assert status["decision"]["action"] == "rollback"
    assert status["history"][-1]["stage"] == "RolledBack"

    # The registry itself: MLflow's API shows the alias back on version 1, read back.
    eventually(
        lambda: mlflow_alias(mlflow_server, model) == "1",
        timeout=30,
        what="the MLflow alias back on version 1",
    )
    eventually(
        lambda: (status_of(cluster, name).get("alias") or {}).get("restored"),
        timeout=30,
        what="the release to read the alias back on version 1",
    )
    # The serving traffic back on version 1's revision: the child Rollout promoted its
    # template at once, no canary left (that its traffic follows is the revoke test's).
    child = eventually(
        lambda: (c := child_rollout(cluster, model))["status"].get("stableRevision") == old and c,
        timeout=30,
        what="the child Rollout back on the previous revision",
    )
    assert child["status"].get("canaryWeight", 0) == 0
    # Back at full size, and the regressed revision kept warm in turn.
    eventually(
        lambda: revision_replicas(cluster, old) == (4, 4),
        timeout=30,
        what="version 1's revision back at 4 replicas",
    )

    # One episode: one event of each kind, each carrying the change ticket.
    events = events_of(cluster, name)
    reasons = [e["reason"] for e in events]
    for reason in ("RegressionDetected", "RegressionConfirmed", "RegressionRollback"):
        assert reasons.count(reason) == 1, reasons
    assert "AliasRestored" in reasons, reasons
    ticket = f"[change CHG-{cluster.test_id}-2]"
    assert all(ticket in e["message"] for e in events if e["reason"].startswith("Regression"))

    counters = eventually(
        lambda: (c := regression_counters(port)).get("rollwise_regression_confirmed_total") and c,
        timeout=20,
        what="the regression counters",
    )
    labels, detected = counters["rollwise_regression_detected_total"]
    assert detected == 1
    assert counters["rollwise_regression_confirmed_total"][1] == 1
    assert (labels["namespace"], labels["name"]) == (cluster.namespace, name)
    assert (labels["severity"], labels["reason"]) == ("critical", "error_rate_regression")


def test_alert_only_alerts_the_alias_stays(
    cluster: Cluster,
    start_operator: StartOperator,
    mlflow_server: MLflowServer,
    tmp_path: Path,
) -> None:
    """``onRegression.critical: alert``: the regression is confirmed, on record and counted,
    and nothing moves: version 2 stays in Production with the alias, the child Rollout keeps
    serving its revision."""
    watched = watched_release(
        cluster, start_operator, mlflow_server, tmp_path, onRegression={"critical": "alert"}
    )
    set_lab_behaviour(cluster, watched.new, 0.5)
    status = eventually(
        lambda: (
            (s := status_of(cluster, watched.name)).get("postPromotion", {}).get("action")
            == "alert"
            and s
        ),
        timeout=90,
        what="the regression confirmed with action alert",
        every=0.2,
    )
    assert status["stage"] == "Production"
    assert status["decision"]["reasons"][0]["code"] == "RegressionConfirmed"
    kpi = status["postPromotion"]["kpis"][0]
    assert (kpi["state"], kpi["confirmed"]) == ("confirmed", True)
    # Nothing moved, and nothing moves on later evaluations either.
    for _ in range(3):
        evaluations = int(status_of(cluster, watched.name)["postPromotion"]["evaluations"])
        eventually(
            lambda n=evaluations: (
                int(status_of(cluster, watched.name)["postPromotion"]["evaluations"]) > n
            ),
            timeout=30,
            what="a later evaluation",
        )
        assert status_of(cluster, watched.name)["stage"] == "Production"
        assert mlflow_alias(mlflow_server, watched.model) == "2"
        child = child_rollout(cluster, watched.model)
        assert child["status"]["stableRevision"] == watched.new
    reasons = [e["reason"] for e in events_of(cluster, watched.name)]
    assert reasons.count("RegressionConfirmed") == 1, reasons
    assert "RegressionRollback" not in reasons
    assert "AliasRestored" not in reasons
    counters = eventually(
        lambda: (
            (c := regression_counters(watched.port)).get("rollwise_regression_confirmed_total")
            and c
        ),
        timeout=20,
        what="the regression counters",
    )
    assert counters["rollwise_regression_confirmed_total"][1] == 1


def test_a_blip_is_one_false_positive_and_the_alias_stays(
    cluster: Cluster,
    start_operator: StartOperator,
    mlflow_server: MLflowServer,
    tmp_path: Path,
) -> None:
    """A burst of errors shorter than the confirmation (eight bad evaluations, 16 s): one
    detection, one false positive, no rollback and no repeated event; version 2 keeps the
    alias."""
    watched = watched_release(cluster, start_operator, mlflow_server, tmp_path, confirmAfter=8)

    def errors() -> dict[str, Any]:
        return dict(status_of(cluster, watched.name)["postPromotion"]["kpis"][0])

    set_lab_behaviour(cluster, watched.new, 0.6)
    eventually(
        lambda: errors()["state"] == "detected", timeout=30, what="the blip detected", every=0.05
    )
    set_lab_behaviour(cluster, watched.new, 0.0)
    eventually(lambda: errors()["state"] == "cleared", timeout=60, what="the blip cleared")
    kpi = errors()
    assert (kpi["episodes"], kpi["confirmed"]) == (1, False)
    status = status_of(cluster, watched.name)
    assert status["stage"] == "Production"
    assert "action" not in status["postPromotion"]
    assert mlflow_alias(mlflow_server, watched.model) == "2"
    assert child_rollout(cluster, watched.model)["status"]["stableRevision"] == watched.new

    def cleared_events() -> list[dict[str, Any]] | None:
        found = events_of(cluster, watched.name)
        return found if any(e["reason"] == "RegressionCleared" for e in found) else None

    events = eventually(cleared_events, timeout=20, what="the cleared event")
    reasons = [e["reason"] for e in events]
    assert reasons.count("RegressionDetected") == 1, reasons
    assert reasons.count("RegressionCleared") == 1, reasons
    assert "RegressionConfirmed" not in reasons
    assert "RegressionRollback" not in reasons
    cleared = next(e for e in events if e["reason"] == "RegressionCleared")
    assert "false positive" in cleared["message"]
    counted = eventually(
        lambda: (
            (c := regression_counters(watched.port)).get("rollwise_regression_false_positive_total")
            and c
        ),
        timeout=20,
        what="the regression counters",
    )
    assert counted["rollwise_regression_detected_total"][1] == 1
    assert counted["rollwise_regression_false_positive_total"][1] == 1
    assert "rollwise_regression_confirmed_total" not in counted


def test_hold_keeps_the_model_s_slot_until_the_regression_clears(
    cluster: Cluster,
    start_operator: StartOperator,
    mlflow_server: MLflowServer,
    tmp_path: Path,
) -> None:
    """``onRegression.critical: hold``: while the regression stays confirmed, version 2 keeps
    Production and the alias, and version 3 waits in Candidate, Queued behind it; once the
    regression clears, version 3 goes on to Production."""
    watched = watched_release(
        cluster, start_operator, mlflow_server, tmp_path, onRegression={"critical": "hold"}
    )
    set_lab_behaviour(cluster, watched.new, 0.5)
    eventually(
        lambda: status_of(cluster, watched.name)["postPromotion"].get("action") == "hold",
        timeout=90,
        what="the regression confirmed with action hold",
        every=0.2,
    )
    watched.fraud.register(mlflow_server, "3")
    third = watched.fraud.name("3")
    cluster.apply(watched.fraud.docs("3"))
    queued = eventually(
        lambda: (s := status_of(cluster, third)).get("phase") == "Queued" and s,
        timeout=30,
        what=f"{third} Queued behind the held release",
    )
    assert queued["stage"] == "Candidate"
    assert watched.name in queued["message"]
    held = status_of(cluster, watched.name)
    assert held["stage"] == "Production"
    assert "the next release of the model and alias waits" in held["message"]
    assert mlflow_alias(mlflow_server, watched.model) == "2"

    # Still held a few evaluations later: version 3 has not moved.
    evaluations = int(held["postPromotion"]["evaluations"])
    eventually(
        lambda: (
            int(status_of(cluster, watched.name)["postPromotion"]["evaluations"]) >= evaluations + 2
        ),
        timeout=30,
        what="two more evaluations",
    )
    assert status_of(cluster, third)["stage"] == "Candidate"

    # The regression clears: the slot is free, version 3 goes on.
    set_lab_behaviour(cluster, watched.new, 0.0)
    eventually(
        lambda: status_of(cluster, watched.name)["postPromotion"]["kpis"][0]["state"] == "cleared",
        timeout=60,
        what="the regression cleared",
    )
    status = wait_stage(cluster, third, "Production", timeout=90)
    assert status["alias"]["previousVersion"] == "2"
    assert mlflow_alias(mlflow_server, watched.model) == "3"
    reasons = [e["reason"] for e in events_of(cluster, watched.name)]
    assert reasons.count("RegressionConfirmed") == 1, reasons
    assert reasons.count("RegressionCleared") == 1, reasons
    assert "RegressionRollback" not in reasons
