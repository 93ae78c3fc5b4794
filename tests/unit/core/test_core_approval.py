"""Approval steps (go/no-go): a canary step ``approval: {roles, timeout}`` holds the Rollout
until distinct people holding the roles approved the canary revision, none of them the
template's author; past the timeout it holds with a Warning. Same table shape as
test_core_rollout: state in, one ``decide``, state out; and deciding again is quiet."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from rollwise.core.conditions import ConditionStatus
from rollwise.core.observations import (
    ManualRequest,
    Observations,
    RequestKind,
    StepApproval,
    TemplateAuthor,
)
from rollwise.core.phases import Phase
from rollwise.core.rollout.actions import SetWeight
from rollwise.core.rollout.canary import decide
from rollwise.core.rollout.status import ConditionType, GivenApproval, PauseReason, RolloutStatus
from rollwise.core.spec import RolloutSpec
from rollwise.core.validation import (
    MSG_APPROVAL_MODELRELEASE,
    MSG_STEP_ONE_KIND,
    load_rollout_spec,
    parse_rollout_spec,
    validate_steps,
)
from tests.unit.core.rollout_builders import (
    R1,
    R2,
    V2,
    Cluster,
    at,
    drive,
    raw_spec,
    reasons,
)
from tests.unit.core.test_core_rollout import Case, _check, healthy

ALICE = TemplateAuthor(user="alice", revision=R2, at=at(5))
STEPS = [
    {"setWeight": 20},
    {"approval": {"roles": ["product", "security"], "timeout": "1h"}},
    {"setWeight": 100},
]
#: When the canary reaches the approval step (the first pass of the new revision).
REQUESTED = at(10)
DEADLINE = at(10 + 3600)


def gated(steps: list[dict[str, Any]] | None = None) -> RolloutSpec:
    return RolloutSpec.model_validate(raw_spec(image_template=V2, steps=steps or STEPS))


def approval(role: str, user: str, *, revision: str = R2, step: int = 1) -> StepApproval:
    return StepApproval(role=role, user=user, revision=revision, step=step, at=at(20))


def seen(
    cluster: Cluster,
    *approvals: StepApproval,
    author: TemplateAuthor | None = ALICE,
    **kwargs: Any,
) -> Observations:
    return replace(
        cluster.observe(V2, **kwargs),
        approvals=approvals,
        template_author=author,
        name="web",
    )


def at_approval() -> tuple[RolloutStatus, Cluster]:
    """A canary of R2 that reached the approval step (step 2/3) with nothing approved."""
    status, cluster = healthy(steps=STEPS)
    after, events, _ = drive(
        gated(), status, cluster, V2, REQUESTED, template_author=ALICE, name="web"
    )
    assert after is not None
    assert after.current_step_index == 1, after.message
    assert "ApprovalRequested" in events
    return after, cluster


def reaching_the_step_requests_approval() -> Case:
    status, cluster = healthy(steps=STEPS)
    for _ in range(5):
        d = decide(gated(), status, seen(cluster), REQUESTED)
        if "ApprovalRequested" in reasons(d):
            break
        cluster.apply(d)
        status = d.status
    return Case(
        spec=gated(),
        status=status,
        obs=seen(cluster),
        now=REQUESTED,
        phase=Phase.PAUSED,
        events=["StepAdvanced", "ApprovalRequested"],
        fields={
            "current_step_index": 1,
            "canary_weight": 20,
            "pause_reason": PauseReason.AWAITING_APPROVAL,
        },
        requeue=3600.0,
        message=(
            "step 2/3 (approval): waiting for approval by product, security; 1h left "
            "(kubectl rollwise approve rollout/web --role product)"
        ),
    )


def one_role_approved_waits() -> Case:
    status, cluster = at_approval()
    return Case(
        spec=gated(),
        status=status,
        obs=seen(cluster, approval("product", "bob")),
        now=at(60),
        phase=Phase.PAUSED,
        events=["ApprovalGranted"],
        fields={"current_step_index": 1, "pause_reason": PauseReason.AWAITING_APPROVAL},
        message="waiting for approval by security (product: bob)",
    )


def every_role_approved_goes_on() -> Case:
    status, cluster = at_approval()
    return Case(
        spec=gated(),
        status=status,
        obs=seen(cluster, approval("product", "bob"), approval("security", "carol")),
        now=at(60),
        phase=Phase.PROGRESSING,
        events=["ApprovalGranted", "ApprovalGranted", "StepAdvanced"],
        fields={"current_step_index": 2, "pause_reason": None},
    )


def template_author_does_not_count() -> Case:
    status, cluster = at_approval()
    return Case(
        spec=gated(),
        status=status,
        obs=seen(cluster, approval("product", "alice"), approval("security", "carol")),
        now=at(60),
        phase=Phase.PAUSED,
        events=["ApprovalGranted", "ApprovalRefused"],
        fields={"current_step_index": 1},
        message="waiting for approval by product (security: carol)",
    )


def one_person_one_role() -> Case:
    status, cluster = at_approval()
    return Case(
        spec=gated(),
        status=status,
        obs=seen(cluster, approval("product", "bob"), approval("security", "bob")),
        now=at(60),
        phase=Phase.PAUSED,
        events=["ApprovalGranted", "ApprovalRefused"],
        fields={"current_step_index": 1},
        message="waiting for approval by security (product: bob)",
    )


def unknown_author_counts_nothing() -> Case:
    status, cluster = at_approval()
    return Case(
        spec=gated(),
        status=status,
        obs=seen(cluster, approval("product", "bob"), approval("security", "carol"), author=None),
        now=at(60),
        phase=Phase.PAUSED,
        events=["ApprovalRefused", "ApprovalRefused"],
        fields={"current_step_index": 1},
        message=f"who changed the template to revision {R2} is not recorded",
    )


def approvals_of_another_revision_or_step_ignored() -> Case:
    status, cluster = at_approval()
    return Case(
        spec=gated(),
        status=status,
        obs=seen(
            cluster,
            approval("product", "bob", revision=R1),
            approval("security", "carol", step=0),
        ),
        now=at(60),
        phase=Phase.PAUSED,
        events=[],
        fields={"current_step_index": 1},
        message="waiting for approval by product, security",
    )


def timeout_holds_with_warning() -> Case:
    status, cluster = at_approval()
    return Case(
        spec=gated(),
        status=status,
        obs=seen(cluster, approval("product", "bob")),
        now=at(4000),
        phase=Phase.PAUSED,
        events=["ApprovalGranted", "ApprovalTimedOut"],
        fields={
            "current_step_index": 1,
            "canary_weight": 20,
            "canary_revision": R2,
            "pause_reason": PauseReason.APPROVAL_TIMED_OUT,
        },
        contains=[SetWeight(R2, R1, 20)],
        message="timed out at 2026-01-01T13:00:10Z, holding",
    )


def late_approval_after_timeout_goes_on() -> Case:
    status, cluster = at_approval()
    timed_out = decide(gated(), status, seen(cluster), at(4000))
    cluster.apply(timed_out)
    assert timed_out.status.pause_reason is PauseReason.APPROVAL_TIMED_OUT
    return Case(
        spec=gated(),
        status=timed_out.status,
        obs=seen(cluster, approval("product", "bob"), approval("security", "carol")),
        now=at(5000),
        phase=Phase.PROGRESSING,
        events=["ApprovalGranted", "ApprovalGranted", "StepAdvanced"],
        fields={"current_step_index": 2},
    )


def promote_does_not_skip_approval() -> Case:
    status, cluster = at_approval()
    return Case(
        spec=gated(),
        status=status,
        obs=seen(cluster, requests=(ManualRequest(RequestKind.PROMOTE, "p1"),)),
        now=at(60),
        phase=Phase.PAUSED,
        events=["RequestIgnored"],
        fields={"current_step_index": 1, "handled_requests": {"promote": "p1"}},
    )


def promote_full_does_not_skip_a_later_approval() -> Case:
    status, cluster = healthy(steps=STEPS)
    return Case(
        spec=gated(),
        status=status,
        obs=seen(cluster, requests=(ManualRequest(RequestKind.PROMOTE_FULL, "f1"),)),
        now=REQUESTED,
        phase=Phase.PROGRESSING,
        events=["RevisionDetected", "RequestIgnored"],
        fields={"current_step_index": 0, "canary_revision": R2},
    )


def abort_at_approval_rolls_back() -> Case:
    status, cluster = at_approval()
    return Case(
        spec=gated(),
        status=status,
        obs=seen(cluster, requests=(ManualRequest(RequestKind.ABORT, "a1"),)),
        now=at(60),
        phase=Phase.DEGRADED,
        events=["Aborted"],
        fields={"canary_revision": None, "approvals": None, "rolled_back_revision": R2},
    )


CASES = [
    reaching_the_step_requests_approval,
    one_role_approved_waits,
    every_role_approved_goes_on,
    template_author_does_not_count,
    one_person_one_role,
    unknown_author_counts_nothing,
    approvals_of_another_revision_or_step_ignored,
    timeout_holds_with_warning,
    late_approval_after_timeout_goes_on,
    promote_does_not_skip_approval,
    promote_full_does_not_skip_a_later_approval,
    abort_at_approval_rolls_back,
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


def test_status_approvals_name_who_approved_and_what_is_pending() -> None:
    status, cluster = at_approval()
    d = decide(gated(), status, seen(cluster, approval("product", "bob")), at(60))
    st = d.status.approvals
    assert st is not None
    assert st.step_index == 1
    assert st.revision == R2
    assert st.roles == ["product", "security"]
    assert st.granted == [GivenApproval(role="product", user="bob", at=at(20))]
    assert st.pending == ["security"]
    assert st.requested_at == REQUESTED
    assert st.deadline == DEADLINE
    assert st.template_changed_by == "alice"
    assert st.approved_at is None
    wire = d.status.to_wire()["approvals"]
    assert wire["stepIndex"] == 1
    assert wire["granted"] == [{"role": "product", "user": "bob", "at": "2026-01-01T12:00:20Z"}]


def test_events_name_the_step_roles_and_people() -> None:
    status, cluster = at_approval()
    requested = [e for e in status.event_log.entries if e.reason == "ApprovalRequested"]
    assert requested[-1].message == (
        f"step 2/3: revision {R2} waits for approval by product, security until "
        "2026-01-01T13:00:10Z"
    )
    d = decide(
        gated(),
        status,
        seen(cluster, approval("product", "alice"), approval("security", "carol")),
        at(60),
    )
    messages = {e.reason.name: e.message for e in d.events}
    assert messages["ApprovalGranted"] == (
        f"step 2/3: carol approved revision {R2} as security; waiting for product"
    )
    assert messages["ApprovalRefused"] == (
        f"step 2/3 (approval): approval by alice as product: changed the template (revision "
        f"{R2}) and may not approve it; it does not count"
    )
    assert [e.type.value for e in d.events if e.reason.name == "ApprovalRefused"] == ["Warning"]


def test_timeout_is_a_paused_condition_not_degraded() -> None:
    status, cluster = at_approval()
    d = decide(gated(), status, seen(cluster), at(4000))
    paused = d.status.condition(ConditionType.PAUSED)
    degraded = d.status.condition(ConditionType.DEGRADED)
    assert paused is not None
    assert paused.status is ConditionStatus.TRUE
    assert paused.reason == "ApprovalTimedOut"
    assert degraded is not None
    assert degraded.status is ConditionStatus.FALSE
    assert [e.type.value for e in d.events] == ["Warning"]
    assert d.status.approvals is not None
    assert d.status.approvals.timed_out


def test_no_timeout_waits_without_a_deadline() -> None:
    steps = [{"setWeight": 20}, {"approval": {"roles": ["product"]}}, {"setWeight": 100}]
    status, cluster = healthy(steps=steps)
    after, _, _ = drive(gated(steps), status, cluster, V2, REQUESTED, template_author=ALICE)
    assert after is not None
    assert after.approvals is not None
    assert after.approvals.deadline is None
    d = decide(gated(steps), after, seen(cluster), at(10 * 24 * 3600))
    assert d.status.pause_reason is PauseReason.AWAITING_APPROVAL
    assert reasons(d) == []


def test_a_new_revision_asks_again() -> None:
    """Approvals are for the revision: a template change mid-step starts over, and the
    earlier approvals no longer count."""
    status, cluster = at_approval()
    d = decide(
        gated(),
        status,
        seen(cluster, approval("product", "bob")),
        at(60),
    )
    cluster.apply(d)
    v3 = {**V2, "spec": {"containers": [{"name": "app", "image": "app:v3"}]}}
    spec3 = RolloutSpec.model_validate(raw_spec(image_template=v3, steps=STEPS))
    after, events, _ = drive(
        spec3,
        d.status,
        cluster,
        v3,
        at(120),
        approvals=(approval("product", "bob"),),
        template_author=TemplateAuthor(user="dave", revision=R2, at=at(110)),
    )
    assert after is not None
    assert "RevisionReplaced" in events
    assert after.approvals is not None
    assert after.approvals.revision != R2
    assert after.approvals.granted == []
    assert after.pause_reason is PauseReason.AWAITING_APPROVAL


# ------------------------------------------------------------------ the spec


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        pytest.param(
            {"approval": {"roles": ["product", "product"]}},
            "spec.strategy.canary.steps[1].approval.roles: an approval step names each role once",
            id="role-twice",
        ),
        pytest.param(
            {"approval": {"roles": []}},
            "spec.strategy.canary.steps[1].approval.roles: an approval step names 1 to 8 roles",
            id="no-role",
        ),
        pytest.param(
            {"approval": {"roles": [f"r{i}" for i in range(9)]}},
            "spec.strategy.canary.steps[1].approval.roles: an approval step names 1 to 8 roles",
            id="too-many-roles",
        ),
        pytest.param(
            {"approval": {"roles": ["product"], "timeout": "0s"}},
            "spec.strategy.canary.steps[1].approval.timeout: duration must be greater than 0",
            id="zero-timeout",
        ),
        pytest.param(
            {"approval": {"roles": ["product"]}, "setWeight": 50},
            f"spec.strategy.canary.steps[1]: {MSG_STEP_ONE_KIND}",
            id="two-kinds",
        ),
    ],
)
def test_invalid_approval_steps(step: dict[str, Any], expected: str) -> None:
    raw = raw_spec(steps=[{"setWeight": 20}, step, {"setWeight": 100}])
    spec, errors = load_rollout_spec(raw)
    assert spec is None
    assert expected in errors, errors


@pytest.mark.parametrize(
    ("approval", "expected"),
    [
        pytest.param({"roles": ["Product"]}, "String should match pattern", id="role-name"),
        pytest.param({"timeout": "1h"}, "roles: Field required", id="roles-missing"),
    ],
)
def test_approval_step_parse_failures(approval: dict[str, Any], expected: str) -> None:
    result = parse_rollout_spec(raw_spec(steps=[{"approval": approval}, {"setWeight": 100}]))
    assert isinstance(result, list)
    assert any(expected in e for e in result), result


def test_a_modelrelease_canary_has_no_approval_step() -> None:
    spec = RolloutSpec.model_validate(
        raw_spec(steps=[{"approval": {"roles": ["product"]}}, {"setWeight": 100}])
    )
    errors = validate_steps("spec.canary", spec.strategy.canary.steps, None)
    assert f"spec.canary.steps[0].approval: {MSG_APPROVAL_MODELRELEASE}" in errors
