"""The kernel's post-promotion watch (:mod:`rollwise.core.postpromotion`): what it measures,
how measurements move each KPI, templates with the watch's placeholders, and a status that
survives a restart (its wire form read back)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rollwise.core.decision_evidence import Action
from rollwise.core.observations import Measurement, TemplateKey
from rollwise.core.postpromotion import (
    LONG,
    PREVIOUS,
    SHORT,
    EpisodeReasons,
    PostPromotionStatus,
    WatchPhase,
    confirmed_reasons,
    episode_events,
    evaluate,
    key,
    resolved_metrics,
    start,
    validate,
    watch_metrics,
    watch_problems,
    watch_queries,
)
from rollwise.core.reasons import EventType, Reason
from rollwise.core.regression import KpiState, Standing
from rollwise.core.spec import DecisionMode, Metric, PostPromotion, RegressionAction, RolloutSpec
from rollwise.core.templates import resolve_rollout
from tests.unit.core.rollout_builders import raw_spec

T0 = datetime(2026, 3, 1, tzinfo=UTC)
QUERY = 'sum(rate(errors{rev="{{revision}}",ns="{{namespace}}"}[{{window}}]))'


def metric(name: str = "error-ratio", query: str = QUERY) -> dict[str, Any]:
    return {
        "name": name,
        "successCondition": "result < 0.05",
        "provider": {"prometheus": {"query": query}},
    }


def watch_spec(**fields: Any) -> PostPromotion:
    base: dict[str, Any] = {
        "duration": "100s",
        "interval": "10s",
        "windows": {"short": "1m", "long": "1h"},
        "confirmAfter": 3,
        "clearAfter": 2,
        "metrics": [metric()],
    }
    return PostPromotion.model_validate({**base, **fields})


def begun(watch: PostPromotion) -> PostPromotionStatus:
    status = start(watch, watch.metrics, revision="new", previous="old", now=T0)
    measured = {key("error-ratio", PREVIOUS): Measurement(0.01, T0)}
    return evaluate(watch, watch.metrics, status, measured, T0).status


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def values(short: float | None, long: float | None, when: datetime) -> dict[str, Measurement]:
    return {
        key("error-ratio", SHORT): Measurement(short, when),
        key("error-ratio", LONG): Measurement(long, when),
    }


def test_queries_render_the_window_and_the_revision() -> None:
    watch = watch_spec()
    status = start(watch, watch.metrics, revision="new", previous="old", now=T0)
    (previous,) = watch_queries(watch, watch.metrics, status, T0)
    assert previous.name == "error-ratio@previous"
    assert previous.provider.prometheus is not None
    # The other placeholders are left to the measuring that renders every query.
    assert previous.provider.prometheus.query == (
        'sum(rate(errors{rev="old",ns="{{namespace}}"}[3600s]))'
    )
    status = begun(watch)
    assert watch_queries(watch, watch.metrics, status, at(5)) == []  # not due yet
    queries = watch_queries(watch, watch.metrics, status, at(10))
    shown = {m.name: m.provider.prometheus.query for m in queries if m.provider.prometheus}
    assert shown == {
        "error-ratio@short": 'sum(rate(errors{rev="new",ns="{{namespace}}"}[60s]))',
        "error-ratio@long": 'sum(rate(errors{rev="new",ns="{{namespace}}"}[3600s]))',
    }


def test_a_pass_without_measurements_changes_nothing() -> None:
    watch = watch_spec()
    status = start(watch, watch.metrics, revision="new", previous="old", now=T0)
    assert evaluate(watch, watch.metrics, status, {}, T0).status == status
    status = begun(watch)
    assert evaluate(watch, watch.metrics, status, {}, at(10)).status == status


def test_windows_agreeing_confirm_at_once() -> None:
    watch = watch_spec(confirmWhenWindowsAgree=True)
    outcome = evaluate(watch, watch.metrics, begun(watch), values(0.2, 0.1, at(10)), at(10))
    (record,) = outcome.status.kpis
    assert record.state is KpiState.CONFIRMED
    assert outcome.action is RegressionAction.ROLLBACK
    assert outcome.status.phase is WatchPhase.REGRESSED
    assert outcome.status.ended_at == at(10)  # a rollback ends the watch


def test_only_the_short_window_failing_detects_without_agreement() -> None:
    watch = watch_spec(confirmWhenWindowsAgree=True)
    outcome = evaluate(watch, watch.metrics, begun(watch), values(0.2, 0.01, at(10)), at(10))
    (record,) = outcome.status.kpis
    assert record.state is KpiState.DETECTED
    assert outcome.action is None
    assert (record.value, record.windows.short, record.windows.long) == (0.01, 0.2, 0.01)


def test_values_deltas_and_standing() -> None:
    watch = watch_spec(kpis=[{"metric": "error-ratio", "target": 0.02}], attentionBand=0.5)
    status = begun(watch)
    status = evaluate(watch, watch.metrics, status, values(0.02, 0.025, at(10)), at(10)).status
    (record,) = status.kpis
    assert record.previous == 0.01
    assert record.delta == pytest.approx(0.015)
    assert record.relative_delta == pytest.approx(1.5)
    assert record.status is Standing.OFF_TRACK  # past the 0.02 target, though its check passes
    assert record.state is KpiState.OK


def test_inside_the_attention_band_an_episode_does_not_clear() -> None:
    watch = watch_spec(kpis=[{"metric": "error-ratio", "target": 0.05}], attentionBand=0.5)
    status = begun(watch)
    status = evaluate(watch, watch.metrics, status, values(0.3, 0.3, at(10)), at(10)).status
    assert status.kpis[0].state is KpiState.DETECTED
    # Passing (below 0.05) within the band of the 0.05 target: attention, neither good nor bad.
    for t in (20, 30, 40):
        status = evaluate(watch, watch.metrics, status, values(0.045, 0.045, at(t)), at(t)).status
    assert status.kpis[0].state is KpiState.DETECTED
    for t in (50, 60):
        status = evaluate(watch, watch.metrics, status, values(0.01, 0.01, at(t)), at(t)).status
    assert status.kpis[0].state is KpiState.CLEARED


def test_the_watch_ends_at_its_duration() -> None:
    watch = watch_spec()
    status = begun(watch)
    for t in range(10, 100, 10):
        status = evaluate(watch, watch.metrics, status, values(0.01, 0.01, at(t)), at(t)).status
    assert watch_queries(watch, watch.metrics, status, at(100)) == []
    outcome = evaluate(watch, watch.metrics, status, {}, at(100))
    assert outcome.ended
    assert outcome.status.phase is WatchPhase.PASSED
    assert evaluate(watch, watch.metrics, outcome.status, {}, at(200)).status == outcome.status


def test_status_survives_a_restart() -> None:
    watch = watch_spec()
    status = begun(watch)
    status = evaluate(watch, watch.metrics, status, values(0.3, 0.3, at(10)), at(10)).status
    wire = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert wire["kpis"][0]["previous"] == 0.01
    assert wire["previousRevision"] == "old"
    read = PostPromotionStatus.model_validate(wire)
    assert read == status


def test_templates_may_use_the_watch_placeholders_a_canary_may_not() -> None:
    ref = TemplateKey(cluster_scope=False, name="errors")
    reads = {ref: {"metrics": [metric()]}}
    watch = watch_spec(metrics=[], templates=[{"templateName": "errors"}])
    metrics, problems = watch_metrics("spec.strategy.canary", watch, reads)
    assert problems == []
    assert [m.name for m in metrics] == ["error-ratio"]
    assert validate("spec.strategy.canary", watch, metrics) == []
    # The same template in a canary's analysis: {{window}} and {{revision}} are unknown there.
    raw = raw_spec(analysis={"templates": [{"templateName": "errors"}]})
    _, errors = resolve_rollout(RolloutSpec.model_validate(raw), reads)
    assert any("unknown placeholder {{revision}}" in e for e in errors), errors


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param(
            {"metrics": [{"name": "p", "compare": {"query": "q"}}]},
            "postPromotion watches threshold metrics",
            id="compare",
        ),
        pytest.param(
            {"metrics": [metric(query="up{x='{{nope}}'}")]},
            "unknown placeholder {{nope}}",
            id="placeholder",
        ),
        pytest.param({"interval": "0s"}, "must be greater than 0", id="zero-interval"),
    ],
)
def test_validation(fields: dict[str, Any], message: str) -> None:
    watch = watch_spec(**fields)
    problems = validate("spec.strategy.canary", watch, watch.metrics)
    assert any(message in p for p in problems), problems


def test_metric_names_are_not_changed_for_the_spec() -> None:
    watch = watch_spec()
    assert [m.name for m in watch.metrics] == ["error-ratio"]
    assert isinstance(watch.metrics[0], Metric)


def _reason(name: str) -> Reason:
    return Reason(name, EventType.WARNING, name, "{code}")


EPISODE = EpisodeReasons(
    detected=_reason("Detected"), confirmed=_reason("Confirmed"), cleared=_reason("Cleared")
)


def _episode(watch: PostPromotion, series: list[float]) -> list[tuple[str, dict[str, object]]]:
    """The episode events of ``series`` (short and long window alike), one per 10 s."""
    status, events = begun(watch), []
    for i, value in enumerate(series, start=1):
        outcome = evaluate(
            watch, watch.metrics, status, values(value, value, at(10 * i)), at(10 * i)
        )
        status = outcome.status
        for reason, fields in episode_events(EPISODE, {"revision": "new"}, watch, outcome.changes):
            events.append((reason.name, fields))
    return events


@pytest.mark.parametrize(
    ("on_regression", "series", "expected"),
    [
        pytest.param(
            {},
            [0.3, 0.3, 0.3, 0.3],
            [("Detected", None), ("Confirmed", "rollback")],
            id="confirmed-once-rollback",
        ),
        pytest.param(
            {"critical": "alert"},
            [0.3, 0.3, 0.3, 0.01, 0.01, 0.3],
            [
                ("Detected", None),
                ("Confirmed", "alert"),
                ("Cleared", "recovered"),
                ("Detected", None),
            ],
            id="alert-recovers-then-a-new-episode",
        ),
        pytest.param(
            {},
            [0.3, 0.01, 0.01, 0.01],
            [("Detected", None), ("Cleared", "false positive")],
            id="blip-false-positive",
        ),
        pytest.param({}, [0.01, 0.01], [], id="healthy-nothing"),
    ],
)
def test_episode_events_one_per_transition(
    on_regression: dict[str, str], series: list[float], expected: list[tuple[str, str | None]]
) -> None:
    watch = watch_spec(onRegression=on_regression) if on_regression else watch_spec()
    events = _episode(watch, series)
    seen = [(name, fields.get("action", fields.get("how"))) for name, fields in events]
    assert seen == expected
    for _, fields in events:
        assert fields["revision"] == "new"
        assert fields["code"] == "error_rate_regression"
        assert str(fields["detail"]).startswith("error-ratio = ")


def test_the_confirmed_evaluation_carries_the_decision() -> None:
    watch = watch_spec(confirmWhenWindowsAgree=True)
    status = begun(watch)
    detected = evaluate(watch, watch.metrics, status, values(0.2, 0.01, at(10)), at(10))
    assert not detected.confirmed
    assert detected.decision(DecisionMode.AUTO, at(10)) is None
    confirmed = evaluate(watch, watch.metrics, detected.status, values(0.2, 0.2, at(20)), at(20))
    assert confirmed.confirmed
    decision = confirmed.decision(DecisionMode.AUTO, at(20))
    assert decision is not None
    assert decision.action is Action.ROLLBACK
    assert decision.decided_at == at(20)
    assert confirmed_reasons(confirmed.status) == "error_rate_regression"
    assert confirmed_reasons(status) == "regression"


def test_problems_and_metrics_of_a_watch_or_none() -> None:
    watch = watch_spec(windows={"short": "2h", "long": "1h"})
    assert watch_problems("spec.strategy.canary", None, {}) == []
    assert resolved_metrics("spec.strategy.canary", None, {}) == []
    (problem,) = watch_problems("spec.strategy.canary", watch, {})
    assert problem.startswith("spec.strategy.canary.postPromotion.windows:")
    assert [m.name for m in resolved_metrics("spec.strategy.canary", watch, {})] == ["error-ratio"]
    missing = watch_spec(templates=[{"templateName": "absent"}])
    assert resolved_metrics("spec.strategy.canary", missing, {}) == []
    assert watch_problems("spec.strategy.canary", missing, {})
