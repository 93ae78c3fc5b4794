"""Rollouts in the states the plugin displays, built with the core's own status models so that
their shape is exactly the one the operator writes (``RolloutStatus.to_wire()``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from rollwise.core.conditions import ConditionStatus
from rollwise.core.phases import Phase
from rollwise.core.rollout.status import Condition, ConditionType, PauseReason, RolloutStatus
from rollwise.core.runs import AnalysisRun, MeasurementRecord, MetricRun, Verdict

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
STABLE = "5f1c2d3e4a"
CANARY = "9a8b7c6d5e"


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def stamp(seconds: float) -> str:
    return ago(seconds).strftime("%Y-%m-%dT%H:%M:%SZ")


# The metrics are built anew for every spec: a test may edit the spec it is given, and an edit
# must never leak into the next test through a shared dict.
def error_ratio_metric() -> dict[str, Any]:
    return {
        "name": "error-ratio",
        "successCondition": "result < 0.05",
        "count": 3,
        "provider": {"prometheus": {"query": "sum(rate(errors[1m])) / sum(rate(requests[1m]))"}},
    }


def p99_metric() -> dict[str, Any]:
    return {
        "name": "p99-latency",
        "thresholdRange": {"max": 0.5},
        "count": 2,
        "provider": {"prometheus": {"query": "histogram_quantile(0.99, rate(latency[1m]))"}},
    }


def spec(*, paused: bool = False, steps: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "replicas": 4,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": "web:1.1"}]},
        },
        "strategy": {
            "canary": {
                "stableService": "web-stable",
                "canaryService": "web-canary",
                "trafficRouting": {"gatewayAPI": {"httpRoute": {"name": "web"}}},
                "steps": steps
                if steps is not None
                else [
                    {"setWeight": 5},
                    {"setWeight": 25},
                    {"pause": {"duration": "2m"}},
                    {"setWeight": 50},
                    {"pause": {}},
                ],
                "analysis": {
                    "interval": "30s",
                    "failureLimit": 1,
                    "metrics": [error_ratio_metric(), p99_metric()],
                },
            }
        },
    }
    if paused:
        out["paused"] = True
    return out


def cond(
    type_: ConditionType, status: str, reason: str, message: str = "", since: float = 120
) -> Condition:
    return Condition(
        type=type_,
        status=ConditionStatus(status),
        reason=reason,
        message=message,
        last_transition_time=ago(since),
        observed_generation=2,
    )


def measurement(
    value: float | None, verdict: Verdict, seconds_ago: float, message: str = ""
) -> MeasurementRecord:
    return MeasurementRecord(value=value, verdict=verdict, at=ago(seconds_ago), message=message)


def rollout(status: RolloutStatus | None, **spec_args: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "rollwise.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "generation": 2,
            "resourceVersion": "42",
            "creationTimestamp": stamp(3 * 86400),
        },
        "spec": spec(**spec_args),
    }
    if status is not None:
        obj["status"] = status.to_wire()
    return obj


def progressing_conditions(message: str) -> list[Condition]:
    return [
        cond(ConditionType.READY, "False", "Progressing", message),
        cond(ConditionType.AVAILABLE, "True", "MinimumReplicasAvailable", "5/4 pods available"),
        cond(ConditionType.PROGRESSING, "True", "Progressing", message),
        cond(ConditionType.PAUSED, "False", "NotPaused"),
        cond(ConditionType.DEGRADED, "False", "NotDegraded"),
        cond(ConditionType.INVALID_SPEC, "False", "Valid"),
    ]


CANARY_MESSAGE = (
    "step 2/5 (setWeight 25%): analysis running (error-ratio 2/3 (last 0.012), "
    "p99-latency 1/2 (last 0.230))"
)


def canary_at_step_2() -> RolloutStatus:
    run = AnalysisRun(
        step_index=1,
        revision=CANARY,
        started_at=ago(70),
        metrics=[
            MetricRun(
                name="error-ratio",
                measurements=[
                    measurement(0.009, Verdict.PASS, 40),
                    measurement(0.012, Verdict.PASS, 10),
                ],
                successful=2,
            ),
            MetricRun(
                name="p99-latency",
                measurements=[measurement(0.23, Verdict.PASS, 10)],
                successful=1,
            ),
        ],
    )
    return RolloutStatus(
        phase=Phase.PROGRESSING,
        message=CANARY_MESSAGE,
        observed_generation=2,
        current_step_index=1,
        canary_weight=25,
        stable_revision=STABLE,
        canary_revision=CANARY,
        step_started_at=ago(70),
        analysis=run,
        conditions=progressing_conditions(CANARY_MESSAGE),
        replicas=5,
        available_replicas=5,
    )


def paused_step() -> RolloutStatus:
    message = "step 3/5: paused for 2m, 1m15s left"
    return RolloutStatus(
        phase=Phase.PAUSED,
        message=message,
        observed_generation=2,
        current_step_index=2,
        canary_weight=25,
        stable_revision=STABLE,
        canary_revision=CANARY,
        step_started_at=ago(45),
        pause_started_at=ago(45),
        pause_reason=PauseReason.PAUSE_STEP,
        conditions=[
            cond(ConditionType.READY, "False", "Paused", message),
            cond(ConditionType.PAUSED, "True", "PauseStep", message, since=45),
        ],
        replicas=5,
        available_replicas=5,
    )


FAIL_MESSAGE = "metric error-ratio = 0.210 failed successCondition 'result < 0.05'"


def rolled_back() -> RolloutStatus:
    failure = f"{FAIL_MESSAGE} (failures 2 > failureLimit 1)"
    message = (
        f"revision {CANARY} was rolled back ({failure}); stable {STABLE} serves all traffic; "
        "change the template or set rollwise.dev/retry to try again"
    )
    run = AnalysisRun(
        step_index=1,
        revision=CANARY,
        started_at=ago(300),
        verdict=Verdict.FAIL,
        message=failure,
        metrics=[
            MetricRun(
                name="error-ratio",
                measurements=[
                    measurement(0.18, Verdict.FAIL, 240, FAIL_MESSAGE.replace("0.210", "0.180")),
                    measurement(0.21, Verdict.FAIL, 210, FAIL_MESSAGE),
                ],
                failed=2,
                verdict=Verdict.FAIL,
                message="failures 2 > failureLimit 1",
            ),
            MetricRun(
                name="p99-latency",
                measurements=[measurement(0.31, Verdict.PASS, 240)],
                successful=1,
            ),
        ],
    )
    return RolloutStatus(
        phase=Phase.DEGRADED,
        message=message,
        observed_generation=2,
        canary_weight=0,
        stable_revision=STABLE,
        rolled_back_revision=CANARY,
        analysis=run,
        conditions=[
            cond(ConditionType.READY, "False", "Degraded", message, since=210),
            cond(ConditionType.PROGRESSING, "False", "RolledBack", message, since=210),
            cond(ConditionType.DEGRADED, "True", "RolledBack", message, since=210),
        ],
        replicas=4,
        available_replicas=4,
    )


def healthy() -> RolloutStatus:
    message = f"revision {STABLE} is stable at 100% (4/4 available)"
    return RolloutStatus(
        phase=Phase.HEALTHY,
        message=message,
        observed_generation=2,
        stable_revision=STABLE,
        conditions=[
            cond(ConditionType.READY, "True", "Healthy", message, since=3600),
            cond(ConditionType.AVAILABLE, "True", "MinimumReplicasAvailable", "4/4 pods"),
        ],
        replicas=4,
        available_replicas=4,
    )


INVALID_MESSAGE = (
    "invalid spec: spec.strategy.canary.steps[1].setWeight: weights must not decrease; "
    "spec.selector: selector must match template.metadata.labels"
)


def invalid() -> RolloutStatus:
    return RolloutStatus(
        phase=Phase.DEGRADED,
        message=INVALID_MESSAGE,
        observed_generation=2,
        stable_revision=STABLE,
        conditions=[
            cond(ConditionType.READY, "False", "InvalidSpec", INVALID_MESSAGE, since=30),
            cond(ConditionType.DEGRADED, "True", "InvalidSpec", INVALID_MESSAGE, since=30),
            cond(ConditionType.INVALID_SPEC, "True", "InvalidSpec", INVALID_MESSAGE, since=30),
        ],
        replicas=4,
        available_replicas=4,
    )


def event(
    reason: str, message: str, seconds_ago: float, type_: str = "Normal", count: int = 1
) -> dict[str, Any]:
    return {
        "metadata": {"name": f"web.{reason.lower()}", "uid": f"uid-{reason}-{seconds_ago}"},
        "involvedObject": {"kind": "Rollout", "name": "web", "namespace": "shop"},
        "reason": reason,
        "message": message,
        "type": type_,
        "count": count,
        "firstTimestamp": stamp(seconds_ago),
        "lastTimestamp": stamp(seconds_ago),
    }


CANARY_EVENTS = [
    event("StepAdvanced", "step 1/5 (setWeight 5%) complete; now at step 2/5", 70),
    event("RevisionDetected", f"new revision {CANARY} detected (stable {STABLE})", 400),
    event("WeightSet", "step 2/5: canary weight set to 25% (stable 75%)", 69),
    event(
        "AnalysisMeasured",
        "step 2/5: metric error-ratio = 0.012 passed successCondition 'result < 0.05' (2/3)",
        10,
        count=2,
    ),
]
