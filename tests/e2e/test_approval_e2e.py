"""Approval steps end to end: a go/no-go with four eyes, as people live it.

The real ``rollwise-operator`` runs in the lab with its admission webhook on (as in
test_governance_e2e: the chart's webhook configuration and record key, groups mapped to roles
by ``ROLLWISE_ROLE_GROUPS``); kube-apiserver authenticates alice, bob and carol by token, and
RBAC lets them work in the test's namespace. The Rollout is ``examples/rollout-approval`` with
test-sized steps: ``setWeight 50``, ``approval {roles: [product, security]}``, ``setWeight
100``.

alice (sec-team) changes the pod template with kubectl; the canary reaches the approval
step and holds (phase Paused, reason AwaitingApproval, its weight kept). alice's own approval
is refused by the webhook (the plugin exits 1 with the reason, an ``ApprovalRefused`` Warning
event names her); a promote request does not skip the step; bob approves as security, carol as
product (each recorded, signed, with the identity the API server gave), and the canary goes on
to full promotion.

With a short timeout and nobody approving, the step holds past it (reason ApprovalTimedOut, a
Warning event, the weight kept, nothing rolled back) and a late approval still lets it go on.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.lab.testing.cluster_fixtures import grant_namespace
from rollwise.core.observations import revision_of
from tests.e2e.support import (
    NAME,
    Cluster,
    StartOperator,
    eventually,
    example_docs,
    rollout_of,
)
from tests.e2e.test_governance_e2e import Governance

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(240),
    pytest.mark.lab_only(
        "runs an operator process of its own with its admission webhook, and acts as several "
        "people the lab cluster authenticates by token"
    ),
]

#: The lab's token users and their groups (hack/cluster/cluster.py): alice and bob may approve
#: as security, carol as product (and security).
PEOPLE: dict[str, tuple[str, ...]] = {
    "alice": ("ml", "sec-team"),
    "bob": ("sec-team",),
    "carol": ("pm", "sec-team"),
}
ROLE_GROUPS = "security=sec-team;product=pm"
TARGET = f"rollout/{NAME}"
IMAGE = "/spec/template/spec/containers/0/image"


@pytest.fixture
def people(cluster: Cluster, start_operator: StartOperator, tmp_path: Path) -> Governance:
    """The operator with its admission webhook on, once it serves the webhook, and the people
    allowed to work in the test's namespace."""
    grant_namespace(cluster.the_lab.running_cluster, cluster.namespace, list(PEOPLE))
    operator = start_operator("--namespace", cluster.namespace, ROLLWISE_ROLE_GROUPS=ROLE_GROUPS)
    start_operator.wait_webhook(operator)
    return Governance(cluster, operator, tmp_path)


def documents(test_id: str, timeout: str = "24h") -> list[dict[str, Any]]:
    docs = copy.deepcopy(example_docs("rollout-approval", test_id))
    spec = rollout_of(docs)["spec"]
    spec["replicas"] = 2
    spec["strategy"]["canary"]["steps"] = [
        {"setWeight": 50},
        {"approval": {"roles": ["product", "security"], "timeout": timeout}},
        {"setWeight": 100},
    ]
    spec["strategy"]["canary"]["scaleDownDelaySeconds"] = 2
    return docs


def test_four_eyes_approval_with_self_approval_refused(
    cluster: Cluster, people: Governance
) -> None:
    created = people.k(
        "alice", "apply", "-f", "-", input=yaml.safe_dump_all(documents(cluster.test_id))
    )
    assert created.returncode == 0, created.stderr
    cluster.k("wait", "--for=condition=Ready", TARGET, "--timeout=60s")
    stable = str(cluster.status()["stableRevision"])
    # The Rollout has an approval step: its writes go through the fail-closed webhook.
    labels = cluster.rollout()["metadata"].get("labels") or {}
    assert labels.get("rollwise.dev/guarded") == "true", labels

    patch = json.dumps(
        [{"op": "replace", "path": IMAGE, "value": "ghcr.io/rollwise/demo-service:1.1.0"}]
    )
    changed = people.k("alice", "patch", TARGET, "--type=json", "-p", patch)
    assert changed.returncode == 0, changed.stderr
    rollout = cluster.rollout()
    canary = revision_of(rollout["spec"]["template"])
    author = json.loads(rollout["metadata"]["annotations"]["rollwise.dev/template-set-by"])
    assert (author["user"], author["revision"]) == ("alice", canary)

    status = eventually(
        lambda: (s := cluster.status()).get("pauseReason") == "AwaitingApproval" and s,
        timeout=60,
        what="the canary holding at the approval step",
    )
    assert status["phase"] == "Paused"
    assert status["canaryRevision"] == canary
    assert status["currentStepIndex"] == 1
    assert status["canaryWeight"] == 50
    assert status["approvals"]["pending"] == ["product", "security"]
    assert status["approvals"]["templateChangedBy"] == "alice"
    assert "ApprovalRequested" in cluster.reasons()

    # alice changed the template: the webhook refuses her approval, though she holds the role.
    own = people.rollwise("alice", "approve", TARGET, "--role", "security")
    assert own.returncode == 1, own.stdout + own.stderr
    assert (
        f"alice changed the template of rollout {NAME} (revision {canary}) and may not approve "
        "it; ask someone else holding security"
    ) in own.stderr, own.stderr
    refused = eventually(
        lambda: [
            e
            for e in cluster.events()
            if e.get("reason") == "ApprovalRefused" and "alice" in str(e.get("message"))
        ],
        timeout=20,
        what="the ApprovalRefused Warning event",
    )
    assert refused[0]["type"] == "Warning"
    assert "approval by alice as security refused" in refused[0]["message"]
    annotations = cluster.rollout()["metadata"].get("annotations") or {}
    assert "rollwise.dev/approvals" not in annotations

    # A promote does not skip the approval step.
    promote = people.rollwise("bob", "promote", NAME)
    assert promote.returncode == 0, promote.stdout + promote.stderr
    eventually(
        lambda: "RequestIgnored" in cluster.reasons(),
        timeout=20,
        what="the promote request ignored",
    )
    status = cluster.status()
    assert status["currentStepIndex"] == 1
    assert status["pauseReason"] == "AwaitingApproval"

    # bob, holding security only, cannot approve as product.
    wrong = people.rollwise("bob", "approve", TARGET, "--role", "product")
    assert wrong.returncode == 1
    assert "bob may not approve as product: the role is given to members of pm" in wrong.stderr

    ok = people.rollwise("bob", "approve", TARGET, "--role", "security")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"approval recorded: role security for revision {canary} at step 2 by bob" in ok.stdout
    status = eventually(
        lambda: (s := cluster.status()).get("approvals", {}).get("pending") == ["product"] and s,
        timeout=20,
        what="security approved, product pending",
    )
    assert status["approvals"]["granted"][0]["user"] == "bob"
    assert status["phase"] == "Paused"

    got = people.rollwise("bob", "get", "rollout", NAME)
    assert got.returncode == 0, got.stderr
    assert f"Approval:    step 2, revision {canary}: security by bob" in got.stdout
    assert (
        f"pending: product (kubectl rollwise approve rollout/{NAME} --role product)" in got.stdout
    )

    ok = people.rollwise("carol", "approve", TARGET, "--role", "product")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"approval recorded: role product for revision {canary} at step 2 by carol" in ok.stdout

    status = eventually(
        lambda: (
            (s := cluster.status()).get("stableRevision") == canary
            and s.get("phase") == "Healthy"
            and s
        ),
        timeout=90,
        what="the approved canary promoted",
    )
    assert status["stableRevision"] != stable
    reasons = cluster.reasons()
    assert reasons.count("ApprovalGranted") == 2, reasons
    assert "RolloutCompleted" in reasons


def test_past_the_timeout_it_holds_with_a_warning(cluster: Cluster, people: Governance) -> None:
    docs = documents(cluster.test_id, timeout="3s")
    created = people.k("alice", "apply", "-f", "-", input=yaml.safe_dump_all(docs))
    assert created.returncode == 0, created.stderr
    cluster.k("wait", "--for=condition=Ready", TARGET, "--timeout=60s")
    patch = json.dumps(
        [{"op": "replace", "path": IMAGE, "value": "ghcr.io/rollwise/demo-service:1.1.0"}]
    )
    changed = people.k("alice", "patch", TARGET, "--type=json", "-p", patch)
    assert changed.returncode == 0, changed.stderr
    canary = revision_of(cluster.rollout()["spec"]["template"])

    status = eventually(
        lambda: (s := cluster.status()).get("pauseReason") == "ApprovalTimedOut" and s,
        timeout=60,
        what="the approval step timed out",
    )
    assert status["phase"] == "Paused"
    assert status["canaryRevision"] == canary
    assert status["canaryWeight"] == 50
    assert status["approvals"]["timedOut"] is True
    assert status.get("rolledBackRevision") is None
    paused = cluster.condition("Paused")
    assert paused is not None
    assert (paused["status"], paused["reason"]) == ("True", "ApprovalTimedOut")
    degraded = cluster.condition("Degraded")
    assert degraded is not None
    assert degraded["status"] == "False"
    timed_out = [e for e in cluster.events() if e.get("reason") == "ApprovalTimedOut"]
    assert [e["type"] for e in timed_out] == ["Warning"]
    assert "still waits for approval by product, security after 3s" in timed_out[0]["message"]

    for user, role in (("bob", "security"), ("carol", "product")):
        proc = people.rollwise(user, "approve", TARGET, "--role", role)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    eventually(
        lambda: cluster.status().get("stableRevision") == canary,
        timeout=90,
        what="the late-approved canary promoted",
    )
