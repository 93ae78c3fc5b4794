"""Upstream promotion (``spec.promotion.after``): a new revision's canary waits until every
upstream Rollout ran the same template Healthy for its soak time. Same table shape as
test_core_rollout: state in, one ``decide``, state out; and deciding again is quiet."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest

from rollwise.core.conditions import ConditionStatus
from rollwise.core.observations import (
    OVERRIDE_HANDLED_KEY,
    ManualRequest,
    Observations,
    RequestKind,
    UpstreamRead,
)
from rollwise.core.overrides import Override, OverrideDecision
from rollwise.core.phases import Phase
from rollwise.core.rollout.canary import decide
from rollwise.core.rollout.overrides import rollout_effect
from rollwise.core.rollout.status import ConditionType, RolloutStatus
from rollwise.core.rollout.upstream import standing
from rollwise.core.spec import RolloutSpec, UpstreamRollout
from tests.unit.core.rollout_builders import R1, R2, R3, V2, V3, at, raw_spec, reasons
from tests.unit.core.test_core_rollout import Case, _check, healthy

STAGING = ("staging", "web")
QA = ("qa", "web")


def gated(template: dict[str, Any] = V2, *upstreams: tuple[str, str, str]) -> RolloutSpec:
    raw = raw_spec(image_template=template)
    after = upstreams or (("staging", "web", "30s"),)
    raw["promotion"] = {"after": [{"namespace": n, "rollout": r, "soak": s} for n, r, s in after]}
    return RolloutSpec.model_validate(raw)


def upstream(
    key: tuple[str, str] = STAGING,
    *,
    stable: str | None = R2,
    phase: str | None = "Healthy",
    since: datetime | None = None,
    canary: str | None = None,
    found: bool = True,
) -> UpstreamRead:
    return UpstreamRead(
        namespace=key[0],
        rollout=key[1],
        found=found,
        phase=phase,
        stable_revision=stable,
        canary_revision=canary,
        healthy_since=since if since is not None else at(0) if phase == "Healthy" else None,
    )


def seen(obs: Observations, *reads: UpstreamRead) -> Observations:
    return replace(obs, upstreams={(r.namespace, r.rollout): r for r in reads})


def waiting() -> tuple[RolloutStatus, Any]:
    """A Rollout whose new revision R2 waits: staging still runs R1."""
    status, cluster = healthy()
    d = decide(gated(), status, seen(cluster.observe(V2), upstream(stable=R1)), at(10))
    cluster.apply(d)
    assert d.status.phase is Phase.WAITING
    return d.status, cluster


def template_differs_waits() -> Case:
    status, cluster = healthy()
    return Case(
        spec=gated(),
        status=status,
        obs=seen(cluster.observe(V2), upstream(stable=R1)),
        now=at(10),
        phase=Phase.WAITING,
        events=["AwaitingUpstream"],
        fields={
            "awaiting_upstream": R2,
            "canary_revision": None,
            "stable_revision": R1,
            "canary_weight": 0,
            "healthy_since": None,
        },
        requeue=10.0,
        message=(
            f"new revision {R2} waits for upstream: staging/web has not run revision {R2} "
            f"(its stable revision is {R1}): not yet the same template; stable {R1} serves"
        ),
    )


def upstream_not_healthy_waits() -> Case:
    status, cluster = waiting()
    return Case(
        spec=gated(),
        status=status,
        obs=seen(cluster.observe(V2), upstream(phase="Degraded")),
        now=at(20),
        phase=Phase.WAITING,
        events=[],
        fields={"awaiting_upstream": R2, "canary_revision": None},
        requeue=10.0,
        message=f"staging/web runs revision {R2} but is not Healthy (phase Degraded)",
    )


def upstream_still_canary_waits() -> Case:
    status, cluster = waiting()
    return Case(
        spec=gated(),
        status=status,
        obs=seen(cluster.observe(V2), upstream(stable=R1, canary=R2, phase="Progressing")),
        now=at(20),
        phase=Phase.WAITING,
        events=[],
        fields={"awaiting_upstream": R2},
        message=f"revision {R2} is still a canary there",
    )


def upstream_missing_waits() -> Case:
    status, cluster = healthy()
    return Case(
        spec=gated(),
        status=status,
        obs=seen(cluster.observe(V2), upstream(found=False, stable=None, phase=None)),
        now=at(10),
        phase=Phase.WAITING,
        events=["AwaitingUpstream"],
        fields={"awaiting_upstream": R2, "canary_revision": None},
        message="staging/web Rollout not found",
    )


def upstream_not_read_waits() -> Case:
    status, cluster = healthy()
    return Case(
        spec=gated(),
        status=status,
        obs=cluster.observe(V2),
        now=at(10),
        phase=Phase.WAITING,
        events=["AwaitingUpstream"],
        fields={"awaiting_upstream": R2},
        message="staging/web not read yet",
    )


def soaking_waits_until_soak_end() -> Case:
    status, cluster = waiting()
    return Case(
        spec=gated(),
        status=status,
        obs=seen(cluster.observe(V2), upstream(since=at(15))),
        now=at(20),
        phase=Phase.WAITING,
        events=[],
        fields={"awaiting_upstream": R2, "canary_revision": None},
        # The soak ends at 45 s: sooner than the next poll (30 s) it is not.
        requeue=10.0,
        message="staging/web Healthy since 2026-01-01T12:00:15Z, soaking 30s until "
        "2026-01-01T12:00:45Z",
    )


def soak_end_is_a_wake_up() -> Case:
    status, cluster = waiting()
    return Case(
        spec=gated(),
        status=status,
        obs=seen(cluster.observe(V2), upstream(since=at(15))),
        now=at(41),
        phase=Phase.WAITING,
        events=[],
        requeue=4.0,
        message="until 2026-01-01T12:00:45Z",
    )


def soaked_starts_canary() -> Case:
    status, cluster = waiting()
    return Case(
        spec=gated(),
        status=status,
        obs=seen(cluster.observe(V2), upstream(since=at(15))),
        now=at(45),
        phase=Phase.PROGRESSING,
        events=["UpstreamSoaked", "RevisionDetected"],
        fields={
            "awaiting_upstream": None,
            "canary_revision": R2,
            "current_step_index": 0,
            "stable_revision": R1,
        },
    )


def soaked_at_first_sight_starts_canary() -> Case:
    status, cluster = healthy()
    return Case(
        spec=gated(),
        status=status,
        obs=seen(cluster.observe(V2), upstream(since=at(0))),
        now=at(60),
        phase=Phase.PROGRESSING,
        events=["RevisionDetected"],
        fields={"awaiting_upstream": None, "canary_revision": R2},
    )


def every_upstream_must_soak() -> Case:
    status, cluster = healthy()
    spec = gated(V2, ("staging", "web", "10s"), ("qa", "web", "1m"))
    return Case(
        spec=spec,
        status=status,
        obs=seen(cluster.observe(V2), upstream(since=at(0)), upstream(QA, since=at(0))),
        now=at(30),
        phase=Phase.WAITING,
        events=["AwaitingUpstream"],
        fields={"awaiting_upstream": R2},
        requeue=10.0,
        message=f"new revision {R2} waits for upstream: qa/web Healthy since",
    )


def new_revision_during_canary_drops_it() -> Case:
    status, cluster = healthy()
    d = decide(gated(), status, seen(cluster.observe(V2), upstream()), at(60))
    cluster.apply(d)
    assert d.status.canary_revision == R2
    return Case(
        spec=gated(V3),
        status=d.status,
        obs=seen(cluster.observe(V3), upstream()),
        now=at(70),
        phase=Phase.WAITING,
        events=["AwaitingUpstream"],
        fields={
            "awaiting_upstream": R3,
            "canary_revision": None,
            "canary_weight": 0,
            "current_step_index": None,
        },
        message=f"new revision {R3} waits for upstream: staging/web has not run revision {R3}",
    )


def promote_full_annotation_does_not_pass() -> Case:
    status, cluster = waiting()
    return Case(
        spec=gated(),
        status=status,
        obs=seen(
            cluster.observe(V2, requests=(ManualRequest(RequestKind.PROMOTE_FULL, "p1"),)),
            upstream(stable=R1),
        ),
        now=at(20),
        phase=Phase.WAITING,
        events=["RequestIgnored"],
        fields={"awaiting_upstream": R2, "canary_revision": None},
    )


def confirmed_override_goes_past() -> Case:
    status, cluster = waiting()
    return Case(
        spec=gated(),
        status=status,
        obs=seen(
            cluster.observe(V2, override_requests=(ManualRequest(RequestKind.PROMOTE_FULL, "o1"),)),
            upstream(stable=R1),
        ),
        now=at(20),
        phase=Phase.PROGRESSING,
        events=["RevisionDetected", "PromotedFull"],
        fields={
            "awaiting_upstream": None,
            "canary_revision": R2,
            "current_step_index": 3,
            "handled_requests": {OVERRIDE_HANDLED_KEY: "o1"},
        },
    )


CASES = [
    template_differs_waits,
    upstream_not_healthy_waits,
    upstream_still_canary_waits,
    upstream_missing_waits,
    upstream_not_read_waits,
    soaking_waits_until_soak_end,
    soak_end_is_a_wake_up,
    soaked_starts_canary,
    soaked_at_first_sight_starts_canary,
    every_upstream_must_soak,
    new_revision_during_canary_drops_it,
    promote_full_annotation_does_not_pass,
    confirmed_override_goes_past,
]


@pytest.mark.parametrize("make", [pytest.param(c, id=c.__name__.replace("_", "-")) for c in CASES])
def test_transition(make: Callable[[], Case]) -> None:
    case = make()
    _check(case, decide(case.spec, case.status, case.obs, case.now))


@pytest.mark.parametrize("make", [pytest.param(c, id=c.__name__.replace("_", "-")) for c in CASES])
def test_deciding_again_is_quiet(make: Callable[[], Case]) -> None:
    case = make()
    first = decide(case.spec, case.status, case.obs, case.now)
    second = decide(case.spec, first.status, case.obs, case.now)
    assert second.status == first.status
    assert second.events == ()
    assert second.actions == first.actions
    assert second.requeue_after == first.requeue_after


def test_waiting_keeps_stable_serving_and_creates_nothing() -> None:
    status, cluster = healthy()
    d = decide(gated(), status, seen(cluster.observe(V2), upstream(stable=R1)), at(10))
    touched = {getattr(a, "revision", None) for a in d.actions}
    assert R2 not in touched
    ready = d.status.condition(ConditionType.READY)
    progressing = d.status.condition(ConditionType.PROGRESSING)
    assert ready is not None
    assert ready.status is ConditionStatus.FALSE
    assert progressing is not None
    assert progressing.reason == "AwaitingUpstream"
    assert "AwaitingUpstream" in reasons(d)


def test_healthy_since_recorded_and_kept() -> None:
    status, cluster = healthy()
    assert status.healthy_since == at(0)
    spec = RolloutSpec.model_validate(raw_spec())
    again = decide(spec, status, cluster.observe(spec.template), at(500))
    assert again.status.healthy_since == at(0)


def test_healthy_since_moves_with_a_new_stable_revision() -> None:
    status, cluster = healthy()
    spec = RolloutSpec.model_validate(raw_spec(image_template=V2, steps=[{"setWeight": 100}]))
    now = 10
    d = decide(spec, status, cluster.observe(V2), at(now))
    while d.status.stable_revision != R2 or d.status.phase is not Phase.HEALTHY:
        assert d.status.healthy_since is None
        cluster.apply(d)
        now += 5
        assert now < 200
        d = decide(spec, d.status, cluster.observe(V2), at(now))
    assert d.status.healthy_since == at(now)


@pytest.mark.parametrize(
    ("read", "ready", "why"),
    [
        pytest.param(None, False, "not read yet", id="unread"),
        pytest.param(upstream(found=False), False, "Rollout not found", id="missing"),
        pytest.param(upstream(stable=R1), False, "not yet the same template", id="differs"),
        pytest.param(upstream(phase="Paused"), False, "not Healthy (phase Paused)", id="paused"),
        pytest.param(upstream(since=at(50)), False, "soaking 30s until", id="soaking"),
        pytest.param(upstream(since=at(30)), True, "(soak 30s)", id="soaked-exactly"),
    ],
)
def test_standing(read: UpstreamRead | None, ready: bool, why: str) -> None:
    found = standing(
        UpstreamRollout(namespace="staging", rollout="web", soak="30s"), read, R2, at(60)
    )
    assert found.ready is ready
    assert why in found.why


def _promote(confirmed_by: str | None) -> Override:
    return Override(
        id="o1",
        decision=OverrideDecision.PROMOTE,
        reason="hotfix",
        user="alice",
        at=at(0),
        target=R2,
        confirmed_by=confirmed_by,
    )


def test_promote_override_past_upstream_needs_a_second_person() -> None:
    status, _ = waiting()
    alone = rollout_effect(_promote(None), name="web", template_hash=R2, status=status)
    assert alone.requests == ()
    assert "waits for a second person's confirmation" in alone.waiting
    self_confirmed = rollout_effect(_promote("alice"), name="web", template_hash=R2, status=status)
    assert self_confirmed.requests == ()
    both = rollout_effect(_promote("bob"), name="web", template_hash=R2, status=status)
    assert both.requests == (ManualRequest(RequestKind.PROMOTE_FULL, "o1"),)


def test_unconfirmed_override_named_in_the_waiting_message() -> None:
    status, cluster = waiting()
    effect = rollout_effect(_promote(None), name="web", template_hash=R2, status=status)
    d = decide(
        gated(),
        status,
        seen(cluster.observe(V2, override_waiting=effect.waiting), upstream(stable=R1)),
        at(20),
    )
    assert d.status.phase is Phase.WAITING
    assert d.status.canary_revision is None
    assert "kubectl rollwise override rollout/web --confirm o1" in d.status.message


def test_paused_rollout_still_says_what_the_revision_waits_for() -> None:
    status, cluster = healthy()
    raw = raw_spec(image_template=V2, paused=True)
    raw["promotion"] = {"after": [{"namespace": "staging", "rollout": "web", "soak": "30s"}]}
    d = decide(
        RolloutSpec.model_validate(raw),
        status,
        seen(cluster.observe(V2), upstream(stable=R1)),
        at(10),
    )
    assert d.status.phase is Phase.PAUSED
    assert d.status.canary_revision is None
    assert d.status.awaiting_upstream == R2
    assert f"new revision {R2} waits for upstream: staging/web has not run" in d.status.message


def test_override_read_before_the_wait_was_recorded_does_not_go_past() -> None:
    """A promote override recorded right after the template change is read against a status
    that does not yet say the revision waits, so its confirmation was not asked for: it waits
    for the next pass (which asks for it), and is not consumed."""
    status, cluster = healthy()
    d = decide(
        gated(),
        status,
        seen(
            cluster.observe(V2, override_requests=(ManualRequest(RequestKind.PROMOTE_FULL, "o1"),)),
            upstream(stable=R1),
        ),
        at(10),
    )
    assert d.status.phase is Phase.WAITING
    assert d.status.canary_revision is None
    assert OVERRIDE_HANDLED_KEY not in d.status.handled_requests
    assert reasons(d) == ["AwaitingUpstream"]
