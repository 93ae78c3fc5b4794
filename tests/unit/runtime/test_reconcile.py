"""The reconcile pass, state in → state out, with the adapters replaced by in-memory fakes."""

from __future__ import annotations

from typing import Any

import pytest

from rollwise.adapters.errors import (
    Conflict,
    NotOwned,
    ProviderUnavailable,
    QueryRefused,
    Unavailable,
)
from rollwise.adapters.kube import ROLLOUTS
from rollwise.adapters.watch_cache import WatchCache
from rollwise.core.observations import TemplateKey, TemplateRead, revision_of
from rollwise.core.rollout.actions import POLL_SECONDS
from rollwise.core.templates import TEMPLATE_RECHECK_SECONDS
from rollwise.runtime.passes import (
    BACKOFF_MAX_SECONDS,
    CONFLICT_RETRY_SECONDS,
    FOLLOW_UP_SECONDS,
    RESOLUTION_TIMED_OUT,
    backoff,
    resolved,
)
from rollwise.runtime.skeleton import PassResult, merge_patch_diff
from tests.unit.runtime.fakes import NAME, NAMESPACE, World, rollout_body, world


def healthy(w: World) -> PassResult:
    return w.settle(lambda r: w.status.get("phase") == "Healthy")


def revision(image: str) -> str:
    return revision_of(rollout_body(image)["spec"]["template"])


def conditions(w: World) -> dict[str, str]:
    return {c["type"]: c["status"] for c in w.status.get("conditions", [])}


def at_weight(w: World, weight: int) -> PassResult:
    return w.settle(lambda r: w.router.weight == weight and w.status.get("canaryWeight") == weight)


# ------------------------------------------------------------------ first revision


def test_new_rollout_creates_its_revision_and_becomes_healthy() -> None:
    w = world()
    first = w.run()
    rev = revision("demo:1")
    assert w.workloads.deployments[rev].desired_replicas == 2
    assert w.workloads.selectors == {"demo-stable": rev, "demo-canary": rev}
    assert first.status_written
    assert first.acted
    assert first.requeue_after is not None
    assert first.requeue_after <= FOLLOW_UP_SECONDS
    healthy(w)
    assert w.status["stableRevision"] == rev
    assert conditions(w)["Ready"] == "True"
    assert w.cluster.reasons == ["Initialized"]
    assert w.metrics.sample("rollwise_rollouts", {"phase": "Healthy"}) == 1


def test_a_pass_that_changes_nothing_writes_nothing() -> None:
    w = world()
    healthy(w)
    patches, events = len(w.cluster.patches), len(w.cluster.events)
    version = w.cluster.body["metadata"]["resourceVersion"]  # type: ignore[index]
    again = w.run()
    assert not again.status_written
    assert not again.acted
    assert again.requeue_after is None
    assert len(w.cluster.patches) == patches
    assert len(w.cluster.events) == events
    assert w.cluster.body["metadata"]["resourceVersion"] == version  # type: ignore[index]
    assert w.metrics.sample("rollwise_status_writes_total") == patches


# ------------------------------------------------------------------ canary


def test_canary_goes_through_the_steps_with_analysis_and_completes() -> None:
    w = world()
    healthy(w)
    w.cluster.edit_image("demo:2")
    old, new = revision("demo:1"), revision("demo:2")
    at_weight(w, 5)
    assert w.workloads.deployments[new].desired_replicas == 1
    w.settle(lambda r: w.status.get("phase") == "Healthy" and w.status["stableRevision"] == new)
    provider = w.provider()
    assert provider.queries == [f'error_ratio{{revision="{new}"}}'] * 2
    reasons = w.cluster.reasons
    assert reasons[reasons.index("RevisionDetected") :].count("StepAdvanced") == 2
    assert w.router.weight == 0  # all traffic on stable, which is the new revision now
    assert w.workloads.selectors["demo-stable"] == new
    w.settle(lambda r: old not in w.workloads.deployments)
    assert "RevisionRetired" in w.cluster.reasons
    assert (
        w.metrics.sample(
            "rollwise_analysis_measurements_total",
            {"namespace": NAMESPACE, "rollout": NAME, "metric": "error-ratio", "verdict": "Pass"},
        )
        == 2
    )


def test_router_is_built_each_pass_with_the_current_revision_deployments() -> None:
    w = world()
    healthy(w)
    w.cluster.edit_image("demo:2")
    at_weight(w, 5)
    last = w.contexts[-1]
    assert last.stable_deployment == f"{NAME}-{revision('demo:1')}"
    assert last.canary_deployment == f"{NAME}-{revision('demo:2')}"
    assert (last.stable_service, last.canary_service) == ("demo-stable", "demo-canary")


def test_failing_analysis_rolls_back_and_does_not_retry_the_revision() -> None:
    w = world()
    healthy(w)
    new = revision("demo:2")
    w.provider().values[f'error_ratio{{revision="{new}"}}'] = 0.2
    w.cluster.edit_image("demo:2")
    at_weight(w, 5)
    w.settle(lambda r: w.status.get("phase") == "Degraded")
    assert w.router.weight == 0
    assert w.workloads.deployments[new].desired_replicas == 0
    reasons = w.cluster.reasons
    assert reasons.index("AnalysisFailed") < reasons.index("RolledBack")
    assert w.status["rolledBackRevision"] == new
    assert (
        w.metrics.sample(
            "rollwise_rollbacks_total",
            {"namespace": NAMESPACE, "rollout": NAME, "reason": "RolledBack"},
        )
        == 1
    )
    # The rollback is the decision in status, counted once with its action and confidence.
    decision = w.status["decision"]
    assert (decision["action"], decision["recommended"]) == ("rollback", "rollback")
    labels = {"kind": "rollout", "action": "rollback", "confidence": decision["confidence"]}
    assert w.metrics.sample("rollwise_decisions_total", labels) == 1
    # Many more passes: the revision gets no traffic again, and nothing is counted twice.
    for _ in range(5):
        w.clock.advance(30)
        w.run()
        assert w.router.weight == 0
    assert w.metrics.sample("rollwise_decisions_total", labels) == 1
    counted = sum(
        w.metrics.sample(
            "rollwise_decisions_total", {"kind": "rollout", "action": a, "confidence": c}
        )
        or 0
        for a in ("expand", "hold", "rollback")
        for c in ("low", "medium", "high")
    )
    assert counted == w.cluster.reasons.count("DecisionChanged") > 1


def test_retry_annotation_restarts_a_rolled_back_revision() -> None:
    w = world()
    healthy(w)
    new = revision("demo:2")
    w.provider().values[f'error_ratio{{revision="{new}"}}'] = 0.2
    w.cluster.edit_image("demo:2")
    w.settle(lambda r: w.status.get("phase") == "Degraded")
    w.provider().values.clear()
    w.cluster.body["metadata"]["annotations"]["rollwise.dev/retry"] = "r1"  # type: ignore[index]
    at_weight(w, 5)
    assert "RetryRequested" in w.cluster.reasons


# ------------------------------------------------------------------ measurements


@pytest.mark.parametrize(
    ("default", "value", "reason"),
    [
        pytest.param(
            "http://prometheus:9090",
            ProviderUnavailable("down"),
            "MeasurementError",
            id="provider-error",
        ),
        pytest.param("http://prometheus:9090", None, "AnalysisInconclusive", id="no-data"),
        pytest.param(None, 0.0, "MeasurementError", id="no-address"),
    ],
)
def test_unusable_measurements_never_pass(default: str | None, value: object, reason: str) -> None:
    w = world(default_prometheus=default)
    healthy(w)
    new = revision("demo:2")
    if default is not None:
        w.provider(default).values[f'error_ratio{{revision="{new}"}}'] = value  # type: ignore[assignment]
    w.cluster.edit_image("demo:2")
    w.settle(lambda r: reason in w.cluster.reasons)
    assert "StepAdvanced" not in w.cluster.reasons
    assert w.status["canaryWeight"] == 5


def test_metric_address_overrides_the_default_prometheus() -> None:
    body = rollout_body()
    metric = body["spec"]["strategy"]["canary"]["analysis"]["metrics"][0]
    metric["provider"]["prometheus"]["address"] = "http://other:9090"
    w = world(body)
    healthy(w)
    w.cluster.edit_image("demo:2")
    w.settle(lambda r: "AnalysisPassed" in w.cluster.reasons)
    assert w.provider("http://other:9090").queries
    assert "http://prometheus:9090" not in w.providers


COUNT = 'sum(increase(requests_total{revision="{{canaryRevision}}"}[1m]))'


def guarded_world(samples: object) -> tuple[World, str]:
    """A Rollout whose error-ratio check needs 100 requests, its canary measuring 0.000 errors
    over ``samples`` requests (the sampleGuard's count)."""
    body = rollout_body()
    metric = body["spec"]["strategy"]["canary"]["analysis"]["metrics"][0]
    metric["sampleGuard"] = {"query": COUNT, "minSamples": 100}
    w = world(body)
    healthy(w)
    new = revision("demo:2")
    w.provider().values[COUNT.replace("{{canaryRevision}}", new)] = samples  # type: ignore[assignment]
    w.cluster.edit_image("demo:2")
    return w, new


def test_a_step_with_too_few_samples_does_not_pass() -> None:
    w, new = guarded_world(12.0)
    w.settle(lambda r: "AnalysisInconclusive" in w.cluster.reasons)
    assert "StepAdvanced" not in w.cluster.reasons
    assert "AnalysisPassed" not in w.cluster.reasons
    assert w.status["canaryWeight"] == 5
    assert sorted(w.provider().queries) == sorted(
        [f'error_ratio{{revision="{new}"}}', COUNT.replace("{{canaryRevision}}", new)]
    )
    measured = w.status["analysis"]["metrics"][0]["measurements"][-1]
    assert measured["verdict"] == "Inconclusive"
    assert "12 samples, fewer than the 100 required (minSamples)" in measured["message"]


def test_a_step_with_enough_samples_passes() -> None:
    w, new = guarded_world(100.0)
    w.settle(lambda r: w.status.get("phase") == "Healthy" and w.status["stableRevision"] == new)
    assert "AnalysisInconclusive" not in w.cluster.reasons
    assert w.cluster.reasons.count("StepAdvanced") >= 2


@pytest.mark.parametrize(
    ("samples", "reason"),
    [
        pytest.param(None, "AnalysisInconclusive", id="count-no-data"),
        pytest.param(ProviderUnavailable("down"), "MeasurementError", id="count-query-error"),
    ],
)
def test_a_count_without_a_number_never_passes(samples: object, reason: str) -> None:
    w, _ = guarded_world(samples)
    w.settle(lambda r: reason in w.cluster.reasons)
    assert "StepAdvanced" not in w.cluster.reasons
    assert w.status["canaryWeight"] == 5


def test_the_sample_guard_query_is_checked_when_the_spec_is_seen() -> None:
    body = rollout_body()
    metric = body["spec"]["strategy"]["canary"]["analysis"]["metrics"][0]
    metric["sampleGuard"] = {"query": "sum(requests_total{revision=})", "minSamples": 100}
    w = world(body)
    w.provider().unparsable["sum(requests_total{revision=})"] = QueryRefused("1:29: parse error")
    w.run()
    assert conditions(w)["InvalidSpec"] == "True"
    assert "analysis.metrics[0].sampleGuard.query" in w.status["message"]
    assert w.workloads.deployments == {}


@pytest.mark.parametrize(
    ("metric", "refused", "field"),
    [
        pytest.param(
            {
                "name": "errors",
                "compare": {"query": 'sum(rate(errors{revision="{{revision}}"}[1m])'},
            },
            'sum(rate(errors{revision="0000000000"}[1m])',
            "analysis.metrics[0].compare.query",
            id="compare",
        ),
        pytest.param(
            {
                "name": "availability",
                "sloBurnRate": {
                    "objective": 0.99,
                    "badQuery": 'sum(increase(errors{revision="{{canaryRevision}}"}[{{window}}])',
                    "totalQuery": 'sum(increase(requests{rev="{{canaryRevision}}"}[{{window}}]))',
                },
            },
            'sum(increase(errors{revision="0000000000"}[300s])',
            "analysis.metrics[0].sloBurnRate.badQuery",
            id="burn-rate",
        ),
    ],
)
def test_compare_and_burn_rate_queries_are_checked_when_the_spec_is_seen(
    metric: dict[str, Any], refused: str, field: str
) -> None:
    body = rollout_body()
    body["spec"]["strategy"]["canary"]["analysis"]["metrics"] = [metric]
    w = world(body)
    w.provider().unparsable[refused] = QueryRefused("1:45: parse error: unclosed left parenthesis")
    w.run()
    assert refused in w.provider().parsed
    assert conditions(w)["InvalidSpec"] == "True"
    assert conditions(w)["QueriesVerified"] == "False"
    assert f"{field}: the provider refused the query" in w.status["message"]
    assert w.workloads.deployments == {}
    assert w.workloads.writes == 0


# ------------------------------------------------------------------ invalid and missing


def test_missing_service_is_an_invalid_spec_and_nothing_is_created() -> None:
    w = world()
    w.workloads.services.discard("demo-canary")
    result = w.run()
    assert w.workloads.deployments == {}
    assert w.workloads.writes == 0
    assert conditions(w)["InvalidSpec"] == "True"
    assert w.status["phase"] == "Degraded"
    assert "demo-canary" in w.status["message"]
    assert w.cluster.reasons == ["InvalidSpec"]
    assert w.cluster.events[0].type.value == "Warning"
    assert result.requeue_after == POLL_SECONDS
    # The Service appears: the rollout goes on, and says so.
    w.workloads.services.add("demo-canary")
    healthy(w)
    assert "SpecCorrected" in w.cluster.reasons
    assert conditions(w)["InvalidSpec"] == "False"


def test_invalid_spec_is_decided_without_touching_the_cluster() -> None:
    body = rollout_body(steps=[{"setWeight": 50}, {"setWeight": 10}])
    w = world(body)
    w.run()
    assert w.workloads.writes == 0
    assert w.contexts == []
    assert conditions(w)["InvalidSpec"] == "True"
    assert "setWeight must not decrease" in w.status["message"]


# ------------------------------------------------------------------ failures


def test_a_failing_action_is_reported_once_and_retried_with_backoff() -> None:
    w = world()
    w.workloads.fail_with = NotOwned("Deployment shop/demo-x is not ours")
    first = w.run()
    second = w.run()
    assert first.failure is not None
    assert second.failure is not None
    assert w.cluster.reasons.count("ActionFailed") == 1
    failed = next(e for e in w.cluster.events if e.reason.name == "ActionFailed")
    assert failed.type.value == "Warning"
    assert "is not ours" in failed.message
    assert first.requeue_after == backoff(1)
    assert second.requeue_after == backoff(2)
    assert (
        w.metrics.sample(
            "rollwise_api_errors_total", {"operation": "EnsureRevision", "code": "NotOwned"}
        )
        == 2
    )
    w.workloads.fail_with = None
    healthy(w)
    assert w.memory.failures == 0


@pytest.mark.parametrize(
    ("error", "wait"),
    [
        pytest.param(Conflict("changed", status=409), CONFLICT_RETRY_SECONDS, id="conflict"),
        pytest.param(Unavailable("slow down", status=429, retry_after=7), 7, id="retry-after"),
        pytest.param(Unavailable("down", status=503), backoff(1), id="backoff"),
    ],
)
def test_retryable_action_failures_are_retried_quietly(error: Exception, wait: float) -> None:
    w = world()
    w.workloads.fail_with = error  # type: ignore[assignment]
    result = w.run()
    assert result.requeue_after == wait
    assert "ActionFailed" not in w.cluster.reasons


def test_status_conflict_posts_no_event_and_looks_again_soon() -> None:
    w = world()
    w.run()
    w.cluster.conflict_next_patch = True
    result = w.run()
    assert result.requeue_after == CONFLICT_RETRY_SECONDS
    assert not result.status_written
    assert w.cluster.reasons == []
    healthy(w)
    assert w.cluster.reasons == ["Initialized"]


@pytest.mark.parametrize(
    ("error", "wait", "code"),
    [
        pytest.param(Unavailable("down", status=503), backoff(1), "503", id="backoff"),
        pytest.param(
            Unavailable("slow down", status=429, retry_after=7), 7, "429", id="retry-after"
        ),
    ],
)
def test_a_failed_status_write_is_counted_and_retried(
    error: Unavailable, wait: float, code: str
) -> None:
    w = world()
    w.cluster.fail_next_patch = error
    result = w.run()
    assert not result.status_written
    assert result.requeue_after == wait
    assert w.memory.failures == 1
    assert (
        w.metrics.sample("rollwise_api_errors_total", {"operation": "patch_status", "code": code})
        == 1
    )
    assert w.cluster.reasons == [], "nothing was recorded, so nothing is announced"
    healthy(w)
    assert w.memory.failures == 0


def rollout_cache() -> WatchCache:
    cache = WatchCache()
    cache.watch(ROLLOUTS)
    return cache


def test_with_a_watch_cache_the_rollout_is_read_once_and_then_from_its_own_writes() -> None:
    w, cache = world(), rollout_cache()
    w.run_cached(cache)
    assert w.cluster.reads == 1
    for _ in range(12):
        result = w.run_cached(cache)
        w.clock.advance(result.requeue_after or 1)
        if w.status.get("phase") == "Healthy":
            break
    assert w.status["phase"] == "Healthy"
    assert w.cluster.reads == 1
    assert w.cluster.reasons == ["Initialized"]
    patches = len(w.cluster.patches)
    w.run_cached(cache)
    assert len(w.cluster.patches) == patches


def test_a_cached_rollout_behind_the_server_conflicts_and_is_read_again() -> None:
    w, cache = world(), rollout_cache()
    assert w.cluster.body is not None
    before_first_write = w.cluster.read_rollout(NAMESPACE, NAME)
    w.run()
    assert before_first_write is not None
    cache.observe(ROLLOUTS, before_first_write)  # the watch has not caught up
    reads = w.cluster.reads
    result = w.run_cached(cache)
    assert result.requeue_after == CONFLICT_RETRY_SECONDS
    assert not result.status_written
    assert w.cluster.reads == reads
    w.run_cached(cache)
    assert w.cluster.reads == reads + 1
    healthy(w)
    assert w.cluster.reasons == ["Initialized"]


def test_deleted_rollout_is_gone_and_its_series_removed() -> None:
    w = world()
    healthy(w)
    assert (
        w.metrics.sample(
            "rollwise_rollout_canary_weight", {"namespace": NAMESPACE, "rollout": NAME}
        )
        == 0
    )
    w.cluster.body = None
    result = w.run()
    assert result.gone
    assert (
        w.metrics.sample(
            "rollwise_rollout_canary_weight", {"namespace": NAMESPACE, "rollout": NAME}
        )
        is None
    )
    assert w.metrics.sample("rollwise_rollouts", {"phase": "Healthy"}) == 0


# ------------------------------------------------------------------ helpers


@pytest.mark.parametrize(
    ("old", "new", "patch"),
    [
        pytest.param(None, {"a": 1}, {"a": 1}, id="from-nothing"),
        pytest.param({"a": 1, "b": 2}, {"a": 1}, {"b": None}, id="removed-key"),
        pytest.param({"a": {"x": 1, "y": 2}}, {"a": {"x": 1}}, {"a": {"y": None}}, id="nested"),
        pytest.param({"l": [1, 2]}, {"l": [1]}, {"l": [1]}, id="list-replaced"),
        pytest.param({"a": 1}, {"a": 1}, {}, id="unchanged"),
        pytest.param({"a": {"x": 1}}, {"a": 3}, {"a": 3}, id="object-to-scalar"),
    ],
)
def test_merge_patch_diff(old: dict | None, new: dict, patch: dict) -> None:  # type: ignore[type-arg]
    assert merge_patch_diff(old, new) == patch


def test_backoff_grows_and_is_capped() -> None:
    assert [backoff(n) for n in (1, 2, 3)] == [2, 4, 8]
    assert backoff(50) == BACKOFF_MAX_SECONDS


# ------------------------------------------------------------------ queries checked before traffic


def test_a_query_prometheus_cannot_parse_stops_a_new_rollout_before_anything_is_created() -> None:
    sample = 'error_ratio{revision="0000000000"}'
    w = world()
    w.provider().unparsable[sample] = QueryRefused(
        'bad_data: invalid parameter "query": 1:21: parse error: unexpected "}"'
    )
    w.run()
    assert w.provider().parsed == [sample]
    assert w.workloads.deployments == {}
    assert w.workloads.writes == 0
    assert conditions(w)["InvalidSpec"] == "True"
    assert conditions(w)["QueriesVerified"] == "False"
    assert "analysis.metrics[0].provider.prometheus.query" in w.status["message"]
    assert "1:21: parse error" in w.status["message"]
    assert w.cluster.reasons == ["InvalidSpec"]
    # Checked once: the refusal is recorded, later passes do not ask again.
    w.clock.advance(300)
    w.run()
    assert w.provider().parsed == [sample]


def test_queries_are_checked_again_while_the_provider_is_unreachable() -> None:
    sample = 'error_ratio{revision="0000000000"}'
    w = world()
    w.provider().unparsable[sample] = ProviderUnavailable("connection refused")
    healthy(w)
    assert conditions(w)["QueriesVerified"] == "Unknown"
    assert w.provider().parsed == [sample]
    del w.provider().unparsable[sample]
    w.clock.advance(60)
    w.run()
    assert conditions(w)["QueriesVerified"] == "True"
    assert w.provider().parsed == [sample, sample]


def test_a_route_its_gateway_did_not_accept_is_reported_as_a_condition_and_a_warning() -> None:
    w = world()
    healthy(w)
    w.router.verify = lambda weight: False  # type: ignore[method-assign]
    w.run()
    conditions = {c["type"]: c for c in w.status["conditions"]}
    assert conditions["RouteAccepted"]["status"] == "False"
    assert conditions["RouteAccepted"]["reason"] == "RouteNotAccepted"
    assert f"HTTPRoute {NAMESPACE}/demo is not accepted" in conditions["RouteAccepted"]["message"]
    assert [e for e in w.cluster.events if e.reason.name == "RouteNotAccepted"]
    w.router.verify = lambda weight: True  # type: ignore[method-assign]
    w.run()
    assert "RouteAccepted" not in {c["type"] for c in w.status["conditions"]}


# ------------------------------------------------------------------ baseline


def baseline_world() -> World:
    metric = {
        "name": "errors-above-baseline",
        "count": 1,
        "successCondition": "result < 0.02",
        "provider": {"prometheus": {"query": 'error_ratio{revision="{{baselineRevision}}"}'}},
    }
    body = rollout_body(
        baseline=True,
        baselineService="demo-baseline",
        analysis={"interval": "10s", "metrics": [metric]},
    )
    w = world(body)
    w.workloads.services.add("demo-baseline")
    return w


def test_a_baseline_is_created_routed_and_removed_through_the_ports() -> None:
    w = baseline_world()
    healthy(w)
    old, new = revision("demo:1"), revision("demo:2")
    baseline = f"{old}-baseline"
    assert w.workloads.selectors["demo-baseline"] == old
    w.cluster.edit_image("demo:2")
    at_weight(w, 5)
    assert w.workloads.deployments[baseline].desired_replicas == 1
    assert w.router.baseline == 5  # the router was handed the three-way split
    assert w.workloads.selectors["demo-baseline"] == baseline
    assert w.status["baseline"] == {
        "revision": baseline,
        "stableRevision": old,
        "weight": 5,
        "replicas": 1,
        "availableReplicas": 1,
    }
    info = {"namespace": NAMESPACE, "rollout": NAME, "role": "baseline", "revision": baseline}
    assert w.metrics.sample("rollwise_rollout_revision_info", info) == 1
    last = w.contexts[-1]
    assert last.baseline_service == "demo-baseline"
    assert last.baseline_deployment == f"{NAME}-{baseline}"
    w.settle(lambda r: w.status.get("phase") == "Healthy" and w.status["stableRevision"] == new)
    # The step's query named the baseline's revision, not the stable fleet's.
    assert f'error_ratio{{revision="{baseline}"}}' in w.provider().queries
    assert baseline not in w.workloads.deployments
    assert "baseline" not in w.status
    assert w.metrics.sample("rollwise_rollout_revision_info", info) is None
    assert (w.router.weight, w.router.baseline) == (0, 0)
    assert w.workloads.selectors["demo-baseline"] == new


def test_a_missing_baseline_service_is_a_missing_reference_and_nothing_acts() -> None:
    w = world(rollout_body(baseline=True, baselineService="demo-baseline"))
    w.run()
    assert w.workloads.deployments == {}
    assert conditions(w)["InvalidSpec"] == "True"
    invalid = next(c for c in w.status["conditions"] if c["type"] == "InvalidSpec")
    assert f"Service {NAMESPACE}/demo-baseline not found" in invalid["message"]


# ------------------------------------------------------------------ analysis templates


class FakeTemplates:
    """The analysis templates of the fake cluster, by (cluster scope, name); records reads."""

    def __init__(self) -> None:
        self.specs: dict[TemplateKey, dict[str, Any]] = {}
        self.reads: list[tuple[str, TemplateKey]] = []

    def read(self, namespace: str, key: TemplateKey) -> TemplateRead | None:
        self.reads.append((namespace, key))
        return self.specs.get(key)


ERRORS = TemplateKey(cluster_scope=False, name="errors")
ERRORS_TEMPLATE: dict[str, Any] = {
    "args": [{"name": "limit", "type": "number", "default": "0.05"}, {"name": "rev"}],
    "metrics": [
        {
            "name": "template-errors",
            "successCondition": "result < {{args.limit}}",
            "provider": {"prometheus": {"query": 'error_ratio{revision="{{args.rev}}"}'}},
        }
    ],
}


def templated_world() -> tuple[World, FakeTemplates]:
    ref = {"templateName": "errors", "args": [{"name": "rev", "value": "{{canaryRevision}}"}]}
    body = rollout_body(analysis={"interval": "10s", "templates": [ref]})
    w = world(body)
    templates = FakeTemplates()
    w.ports.templates = templates
    return w, templates


def test_a_template_metric_is_measured_with_its_args() -> None:
    w, templates = templated_world()
    templates.specs[ERRORS] = ERRORS_TEMPLATE
    healthy(w)
    assert (NAMESPACE, ERRORS) in templates.reads
    w.cluster.edit_image("demo:2")
    new = revision("demo:2")
    w.settle(lambda r: w.status.get("phase") == "Healthy" and w.status["stableRevision"] == new)
    # The arg's value ({{canaryRevision}}) was rendered at measurement like any placeholder.
    assert w.provider().queries == [f'error_ratio{{revision="{new}"}}'] * 2
    assert "InvalidSpec" not in w.cluster.reasons


def test_a_missing_template_is_invalid_until_it_exists() -> None:
    w, templates = templated_world()
    result = w.run()
    assert w.workloads.writes == 0
    assert conditions(w)["InvalidSpec"] == "True"
    assert "AnalysisTemplate errors not found in the namespace" in w.status["message"]
    assert w.cluster.reasons == ["InvalidSpec"]
    assert result.requeue_after == TEMPLATE_RECHECK_SECONDS
    templates.specs[ERRORS] = ERRORS_TEMPLATE
    healthy(w)
    assert conditions(w)["InvalidSpec"] == "False"
    assert "SpecCorrected" in w.cluster.reasons


def test_an_arg_the_template_does_not_declare_is_invalid() -> None:
    w, templates = templated_world()
    templates.specs[ERRORS] = {**ERRORS_TEMPLATE, "args": [{"name": "limit"}]}
    result = w.run()
    assert conditions(w)["InvalidSpec"] == "True"
    assert "AnalysisTemplate errors has no arg 'rev'" in w.status["message"]
    assert result.requeue_after is None


def test_a_template_resolution_runs_off_the_event_loop_and_is_bounded() -> None:
    import asyncio  # noqa: PLC0415 - only this test drives a coroutine itself
    import threading  # noqa: PLC0415
    import time  # noqa: PLC0415

    loop_thread = threading.get_ident()
    seen: list[int] = []

    def slow(spec: str, reads: Any) -> tuple[str, list[str]]:
        seen.append(threading.get_ident())
        time.sleep(0.5)
        return spec, []

    class Log:
        def error(self, *args: object, **kwargs: object) -> None:
            pass

    spec, errors = asyncio.run(resolved(slow, "spec", {}, log=Log(), timeout=0.05))
    assert spec == "spec"
    assert errors == [RESOLUTION_TIMED_OUT.format(seconds=0.05)]
    assert seen
    assert seen[0] != loop_thread
