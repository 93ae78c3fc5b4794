"""Gating webhooks (``spec.strategy.canary.webhooks``): where each gate is, what an answer
does, what the runtime is asked to call and with which body. Same table shape as
test_core_rollout: state in, one ``decide``, state out; and deciding again is quiet."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from rollwise.core.conditions import ConditionStatus
from rollwise.core.observations import ManualRequest, Observations, RequestKind, WebhookAnswer
from rollwise.core.phases import Phase
from rollwise.core.rollout.actions import EnsureRevision, SetWeight
from rollwise.core.rollout.canary import decide
from rollwise.core.rollout.status import (
    ConditionType,
    PauseReason,
    RolloutStatus,
    WebhookCall,
    WebhookResult,
)
from rollwise.core.rollout.webhooks import (
    BODY_VERSION,
    RECALL_SECONDS,
    call_id,
    due_webhooks,
    held_confirmation,
)
from rollwise.core.spec import RolloutSpec
from rollwise.core.validation import load_rollout_spec
from tests.unit.core.rollout_builders import (
    R1,
    R2,
    V1,
    V2,
    Cluster,
    at,
    drive,
    raw_spec,
    reasons,
)
from tests.unit.core.test_core_rollout import Case, _check

URL = "https://hooks.example.com/gate"
STEPS = [{"setWeight": 20}, {"setWeight": 100}]


def hooked(
    *kinds: str,
    template: dict[str, Any] = V2,
    steps: list[dict[str, Any]] | None = None,
) -> RolloutSpec:
    raw = raw_spec(image_template=template, steps=steps if steps is not None else STEPS)
    raw["strategy"]["canary"]["webhooks"] = [
        {"name": kind, "type": kind, "url": f"{URL}/{kind}", "metadata": {"team": "web"}}
        for kind in kinds
    ]
    return RolloutSpec.model_validate(raw)


def answered(status: RolloutStatus, name: str, code: int | None, detail: str = "") -> Observations:
    """Nothing but the answer of ``name`` to its next call, as the runtime would hand it."""
    call = next(c for c in status.webhooks or () if c.name == name)
    answer = WebhookAnswer(name, call.revision, call.calls + 1, code, detail)
    return Observations(template_hash="", generation=1, webhook_answers={name: answer})


def seen(cluster: Cluster, template: dict[str, Any], answer: Observations | None) -> Observations:
    obs = cluster.observe(template)
    if answer is None:
        return obs
    return replace(obs, webhook_answers=answer.webhook_answers)


def call_of(status: RolloutStatus, name: str) -> WebhookCall:
    return next(c for c in status.webhooks or () if c.name == name)


def healthy_with(*kinds: str, steps: list[dict[str, Any]] | None = None) -> tuple[Any, Cluster]:
    cluster = Cluster()
    spec = hooked(*kinds, template=V1, steps=steps)
    status, _, _ = drive(spec, None, cluster, V1, at(0))
    assert status is not None
    assert status.phase is Phase.HEALTHY
    assert status.webhooks is None  # the first revision has nothing to confirm
    return status, cluster


def awaiting_rollout() -> tuple[RolloutStatus, Cluster]:
    status, cluster = healthy_with("confirm-rollout")
    d = decide(hooked("confirm-rollout"), status, cluster.observe(V2), at(10))
    cluster.apply(d)
    return d.status, cluster


def held_rollout() -> tuple[RolloutStatus, Cluster]:
    status, cluster = awaiting_rollout()
    obs = seen(cluster, V2, answered(status, "confirm-rollout", 403))
    d = decide(hooked("confirm-rollout"), status, obs, at(11))
    cluster.apply(d)
    return d.status, cluster


def canary_waiting_pre_rollout(*extra: str) -> tuple[RolloutStatus, Cluster, RolloutSpec]:
    spec = hooked("pre-rollout", *extra)
    status, cluster = healthy_with("pre-rollout", *extra)
    status2, _, _ = drive(spec, status, cluster, V2, at(10))
    assert status2 is not None
    return status2, cluster, spec


def at_promotion(*extra: str) -> tuple[RolloutStatus, Cluster, RolloutSpec]:
    spec = hooked("confirm-promotion", *extra)
    status, cluster = healthy_with("confirm-promotion", *extra)
    status2, _, _ = drive(spec, status, cluster, V2, at(10))
    assert status2 is not None
    return status2, cluster, spec


# ------------------------------------------------------------------ cases


def confirm_rollout_holds_new_revision() -> Case:
    status, cluster = healthy_with("confirm-rollout")
    return Case(
        spec=hooked("confirm-rollout"),
        status=status,
        obs=cluster.observe(V2),
        now=at(10),
        phase=Phase.PAUSED,
        events=["AwaitingConfirmation"],
        fields={
            "canary_revision": None,
            "stable_revision": R1,
            "canary_weight": 0,
            "webhooks": [WebhookCall(name="confirm-rollout", type="confirm-rollout", revision=R2)],
        },
        requeue=0.0,
        message=f"new revision {R2} waits for confirm-rollout webhook confirm-rollout (Pending)",
    )


def confirm_rollout_refused_holds() -> Case:
    status, cluster = awaiting_rollout()
    return Case(
        spec=hooked("confirm-rollout"),
        status=status,
        obs=seen(cluster, V2, answered(status, "confirm-rollout", 403)),
        now=at(11),
        phase=Phase.PAUSED,
        events=["WebhookHeld"],
        fields={
            "canary_revision": None,
            "webhooks": [
                WebhookCall(
                    name="confirm-rollout",
                    type="confirm-rollout",
                    revision=R2,
                    result=WebhookResult.HELD,
                    code=403,
                    message="answered 403",
                    last_call=at(11),
                    calls=1,
                )
            ],
        },
        requeue=RECALL_SECONDS,
        message="confirm-rollout (answered 403)",
    )


def confirm_rollout_no_answer_holds() -> Case:
    status, cluster = awaiting_rollout()
    return Case(
        spec=hooked("confirm-rollout"),
        status=status,
        obs=seen(cluster, V2, answered(status, "confirm-rollout", None, "did not answer in 10s")),
        now=at(11),
        phase=Phase.PAUSED,
        events=["WebhookHeld"],
        fields={"canary_revision": None, "rolled_back_revision": None},
        message="did not answer in 10s",
    )


def confirm_rollout_same_answer_again_is_quiet() -> Case:
    status, cluster = held_rollout()
    return Case(
        spec=hooked("confirm-rollout"),
        status=status,
        obs=seen(cluster, V2, answered(status, "confirm-rollout", 403)),
        now=at(16),
        phase=Phase.PAUSED,
        events=[],
        requeue=RECALL_SECONDS,
    )


def confirm_rollout_passes_starts_canary() -> Case:
    status, cluster = held_rollout()
    return Case(
        spec=hooked("confirm-rollout"),
        status=status,
        obs=seen(cluster, V2, answered(status, "confirm-rollout", 200)),
        now=at(16),
        phase=Phase.PROGRESSING,
        events=["WebhookPassed", "RevisionDetected"],
        fields={"canary_revision": R2, "current_step_index": 0, "canary_weight": 0},
        contains=[EnsureRevision(R2, 1, V2)],
    )


def pre_rollout_called_before_first_weight() -> Case:
    spec = hooked("pre-rollout")
    status, cluster = healthy_with("pre-rollout")
    # The canary starts and its pods come up: the first weight waits for the webhook.
    d = decide(spec, status, cluster.observe(V2), at(10))
    cluster.apply(d)
    return Case(
        spec=spec,
        status=d.status,
        obs=cluster.observe(V2),
        now=at(11),
        phase=Phase.PROGRESSING,
        events=[],
        fields={
            "canary_revision": R2,
            "canary_weight": 0,
            "webhooks": [WebhookCall(name="pre-rollout", type="pre-rollout", revision=R2)],
        },
        requeue=0.0,
        message="calling pre-rollout webhook pre-rollout (Pending) before any traffic",
    )


def pre_rollout_passes_sets_weight() -> Case:
    status, cluster, spec = canary_waiting_pre_rollout()
    return Case(
        spec=spec,
        status=status,
        obs=seen(cluster, V2, answered(status, "pre-rollout", 204)),
        now=at(12),
        phase=Phase.PROGRESSING,
        events=["WebhookPassed", "WeightSet"],
        fields={"canary_weight": 20},
    )


def pre_rollout_fails_rolls_back() -> Case:
    status, cluster, spec = canary_waiting_pre_rollout("rollback")
    return Case(
        spec=spec,
        status=status,
        obs=seen(cluster, V2, answered(status, "pre-rollout", 500)),
        now=at(12),
        phase=Phase.DEGRADED,
        events=["WebhookFailed", "RolledBack"],
        fields={
            "canary_revision": None,
            "canary_weight": 0,
            "rolled_back_revision": R2,
        },
        contains=[SetWeight(R1, R1, 0)],
        requeue=0.0,
        message="pre-rollout webhook pre-rollout: answered 500",
    )


def confirm_promotion_holds_weight_100() -> Case:
    status, cluster, spec = at_promotion()
    assert status.current_step_index == 1
    return Case(
        spec=spec,
        status=status,
        obs=seen(cluster, V2, answered(status, "confirm-promotion", 500)),
        now=at(20),
        phase=Phase.PAUSED,
        events=["WebhookHeld"],
        fields={"canary_revision": R2, "stable_revision": R1, "canary_weight": 20},
        requeue=RECALL_SECONDS,
        message=(
            "step 2/2 (setWeight 100%): 100% to the canary waits for confirm-promotion webhook "
            "confirm-promotion (answered 500)"
        ),
    )


def confirm_promotion_passes_sets_100() -> Case:
    status, cluster, spec = at_promotion()
    return Case(
        spec=spec,
        status=status,
        obs=seen(cluster, V2, answered(status, "confirm-promotion", 200)),
        now=at(20),
        phase=Phase.PROGRESSING,
        events=["WebhookPassed", "WeightSet"],
        fields={"canary_revision": R2, "canary_weight": 100},
    )


PAUSE_ONLY = [{"pause": {"duration": "5s"}}]


def promotion_after_last_step_waits(cluster_out: list[Cluster] | None = None) -> Case:
    spec = hooked("confirm-promotion", steps=PAUSE_ONLY)
    status, cluster = healthy_with("confirm-promotion", steps=PAUSE_ONLY)
    status2, _, _ = drive(spec, status, cluster, V2, at(10))
    assert status2 is not None
    assert status2.canary_revision == R2
    if cluster_out is not None:
        cluster_out.append(cluster)
    return Case(
        spec=spec,
        status=status2,
        obs=cluster.observe(V2),
        now=at(16),
        phase=Phase.PAUSED,
        events=["PauseExpired", "StepAdvanced", "AwaitingConfirmation"],
        fields={"canary_revision": R2, "current_step_index": 1, "stable_revision": R1},
        requeue=0.0,
        message="promotion waits for confirm-promotion webhook confirm-promotion (Pending)",
    )


def promotion_after_last_step_confirmed() -> Case:
    clusters: list[Cluster] = []
    case = promotion_after_last_step_waits(clusters)
    first = decide(case.spec, case.status, case.obs, case.now)
    clusters[0].apply(first)
    return Case(
        spec=case.spec,
        status=first.status,
        obs=seen(clusters[0], V2, answered(first.status, "confirm-promotion", 200)),
        now=at(17),
        phase=Phase.HEALTHY,
        events=["WebhookPassed", "RolloutCompleted"],
        fields={"canary_revision": None, "stable_revision": R2},
    )


def rollback_hook_answer_recorded() -> Case:
    status, cluster, spec = canary_waiting_pre_rollout("rollback")
    d = decide(spec, status, seen(cluster, V2, answered(status, "pre-rollout", 500)), at(12))
    cluster.apply(d)
    assert call_of(d.status, "rollback").result is WebhookResult.PENDING
    return Case(
        spec=spec,
        status=d.status,
        obs=seen(cluster, V2, answered(d.status, "rollback", 503)),
        now=at(13),
        phase=Phase.DEGRADED,
        events=["WebhookFailed"],
        fields={"rolled_back_revision": R2},
    )


CASES = [
    confirm_rollout_holds_new_revision,
    confirm_rollout_refused_holds,
    confirm_rollout_no_answer_holds,
    confirm_rollout_same_answer_again_is_quiet,
    confirm_rollout_passes_starts_canary,
    pre_rollout_called_before_first_weight,
    pre_rollout_passes_sets_weight,
    pre_rollout_fails_rolls_back,
    confirm_promotion_holds_weight_100,
    confirm_promotion_passes_sets_100,
    promotion_after_last_step_waits,
    promotion_after_last_step_confirmed,
    rollback_hook_answer_recorded,
]


@pytest.mark.parametrize("make", [pytest.param(c, id=c.__name__.replace("_", "-")) for c in CASES])
def test_transition(make: Callable[[], Case]) -> None:
    case = make()
    _check(case, decide(case.spec, case.status, case.obs, case.now))


@pytest.mark.parametrize("make", [pytest.param(c, id=c.__name__.replace("_", "-")) for c in CASES])
def test_deciding_again_is_quiet(make: Callable[[], Case]) -> None:
    """An answer already recorded is not recorded again: the same observations give the same
    status, no events and the same actions."""
    case = make()
    first = decide(case.spec, case.status, case.obs, case.now)
    second = decide(case.spec, first.status, case.obs, case.now)
    assert second.status == first.status
    assert second.events == ()
    assert second.actions == first.actions
    assert second.requeue_after == first.requeue_after


# ------------------------------------------------------------------ gates in detail


def test_confirm_rollout_creates_nothing_of_the_new_revision() -> None:
    status, cluster = awaiting_rollout()
    d = decide(hooked("confirm-rollout"), status, cluster.observe(V2), at(11))
    assert not any(getattr(a, "revision", None) == R2 for a in d.actions)
    assert R2 not in cluster.revisions
    paused = d.status.condition(ConditionType.PAUSED)
    assert paused is not None
    assert paused.status is ConditionStatus.TRUE
    assert paused.reason == PauseReason.AWAITING_CONFIRMATION.value
    assert held_confirmation(d.status) == call_of(d.status, "confirm-rollout")


def test_pre_rollout_failure_is_the_degraded_reason() -> None:
    case = pre_rollout_fails_rolls_back()
    d = decide(case.spec, case.status, case.obs, case.now)
    degraded = d.status.condition(ConditionType.DEGRADED)
    assert degraded is not None
    assert degraded.reason == "PreRolloutHookFailed"
    # The rollback webhook is asked for at once, after the rollback is stored.
    assert call_of(d.status, "rollback").result is WebhookResult.PENDING
    due = due_webhooks(case.spec, d.status, R2, at(12), namespace="shop", name="web")
    assert [(r.name, r.revision, r.attempt) for r in due] == [("rollback", R2, 1)]
    # Failed and never asked again for this canary run; a new revision is not held by it.
    after = decide(case.spec, d.status, case.obs, at(30))
    assert after.status.rolled_back_revision == R2


def test_retry_asks_pre_rollout_again() -> None:
    case = pre_rollout_fails_rolls_back()
    d = decide(case.spec, case.status, case.obs, case.now)
    obs = replace(case.obs, requests=(ManualRequest(RequestKind.RETRY, "r1"),))
    again = decide(case.spec, d.status, obs, at(40))
    assert again.status.canary_revision == R2
    assert call_of(again.status, "pre-rollout").result is WebhookResult.PENDING


def test_promote_full_still_asks_confirm_promotion() -> None:
    spec = hooked("confirm-promotion", steps=PAUSE_ONLY)
    status, cluster = healthy_with("confirm-promotion", steps=PAUSE_ONLY)
    status, _, _ = drive(spec, status, cluster, V2, at(10))
    assert status is not None
    obs = replace(cluster.observe(V2), requests=(ManualRequest(RequestKind.PROMOTE_FULL, "p1"),))
    d = decide(spec, status, obs, at(20))
    assert reasons(d) == ["PromotedFull", "AwaitingConfirmation"]
    assert d.status.stable_revision == R1
    assert d.status.current_step_index == 1
    assert d.status.phase is Phase.PAUSED


def test_held_confirm_is_asked_again_after_the_recall_interval() -> None:
    status, _ = held_rollout()
    spec = hooked("confirm-rollout")
    assert due_webhooks(spec, status, R2, at(12), namespace="shop", name="web") == []
    due = due_webhooks(spec, status, R2, at(11 + RECALL_SECONDS), namespace="shop", name="web")
    assert [(r.name, r.attempt) for r in due] == [("confirm-rollout", 2)]


def test_entries_no_longer_current_are_not_called() -> None:
    status, _ = awaiting_rollout()
    spec = hooked("confirm-rollout")
    # The template went back to the stable revision: nothing is confirmed any more.
    assert due_webhooks(spec, status, R1, at(11), namespace="shop", name="web") == []
    # The webhook left the spec.
    plain = hooked()
    assert due_webhooks(plain, status, R2, at(11), namespace="shop", name="web") == []


def test_body_is_the_documented_one() -> None:
    status, _ = awaiting_rollout()
    spec = hooked("confirm-rollout")
    (request,) = due_webhooks(spec, status, R2, at(11), namespace="shop", name="web")
    assert request.url == f"{URL}/confirm-rollout"
    assert request.timeout_seconds == 10.0
    assert request.body == {
        "version": BODY_VERSION,
        "id": call_id("shop", "web", "confirm-rollout", "confirm-rollout", R2),
        "name": "web",
        "namespace": "shop",
        "webhook": "confirm-rollout",
        "type": "confirm-rollout",
        "phase": "Paused",
        "checksum": R2,
        "canaryRevision": R2,
        "stableRevision": R1,
        "step": None,
        "weight": 0,
        "attempt": 1,
        "metadata": {"team": "web"},
    }
    assert len(request.body["id"]) == 32
    assert call_id("shop", "web", "confirm-rollout", "confirm-rollout", R1) != request.body["id"]


def test_an_answer_to_an_older_call_is_not_recorded() -> None:
    status, cluster = held_rollout()
    stale = WebhookAnswer("confirm-rollout", R2, 1, 200)
    obs = replace(cluster.observe(V2), webhook_answers={"confirm-rollout": stale})
    d = decide(hooked("confirm-rollout"), status, obs, at(20))
    assert call_of(d.status, "confirm-rollout").result is WebhookResult.HELD
    assert d.status.canary_revision is None


# ------------------------------------------------------------------ validation


def _raw(hooks: list[dict[str, Any]]) -> dict[str, Any]:
    raw = raw_spec(image_template=V2, steps=STEPS)
    raw["strategy"]["canary"]["webhooks"] = hooks
    return raw


@pytest.mark.parametrize(
    ("hooks", "error"),
    [
        pytest.param(
            [
                {"name": "a", "type": "pre-rollout", "url": URL},
                {"name": "a", "type": "rollback", "url": URL},
            ],
            "spec.strategy.canary.webhooks: webhook names must be unique",
            id="duplicate-names",
        ),
        pytest.param(
            [{"name": "a", "type": "pre-rollout", "url": "ftp://x"}],
            "spec.strategy.canary.webhooks[0].url: String should match pattern '^https?://'",
            id="scheme",
        ),
        pytest.param(
            [{"name": "a", "type": "pre-rollout", "url": URL, "timeout": "2m"}],
            "spec.strategy.canary.webhooks[0].timeout: at most 60s",
            id="timeout-too-long",
        ),
        pytest.param(
            [{"name": "a", "type": "pre-rollout", "url": URL, "timeout": "0s"}],
            "spec.strategy.canary.webhooks[0].timeout: duration must be greater than 0",
            id="timeout-zero",
        ),
        pytest.param(
            [{"name": "a", "type": "post-rollout", "url": URL}],
            "spec.strategy.canary.webhooks[0].type",
            id="unknown-type",
        ),
    ],
)
def test_invalid_webhooks(hooks: list[dict[str, Any]], error: str) -> None:
    spec, errors = load_rollout_spec(_raw(hooks))
    assert spec is None
    assert any(e.startswith(error) for e in errors), errors


def test_valid_webhooks() -> None:
    spec, errors = load_rollout_spec(
        _raw([{"name": "load-test", "type": "pre-rollout", "url": URL, "timeout": "30s"}])
    )
    assert errors == []
    assert spec is not None
    assert spec.strategy.canary.webhooks[0].timeout == "30s"


def test_a_confirmation_the_template_left_is_dropped() -> None:
    status, cluster = held_rollout()
    # The template goes back to the stable revision: nothing waits for the webhook any more.
    d = decide(hooked("confirm-rollout", template=V1), status, cluster.observe(V1), at(20))
    assert d.status.webhooks is None
    assert held_confirmation(d.status) is None
    assert d.status.phase is Phase.HEALTHY


def test_a_waiting_pre_rollout_of_an_aborted_canary_is_dropped() -> None:
    status, cluster, spec = canary_waiting_pre_rollout()
    assert call_of(status, "pre-rollout").result is WebhookResult.PENDING
    obs = replace(cluster.observe(V2), requests=(ManualRequest(RequestKind.ABORT, "a1"),))
    d = decide(spec, status, obs, at(12))
    assert d.status.rolled_back_revision == R2
    again = decide(spec, d.status, cluster.observe(V2), at(13))
    assert again.status.webhooks is None
    assert due_webhooks(spec, again.status, R2, at(13), namespace="shop", name="web") == []
