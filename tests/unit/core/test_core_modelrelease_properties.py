"""Properties of ``decide_release`` over generated specs, statuses, observations and times:

* it never raises on well-typed input, its status survives the wire, its requeue is sane, its
  history stays bounded, and every event message carries the change ticket;
* deciding again with the returned status is quiet (no events, same status and actions);
* a release never enters Production unless the alias read back shows its version;
* a release never enters Approved while a gate required before Approved is Failed or Pending
  (an expired waiver counting as its own result), nor Production while any gate blocks
  (a freeze passed only by an emergency change with an executive approval).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollwise.core.modelrelease.observations import (
    EXECUTIVE_ROLE,
    GATE_APPROVALS,
    GATE_FREEZE,
    AliasReading,
    Approval,
    ChildRolloutState,
    GateResult,
    InferenceServiceState,
    ReleaseObservations,
    RevokeRequest,
)
from rollwise.core.modelrelease.release import decide_release
from rollwise.core.modelrelease.spec import all_gates, child_revision, pre_staging_gates
from rollwise.core.modelrelease.status import (
    MAX_HISTORY,
    AliasStatus,
    GateRecord,
    GateStatus,
    HistoryEntry,
    ModelReleaseStatus,
    ServingStatus,
    Stage,
)
from rollwise.core.observations import Measurement
from rollwise.core.phases import Phase
from rollwise.core.spec_release import ChangeType, ModelReleaseSpec
from tests.unit.core.modelrelease_builders import (
    NEW_URI,
    OLD_URI,
    TICKET,
    World,
    raw_release,
    server_template,
)

# How many examples, whether they are random and where failures are kept: the Hypothesis
# profile in force (tests/conftest.py).
SETTINGS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
BASE = datetime(2026, 3, 2, tzinfo=UTC)
times = st.integers(min_value=-5_000, max_value=50_000).map(lambda s: BASE + timedelta(seconds=s))
VERSIONS = st.sampled_from(["5", "6", "7", None])
USERS = st.sampled_from(["alice", "bob", "carol", "erin"])
ROLES = st.sampled_from(["security", "product", EXECUTIVE_ROLE])
GATE_NAMES = st.sampled_from(["artifact-digest", "sbom", "policy-digest", "freeze-window"])
GATE_STATUSES = st.sampled_from(list(GateStatus))
METRIC = {
    "name": "error-ratio",
    "successCondition": "result < 0.05",
    "provider": {"prometheus": {"query": "sum(rate(errors[1m]))"}},
}


@st.composite
def specs(draw: st.DrawFn) -> ModelReleaseSpec:
    steps = draw(
        st.sampled_from(
            [
                None,
                [{"setWeight": 100}],
                [{"setWeight": 10}, {"pause": {"duration": "1m"}}, {"setWeight": 100}],
                [{"setWeight": 20}, {"analysis": {}}, {"setWeight": 100}],
                [],
            ]
        )
    )
    analysis = draw(st.sampled_from([None, {"interval": "1m", "metrics": [METRIC]}]))
    if steps is not None and any("analysis" in s for s in steps) and analysis is None:
        analysis = {"interval": "1m", "metrics": [METRIC]}
    raw = raw_release(
        backend=draw(st.sampled_from(["template", "kserve"])),
        change_type=draw(st.sampled_from([c.value for c in ChangeType])),
        steps=steps,
        analysis=analysis,
        sbom=draw(st.booleans()),
        policy=draw(st.booleans()),
        roles=draw(st.sampled_from([None, [], ["security"], ["security", "product"]])),
    )
    return ModelReleaseSpec.model_validate(raw)


@st.composite
def gate_results(draw: st.DrawFn) -> tuple[GateResult, ...]:
    out = []
    for name in draw(st.lists(GATE_NAMES, max_size=5, unique=True)):
        out.append(
            GateResult(
                name,
                draw(GATE_STATUSES),
                draw(st.sampled_from(["", "ok", "mismatch"])),
                checked_at=draw(st.none() | times),
                waiver_expires_at=draw(st.none() | times),
                underlying=draw(st.none() | GATE_STATUSES),
            )
        )
    return tuple(out)


approvals_st = st.lists(
    st.builds(Approval, ROLES, USERS, times, st.sampled_from(["6", "7"])), max_size=5
).map(tuple)


@st.composite
def aliases(draw: st.DrawFn) -> AliasReading | None:
    kind = draw(st.sampled_from(["none", "ok", "error"]))
    if kind == "none":
        return None
    if kind == "error":
        return AliasReading(error="connection refused")
    return AliasReading(version=draw(VERSIONS), uri=draw(st.sampled_from([OLD_URI, NEW_URI])))


@st.composite
def children(draw: st.DrawFn, spec: ModelReleaseSpec) -> ChildRolloutState | None:
    if not draw(st.booleans()):
        return None
    revs = st.sampled_from([child_revision(spec), "0000000000", None])
    return ChildRolloutState(
        exists=draw(st.booleans()),
        phase=draw(st.none() | st.sampled_from(list(Phase))),
        canary_weight=draw(st.integers(0, 100)),
        current_step_index=draw(st.none() | st.integers(-1, 4)),
        stable_revision=draw(revs),
        canary_revision=draw(revs),
        rolled_back_revision=draw(revs),
        template=draw(st.sampled_from([None, {"spec": {"containers": []}}])),
    )


@st.composite
def isvcs(draw: st.DrawFn) -> InferenceServiceState | None:
    if not draw(st.booleans()):
        return None
    revs = st.sampled_from(["isvc-00001", "isvc-00002", None])
    return InferenceServiceState(
        exists=draw(st.booleans()),
        storage_uri=draw(st.sampled_from([OLD_URI, NEW_URI, None])),
        canary_traffic_percent=draw(st.none() | st.integers(0, 100)),
        latest_created_revision=draw(revs),
        latest_ready_revision=draw(revs),
        latest_rolledout_revision=draw(revs),
        latest_percent=draw(st.none() | st.integers(0, 100)),
        observed_current=draw(st.booleans()),
    )


@st.composite
def observations(draw: st.DrawFn, spec: ModelReleaseSpec) -> ReleaseObservations:
    values = st.none() | st.floats(allow_nan=True, allow_infinity=True)
    measurements: dict[str, Measurement] = {}
    if draw(st.booleans()):
        measurements["error-ratio"] = Measurement(
            draw(values), draw(times), draw(st.none() | st.just("timeout"))
        )
    revoke = None
    if draw(st.integers(0, 9)) == 0:
        revoke = RevokeRequest("r1", "audit", draw(st.none() | USERS), draw(times))
    gates = draw(gate_results())
    given_approvals = draw(approvals_st)
    child = draw(children(spec))
    if draw(st.booleans()):
        # Mostly passing evidence, so that forward transitions happen and are checked too.
        gates = (
            *(
                GateResult(n, draw(st.sampled_from([GateStatus.PASSED, GateStatus.WAIVED])))
                for n in ("artifact-digest", "sbom", "policy-digest", "freeze-window")
            ),
            *gates,
        )
        given_approvals = (
            Approval("security", "alice", BASE, spec.version),
            Approval("product", "bob", BASE, spec.version),
            *given_approvals,
        )
        child = ChildRolloutState(phase=Phase.HEALTHY, stable_revision=child_revision(spec))
    return ReleaseObservations(
        name="fraud-7",
        generation=draw(st.integers(1, 3)),
        gates=gates,
        approvals=given_approvals,
        version_set_by=draw(st.none() | USERS),
        digest_previously_approved=draw(st.booleans()),
        version_revoked_before=draw(st.integers(0, 5)) == 0,
        blocking_release=draw(st.none() | st.just("fraud-6")),
        alias=draw(aliases()),
        child=child,
        inference_service=draw(isvcs()),
        measurements=measurements,
        revoke=revoke,
        manifest_written=draw(st.booleans()),
    )


@st.composite
def statuses(draw: st.DrawFn) -> ModelReleaseStatus | None:
    if draw(st.integers(0, 4)) == 0:
        return None
    stage = draw(st.sampled_from(list(Stage)))
    backend = draw(st.sampled_from(["template", "inferenceService"]))
    serving = None
    if draw(st.booleans()):
        serving = ServingStatus(
            backend=backend,
            name="x",
            revision=draw(st.sampled_from([None, "isvc-00002", "0000000000"])),
            step_index=draw(st.integers(0, 4)),
            weight=draw(st.integers(0, 100)),
            step_started_at=draw(st.none() | times),
            passed=draw(st.booleans()),
            failure=draw(st.none() | st.just("failed")),
            previous_storage_uri=draw(st.none() | st.just(OLD_URI)),
            traffic_off=draw(st.sampled_from([None, "none", "pin", "revert"])),
        )
    alias = AliasStatus(
        name="production",
        current_version=draw(VERSIONS),
        previous_version=draw(VERSIONS),
        flip_requested=draw(st.booleans()),
        held=draw(st.booleans()),
        restored=draw(st.booleans()),
        last_error=draw(st.none() | st.just("connection refused")),
    )
    entry = HistoryEntry(stage=Stage.CANDIDATE, time=BASE, reason="ReleaseCreated")
    gates = [
        GateRecord(
            name=n,
            status=draw(GATE_STATUSES),
            reason=draw(st.sampled_from(["Passed", "WaiverExpired", "Waived"])),
        )
        for n in draw(st.lists(GATE_NAMES, max_size=4, unique=True))
    ]
    return ModelReleaseStatus(
        stage=stage,
        history=[entry] * draw(st.integers(0, MAX_HISTORY + 3)),
        alias=draw(st.none() | st.just(alias)),
        serving=serving,
        gates=gates,
        queued_behind=draw(st.none() | st.just("fraud-6")),
        emergency_announced=draw(st.booleans()),
    )


@st.composite
def scenarios(
    draw: st.DrawFn,
) -> tuple[ModelReleaseSpec, ModelReleaseStatus | None, ReleaseObservations, datetime]:
    spec = draw(specs())
    return spec, draw(statuses()), draw(observations(spec)), draw(times)


def _passing(result: GateResult | None, now: datetime) -> bool:
    if result is None:
        return False
    if result.status is GateStatus.WAIVED:
        if result.waiver_expires_at is None or now < result.waiver_expires_at:
            return True
        return result.underlying is GateStatus.PASSED
    return result.status is GateStatus.PASSED


@SETTINGS
@given(scenarios())
def test_never_raises_and_status_survives_the_wire(scenario: Any) -> None:
    spec, status, obs, now = scenario
    d = decide_release(spec, status, obs, now)
    again = ModelReleaseStatus.model_validate(d.status.to_wire())
    assert again == d.status
    assert d.requeue_after is None or d.requeue_after >= 0
    assert len(d.status.history) <= MAX_HISTORY
    assert d.status.stage is not None
    for event in d.events:
        assert f"[change {TICKET}]" in event.message
        assert len(event.message) <= 1000


@SETTINGS
@given(scenarios())
def test_deciding_again_is_quiet(scenario: Any) -> None:
    spec, status, obs, now = scenario
    first = decide_release(spec, status, obs, now)
    second = decide_release(spec, first.status, obs, now)
    assert second.events == ()
    assert second.status == first.status
    assert second.actions == first.actions
    assert second.requeue_after == first.requeue_after


@SETTINGS
@given(scenarios())
def test_never_production_unless_alias_reads_back_this_version(scenario: Any) -> None:
    spec, status, obs, now = scenario
    d = decide_release(spec, status, obs, now)
    before = status.stage if status is not None else None
    if d.status.stage is Stage.PRODUCTION and before is not Stage.PRODUCTION:
        assert obs.alias is not None
        assert obs.alias.error is None
        assert obs.alias.version == spec.version


@SETTINGS
@given(scenarios())
def test_never_approved_or_production_past_a_blocking_gate(scenario: Any) -> None:
    spec, status, obs, now = scenario
    d = decide_release(spec, status, obs, now)
    before = status.stage if status is not None else None
    entered = d.status.stage if d.status.stage is not before else None
    if entered not in (Stage.APPROVED, Stage.PRODUCTION):
        return
    results: dict[str, GateResult] = {}
    for result in obs.gates:
        results.setdefault(result.name, result)  # the first result of a gate counts
    for name in pre_staging_gates(spec):
        assert _passing(results.get(name), now), name
    gates = {g.name: g for g in d.status.gates}
    assert gates[GATE_APPROVALS].status is GateStatus.PASSED
    for name in (*pre_staging_gates(spec), GATE_APPROVALS):
        assert gates[name].status in (GateStatus.PASSED, GateStatus.WAIVED), name
    if entered is Stage.PRODUCTION and not _passing(results.get(GATE_FREEZE), now):
        assert spec.change.type is ChangeType.EMERGENCY
        assert any(a.role == EXECUTIVE_ROLE and a.version == spec.version for a in obs.approvals)
    assert [g.name for g in d.status.gates] == list(all_gates(spec))


@SETTINGS
@given(scenarios())
def test_revoked_and_refused_releases_never_flip_forward(scenario: Any) -> None:
    spec, status, obs, now = scenario
    d = decide_release(spec, status, obs, now)
    if d.status.stage in (Stage.REVOKED, Stage.ROLLED_BACK):
        for action in d.actions:
            assert getattr(action, "version", None) != spec.version or not hasattr(
                action, "expected_current"
            )
    fresh = status is None or status.stage in (None, Stage.CANDIDATE)
    if obs.version_revoked_before and fresh and obs.revoke is None:
        assert d.actions == ()
        assert d.status.stage is Stage.CANDIDATE


# A world-driven property: the release, its child Rollout (the real Rollout core), KServe and
# the alias store evolve together while the evidence changes under them at random.

CHANGES = st.sampled_from(
    [
        "alias-down",
        "alias-up",
        "alias-moved",
        "gate-fails",
        "gate-passes",
        "waiver",
        "freeze",
        "thaw",
        "approve",
        "self-approve",
        "executive",
        "block",
        "unblock",
        "revoke",
        "tick",
    ]
)


def _apply_change(change: str, world: World, obs: dict[str, Any], spec: ModelReleaseSpec) -> None:
    gates = {g.name: g for g in obs["gates"]}
    if change == "alias-down":
        world.alias_down = True
    elif change == "alias-up":
        world.alias_down = False
    elif change == "alias-moved":
        world.alias_version = "5"
    elif change == "gate-fails":
        gates["artifact-digest"] = GateResult("artifact-digest", GateStatus.FAILED, "mismatch")
    elif change == "gate-passes":
        gates["artifact-digest"] = GateResult("artifact-digest", GateStatus.PASSED, "ok")
    elif change == "waiver":
        gates["sbom"] = GateResult(
            "sbom",
            GateStatus.WAIVED,
            "waived",
            waiver_expires_at=obs["now"] + timedelta(seconds=90),
            underlying=GateStatus.FAILED,
        )
    elif change == "freeze":
        gates[GATE_FREEZE] = GateResult(GATE_FREEZE, GateStatus.FAILED, "friday freeze")
    elif change == "thaw":
        gates[GATE_FREEZE] = GateResult(GATE_FREEZE, GateStatus.PASSED, "no window")
    elif change == "approve":
        obs["approvals"] = (
            *obs["approvals"],
            Approval("security", "alice", obs["now"], spec.version),
            Approval("product", "bob", obs["now"], spec.version),
        )
    elif change == "self-approve":
        obs["approvals"] = (*obs["approvals"], Approval("product", "carol", obs["now"], "7"))
    elif change == "executive":
        obs["approvals"] = (*obs["approvals"], Approval(EXECUTIVE_ROLE, "erin", obs["now"], "7"))
    elif change == "block":
        obs["blocking_release"] = "fraud-6"
    elif change == "unblock":
        obs["blocking_release"] = None
    elif change == "revoke":
        obs["revoke"] = RevokeRequest("r1", "audit", "dave", obs["now"])
    obs["gates"] = tuple(gates.values())


@settings(deadline=None, suppress_health_check=list(HealthCheck))
@given(
    backend=st.sampled_from(["template", "kserve"]),
    change_type=st.sampled_from([c.value for c in ChangeType]),
    sbom=st.booleans(),
    changes=st.lists(CHANGES, min_size=1, max_size=10),
)
def test_driven_release_keeps_its_invariants(
    backend: str, change_type: str, sbom: bool, changes: list[str]
) -> None:
    spec = ModelReleaseSpec.model_validate(
        raw_release(backend=backend, change_type=change_type, sbom=sbom)
    )
    world = World()
    if backend == "template":
        world.seed_child(server_template())
    obs: dict[str, Any] = {
        "gates": (
            GateResult("artifact-digest", GateStatus.PASSED, "ok"),
            GateResult(GATE_FREEZE, GateStatus.PASSED, "no window"),
        ),
        "approvals": (),
        "blocking_release": None,
        "revoke": None,
        "now": BASE,
    }
    status: ModelReleaseStatus | None = None
    for i, change in enumerate(changes):
        now = BASE + timedelta(seconds=60 * i)
        obs["now"] = now
        _apply_change(change, world, obs, spec)
        for _ in range(6):
            seen = world.observe(
                gates=obs["gates"],
                approvals=obs["approvals"],
                blocking_release=obs["blocking_release"],
                revoke=obs["revoke"],
            )
            d = decide_release(spec, status, seen, now)
            before = status.stage if status is not None else None
            if d.status.stage is Stage.PRODUCTION and before is not Stage.PRODUCTION:
                assert seen.alias is not None
                assert seen.alias.version == spec.version
            if d.status.stage is Stage.APPROVED and before is not Stage.APPROVED:
                gates = {g.name: g for g in d.status.gates}
                for name in (*pre_staging_gates(spec), GATE_APPROVALS):
                    assert gates[name].status in (GateStatus.PASSED, GateStatus.WAIVED)
            again = decide_release(spec, d.status, seen, now)
            assert again.events == ()
            assert again.status == d.status
            world.apply(d, now)
            if d.status == status and not d.events:
                break
            status = d.status
        if status is not None and status.stage is Stage.PRODUCTION:
            assert world.alias_version in (spec.version, "5")
        if status is not None and status.stage is Stage.REVOKED:
            assert world.alias_version != spec.version or world.alias_down
