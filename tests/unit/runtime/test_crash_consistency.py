"""Crash consistency of the Rollout pass: the operator killed at any write of a rollout.

A clean run records every write the passes make (status patches, Deployment and Service
changes, route weights, events). Then, for each of those writes, the same rollout is run again
and the operator is "killed" right before that write or right after it (an exception no pass
catches, raised from inside the port), and a fresh operator (new memory, same cluster) carries
on. Whatever the kill point, the traffic the cluster carried must follow the clean run's
sequence (no step skipped, none redone, never backwards) and the events must be the clean
run's, each exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from rollwise.adapters.traffic.base import Weights, as_split
from rollwise.core.events import LoggedEvent
from rollwise.core.observations import revision_of
from rollwise.runtime.rollout.ports import RolloutObject
from rollwise.runtime.skeleton import Memory
from tests.unit.runtime.fakes import World, rollout_body, world


class Killed(BaseException):
    """The operator process died (no pass catches it)."""


@dataclass
class Recorder:
    """Counts the writes of the runs and kills the operator at one of them."""

    kill_at: int | None = None
    after: bool = False
    count: int = 0
    kinds: list[str] = field(default_factory=list)
    #: The status patches, by write index.
    patches: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: (what, value) of every change the cluster saw, in order.
    changes: list[tuple[str, Any]] = field(default_factory=list)
    #: Record each weight as (canary, baseline) rather than the canary's alone.
    three_way: bool = False

    def write(self, kind: str, perform: Callable[[], Any]) -> Any:
        index = self.count
        self.count += 1
        self.kinds.append(kind)
        if index == self.kill_at and not self.after:
            raise Killed(kind)
        result = perform()
        if index == self.kill_at and self.after:
            raise Killed(kind)
        return result


def instrument(w: World, rec: Recorder) -> None:
    cluster, workloads, router = w.cluster, w.workloads, w.router
    patch, post, post_logged = cluster.patch_status, cluster.post_event, cluster.post_logged
    point, ensure, scale, ensure_base = (
        workloads.point_service,
        workloads.ensure_revision,
        workloads.scale_revision,
        workloads.ensure_baseline,
    )
    set_weight = router.set_weight

    def patch_status(*args: Any) -> dict[str, Any]:
        rec.patches[rec.count] = args[2]
        return rec.write("status", lambda: patch(*args))  # type: ignore[no-any-return]

    def post_event(rollout: RolloutObject, event: Any) -> None:
        rec.write("event", lambda: post(rollout, event))

    def post_logged_event(rollout: RolloutObject, entry: LoggedEvent) -> bool:
        return rec.write("event", lambda: post_logged(rollout, entry))  # type: ignore[no-any-return]

    def point_service(namespace: str, name: str, revision: str | None) -> bool:
        def run() -> bool:
            changed = point(namespace, name, revision)
            if changed:
                rec.changes.append((name, revision))
            return changed

        return rec.write("service", run)  # type: ignore[no-any-return]

    def ensure_revision(*args: Any) -> Any:
        return rec.write("deployment", lambda: ensure(*args))

    def scale_revision(*args: Any) -> Any:
        return rec.write("deployment", lambda: scale(*args))

    def ensure_baseline(*args: Any) -> Any:
        return rec.write("deployment", lambda: ensure_base(*args))

    def weight(value: Weights) -> None:
        def run() -> None:
            split = as_split(value)
            if rec.three_way:
                now: Any = (router.weight, router.baseline)
                wanted: Any = (split.canary, split.baseline)
            else:
                now, wanted = router.weight, split.canary
            if wanted != now:
                rec.changes.append(("weight", wanted))
            set_weight(value)

        rec.write("weight", run)

    cluster.patch_status = patch_status  # type: ignore[method-assign]
    cluster.post_event = post_event  # type: ignore[method-assign]
    cluster.post_logged = post_logged_event  # type: ignore[method-assign]
    workloads.point_service = point_service  # type: ignore[method-assign]
    workloads.ensure_revision = ensure_revision  # type: ignore[method-assign]
    workloads.scale_revision = scale_revision  # type: ignore[method-assign]
    workloads.ensure_baseline = ensure_baseline  # type: ignore[method-assign]
    router.set_weight = weight  # type: ignore[method-assign]


NEW = revision_of(rollout_body("demo:2")["spec"]["template"])


def done(w: World) -> bool:
    status = w.status
    return status.get("phase") in ("Healthy", "Degraded") and (
        status.get("stableRevision") == NEW or status.get("rolledBackRevision") == NEW
    )


class AttemptHooks:
    """Gating webhooks that answer by the call's attempt number (403 to a confirm webhook's
    first call, 200 after; 200 to the others): a call repeated because the operator died
    before storing its answer gets the same answer again, as a deduplicating receiver would
    give."""

    def refusal(self, url: str) -> str | None:
        return None

    def call(
        self, name: str, url: str, body: dict[str, Any], timeout: float
    ) -> tuple[int | None, str]:
        confirm = body["type"] in ("confirm-rollout", "confirm-promotion")
        return (403 if confirm and body["attempt"] == 1 else 200), ""


WEBHOOKS = [
    {"name": kind, "type": kind, "url": f"https://gate.example/{kind}"}
    for kind in ("confirm-rollout", "pre-rollout", "confirm-promotion", "rollback")
]


def run_rollout(
    rec: Recorder, *, failing: bool, baseline: bool = False, webhooks: bool = False
) -> tuple[World, int]:
    """A rollout from Healthy on demo:1 to demo:2 (steps 5% → 100%), killed where ``rec``
    says; returns the world and how many times the operator was killed. ``baseline``: with a
    baseline beside the canary; ``webhooks``: with a gating webhook of every type."""
    if baseline:
        w = world(rollout_body(baseline=True, baselineService="demo-baseline"))
        w.workloads.services.add("demo-baseline")
    elif webhooks:
        w = world(rollout_body(webhooks=WEBHOOKS))
        w.ports.gate_hooks = AttemptHooks()
    else:
        w = world()
    if failing:
        w.provider().values[f'error_ratio{{revision="{NEW}"}}'] = 0.2
    instrument(w, rec)
    kills = 0
    edited = False
    for _ in range(80):
        if not edited and w.status.get("phase") == "Healthy":
            w.cluster.edit_image("demo:2")
            edited = True
        try:
            result = w.run()
        except Killed:
            kills += 1
            w.memory = Memory()  # a new operator process: nothing remembered
            continue
        if edited and done(w) and result.requeue_after is None:
            return w, kills
        w.clock.advance(result.requeue_after if result.requeue_after is not None else 1)
    raise AssertionError(f"not done: {w.status}")


def reasons(w: World) -> list[str]:
    return [e.reason.name for e in w.cluster.events]


def clean(failing: bool, baseline: bool = False, webhooks: bool = False) -> tuple[World, Recorder]:
    rec = Recorder(three_way=baseline)
    w, kills = run_rollout(rec, failing=failing, baseline=baseline, webhooks=webhooks)
    assert kills == 0
    return w, rec


@pytest.mark.parametrize(
    "failing", [pytest.param(False, id="promoted"), pytest.param(True, id="rolled-back")]
)
@pytest.mark.parametrize(
    "after", [pytest.param(False, id="before-write"), pytest.param(True, id="after-write")]
)
def test_a_kill_at_any_write_neither_moves_traffic_back_nor_loses_or_doubles_an_event(
    failing: bool, after: bool
) -> None:
    reference, reference_rec = clean(failing)
    expected_changes = reference_rec.changes
    expected_events = reasons(reference)
    assert ("weight", 5) in expected_changes
    for kill_at in range(reference_rec.count):
        rec = Recorder(kill_at=kill_at, after=after)
        w, kills = run_rollout(rec, failing=failing)
        where = f"killed {'after' if after else 'before'} write {kill_at} ({rec.kinds[kill_at]})"
        assert kills == 1, where
        assert w.status["phase"] == reference.status["phase"], where
        assert rec.changes == expected_changes, where
        assert reasons(w) == expected_events, where


@pytest.mark.parametrize(
    "failing", [pytest.param(False, id="promoted"), pytest.param(True, id="rolled-back")]
)
@pytest.mark.parametrize(
    "after", [pytest.param(False, id="before-write"), pytest.param(True, id="after-write")]
)
def test_with_a_baseline_a_kill_at_any_write_keeps_the_three_way_split_on_course(
    failing: bool, after: bool
) -> None:
    """The same with a baseline: the (canary, baseline) weights follow the clean run's
    sequence, the baseline's Deployment is created once and is gone at the end."""
    reference, reference_rec = clean(failing, baseline=True)
    expected_changes = reference_rec.changes
    weights = [value for what, value in expected_changes if what == "weight"]
    assert weights[0] == (5, 5)
    assert weights[-1] == (0, 0)
    for kill_at in range(reference_rec.count):
        rec = Recorder(kill_at=kill_at, after=after, three_way=True)
        w, kills = run_rollout(rec, failing=failing, baseline=True)
        where = f"killed {'after' if after else 'before'} write {kill_at} ({rec.kinds[kill_at]})"
        assert kills == 1, where
        assert w.status["phase"] == reference.status["phase"], where
        assert rec.changes == expected_changes, where
        assert reasons(w) == reasons(reference), where
        assert not [r for r in w.workloads.deployments if r.endswith("-baseline")], where
        assert "baseline" not in w.status, where


@pytest.mark.parametrize(
    "failing", [pytest.param(False, id="promoted"), pytest.param(True, id="rolled-back")]
)
@pytest.mark.parametrize(
    "after", [pytest.param(False, id="before-write"), pytest.param(True, id="after-write")]
)
def test_with_webhooks_a_kill_at_any_write_keeps_the_gates_and_their_events(
    failing: bool, after: bool
) -> None:
    """The same with a gating webhook of every type: the confirm gates hold once (403) then
    pass, the pre-rollout passes, a rollback tells the rollback webhook; whatever the kill
    point, traffic follows the clean run and each webhook event is posted exactly once."""
    reference, reference_rec = clean(failing, webhooks=True)
    expected_events = reasons(reference)
    assert expected_events.count("WebhookHeld") == (1 if failing else 2)
    results = {c["name"]: c["result"] for c in reference.status["webhooks"]}
    assert results["pre-rollout"] == "Passed"
    assert ("rollback" in results) is failing
    for kill_at in range(reference_rec.count):
        rec = Recorder(kill_at=kill_at, after=after)
        w, kills = run_rollout(rec, failing=failing, webhooks=True)
        where = f"killed {'after' if after else 'before'} write {kill_at} ({rec.kinds[kill_at]})"
        assert kills == 1, where
        assert w.status["phase"] == reference.status["phase"], where
        assert rec.changes == reference_rec.changes, where
        assert reasons(w) == expected_events, where
        assert {c["name"]: c["result"] for c in w.status["webhooks"]} == results, where


def test_a_kill_right_after_completion_leaves_the_new_revision_serving() -> None:
    """The case that once sent production traffic back to the old revision: killed right
    after the status recorded the completion, before the cluster was told."""
    _, reference_rec = clean(False)
    completion = next(
        i for i, patch in reference_rec.patches.items() if patch.get("stableRevision") == NEW
    )
    rec = Recorder(kill_at=completion, after=True)
    run_rollout(rec, failing=False)
    stable = [value for what, value in rec.changes if what == "demo-stable"]
    assert stable == [value for what, value in reference_rec.changes if what == "demo-stable"]
    assert stable[-1] == NEW
    weights = [value for what, value in rec.changes if what == "weight"]
    assert weights == [5, 100, 0]


def test_an_event_logged_before_a_kill_is_posted_once_under_its_own_name() -> None:
    w = world()
    rec = Recorder()
    instrument(w, rec)
    w.settle(lambda r: w.status.get("phase") == "Healthy")
    assert reasons(w) == ["Initialized"]
    assert w.cluster.event_names == {"demo.uid-1.0000000001"}
    assert w.status["eventLog"]["entries"][0]["reason"] == "Initialized"
    # A new operator does not know what was posted beyond the recorded watermark: it posts
    # again, the API answers AlreadyExists, and nothing is doubled.
    for _ in range(3):
        w.memory = Memory()
        w.run()
    assert reasons(w) == ["Initialized"]
