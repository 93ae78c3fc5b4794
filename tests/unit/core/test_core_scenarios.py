"""Whole rollouts driven through an ideal cluster, one pass after another, with the clock
moving as the decisions ask (``requeue_after``). At every pass the decision is made twice to
check that deciding again is quiet."""

from __future__ import annotations

from typing import Any

from rollwise.core.observations import ManualRequest, Measurement, RequestKind
from rollwise.core.phases import Phase
from rollwise.core.rollout.actions import Decision, DeleteRevision, SetWeight
from rollwise.core.rollout.analysis import due_metrics
from rollwise.core.rollout.canary import decide
from rollwise.core.rollout.status import RolloutStatus
from rollwise.core.spec import RolloutSpec
from tests.unit.core.rollout_builders import R1, R2, V1, V2, Cluster, at, metric, reasons, spec_of


def run(  # noqa: PLR0917 (the scenario reads better positionally)
    spec: RolloutSpec,
    status: RolloutStatus | None,
    cluster: Cluster,
    template: dict[str, Any],
    start: float,
    values: dict[str, list[float | None]],
    *,
    requests: tuple[ManualRequest, ...] = (),
    max_passes: int = 60,
) -> tuple[RolloutStatus, list[str], list[int], float]:
    """Run passes until the rollout idles; returns the final status, every event reason, the
    weights written, and the final clock."""
    now = start
    events: list[str] = []
    weights: list[int] = []
    feeds = {k: list(v) for k, v in values.items()}
    for _ in range(max_passes):
        due = due_metrics(spec, status, at(now))
        measurements = {
            d.metric.name: Measurement(feeds[d.metric.name].pop(0), at(now))
            for d in due
            if feeds.get(d.metric.name)
        }
        observed = cluster.observe(template, measurements=measurements, requests=requests)
        decision = decide(spec, status, observed, at(now))
        again = decide(spec, decision.status, observed, at(now))
        _assert_quiet(decision, again)
        cluster.apply(decision)
        # The decision's own events are checked in test_core_rollout_decision.py.
        events.extend(r for r in reasons(decision) if r != "DecisionChanged")
        weights.extend(a.weight for a in decision.actions if isinstance(a, SetWeight))
        status = decision.status
        if decision.requeue_after is None and not decision.events:
            break
        now += decision.requeue_after if decision.requeue_after is not None else 0
    assert status is not None
    return status, events, weights, now


def _assert_quiet(first: Decision, again: Decision) -> None:
    assert again.status == first.status
    assert again.events == ()
    assert again.actions == first.actions


STEPS = [
    {"setWeight": 10},
    {"pause": {"duration": "2m"}},
    {"setWeight": 50},
    {"analysis": {"metrics": [metric("latency", success="result < 300.0", count=2)]}},
    {"setWeight": 100},
]
ANALYSIS = {"interval": "1m", "metrics": [metric(count=2)]}


def test_happy_path_end_to_end() -> None:
    cluster = Cluster()
    first = spec_of(steps=STEPS, analysis=ANALYSIS)
    status, events, _, now = run(first, None, cluster, V1, 0, {})
    assert events == ["Initialized"]
    spec = spec_of(image_template=V2, steps=STEPS, analysis=ANALYSIS)
    values: dict[str, list[float | None]] = {"error-ratio": [0.01] * 6, "latency": [120.0, 150.0]}
    status, events, weights, now = run(spec, status, cluster, V2, now + 10, values)
    assert status.phase is Phase.HEALTHY
    assert (status.stable_revision, status.canary_revision) == (R2, None)
    assert events[:2] == ["RevisionDetected", "WeightSet"]
    assert events.count("AnalysisPassed") == 4
    assert events.count("StepAdvanced") == 5
    assert "PauseExpired" in events
    assert events[-2:] == ["RolloutCompleted", "RevisionRetired"]
    nonzero = [w for w in weights if w]
    assert nonzero == sorted(nonzero)
    assert max(weights) == 100
    assert R1 not in cluster.revisions


def test_failure_at_second_step_rolls_back_and_stays_back() -> None:
    cluster = Cluster()
    status, _, _, now = run(spec_of(steps=STEPS, analysis=ANALYSIS), None, cluster, V1, 0, {})
    spec = spec_of(image_template=V2, steps=STEPS, analysis=ANALYSIS)
    values: dict[str, list[float | None]] = {"error-ratio": [0.01, 0.01, 0.01, 0.5]}
    status, events, weights, now = run(spec, status, cluster, V2, now + 10, values)
    assert status.phase is Phase.DEGRADED
    assert status.rolled_back_revision == R2
    assert events[-2:] == ["AnalysisFailed", "RolledBack"]
    assert status.decision is not None
    assert status.decision.action.value == "rollback"
    assert status.decision.reasons[0].code == "ThresholdFailed"
    assert weights[-1] == 0
    assert cluster.weight == 0
    assert cluster.revisions[R2].desired_replicas == 0
    status, events, weights, _ = run(spec, status, cluster, V2, now + 3600, {})
    assert events == []
    assert set(weights) == {0}


def test_abort_then_retry_then_success() -> None:
    cluster = Cluster()
    steps = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 100}]
    status, _, _, now = run(spec_of(steps=steps), None, cluster, V1, 0, {})
    spec = spec_of(image_template=V2, steps=steps)
    status, events, _, now = run(spec, status, cluster, V2, now + 10, {})
    assert status.phase is Phase.PAUSED
    abort = (ManualRequest(RequestKind.ABORT, "a1"),)
    status, events, _, now = run(spec, status, cluster, V2, now + 10, {}, requests=abort)
    assert events == ["Aborted"]
    assert status.phase is Phase.DEGRADED
    retry = (*abort, ManualRequest(RequestKind.RETRY, "r1"))
    status, events, _, now = run(spec, status, cluster, V2, now + 10, {}, requests=retry)
    assert events[0] == "RetryRequested"
    assert status.phase is Phase.PAUSED
    promote = (*retry, ManualRequest(RequestKind.PROMOTE, "p1"))
    status, events, _, _ = run(spec, status, cluster, V2, now + 10, {}, requests=promote)
    assert "Promoted" in events
    assert "RolloutCompleted" in events
    assert status.stable_revision == R2


def test_provider_outage_never_promotes_nor_rolls_back() -> None:
    cluster = Cluster()
    analysis = {**ANALYSIS, "consecutiveErrorLimit": 2}
    status, _, _, now = run(spec_of(analysis=analysis), None, cluster, V1, 0, {})
    spec = spec_of(image_template=V2, analysis=analysis)
    now += 10
    for _ in range(10):
        due = due_metrics(spec, status, at(now))
        measurements = {d.metric.name: Measurement(None, at(now), error="503") for d in due}
        decision = decide(spec, status, cluster.observe(V2, measurements=measurements), at(now))
        cluster.apply(decision)
        status = decision.status
        now += decision.requeue_after or 60
    assert status.phase is Phase.PAUSED
    assert status.canary_revision == R2
    assert status.canary_weight == 5
    assert status.rolled_back_revision is None
    assert status.analysis is not None
    run_metric = status.analysis.metric("error-ratio")
    assert run_metric is not None
    assert run_metric.consecutive_errors == 3


def test_replica_ratio_rollout_completes() -> None:
    cluster = Cluster(router=False)
    kw: dict[str, Any] = {"router": False, "replicas": 10}
    status, _, _, now = run(spec_of(**kw), None, cluster, V1, 0, {})
    spec = spec_of(image_template=V2, **kw)
    status, events, _, _ = run(spec, status, cluster, V2, now + 10, {})
    assert status.phase is Phase.HEALTHY
    assert status.stable_revision == R2
    assert events.count("WeightSet") == 3
    assert cluster.revisions[R2].desired_replicas == 10


def test_old_revision_kept_during_scale_down_delay() -> None:
    cluster = Cluster()
    steps = [{"setWeight": 100}]
    status, _, _, now = run(spec_of(steps=steps, scale_down_delay=600), None, cluster, V1, 0, {})
    spec = spec_of(image_template=V2, steps=steps, scale_down_delay=600)
    observed = cluster.observe(V2)
    for _ in range(3):
        decision = decide(spec, status, observed, at(now))
        cluster.apply(decision)
        status = decision.status
        observed = cluster.observe(V2)
    assert status.stable_revision == R2
    assert R1 in cluster.revisions
    later = decide(spec, status, observed, at(now + 601))
    assert DeleteRevision(R1) in later.actions
