"""The plugin's views: ``render_rollout`` and the list tables, as tables of named states."""

from __future__ import annotations

from typing import Any

import pytest

from rollwise.cli.render import (
    ASCII,
    UNICODE,
    ActualWeight,
    age,
    human_duration,
    render_rollout,
    render_rollout_table,
    threshold_text,
)
from rollwise.core.observations import TemplateKey
from rollwise.core.phases import Phase
from rollwise.core.rollout.status import (
    ActiveHeaderRoute,
    ActiveMirrorRoute,
    ApprovalStatus,
    BaselineStatus,
    BlueGreenStatus,
    GivenApproval,
    PauseReason,
    RolloutStatus,
    WebhookCall,
    WebhookResult,
)
from rollwise.core.spec import Metric
from tests.unit.cli import cli_builders as b


def line_with(text: str, needle: str) -> str:
    """The one line of ``text`` containing ``needle`` (fails when there is none)."""
    found = [line for line in text.splitlines() if needle in line]
    assert found, f"no line with {needle!r} in:\n{text}"
    return found[0]


def cells(line: str) -> list[str]:
    """A table row split on its column gaps (three spaces or more)."""
    return [c.strip() for c in line.strip().split("   ") if c.strip()]


CASES = [
    pytest.param(
        b.rollout(b.canary_at_step_2()),
        b.CANARY_EVENTS,
        ActualWeight(25, "HTTPRoute web"),
        [
            "Phase:       Progressing",
            f"Message:     {b.CANARY_MESSAGE}",
            f"Stable:      {b.STABLE}",
            f"Canary:      {b.CANARY} (step 2/5)",
            "Weight:      25% to the canary (set), 25% actual (HTTPRoute web)",
            "  ✓ 1   setWeight 5% + analysis (error-ratio, p99-latency)",
            "Analysis (step 2/5, revision 9a8b7c6d5e, started 70s ago): RUNNING",
        ],
        {
            "▶ 2": [
                "▶ 2",
                "setWeight 25% + analysis (error-ratio, p99-latency)",
                "analysis running",
            ],
            "error-ratio   0.0": ["error-ratio", "0.012", "< 0.05", "RUNNING (2/3)", "in 20s"],
            "p99-latency   0.2": ["p99-latency", "0.230", "<= 0.500", "RUNNING (1/2)", "in 20s"],
            "(x2)": ["10s (x2)", "Normal", "AnalysisMeasured", b.CANARY_EVENTS[3]["message"]],
        },
        id="canary-at-step-2-with-analysis-values",
    ),
    pytest.param(
        b.rollout(b.paused_step()),
        [],
        ActualWeight(None, "HTTPRoute web", "HTTPRoute shop/web not found"),
        [
            "Phase:       Paused",
            "Weight:      25% to the canary (set), actual unknown "
            "(HTTPRoute web: HTTPRoute shop/web not found)",
            "  ✓ 2   setWeight 25% + analysis (error-ratio, p99-latency)",
            "Events:  <none>",
        ],
        {"▶ 3": ["▶ 3", "pause 2m", "paused, 1m15s left"]},
        id="paused-with-remaining-time",
    ),
    pytest.param(
        b.rollout(b.rolled_back()),
        [
            b.event(
                "RolledBack",
                f"revision {b.CANARY} rolled back to stable {b.STABLE} at step 2/5",
                210,
                "Warning",
            )
        ],
        None,
        [
            "Phase:       Degraded",
            "Canary:      -",
            f"Rolled back: {b.CANARY} (rolled back; kubectl rollwise retry web to try it again)",
            "Steps (no canary in progress):",
            "Last analysis (step 2/5, revision 9a8b7c6d5e, started 5m ago): FAIL",
            f"  {b.FAIL_MESSAGE} (failures 2 > failureLimit 1)",
        ],
        {
            "error-ratio   0.2": ["error-ratio", "0.210", "< 0.05", "FAIL (2/3, 2 failed)"],
            "p99-latency   0.3": ["p99-latency", "0.310", "<= 0.500", "STOPPED (1/2)"],
            "Degraded      True": ["Degraded", "True", "RolledBack", "3m30s"],
            "RolledBack   revision": ["3m30s", "Warning", "RolledBack"],
        },
        id="degraded-after-rollback-with-failing-metric",
    ),
    pytest.param(
        b.rollout(b.healthy()),
        [b.event("Initialized", f"revision {b.STABLE} is stable at 100% (4/4 available)", 7200)],
        None,
        [
            "Phase:       Healthy",
            f"Message:     revision {b.STABLE} is stable at 100% (4/4 available)",
            "Canary:      -",
            "Pods:        4/4 available (spec.replicas 4)",
            "Steps (no canary in progress):",
        ],
        {
            "Ready": ["Ready", "True", "Healthy", "60m"],
            "Initialized": ["120m", "Normal", "Initialized"],
        },
        id="healthy",
    ),
    pytest.param(
        b.rollout(b.invalid()),
        [],
        None,
        [
            "Phase:       Degraded",
            "Invalid spec:",
            "  - spec.strategy.canary.steps[1].setWeight: weights must not decrease",
            "  - spec.selector: selector must match template.metadata.labels",
        ],
        {"InvalidSpec   True": ["InvalidSpec", "True", "InvalidSpec", "30s"]},
        id="invalid-spec-condition",
    ),
    pytest.param(
        b.rollout(None),
        [],
        None,
        [
            "Name:        web",
            "Namespace:   shop",
            "Phase:       <no status yet> (is the Rollwise operator running?)",
            "Steps (no canary in progress):",
            "    5   pause (until promoted)",
            "Events:  <none>",
        ],
        {},
        id="no-status-yet",
    ),
    pytest.param(
        b.rollout(b.canary_at_step_2(), paused=True),
        [],
        None,
        ["Phase:       Progressing (spec.paused: kubectl rollwise resume web)"],
        {
            "▶ 2": [
                "▶ 2",
                "setWeight 25% + analysis (error-ratio, p99-latency)",
                "held by spec.paused (kubectl rollwise resume web)",
            ]
        },
        id="held-by-spec-paused",
    ),
]


@pytest.mark.parametrize(("rollout", "events", "actual", "lines", "rows"), CASES)
def test_render_rollout(
    rollout: dict[str, Any],
    events: list[dict[str, Any]],
    actual: ActualWeight | None,
    lines: list[str],
    rows: dict[str, list[str]],
) -> None:
    text = render_rollout(rollout, events, b.NOW, actual=actual, symbols=UNICODE)
    shown = text.splitlines()
    for expected in lines:
        assert expected in shown, f"missing line {expected!r} in:\n{text}"
    for needle, expected_cells in rows.items():
        row = cells(line_with(text, needle))
        assert row[: len(expected_cells)] == expected_cells, text
    assert text.endswith("\n")
    assert "Traceback" not in text


def test_conditions_do_not_repeat_the_phase_message() -> None:
    text = render_rollout(b.rollout(b.canary_at_step_2()), [], b.NOW)
    assert text.count(b.CANARY_MESSAGE) == 1
    assert cells(line_with(text, "Available   "))[-1] == "5/4 pods available"


def test_events_are_oldest_first_and_capped() -> None:
    events = [b.event(f"Reason{i}", f"message {i}", 1000 - i) for i in range(15)]
    text = render_rollout(b.rollout(b.healthy()), list(reversed(events)), b.NOW)
    shown = [line for line in text.splitlines() if "message " in line]
    assert [cells(line)[-1] for line in shown] == [f"message {i}" for i in range(5, 15)]


def test_events_of_the_same_second_keep_the_order_they_were_stored_in() -> None:
    failed = b.event("AnalysisFailed", "error-ratio failed", 13, type_="Warning")
    rolled = b.event("RolledBack", "rolled back to stable", 13, type_="Warning")
    failed["metadata"]["resourceVersion"] = "99"
    rolled["metadata"]["resourceVersion"] = "100"  # numerically, not textually, after "99"
    text = render_rollout(b.rollout(b.healthy()), [rolled, failed], b.NOW)
    assert text.index("AnalysisFailed") < text.index("RolledBack")


def test_ascii_symbols_mark_the_current_step() -> None:
    text = render_rollout(b.rollout(b.canary_at_step_2()), [], b.NOW, symbols=ASCII)
    assert "setWeight 25%" in line_with(text, "  > 2   ")
    assert "setWeight 5%" in line_with(text, "  + 1   ")
    assert "▶" not in text
    assert "✓" not in text


def test_all_steps_done_is_shown_as_promotion() -> None:
    status = b.canary_at_step_2().model_copy(update={"current_step_index": 5, "analysis": None})
    text = render_rollout(b.rollout(status), [], b.NOW)
    assert cells(line_with(text, "all steps done")) == [
        "▶",
        "all steps done",
        "promoting the canary to stable",
    ]
    assert f"Canary:      {b.CANARY} (step 5/5)" in text.splitlines()


def test_unreadable_status_still_renders() -> None:
    rollout = b.rollout(None)
    rollout["status"] = {"phase": "Sideways", "canaryWeight": "lots"}
    text = render_rollout(rollout, [], b.NOW)
    assert "Phase:       Sideways" in text.splitlines()
    assert line_with(text, "Message:").startswith("Message:     status could not be read (")


def test_unparseable_spec_still_lists_its_steps() -> None:
    rollout = b.rollout(b.invalid(), steps=[{"setWeight": 50}, {"setWeight": 10}])
    rollout["spec"]["strategy"]["canary"]["analysis"]["metrics"][0]["count"] = -1
    text = render_rollout(rollout, [], b.NOW)
    assert cells(line_with(text, "setWeight 10%")) == ["2", "setWeight 10%"]


def test_status_behind_the_spec_says_so() -> None:
    rollout = b.rollout(b.healthy())
    rollout["metadata"]["generation"] = 3
    text = render_rollout(rollout, [], b.NOW)
    assert "status is of generation 2, spec is at 3" in text


def _metric(**rule: Any) -> Metric:
    return Metric.model_validate({"name": "m", "provider": {"prometheus": {"query": "up"}}, **rule})


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        pytest.param({"successCondition": "result < 0.05"}, "< 0.05", id="simple-success"),
        pytest.param(
            {"successCondition": "result >= 0.9 && result <= 1.0"},
            "result >= 0.9 && result <= 1.0",
            id="compound-success-shown-whole",
        ),
        pytest.param({"failureCondition": "result > 0.1"}, "fail if > 0.1", id="failure-only"),
        pytest.param({"thresholdRange": {"max": 0.5}}, "<= 0.500", id="range-max"),
        pytest.param({"thresholdRange": {"min": 10}}, ">= 10.000", id="range-min"),
        pytest.param({"thresholdRange": {"min": 0.1, "max": 2}}, "[0.100, 2.000]", id="range-both"),
        pytest.param(
            {"successCondition": "result < 1", "failureCondition": "result > 5"},
            "< 1; fail if > 5",
            id="success-and-failure",
        ),
        pytest.param({}, "(no rule)", id="no-rule"),
        pytest.param(
            {
                "successCondition": "result < 0.05",
                "sampleGuard": {"query": "sum(increase(requests[1m]))", "minSamples": 50},
            },
            "< 0.05; >= 50 samples",
            id="sample-guard",
        ),
    ],
)
def test_threshold_text(rule: dict[str, Any], expected: str) -> None:
    assert threshold_text(_metric(**rule)) == expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        pytest.param(0, "0s", id="zero"),
        pytest.param(-5, "0s", id="clock-skew"),
        pytest.param(119, "119s", id="under-two-minutes"),
        pytest.param(200, "3m20s", id="minutes-and-seconds"),
        pytest.param(600, "10m", id="ten-minutes"),
        pytest.param(4 * 3600 + 120, "4h2m", id="hours-and-minutes"),
        pytest.param(30 * 3600, "30h", id="under-two-days"),
        pytest.param(3 * 86400 + 7200, "3d2h", id="days-and-hours"),
        pytest.param(40 * 86400, "40d", id="days"),
        pytest.param(800 * 86400, "2y", id="years"),
    ],
)
def test_human_duration(seconds: float, expected: str) -> None:
    assert human_duration(seconds) == expected


def test_age_of_unparseable_time() -> None:
    assert age("yesterday", b.NOW) == "<unknown>"
    assert age(b.stamp(90), b.NOW) == "90s"


def test_rollout_table() -> None:
    other = b.rollout(b.healthy())
    other["metadata"].update(name="api", namespace="default")
    items = [b.rollout(b.canary_at_step_2()), other, b.rollout(None, paused=True)]
    items[2]["metadata"]["name"] = "new"
    lines = render_rollout_table(items, b.NOW, all_namespaces=True)
    assert cells(lines[0]) == [
        "NAMESPACE",
        "NAME",
        "PHASE",
        "STEP",
        "WEIGHT",
        "STABLE",
        "CANARY",
        "AGE",
    ]
    assert [cells(line) for line in lines[1:]] == [
        ["default", "api", "Healthy", "-", "-", b.STABLE, "-", "3d"],
        ["shop", "new", "<none> (spec.paused)", "-", "-", "-", "-", "3d"],
        ["shop", "web", "Progressing", "2/5", "25%", b.STABLE, b.CANARY, "3d"],
    ]
    single = render_rollout_table(items[:1], b.NOW, all_namespaces=False)
    assert cells(single[0])[0] == "NAME"


def test_get_shows_the_baseline_beside_the_canary() -> None:
    status = b.canary_at_step_2().model_copy(
        update={
            "baseline": BaselineStatus(
                revision="aaa-baseline",
                stable_revision="aaa",
                weight=25,
                replicas=2,
                available_replicas=1,
            )
        }
    )
    text = render_rollout(b.rollout(status), [], b.NOW)
    assert "Baseline:    aaa-baseline (template of aaa; weight 25%, 1/2 pods available)" in text
    assert "Baseline:" not in render_rollout(b.rollout(b.canary_at_step_2()), [], b.NOW)


def test_get_shows_the_header_routes_in_effect_and_the_steps_that_set_them() -> None:
    status = b.canary_at_step_2().model_copy(
        update={
            "header_routes": [
                ActiveHeaderRoute(name="beta", match=["x-segment exact 'beta'"]),
                ActiveHeaderRoute(
                    name="v2", match=["x-version prefix 'v2'", "x-tier exact 'gold'"]
                ),
            ]
        }
    )
    obj = b.rollout(status)
    obj["spec"]["strategy"]["canary"]["steps"][:0] = [
        {
            "setHeaderRoute": {
                "name": "beta",
                "match": [{"headerName": "x-segment", "headerValue": {"exact": "beta"}}],
            }
        },
        {"setHeaderRoute": {"name": "old"}},
    ]
    text = render_rollout(obj, [], b.NOW)
    assert "Segments:    beta: x-segment exact 'beta' -> canary" in text
    assert "             v2: x-version prefix 'v2' and x-tier exact 'gold' -> canary" in text
    assert "setHeaderRoute beta" in text
    assert "remove header route old" in text
    assert "Segments:" not in render_rollout(b.rollout(b.canary_at_step_2()), [], b.NOW)


def test_get_shows_the_mirror_in_effect_and_the_steps_that_set_it() -> None:
    status = b.canary_at_step_2().model_copy(
        update={"mirror_routes": [ActiveMirrorRoute(name="shadow", percentage=20)]}
    )
    obj = b.rollout(status)
    obj["spec"]["strategy"]["canary"]["steps"][:0] = [
        {"setMirrorRoute": {"name": "shadow", "percentage": 20}},
        {"setMirrorRoute": {"name": "old", "percentage": 0}},
    ]
    text = render_rollout(obj, [], b.NOW)
    assert "Mirror:      shadow: 20% of requests copied to the canary (responses discarded)" in text
    assert "setMirrorRoute shadow 20%" in text
    assert "remove mirror route old" in text
    assert "Mirror:" not in render_rollout(b.rollout(b.canary_at_step_2()), [], b.NOW)


def test_template_metrics_are_shown_with_their_conditions() -> None:
    """A Rollout whose error check comes from an AnalysisTemplate: the view resolves the
    template as the operator does, so the metric's pass condition carries the arg's value."""
    obj = b.rollout(b.canary_at_step_2())
    analysis = obj["spec"]["strategy"]["canary"]["analysis"]
    analysis["metrics"] = [b.p99_metric()]
    analysis["templates"] = [
        {"templateName": "errors", "args": [{"name": "limit", "value": "0.02"}]}
    ]
    metric = b.error_ratio_metric()
    metric["successCondition"] = "result < {{args.limit}}"
    key = TemplateKey(cluster_scope=False, name="errors")
    template = {"args": [{"name": "limit", "required": True}], "metrics": [metric]}
    text = render_rollout(obj, [], b.NOW, symbols=UNICODE, templates={key: template})
    assert cells(line_with(text, "error-ratio  "))[:3] == ["error-ratio", "0.012", "< 0.02"]
    # Without the template (not read, or not found) the spec's inline metrics are all it knows.
    text = render_rollout(obj, [], b.NOW, symbols=UNICODE, templates={key: None})
    assert cells(line_with(text, "error-ratio  "))[2] == "?"


def _waiting_for_upstream() -> dict[str, Any]:
    status = b.healthy().model_copy(
        update={
            "phase": Phase.WAITING,
            "message": f"new revision {b.CANARY} waits for upstream: staging/web has not run "
            f"revision {b.CANARY}",
            "awaiting_upstream": b.CANARY,
        }
    )
    obj = b.rollout(status)
    obj["spec"]["promotion"] = {
        "after": [
            {"namespace": "staging", "rollout": "web", "soak": "30m"},
            {"namespace": "qa", "rollout": "web"},
        ]
    }
    return obj


def test_get_shows_the_upstreams_and_the_revision_waiting_for_them() -> None:
    text = render_rollout(_waiting_for_upstream(), [], b.NOW)
    assert line_with(text, "Phase:").split() == ["Phase:", "Waiting"]
    assert "Upstream:    staging/web (soak 30m), qa/web (soak 0s)" in text
    assert (
        f"Waiting:     revision {b.CANARY} for its upstream Rollouts (past them: kubectl "
        "rollwise override rollout/web --decision promote, confirmed by a second person)"
    ) in text
    plain = render_rollout(b.rollout(b.healthy()), [], b.NOW)
    assert "Upstream:" not in plain
    assert "Waiting:" not in plain


def test_get_shows_since_when_the_stable_revision_is_healthy() -> None:
    status = b.healthy().model_copy(update={"healthy_since": b.ago(600)})
    text = render_rollout(b.rollout(status), [], b.NOW)
    assert f"Healthy:     since {b.stamp(600)}" in text


def test_rollout_table_shows_the_revision_waiting_for_upstream() -> None:
    lines = render_rollout_table([_waiting_for_upstream()], b.NOW, all_namespaces=False)
    assert cells(lines[1]) == ["web", "Waiting", "-", "-", b.STABLE, f"{b.CANARY} (waiting)", "3d"]


def test_get_shows_the_webhooks_and_the_confirmation_a_canary_waits_for() -> None:
    held = WebhookCall(
        name="change-window",
        type="confirm-promotion",
        revision=b.CANARY,
        result=WebhookResult.HELD,
        code=403,
        message="answered 403",
        last_call=b.ago(3),
        calls=2,
    )
    passed = WebhookCall(
        name="load-test",
        type="pre-rollout",
        revision=b.CANARY,
        result=WebhookResult.PASSED,
        code=200,
        last_call=b.ago(300),
        calls=1,
    )
    status = b.canary_at_step_2().model_copy(
        update={"phase": Phase.PAUSED, "webhooks": [passed, held]}
    )
    text = render_rollout(b.rollout(status), [], b.NOW)
    assert (
        f"Webhooks:    load-test (pre-rollout): Passed for {b.CANARY}, answered 200 (1 call, "
        f"last {b.stamp(300)})"
    ) in text
    assert (
        f"             change-window (confirm-promotion): Held for {b.CANARY}, answered 403 "
        f"(2 calls, last {b.stamp(3)})"
    ) in text
    assert (
        f"Waiting:     revision {b.CANARY} for confirm-promotion webhook change-window to answer "
        "2xx (asked again every 5s; kubectl rollwise abort web rolls the canary back)"
    ) in text
    plain = render_rollout(b.rollout(b.canary_at_step_2()), [], b.NOW)
    assert "Webhooks:" not in plain


def test_get_shows_a_new_revision_waiting_for_confirm_rollout() -> None:
    pending = WebhookCall(name="ok", type="confirm-rollout", revision=b.CANARY)
    status = b.healthy().model_copy(update={"phase": Phase.PAUSED, "webhooks": [pending]})
    text = render_rollout(b.rollout(status), [], b.NOW)
    assert (
        f"Webhooks:    ok (confirm-rollout): Pending for {b.CANARY}, not called yet (0 calls)"
        in text
    )
    assert "a template change replaces the revision" in text


def _at_approval(**fields: Any) -> dict[str, Any]:
    approvals = ApprovalStatus(
        step_index=2,
        revision=b.CANARY,
        roles=["product", "security"],
        granted=[GivenApproval(role="product", user="bob", at=b.ago(60))],
        pending=["security"],
        requested_at=b.ago(600),
        deadline=b.ago(-3600),
        template_changed_by="alice",
        **fields,
    )
    status = b.canary_at_step_2().model_copy(
        update={
            "phase": Phase.PAUSED,
            "current_step_index": 2,
            "pause_reason": PauseReason.AWAITING_APPROVAL,
            "message": "step 3/5 (approval): waiting for approval by security (product: bob)",
            "approvals": approvals,
        }
    )
    steps = [
        {"setWeight": 5},
        {"setWeight": 25},
        {"approval": {"roles": ["product", "security"], "timeout": "1h"}},
        {"setWeight": 50},
        {"setWeight": 100},
    ]
    return b.rollout(status, steps=steps)


def test_get_shows_the_pending_approval_and_who_approved() -> None:
    text = render_rollout(
        _at_approval(refused=["alice as security: changed the template"]), [], b.NOW
    )
    assert f"Approval:    step 3, revision {b.CANARY}: product by bob" in text
    assert (
        "             pending: security (kubectl rollwise approve rollout/web --role security)"
        in text
    )
    assert f"             until {b.stamp(-3600)}" in text
    assert "             template changed by alice (may not approve)" in text
    assert "             not counted: alice as security: changed the template" in text
    assert "approval by product, security (timeout 1h)" in text


def test_get_shows_an_approval_that_timed_out() -> None:
    text = render_rollout(_at_approval(timed_out=True), [], b.NOW)
    assert f"             timed out, holding {b.stamp(-3600)}" in text


def test_get_shows_an_approved_step() -> None:
    obj = _at_approval(approved_at=b.ago(30))
    obj["status"]["approvals"]["pending"] = []
    text = render_rollout(obj, [], b.NOW)
    assert (
        f"Approval:    step 3, revision {b.CANARY}: product by bob (approved {b.stamp(30)})" in text
    )
    assert "pending:" not in text


def test_rollout_table_says_a_canary_awaits_approval() -> None:
    lines = render_rollout_table([_at_approval()], b.NOW, all_namespaces=False)
    assert cells(lines[1])[1:3] == ["Paused (awaiting approval)", "3/5"]


def _blue_green(status: RolloutStatus) -> dict[str, Any]:
    obj = b.rollout(status)
    obj["spec"]["strategy"] = {
        "blueGreen": {
            "activeService": "web-active",
            "previewService": "web-preview",
            "autoPromotionEnabled": False,
        }
    }
    return obj


def _awaiting_promotion() -> RolloutStatus:
    return b.healthy().model_copy(
        update={
            "phase": Phase.PAUSED,
            "message": f"preview {b.CANARY} awaits promotion",
            "canary_revision": b.CANARY,
            "current_step_index": 0,
            "pause_reason": PauseReason.AWAITING_PROMOTION,
            "blue_green": BlueGreenStatus(
                active_revision=b.STABLE, preview_revision=b.CANARY, preview_ready_at=b.ago(60)
            ),
        }
    )


def test_get_shows_the_active_and_preview_revisions_and_the_wait() -> None:
    text = render_rollout(_blue_green(_awaiting_promotion()), [], b.NOW)
    assert f"Active:      {b.STABLE} (Service web-active)" in text
    assert f"Preview:     {b.CANARY} (Service web-preview, ready)" in text
    assert (
        "Waiting:     for promotion (kubectl rollwise promote web switches the active Service)"
    ) in text
    assert "Weight:" not in text
    assert "Stable:" not in text


def test_get_shows_the_last_switch_and_the_previous_revision() -> None:
    status = b.healthy().model_copy(
        update={
            "blue_green": BlueGreenStatus(
                active_revision=b.STABLE,
                switched_at=b.ago(10),
                previous_revision=b.CANARY,
                scale_down_at=b.ago(-20),
            )
        }
    )
    text = render_rollout(_blue_green(status), [], b.NOW)
    assert "Preview:     -" in text
    assert f"Switched:    10s ago from {b.CANARY} (still running, removed in 20s)" in text


def test_rollout_table_shows_the_preview_awaiting_promotion() -> None:
    lines = render_rollout_table([_blue_green(_awaiting_promotion())], b.NOW, all_namespaces=False)
    assert cells(lines[1]) == [
        "web",
        "Paused",
        "awaiting promotion",
        "-",
        b.STABLE,
        f"{b.CANARY} (preview)",
        "3d",
    ]


def test_get_shows_the_previous_revision_kept_through_the_post_promotion_analysis() -> None:
    status = b.healthy().model_copy(
        update={
            "phase": Phase.PROGRESSING,
            "canary_revision": b.CANARY,
            "current_step_index": 1,
            "canary_weight": 100,
            "blue_green": BlueGreenStatus(
                active_revision=b.CANARY,
                preview_revision=b.CANARY,
                preview_ready_at=b.ago(60),
                switched_at=b.ago(30),
                previous_revision=b.STABLE,
            ),
        }
    )
    text = render_rollout(_blue_green(status), [], b.NOW)
    assert f"Active:      {b.CANARY} (Service web-active)" in text
    assert f"Previous:    {b.STABLE} (still running: switched back" in text
    assert f"Switched:    30s ago from {b.STABLE}" in text
    assert "removed in" not in text
