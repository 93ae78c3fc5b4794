"""``set image``, ``undo`` and ``restart`` end to end through the plugin's own API layer, with
the API server played by :class:`FakeCluster`: what they write, what they print, and one
readable line with a non-zero exit for every mistake a user can make."""

from __future__ import annotations

import io
from typing import Any

import pytest

from rollwise.cli.main import run
from rollwise.cli.revisions import RESTARTED_AT
from rollwise.core.observations import revision_of
from rollwise.core.phases import Phase
from tests.unit.cli import workload_builders as w
from tests.unit.cli.fake_cluster import FakeCluster

JSON_PATCH = "application/json-patch+json"


def run_with(cluster: FakeCluster, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), out, err, connector=lambda *_: cluster, environ={})
    return code, out.getvalue(), err.getvalue()


def canary_cluster(**rollout_args: Any) -> FakeCluster:
    """A canary of 1.1 next to stable 1.0, with an older revision retired but not deleted."""
    rollout = w.rollout(
        w.CANARY_TEMPLATE,
        canary=w.CANARY,
        step=1,
        phase=Phase.PAUSED,
        message="step 2/3: paused",
        **rollout_args,
    )
    return FakeCluster(
        rollout,
        w.deployment(w.STABLE, w.STABLE_TEMPLATE, age=3000),
        w.deployment(w.CANARY, w.CANARY_TEMPLATE, replicas=1, age=60),
        w.deployment(w.OLD, w.OLD_TEMPLATE, replicas=0, age=9000),
    )


def stable_cluster() -> FakeCluster:
    return FakeCluster(
        w.rollout(w.STABLE_TEMPLATE, message=f"revision {w.STABLE} is stable"),
        w.deployment(w.STABLE, w.STABLE_TEMPLATE),
    )


def template_of(cluster: FakeCluster) -> dict[str, Any]:
    spec: dict[str, Any] = cluster.object("rollouts", "web")["spec"]
    return dict(spec["template"])


# ------------------------------------------------------------------------------ set image


def test_set_image_writes_a_guarded_patch_and_names_the_new_revision() -> None:
    cluster = stable_cluster()
    code, out, err = run_with(cluster, "set", "image", "web", "app=ghcr.io/acme/web:1.1")
    assert (code, err) == (0, "")
    assert template_of(cluster) == w.CANARY_TEMPLATE
    ((method, path, body, content_type),) = cluster.writes
    assert (method, path, content_type) == (
        "PATCH",
        "/apis/rollwise.dev/v1alpha1/namespaces/shop/rollouts/web",
        JSON_PATCH,
    )
    assert body[0] == {
        "op": "test",
        "path": "/spec/template/spec/containers/0/name",
        "value": "app",
    }
    assert out.splitlines() == [
        f"rollout.rollwise.dev/web image updated (revision {w.STABLE} -> {w.CANARY})",
        "  app: ghcr.io/acme/web:1.0 -> ghcr.io/acme/web:1.1",
        f"revision {w.CANARY} is a canary next to stable {w.STABLE}: it starts at step 1/3 "
        "(kubectl rollwise status web --watch)",
    ]


def test_set_image_back_to_stable_says_the_canary_is_dropped() -> None:
    cluster = canary_cluster()
    code, out, _ = run_with(cluster, "set", "image", "web", "app=ghcr.io/acme/web:1.0")
    assert code == 0
    assert out.splitlines()[-1] == (
        f"revision {w.STABLE} is the stable revision: it serves all traffic; canary "
        f"{w.CANARY} is dropped"
    )


def test_set_image_of_every_container_and_unchanged_images() -> None:
    cluster = stable_cluster()
    code, out, _ = run_with(cluster, "set", "image", "web", "*=ghcr.io/acme/all:2")
    assert code == 0
    assert [c["image"] for c in template_of(cluster)["spec"]["containers"]] == [
        "ghcr.io/acme/all:2",
        "ghcr.io/acme/all:2",
    ]
    code, out, _ = run_with(cluster, "set", "image", "web", "app=ghcr.io/acme/all:2")
    assert code == 0
    assert out == "rollout.rollwise.dev/web image unchanged (already ghcr.io/acme/all:2)\n"
    assert len(cluster.writes) == 1


def test_set_image_of_an_unknown_container_is_one_line() -> None:
    cluster = stable_cluster()
    code, out, err = run_with(cluster, "set", "image", "web", "web=ghcr.io/acme/web:2")
    assert (code, out) == (1, "")
    assert err == (
        'error: rollout "web": the template has no container "web" (containers: app, sidecar)\n'
    )
    assert cluster.writes == []


def test_set_image_on_a_rollout_that_changed_meanwhile() -> None:
    """The template changed between the plugin's read and its write: the patch's ``test``
    fails, nothing is written, and the user is told to run it again."""
    cluster = stable_cluster()
    real_get = cluster.get_object

    def stale_read(plural: str, namespace: str, name: str) -> dict[str, Any]:
        found = real_get(plural, namespace, name)
        stored = cluster.object("rollouts", "web")
        stored["spec"]["template"]["spec"]["containers"][0]["image"] = "ghcr.io/acme/web:9"
        return found

    cluster.get_object = stale_read  # type: ignore[method-assign]
    code, _, err = run_with(cluster, "set", "image", "web", "app=ghcr.io/acme/web:1.1")
    assert code == 1
    assert err == (
        "error: rollout \"web\" changed between the plugin's read and its write (the patch's "
        "test failed): run the command again\n"
    )
    assert template_of(cluster)["spec"]["containers"][0]["image"] == "ghcr.io/acme/web:9"


@pytest.mark.parametrize(
    "command", [["set", "image", "nope", "app=x:1"], ["undo", "nope"], ["restart", "nope"]]
)
def test_a_missing_rollout_is_one_line(command: list[str]) -> None:
    code, out, err = run_with(stable_cluster(), *command)
    assert (code, out) == (1, "")
    assert err == 'error: rollout "nope" not found in namespace "shop"\n'


# ------------------------------------------------------------------------------ undo


def test_undo_during_a_canary_goes_back_to_the_exact_stable_template() -> None:
    """The Deployment holds the template with the server's defaults; what is written back
    hashes to the stable revision, so the operator drops the canary instead of starting one."""
    cluster = canary_cluster()
    code, out, err = run_with(cluster, "undo", "web")
    assert (code, err) == (0, "")
    written = template_of(cluster)
    assert written == w.STABLE_TEMPLATE
    assert revision_of(written) == w.STABLE
    ((_, _, body, content_type),) = cluster.writes
    assert content_type == JSON_PATCH
    assert body[0]["op"] == "test"
    assert body[0]["path"] == "/metadata/resourceVersion"
    assert out.splitlines() == [
        f"rollout.rollwise.dev/web rolled back to revision {w.STABLE} ({w.CANARY} -> {w.STABLE})",
        "  app: ghcr.io/acme/web:1.1 -> ghcr.io/acme/web:1.0",
        f"revision {w.STABLE} is the stable revision: it serves all traffic; canary "
        f"{w.CANARY} is dropped",
    ]


def test_undo_to_an_older_revision_by_prefix() -> None:
    cluster = canary_cluster()
    code, out, _ = run_with(cluster, "undo", "web", "--to-revision", w.OLD[:5])
    assert code == 0
    assert template_of(cluster) == w.OLD_TEMPLATE
    assert out.splitlines()[-1] == (
        f"revision {w.OLD} replaces canary {w.CANARY} and starts at step 1/3 "
        "(kubectl rollwise status web --watch)"
    )


def test_undo_with_nothing_to_go_back_to_says_what_there_is() -> None:
    cluster = stable_cluster()
    code, out, err = run_with(cluster, "undo", "web")
    assert (code, out) == (1, "")
    assert err == (
        'error: rollout "web" has no earlier revision to go back to (revisions with a '
        f"Deployment: {w.STABLE} (stable, current template)); a promoted revision's "
        "predecessor keeps its Deployment for scaleDownDelaySeconds (600s) after the "
        "promotion, then it is deleted\n"
    )
    assert cluster.writes == []


def test_undo_to_an_unknown_revision_lists_the_available_ones() -> None:
    code, _, err = run_with(canary_cluster(), "undo", "web", "--to-revision", "ffffff")
    assert code == 1
    assert err.startswith('error: rollout "web" has no revision "ffffff" to go back to (')
    assert f"{w.CANARY} (canary, current template)" in err
    assert f"{w.STABLE} (stable)" in err
    assert err.count("\n") == 1


def test_undo_to_the_current_revision_changes_nothing() -> None:
    cluster = canary_cluster()
    code, out, _ = run_with(cluster, "undo", "web", "--to-revision", w.CANARY)
    assert code == 0
    assert out == f"rollout.rollwise.dev/web already at revision {w.CANARY} (no change)\n"
    assert cluster.writes == []


def test_undo_warns_when_the_template_cannot_be_recovered_exactly() -> None:
    cluster = canary_cluster()
    stable = cluster.object("deployments", f"web-{w.STABLE}")
    stable["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "500m"}}
    code, out, err = run_with(cluster, "undo", "web")
    assert code == 0
    written = template_of(cluster)
    assert revision_of(written) != w.STABLE
    assert out.splitlines()[0].startswith(
        f"rollout.rollwise.dev/web rolled back to revision {w.STABLE}"
    )
    assert err.startswith(
        f"warning: the template of revision {w.STABLE} could not be recovered exactly"
    )
    assert "kubectl rollwise abort web" in err


# ------------------------------------------------------------------------------ restart


def test_restart_restarts_the_stable_deployment_without_a_new_revision() -> None:
    cluster = canary_cluster()
    before = template_of(cluster)
    code, out, err = run_with(cluster, "restart", "web")
    assert (code, err) == (0, "")
    assert template_of(cluster) == before  # the Rollout's template is untouched
    ((method, path, body, content_type),) = cluster.writes
    assert (method, path, content_type) == (
        "PATCH",
        f"/apis/apps/v1/namespaces/shop/deployments/web-{w.STABLE}",
        "application/merge-patch+json",
    )
    annotations = body["spec"]["template"]["metadata"]["annotations"]
    assert list(annotations) == [RESTARTED_AT]
    stored = cluster.object("deployments", f"web-{w.STABLE}")
    assert RESTARTED_AT in stored["spec"]["template"]["metadata"]["annotations"]
    assert out.splitlines() == [
        f"rollout.rollwise.dev/web restarting the 3 pods of stable revision {w.STABLE} "
        f"(Deployment web-{w.STABLE}): a rolling restart, maxSurge 25%, maxUnavailable 25%; "
        "no new revision, no canary",
        f"the pods of canary {w.CANARY} are not restarted (the canary goes on; to restart them "
        f"too: kubectl rollout restart deployment/web-{w.CANARY})",
    ]


def test_after_a_restart_undo_still_recovers_the_exact_template() -> None:
    cluster = canary_cluster()
    assert run_with(cluster, "restart", "web")[0] == 0
    assert run_with(cluster, "undo", "web")[0] == 0
    assert template_of(cluster) == w.STABLE_TEMPLATE


def test_restart_without_a_stable_revision_or_its_deployment() -> None:
    no_status = w.rollout(w.STABLE_TEMPLATE)
    del no_status["status"]
    code, _, err = run_with(FakeCluster(no_status), "restart", "web")
    assert code == 1
    assert err == (
        'error: rollout "web" has no stable revision yet (is the Rollwise operator running?): '
        "nothing to restart\n"
    )
    code, _, err = run_with(FakeCluster(w.rollout(w.STABLE_TEMPLATE)), "restart", "web")
    assert code == 1
    assert err == f'error: deployment "web-{w.STABLE}" not found in namespace "shop"\n'


# ------------------------------------------------------------------------------ requests


@pytest.mark.parametrize(
    ("argv", "annotation"),
    [
        pytest.param(["promote", "web"], "rollwise.dev/promote", id="promote"),
        pytest.param(["promote", "web", "--full"], "rollwise.dev/promote-full", id="full"),
        pytest.param(["abort", "web"], "rollwise.dev/abort", id="abort"),
        pytest.param(["retry", "web"], "rollwise.dev/retry", id="retry"),
    ],
)
def test_requests_write_their_annotation(argv: list[str], annotation: str) -> None:
    cluster = canary_cluster()
    code, out, _ = run_with(cluster, *argv)
    assert code == 0
    ((_, _, body, content_type),) = cluster.writes
    assert content_type == "application/merge-patch+json"
    assert list(body["metadata"]["annotations"]) == [annotation]
    assert out.startswith(f"rollout.rollwise.dev/web {annotation.split('/')[1]} requested (id ")
