"""Faults of the control plane in the middle of a rollout, produced by the real processes.

Each test starts the Gateway API example's canary (5 -> 25 -> 100, analysis every second, real
traffic) and, once the route carries 25%, hurts the control plane the way production does:

- kube-apiserver killed with SIGKILL and started again on the same port;
- etcd killed with SIGKILL and started again on its data;
- etcd compacted and kube-apiserver restarted, so that the operator's watches resume from
  versions that no longer exist and are answered 410 Gone;
- API Priority and Fairness holding the operator's ServiceAccount to one request at a time
  (a FlowSchema and a PriorityLevelConfiguration that reject) while the operator restarts: the
  concurrent requests of its start get 429;
- another writer touching the Rollout all along, so that the operator's conditional writes
  meet real conflicts (409).

Whatever happened, the rollout must end right: the new revision stable with all traffic, every
step taken exactly once (one WeightSet and one StepAdvanced per step, one RevisionDetected,
one RolloutCompleted), no Warning. The operator's own requests are read from kube-apiserver's
audit log, to show that the fault reached it.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hack.cluster import Cluster
from hack.lab.operator import OperatorRelease
from tests.e2e.support import (
    NAME,
    OperatorProcess,
    StartOperator,
    demo_docs,
    eventually,
)
from tests.e2e.support import (
    Cluster as View,
)
from tests.e2e.test_rollout_e2e import IMAGE_2, new_revision

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(180),
    pytest.mark.lab_only("kills, compacts and throttles the lab cluster's own processes"),
]


def tolerant(probe: Callable[[], Any]) -> Callable[[], Any]:
    """``probe``, with errors of an API server that is down read as "not yet"."""

    def run() -> Any:
        try:
            return probe()
        except Exception:
            return None

    return run


def audit_count(cluster: Cluster, user: str, since: int, **where: Any) -> Counter[int]:
    """Response codes of ``user``'s requests in the audit log after byte ``since``, filtered
    by top-level event fields (``verb="watch"``)."""
    codes: Counter[int] = Counter()
    with cluster.audit_log.open(encoding="utf-8") as handle:
        handle.seek(since)
        for line in handle:
            if not line.strip():
                continue
            event = json.loads(line)
            if event.get("user", {}).get("username") != user:
                continue
            if any(event.get(k) != v for k, v in where.items()):
                continue
            code = (event.get("responseStatus") or {}).get("code")
            if code is not None:
                codes[int(code)] += 1
    return codes


class Canary:
    """The example's canary, started, with the operator of the test's namespace."""

    def __init__(self, view: View, start_operator: StartOperator, *args: str) -> None:
        self.view = view
        self.start_operator = start_operator
        self.args = ("--namespace", view.namespace, *args)
        self.lab_cluster = view.the_lab.running_cluster
        view.apply(demo_docs(view.test_id))
        self.operator: OperatorProcess = start_operator(*self.args)
        assert start_operator.release is not None
        self.release: OperatorRelease = start_operator.release
        view.k("wait", "--for=condition=Ready", f"rollout/{NAME}", "--timeout=30s")
        self.old = str(view.status()["stableRevision"])
        view.the_lab.start_traffic(f"httproute/{view.namespace}/{NAME}", rate=50)
        self.audit_from = self.lab_cluster.audit_log.stat().st_size
        self.new = new_revision(view, IMAGE_2)
        eventually(
            tolerant(lambda: view.route_weight() == 25), timeout=30, what="the canary at 25%"
        )

    def ends_right(self) -> None:
        """The rollout completes on the new revision, each step taken exactly once."""
        view = self.view
        weights: list[int] = []

        def done() -> bool:
            status = view.status()
            weight = view.route_weight()
            if not weights or weights[-1] != weight:
                weights.append(weight)
            return status.get("phase") == "Healthy" and status.get("stableRevision") == self.new

        eventually(tolerant(done), timeout=60, what="the canary to complete", every=0.1)
        assert self.operator.process.poll() is None, "the operator survived the fault"
        assert weights[-1] == 0, weights
        events = eventually(tolerant(view.events), timeout=10, what="the events")
        reasons = [e["reason"] for e in events]
        weight_set = [e["message"].split(":")[0] for e in events if e["reason"] == "WeightSet"]
        assert weight_set == ["step 1/3", "step 2/3", "step 3/3"], reasons
        assert reasons.count("StepAdvanced") == 3, reasons
        assert reasons.count("RevisionDetected") == 1, reasons
        assert reasons.count("RolloutCompleted") == 1, reasons
        assert not [e for e in events if e["type"] == "Warning"], reasons
        assert view.deployments() >= {f"{NAME}-{self.new}"}

    def restart_operator(self) -> None:
        """kill -9 of the operator, and a new one in its place."""
        self.operator.process.kill()
        self.operator.process.wait(timeout=10)
        self.operator = self.start_operator(*self.args)

    def operator_codes(self, **where: Any) -> Counter[int]:
        return audit_count(self.lab_cluster, self.release.user, self.audit_from, **where)


@pytest.fixture
def canary(
    cluster: View, start_operator: StartOperator, request: pytest.FixtureRequest
) -> Iterator[Canary]:
    marker = request.node.get_closest_marker("operator_args")
    found = Canary(cluster, start_operator, *(marker.args if marker is not None else ()))
    yield found
    # Whatever a test did to the control plane, the next test gets it whole.
    lab_cluster = found.lab_cluster
    with contextlib.suppress(Exception):
        lab_cluster.unthrottle(
            service_account=(found.release.namespace, found.release.service_account)
        )
    for status in lab_cluster.process_status():
        if not status.running and status.name == "etcd":
            lab_cluster.start_etcd()
        elif not status.running and status.name == "kube-apiserver":
            lab_cluster.start_apiserver()


def test_kube_apiserver_killed_mid_canary(canary: Canary) -> None:
    cluster = canary.lab_cluster
    cluster.kill_apiserver()
    time.sleep(3)  # the operator's passes and watches fail meanwhile
    cluster.start_apiserver()
    canary.ends_right()


def test_etcd_killed_mid_canary(canary: Canary) -> None:
    cluster = canary.lab_cluster
    cluster.kill_etcd()
    time.sleep(3)  # kube-apiserver answers errors meanwhile (its storage is gone)
    cluster.start_etcd()
    canary.ends_right()
    assert canary.operator_codes().keys() - {200, 201}, "the operator met failed requests"


@pytest.mark.operator_args("--verbose")
def test_watches_resumed_after_a_compaction_are_410_and_relisted(canary: Canary) -> None:
    cluster = canary.lab_cluster
    cluster.compact_etcd()
    # A restarted API server serves the operator's resumed watches from etcd, whose history
    # before the compaction is gone: 410 Gone, in the watch stream.
    cluster.restart_apiserver()
    canary.ends_right()
    restarts = [
        line
        for line in canary.operator.lines()
        if str(line.get("event", "")).startswith("Restarting the watch-stream")
    ]
    print(f"watch streams kopf restarted after a 410: {len(restarts)}")
    assert restarts, "no watch of the operator was answered 410 Gone"


def test_apf_throttling_the_operator_gives_it_429s(canary: Canary) -> None:
    cluster = canary.lab_cluster
    subject = (canary.release.namespace, canary.release.service_account)
    cluster.throttle(service_account=subject)
    try:
        # A starting operator sends many requests at once (lists, watches, its first passes).
        canary.restart_operator()
        canary.ends_right()
    finally:
        cluster.unthrottle(service_account=subject)
    # The audit log is written behind the requests (later still on a busy machine): the
    # refusals are waited for there, not assumed already written.
    throttled = eventually(
        lambda: canary.operator_codes()[429],
        timeout=20,
        what="the operator's 429s in the audit log",
    )
    print(f"operator requests answered 429 by API Priority and Fairness: {throttled}")
    assert throttled >= 1


def test_a_concurrent_writer_makes_the_operator_meet_conflicts(canary: Canary) -> None:
    view, stop = canary.view, threading.Event()

    def touch() -> None:
        # Every annotation changes the Rollout's resourceVersion under the operator's reads.
        for i in range(100_000):
            if stop.is_set():
                return
            with contextlib.suppress(Exception):
                view.custom.patch_namespaced_custom_object(
                    "rollwise.dev",
                    "v1alpha1",
                    view.namespace,
                    "rollouts",
                    NAME,
                    {"metadata": {"annotations": {"e2e.rollwise.dev/touch": str(i)}}},
                )
            time.sleep(0.02)

    writer = threading.Thread(target=touch, name="touch", daemon=True)
    writer.start()
    try:
        canary.ends_right()
    finally:
        stop.set()
        writer.join(timeout=10)
    conflicts = canary.operator_codes()[409]
    print(f"operator requests answered 409 Conflict: {conflicts}")
    assert conflicts >= 1
