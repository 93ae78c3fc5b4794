"""The CRDs' schemas and CEL rules as the real kube-apiserver applies them: invalid manifests
refused with messages a user understands, valid ones defaulted and pruned, transition rules on
update, and the status the operator writes admitted unchanged.

Every manifest goes to the lab cluster's API server with ``dryRun=All`` (nothing is stored),
except where an object must exist first: an update's transition rules need the old object, and
a status is written through the ``/status`` subresource of a created object.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from hack.cluster import Cluster
from hack.lab.testing.cluster_fixtures import Kubectl
from rollwise.core.rollout.status import RolloutStatus
from rollwise.core.spec import RolloutSpec
from rollwise.core.spec_release import ModelReleaseSpec

pytestmark = pytest.mark.lab

SHA = "sha256:" + "0123456789abcdef" * 4
OTHER_SHA = "sha256:" + "fedcba9876543210" * 4
PLURALS = {
    "Rollout": "rollouts",
    "ModelRelease": "modelreleases",
    "NotificationPolicy": "notificationpolicies",
}


class Admit:
    """``admit(manifest, old=None) -> (stored object or None, error messages)``: what the API
    server makes of a create of ``manifest`` (with ``old``: of an update of ``old`` to it), in
    the test's namespace, without storing it."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.session = cluster.admin_session()

    def _path(self, manifest: dict[str, Any], name: str = "") -> str:
        plural = PLURALS[manifest["kind"]]
        base = f"{self.cluster.server}/apis/rollwise.dev/v1alpha1/namespaces/{self.namespace}"
        return f"{base}/{plural}" + (f"/{name}" if name else "")

    def _send(
        self, method: str, url: str, body: dict[str, Any], dry_run: bool = True
    ) -> tuple[dict[str, Any] | None, list[str]]:
        params = {"dryRun": "All"} if dry_run else {}
        answer = self.session.request(method, url, json=body, params=params, timeout=30)
        if answer.status_code < 300:
            return answer.json(), []
        status = answer.json()
        causes = (status.get("details") or {}).get("causes") or []
        # One error per cause, as "field: message"; the Status message when it has none.
        return None, [f"{c.get('field', '')}: {c.get('message', '')}" for c in causes] or [
            status.get("message", "")
        ]

    def __call__(
        self, manifest: dict[str, Any], old: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], list[str]]:
        new = copy.deepcopy(manifest)
        new["metadata"]["namespace"] = self.namespace
        if old is None:
            obj, errors = self._send("POST", self._path(new), new)
            return obj or {}, errors
        first = copy.deepcopy(old)
        first["metadata"]["namespace"] = self.namespace
        created, errors = self._send("POST", self._path(first), first, dry_run=False)
        assert created is not None, errors
        try:
            new["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"]
            obj, errors = self._send("PUT", self._path(new, new["metadata"]["name"]), new)
            return obj or {}, errors
        finally:
            self.session.delete(self._path(first, first["metadata"]["name"]), timeout=30)

    def status(self, manifest: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """Creates ``manifest`` without its status, then writes the status through
        ``/status`` (dry run); the object the API server would store."""
        first = copy.deepcopy(manifest)
        first["metadata"]["namespace"] = self.namespace
        status = first.pop("status")
        created, errors = self._send("POST", self._path(first), first, dry_run=False)
        assert created is not None, errors
        try:
            created["status"] = status
            url = self._path(first, first["metadata"]["name"]) + "/status"
            obj, errors = self._send("PUT", url, created)
            return obj or {}, errors
        finally:
            self.session.delete(self._path(first, first["metadata"]["name"]), timeout=30)


@pytest.fixture
def admit(lab_cluster: Cluster, namespace: str) -> Admit:
    return Admit(lab_cluster, namespace)


def rollout(**canary: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"stableService": "demo-stable", "canaryService": "demo-canary"}
    body.update(canary)
    return {
        "apiVersion": "rollwise.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "demo", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "demo"}},
            "template": {
                "metadata": {"labels": {"app": "demo"}},
                "spec": {"containers": [{"name": "app", "image": "demo:1"}]},
            },
            "strategy": {"canary": body},
        },
    }


def metric(name: str = "errors", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "successCondition": "result < 0.05",
        "provider": {"prometheus": {"query": "vector(0)"}},
    }
    body.update(fields)
    return body


def guard(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"query": "sum(increase(requests_total[1m]))", "minSamples": 100}
    body.update(fields)
    return body


def modelrelease(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "fraud",
        "version": "7",
        "artifact": {"uri": "s3://models/fraud/7", "digest": SHA},
        "change": {"ticket": "CHG-1"},
        "serving": {"inferenceServiceRef": {"name": "fraud"}},
    }
    body.update(spec)
    return {
        "apiVersion": "rollwise.dev/v1alpha1",
        "kind": "ModelRelease",
        "metadata": {"name": "fraud-7", "namespace": "default"},
        "spec": body,
    }


def with_spec(obj: dict[str, Any], **changes: Any) -> dict[str, Any]:
    changed = copy.deepcopy(obj)
    changed["spec"].update(changes)
    return changed


BETA_MATCH = {"headerName": "x-segment", "headerValue": {"exact": "beta"}}

INVALID_ROLLOUTS = [
    pytest.param(
        rollout(scaleDownDelayReplicas=101),
        "spec.strategy.canary.scaleDownDelayReplicas: Invalid value: 101: "
        "spec.strategy.canary.scaleDownDelayReplicas in body should be less than or equal to 100",
        id="scale-down-delay-replicas-over-100",
    ),
    pytest.param(
        rollout(steps=[{"setWeight": 50}, {"setWeight": 20}, {"setWeight": 100}]),
        "spec.strategy.canary.steps: Invalid value: setWeight must not decrease "
        "from one step to the next",
        id="decreasing-weights",
    ),
    pytest.param(
        rollout(steps=[{"setWeight": 5}, {"setWeight": 50}]),
        "the last setWeight step must set weight 100",
        id="last-weight-not-100",
    ),
    pytest.param(
        rollout(steps=[{"setWeight": 5}, {"setWeight": 50}, {"pause": {}}]),
        "the last setWeight step must set weight 100",
        id="last-weight-not-100-before-a-pause",
    ),
    pytest.param(
        rollout(
            trafficRouting={
                "gatewayAPI": {"httpRoute": {"name": "demo"}},
                "istio": {"virtualService": {"name": "demo"}},
            }
        ),
        "spec.strategy.canary.trafficRouting: Invalid value: trafficRouting must "
        "set exactly one of gatewayAPI or istio",
        id="two-routers",
    ),
    pytest.param(
        rollout(trafficRouting={}),
        "trafficRouting must set exactly one of gatewayAPI or istio",
        id="empty-traffic-routing",
    ),
    pytest.param(
        rollout(steps=[{"setWeight": 5, "pause": {}}, {"setWeight": 100}]),
        "spec.strategy.canary.steps[0]: Invalid value: each step must set exactly "
        "one of setWeight, pause, analysis, setHeaderRoute, setMirrorRoute or approval",
        id="step-with-two-kinds",
    ),
    pytest.param(
        rollout(steps=[{}, {"setWeight": 100}]),
        "each step must set exactly one of setWeight, pause, analysis, setHeaderRoute, "
        "setMirrorRoute or approval",
        id="empty-step",
    ),
    pytest.param(
        rollout(steps=[{"approval": {"roles": []}}, {"setWeight": 100}]),
        "spec.strategy.canary.steps[0].approval.roles: Invalid value: 0: "
        "spec.strategy.canary.steps[0].approval.roles in body should have at least 1 items",
        id="approval-without-role",
    ),
    pytest.param(
        rollout(steps=[{"approval": {"roles": ["product", "product"]}}, {"setWeight": 100}]),
        'spec.strategy.canary.steps[0].approval.roles[1]: Duplicate value: "product"',
        id="approval-role-twice",
    ),
    pytest.param(
        rollout(steps=[{"approval": {"roles": ["Product"]}}, {"setWeight": 100}]),
        'spec.strategy.canary.steps[0].approval.roles[0]: Invalid value: "Product"',
        id="approval-role-name",
    ),
    pytest.param(
        rollout(steps=[{"approval": {"roles": ["qa"], "timeout": "0s"}}, {"setWeight": 100}]),
        'spec.strategy.canary.steps[0].approval.timeout: Invalid value: "0s": duration must be '
        "greater than 0",
        id="approval-zero-timeout",
    ),
    pytest.param(
        rollout(steps=[{"approval": {"timeout": "1h"}}, {"setWeight": 100}]),
        "spec.strategy.canary.steps[0].approval.roles: Required value",
        id="approval-roles-missing",
    ),
    pytest.param(
        rollout(
            steps=[
                {"setHeaderRoute": {"name": "beta", "match": [BETA_MATCH]}},
                {"setWeight": 100},
            ]
        ),
        "spec.strategy.canary: Invalid value: setHeaderRoute needs a trafficRouting router "
        "(gatewayAPI or istio)",
        id="header-route-without-router",
    ),
    pytest.param(
        rollout(
            steps=[
                {"setHeaderRoute": {"name": "beta", "match": [{"headerName": "x-segment"}]}},
                {"setWeight": 100},
            ],
            trafficRouting={"gatewayAPI": {"httpRoute": {"name": "demo"}}},
        ),
        "each match must set exactly one of headerName (with headerValue) or cookie",
        id="header-without-value",
    ),
    pytest.param(
        rollout(
            steps=[
                {
                    "setHeaderRoute": {
                        "name": "beta",
                        "match": [
                            {"headerName": "x-segment", "headerValue": {"exact": "a", "regex": "b"}}
                        ],
                    }
                },
                {"setWeight": 100},
            ],
            trafficRouting={"gatewayAPI": {"httpRoute": {"name": "demo"}}},
        ),
        "headerValue must set exactly one of exact, prefix or regex",
        id="header-value-two-kinds",
    ),
    pytest.param(
        rollout(
            steps=[{"setMirrorRoute": {"name": "shadow", "percentage": 20}}, {"setWeight": 100}]
        ),
        "spec.strategy.canary: Invalid value: setMirrorRoute needs a trafficRouting router "
        "(gatewayAPI or istio)",
        id="mirror-without-router",
    ),
    pytest.param(
        rollout(
            steps=[{"setMirrorRoute": {"name": "shadow", "percentage": 101}}, {"setWeight": 100}],
            trafficRouting={"gatewayAPI": {"httpRoute": {"name": "demo"}}},
        ),
        "spec.strategy.canary.steps[0].setMirrorRoute.percentage: Invalid value: 101",
        id="mirror-over-100",
    ),
    pytest.param(
        rollout(
            steps=[{"setMirrorRoute": {"name": "shadow"}}, {"setWeight": 100}],
            trafficRouting={"gatewayAPI": {"httpRoute": {"name": "demo"}}},
        ),
        "spec.strategy.canary.steps[0].setMirrorRoute.percentage: Required value",
        id="mirror-without-percentage",
    ),
    pytest.param(
        rollout(steps=[{"pause": {"duration": "5 minutes"}}, {"setWeight": 100}]),
        'spec.strategy.canary.steps[0].pause.duration: Invalid value: "5 minutes": '
        "spec.strategy.canary.steps[0].pause.duration in body should match",
        id="bad-duration",
    ),
    pytest.param(
        rollout(analysis={"interval": "30"}),
        "spec.strategy.canary.analysis.interval in body should match",
        id="duration-without-unit",
    ),
    pytest.param(
        rollout(steps=[{"setWeight": 101}]),
        "spec.strategy.canary.steps[0].setWeight: Invalid value: 101: "
        "spec.strategy.canary.steps[0].setWeight in body should be less than or equal to 100",
        id="weight-101",
    ),
    pytest.param(
        rollout(steps=[{"setWeight": -1}, {"setWeight": 100}]),
        "should be greater than or equal to 0",
        id="negative-weight",
    ),
    pytest.param(
        rollout(analysis={"metrics": [metric("errors"), metric("errors")]}),
        "spec.strategy.canary.analysis.metrics: Invalid value: metric names must be "
        "unique within an analysis",
        id="duplicate-metric-names",
    ),
    pytest.param(
        rollout(steps=[{"analysis": {"metrics": [metric("a"), metric("a")]}}, {"setWeight": 100}]),
        "metric names must be unique within an analysis",
        id="duplicate-metric-names-in-a-step",
    ),
    pytest.param(
        rollout(canaryService="demo-stable"),
        "stableService and canaryService must differ",
        id="stable-equals-canary-service",
    ),
    pytest.param(
        rollout(baseline=True, trafficRouting={"gatewayAPI": {"httpRoute": {"name": "demo"}}}),
        "baseline with a trafficRouting router needs baselineService",
        id="baseline-router-without-service",
    ),
    pytest.param(
        rollout(baseline=True, baselineService="demo-canary"),
        "baselineService must differ from stableService and canaryService",
        id="baseline-service-is-the-canary",
    ),
    pytest.param(
        rollout(analysis={"metrics": [metric(successCondition=None)]}),
        "each metric needs exactly one kind",
        id="metric-without-condition",
    ),
    pytest.param(
        rollout(
            analysis={
                "metrics": [metric(compare={"query": 'err{revision="{{revision}}"}'}, provider={})]
            }
        ),
        "each metric needs exactly one kind",
        id="metric-with-two-kinds",
    ),
    pytest.param(
        rollout(
            analysis={
                "metrics": [
                    metric(
                        successCondition=None,
                        compare={"query": 'err{revision="{{revision}}"}'},
                    )
                ]
            }
        ),
        "compare and sloBurnRate metrics carry their queries in their own block",
        id="compare-with-a-provider-query",
    ),
    pytest.param(
        rollout(
            analysis={
                "metrics": [
                    metric(
                        successCondition=None,
                        provider={},
                        sloBurnRate={"objective": 0.99, "totalQuery": "t[{{window}}]"},
                    )
                ]
            }
        ),
        "sloBurnRate needs exactly one of goodQuery or badQuery",
        id="burn-rate-without-good-or-bad",
    ),
    pytest.param(
        rollout(
            analysis={"metrics": [metric()], "scoring": {"pass": 60, "marginal": 80}},
        ),
        "marginal must not exceed pass",
        id="scoring-out-of-order",
    ),
    pytest.param(
        rollout(analysis={"metrics": [metric(thresholdRange={"max": 1})]}),
        "thresholdRange cannot be combined with successCondition or failureCondition",
        id="threshold-range-with-condition",
    ),
    pytest.param(
        rollout(steps=[{"analysis": {}}, {"setWeight": 100}]),
        "spec.strategy.canary.steps: Invalid value: an analysis step needs metrics or "
        "templates, its own or strategy.canary.analysis's",
        id="analysis-step-without-metrics",
    ),
    pytest.param(
        rollout(
            steps=[{"analysis": {"metrics": []}}, {"setWeight": 100}],
            analysis={"metrics": [metric()]},
        ),
        "an analysis step needs metrics or templates, its own or strategy.canary.analysis's",
        id="analysis-step-with-empty-metrics",
    ),
    pytest.param(
        rollout(
            analysis={
                "metrics": [metric(provider={"prometheus": {"query": "sum(x)" + " " * 4091}})]
            }
        ),
        "spec.strategy.canary.analysis.metrics[0].provider.prometheus.query: Too long: may "
        "not be more than 4096",
        id="query-too-long",
    ),
    pytest.param(
        rollout(analysis={"metrics": [metric(successCondition="result < " + "1" * 510)]}),
        "spec.strategy.canary.analysis.metrics[0].successCondition: Too long: may not be "
        "more than 512",
        id="condition-too-long",
    ),
    pytest.param(
        rollout(analysis={"interval": "0s", "metrics": [metric()]}),
        'spec.strategy.canary.analysis.interval: Invalid value: "0s": duration must be '
        "greater than 0",
        id="zero-interval",
    ),
    pytest.param(
        rollout(analysis={"metrics": [metric(interval="0.0m")]}),
        'spec.strategy.canary.analysis.metrics[0].interval: Invalid value: "0.0m": duration '
        "must be greater than 0",
        id="zero-metric-interval",
    ),
    pytest.param(
        rollout(analysis={"metrics": [metric(sampleGuard=guard(minSamples=0))]}),
        "spec.strategy.canary.analysis.metrics[0].sampleGuard.minSamples in body should be "
        "greater than or equal to 1",
        id="sample-guard-zero",
    ),
    pytest.param(
        rollout(analysis={"metrics": [metric(sampleGuard=guard(minSamples=1_000_001))]}),
        "sampleGuard.minSamples in body should be less than or equal to 1000000",
        id="sample-guard-too-many",
    ),
    pytest.param(
        rollout(analysis={"metrics": [metric(sampleGuard={"query": "sum(x)"})]}),
        "sampleGuard.minSamples: Required value",
        id="sample-guard-without-minimum",
    ),
    pytest.param(
        rollout(analysis={"metrics": [metric(sampleGuard=guard(query="x" * 4097))]}),
        "spec.strategy.canary.analysis.metrics[0].sampleGuard.query: Too long: may not be "
        "more than 4096",
        id="sample-guard-query-too-long",
    ),
    pytest.param(
        rollout(
            analysis={
                "metrics": [
                    metric(
                        sampleGuard=guard(),
                        provider={"web": {"name": "slo", "jsonPath": "$.value"}},
                    )
                ]
            }
        ),
        "sampleGuard needs a prometheus provider (it runs its query there)",
        id="sample-guard-on-a-web-metric",
    ),
    pytest.param(
        with_spec(rollout(), selector={"matchLabels": {}}),
        "spec.selector: Invalid value: selector must set matchLabels or matchExpressions",
        id="empty-selector",
    ),
    pytest.param(
        rollout(
            analysis={
                "metrics": [metric(successCondition=None, thresholdRange={"min": 2, "max": 1.5})]
            }
        ),
        "spec.strategy.canary.analysis.metrics[0].thresholdRange: Invalid value: "
        "thresholdRange needs min or max, and min must not exceed max",
        id="threshold-min-above-max",
    ),
    pytest.param(
        rollout(analysis={"metrics": [metric(successCondition=None, thresholdRange={})]}),
        "thresholdRange needs min or max, and min must not exceed max",
        id="threshold-range-empty",
    ),
    pytest.param(
        rollout(
            analysis={
                "metrics": [
                    metric(
                        provider={
                            "prometheus": {"query": "up"},
                            "web": {"name": "slo", "jsonPath": "$.value"},
                        }
                    )
                ]
            }
        ),
        "provider must set at most one of prometheus or web",
        id="metric-with-two-providers",
    ),
    pytest.param(
        rollout(
            analysis={
                "metrics": [
                    metric(provider={"web": {"name": "slo", "jsonPath": "$.v", "body": "{}"}})
                ]
            }
        ),
        "body is sent only with method POST",
        id="web-body-without-post",
    ),
    pytest.param(
        rollout(analysis={"metrics": [metric(provider={})]}),
        "a threshold metric needs a provider with a query",
        id="metric-without-provider",
    ),
    pytest.param(
        rollout(analysis={"metrics": [metric(name="Error_Rate")]}),
        "spec.strategy.canary.analysis.metrics[0].name in body should match",
        id="metric-name-not-a-dns-label",
    ),
    pytest.param(
        rollout(analysis={"metrics": [metric(count=0)]}),
        "metrics[0].count in body should be greater than or equal to 1",
        id="metric-count-zero",
    ),
    pytest.param(
        rollout(steps=[{"setWeight": 1}] * 64 + [{"setWeight": 100}]),
        "spec.strategy.canary.steps: Too many: 65: must have at most 64 items",
        id="too-many-steps",
    ),
    pytest.param(
        with_spec(rollout(), replicas=-1),
        "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or "
        "equal to 0",
        id="negative-replicas",
    ),
    pytest.param(
        with_spec(rollout(), replicas="three"),
        'spec.replicas: Invalid value: "string": spec.replicas in body must be of type '
        'integer: "string"',
        id="replicas-not-an-integer",
    ),
    pytest.param(
        {k: v for k, v in rollout().items() if k != "spec"},
        "spec: Required value",
        id="no-spec",
    ),
    pytest.param(
        with_spec(rollout(), strategy={"canary": {"stableService": "demo-stable"}}),
        "spec.strategy.canary.canaryService: Required value",
        id="no-canary-service",
    ),
    pytest.param(
        with_spec(
            rollout(),
            strategy={
                "canary": {"stableService": "demo-stable", "canaryService": "demo-canary"},
                "blueGreen": {"activeService": "demo-active"},
            },
        ),
        "strategy must set exactly one of canary or blueGreen",
        id="canary-and-blue-green",
    ),
    pytest.param(
        with_spec(rollout(), strategy={}),
        "strategy must set exactly one of canary or blueGreen",
        id="no-strategy",
    ),
    pytest.param(
        with_spec(
            rollout(),
            strategy={"blueGreen": {"activeService": "demo", "previewService": "demo"}},
        ),
        "previewService must differ from activeService",
        id="blue-green-preview-is-active",
    ),
    pytest.param(
        with_spec(
            rollout(),
            strategy={
                "blueGreen": {"activeService": "demo", "prePromotionAnalysis": {"interval": "1m"}}
            },
        ),
        "prePromotionAnalysis needs metrics or templates",
        id="blue-green-analysis-without-metrics",
    ),
    pytest.param(
        with_spec(
            rollout(),
            strategy={
                "blueGreen": {"activeService": "demo", "postPromotionAnalysis": {"interval": "1m"}}
            },
        ),
        "postPromotionAnalysis needs metrics or templates",
        id="blue-green-post-analysis-without-metrics",
    ),
    pytest.param(
        with_spec(
            rollout(),
            selector={"matchExpressions": [{"key": "app", "operator": "Like"}]},
        ),
        'spec.selector.matchExpressions[0].operator: Unsupported value: "Like": supported '
        'values: "In", "NotIn", "Exists", "DoesNotExist"',
        id="bad-selector-operator",
    ),
    pytest.param(
        rollout(
            webhooks=[
                {"name": "gate", "type": "confirm-rollout", "url": "https://a.example"},
                {"name": "gate", "type": "rollback", "url": "https://b.example"},
            ]
        ),
        "webhook names must be unique",
        id="webhook-names-unique",
    ),
    pytest.param(
        rollout(webhooks=[{"name": "gate", "type": "post-rollout", "url": "https://a.example"}]),
        'spec.strategy.canary.webhooks[0].type: Unsupported value: "post-rollout"',
        id="webhook-unknown-type",
    ),
    pytest.param(
        rollout(webhooks=[{"name": "gate", "type": "pre-rollout", "url": "ftp://a.example"}]),
        "spec.strategy.canary.webhooks[0].url: Invalid value",
        id="webhook-url-not-http",
    ),
    pytest.param(
        rollout(webhooks=[{"name": "gate", "type": "pre-rollout"}]),
        "spec.strategy.canary.webhooks[0].url: Required value",
        id="webhook-without-url",
    ),
]


@pytest.mark.parametrize(("manifest", "message"), INVALID_ROLLOUTS)
def test_invalid_rollouts_are_rejected(
    admit: Admit, manifest: dict[str, Any], message: str
) -> None:
    _, errors = admit(manifest)
    assert errors, "accepted"
    assert any(message in str(e) for e in errors), [str(e) for e in errors]


INVALID_MODELRELEASES = [
    pytest.param(
        modelrelease(serving={"template": {"spec": {}}, "inferenceServiceRef": {"name": "x"}}),
        "spec.serving: Invalid value: serving needs exactly one of template or inferenceServiceRef",
        id="serving-template-and-inferenceservice",
    ),
    pytest.param(
        modelrelease(serving={"replicas": 1}),
        "serving needs exactly one of template or inferenceServiceRef",
        id="serving-neither",
    ),
    pytest.param(
        modelrelease(alias={"store": {"configMap": {"name": "a"}, "mlflow": {"registry": "m"}}}),
        "alias store must set at most one of configMap or mlflow",
        id="two-alias-stores",
    ),
    pytest.param(
        modelrelease(alias={"store": {"mlflow": {"trackingURI": "http://internal-svc/admin#"}}}),
        "trackingURI is not accepted; name a registry of the operator's settings with registry",
        id="mlflow-tracking-uri-from-the-spec",
    ),
    pytest.param(
        modelrelease(alias={"store": {"mlflow": {}}}),
        "registry is required: the name of an MLflow registry of the operator's settings",
        id="mlflow-without-registry",
    ),
    pytest.param(
        modelrelease(alias={"store": {"mlflow": {"registry": "http://mlflow:5000"}}}),
        "spec.alias.store.mlflow.registry in body should match",
        id="mlflow-registry-not-a-name",
    ),
    pytest.param(
        modelrelease(gates={"freezeWindows": [{"name": "friday", "schedule": "0 18 * * 5"}]}),
        "a freeze window needs either schedule and duration, or start and end",
        id="freeze-schedule-without-duration",
    ),
    pytest.param(
        modelrelease(
            gates={
                "freezeWindows": [
                    {
                        "name": "mixed",
                        "schedule": "0 18 * * 5",
                        "duration": "1h",
                        "start": "2026-01-01T00:00:00Z",
                        "end": "2026-01-02T00:00:00Z",
                    }
                ]
            }
        ),
        "a freeze window needs either schedule and duration, or start and end",
        id="freeze-both-styles",
    ),
    pytest.param(
        modelrelease(
            gates={
                "freezeWindows": [
                    {"name": "x", "start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}
                ]
            }
        ),
        "a freeze window's start must be before its end",
        id="freeze-end-before-start",
    ),
    pytest.param(
        modelrelease(gates={"freezeWindows": [{"name": "x", "start": "monday", "end": "friday"}]}),
        'spec.gates.freezeWindows[0].start in body must be of type date-time: "monday"',
        id="freeze-start-not-a-time",
    ),
    pytest.param(
        modelrelease(approvals={"requiredRoles": ["security", "security"]}),
        'spec.approvals.requiredRoles[1]: Duplicate value: "security"',
        id="duplicate-required-roles",
    ),
    pytest.param(
        modelrelease(artifact={"uri": "s3://m", "digest": "md5:abc"}),
        "spec.artifact.digest in body should match '^sha256:[a-f0-9]{64}$'",
        id="digest-not-sha256",
    ),
    pytest.param(
        modelrelease(change={"type": "urgent", "ticket": "CHG-1"}),
        'spec.change.type: Unsupported value: "urgent": supported values: "standard", '
        '"normal", "emergency"',
        id="unknown-change-type",
    ),
    pytest.param(
        modelrelease(canary={"steps": [{"setWeight": 60}, {"setWeight": 30}]}),
        "setWeight must not decrease from one step to the next",
        id="canary-decreasing-weights",
    ),
    pytest.param(
        modelrelease(
            serving={
                "template": {"spec": {}},
                "stableService": "svc",
                "canaryService": "svc",
            }
        ),
        "stableService and canaryService must differ",
        id="serving-same-services",
    ),
    pytest.param(
        modelrelease(serving={"inferenceServiceRef": {"name": "x"}, "baseline": True}),
        "baseline needs template serving (KServe runs no baseline)",
        id="serving-baseline-with-kserve",
    ),
    pytest.param(
        modelrelease(
            serving={
                "template": {"spec": {}},
                "stableService": "a",
                "canaryService": "b",
                "baseline": True,
                "trafficRouting": {"gatewayAPI": {"httpRoute": {"name": "r"}}},
            }
        ),
        "baseline with a trafficRouting router needs baselineService",
        id="serving-baseline-router-without-service",
    ),
    pytest.param(
        modelrelease(
            serving={
                "template": {"spec": {}},
                "stableService": "a",
                "canaryService": "b",
                "baselineService": "a",
            }
        ),
        "baselineService must differ from stableService and canaryService",
        id="serving-baseline-service-is-the-stable",
    ),
    pytest.param(
        modelrelease(canary={"steps": [{"analysis": {}}, {"setWeight": 100}]}),
        "spec.canary.steps: Invalid value: an analysis step needs metrics or templates, its "
        "own or canary.analysis's",
        id="analysis-step-without-metrics",
    ),
    pytest.param(
        modelrelease(
            gates={"freezeWindows": [{"name": "x", "schedule": "0 1 * * *", "duration": "0h"}]}
        ),
        'spec.gates.freezeWindows[0].duration: Invalid value: "0h": duration must be '
        "greater than 0",
        id="freeze-zero-duration",
    ),
    pytest.param(
        modelrelease(
            gates={
                "signature": {
                    "url": "https://evidence.example/b.json",
                    "verifier": {
                        "publicKey": {"configMapKeyRef": {"name": "k", "key": "release.pub"}},
                        "keyless": {"configMapRef": {"name": "trust"}},
                    },
                }
            }
        ),
        "spec.gates.signature.verifier: Invalid value: verifier needs exactly one of publicKey "
        "or keyless",
        id="signature-two-verifiers",
    ),
    pytest.param(
        modelrelease(
            gates={
                "attestation": {
                    "verifier": {"keyless": {"configMapRef": {"name": "trust"}}},
                }
            }
        ),
        "gates.attestation needs exactly one of configMapKeyRef or url",
        id="attestation-no-bundle",
    ),
    pytest.param(
        modelrelease(version=""),
        'spec.version: Invalid value: "": spec.version in body should be at least 1 chars long',
        id="empty-version",
    ),
]


@pytest.mark.parametrize(("manifest", "message"), INVALID_MODELRELEASES)
def test_invalid_modelreleases_are_rejected(
    admit: Admit, manifest: dict[str, Any], message: str
) -> None:
    _, errors = admit(manifest)
    assert errors, "accepted"
    assert any(message in str(e) for e in errors), [str(e) for e in errors]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(
            {"version": "8"},
            "spec.version: Invalid value: version is immutable; create a new "
            "ModelRelease for a new version",
            id="version",
        ),
        pytest.param({"model": "churn"}, "spec.model: Invalid value", id="model"),
        pytest.param(
            {"artifact": {"uri": "s3://models/fraud/7", "digest": OTHER_SHA}},
            "spec.artifact.digest: Invalid value: artifact.digest is immutable",
            id="artifact-digest",
        ),
    ],
)
def test_modelrelease_immutable_fields(admit: Admit, change: dict[str, Any], message: str) -> None:
    old = modelrelease()
    new = with_spec(old, **change)
    _, on_create = admit(new)
    assert on_create == []  # transition rules run on update only
    _, on_update = admit(new, old)
    messages = [str(e) for e in on_update]
    assert len(messages) == 1, messages
    assert message in messages[0]


def test_modelrelease_update_of_mutable_fields_is_accepted(admit: Admit) -> None:
    old = modelrelease()
    new = with_spec(old, change={"type": "emergency", "ticket": "INC-9"}, alias={"name": "prod"})
    admitted, errors = admit(new, old)
    assert errors == []
    assert admitted["spec"]["alias"]["name"] == "prod"


def test_minimal_rollout_gets_the_documented_defaults(admit: Admit) -> None:
    admitted, errors = admit(rollout())
    assert errors == []
    spec = admitted["spec"]
    assert spec["replicas"] == 1
    assert spec["progressDeadlineSeconds"] == 600
    assert spec["paused"] is False
    canary = spec["strategy"]["canary"]
    assert canary["steps"] == [{"setWeight": 5}, {"setWeight": 25}, {"setWeight": 100}]
    assert canary["scaleDownDelaySeconds"] == 30
    assert canary["decisionMode"] == "auto"
    assert "analysis" not in canary  # no parent object, no defaults inside it
    parsed = RolloutSpec.model_validate(spec)
    assert parsed == RolloutSpec.model_validate(rollout()["spec"])


def test_blue_green_rollout_gets_the_documented_defaults(admit: Admit) -> None:
    manifest = with_spec(
        rollout(),
        strategy={
            "blueGreen": {
                "activeService": "demo-active",
                "previewService": "demo-preview",
                # Not a blue-green field: pruned by the API server (kubectl's strict field
                # validation reports it as unknown before it is sent).
                "steps": [{"setWeight": 50}],
            }
        },
    )
    admitted, errors = admit(manifest)
    assert errors == []
    blue_green = admitted["spec"]["strategy"]["blueGreen"]
    assert "steps" not in blue_green
    assert blue_green["autoPromotionEnabled"] is True
    assert blue_green["scaleDownDelaySeconds"] == 30
    assert "canary" not in admitted["spec"]["strategy"]
    parsed = RolloutSpec.model_validate(admitted["spec"])
    assert parsed.strategy.blue_green is not None
    assert parsed.strategy.canary.stable_service == "demo-active"


def test_rollout_analysis_defaults_fill_metrics(admit: Admit) -> None:
    manifest = rollout(
        analysis={"metrics": [metric(thresholdRange={"max": 0.5}, successCondition=None)]}
    )
    admitted, errors = admit(manifest)
    assert errors == []
    analysis = admitted["spec"]["strategy"]["canary"]["analysis"]
    assert (analysis["interval"], analysis["failureLimit"], analysis["inconclusiveLimit"]) == (
        "30s",
        0,
        0,
    )
    assert analysis["consecutiveErrorLimit"] == 4
    (only,) = analysis["metrics"]
    assert only["count"] == 1
    assert only["provider"]["prometheus"]["timeout"] == "10s"


def test_rollout_unknown_fields_are_pruned_but_template_kept(admit: Admit) -> None:
    manifest = rollout(unknownKnob=True)
    manifest["spec"]["template"]["spec"]["containers"][0]["futureField"] = {"x": 1}
    admitted, errors = admit(manifest)
    assert errors == []
    assert "unknownKnob" not in admitted["spec"]["strategy"]["canary"]
    assert admitted["spec"]["template"]["spec"]["containers"][0]["futureField"] == {"x": 1}
    manifest["status"] = {"phase": "Healthy", "operatorBookkeeping": {"a": 1}}
    with_status, errors = admit.status(manifest)
    assert errors == []
    assert with_status["status"]["operatorBookkeeping"] == {"a": 1}


def test_webhooks_get_their_default_timeout(admit: Admit) -> None:
    hook = {"name": "gate", "type": "confirm-promotion", "url": "https://gate.example/ok"}
    admitted, errors = admit(rollout(webhooks=[hook]))
    assert errors == []
    (stored,) = admitted["spec"]["strategy"]["canary"]["webhooks"]
    assert stored == {**hook, "timeout": "10s", "metadata": {}}
    parsed = RolloutSpec.model_validate(admitted["spec"])
    assert parsed.strategy.canary.webhooks[0].timeout == "10s"


def test_valid_rollout_with_every_step_kind(admit: Admit) -> None:
    manifest = rollout(
        steps=[
            {"setWeight": 10},
            {"pause": {"duration": "1m30s"}},
            {
                "analysis": {
                    "metrics": [
                        metric("latency", successCondition=None, thresholdRange={"max": 0.25})
                    ]
                }
            },
            {"setWeight": 10},
            {"pause": {}},
            {"setHeaderRoute": {"name": "beta", "match": [BETA_MATCH]}},
            {
                "setHeaderRoute": {
                    "name": "gold",
                    "match": [{"cookie": {"name": "t", "value": "g"}}],
                }
            },
            {"setHeaderRoute": {"name": "beta"}},
            {"setMirrorRoute": {"name": "shadow", "percentage": 20}},
            {"setMirrorRoute": {"name": "shadow", "percentage": 0}},
            {"approval": {"roles": ["product", "security"], "timeout": "24h"}},
            {"approval": {"roles": ["qa"]}},
            {"setWeight": 100},
            {"analysis": {"interval": "250ms", "failureLimit": 2}},
        ],
        analysis={"metrics": [metric(), metric("guarded", sampleGuard=guard(minSamples=1))]},
        trafficRouting={"istio": {"virtualService": {"name": "demo", "routes": ["primary"]}}},
    )
    admitted, errors = admit(manifest)
    assert errors == []
    spec = RolloutSpec.model_validate(admitted["spec"])
    assert spec.strategy.canary.analysis is not None
    guarded = spec.strategy.canary.analysis.metrics[1].sample_guard
    assert guarded is not None
    assert guarded.min_samples == 1
    assert spec.strategy.canary.traffic_routing is not None
    assert spec.strategy.canary.traffic_routing.istio is not None
    assert [s.set_header_route.name for s in spec.strategy.canary.steps if s.set_header_route] == [
        "beta",
        "gold",
        "beta",
    ]
    assert [s.approval.roles for s in spec.strategy.canary.steps if s.approval] == [
        ["product", "security"],
        ["qa"],
    ]


def test_minimal_modelrelease_gets_the_documented_defaults(admit: Admit) -> None:
    admitted, errors = admit(modelrelease())
    assert errors == []
    spec = admitted["spec"]
    assert spec["change"]["type"] == "normal"
    assert spec["alias"] == {"name": "production"}
    assert spec["approvals"] == {"requiredRoles": ["security", "product"]}
    assert spec["canary"] == {
        "steps": [{"setWeight": 5}, {"setWeight": 25}, {"setWeight": 100}],
        "decisionMode": "auto",
    }
    assert spec["serving"]["replicas"] == 1
    assert spec["gates"] == {}
    parsed = ModelReleaseSpec.model_validate(spec)
    assert parsed == ModelReleaseSpec.model_validate(modelrelease()["spec"])


# --------------------------------------------------------------------------------------------
# The Rollout status the operator writes is described by, and valid against, the CRD

T0 = "2026-01-01T00:00:00Z"
FULL_ROLLOUT_STATUS: dict[str, Any] = {
    "phase": "Progressing",
    "message": "step 1/3: canary at 5%",
    "observedGeneration": 3,
    "currentStepIndex": 1,
    "step": "2/3",
    "canaryWeight": 5,
    "stableRevision": "6d4f8b7c9",
    "canaryRevision": "7f9c5d6b8",
    "headerRoutes": [{"name": "beta", "match": ["x-segment exact 'beta'"]}],
    "mirrorRoutes": [{"name": "shadow", "percentage": 20}],
    "approvals": {
        "stepIndex": 2,
        "revision": "5f1c2d3e4a",
        "roles": ["product", "security"],
        "granted": [{"role": "product", "user": "bob", "at": "2026-01-01T10:03:00Z"}],
        "pending": ["security"],
        "refused": ["alice as security: changed the template (revision 5f1c2d3e4a)"],
        "requestedAt": "2026-01-01T10:02:00Z",
        "deadline": "2026-01-02T10:02:00Z",
        "timedOut": False,
        "templateChangedBy": "alice",
    },
    "stepStartedAt": T0,
    "pauseStartedAt": T0,
    "pauseReason": "PauseStep",
    "aborted": False,
    "rolledBackRevision": "5c8d7e6f1",
    "progressStartedAt": T0,
    "deadlineExceeded": False,
    "analysis": {
        "stepIndex": 1,
        "revision": "7f9c5d6b8",
        "startedAt": T0,
        "metrics": [
            {
                "name": "error-ratio",
                "measurements": [
                    {"value": 0.01, "verdict": "Pass", "at": T0, "message": "", "error": False},
                    {"value": None, "verdict": "Inconclusive", "at": T0, "error": True},
                ],
                "successful": 1,
                "failed": 0,
                "inconclusive": 1,
                "error": 1,
                "consecutiveErrors": 1,
                "verdict": "Pass",
                "message": "1 of 1 measurements passed",
            }
        ],
        "verdict": "Pass",
        "message": "all metrics passed",
    },
    "handledRequests": {"rollwise.dev/promote": "req-1"},
    "retiredRevisions": [{"revision": "5c8d7e6f1", "removeAt": T0}],
    "conditions": [
        {
            "type": "Ready",
            "status": "False",
            "reason": "Progressing",
            "message": "canary at 5%",
            "lastTransitionTime": T0,
            "observedGeneration": 3,
        }
    ],
    "replicas": 3,
    "availableReplicas": 4,
    "selector": "app=demo",
    "postPromotion": {
        "phase": "Regressed",
        "revision": "6d4f8b7c9",
        "previousRevision": "5c8d7e6f1",
        "startedAt": T0,
        "endsAt": T0,
        "action": "hold",
        "previousCaptured": True,
        "lastEvaluatedAt": T0,
        "evaluations": 4,
        "endedAt": T0,
        "heldRevision": "7f9c5d6b8",
        "holdLifted": {
            "revision": "7f9c5d6b8",
            "request": "2026-01-01T00:00:00Z-3f9a1c",
            "override": True,
            "user": "alice",
            "confirmedBy": "bob",
            "at": T0,
        },
        "kpis": [
            {
                "name": "error-ratio",
                "reason": "error_rate_regression",
                "severity": "critical",
                "state": "confirmed",
                "value": 0.2,
                "windows": {"short": 0.25, "long": 0.2},
                "target": 0.01,
                "previous": 0.001,
                "delta": 0.199,
                "relativeDelta": 199.0,
                "status": "off_track",
                "badCount": 3,
                "goodCount": 0,
                "episodes": 1,
                "confirmed": True,
                "lastTransitionAt": T0,
            }
        ],
    },
    "webhooks": [
        {
            "name": "release-manager",
            "type": "confirm-promotion",
            "revision": "b2",
            "result": "Held",
            "code": 403,
            "message": "answered 403",
            "lastCall": T0,
            "calls": 2,
        },
        {"name": "change-window", "type": "confirm-rollout", "revision": "b2", "result": "Pending"},
    ],
}


def test_the_status_the_operator_writes_is_admitted_unchanged(admit: Admit) -> None:
    written = RolloutStatus.model_validate(FULL_ROLLOUT_STATUS).model_dump(
        mode="json", by_alias=True
    )
    manifest = rollout()
    manifest["status"] = written
    admitted, errors = admit.status(manifest)
    assert errors == []

    def without_nulls(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: without_nulls(v) for k, v in value.items() if v is not None}
        if isinstance(value, list):
            return [without_nulls(v) for v in value]
        return value

    # Nulls of non-nullable fields are dropped by the API server; everything else survives.
    assert admitted["status"] == without_nulls(written)
    assert RolloutStatus.model_validate(admitted["status"]) == RolloutStatus.model_validate(
        FULL_ROLLOUT_STATUS
    )


def test_kubectl_explain_describes_the_approval_step(kubectl: Kubectl, namespace: str) -> None:
    shown = kubectl(
        "explain", "rollout.spec.strategy.canary.steps.approval", namespace=namespace, check=True
    ).stdout
    explained = " ".join(shown.split())  # as wrapped by kubectl
    assert "A go/no-go" in explained
    assert "kubectl rollwise approve rollout/NAME --role ROLE" in explained
    assert "roles" in explained
    assert "timeout" in explained
    shown = kubectl(
        "explain", "rollout.status.approvals.templateChangedBy", namespace=namespace, check=True
    ).stdout
    explained = " ".join(shown.split())
    assert "Who last changed the pod template, as the webhook recorded it." in explained
