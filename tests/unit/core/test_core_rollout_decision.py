"""``status.decision`` in Rollout passes: computed every pass of an active canary, settled
(``decidedAt`` moves only on change), one DecisionChanged event per change, agreeing with what
auto mode does; advisory mode holding at every gate until a human promotes or aborts."""

from __future__ import annotations

from typing import Any

from rollwise.core.decision import Action
from rollwise.core.observations import ManualRequest, Measurement, RequestKind
from rollwise.core.phases import Phase
from rollwise.core.rollout.actions import SetWeight
from rollwise.core.rollout.analysis import due_metrics
from rollwise.core.rollout.canary import decide
from rollwise.core.rollout.status import PauseReason, RolloutStatus
from rollwise.core.spec import RolloutSpec
from tests.unit.core.rollout_builders import R2, V1, V2, Cluster, at, metric, raw_spec, reasons

STEPS = [{"setWeight": 10}, {"setWeight": 50}, {"setWeight": 100}]
ANALYSIS = {"interval": "1m", "metrics": [metric(count=1)]}


def spec(template: dict[str, Any], mode: str = "auto") -> RolloutSpec:
    raw = raw_spec(image_template=template, steps=STEPS, analysis=ANALYSIS)
    raw["strategy"]["canary"]["decisionMode"] = mode
    return RolloutSpec.model_validate(raw)


def passes(  # noqa: PLR0917 (the scenario reads better positionally)
    rollout: RolloutSpec,
    status: RolloutStatus | None,
    cluster: Cluster,
    template: dict[str, Any],
    start: float,
    values: list[float],
    *,
    requests: tuple[ManualRequest, ...] = (),
    count: int = 30,
) -> tuple[RolloutStatus, list[str], list[int], float]:
    """Passes until the rollout idles; the status, every event reason, weights, clock."""
    now, events, weights, feed = start, [], [], list(values)
    for _ in range(count):
        due = due_metrics(rollout, status, at(now))
        measurements = {d.metric.name: Measurement(feed.pop(0), at(now)) for d in due if feed}
        observed = cluster.observe(template, measurements=measurements, requests=requests)
        decision = decide(rollout, status, observed, at(now))
        again = decide(rollout, decision.status, observed, at(now))
        assert again.status == decision.status
        assert again.events == ()
        cluster.apply(decision)
        events.extend(reasons(decision))
        weights.extend(a.weight for a in decision.actions if isinstance(a, SetWeight))
        status = decision.status
        if decision.requeue_after is None and not decision.events:
            break
        now += decision.requeue_after if decision.requeue_after is not None else 0
    assert status is not None
    return status, events, weights, now


def started(mode: str) -> tuple[RolloutStatus, Cluster, float]:
    cluster = Cluster()
    status, _, _, now = passes(spec(V1, mode), None, cluster, V1, 0, [])
    return status, cluster, now


def test_auto_mode_records_an_expanding_decision_and_acts_on_it() -> None:
    status, cluster, now = started("auto")
    status, events, weights, _ = passes(spec(V2), status, cluster, V2, now + 10, [0.01] * 3)
    assert status.phase is Phase.HEALTHY
    assert weights[-1] == 0
    assert 100 in weights
    decision = status.decision
    assert decision is not None
    # The last step's decision stays once the canary is promoted, for the record.
    assert decision.action is Action.EXPAND
    assert decision.recommended is Action.EXPAND
    assert decision.reasons[0].code == "ThresholdsPassed"
    assert "DecisionChanged" in events


def test_auto_mode_rollback_is_the_decision() -> None:
    status, cluster, now = started("auto")
    status, events, _, _ = passes(spec(V2), status, cluster, V2, now + 10, [0.5])
    assert status.rolled_back_revision == R2
    assert events[-3:] == ["AnalysisFailed", "RolledBack", "DecisionChanged"]
    decision = status.decision
    assert decision is not None
    assert (decision.action, decision.recommended) == (Action.ROLLBACK, Action.ROLLBACK)
    assert decision.required_actions[0].id == "rollback"
    assert decision.required_actions[0].auto_applicable


def test_the_decision_settles_and_its_event_comes_once_per_change() -> None:
    status, cluster, now = started("auto")
    rollout = spec(V2)
    status, events, _, now = passes(rollout, status, cluster, V2, now + 10, [], count=3)
    assert status.decision is not None
    pending = status.decision
    assert pending.action is Action.HOLD  # measuring: analysis pending
    assert events.count("DecisionChanged") == 1
    # Time passes without a measurement: the same decision, the same decidedAt, no event.
    observed = cluster.observe(V2)
    later = decide(rollout, status, observed, at(now + 20))
    assert later.status.decision == pending
    assert "DecisionChanged" not in reasons(later)


def test_advisory_mode_holds_at_the_gate_until_promoted() -> None:
    status, cluster, now = started("advisory")
    rollout = spec(V2, "advisory")
    status, events, weights, now = passes(rollout, status, cluster, V2, now + 10, [0.01])
    assert status.phase is Phase.PAUSED
    assert status.pause_reason is PauseReason.AWAITING_DECISION
    assert status.current_step_index == 0
    assert max(weights) == 10
    assert "AwaitingDecision" in events
    decision = status.decision
    assert decision is not None
    assert (decision.action, decision.recommended) == (Action.HOLD, Action.EXPAND)
    assert decision.required_actions[0].id == "promote-by-hand"
    assert not any(a.auto_applicable for a in decision.required_actions)
    # Nothing moves however long it waits.
    status, events, weights, now = passes(rollout, status, cluster, V2, now + 600, [])
    assert status.current_step_index == 0
    assert set(weights) <= {10}
    # A human promotes: the rollout moves to the next step and holds at its gate again.
    promote = (ManualRequest(RequestKind.PROMOTE, "p1"),)
    status, events, weights, now = passes(
        rollout, status, cluster, V2, now + 10, [0.01], requests=promote
    )
    assert events[0] == "Promoted"
    assert status.current_step_index == 1
    assert 50 in weights
    assert status.pause_reason is PauseReason.AWAITING_DECISION


def test_advisory_mode_never_rolls_back_by_itself() -> None:
    status, cluster, now = started("advisory")
    rollout = spec(V2, "advisory")
    status, events, _, now = passes(rollout, status, cluster, V2, now + 10, [0.5])
    assert status.canary_revision == R2
    assert status.rolled_back_revision is None
    assert "RolledBack" not in events
    decision = status.decision
    assert decision is not None
    assert (decision.action, decision.recommended) == (Action.HOLD, Action.ROLLBACK)
    assert decision.required_actions[0].id == "abort-by-hand"
    abort = (ManualRequest(RequestKind.ABORT, "a1"),)
    status, events, _, _ = passes(rollout, status, cluster, V2, now + 10, [], requests=abort)
    assert events[0] == "Aborted"
    assert status.rolled_back_revision == R2
