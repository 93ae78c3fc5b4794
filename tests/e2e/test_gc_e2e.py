"""Deleting a Rollout, end to end: what goes, what stays, and that nothing blocks.

A platform engineer deleting a Rollout deletes a workload, not the routing around it:

- the revision Deployments go with it: the operator created them with a controller
  ownerReference to the Rollout, so the API server's garbage collector deletes them (the
  operator deletes nothing itself);
- the operator's finalizer is released promptly: ``kubectl delete`` returns within seconds;
- the Services and the HTTPRoute are the user's (often managed by GitOps) and stay. The route is
  left exactly as it was, weights included: the operator writes nothing on
  the way out. Resetting it to the stable Service would not help (the stable revision's pods are
  being deleted too), and a deletion that must first edit a route could be held up by a route or
  a Gateway API that is gone. Re-creating the Rollout repairs the route: its first revision
  becomes stable and the operator sets the weights anew (all traffic to stable).

Runs on a real cluster too: it needs no traffic (the canary is deleted at its first weight).
"""

from __future__ import annotations

import time

import pytest

from rollwise.core.observations import revision_of
from tests.e2e.support import NAME, Cluster, OperatorProcess, demo_docs, eventually

pytestmark = [pytest.mark.lab, pytest.mark.timeout(60)]

IMAGE_2 = [
    {
        "op": "replace",
        "path": "/spec/template/spec/containers/0/image",
        "value": "ghcr.io/rollwise/demo-service:1.1.0",
    }
]


def test_deleting_a_rollout_mid_canary_collects_its_revisions_and_leaves_the_routing(
    cluster: Cluster, operator: OperatorProcess | None
) -> None:
    docs = demo_docs(cluster.test_id)
    cluster.apply(docs)
    cluster.k("wait", "--for=condition=Ready", f"rollout/{NAME}", "--timeout=30s")
    stable = str(cluster.status()["stableRevision"])
    cluster.patch_template(IMAGE_2)
    canary = revision_of(cluster.rollout()["spec"]["template"])
    eventually(lambda: cluster.route_weight() == 5, timeout=20, what="the canary at 5%")
    revisions = {f"{NAME}-{stable}", f"{NAME}-{canary}"}
    assert cluster.deployments() == revisions

    uid = cluster.rollout()["metadata"]["uid"]
    for name in revisions:
        owners = cluster.apps.read_namespaced_deployment(name, cluster.namespace).metadata
        refs = [(o.kind, o.name, o.uid, o.controller) for o in owners.owner_references or []]
        assert refs == [("Rollout", NAME, uid, True)], refs
    route_before = cluster.route()
    selectors_before = {s: cluster.selector(s) for s in ("demo-stable", "demo-canary")}
    assert selectors_before["demo-canary"]["rollwise.dev/revision"] == canary

    began = time.monotonic()
    cluster.k("delete", f"rollout/{NAME}", "--timeout=15s")
    took = time.monotonic() - began
    print(f"kubectl delete returned after {took:.2f} s")
    assert took < 10  # the finalizer is released promptly, not after a timeout
    eventually(
        lambda: not cluster.deployments(),
        timeout=15,
        what="the garbage collector to delete the revision Deployments",
    )
    assert cluster.k("get", f"rollout/{NAME}", check=False).returncode != 0

    # The user's objects stay as they were: the route keeps its weights (5% to the canary
    # Service), unchanged since before the delete, and the Services keep their selectors.
    time.sleep(1)  # room for a (wrong) late write by the operator
    route_after = cluster.route()
    assert route_after["metadata"]["resourceVersion"] == route_before["metadata"]["resourceVersion"]
    assert route_after["spec"] == route_before["spec"]
    assert cluster.route_weight() == 5
    assert {s: cluster.selector(s) for s in selectors_before} == selectors_before
    if operator is not None:
        assert operator.process.poll() is None  # still running, nothing crashed
        assert not [line for line in operator.lines() if line.get("level") == "error"]

    # Re-creating the Rollout repairs the route: one stable revision, all traffic to it.
    cluster.apply([d for d in docs if d["kind"] == "Rollout"])
    cluster.k("wait", "--for=condition=Ready", f"rollout/{NAME}", "--timeout=30s")
    eventually(lambda: cluster.route_weight() == 0, timeout=10, what="the route back at 0%")
    assert cluster.deployments() == {f"{NAME}-{stable}"}
