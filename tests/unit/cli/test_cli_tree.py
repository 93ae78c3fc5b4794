"""The revisions of a Rollout as a tree (revision → Deployment → ReplicaSet → pod) and the
images they run: built from the objects the API server returns, drawn as ``get rollout``
shows them, and said plainly when a cluster has no ReplicaSets or pods."""

from __future__ import annotations

from typing import Any

import pytest

from rollwise.cli.colour import COLOUR, PLAIN, strip
from rollwise.cli.text import ASCII, UNICODE
from rollwise.cli.tree import (
    MAX_PODS,
    build_tree,
    images_lines,
    pod_state,
    revision_roles,
    tree_lines,
)
from rollwise.core.phases import Phase
from tests.unit.cli import cli_builders as b
from tests.unit.cli import workload_builders as w
from tests.unit.cli.fake_cluster import SERVED, FakeCluster

NOW = b.NOW


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().split("   ") if c.strip()]


def canary_world() -> tuple[
    dict[str, Any], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]
]:
    rollout = w.rollout(w.CANARY_TEMPLATE, canary=w.CANARY, step=0, phase=Phase.PROGRESSING)
    stable = w.deployment(w.STABLE, w.STABLE_TEMPLATE, replicas=3)
    canary = w.deployment(w.CANARY, w.CANARY_TEMPLATE, replicas=1, ready=0, age=30)
    rs_stable = w.replica_set(stable, "5d8f", replicas=3)
    rs_canary = w.replica_set(canary, "7c9a", replicas=1, ready=0)
    pods = [w.pod(rs_stable, s) for s in ("a", "b", "c")]
    pods.append(w.pod(rs_canary, "d", ready=False, restarts=4, waiting="CrashLoopBackOff", age=30))
    return rollout, [stable, canary], [rs_stable, rs_canary], pods


def test_canary_and_stable_with_their_deployments_replica_sets_and_pods() -> None:
    rollout, deployments, sets, pods = canary_world()
    tree = build_tree(rollout, deployments, sets, pods, NOW)
    lines = tree_lines(tree, NOW, symbols=UNICODE)
    assert lines[0] == "Revisions:"
    assert cells(lines[1]) == ["NAME", "KIND", "STATUS", "READY", "AGE", "INFO"]
    rows = [cells(line) for line in lines[2:]]
    assert rows[0] == [
        w.CANARY,
        "Revision",
        "canary",
        "app=ghcr.io/acme/web:1.1, sidecar=busybox:1.36",
    ]
    assert rows[1] == [f"└─ web-{w.CANARY}", "Deployment", "Progressing", "0/1", "30s"]
    assert rows[2] == [f"└─ web-{w.CANARY}-7c9a", "ReplicaSet", "0/1", "30s"]
    assert rows[3] == [
        f"└─ web-{w.CANARY}-7c9a-d",
        "Pod",
        "CrashLoopBackOff",
        "0/2",
        "30s",
        "4 restarts",
    ]
    assert rows[4][:3] == [w.STABLE, "Revision", "stable"]
    assert rows[5] == [f"└─ web-{w.STABLE}", "Deployment", "Available", "3/3", "60m"]
    assert [r[0] for r in rows[7:10]] == [
        f"├─ web-{w.STABLE}-5d8f-a",
        f"├─ web-{w.STABLE}-5d8f-b",
        f"└─ web-{w.STABLE}-5d8f-c",
    ]
    assert all(r[1:4] == ["Pod", "Running", "2/2"] for r in rows[7:10])
    # The tree's branches continue under the right parent.
    assert lines[2 + 7].startswith("        ├─ ")


def test_ascii_branches() -> None:
    rollout, deployments, sets, pods = canary_world()
    text = "\n".join(
        tree_lines(build_tree(rollout, deployments, sets, pods, NOW), NOW, symbols=ASCII)
    )
    assert "`- web-" in text
    assert "+- web-" in text
    assert "└" not in text


def test_a_cluster_without_replica_sets_says_so() -> None:
    """An API server with Deployments but no controllers (no ReplicaSets served)."""
    rollout, deployments, _, _ = canary_world()
    tree = build_tree(rollout, deployments, None, None, NOW)
    text = "\n".join(tree_lines(tree, NOW))
    assert (
        text.count("(no ReplicaSets: this API server does not serve them, so no pods run here)")
        == 2
    )


def test_a_deployment_without_replica_set_and_a_replica_set_without_pods() -> None:
    rollout, deployments, sets, _ = canary_world()
    tree = build_tree(rollout, deployments, sets[:1], [], NOW)
    text = "\n".join(tree_lines(tree, NOW))
    assert "(no pods yet)" in text  # the stable ReplicaSet wants 3
    assert "(no ReplicaSet yet: the Deployment controller has not created one)" in text


def test_replica_sets_left_at_zero_by_a_restart_are_counted_not_drawn() -> None:
    rollout, deployments, sets, pods = canary_world()
    older = w.replica_set(deployments[0], "0ld1", replicas=0)
    tree = build_tree(rollout, deployments, [*sets, older], pods, NOW)
    text = "\n".join(tree_lines(tree, NOW))
    assert "0ld1" not in text
    assert "(1 ReplicaSet scaled to 0)" in text


def test_many_pods_are_counted_after_the_first_ones() -> None:
    rollout, deployments, sets, _ = canary_world()
    pods = [w.pod(sets[0], f"p{i:02d}") for i in range(MAX_PODS + 3)]
    text = "\n".join(tree_lines(build_tree(rollout, deployments, sets, pods, NOW), NOW))
    assert text.count(" Pod ") == MAX_PODS
    assert "(and 3 more pods)" in text


def test_other_rollouts_and_deployments_of_the_same_revision_are_not_mixed_in() -> None:
    """Selection is by label, then by owner references: a Deployment of the same template
    owned by another Rollout, and its ReplicaSets and pods, stay out."""
    rollout, deployments, sets, pods = canary_world()
    twin = w.deployment(w.STABLE, w.STABLE_TEMPLATE, owner="another-rollout")
    twin["metadata"].update(name="web-twin", uid="uid-twin")
    twin_rs = w.replica_set(twin, "t", replicas=1)
    twin_pod = w.pod(twin_rs, "t")
    cluster = FakeCluster(rollout, *deployments, *sets, *pods, twin, twin_rs, twin_pod)
    found = cluster.workloads(cluster.get_rollout("shop", "web"))
    assert sorted(d["metadata"]["name"] for d in found.deployments) == sorted(
        d["metadata"]["name"] for d in deployments
    )
    assert found.replica_sets is not None
    assert "web-twin-t" not in [rs["metadata"]["name"] for rs in found.replica_sets]
    assert found.pods is not None
    assert len(found.pods) == 4


def test_workloads_of_a_server_without_replica_sets() -> None:
    rollout, deployments, _, _ = canary_world()
    cluster = FakeCluster(rollout, *deployments, served=SERVED - {"replicasets"})
    found = cluster.workloads(cluster.get_rollout("shop", "web"))
    assert len(found.deployments) == 2
    assert found.replica_sets is None


def test_retired_rolled_back_and_unseen_template_revisions() -> None:
    """The spec asks for a revision the operator has not made the canary yet (template), a
    retired one keeps its Deployment until it is removed, a rolled-back one is marked."""
    rollout = w.rollout(w.template("ghcr.io/acme/web:2.0"), rolled_back=w.CANARY)
    rollout["status"]["retiredRevisions"] = [{"revision": w.OLD, "removeAt": b.stamp(-480)}]
    roles = revision_roles(rollout)
    assert roles[w.STABLE] == ["stable"]
    assert roles[w.CANARY] == ["rolled back"]
    assert roles[w.OLD] == ["retired"]
    template_revision = next(r for r, v in roles.items() if v == ["template"])
    deployments = [
        w.deployment(w.STABLE, w.STABLE_TEMPLATE),
        w.deployment(w.CANARY, w.CANARY_TEMPLATE, replicas=0),
        w.deployment(w.OLD, w.OLD_TEMPLATE, replicas=0),
    ]
    tree = build_tree(rollout, deployments, [], [], NOW)
    assert [n.revision for n in tree.revisions] == [template_revision, w.STABLE, w.CANARY, w.OLD]
    template_node = tree.revisions[0]
    assert template_node.deployment is None
    assert template_node.images[0] == ("app", "ghcr.io/acme/web:2.0")
    text = "\n".join(tree_lines(tree, NOW))
    assert "(no Deployment)" in text
    assert "ScaledDown" in text
    retired = next(line for line in text.splitlines() if f"web-{w.OLD}" in line)
    assert cells(retired)[-1] == "Deployment removed in 8m"
    summary = images_lines(tree)
    assert summary == [
        "Images:      app=ghcr.io/acme/web:2.0 (template)",
        "             app=ghcr.io/acme/web:1.0 (stable)",
        "             sidecar=busybox:1.36 (template, stable)",
    ]


@pytest.mark.parametrize(
    ("pod", "state"),
    [
        pytest.param({"status": {"phase": "Running"}}, "Running", id="running"),
        pytest.param(
            {
                "metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"},
                "status": {"phase": "Running"},
            },
            "Terminating",
            id="terminating",
        ),
        pytest.param({"status": {"phase": "Failed", "reason": "Evicted"}}, "Evicted", id="evicted"),
        pytest.param(
            {
                "status": {
                    "phase": "Pending",
                    "containerStatuses": [{"state": {"waiting": {"reason": "ContainerCreating"}}}],
                }
            },
            "ContainerCreating",
            id="creating",
        ),
        pytest.param(
            {
                "status": {
                    "phase": "Pending",
                    "initContainerStatuses": [{"state": {"waiting": {"reason": "ErrImagePull"}}}],
                }
            },
            "Init:ErrImagePull",
            id="init-container-failing",
        ),
        pytest.param(
            {
                "status": {
                    "phase": "Running",
                    "containerStatuses": [{"state": {"terminated": {"reason": "OOMKilled"}}}],
                }
            },
            "OOMKilled",
            id="terminated",
        ),
        pytest.param({}, "Unknown", id="no-status"),
    ],
)
def test_pod_state_in_kubectls_words(pod: dict[str, Any], state: str) -> None:
    assert pod_state(pod) == state


def test_colour_marks_states_and_keeps_the_columns() -> None:
    rollout, deployments, sets, pods = canary_world()
    tree = build_tree(rollout, deployments, sets, pods, NOW)
    plain = tree_lines(tree, NOW, palette=PLAIN)
    coloured = tree_lines(tree, NOW, palette=COLOUR)
    assert [strip(line) for line in coloured] == plain
    crash = next(line for line in coloured if "CrashLoopBackOff" in line)
    assert "\x1b[31mCrashLoopBackOff\x1b[0m" in crash
    assert "\x1b[33m0/2\x1b[0m" in crash  # not ready
    running = next(line for line in coloured if "-5d8f-a" in line)
    assert "\x1b[32mRunning\x1b[0m" in running


def test_a_baseline_is_a_revision_of_its_own_next_to_the_stable() -> None:
    """The baseline runs the stable template under its own revision id: the tree shows its
    Deployment with the role ``baseline``, after the stable."""
    rollout = w.rollout(w.CANARY_TEMPLATE, canary=w.CANARY, step=0, phase=Phase.PROGRESSING)
    baseline = f"{w.STABLE}-baseline"
    rollout["status"]["baseline"] = {
        "revision": baseline,
        "stableRevision": w.STABLE,
        "weight": 25,
        "replicas": 1,
        "availableReplicas": 1,
    }
    assert revision_roles(rollout)[baseline] == ["baseline"]
    deployments = [
        w.deployment(w.STABLE, w.STABLE_TEMPLATE),
        w.deployment(w.CANARY, w.CANARY_TEMPLATE, replicas=1),
        w.deployment(baseline, w.STABLE_TEMPLATE, replicas=1),
    ]
    tree = build_tree(rollout, deployments, [], [], NOW)
    assert [(n.revision, n.roles) for n in tree.revisions] == [
        (w.CANARY, ("canary",)),
        (w.STABLE, ("stable",)),
        (baseline, ("baseline",)),
    ]
    row = next(cells(line) for line in tree_lines(tree, NOW) if line.strip().startswith(baseline))
    assert row[:3] == [baseline, "Revision", "baseline"]
    assert tree.revisions[2].deployment is not None


def test_a_canary_going_back_to_a_kept_revision_is_shown_as_the_canary() -> None:
    """The revision a canary goes back to stays in retiredRevisions until it completes; the
    tree names it the canary, not retired."""
    rollout = w.rollout(w.OLD_TEMPLATE, canary=w.OLD, step=0, phase=Phase.PROGRESSING)
    rollout["status"]["retiredRevisions"] = [{"revision": w.OLD, "removeAt": b.stamp(-480)}]
    roles = revision_roles(rollout)
    assert roles[w.OLD] == ["canary"]
    assert roles[w.STABLE] == ["stable"]
