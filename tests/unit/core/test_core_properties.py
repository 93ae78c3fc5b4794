"""Properties of ``decide`` over generated specs, statuses, observations and times:

* it never raises on well-typed input, its status survives the wire, its requeue is sane;
* deciding again with the returned status is quiet (no events, same status and actions);
* once a FAIL beyond the failure limit was measured, the canary never gets traffic again
  (same decision and every later one, whatever promote/abort requests arrive) until a retry.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rollwise.core.observations import (
    ManualRequest,
    Measurement,
    Observations,
    RequestKind,
    RevisionState,
    revision_of,
)
from rollwise.core.phases import Phase
from rollwise.core.rollout.actions import Decision, SetWeight
from rollwise.core.rollout.analysis import due_metrics
from rollwise.core.rollout.canary import decide
from rollwise.core.rollout.status import PauseReason, RetiredRevision, RolloutStatus
from rollwise.core.runs import AnalysisRun, MeasurementRecord, MetricRun, Verdict
from rollwise.core.spec import RolloutSpec
from tests.unit.core.rollout_builders import R1, R2, R3, V1, V2, V3, Cluster, at, metric, raw_spec

# How many examples, whether they are random and where failures are kept: the Hypothesis
# profile in force (tests/conftest.py).
SETTINGS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
REVS = [R1, R2, R3, "0000000000"]
TEMPLATES = [V1, V2, V3]
BASE = datetime(2026, 1, 1, tzinfo=UTC)

times = st.integers(min_value=-10_000, max_value=100_000).map(lambda s: BASE + timedelta(seconds=s))
maybe_times = st.none() | times
durations = st.sampled_from(["0s", "1s", "30s", "5m", "1h", "250ms"])
conditions = st.sampled_from(
    [None, "result < 0.05", "result > 0.5", "result == 1", "result <", "foo > 1", "result + 1.0"]
)


@st.composite
def metrics(draw: st.DrawFn, name: str) -> dict[str, Any]:
    kind = draw(st.sampled_from(["success", "failure", "both", "range", "none"]))
    m = metric(
        name,
        success=draw(conditions) if kind in ("success", "both") else None,
        failure=draw(conditions) if kind in ("failure", "both") else None,
        threshold={"max": 0.05} if kind == "range" else None,
        count=draw(st.integers(1, 3)),
        interval=draw(st.none() | durations),
    )
    if kind == "none":
        m.pop("successCondition", None)
    return m


@st.composite
def analyses(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(["error-ratio", "latency"]), max_size=2))
    return {
        "interval": draw(durations),
        "failureLimit": draw(st.integers(0, 2)),
        "inconclusiveLimit": draw(st.integers(0, 2)),
        "consecutiveErrorLimit": draw(st.integers(0, 3)),
        "metrics": [draw(metrics(n)) for n in names],
    }


@st.composite
def steps(draw: st.DrawFn) -> list[dict[str, Any]]:
    kinds = st.one_of(
        st.integers(0, 100).map(lambda w: {"setWeight": w}),
        (st.none() | durations).map(lambda d: {"pause": {"duration": d} if d else {}}),
        st.just({"analysis": {}}),
        analyses().map(
            lambda a: {"analysis": {"metrics": a["metrics"], "interval": a["interval"]}}
        ),
        st.just({}),
    )
    return draw(st.lists(kinds, max_size=5))


@st.composite
def specs(draw: st.DrawFn) -> RolloutSpec:
    raw = raw_spec(
        image_template=draw(st.sampled_from(TEMPLATES)),
        steps=draw(st.none() | steps()),
        replicas=draw(st.integers(0, 6)),
        router=draw(st.booleans()),
        analysis=draw(st.none() | analyses()),
        paused=draw(st.booleans()),
        scale_down_delay=draw(st.sampled_from([0, 30, 10**12])),
        deadline=draw(st.sampled_from([1, 60, 600, 10**12])),
    )
    return RolloutSpec.model_validate(raw)


INTS5 = st.integers(0, 5)
VERDICTS = st.none() | st.sampled_from(Verdict)
RECORDS = st.lists(
    st.tuples(
        st.none() | st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from(Verdict),
        times,
        st.booleans(),
    ).map(lambda t: MeasurementRecord(value=t[0], verdict=t[1], at=t[2], error=t[3])),
    max_size=3,
)
METRIC_RUNS = st.tuples(
    st.sampled_from(["error-ratio", "latency"]),
    RECORDS,
    INTS5,
    INTS5,
    INTS5,
    INTS5,
    INTS5,
    VERDICTS,
).map(
    lambda t: MetricRun(
        name=t[0],
        measurements=t[1],
        successful=t[2],
        failed=t[3],
        inconclusive=t[4],
        error=t[5],
        consecutive_errors=t[6],
        verdict=t[7],
    )
)
RUNS = st.none() | st.tuples(
    st.integers(-1, 6), st.sampled_from(REVS), times, st.lists(METRIC_RUNS, max_size=2), VERDICTS
).map(
    lambda t: AnalysisRun(
        step_index=t[0], revision=t[1], started_at=t[2], metrics=t[3], verdict=t[4]
    )
)
MAYBE_REVS = st.none() | st.sampled_from(REVS)
STATUS_FIELDS = st.fixed_dictionaries(
    {
        "phase": st.none() | st.sampled_from(Phase),
        "observed_generation": st.none() | st.integers(0, 3),
        "current_step_index": st.none() | st.integers(-2, 8),
        "canary_weight": st.integers(-10, 110),
        "stable_revision": MAYBE_REVS,
        "canary_revision": MAYBE_REVS,
        "step_started_at": maybe_times,
        "pause_started_at": maybe_times,
        "pause_reason": st.none() | st.sampled_from(PauseReason),
        "aborted": st.booleans(),
        "rolled_back_revision": MAYBE_REVS,
        "progress_started_at": maybe_times,
        "deadline_exceeded": st.booleans(),
        "analysis": RUNS,
        "handled_requests": st.dictionaries(
            st.sampled_from([k.value for k in RequestKind]), st.sampled_from(["a", "b"])
        ),
        "retired_revisions": st.lists(
            st.tuples(st.sampled_from(REVS), times).map(
                lambda t: RetiredRevision(revision=t[0], remove_at=t[1])
            ),
            max_size=2,
        ),
    }
)
STATUSES = st.one_of(st.none(), STATUS_FIELDS.map(lambda f: RolloutStatus(**f)))


def statuses() -> st.SearchStrategy[RolloutStatus | None]:
    return STATUSES


REVISION_STATES = st.tuples(
    st.integers(0, 6), st.integers(0, 6), st.integers(0, 6), st.integers(0, 6), st.booleans()
).map(lambda t: RevisionState(*t))
MEASUREMENTS = st.dictionaries(
    st.sampled_from(["error-ratio", "latency", "other"]),
    st.tuples(
        st.one_of(
            st.none(),
            st.floats(allow_nan=True, allow_infinity=True),
            st.sampled_from([0.0, 0.01, 0.2, math.nan]),
        ),
        times,
        st.none() | st.just("connection refused"),
    ).map(lambda t: Measurement(value=t[0], at=t[1], error=t[2])),
    max_size=3,
)
REQUESTS = st.lists(
    st.tuples(st.sampled_from(RequestKind), st.sampled_from(["a", "b", "c"])).map(
        lambda t: ManualRequest(*t)
    ),
    max_size=4,
    unique_by=lambda r: r.kind,
).map(tuple)
OBSERVED = st.fixed_dictionaries(
    {
        "generation": st.integers(1, 3),
        "revisions": st.dictionaries(st.sampled_from(REVS), REVISION_STATES, max_size=4),
        "actual_weight": st.none() | st.integers(0, 100),
        "stable_service_exists": st.booleans(),
        "canary_service_exists": st.booleans(),
        "measurements": MEASUREMENTS,
        "requests": REQUESTS,
    }
)


@st.composite
def observations(draw: st.DrawFn, spec: RolloutSpec) -> Observations:
    return Observations(template_hash=revision_of(spec.template), **draw(OBSERVED))


@st.composite
def inputs(draw: st.DrawFn) -> tuple[RolloutSpec, RolloutStatus | None, Observations, datetime]:
    spec = draw(specs())
    return spec, draw(statuses()), draw(observations(spec)), draw(times)


def _sane(decision: Decision) -> None:
    wire = decision.status.to_wire()
    assert RolloutStatus.model_validate(wire) == decision.status
    assert decision.requeue_after is None or decision.requeue_after >= 0
    assert 0 <= decision.status.canary_weight <= 100
    for action in decision.actions:
        if isinstance(action, SetWeight):
            assert 0 <= action.weight <= 100


#: Found by this property: a new revision with no steps was promoted in one pass without the
#: stable-revision checks (Services present) that the next pass applied, so the second pass
#: flipped Healthy to Progressing.
_PROMOTED_IN_ONE_PASS_WITHOUT_SERVICES = (
    RolloutSpec.model_validate(
        {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "app:v3"}]},
            },
            "strategy": {
                "canary": {
                    "steps": [],
                    "stableService": "web-stable",
                    "canaryService": "web-canary",
                    "scaleDownDelaySeconds": 0,
                }
            },
            "progressDeadlineSeconds": 1,
        }
    ),
    RolloutStatus(canary_weight=0, stable_revision="4f07e42081"),
    Observations(
        template_hash="8f29751479",
        generation=1,
        revisions={
            "4f07e42081": RevisionState(0, 0, 0, 0, False),
            "8f29751479": RevisionState(0, 0, 0, 0, True),
        },
        actual_weight=None,
        stable_service_exists=False,
        canary_service_exists=False,
        measurements={},
        requests=(),
    ),
    datetime(2026, 1, 1, tzinfo=UTC),
)


@SETTINGS
@given(inputs())
@example(_PROMOTED_IN_ONE_PASS_WITHOUT_SERVICES)
def test_decide_never_raises_and_is_quiet_the_second_time(
    args: tuple[RolloutSpec, RolloutStatus | None, Observations, datetime],
) -> None:
    spec, status, observed, now = args
    first = decide(spec, status, observed, now)
    _sane(first)
    again = decide(spec, first.status, observed, now)
    assert again.status == first.status
    assert again.events == ()
    assert again.actions == first.actions


@SETTINGS
@given(
    raw=st.dictionaries(
        st.sampled_from(["replicas", "selector", "template", "strategy", "paused", "x"]),
        st.one_of(
            st.integers(),
            st.text(max_size=3),
            st.none(),
            st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
        ),
    ),
    status=statuses(),
    now=times,
)
def test_decide_on_garbage_spec_stands_still(
    raw: dict[str, Any], status: RolloutStatus | None, now: datetime
) -> None:
    observed = Observations(template_hash=R1, generation=1)
    decision = decide(raw, status, observed, now)
    assert decision.actions == ()
    assert decision.status.phase is Phase.DEGRADED
    assert decision.requeue_after is None


# ------------------------------------------------------------------ no traffic after a FAIL


@st.composite
def valid_steps(draw: st.DrawFn) -> list[dict[str, Any]]:
    weights = sorted(draw(st.lists(st.integers(1, 99), max_size=3)))
    out: list[dict[str, Any]] = []
    for w in [*weights, 100]:
        out.append({"setWeight": w})
        if draw(st.booleans()):
            out.append({"pause": draw(st.sampled_from([{}, {"duration": "30s"}]))})
    return out


Move = tuple[int, float | str | None, RequestKind | None]
moves = st.tuples(
    st.integers(0, 200),
    st.one_of(st.just(0.01), st.just(0.9), st.none(), st.just("error")),
    st.none() | st.sampled_from([RequestKind.PROMOTE, RequestKind.PROMOTE_FULL, RequestKind.ABORT]),
)


@SETTINGS
@given(
    steps_=valid_steps(),
    failure_limit=st.integers(0, 2),
    count=st.integers(1, 4),
    replicas=st.integers(1, 5),
    router=st.booleans(),
    script=st.lists(moves, min_size=1, max_size=25),
)
def test_no_traffic_to_the_canary_after_a_failure(  # noqa: PLR0917 (hypothesis passes keywords)
    steps_: list[dict[str, Any]],
    failure_limit: int,
    count: int,
    replicas: int,
    router: bool,
    script: list[Move],
) -> None:
    analysis = {
        "interval": "30s",
        "failureLimit": failure_limit,
        "metrics": [metric(count=count)],
    }
    kw: dict[str, Any] = {
        "steps": steps_,
        "analysis": analysis,
        "replicas": replicas,
        "router": router,
    }
    cluster = Cluster(router=router)
    d = decide(RolloutSpec.model_validate(raw_spec(**kw)), None, cluster.observe(V1), at(0))
    cluster.apply(d)
    spec = RolloutSpec.model_validate(raw_spec(image_template=V2, **kw))
    status = d.status
    now = 10.0
    failed = False
    requests: list[ManualRequest] = []
    for i, (wait, measured, kind) in enumerate(script):
        now += wait
        if kind is not None:
            requests = [r for r in requests if r.kind is not kind] + [ManualRequest(kind, str(i))]
        measurements = {}
        for due in due_metrics(spec, status, at(now)):
            if measured == "error":
                measurements[due.metric.name] = Measurement(None, at(now), error="503")
            else:
                assert not isinstance(measured, str)
                measurements[due.metric.name] = Measurement(measured, at(now))
        observed = cluster.observe(V2, measurements=measurements, requests=tuple(requests))
        d = decide(spec, status, observed, at(now))
        cluster.apply(d)
        run = d.status.analysis
        metric_run = run.metric("error-ratio") if run is not None else None
        if metric_run is not None and metric_run.failed > failure_limit:
            failed = True
        if failed:
            assert d.status.canary_revision is None
            assert d.status.stable_revision == R1
            assert d.status.rolled_back_revision == R2
            assert d.status.canary_weight == 0
            assert all(a.weight == 0 for a in d.actions if isinstance(a, SetWeight))
            assert cluster.weight == 0
        status = d.status
