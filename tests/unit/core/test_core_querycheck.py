"""Queries checked before traffic (``core.querycheck``) and how ``decide`` uses the check."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from rollwise.core.phases import Phase
from rollwise.core.query_templates import QueryTemplateError
from rollwise.core.querycheck import (
    RECHECK_SECONDS,
    SAMPLE_REVISION,
    SAMPLE_WINDOW,
    QueryCheck,
    QueryRefusal,
    QueryState,
    QueryVerification,
    check_due,
    prometheus_queries,
    queries_digest,
    render_for_check,
    sample_context,
    verification,
)
from rollwise.core.rollout.canary import decide, rollout_metrics
from rollwise.core.rollout.status import ConditionType
from rollwise.core.spec import Metric
from tests.unit.core.rollout_builders import R1, T0, V1, V2, at, metric, obs, raw_spec, spec_of

ANALYSIS = {"interval": "1m", "metrics": [metric()]}


def with_query(query: str) -> dict[str, object]:
    changed = metric()
    changed["provider"] = {"prometheus": {"query": query}}
    return {"interval": "1m", "metrics": [changed]}


FIXED = with_query('sum(rate(errors{rev="{{canaryRevision}}"}[5m]))')
REFUSED = QueryRefusal(
    field="spec.strategy.canary.analysis.metrics[0].provider.prometheus.query",
    message='bad_data: invalid parameter "query": 1:38: parse error: unexpected "["',
)


def digest_of(**kwargs: object) -> str:
    return queries_digest(rollout_metrics(spec_of(**kwargs)))  # type: ignore[arg-type]


def test_the_digest_covers_every_query_and_nothing_else() -> None:
    base = digest_of(analysis=ANALYSIS)
    assert base
    other = {"interval": "1m", "metrics": [metric(count=3)]}
    assert digest_of(analysis=other) == base, "limits are not queries"
    renamed = {"interval": "1m", "metrics": [metric(name="latency")]}
    assert digest_of(analysis=renamed) == base, "the path names the metric, not its name"
    assert digest_of(analysis=FIXED) != base
    steps = [{"setWeight": 5}, {"analysis": {"metrics": [metric(name="p99")]}}]
    assert digest_of(analysis=ANALYSIS, steps=steps) != base
    assert digest_of() == ""


def test_the_digest_covers_the_sample_guard_query() -> None:
    base = digest_of(analysis=ANALYSIS)
    guarded = {"interval": "1m", "metrics": [metric(min_samples=100)]}
    assert digest_of(analysis=guarded) != base, "a new query to check"
    more = {"interval": "1m", "metrics": [metric(min_samples=500)]}
    assert digest_of(analysis=more) == digest_of(analysis=guarded), "minSamples is no query"


@pytest.mark.parametrize(
    ("recorded", "now", "due"),
    [
        pytest.param(None, T0, True, id="never-checked"),
        pytest.param(QueryState.VERIFIED, at(3600), False, id="verified"),
        pytest.param(QueryState.REFUSED, at(3600), False, id="refused-until-the-spec-changes"),
        pytest.param(QueryState.UNVERIFIED, at(RECHECK_SECONDS - 1), False, id="unverified-soon"),
        pytest.param(QueryState.UNVERIFIED, at(RECHECK_SECONDS), True, id="unverified-recheck"),
    ],
)
def test_when_a_check_is_due(recorded: QueryState | None, now: object, due: bool) -> None:
    digest = digest_of(analysis=ANALYSIS)
    record = (
        QueryVerification(digest=digest, state=recorded, checked_at=T0)
        if recorded is not None
        else None
    )
    assert check_due(digest, record, now) is due  # type: ignore[arg-type]
    assert check_due("", record, now) is False  # type: ignore[arg-type]
    if record is not None:
        assert check_due("other", record, now) is True  # type: ignore[arg-type]


def test_a_check_of_other_queries_is_ignored() -> None:
    assert verification("abc", None, QueryCheck(digest="old", refused=(REFUSED,)), T0) is None


def decide_with(check: QueryCheck | None, *, template: dict[str, object] = V1, status=None):  # type: ignore[no-untyped-def]
    spec = raw_spec(analysis=ANALYSIS)
    return decide(spec, status, replace(obs(template), query_check=check), T0)


def test_a_query_the_provider_refuses_makes_a_new_rollout_invalid_before_anything_runs() -> None:
    digest = digest_of(analysis=ANALYSIS)
    decision = decide_with(QueryCheck(digest=digest, refused=(REFUSED,)))
    status = decision.status
    assert decision.actions == ()
    assert status.phase is Phase.DEGRADED
    assert status.is_true(ConditionType.INVALID_SPEC)
    assert [e.reason.name for e in decision.events] == ["InvalidSpec"]
    invalid = status.condition(ConditionType.INVALID_SPEC)
    assert invalid is not None
    assert REFUSED.field in invalid.message
    assert "1:38: parse error" in invalid.message
    queries = status.condition(ConditionType.QUERIES_VERIFIED)
    assert queries is not None
    assert (queries.status.value, queries.reason) == ("False", "QueryRefused")
    # Later passes need no new check: the recorded refusal keeps the spec invalid, silently.
    again = decide(raw_spec(analysis=ANALYSIS), status, obs(V1), at(30))
    assert again.actions == ()
    assert again.events == ()
    assert again.status.is_true(ConditionType.INVALID_SPEC)


def test_fixing_the_query_clears_the_refusal() -> None:
    digest = digest_of(analysis=ANALYSIS)
    refused = decide_with(QueryCheck(digest=digest, refused=(REFUSED,))).status
    fixed_analysis = FIXED
    fixed_digest = digest_of(analysis=fixed_analysis)
    assert fixed_digest != digest
    decision = decide(
        raw_spec(analysis=fixed_analysis),
        refused,
        replace(obs(V1), query_check=QueryCheck(digest=fixed_digest)),
        at(10),
    )
    assert not decision.status.is_true(ConditionType.INVALID_SPEC)
    assert "SpecCorrected" in [e.reason.name for e in decision.events]
    assert decision.actions


def test_an_unreachable_provider_never_blocks_and_the_check_is_retried() -> None:
    digest = digest_of(analysis=ANALYSIS)
    decision = decide_with(QueryCheck(digest=digest, unreachable="connection refused"))
    status = decision.status
    assert decision.actions, "the rollout goes on"
    assert not status.is_true(ConditionType.INVALID_SPEC)
    cond = status.condition(ConditionType.QUERIES_VERIFIED)
    assert cond is not None
    assert (cond.status.value, cond.reason) == ("Unknown", "ProviderUnreachable")
    assert "connection refused" in cond.message
    assert decision.requeue_after is not None
    assert decision.requeue_after <= RECHECK_SECONDS
    assert check_due(digest, status.queries, T0 + timedelta(seconds=RECHECK_SECONDS))


def test_verified_queries_set_the_condition_and_are_not_checked_again() -> None:
    digest = digest_of(analysis=ANALYSIS)
    status = decide_with(QueryCheck(digest=digest)).status
    cond = status.condition(ConditionType.QUERIES_VERIFIED)
    assert cond is not None
    assert (cond.status.value, cond.reason) == ("True", "Verified")
    assert not check_due(digest, status.queries, at(86400))


def test_a_rollout_without_metrics_has_no_queries_condition() -> None:
    decision = decide(raw_spec(), None, obs(V1), T0)
    assert decision.status.condition(ConditionType.QUERIES_VERIFIED) is None
    assert decision.status.queries is None


def test_a_refusal_found_during_a_canary_stops_it_with_no_action() -> None:
    digest = digest_of(analysis=ANALYSIS)
    healthy = decide_with(QueryCheck(digest=digest)).status.model_copy(
        update={"stable_revision": R1}
    )
    decision = decide(
        raw_spec(analysis=ANALYSIS, image_template=V2),
        healthy,
        replace(obs(V2), query_check=QueryCheck(digest=digest, refused=(REFUSED,))),
        at(5),
    )
    assert decision.actions == ()
    assert decision.status.is_true(ConditionType.INVALID_SPEC)


def test_the_sample_context_fills_every_placeholder() -> None:
    assert sample_context("shop", "web", "web-stable", "web-canary") == {
        "namespace": "shop",
        "name": "web",
        "stableRevision": SAMPLE_REVISION,
        "canaryRevision": SAMPLE_REVISION,
        "baselineRevision": SAMPLE_REVISION,
        "stableService": "web-stable",
        "canaryService": "web-canary",
    }


# ------------------------------------------------------- every kind's queries are checked

COMPARE_QUERY = 'sum(rate(errors{revision="{{revision}}"}[1m]))'
BAD_QUERY = 'sum(increase(errors{revision="{{canaryRevision}}"}[{{window}}]))'
TOTAL_QUERY = 'sum(increase(requests{revision="{{canaryRevision}}"}[{{window}}]))'
GOOD_QUERY = 'sum(increase(ok{revision="{{canaryRevision}}"}[{{window}}]))'


def metric_of(**fields: object) -> Metric:
    return Metric.model_validate({"name": "m", **fields})


@pytest.mark.parametrize(
    ("fields", "queries"),
    [
        pytest.param(
            {"successCondition": "result < 1", "provider": {"prometheus": {"query": "up"}}},
            [("provider.prometheus.query", "up")],
            id="threshold",
        ),
        pytest.param(
            {
                "successCondition": "result < 1",
                "provider": {"prometheus": {"query": "up"}},
                "sampleGuard": {"query": "count(up)", "minSamples": 5},
            },
            [("provider.prometheus.query", "up"), ("sampleGuard.query", "count(up)")],
            id="threshold-with-guard",
        ),
        pytest.param(
            {"compare": {"query": COMPARE_QUERY}},
            [("compare.query", COMPARE_QUERY)],
            id="compare",
        ),
        pytest.param(
            {
                "compare": {"query": COMPARE_QUERY},
                "provider": {"prometheus": {"address": "http://p:9090"}},
            },
            [("compare.query", COMPARE_QUERY)],
            id="compare-on-its-own-prometheus",
        ),
        pytest.param(
            {"sloBurnRate": {"objective": 0.99, "badQuery": BAD_QUERY, "totalQuery": TOTAL_QUERY}},
            [("sloBurnRate.totalQuery", TOTAL_QUERY), ("sloBurnRate.badQuery", BAD_QUERY)],
            id="burn-rate-bad",
        ),
        pytest.param(
            {
                "sloBurnRate": {
                    "objective": 0.99,
                    "goodQuery": GOOD_QUERY,
                    "totalQuery": TOTAL_QUERY,
                }
            },
            [("sloBurnRate.totalQuery", TOTAL_QUERY), ("sloBurnRate.goodQuery", GOOD_QUERY)],
            id="burn-rate-good",
        ),
        pytest.param(
            {
                "successCondition": "result < 1",
                "provider": {"web": {"name": "stats", "jsonPath": "$.value"}},
            },
            [],
            id="web-provider-has-no-promql",
        ),
    ],
)
def test_the_queries_of_every_kind(
    fields: dict[str, object], queries: list[tuple[str, str]]
) -> None:
    assert prometheus_queries(metric_of(**fields)) == queries


@pytest.mark.parametrize(
    ("field", "template", "rendered"),
    [
        pytest.param(
            "compare.query",
            COMPARE_QUERY,
            f'sum(rate(errors{{revision="{SAMPLE_REVISION}"}}[1m]))',
            id="compare-revision",
        ),
        pytest.param(
            "sloBurnRate.badQuery",
            BAD_QUERY,
            f'sum(increase(errors{{revision="{SAMPLE_REVISION}"}}[{SAMPLE_WINDOW}]))',
            id="burn-rate-window",
        ),
        pytest.param(
            "provider.prometheus.query",
            'up{namespace="{{namespace}}"}',
            'up{namespace="shop"}',
            id="threshold",
        ),
    ],
)
def test_queries_are_rendered_for_their_check_with_their_kind_s_placeholders(
    field: str, template: str, rendered: str
) -> None:
    assert render_for_check(field, template, sample_context("shop", "web", "s", "c")) == rendered


@pytest.mark.parametrize(
    ("field", "template"),
    [
        pytest.param("compare.query", BAD_QUERY, id="window-in-a-compare-query"),
        pytest.param("sloBurnRate.totalQuery", COMPARE_QUERY, id="revision-in-a-burn-query"),
        pytest.param("provider.prometheus.query", COMPARE_QUERY, id="revision-in-a-threshold"),
    ],
)
def test_a_placeholder_of_another_kind_is_not_rendered(field: str, template: str) -> None:
    with pytest.raises(QueryTemplateError):
        render_for_check(field, template, sample_context("shop", "web", "s", "c"))


def test_the_digest_covers_compare_and_burn_rate_queries() -> None:
    compare = {"interval": "1m", "metrics": [{"name": "c", "compare": {"query": COMPARE_QUERY}}]}
    base = digest_of(analysis=compare)
    assert base, "a compare metric without a provider block is still checked"
    changed = {
        "interval": "1m",
        "metrics": [{"name": "c", "compare": {"query": COMPARE_QUERY.replace("1m", "2m")}}],
    }
    assert digest_of(analysis=changed) != base
    tolerant = {
        "interval": "1m",
        "metrics": [{"name": "c", "compare": {"query": COMPARE_QUERY, "tolerance": 0.5}}],
    }
    assert digest_of(analysis=tolerant) == base, "the rule is no query"
    slo = {"objective": 0.99, "badQuery": BAD_QUERY, "totalQuery": TOTAL_QUERY}
    other_total = {**slo, "totalQuery": TOTAL_QUERY.replace("requests", "calls")}
    floor = {**slo, "minEvents": 5}

    def burn_digest(block: dict[str, object]) -> str:
        return digest_of(
            analysis={"interval": "1m", "metrics": [{"name": "s", "sloBurnRate": block}]}
        )

    assert burn_digest(slo)
    assert burn_digest(other_total) != burn_digest(slo)
    assert burn_digest(floor) == burn_digest(slo), "minEvents is no query"
    assert burn_digest(slo) != base


def test_a_refused_compare_query_makes_the_spec_invalid_before_anything_runs() -> None:
    compare = {"interval": "1m", "metrics": [{"name": "c", "compare": {"query": COMPARE_QUERY}}]}
    digest = digest_of(analysis=compare)
    refusal = QueryRefusal(
        field="spec.strategy.canary.analysis.metrics[0].compare.query",
        message="1:12: parse error: unexpected character",
    )
    decision = decide(
        raw_spec(analysis=compare),
        None,
        replace(obs(V1), query_check=QueryCheck(digest=digest, refused=(refusal,))),
        T0,
    )
    assert decision.actions == ()
    assert decision.status.is_true(ConditionType.INVALID_SPEC)
    queries = decision.status.condition(ConditionType.QUERIES_VERIFIED)
    assert queries is not None
    assert (queries.status.value, queries.reason) == ("False", "QueryRefused")
    assert "analysis.metrics[0].compare.query: the provider refused the query" in queries.message
