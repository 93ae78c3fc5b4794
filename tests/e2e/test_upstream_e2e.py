"""Upstream promotion, end to end: a production Rollout whose ``spec.promotion.after`` names
the staging Rollout (another namespace, soak 10 s) canaries a new template only after staging
has run that very template Healthy for 10 s; a template staging never ran keeps it waiting.

Both Rollouts come from ``examples/rollout-upstream-promotion`` (the staging copy without
``spec.promotion``), with test-sized steps. One namespace-scoped operator watches both
namespaces: the chart's Roles in each are what lets it read the upstream.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.lab.testing.cluster_fixtures import delete_namespace, kubectl_binary, new_namespace
from rollwise.core.observations import revision_of
from tests.e2e.support import (
    NAME,
    Cluster,
    StartOperator,
    eventually,
    example_docs,
    patient,
    rollout_of,
)

pytestmark = [
    pytest.mark.lab,
    pytest.mark.lab_only("a second namespace and an operator watching both"),
    pytest.mark.timeout(300),
]

EXAMPLE = "rollout-upstream-promotion"
IMAGE = "/spec/template/spec/containers/0/image"


@pytest.fixture
def staging(cluster: Cluster) -> Iterator[str]:
    """A second namespace, the upstream's; deleted afterwards."""
    running = cluster.the_lab.running_cluster
    name = new_namespace(running, "stg")
    yield name
    delete_namespace(running, name)


def documents(test_id: str, upstream: str | None) -> list[dict[str, Any]]:
    """The example with test-sized steps; ``upstream``: the namespace the production copy
    waits for (None: the staging copy, without ``spec.promotion``)."""
    docs = copy.deepcopy(example_docs(EXAMPLE, test_id))
    spec = rollout_of(docs)["spec"]
    spec["replicas"] = 2
    spec["strategy"]["canary"]["steps"] = [{"setWeight": 50}, {"setWeight": 100}]
    spec["strategy"]["canary"]["scaleDownDelaySeconds"] = 2
    if upstream is None:
        del spec["promotion"]
    else:
        spec["promotion"] = {"after": [{"namespace": upstream, "rollout": NAME, "soak": "10s"}]}
    return docs


def status_in(cluster: Cluster, namespace: str) -> dict[str, Any]:
    obj = cluster.custom.get_namespaced_custom_object(
        "rollwise.dev", "v1alpha1", namespace, "rollouts", NAME
    )
    return dict(obj.get("status") or {})


def set_image(cluster: Cluster, namespace: str, image: str) -> None:
    patch = json.dumps([{"op": "replace", "path": IMAGE, "value": image}])
    cluster.kubectl(
        "patch", f"rollout/{NAME}", "--type=json", "-p", patch, namespace=namespace, check=True
    )


def healthy_at(cluster: Cluster, namespace: str, revision: str) -> dict[str, Any] | None:
    status = status_in(cluster, namespace)
    done = (
        status.get("phase") == "Healthy"
        and status.get("stableRevision") == revision
        and status.get("healthySince")
        and status.get("observedGeneration") is not None
    )
    return status if done else None


def plugin_get(cluster: Cluster) -> str:
    proc = subprocess.run(
        [str(kubectl_binary()), "rollwise", "get", "rollout", NAME, "-n", cluster.namespace],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "KUBECONFIG": str(cluster.kubeconfig),
        },
        timeout=patient(30),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_production_canary_waits_for_the_staging_soak(
    cluster: Cluster, start_operator: StartOperator, staging: str
) -> None:
    start_operator.install(also_watch=[staging])
    start_operator("--namespace", cluster.namespace, "--namespace", staging)
    cluster.kubectl(
        "apply",
        "-f",
        "-",
        input=yaml.safe_dump_all(documents(cluster.test_id, None)),
        namespace=staging,
        check=True,
    )
    prod_docs = documents(cluster.test_id, staging)
    cluster.apply(prod_docs)
    first = revision_of(rollout_of(prod_docs)["spec"]["template"])
    for namespace in (staging, cluster.namespace):
        eventually(
            lambda ns=namespace: healthy_at(cluster, ns, first),
            timeout=60,
            what=f"the first revision Healthy in {namespace}",
        )

    # Production first: staging has not run the new template, so production waits.
    set_image(cluster, cluster.namespace, "ghcr.io/rollwise/demo-service:1.1.0")
    new = revision_of(cluster.rollout()["spec"]["template"])
    waiting = eventually(
        lambda: (s := cluster.status()).get("awaitingUpstream") == new and s,
        timeout=30,
        what="production waiting for staging",
    )
    assert waiting["phase"] == "Waiting"
    assert f"{staging}/{NAME} has not run revision {new}" in waiting["message"]
    assert waiting["stableRevision"] == first
    assert "canaryRevision" not in waiting or waiting["canaryRevision"] is None
    progressing = cluster.condition("Progressing")
    assert progressing is not None
    assert progressing["reason"] == "AwaitingUpstream"
    assert cluster.deployments() == {f"{NAME}-{first}"}
    assert "AwaitingUpstream" in cluster.reasons()
    view = plugin_get(cluster)
    assert "Waiting" in view
    assert f"Waiting:     revision {new} for its upstream Rollouts" in view
    assert f"Upstream:    {staging}/{NAME} (soak 10s)" in view

    # Staging runs it: canary, promotion, Healthy; production follows after the soak.
    set_image(cluster, staging, "ghcr.io/rollwise/demo-service:1.1.0")
    upstream = eventually(
        lambda: healthy_at(cluster, staging, new),
        timeout=120,
        what="staging Healthy on the new revision",
    )
    promoted = eventually(
        lambda: healthy_at(cluster, cluster.namespace, new),
        timeout=120,
        what="production Healthy on the new revision",
    )
    soaked = [e for e in promoted["eventLog"]["entries"] if e["reason"] == "UpstreamSoaked"]
    assert len(soaked) == 1, promoted["eventLog"]["entries"]
    # The canary started no sooner than 10 s after staging became Healthy on that revision.
    assert when(soaked[0]["time"]) >= when(upstream["healthySince"]) + timedelta(seconds=10)
    started = [e for e in promoted["eventLog"]["entries"] if e["reason"] == "RevisionDetected"]
    assert started
    assert when(started[-1]["time"]) >= when(soaked[0]["time"])

    # A template staging never ran never reaches production's canary.
    set_image(cluster, cluster.namespace, "ghcr.io/rollwise/demo-service:9.9.9")
    never = revision_of(cluster.rollout()["spec"]["template"])
    eventually(
        lambda: cluster.status().get("awaitingUpstream") == never,
        timeout=30,
        what="production waiting on a template staging never ran",
    )
    time.sleep(12)  # more than one upstream poll (10 s): it is looked at again, and still waits
    status = cluster.status()
    assert status["phase"] == "Waiting"
    assert status["stableRevision"] == new
    assert f"has not run revision {never}" in status["message"]
    assert f"{NAME}-{never}" not in cluster.deployments()


def test_an_upstream_the_namespace_scoped_operator_may_not_read_is_an_invalid_spec(
    cluster: Cluster, start_operator: StartOperator, staging: str
) -> None:
    # The chart's Roles cover the test's namespace only: the upstream's is out of reach.
    start_operator.install()
    start_operator("--namespace", cluster.namespace)
    cluster.kubectl(
        "apply",
        "-f",
        "-",
        input=yaml.safe_dump_all(documents(cluster.test_id, None)),
        namespace=staging,
        check=True,
    )
    prod_docs = documents(cluster.test_id, staging)
    cluster.apply(prod_docs)
    first = revision_of(rollout_of(prod_docs)["spec"]["template"])
    eventually(
        lambda: healthy_at(cluster, cluster.namespace, first),
        timeout=60,
        what="the first revision Healthy",
    )
    set_image(cluster, cluster.namespace, "ghcr.io/rollwise/demo-service:1.1.0")
    cluster.k("wait", "--for=condition=InvalidSpec", f"rollout/{NAME}", "--timeout=30s")
    invalid = cluster.condition("InvalidSpec")
    assert invalid is not None
    assert (
        f"spec.promotion.after[0]: the operator may not read Rollouts in namespace {staging}"
        in invalid["message"]
    )
    status = cluster.status()
    assert status["phase"] == "Degraded"
    assert status["stableRevision"] == first
    assert cluster.deployments() == {f"{NAME}-{first}"}
    warnings = [e for e in cluster.events() if e["reason"] == "InvalidSpec"]
    assert warnings
    assert warnings[0]["type"] == "Warning"
