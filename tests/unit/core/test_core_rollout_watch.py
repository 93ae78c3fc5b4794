"""The Rollout's post-promotion watch, state in and state out: a promotion starts it with the
previous revision kept warm, a confirmed critical regression rolls back on the fast track, a
blip is a false positive, ``alert`` only alerts, ``hold`` keeps a new revision waiting, the
watch ends clean and the previous revision goes."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest

from rollwise.core.decision_evidence import Action
from rollwise.core.observations import OVERRIDE_HANDLED_KEY, ManualRequest, RequestKind
from rollwise.core.phases import Phase
from rollwise.core.postpromotion import (
    Counted,
    PostPromotionStatus,
    WatchPhase,
    counted,
    key,
)
from rollwise.core.regression import KpiState
from rollwise.core.rollout.actions import PointStableService, ScaleRevision
from rollwise.core.rollout.canary import decide
from rollwise.core.rollout.status import ConditionType, RolloutStatus
from rollwise.core.rollout.watch import watch_due
from rollwise.core.spec import RegressionAction, RolloutSpec
from tests.unit.core.rollout_builders import (
    R1,
    R2,
    V1,
    V2,
    V3,
    Cluster,
    at,
    drive,
    metric,
    raw_spec,
    reasons,
    value,
)


def watched_spec(template: dict[str, Any] = V1, **watch: Any) -> RolloutSpec:
    raw = raw_spec(image_template=template, steps=[{"setWeight": 100}], scale_down_delay=5)
    error_rate = metric("error-rate", success="result < 0.05")
    error_rate["provider"]["prometheus"]["query"] = (
        'sum(rate(errors{rev="{{revision}}"}[{{window}}]))'
    )
    settings = {
        "duration": "60s",
        "interval": "5s",
        "windows": {"short": "5s", "long": "30s"},
        "confirmAfter": 2,
        "clearAfter": 2,
        "metrics": [error_rate],
        **watch,
    }
    raw["strategy"]["canary"]["postPromotion"] = settings
    return RolloutSpec.model_validate(raw)


def promoted(**watch: Any) -> tuple[RolloutSpec, RolloutStatus, Cluster, datetime]:
    """A Rollout whose canary of V2 was just promoted over V1, with its watch started."""
    cluster = Cluster()
    spec1 = watched_spec(V1, **watch)
    status, _, _ = drive(spec1, None, cluster, V1, at(0))
    spec2 = watched_spec(V2, **watch)
    status, seen, _ = drive(spec2, status, cluster, V2, at(10))
    assert status is not None
    assert "RolloutCompleted" in seen, seen
    assert "PostPromotionWatchStarted" in seen, seen
    return spec2, status, cluster, at(10)


def step(  # noqa: PLR0917
    spec: RolloutSpec,
    status: RolloutStatus,
    cluster: Cluster,
    now: datetime,
    values: dict[str, float | None],
    template: dict[str, Any] = V2,
) -> tuple[RolloutStatus, list[str], Any]:
    due = {m.name for m in watch_due(spec, status, {}, now)}
    measurements = {name: value(v, now) for name, v in values.items() if name in due}
    decision = decide(spec, status, cluster.observe(template, measurements=measurements), now)
    cluster.apply(decision)
    return decision.status, reasons(decision), decision


def watch(status: RolloutStatus) -> PostPromotionStatus:
    assert status.post_promotion is not None
    return status.post_promotion


def capture(
    spec: RolloutSpec, status: RolloutStatus, cluster: Cluster, now: datetime
) -> RolloutStatus:
    status, _, _ = step(spec, status, cluster, now, {key("error-rate", "previous"): 0.01})
    assert watch(status).previous_captured
    assert watch(status).kpis[0].previous == 0.01
    return status


def bad(v: float) -> dict[str, float | None]:
    return {key("error-rate", "short"): v, key("error-rate", "long"): v}


def test_promotion_starts_the_watch_and_keeps_the_previous_revision_warm() -> None:
    spec, status, cluster, now = promoted()
    pp = watch(status)
    assert (pp.phase, pp.revision, pp.previous_revision) == (WatchPhase.WATCHING, R2, R1)
    assert [k.name for k in pp.kpis] == ["error-rate"]
    assert pp.kpis[0].reason == "error_rate_regression"
    # Kept for the watch, not the 5s scale-down delay; at full size (100% by default).
    assert [r.revision for r in status.retired_revisions] == [R1]
    assert status.retired_revisions[0].remove_at == pp.ends_at
    assert cluster.revisions[R1].desired_replicas == 4
    # The previous revision's value is asked for at once, with its revision and long window.
    due = watch_due(spec, status, {}, now)
    assert [m.name for m in due] == ["error-rate@previous"]
    query = due[0].provider.prometheus.query if due[0].provider.prometheus else ""
    assert query == f'sum(rate(errors{{rev="{R1}"}}[30s]))'


def test_confirmed_critical_regression_rolls_back_on_the_fast_track() -> None:
    spec, status, cluster, now = promoted()
    status = capture(spec, status, cluster, now)
    status, seen, _ = step(spec, status, cluster, at(15), bad(0.3))
    assert seen == ["RegressionDetected"]
    assert watch(status).kpis[0].state is KpiState.DETECTED
    status, seen, decision = step(spec, status, cluster, at(20), bad(0.3))
    assert "RegressionConfirmed" in seen, seen
    assert "RegressionRollback" in seen, seen
    assert status.stable_revision == R1
    assert status.rolled_back_revision == R2
    assert status.phase is Phase.DEGRADED
    degraded = status.condition(ConditionType.DEGRADED)
    assert degraded is not None
    assert degraded.reason == "RegressionRollback"
    assert watch(status).action is RegressionAction.ROLLBACK
    assert watch(status).phase is WatchPhase.REGRESSED
    assert status.decision is not None
    assert status.decision.action is Action.ROLLBACK
    assert [r.code for r in status.decision.reasons] == ["RegressionConfirmed"]
    # One write moves the traffic: the stable Service selects the warm previous revision,
    # then the regressed one is scaled to zero.
    kinds = [type(a) for a in decision.actions]
    point = kinds.index(PointStableService)
    assert decision.actions[point] == PointStableService("web-stable", R1)
    down = [a for a in decision.actions if isinstance(a, ScaleRevision) and a.revision == R2]
    assert down == [ScaleRevision(R2, 0)]
    assert decision.actions.index(down[0]) > point
    # Deciding again changes nothing, and the watch measures no more.
    again = decide(spec, status, cluster.observe(V2), at(20))
    assert again.status == status
    assert again.events == ()
    assert watch_due(spec, status, {}, at(60)) == []


def test_blip_is_one_detection_and_one_false_positive() -> None:
    spec, status, cluster, now = promoted()
    status = capture(spec, status, cluster, now)
    all_seen: list[str] = []
    found: list[str] = []
    for t, v in ((15, 0.3), (20, 0.01), (25, 0.01), (30, 0.01), (35, 0.01)):
        before = status
        status, seen, _ = step(spec, status, cluster, at(t), bad(v))
        all_seen += seen
        found += [c.value for c, _ in counted(watch(before), watch(status))]
    assert all_seen.count("RegressionDetected") == 1
    assert all_seen.count("RegressionCleared") == 1
    assert "RegressionConfirmed" not in all_seen
    assert "RegressionRollback" not in all_seen
    assert status.stable_revision == R2
    assert status.phase is Phase.HEALTHY
    record = watch(status).kpis[0]
    assert (record.state, record.episodes, record.confirmed) == (KpiState.CLEARED, 1, False)
    assert found == ["detected", "false_positive"]


def test_alert_only_alerts() -> None:
    spec, status, cluster, now = promoted(onRegression={"critical": "alert"})
    status = capture(spec, status, cluster, now)
    all_seen: list[str] = []
    for t in (15, 20, 25, 30):
        status, seen, _ = step(spec, status, cluster, at(t), bad(0.3))
        all_seen += seen
    assert all_seen.count("RegressionConfirmed") == 1
    assert "RegressionRollback" not in all_seen
    assert status.stable_revision == R2
    assert status.rolled_back_revision is None
    assert status.phase is Phase.HEALTHY
    assert watch(status).action is RegressionAction.ALERT
    assert status.decision is not None
    assert status.decision.action is Action.HOLD


def test_hold_keeps_a_new_revision_waiting_until_promoted() -> None:
    spec, status, cluster, now = promoted(onRegression={"critical": "hold"})
    status = capture(spec, status, cluster, now)
    for t in (15, 20):
        status, _, _ = step(spec, status, cluster, at(t), bad(0.3))
    assert watch(status).action is RegressionAction.HOLD
    spec3 = RolloutSpec.model_validate(
        {**spec.model_dump(by_alias=True, exclude_none=True), "template": V3}
    )
    status, seen, _ = step(spec3, status, cluster, at(21), {}, template=V3)
    assert seen == ["RegressionHold"]
    assert status.canary_revision is None
    assert status.phase is Phase.PAUSED
    paused = status.condition(ConditionType.PAUSED)
    assert paused is not None
    assert paused.reason == "RegressionHold"
    status, seen, _ = step(spec3, status, cluster, at(22), {}, template=V3)
    assert seen == []  # one event per held revision
    decision = decide(spec3, status, cluster.observe(V3, requests=()), at(23))
    assert decision.status.canary_revision is None
    observed = replace(cluster.observe(V3), requests=(ManualRequest(RequestKind.PROMOTE, "p1"),))
    decision = decide(spec3, status, observed, at(24))
    assert "RevisionDetected" in reasons(decision)
    assert decision.status.canary_revision is not None


def test_watch_ends_clean_and_the_previous_revision_goes() -> None:
    spec, status, cluster, now = promoted()
    status = capture(spec, status, cluster, now)
    t = 15
    while t <= 70:
        status, _, _ = step(spec, status, cluster, at(t), bad(0.01))
        t += 5
    pp = watch(status)
    assert pp.phase is WatchPhase.PASSED
    assert pp.ended_at is not None
    status, _seen, _ = drive(spec, status, cluster, V2, at(75))
    assert R1 not in cluster.revisions
    assert status is not None
    assert status.retired_revisions == []


@pytest.mark.parametrize(
    ("watch_spec", "message"),
    [
        pytest.param({"metrics": []}, "postPromotion needs metrics or templates", id="no-metrics"),
        pytest.param(
            {"windows": {"short": "1h", "long": "5m"}},
            "windows.short must not be longer",
            id="windows-order",
        ),
        pytest.param(
            {"kpis": [{"metric": "nope"}]}, "names a metric the watch does not have", id="kpi"
        ),
    ],
)
def test_bad_watch_is_invalid_spec(watch_spec: dict[str, Any], message: str) -> None:
    spec = watched_spec(V1, **watch_spec)
    decision = decide(spec, None, Cluster().observe(V1), at(0))
    assert decision.actions == ()
    invalid = decision.status.condition(ConditionType.INVALID_SPEC)
    assert invalid is not None
    assert message in invalid.message


def test_counted_once_per_episode() -> None:
    spec, status, cluster, now = promoted()
    status = capture(spec, status, cluster, now)
    found: list[Counted] = []
    for t in (15, 20, 25):
        before = status
        status, _, _ = step(spec, status, cluster, at(t), bad(0.3))
        found += [c for c, _ in counted(watch(before), watch(status))]
    assert found == [Counted.DETECTED, Counted.CONFIRMED]


def test_no_rollback_when_the_previous_revision_is_gone() -> None:
    spec, status, cluster, now = promoted()
    status = capture(spec, status, cluster, now)
    status, _, _ = step(spec, status, cluster, at(15), bad(0.3))
    del cluster.revisions[R1]  # deleted by hand
    status, seen, _ = step(spec, status, cluster, at(20), bad(0.3))
    assert "RegressionConfirmed" in seen
    assert "RegressionRollbackUnavailable" in seen
    assert "RegressionRollback" not in seen
    assert status.stable_revision == R2
    assert status.rolled_back_revision is None


def held_by_regression() -> tuple[RolloutSpec, RolloutStatus, Cluster]:
    """A new revision (V3) waiting on the confirmed regression (action hold) of V2."""
    spec, status, cluster, now = promoted(onRegression={"critical": "hold"})
    status = capture(spec, status, cluster, now)
    for t in (15, 20):
        status, _, _ = step(spec, status, cluster, at(t), bad(0.3))
    spec3 = RolloutSpec.model_validate(
        {**spec.model_dump(by_alias=True, exclude_none=True), "template": V3}
    )
    status, seen, _ = step(spec3, status, cluster, at(21), {}, template=V3)
    assert seen == ["RegressionHold"]
    return spec3, status, cluster


def test_a_confirmed_promote_override_lifts_the_hold_on_record() -> None:
    spec3, status, cluster = held_by_regression()
    lift = ManualRequest(RequestKind.PROMOTE, "o1", user="alice", confirmed_by="bob")
    observed = replace(cluster.observe(V3), override_requests=(lift,))
    decision = decide(spec3, status, observed, at(24))
    seen = reasons(decision)
    assert seen[:2] == ["RegressionHoldLifted", "RevisionDetected"]
    lifted = next(e for e in decision.events if e.reason.name == "RegressionHoldLifted")
    assert "promote override o1 by alice, confirmed by bob" in lifted.message
    assert f"past the confirmed regression of revision {R2}" in lifted.message
    new = decision.status
    assert new.canary_revision is not None
    assert new.handled_requests[OVERRIDE_HANDLED_KEY] == "o1"
    pp = watch(new)
    assert pp.ended_at == at(24)
    assert pp.action is RegressionAction.HOLD  # the regression stays on record
    assert pp.hold_lifted is not None
    assert (pp.hold_lifted.request, pp.hold_lifted.override) == ("o1", True)
    assert (pp.hold_lifted.user, pp.hold_lifted.confirmed_by) == ("alice", "bob")
    assert pp.hold_lifted.revision == new.canary_revision
    assert pp.hold_lifted.at == at(24)
    wire = new.model_dump(by_alias=True, mode="json")["postPromotion"]["holdLifted"]
    assert {k: v for k, v in wire.items() if k != "at"} == {
        "revision": new.canary_revision,
        "request": "o1",
        "override": True,
        "user": "alice",
        "confirmedBy": "bob",
    }
    cluster.apply(decision)
    again = decide(spec3, new, observed, at(25))
    assert "RegressionHoldLifted" not in reasons(again)  # the override acts once
    assert again.status.canary_revision == new.canary_revision


def test_an_unconfirmed_promote_override_leaves_the_revision_waiting() -> None:
    spec3, status, cluster = held_by_regression()
    waiting = "promote override by alice waits for a second person's confirmation"
    observed = replace(cluster.observe(V3), override_waiting=waiting)
    decision = decide(spec3, status, observed, at(24))
    assert reasons(decision) == []
    assert decision.status.canary_revision is None
    assert decision.status.phase is Phase.PAUSED
    assert decision.status.message.endswith(f"; {waiting}")
    assert watch(decision.status).hold_lifted is None


def test_a_promote_request_lifting_the_hold_names_no_one() -> None:
    spec3, status, cluster = held_by_regression()
    observed = replace(cluster.observe(V3), requests=(ManualRequest(RequestKind.PROMOTE, "p1"),))
    decision = decide(spec3, status, observed, at(24))
    lifted = next(e for e in decision.events if e.reason.name == "RegressionHoldLifted")
    assert "promote request p1 (rollwise.dev/promote)" in lifted.message
    pp = watch(decision.status)
    assert pp.hold_lifted is not None
    assert (pp.hold_lifted.override, pp.hold_lifted.user) == (False, None)
