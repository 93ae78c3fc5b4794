"""A user's view of Rollouts, end to end: the real operator process in the lab, driven with
kubectl and the manifests of ``examples/rollout-gateway-api``.

Everything is checked through the API (kubectl, or the Kubernetes client for fast polling) and
Prometheus, never through the operator's memory. Waits are bounded polls.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from rollwise.core.observations import revision_of
from tests.e2e.support import (
    EXAMPLE,
    INTERVAL,
    NAME,
    Cluster,
    OperatorProcess,
    StartOperator,
    demo_docs,
    eventually,
    free_port,
    http_get,
    rollout_of,
)

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(90),
    pytest.mark.lab_only("runs operator processes of its own and the lab's traffic generator"),
]


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def create_healthy(
    cluster: Cluster, start_operator: StartOperator, *args: str
) -> tuple[str, OperatorProcess]:
    """Apply the example, start the operator, wait for Ready: the stable revision and the
    operator."""
    cluster.apply(demo_docs(cluster.test_id))
    operator = start_operator(*args)
    cluster.k("wait", "--for=condition=Ready", f"rollout/{NAME}", "--timeout=20s")
    status = cluster.status()
    assert status["phase"] == "Healthy"
    return str(status["stableRevision"]), operator


def new_revision(cluster: Cluster, ops: list[dict[str, Any]]) -> str:
    """Patch the Rollout's template; the revision id of the new template."""
    cluster.patch_template(ops)
    return revision_of(cluster.rollout()["spec"]["template"])


IMAGE_2 = [
    {
        "op": "replace",
        "path": "/spec/template/spec/containers/0/image",
        "value": "ghcr.io/rollwise/demo-service:1.1.0",
    }
]


def in_order(seen: list[str], expected: list[str]) -> bool:
    """Whether ``expected`` is a subsequence of ``seen``."""
    it = iter(seen)
    return all(any(reason == wanted for reason in it) for wanted in expected)


def test_happy_path_moves_traffic_5_25_100_and_retires_the_old_revision(
    cluster: Cluster, start_operator: StartOperator
) -> None:
    old, _ = create_healthy(cluster, start_operator, "--namespace", cluster.namespace)
    cluster.the_lab.start_traffic(f"httproute/{cluster.namespace}/{NAME}", rate=50)
    new = new_revision(cluster, IMAGE_2)

    route_weights: list[int] = []
    status_weights: list[int] = []

    def done() -> bool:
        # The status first: the operator moves the traffic before it writes Healthy, so the
        # route weight read after a Healthy status is the final one.
        status = cluster.status()
        for seen, value in (
            (route_weights, cluster.route_weight()),
            (status_weights, int(status.get("canaryWeight", 0))),
        ):
            if not seen or seen[-1] != value:
                seen.append(value)
        return status.get("phase") == "Healthy" and status.get("stableRevision") == new

    eventually(done, timeout=35, what="the new revision to become stable", every=0.05)
    print(f"route weights seen: {route_weights}; status weights seen: {status_weights}")
    assert [w for w in route_weights if w] == [5, 25, 100]
    assert [w for w in status_weights if w] == [5, 25, 100]
    assert route_weights[-1] == 0  # all traffic to stable, which is the new revision now
    cluster.k("wait", "--for=condition=Ready", f"rollout/{NAME}", "--timeout=5s")

    reasons = cluster.reasons()
    assert in_order(
        reasons,
        [
            "Initialized",
            "RevisionDetected",
            "WeightSet",
            "AnalysisPassed",
            "StepAdvanced",
            "WeightSet",
            "AnalysisPassed",
            "StepAdvanced",
            "WeightSet",
            "AnalysisPassed",
            "StepAdvanced",
            "RolloutCompleted",
        ],
    ), reasons
    assert not any(e["type"] == "Warning" for e in cluster.events())

    # The old revision is removed after scaleDownDelaySeconds (2 s).
    eventually(
        lambda: cluster.deployments() == {f"{NAME}-{new}"},
        timeout=10,
        what=f"the old revision {old} to be deleted",
    )
    assert "RevisionRetired" in cluster.reasons()

    # The data plane agrees: Prometheus sees all requests on the new revision.
    share = (
        f'sum(rate(http_requests_total{{service="demo",revision="{new}"}}[2s])) / '
        f'sum(rate(http_requests_total{{service="demo",revision=~"{new}|{old}"}}[2s]))'
    )
    eventually(
        lambda: (cluster.prometheus.query(share) or 0) > 0.99,
        timeout=10,
        what="Prometheus to see all traffic on the new revision",
        every=0.25,
    )


def test_an_operator_killed_mid_canary_is_replaced_and_the_canary_continues(
    cluster: Cluster, start_operator: StartOperator
) -> None:
    old, first = create_healthy(cluster, start_operator, "--namespace", cluster.namespace)
    cluster.the_lab.start_traffic(f"httproute/{cluster.namespace}/{NAME}", rate=50)
    new = new_revision(cluster, IMAGE_2)
    eventually(lambda: cluster.route_weight() == 25, timeout=20, what="the canary at 25%")
    first.process.kill()  # SIGKILL: no clean-up, no last status write
    first.process.wait(timeout=5)
    killed_at_step = cluster.status()["currentStepIndex"]
    assert killed_at_step == 1

    start_operator("--namespace", cluster.namespace)
    weights: list[int] = []

    def done() -> bool:
        weight = cluster.route_weight()
        if not weights or weights[-1] != weight:
            weights.append(weight)
        status = cluster.status()
        return status.get("phase") == "Healthy" and status.get("stableRevision") == new

    eventually(done, timeout=30, what="the canary to complete after the restart", every=0.05)
    print(f"route weights after the restart: {weights}")
    assert 5 not in weights  # it did not start over
    assert weights[-1] == 0
    assert 100 in weights
    reasons = cluster.reasons()
    # Nothing happened twice: one canary, three steps, from the status the first one left.
    assert reasons.count("RevisionDetected") == 1
    assert reasons.count("WeightSet") <= 3
    assert reasons.count("RolloutCompleted") == 1
    assert old != new


@pytest.mark.timing
def test_bad_canary_is_rolled_back_fast_and_not_retried_until_asked(
    cluster: Cluster, start_operator: StartOperator
) -> None:
    stable, _ = create_healthy(cluster, start_operator, "--namespace", cluster.namespace)
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
    eventually(lambda: cluster.route_weight() == 5, timeout=15, what="the canary at 5%")
    route_zero_at = eventually(
        lambda: datetime.now(UTC) if cluster.route_weight() == 0 else None,
        timeout=20,
        what="the route back at 0%",
        every=0.05,
    )
    status = eventually(
        lambda: (s := cluster.status()).get("phase") == "Degraded" and s,
        timeout=5,
        what="phase Degraded",
    )
    assert status["rolledBackRevision"] == bad
    assert status["stableRevision"] == stable
    run = status["analysis"]
    error_ratio = next(m for m in run["metrics"] if m["name"] == "error-ratio")
    failures = [m for m in error_ratio["measurements"] if m["verdict"] == "Fail"]
    assert failures, error_ratio
    first_failure = _parse_time(failures[0]["at"])
    reaction = (route_zero_at - first_failure).total_seconds()
    print(
        f"first failing measurement at {failures[0]['at']} (value {failures[0].get('value')}), "
        f"route at 0% by {route_zero_at.isoformat()}: {reaction:.2f} s "
        f"(bound: interval {INTERVAL:g} s + 2 s)"
    )
    assert 0 < reaction <= INTERVAL + 2

    events = cluster.events()
    warnings = [e["reason"] for e in events if e["type"] == "Warning"]
    assert in_order(warnings, ["AnalysisFailed", "RolledBack"]), warnings
    assert cluster.condition("Degraded")["status"] == "True"  # type: ignore[index]
    assert cluster.deployments() >= {f"{NAME}-{stable}"}

    # Not retried: a spec touch that keeps the template is skipped, with a Warning.
    cluster.k(
        "patch", f"rollout/{NAME}", "--type=merge", "-p", '{"spec":{"progressDeadlineSeconds":900}}'
    )
    eventually(lambda: "RevisionSkipped" in cluster.reasons(), timeout=10, what="RevisionSkipped")
    quiet_until = time.monotonic() + 2
    while time.monotonic() < quiet_until:
        assert cluster.route_weight() == 0
        assert cluster.status()["canaryWeight"] == 0
        time.sleep(0.1)

    # Asked to retry: the same revision starts again at step 1.
    cluster.k("annotate", f"rollout/{NAME}", "rollwise.dev/retry=r1")
    eventually(lambda: cluster.route_weight() == 5, timeout=15, what="the retried canary at 5%")
    assert "RetryRequested" in cluster.reasons()
    assert cluster.status()["canaryRevision"] == bad


def test_prometheus_outage_pauses_the_canary_and_never_rolls_back(
    cluster: Cluster, start_operator: StartOperator
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    cluster.apply(demo_docs(cluster.test_id))
    blind = start_operator("--namespace", cluster.namespace, ROLLWISE_PROMETHEUS_URL=nowhere)
    cluster.k("wait", "--for=condition=Ready", f"rollout/{NAME}", "--timeout=20s")
    cluster.the_lab.start_traffic(f"httproute/{cluster.namespace}/{NAME}", rate=50)
    new = new_revision(cluster, IMAGE_2)
    status = eventually(
        lambda: (s := cluster.status()).get("phase") == "Paused" and s,
        timeout=20,
        what="the canary to pause on provider errors",
    )
    assert status["pauseReason"] == "AnalysisInconclusive"
    reasons = cluster.reasons()
    assert "MeasurementError" in reasons
    assert "AnalysisError" in reasons
    assert "RolledBack" not in reasons
    assert "StepAdvanced" not in reasons
    assert cluster.route_weight() == 5

    # Prometheus is back (here: an operator that can reach it) and a retry re-runs the step.
    blind.stop()
    start_operator("--namespace", cluster.namespace)
    cluster.k("annotate", f"rollout/{NAME}", "rollwise.dev/retry=after-outage")
    eventually(
        lambda: cluster.status().get("stableRevision") == new,
        timeout=30,
        what="the canary to complete after the outage",
    )
    assert "AnalysisRetried" in cluster.reasons()


def test_a_canary_with_too_few_requests_pauses_inconclusive_instead_of_passing(
    cluster: Cluster, start_operator: StartOperator
) -> None:
    """The example's sampleGuard, sized for the test's 10 s windows: 5% of 10 requests/s is
    about 5 canary requests per window, fewer than the 50 required, so the step pauses
    instead of passing on a ratio over a handful of requests; with enough traffic a retry
    takes the canary through."""
    docs = demo_docs(cluster.test_id)
    example = yaml.safe_load((EXAMPLE / "rollout.yaml").read_text())
    guard = example["spec"]["strategy"]["canary"]["analysis"]["metrics"][0]["sampleGuard"]
    guard["query"] = guard["query"].replace("[1m]", "[10s]")
    assert guard["minSamples"] == 50
    rollout_of(docs)["spec"]["strategy"]["canary"]["analysis"]["metrics"][0]["sampleGuard"] = guard
    cluster.apply(docs)
    start_operator("--namespace", cluster.namespace)
    cluster.k("wait", "--for=condition=Ready", f"rollout/{NAME}", "--timeout=20s")
    # Prometheus parsed both queries, the guard's too, when the spec was first seen.
    eventually(
        lambda: (cluster.condition("QueriesVerified") or {}).get("status") == "True",
        timeout=10,
        what="the queries to be verified",
    )
    cluster.the_lab.start_traffic(f"httproute/{cluster.namespace}/{NAME}", rate=10)
    new = new_revision(cluster, IMAGE_2)
    status = eventually(
        lambda: (s := cluster.status()).get("phase") == "Paused" and s,
        timeout=20,
        what="the canary to pause on too few samples",
    )
    assert status["pauseReason"] == "AnalysisInconclusive"
    [metric] = [m for m in status["analysis"]["metrics"] if m["name"] == "error-ratio"]
    assert metric["verdict"] == "Inconclusive"
    last = metric["measurements"][-1]
    assert "fewer than the 50 required (minSamples)" in last["message"]
    # The guard's count is kept with the measurement (what `kubectl rollwise explain` shows).
    assert 0 <= last["samples"] < 50
    reasons = cluster.reasons()
    assert "StepAdvanced" not in reasons
    assert "AnalysisPassed" not in reasons
    assert cluster.route_weight() == 5

    # Enough traffic (5% of 400 requests/s fills a 10 s window with ~200), then a retry.
    cluster.the_lab.start_traffic(f"httproute/{cluster.namespace}/{NAME}", rate=400)
    time.sleep(6)  # ~120 canary requests in the window before the retry measures again
    cluster.k("annotate", f"rollout/{NAME}", "rollwise.dev/retry=enough-traffic")
    eventually(
        lambda: cluster.status().get("stableRevision") == new,
        timeout=30,
        what="the canary to complete with enough samples",
    )


def test_invalid_specs_are_refused_or_reported_and_nothing_is_touched(
    cluster: Cluster, start_operator: StartOperator
) -> None:
    docs = demo_docs(cluster.test_id)
    rollout = next(d for d in docs if d["kind"] == "Rollout")
    canary = rollout["spec"]["strategy"]["canary"]
    bad_steps = [{"setWeight": 50}, {"setWeight": 10}]
    refused = cluster.apply(
        [
            {
                **rollout,
                "spec": {**rollout["spec"], "strategy": {"canary": {**canary, "steps": bad_steps}}},
            }
        ],
        check=False,
    )
    assert refused.returncode != 0
    assert "setWeight must not decrease from one step to the next" in refused.stderr

    start_operator.install(scope="cluster")
    stable, _ = create_healthy(cluster, start_operator)  # cluster-wide this time
    route_version = cluster.route()["metadata"]["resourceVersion"]
    before = cluster.deployments()
    assert before == {f"{NAME}-{stable}"}

    cluster.k(
        "patch",
        f"rollout/{NAME}",
        "--type=merge",
        "-p",
        '{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"x:2"}]}},'
        '"strategy":{"canary":{"canaryService":"demo-missing"}}}}',
    )
    cluster.k("wait", "--for=condition=InvalidSpec", f"rollout/{NAME}", "--timeout=10s")
    status = cluster.status()
    assert status["phase"] == "Degraded"
    assert (
        f"Service {cluster.namespace}/demo-missing not found"
        in cluster.condition("InvalidSpec")["message"]  # type: ignore[index]
    )
    invalid = [e for e in cluster.events() if e["reason"] == "InvalidSpec"]
    assert invalid
    assert invalid[0]["type"] == "Warning"
    assert "demo-missing" in invalid[0]["message"]
    time.sleep(2)  # a few more passes (the operator re-checks every 5 s at most)
    assert cluster.deployments() == before
    assert cluster.route()["metadata"]["resourceVersion"] == route_version
    assert cluster.status()["stableRevision"] == stable


def test_passes_that_change_nothing_write_nothing(
    cluster: Cluster, start_operator: StartOperator
) -> None:
    health, metrics = free_port(), free_port()
    cluster.apply(demo_docs(cluster.test_id))
    operator = start_operator(
        "--namespace",
        cluster.namespace,
        "--liveness",
        f"http://127.0.0.1:{health}/healthz",
        ROLLWISE_METRICS_PORT=str(metrics),
    )
    cluster.k("wait", "--for=condition=Ready", f"rollout/{NAME}", "--timeout=20s")
    time.sleep(1)  # let the last follow-up pass run
    version = cluster.rollout()["metadata"]["resourceVersion"]
    versions = set()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        versions.add(cluster.rollout()["metadata"]["resourceVersion"])
        time.sleep(0.25)
    assert versions == {version}
    # kopf keeps out of the status and stores nothing but its finalizer on the object.
    rollout = cluster.rollout()
    assert "kopf" not in rollout["status"]
    assert rollout["metadata"]["finalizers"] == ["rollwise.dev/finalizer"]
    assert not [a for a in rollout["metadata"].get("annotations", {}) if "kopf" in a]

    # Every log line about the Rollout names it; the process serves liveness and metrics.
    lines = [line for line in operator.lines() if line.get("rollout") == NAME]
    assert lines, "the operator logged nothing about the Rollout"
    assert all(line["namespace"] == cluster.namespace and "revision" in line for line in lines)
    alive = eventually(
        lambda: http_get(f"http://127.0.0.1:{health}/healthz"), timeout=5, what="liveness"
    )
    assert alive[0] == 200
    scraped = eventually(
        lambda: http_get(f"http://127.0.0.1:{metrics}/metrics"), timeout=5, what="metrics"
    )
    assert 'rollwise_rollouts{phase="Healthy"} 1.0' in scraped[1]
    assert (
        f'rollwise_rollout_canary_weight{{namespace="{cluster.namespace}",rollout="{NAME}"}} 0.0'
        in scraped[1]
    )

    # Deleting the Rollout is not held up by the operator's finalizer.
    cluster.k("delete", f"rollout/{NAME}", "--timeout=15s")
    scraped = eventually(
        lambda: (
            (m := http_get(f"http://127.0.0.1:{metrics}/metrics"))
            and 'rollwise_rollouts{phase="Healthy"} 0.0' in m[1]
            and m
        ),
        timeout=5,
        what="the deleted Rollout's series to go",
    )
    assert "rollwise_rollout_canary_weight{" not in scraped[1]

    # SIGTERM stops the operator cleanly and promptly.
    began = time.monotonic()
    assert operator.stop() == 0
    assert time.monotonic() - began < 10


def test_with_peering_the_operator_creates_its_peering_object_and_reconciles(
    cluster: Cluster, start_operator: StartOperator
) -> None:
    # Cluster-wide, as the chart runs two replicas with scope "cluster": its ClusterRole grants
    # the ClusterKopfPeering (kopf's peering CRDs are the chart's, installed with the lab).
    peering = f"rollwise-{cluster.test_id}"
    start_operator.install(scope="cluster", replicas=2)
    cluster.apply(demo_docs(cluster.test_id))
    start_operator(ROLLWISE_PEERING=peering, POD_NAME="rollwise-0")
    try:
        cluster.k("wait", "--for=condition=Ready", f"rollout/{NAME}", "--timeout=20s")

        def peers() -> dict[str, Any]:
            obj = cluster.custom.get_cluster_custom_object(
                "kopf.dev", "v1", "clusterkopfpeerings", peering
            )
            return dict(obj.get("status") or {})

        assert eventually(peers, timeout=10, what="the operator to register in the peering object")
    finally:
        cluster.kubectl("delete", "clusterkopfpeering", peering, "--ignore-not-found")
