"""A regression hold lifted by two people, end to end: the ``examples/rollout-post-promotion``
Rollout with test-sized timings and ``onRegression.critical: hold``, the real operator process
in the lab with its admission webhook on, real Prometheus, and people the lab cluster
authenticates by token (as in test_override_e2e).

The promoted revision's error ratio is raised until the regression is confirmed with action
hold; a new revision then waits (phase Paused, reason RegressionHold). alice's promote
override of it is recorded but does nothing until bob confirms it; then the hold is lifted
(RegressionHoldLifted, ``status.postPromotion.holdLifted`` naming both) and the new revision
goes through its canary to stable. Checked through the API and the plugin only."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hack.lab.testing.cluster_fixtures import grant_namespace
from rollwise.core.observations import revision_of
from tests.e2e.support import INTERVAL, NAME, Cluster, StartOperator, eventually
from tests.e2e.test_governance_e2e import Governance
from tests.e2e.test_override_e2e import PEOPLE, override, recorded_id
from tests.e2e.test_post_promotion_e2e import NEW_IMAGE, kpi, watch, watched_docs

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(300),
    pytest.mark.lab_only(
        "raises the error ratio of a revision's demo service in the lab, runs an operator "
        "process of its own with its admission webhook, and acts as several people the lab "
        "cluster authenticates by token"
    ),
]

THIRD_IMAGE = [{**NEW_IMAGE[0], "value": "ghcr.io/rollwise/demo-service:1.2.0"}]


def test_a_promote_override_confirmed_by_a_second_person_lifts_a_regression_hold(
    cluster: Cluster, start_operator: StartOperator, tmp_path: Path
) -> None:
    grant_namespace(cluster.the_lab.running_cluster, cluster.namespace, list(PEOPLE))
    operator = start_operator("--namespace", cluster.namespace)
    start_operator.wait_webhook(operator)
    people = Governance(cluster, operator, tmp_path)

    cluster.apply(watched_docs(cluster, onRegression={"critical": "hold"}))
    cluster.k("wait", "--for=condition=Ready", f"rollout/{NAME}", "--timeout=30s")
    cluster.the_lab.start_traffic(f"httproute/{cluster.namespace}/{NAME}", rate=50)
    cluster.patch_template(NEW_IMAGE)
    regressed = revision_of(cluster.rollout()["spec"]["template"])
    eventually(
        lambda: (
            (s := cluster.status()).get("stableRevision") == regressed
            and (s.get("postPromotion") or {}).get("previousCaptured")
        ),
        timeout=60,
        what="the new revision promoted and watched",
    )

    # The regression confirmed with action hold: nothing moves back.
    cluster.the_lab.demo(regressed).configure(error_ratio=0.5)
    eventually(
        lambda: watch(cluster).get("action") == "hold",
        timeout=60,
        what="the regression confirmed with action hold",
    )
    assert kpi(cluster)["state"] == "confirmed"
    assert cluster.status()["stableRevision"] == regressed

    # A new revision waits while the regression stays confirmed.
    cluster.patch_template(THIRD_IMAGE)
    held = revision_of(cluster.rollout()["spec"]["template"])
    status = eventually(
        lambda: (s := cluster.status()).get("phase") == "Paused" and s,
        timeout=30,
        what="the new revision held by the regression",
    )
    assert status["postPromotion"]["heldRevision"] == held
    assert status.get("canaryRevision") is None
    paused = cluster.condition("Paused")
    assert paused is not None
    assert paused["reason"] == "RegressionHold"
    assert "RegressionHold" in cluster.reasons()

    # alice's promote override alone does nothing: the revision still waits.
    proc = override(people, "alice", "--decision", "promote", "--reason", "fix is in the new build")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    request = recorded_id(proc.stdout)
    waiting = "promote override by alice waits for a second person's confirmation"
    eventually(
        lambda: waiting in cluster.status().get("message", ""),
        timeout=15,
        what="the status message naming the waiting override",
    )
    until = time.monotonic() + 4 * INTERVAL
    while time.monotonic() < until:
        status = cluster.status()
        assert status.get("canaryRevision") is None
        assert status["stableRevision"] == regressed
        assert "holdLifted" not in status["postPromotion"]
        time.sleep(0.2)
    assert "RegressionHoldLifted" not in cluster.reasons()

    # bob confirms: the hold is lifted, on record, and the revision goes through its canary.
    confirm = override(people, "bob", "--confirm", request)
    assert confirm.returncode == 0, confirm.stdout + confirm.stderr
    lifted = eventually(
        lambda: (watch(cluster).get("holdLifted") or {}).get("confirmedBy") and watch(cluster),
        timeout=30,
        what="the hold lifted",
    )
    hold = lifted["holdLifted"]
    assert (hold["revision"], hold["request"], hold["override"]) == (held, request, True)
    assert (hold["user"], hold["confirmedBy"]) == ("alice", "bob")
    assert (lifted["phase"], lifted["action"]) == ("Regressed", "hold")
    # Healthy once the route shows all traffic on it (the status is written ahead of the
    # actions, so a stable revision is first seen while still Progressing).
    status = eventually(
        lambda: (
            (s := cluster.status()).get("stableRevision") == held
            and s.get("phase") == "Healthy"
            and s
        ),
        timeout=90,
        what="the held revision through its canary to stable, Healthy",
    )
    assert status.get("canaryRevision") is None
    assert cluster.selector("demo-stable")["rollwise.dev/revision"] == held
    events = cluster.events()
    (event,) = [e for e in events if e["reason"] == "RegressionHoldLifted"]
    assert f"promote override {request} by alice, confirmed by bob" in event["message"]
    reasons = [e["reason"] for e in events]
    assert reasons.count("RegressionHold") == 1
    assert reasons.count("RegressionConfirmed") == 1
    # After the lift the revision ran its canary: its steps and analysis, no shortcut.
    after = reasons[reasons.index("RegressionHoldLifted") :]
    assert "StepAdvanced" in after, after
    assert "AnalysisPassed" in after, after
    assert "PromotedFull" not in after, after
    assert "RolloutCompleted" in after, after
