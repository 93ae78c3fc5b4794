"""Analysis templates end to end: the real operator process in the lab, driven with kubectl
and the manifests of ``examples/rollout-analysis-template`` (an AnalysisTemplate referenced
with args). A canary measured by the template's metric steps through to 100%; a Rollout whose
spec names a template that does not exist is InvalidSpec (a Warning event naming it) and
continues, with no change to the Rollout, once the template is created.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.support import (
    INTERVAL,
    NAME,
    Cluster,
    StartOperator,
    eventually,
    example_docs,
    fast_metric,
    rollout_of,
)

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(120),
    pytest.mark.lab_only("runs operator processes of its own and the lab's traffic generator"),
]

EXAMPLE = "rollout-analysis-template"


def template_docs(test_id: str) -> list[dict[str, Any]]:
    """The example's documents with test-sized timings: the template's metric measured twice
    over 10 s windows (without its sample guard, as the other end-to-end tests), steps 5, 25,
    100 and no inline metric."""
    docs = example_docs(EXAMPLE, test_id)
    for doc in docs:
        if doc["kind"] == "AnalysisTemplate":
            for metric in doc["spec"]["metrics"]:
                fast_metric(metric)
    canary = rollout_of(docs)["spec"]["strategy"]["canary"]
    canary["steps"] = [{"setWeight": 5}, {"setWeight": 25}, {"setWeight": 100}]
    canary["scaleDownDelaySeconds"] = 2
    canary["analysis"]["interval"] = f"{INTERVAL:g}s"
    canary["analysis"].pop("metrics")
    return docs


def template_of(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == "AnalysisTemplate")


def new_image(cluster: Cluster, image: str) -> None:
    cluster.patch_template(
        [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": image}]
    )


def healthy_on(cluster: Cluster, image: str) -> bool:
    status = cluster.status()
    rollout = cluster.rollout()
    current = rollout["spec"]["template"]["spec"]["containers"][0]["image"]
    return (
        current == image
        and status.get("phase") == "Healthy"
        and status.get("observedGeneration") == rollout["metadata"]["generation"]
        and status.get("canaryRevision") in (None, status.get("stableRevision"))
    )


def test_a_canary_steps_through_on_a_template_and_a_missing_one_is_waited_for(
    cluster: Cluster, start_operator: StartOperator
) -> None:
    docs = template_docs(cluster.test_id)
    cluster.apply(docs)
    got = cluster.k("get", "analysistemplates").stdout
    assert "error-ratio" in got  # the Metrics column
    assert "service" in got  # the Args column
    start_operator("--namespace", cluster.namespace)
    cluster.k("wait", "--for=condition=Ready", f"rollout/{NAME}", "--timeout=20s")
    cluster.the_lab.start_traffic(f"httproute/{cluster.namespace}/{NAME}", rate=50)

    # 1. A canary whose only check comes from the template (args service=demo,
    # maxErrorRatio=0.02) steps through 5, 25, 100.
    new_image(cluster, "ghcr.io/rollwise/demo-service:1.1.0")
    eventually(
        lambda: healthy_on(cluster, "ghcr.io/rollwise/demo-service:1.1.0"),
        timeout=45,
        what="the canary measured by the template to complete",
        every=0.1,
    )
    reasons = cluster.reasons()
    assert reasons.count("AnalysisPassed") >= 3, reasons
    assert "InvalidSpec" not in reasons
    measured = {m["name"] for m in (cluster.status().get("analysis") or {}).get("metrics", [])}
    assert measured == {"error-ratio"}

    # 2. The spec names a template that is not there: InvalidSpec, a Warning naming it, and
    # nothing moves.
    missing = template_of(template_docs(cluster.test_id))
    missing["metadata"]["name"] = "error-ratio-strict"
    cluster.k(
        "patch",
        f"rollout/{NAME}",
        "--type=json",
        "-p",
        '[{"op": "replace", "path": "/spec/strategy/canary/analysis/templates/0/templateName",'
        ' "value": "error-ratio-strict"},'
        ' {"op": "replace", "path": "/spec/template/spec/containers/0/image",'
        ' "value": "ghcr.io/rollwise/demo-service:1.2.0"}]',
    )

    def invalid() -> dict[str, Any] | None:
        cond = cluster.condition("InvalidSpec")
        return cond if cond is not None and cond["status"] == "True" else None

    cond = eventually(invalid, timeout=15, what="InvalidSpec for the missing template")
    assert "AnalysisTemplate error-ratio-strict not found" in cond["message"]
    warnings = [
        e for e in cluster.events() if e["reason"] == "InvalidSpec" and e["type"] == "Warning"
    ]
    assert any("error-ratio-strict" in e["message"] for e in warnings), warnings
    assert int(cluster.status().get("canaryWeight", 0)) == 0

    # 3. The template is created; the Rollout, unchanged, finds it and completes the canary.
    cluster.apply([missing])
    eventually(
        lambda: healthy_on(cluster, "ghcr.io/rollwise/demo-service:1.2.0"),
        timeout=60,
        what="the canary to continue once the template exists",
        every=0.1,
    )
    assert invalid() is None
