"""``get rollout`` and ``list`` as a user sees them: the images and the revision tree, colour
on a terminal only (``--color``, ``NO_COLOR``, ``TERM=dumb``), and messages fitted to the
terminal's width rather than cut at a fixed length."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from typing import Any

import pytest

from rollwise.cli import display as display_module
from rollwise.cli.colour import strip, visible_len, wants_colour
from rollwise.cli.main import run
from rollwise.cli.render import render_rollout
from rollwise.cli.sections import events_lines
from rollwise.cli.text import MIN_MESSAGE, UNICODE
from rollwise.core.phases import Phase
from tests.unit.cli import cli_builders as b
from tests.unit.cli import workload_builders as w
from tests.unit.cli.fake_cluster import SERVED, FakeCluster

ESC = "\x1b["


class Terminal(io.StringIO):
    """What the plugin writes to when its output is a UTF-8 terminal."""

    encoding = "utf-8"

    def isatty(self) -> bool:
        return True


def run_with(
    cluster: FakeCluster,
    *argv: str,
    out: io.StringIO | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[int, str, str]:
    out = out if out is not None else io.StringIO()
    err = io.StringIO()
    code = run(list(argv), out, err, connector=lambda *_: cluster, environ=environ or {})
    return code, out.getvalue(), err.getvalue()


def canary_cluster(*extra: dict[str, Any], served: frozenset[str] = SERVED) -> FakeCluster:
    rollout = w.rollout(w.CANARY_TEMPLATE, canary=w.CANARY, step=1, phase=Phase.PAUSED, message="m")
    stable = w.deployment(w.STABLE, w.STABLE_TEMPLATE)
    canary = w.deployment(w.CANARY, w.CANARY_TEMPLATE, replicas=1)
    rs = w.replica_set(stable, "5d8f", replicas=3)
    pods = [w.pod(rs, s) for s in "abc"]
    return FakeCluster(rollout, stable, canary, rs, *pods, *extra, served=served)


def test_get_rollout_shows_images_and_the_revision_tree() -> None:
    code, out, err = run_with(canary_cluster(), "get", "rollout", "web")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[lines.index("Images:      app=ghcr.io/acme/web:1.1 (canary)") + 1 :][:2] == [
        "             app=ghcr.io/acme/web:1.0 (stable)",
        "             sidecar=busybox:1.36 (canary, stable)",
    ]
    tree = lines[lines.index("Revisions:") :]
    names = [line.split()[0] for line in tree[2:] if line.strip()]
    assert names[:3] == [w.CANARY, "`-", "`-"]  # ASCII branches: StringIO is not UTF-8
    assert f"web-{w.STABLE}-5d8f-c" in out
    assert "Weight:      25% to the canary (set), 25% actual (replica ratio)" in lines
    assert ESC not in out  # a pipe gets no colour


def test_get_rollout_on_a_cluster_without_controllers() -> None:
    cluster = canary_cluster(served=SERVED - {"replicasets", "pods"})
    code, out, _ = run_with(cluster, "get", "rollout", "web")
    assert code == 0
    assert (
        out.count("(no ReplicaSets: this API server does not serve them, so no pods run here)") == 2
    )


@pytest.mark.parametrize(
    ("tty", "environ", "choice", "expected"),
    [
        pytest.param(True, {}, "auto", True, id="terminal"),
        pytest.param(False, {}, "auto", False, id="pipe"),
        pytest.param(True, {"NO_COLOR": "1"}, "auto", False, id="no-color"),
        pytest.param(True, {"NO_COLOR": ""}, "auto", True, id="no-color-empty-is-unset"),
        pytest.param(True, {"TERM": "dumb"}, "auto", False, id="dumb-terminal"),
        pytest.param(False, {}, "always", True, id="always-into-a-pipe"),
        pytest.param(True, {"NO_COLOR": "1"}, "always", True, id="flag-overrides-no-color"),
        pytest.param(True, {}, "never", False, id="never"),
    ],
)
def test_colour_rules(tty: bool, environ: dict[str, str], choice: str, expected: bool) -> None:
    stream = Terminal() if tty else io.StringIO()
    assert wants_colour(stream, environ, choice) is expected
    argv = ["get", "rollout", "web", "--color", choice]
    _, out, _ = run_with(canary_cluster(), *argv, out=stream, environ=environ)
    assert (ESC in out) is expected


def test_colour_marks_words_and_keeps_the_layout() -> None:
    _, coloured, _ = run_with(canary_cluster(), "get", "rollout", "web", out=Terminal())
    _, plain, _ = run_with(
        canary_cluster(), "get", "rollout", "web", "--color", "never", out=Terminal()
    )
    assert strip(coloured) == plain
    assert "Phase:       \x1b[33mPaused\x1b[0m" in coloured
    assert "\x1b[36m▶ 2\x1b[0m" in coloured  # the current step, marker and number together
    _, listed, _ = run_with(canary_cluster(), "list", out=Terminal())
    assert "\x1b[33mPaused\x1b[0m" in listed


LONG = "step 3/5: " + " ".join(f"word{i}" for i in range(60))


def test_event_messages_are_whole_when_not_on_a_terminal() -> None:
    event = b.event("AnalysisFailed", LONG, 30, "Warning")
    text = render_rollout(b.rollout(b.healthy()), [event], b.NOW)
    assert LONG in text
    assert len(LONG) > 160


@pytest.mark.parametrize("width", [200, 120, 90])
def test_event_messages_fit_the_terminal(width: int) -> None:
    event = b.event("AnalysisFailed", LONG, 30, "Warning")
    lines = events_lines([event], b.NOW, UNICODE, width=width)
    row = lines[-1]
    assert visible_len(row) == width
    assert row.endswith("…")
    assert row.split("   ")[-1].startswith("step 3/5: word0 word1")


def test_a_narrow_terminal_keeps_a_readable_part_of_the_message() -> None:
    event = b.event("AnalysisFailed", LONG, 30, "Warning")
    row = events_lines([event], b.NOW, UNICODE, width=50)[-1]
    message = row.split("   ")[-1].strip()
    assert len(message) == MIN_MESSAGE


def test_a_short_message_is_never_cut() -> None:
    event = b.event("WeightSet", "step 1/5: canary weight set to 5%", 30)
    row = events_lines([event], b.NOW, UNICODE, width=80)[-1]
    assert row.endswith("step 1/5: canary weight set to 5%")


def test_the_terminal_width_is_read_from_the_output(monkeypatch: pytest.MonkeyPatch) -> None:
    class Sized(Terminal):
        def fileno(self) -> int:
            return 99

    monkeypatch.setattr(
        display_module.os, "get_terminal_size", lambda fd: os.terminal_size((133, 40))
    )
    shown = display_module.display_for(Sized(), {})
    assert shown.columns() == 133
    assert display_module.display_for(io.StringIO(), {}).columns() is None


# ------------------------------------------------------------------------------ list


def release(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "rollwise.dev/v1alpha1",
        "kind": "ModelRelease",
        "metadata": {"name": name, "creationTimestamp": b.stamp(600)},
        "spec": {"model": "fraud", "version": "7"},
        "status": {"stage": "Staging", "phase": "Progressing"},
    }


def test_list_rollouts_lists_only_rollouts() -> None:
    cluster = canary_cluster(release("fraud-7"))
    code, out, _ = run_with(cluster, "list", "rollouts")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == ["NAME", "web"]
    both = run_with(cluster, "list")[1]
    assert "fraud-7" in both
    assert "web" in both


def test_list_modelreleases_lists_only_releases() -> None:
    cluster = canary_cluster(release("fraud-7"))
    code, out, _ = run_with(cluster, "list", "mr", "-A")
    assert code == 0
    rows = [line.split() for line in out.splitlines()]
    assert rows[0][:3] == ["NAMESPACE", "NAME", "STAGE"]
    assert rows[1][:4] == ["shop", "fraud-7", "Staging", "Progressing"]
    assert len(rows) == 2


def test_list_modelreleases_when_there_are_none_or_no_crd() -> None:
    assert run_with(canary_cluster(), "list", "modelreleases") == (
        0,
        'No model releases found in namespace "shop".\n',
        "",
    )
    cluster = canary_cluster(served=SERVED - {"modelreleases"})
    code, out, err = run_with(cluster, "list", "modelreleases")
    assert (code, out) == (1, "")
    assert err == (
        "error: modelreleases.rollwise.dev is not installed in this cluster "
        "(kubectl apply -f crds/)\n"
    )


def test_events_of_an_earlier_rollout_of_the_same_name_are_left_out() -> None:
    def event(uid: str, message: str) -> dict[str, Any]:
        found = b.event("Initialized", message, 60)
        found.update(apiVersion="v1", kind="Event")
        found["metadata"]["name"] = f"web.{uid}"
        found["involvedObject"]["uid"] = uid
        return found

    cluster = canary_cluster(event("deleted-before", "the old one"), event(w.UID, "this one"))
    code, out, _ = run_with(cluster, "get", "rollout", "web")
    assert code == 0
    assert "this one" in out
    assert "the old one" not in out
