"""The ModelRelease's post-promotion watch, state in and state out: Production starts it
against the version the alias pointed at before, a confirmed critical regression flips the
alias back and moves the serving traffic back (RolledBack), a blip is one detection and one
false positive, ``alert`` only alerts, ``hold`` keeps the slot, and bad input is refused."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest

from rollwise.core.conditions import ConditionStatus
from rollwise.core.decision_evidence import Action
from rollwise.core.modelrelease.actions import (
    FlipAlias,
    ReleaseDecision,
    RemoveCanaryTrafficPercent,
    RevertChildRollout,
    SetPredictorStorageUri,
)
from rollwise.core.modelrelease.observations import ChildRolloutState
from rollwise.core.modelrelease.release import decide_release
from rollwise.core.modelrelease.spec import child_revision
from rollwise.core.modelrelease.status import (
    ModelReleaseStatus,
    ReleaseConditionType,
    ReleasePhase,
    Stage,
)
from rollwise.core.modelrelease.watch import regression_holds, watch_due
from rollwise.core.observations import TemplateKey, TemplateRead
from rollwise.core.phases import Phase
from rollwise.core.postpromotion import (
    Counted,
    PostPromotionStatus,
    WatchPhase,
    counted,
    key,
    start,
    watch_metrics,
)
from rollwise.core.regression import KpiState
from rollwise.core.spec import RegressionAction
from rollwise.core.spec_release import ModelReleaseSpec
from rollwise.core.templates import release_template_keys
from tests.unit.core.modelrelease_builders import (
    NEW_URI,
    OLD_URI,
    World,
    approvals,
    at,
    drive_release,
    events,
    raw_release,
    server_template,
)
from tests.unit.core.rollout_builders import value

QUERY = 'sum(rate(model_errors{version="{{revision}}"}[{{window}}]))'


def watched(backend: str = "template", **watch: Any) -> ModelReleaseSpec:
    raw = raw_release(backend=backend)
    raw["canary"]["postPromotion"] = {
        "duration": "60s",
        "interval": "5s",
        "windows": {"short": "5s", "long": "30s"},
        "confirmAfter": 2,
        "clearAfter": 2,
        "metrics": [
            {
                "name": "error-rate",
                "successCondition": "result < 0.05",
                "provider": {"prometheus": {"query": QUERY}},
            }
        ],
        **watch,
    }
    return ModelReleaseSpec.model_validate(raw)


def healthy_child(spec: ModelReleaseSpec) -> ChildRolloutState:
    return ChildRolloutState(
        phase=Phase.HEALTHY, stable_revision=child_revision(spec), template=server_template()
    )


def in_production(
    **watch: Any,
) -> tuple[ModelReleaseSpec, ModelReleaseStatus, World, ReleaseDecision]:
    """Version 7 (template served) promoted over version 6: the pass that reads the alias
    back on 7 starts the watch."""
    world = World()
    world.seed_child(server_template())
    spec = watched(**watch)
    status = decide_release(spec, None, world.observe(gates=()), at(0)).status
    status = decide_release(spec, status, world.observe(), at(10)).status
    child = healthy_child(spec)
    status = decide_release(spec, status, world.observe(child=child), at(20)).status
    obs = world.observe(child=child, approvals=approvals())
    status = decide_release(spec, status, obs, at(30)).status
    assert status.stage is Stage.APPROVED
    world.alias_version, world.alias_uri = "7", NEW_URI
    decision = decide_release(
        spec, status, world.observe(child=child, approvals=approvals()), at(40)
    )
    assert decision.status.stage is Stage.PRODUCTION
    return spec, decision.status, world, decision


def watch(status: ModelReleaseStatus) -> PostPromotionStatus:
    assert status.post_promotion is not None
    return status.post_promotion


def step(
    spec: ModelReleaseSpec,
    status: ModelReleaseStatus,
    world: World,
    now: datetime,
    values: dict[str, float | None],
) -> tuple[ModelReleaseStatus, list[str], ReleaseDecision]:
    """One pass measuring what the watch asked for (as the runtime does)."""
    due = {m.name for m in watch_due(spec, status, {}, now)}
    measurements = {name: value(v, now) for name, v in values.items() if name in due}
    obs = world.observe(child=healthy_child(spec), approvals=approvals())
    decision = decide_release(spec, status, replace(obs, measurements=measurements), now)
    return decision.status, events(decision), decision


def captured(**watch_kw: Any) -> tuple[ModelReleaseSpec, ModelReleaseStatus, World]:
    spec, status, world, _ = in_production(**watch_kw)
    status, _, _ = step(spec, status, world, at(40), {key("error-rate", "previous"): 0.01})
    assert watch(status).previous_captured
    assert watch(status).kpis[0].previous == 0.01
    return spec, status, world


def bad(v: float) -> dict[str, float | None]:
    return {key("error-rate", "short"): v, key("error-rate", "long"): v}


def test_production_starts_the_watch_against_the_previous_version() -> None:
    spec, status, _, decision = in_production()
    assert "PostPromotionWatchStarted" in events(decision)
    pp = watch(status)
    assert (pp.phase, pp.revision, pp.previous_revision) == (WatchPhase.WATCHING, "7", "6")
    assert pp.kpis[0].reason == "error_rate_regression"
    assert decision.requeue_after == 0.0
    # The previous version's value first, over the long window, with its version.
    due = watch_due(spec, status, {}, at(40))
    assert [m.name for m in due] == ["error-rate@previous"]
    query = due[0].provider.prometheus.query if due[0].provider.prometheus else ""
    assert query == 'sum(rate(model_errors{version="6"}[30s]))'


def test_confirmed_critical_regression_flips_the_alias_back_and_the_traffic() -> None:
    spec, status, world = captured()
    status, seen, _ = step(spec, status, world, at(45), bad(0.3))
    assert seen == ["RegressionDetected"]
    status, seen, decision = step(spec, status, world, at(50), bad(0.3))
    assert seen == ["RegressionConfirmed", "RegressionRollback", "ReleaseRolledBack"]
    assert status.stage is Stage.ROLLED_BACK
    assert status.phase is ReleasePhase.DEGRADED
    assert watch(status).action is RegressionAction.ROLLBACK
    assert watch(status).phase is WatchPhase.REGRESSED
    assert status.decision is not None
    assert status.decision.action is Action.ROLLBACK
    # The release's own rollback: the child back to the template that served before, the
    # alias flipped back to 6 (expected to still read 7), verified by read-back.
    assert [type(a) for a in decision.actions] == [RevertChildRollout, FlipAlias]
    assert decision.actions[1] == FlipAlias("fraud", "production", "6", OLD_URI, None, "7")
    assert "restoring alias production to 6" in status.message
    assert watch_due(spec, status, {}, at(60)) == []
    # The alias reads back 6: restored, once.
    world.alias_version, world.alias_uri = "6", OLD_URI
    status, seen, decision = step(spec, status, world, at(55), {})
    assert seen == ["AliasRestored"]
    assert status.alias is not None
    assert status.alias.restored
    degraded = status.condition(ReleaseConditionType.DEGRADED)
    assert degraded is not None
    assert degraded.reason == "RolledBack"
    again = decide_release(spec, status, world.observe(child=healthy_child(spec)), at(56))
    assert again.events == ()
    assert again.status.post_promotion == status.post_promotion


def test_kserve_rollback_restores_the_previous_storage_uri() -> None:
    world = World()
    spec = watched(backend="kserve")
    status, _, _ = drive_release(spec, None, world, at(0), passes=40, approvals=approvals())
    assert status is not None
    assert status.stage is Stage.PRODUCTION, status.message
    assert status.post_promotion is not None
    status, _, _ = step(spec, status, world, at(1), {key("error-rate", "previous"): 0.01})
    status, _, _ = step(spec, status, world, at(6), bad(0.3))
    status, seen, decision = step(spec, status, world, at(11), bad(0.3))
    assert "RegressionRollback" in seen
    assert status.stage is Stage.ROLLED_BACK
    assert RemoveCanaryTrafficPercent(spec.serving.inference_service_ref.name) in decision.actions  # type: ignore[union-attr]
    uris = [a.uri for a in decision.actions if isinstance(a, SetPredictorStorageUri)]
    assert uris == [OLD_URI]
    assert [a.version for a in decision.actions if isinstance(a, FlipAlias)] == ["6"]


def test_blip_is_one_detection_and_one_false_positive() -> None:
    spec, status, world = captured()
    all_seen: list[str] = []
    found: list[str] = []
    for t, v in ((45, 0.3), (50, 0.01), (55, 0.01), (60, 0.01), (65, 0.01)):
        before = status
        status, seen, _ = step(spec, status, world, at(t), bad(v))
        all_seen += seen
        found += [c.value for c, _ in counted(watch(before), watch(status))]
    assert all_seen.count("RegressionDetected") == 1
    assert all_seen.count("RegressionCleared") == 1
    assert "RegressionConfirmed" not in all_seen
    assert status.stage is Stage.PRODUCTION
    assert status.phase is ReleasePhase.HEALTHY
    record = watch(status).kpis[0]
    assert (record.state, record.episodes, record.confirmed) == (KpiState.CLEARED, 1, False)
    assert found == [Counted.DETECTED.value, Counted.FALSE_POSITIVE.value]


def test_flapping_inside_the_episode_never_fires_twice() -> None:
    spec, status, world = captured(confirmAfter=3, clearAfter=3)
    all_seen: list[str] = []
    for i, v in enumerate((0.3, 0.01, 0.3, 0.01, 0.3, 0.01)):
        status, seen, _ = step(spec, status, world, at(45 + 5 * i), bad(v))
        all_seen += seen
    assert all_seen == ["RegressionDetected"]
    assert watch(status).kpis[0].episodes == 1


def test_alert_only_alerts() -> None:
    spec, status, world = captured(onRegression={"critical": "alert"})
    all_seen: list[str] = []
    for t in (45, 50, 55, 60):
        status, seen, decision = step(spec, status, world, at(t), bad(0.3))
        all_seen += seen
        assert not any(isinstance(a, FlipAlias) for a in decision.actions)
    assert all_seen == ["RegressionDetected", "RegressionConfirmed"]
    assert status.stage is Stage.PRODUCTION
    assert status.phase is ReleasePhase.HEALTHY
    assert watch(status).action is RegressionAction.ALERT
    assert status.decision is not None
    assert status.decision.action is Action.HOLD
    assert not regression_holds(status)


def test_hold_keeps_the_slot_until_the_regression_clears() -> None:
    spec, status, world = captured(onRegression={"critical": "hold"})
    for t in (45, 50):
        status, _, _ = step(spec, status, world, at(t), bad(0.3))
    assert watch(status).action is RegressionAction.HOLD
    assert status.stage is Stage.PRODUCTION
    assert regression_holds(status)
    assert "action hold" in status.message
    for t in (55, 60):
        status, _, _ = step(spec, status, world, at(t), bad(0.01))
    assert watch(status).kpis[0].state is KpiState.CLEARED
    assert not regression_holds(status)


def test_watch_ends_after_its_duration() -> None:
    spec, status, world = captured()
    status, seen, _ = step(spec, status, world, at(100), {})
    assert seen == ["PostPromotionPassed"]
    assert watch(status).phase is WatchPhase.PASSED
    assert watch_due(spec, status, {}, at(200)) == []


def test_superseded_release_stops_watching() -> None:
    spec, status, world = captured()
    world.alias_version = "8"
    status, seen, _ = step(spec, status, world, at(45), bad(0.3))
    assert seen == ["PostPromotionPassed"]
    assert watch(status).ended_at is not None
    assert watch_due(spec, status, {}, at(50)) == []


def test_first_release_has_nothing_to_roll_back_to() -> None:
    world = World(alias_version=None)
    world.seed_child(server_template())
    spec = watched()
    status, _, _ = drive_release(spec, None, world, at(0), passes=40, approvals=approvals())
    assert status is not None
    assert status.stage is Stage.PRODUCTION, status.message
    pp = watch(status)
    assert pp.previous_captured
    assert pp.previous_revision == ""
    status, _, _ = step(spec, status, world, at(5), bad(0.3))
    status, seen, decision = step(spec, status, world, at(10), bad(0.3))
    assert "RegressionRollbackUnavailable" in seen
    assert status.stage is Stage.PRODUCTION
    assert not any(isinstance(a, FlipAlias) for a in decision.actions)


@pytest.mark.parametrize(
    ("watch_kw", "message"),
    [
        pytest.param(
            {"windows": {"short": "1h", "long": "5m"}},
            "windows.short must not be longer",
            id="short-longer-than-long",
        ),
        pytest.param(
            {"kpis": [{"metric": "latency"}]},
            "names a metric the watch does not have",
            id="kpi-names-no-metric",
        ),
        pytest.param(
            {
                "metrics": [
                    {
                        "name": "error-rate",
                        "successCondition": "result < 0.05",
                        "provider": {"prometheus": {"query": "sum(x{v='{{nope}}'})"}},
                    }
                ]
            },
            "nope",
            id="unknown-placeholder",
        ),
    ],
)
def test_bad_watch_is_refused_and_changes_nothing(watch_kw: dict[str, Any], message: str) -> None:
    world = World()
    spec = watched(**watch_kw)
    decision = decide_release(spec, None, world.observe(), at(0))
    assert decision.actions == ()
    assert decision.status.phase is ReleasePhase.DEGRADED
    invalid = decision.status.condition(ReleaseConditionType.INVALID_SPEC)
    assert invalid is not None
    assert message in invalid.message
    assert events(decision) == ["InvalidSpec"]


WATCH_TEMPLATE = TemplateKey(cluster_scope=False, name="model-errors")


def template_watched() -> ModelReleaseSpec:
    """A template-served release whose watch takes its metric from an AnalysisTemplate."""
    raw = watched(metrics=[]).model_dump(by_alias=True, exclude_none=True)
    raw["canary"]["postPromotion"]["templates"] = [
        {"templateName": "model-errors", "args": [{"name": "model", "value": "fraud"}]}
    ]
    return ModelReleaseSpec.model_validate(raw)


def model_errors_template() -> dict[str, Any]:
    return {
        "args": [{"name": "model"}],
        "metrics": [
            {
                "name": "error-rate",
                "successCondition": "result < 0.05",
                "provider": {
                    "prometheus": {
                        "query": (
                            'sum(rate(errors{model="{{args.model}}",version="{{revision}}"}'
                            "[{{window}}]))"
                        )
                    }
                },
            }
        ],
    }


def test_watch_templates_are_read_for_a_template_served_release() -> None:
    spec = template_watched()
    # The child Rollout resolves the canary's templates; the release reads its watch's.
    assert release_template_keys(spec) == (WATCH_TEMPLATE,)
    world = World()
    missing = decide_release(spec, None, world.observe(templates={WATCH_TEMPLATE: None}), at(0))
    assert missing.actions == ()
    invalid = missing.status.condition(ReleaseConditionType.INVALID_SPEC)
    assert invalid is not None
    assert "model-errors" in invalid.message
    # Looked at again: the template may be created any moment.
    assert missing.requeue_after is not None
    reads: dict[TemplateKey, TemplateRead | None] = {WATCH_TEMPLATE: model_errors_template()}
    found = decide_release(spec, None, world.observe(templates=reads), at(0))
    # The gates pass in this world: the valid release goes on to Staging.
    assert found.status.stage is Stage.STAGING
    valid = found.status.condition(ReleaseConditionType.INVALID_SPEC)
    assert valid is not None
    assert valid.status is ConditionStatus.FALSE
    assert "InvalidSpec" not in events(found)
    # In Production the watch measures the template's metric, its args and placeholders
    # filled in (the previous version's value first).
    watch = spec.canary.post_promotion
    assert watch is not None
    metrics, problems = watch_metrics("spec.canary", watch, reads)
    assert problems == []
    pp = start(watch, metrics, revision="7", previous="6", now=at(0))
    status = found.status.model_copy(update={"stage": Stage.PRODUCTION, "post_promotion": pp})
    due = watch_due(spec, status, reads, at(0))
    assert [m.name for m in due] == ["error-rate@previous"]
    query = due[0].provider.prometheus.query if due[0].provider.prometheus else ""
    assert query == 'sum(rate(errors{model="fraud",version="6"}[30s]))'
