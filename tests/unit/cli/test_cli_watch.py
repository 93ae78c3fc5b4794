"""``kubectl rollwise get ... --watch`` against a scripted cluster: frames drawn per change, and
an object deleted while watched ends the watch with an error naming it (never a frozen frame
until the timeout)."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from typing import Any

import pytest

from rollwise.cli import watch as w
from rollwise.cli.display import display_for
from rollwise.cli.kube import MODELRELEASES, ROLLOUTS, CliError, Workloads
from rollwise.cli.render import ActualWeight
from tests.unit.cli import cli_builders as b
from tests.unit.cli import release_builders as rb

#: Long enough for every scripted change to arrive, short enough to bound a watch that misses
#: the deletion (the mutant this file guards against would otherwise wait here).
TIMEOUT = 3.0


class ScriptedCluster:
    """The part of ``rollwise.cli.kube.Cluster`` a watch uses: the object, then one watch
    stream that plays ``changes``; later streams stay empty."""

    def __init__(self, obj: dict[str, Any], changes: list[tuple[str, dict[str, Any]]]) -> None:
        self.obj = obj
        self.changes = list(changes)
        self.streams = 0

    def get_object(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        return self.obj

    def watch_object(
        self, plural: str, namespace: str, name: str, resource_version: str, stream_seconds: int
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        self.streams += 1
        changes, self.changes = self.changes, []
        if not changes:
            time.sleep(0.05)  # an idle stream: the server holds it open
        yield from changes

    def rollout_events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        return []

    def object_events(
        self, plural: str, namespace: str, name: str, uid: str | None = None
    ) -> list[dict[str, Any]]:
        return []

    def workloads(self, rollout: dict[str, Any]) -> Workloads:
        return Workloads([], [], [])

    def actual_weight(self, rollout: dict[str, Any]) -> ActualWeight | None:
        return None


def with_version(obj: dict[str, Any], version: str, **status: Any) -> dict[str, Any]:
    changed = {**obj, "metadata": {**obj["metadata"], "resourceVersion": version}}
    if status:
        changed["status"] = {**obj.get("status", {}), **status}
    return changed


ROLLOUT = b.rollout(b.healthy())
RELEASE = rb.release(rb.production())


def watch(plural: str, cluster: ScriptedCluster, out: io.StringIO) -> None:
    view = w.watch_release if plural == MODELRELEASES else w.watch_rollout
    name = cluster.obj["metadata"]["name"]
    namespace = cluster.obj["metadata"]["namespace"]
    view(
        cluster,  # type: ignore[arg-type]
        namespace,
        name,
        out=out,
        display=display_for(out, {}, "never"),
        timeout=TIMEOUT,
    )


@pytest.mark.parametrize(
    ("plural", "obj", "changes", "error", "frames"),
    [
        pytest.param(
            ROLLOUTS,
            ROLLOUT,
            [("DELETED", with_version(ROLLOUT, "43"))],
            'rollout "web" was deleted from namespace "shop"',
            1,
            id="rollout-deleted",
        ),
        pytest.param(
            ROLLOUTS,
            ROLLOUT,
            [
                ("MODIFIED", with_version(ROLLOUT, "43", message="moved on")),
                ("DELETED", with_version(ROLLOUT, "44")),
            ],
            'rollout "web" was deleted from namespace "shop"',
            None,
            id="rollout-modified-then-deleted",
        ),
        pytest.param(
            MODELRELEASES,
            RELEASE,
            [("DELETED", with_version(RELEASE, "78"))],
            'modelrelease "fraud-detector-7" was deleted from namespace "ml"',
            1,
            id="modelrelease-deleted",
        ),
        pytest.param(
            ROLLOUTS,
            ROLLOUT,
            [("MODIFIED", with_version(ROLLOUT, "43", message="moved on"))],
            None,
            2,
            id="rollout-modified-watch-runs-to-its-timeout",
        ),
        pytest.param(ROLLOUTS, ROLLOUT, [], None, 1, id="rollout-unchanged-one-frame"),
    ],
)
def test_watch(
    plural: str,
    obj: dict[str, Any],
    changes: list[tuple[str, dict[str, Any]]],
    error: str | None,
    frames: int | None,
) -> None:
    cluster = ScriptedCluster(obj, changes)
    out = io.StringIO()
    started = time.monotonic()
    if error is None:
        watch(plural, cluster, out)
        assert time.monotonic() - started >= TIMEOUT
    else:
        with pytest.raises(CliError) as raised:
            watch(plural, cluster, out)
        assert str(raised.value) == error
        assert time.monotonic() - started < TIMEOUT, "the deletion was noticed only at the timeout"
    drawn = out.getvalue().split("\n\nName:")
    assert drawn[0].startswith("Name:")
    if frames is not None:
        assert len(drawn) == frames, out.getvalue()
