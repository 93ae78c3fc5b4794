"""Overrides end to end: a person's promote, hold or rollback decision on a Rollout, recorded
with the identity the API server authenticated, and the second person a risky promote needs.

The real ``rollwise-operator`` runs in the lab with its admission webhook on (as in
test_governance_e2e: the chart's webhook configuration and record key); kube-apiserver
authenticates alice, bob and carol by token, and RBAC lets them work in the test's namespace.
The Rollout is ``examples/rollout-gateway-api`` with test-sized timings; every override goes
through ``kubectl rollwise override`` as one of them, and everything is read back through the
API.

Scenarios:

* a canary rolled back by its failed analysis: alice's promote override is recorded but does
  nothing (still rolled back, no traffic, the status message says it waits for a second
  person); alice cannot confirm her own override; once bob confirms, the revision is retried
  and promoted straight to stable;
* a hold override pauses a running canary at once (no step advances, nothing measured), until
  a newer override (a promote, acting at once on a healthy canary) ends it.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from hack.lab.testing.cluster_fixtures import grant_namespace
from tests.e2e.support import (
    INTERVAL,
    NAME,
    Cluster,
    StartOperator,
    demo_docs,
    eventually,
)
from tests.e2e.test_governance_e2e import Governance
from tests.e2e.test_rollout_e2e import IMAGE_2, new_revision

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(240),
    pytest.mark.lab_only(
        "runs an operator process of its own with its admission webhook, and acts as several "
        "people the lab cluster authenticates by token"
    ),
]

#: Three of the people the lab cluster authenticates (their groups play no part here).
PEOPLE = ("alice", "bob", "carol")
TARGET = f"rollout/{NAME}"


@pytest.fixture
def people(cluster: Cluster, start_operator: StartOperator, tmp_path: Path) -> Governance:
    """The operator with its admission webhook on, once it serves the webhook, and the people
    allowed to work in the test's namespace."""
    grant_namespace(cluster.the_lab.running_cluster, cluster.namespace, list(PEOPLE))
    operator = start_operator("--namespace", cluster.namespace)
    start_operator.wait_webhook(operator)
    return Governance(cluster, operator, tmp_path)


def healthy(cluster: Cluster) -> str:
    cluster.apply(demo_docs(cluster.test_id))
    cluster.k("wait", "--for=condition=Ready", f"rollout/{NAME}", "--timeout=30s")
    return str(cluster.status()["stableRevision"])


def override(people: Governance, user: str, *args: str) -> Any:
    proc = people.rollwise(user, "override", TARGET, *args)
    return proc


def recorded_id(stdout: str) -> str:
    found = re.search(r"override requested \(id (\S+)\)", stdout)
    assert found, stdout
    return found.group(1)


def test_a_promote_past_a_failed_analysis_waits_for_a_second_person(
    cluster: Cluster, people: Governance
) -> None:
    stable = healthy(cluster)
    cluster.the_lab.start_traffic(f"httproute/{cluster.namespace}/{NAME}", rate=50)
    bad = new_revision(
        cluster,
        [
            *IMAGE_2,
            {
                "op": "add",
                "path": "/spec/template/metadata/annotations",
                "value": {"lab.rollwise.dev/error-ratio": "0.2"},
            },
        ],
    )
    eventually(
        lambda: cluster.status().get("rolledBackRevision") == bad,
        timeout=40,
        what="the failed canary rolled back",
    )

    proc = override(people, "alice", "--decision", "promote", "--reason", "metric is noisy")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"override recorded: promote of revision {bad} by alice" in proc.stdout
    request = recorded_id(proc.stdout)
    hint = f"kubectl rollwise override rollout/{NAME} --confirm {request}"
    assert f"it takes effect once a second person confirms it: {hint}" in proc.stdout

    # One person's promote does nothing: still rolled back, no traffic to the canary.
    waiting = "promote override by alice waits for a second person's confirmation"
    status = eventually(
        lambda: waiting in (s := cluster.status()).get("message", "") and s,
        timeout=15,
        what="the status message naming the waiting override",
    )
    assert hint in status["message"]
    until = time.monotonic() + 4 * INTERVAL
    while time.monotonic() < until:
        status = cluster.status()
        assert status["rolledBackRevision"] == bad
        assert status["stableRevision"] == stable
        assert status.get("canaryRevision") is None
        assert cluster.route_weight() == 0
        time.sleep(0.2)
    assert "PromotedFull" not in cluster.reasons()

    self_confirm = override(people, "alice", "--confirm", request)
    assert self_confirm.returncode == 1
    assert (
        f"alice made override {request} and may not confirm it; a second person must confirm"
        in self_confirm.stderr
    ), self_confirm.stderr
    assert cluster.status()["rolledBackRevision"] == bad

    confirm = override(people, "bob", "--confirm", request)
    assert confirm.returncode == 0, confirm.stdout + confirm.stderr
    assert f"override {request} (promote by alice) confirmed by bob at" in confirm.stdout

    status = eventually(
        lambda: (s := cluster.status()).get("stableRevision") == bad and s,
        timeout=40,
        what="the overridden revision promoted to stable",
    )
    assert status.get("rolledBackRevision") is None
    assert status["handledRequests"]["override"] == request
    reasons = cluster.reasons()
    assert "RetryRequested" in reasons
    assert "PromotedFull" in reasons
    stored = json.loads(cluster.rollout()["metadata"]["annotations"]["rollwise.dev/overrides"])
    assert stored["version"] == 2, "the list is signed as a whole"
    [entry] = [r for r in stored["entries"] if r["id"] == request]
    assert (entry["user"], entry["confirmedBy"], entry["target"]) == ("alice", "bob", bad)


def test_a_hold_pauses_a_running_canary_at_once(cluster: Cluster, people: Governance) -> None:
    healthy(cluster)
    cluster.the_lab.start_traffic(f"httproute/{cluster.namespace}/{NAME}", rate=50)
    good = new_revision(cluster, IMAGE_2)
    eventually(lambda: cluster.route_weight() == 5, timeout=20, what="the canary at 5%")

    proc = override(people, "carol", "--decision", "hold", "--reason", "checking a dashboard")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"override recorded: hold of revision {good} by carol" in proc.stdout
    request = recorded_id(proc.stdout)

    status = eventually(
        lambda: (s := cluster.status()).get("phase") == "Paused" and s,
        timeout=10,
        what="phase Paused",
    )
    held = f"held by carol (override {request}): checking a dashboard"
    assert held in status["message"]
    paused = cluster.condition("Paused")
    assert paused is not None
    assert (paused["status"], paused["reason"]) == ("True", "OverrideHold")

    def taken(s: dict[str, Any]) -> int:
        run = s.get("analysis") or {}
        return sum(len(m.get("measurements", [])) for m in run.get("metrics", []))

    measured = taken(cluster.status())
    until = time.monotonic() + 5 * INTERVAL
    while time.monotonic() < until:
        status = cluster.status()
        assert status["phase"] == "Paused"
        assert status["currentStepIndex"] == 0
        assert cluster.route_weight() == 5
        time.sleep(0.2)
    assert taken(cluster.status()) == measured, "nothing is measured while held"
    assert "Paused" in cluster.reasons()

    # A newer override ends the hold: a promote of a healthy canary acts at once.
    proc = override(people, "carol", "--decision", "promote", "--reason", "dashboard is fine")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "second person" not in proc.stdout
    eventually(
        lambda: cluster.status().get("stableRevision") == good,
        timeout=40,
        what="the held canary promoted",
    )
    reasons = cluster.reasons()
    assert "Resumed" in reasons
    assert "PromotedFull" in reasons


def test_a_hold_dropped_behind_the_webhooks_back_still_holds(
    cluster: Cluster, people: Governance, start_operator: StartOperator
) -> None:
    healthy(cluster)
    cluster.the_lab.start_traffic(f"httproute/{cluster.namespace}/{NAME}", rate=50)
    canary = new_revision(cluster, IMAGE_2)
    eventually(lambda: cluster.route_weight() == 5, timeout=20, what="the canary at 5%")
    hold = override(people, "carol", "--decision", "hold", "--reason", "checking a dashboard")
    assert hold.returncode == 0, hold.stdout + hold.stderr
    eventually(lambda: cluster.status().get("phase") == "Paused", timeout=10, what="held")

    # Someone writes behind the webhook's back (its configuration gone, as in a missed call):
    # the list without carol's hold.
    stored = json.loads(cluster.rollout()["metadata"]["annotations"]["rollwise.dev/overrides"])
    if isinstance(stored, list):  # a list of the first format: its entries alone
        stored = [e for e in stored if e["decision"] != "hold"]
    else:
        stored["entries"] = [e for e in stored["entries"] if e["decision"] != "hold"]
    assert start_operator.release is not None
    configuration = start_operator.release.webhook_configuration
    cluster.k("delete", "mutatingwebhookconfiguration", configuration)
    cluster.k(
        "annotate", "rollout", NAME, f"rollwise.dev/overrides={json.dumps(stored)}", "--overwrite"
    )

    until = time.monotonic() + 5 * INTERVAL
    while time.monotonic() < until:
        status = cluster.status()
        assert status["phase"] == "Paused", status.get("message")
        assert status.get("canaryRevision") == canary
        assert cluster.route_weight() == 5
        time.sleep(0.2)
    assert "the list's signature does not verify" in cluster.status()["message"]
