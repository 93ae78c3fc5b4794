"""Two operator replicas with kopf peering, end to end: one acts, the other stands by and takes
over when the active one dies, and the canary goes on from where it was.

Both processes get the same settings, as the replicas of one Deployment do: the peering
``rollwise`` (``ROLLWISE_PEERING``) and a short peering lifetime (``ROLLWISE_PEERING_LIFETIME``,
the time a dead replica's record keeps the standby paused), no priority. kopf pauses every
replica that sees a live peer of the same or a higher priority, so the operator derives distinct
priorities from the start time: the older replica acts, the newer one stands by.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from rollwise.core.observations import revision_of
from tests.e2e.support import (
    NAME,
    Cluster,
    OperatorProcess,
    StartOperator,
    demo_docs,
    eventually,
)

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(60),
    pytest.mark.lab_only("runs and kills operator processes of its own"),
]

#: Seconds a replica's peering record lives without a keep-alive (kopf then renews every 1 s).
LIFETIME = 3

IMAGE_2 = [
    {
        "op": "replace",
        "path": "/spec/template/spec/containers/0/image",
        "value": "ghcr.io/rollwise/demo-service:1.1.0",
    }
]


def about_rollout(operator: OperatorProcess) -> list[dict[str, Any]]:
    """The operator's log lines about the Rollout (reconcile passes and what they did)."""
    return [line for line in operator.lines() if line.get("rollout") == NAME]


def peering_state(operator: OperatorProcess) -> str | None:
    """What kopf's peering last logged in ``operator``: "paused", "resumed" or None."""
    state = None
    for line in operator.lines():
        text = str(line.get("event", ""))
        if text.startswith("Pausing operations"):
            state = "paused"
        elif text.startswith("Resuming operations"):
            state = "resumed"
    return state


@pytest.mark.timing
def test_two_replicas_one_acts_and_the_standby_takes_over_without_repeating_a_step(
    cluster: Cluster, start_operator: StartOperator
) -> None:
    # Two replicas of a namespace-scoped install: the chart's Role grants the KopfPeering.
    start_operator.install(replicas=2)
    cluster.apply(demo_docs(cluster.test_id))

    def replica(name: str) -> OperatorProcess:
        return start_operator(
            "--namespace",
            cluster.namespace,
            ROLLWISE_PEERING="rollwise",
            ROLLWISE_PEERING_LIFETIME=str(LIFETIME),
            POD_NAME=name,
        )

    def priorities() -> list[int]:
        """The priorities of the replicas recorded in the peering object."""
        peering = cluster.custom.get_namespaced_custom_object(
            "kopf.dev", "v1", cluster.namespace, "kopfpeerings", "rollwise"
        )
        return sorted(int(r["priority"]) for r in (peering.get("status") or {}).values())

    # The second replica joins a running one (as in a rolling start): a replica that finds no
    # peer record at all acts at once, so two started in the same instant may overlap briefly.
    active = replica("rollwise-a")
    cluster.k("wait", "--for=condition=Ready", f"rollout/{NAME}", "--timeout=30s")
    first = eventually(priorities, timeout=10, what="the first replica's record")
    standby = replica("rollwise-b")
    both = eventually(
        lambda: len(p := priorities()) == 2 and p, timeout=20, what="the second replica's record"
    )
    assert len(set(both)) == 2, both  # distinct, or kopf would pause both
    assert max(both) == first[0], (first, both)  # the older replica has the higher priority
    # With peering, kopf starts paused and resumes only when no live peer has its priority or a
    # higher one: the standby never resumes while the active replica lives.
    assert peering_state(standby) != "resumed"

    cluster.the_lab.start_traffic(f"httproute/{cluster.namespace}/{NAME}", rate=50)
    cluster.patch_template(IMAGE_2)
    new = revision_of(cluster.rollout()["spec"]["template"])
    eventually(
        lambda: cluster.status().get("canaryWeight") == 25,
        timeout=20,
        what="the canary at 25%",
    )
    # Only one acts: every pass, status write and event so far came from the active replica.
    assert about_rollout(active), "the active replica logged no reconcile pass"
    assert about_rollout(standby) == []
    instances = {e.get("reportingInstance") for e in cluster.events()}
    assert instances == {"rollwise-a"}, instances
    assert standby.process.poll() is None
    assert peering_state(standby) != "resumed"

    active.process.kill()  # SIGKILL: it cannot release its peering record
    killed_at = time.monotonic()
    active.process.wait(timeout=5)
    assert cluster.status()["currentStepIndex"] == 1

    eventually(
        lambda: peering_state(standby) == "resumed",
        timeout=LIFETIME + 5,
        what="the standby to resume",
        every=0.05,
    )
    takeover = time.monotonic() - killed_at
    weights: list[int] = []

    def done() -> bool:
        # The status first: the traffic moves before Healthy is written, so the weight read
        # after a Healthy status is the final one.
        status = cluster.status()
        weight = cluster.route_weight()
        if not weights or weights[-1] != weight:
            weights.append(weight)
        return status.get("phase") == "Healthy" and status.get("stableRevision") == new

    eventually(done, timeout=30, what="the canary to complete on the standby", every=0.05)
    print(
        f"standby resumed {takeover:.2f} s after the kill (lifetime {LIFETIME} s); "
        f"route weights after: {weights}"
    )
    assert takeover <= LIFETIME + 2
    assert about_rollout(standby), "the standby logged no reconcile pass after taking over"
    assert 5 not in weights  # it went on from 25%, not from the start
    assert 100 in weights
    assert weights[-1] == 0

    events = cluster.events()
    reasons = [e["reason"] for e in events]
    # No step skipped or repeated: one canary, three weights, three step advances, one end.
    assert reasons.count("RevisionDetected") == 1, reasons
    weight_set = [e["message"] for e in events if e["reason"] == "WeightSet"]
    assert [m.split(":")[0] for m in weight_set] == ["step 1/3", "step 2/3", "step 3/3"], weight_set
    assert reasons.count("StepAdvanced") == 3, reasons
    assert reasons.count("RolloutCompleted") == 1, reasons
    assert not any(e["type"] == "Warning" for e in events)
    late = [e.get("reportingInstance") for e in events if e["reason"] == "RolloutCompleted"]
    assert late == ["rollwise-b"]
