"""Arguments of ``kubectl rollwise``, the request patches it writes, and configuration errors
(all without an API server)."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rollwise.cli import manual
from rollwise.cli.main import run
from rollwise.cli.parser import build_parser
from rollwise.core.observations import RequestKind, requests_from_annotations


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param([], "the following arguments are required: COMMAND", id="no-command"),
        pytest.param(["frobnicate", "web"], "invalid choice: 'frobnicate'", id="bad-command"),
        pytest.param(["promote"], "the following arguments are required: name", id="no-name"),
        pytest.param(["get", "rollout"], "the following arguments are required: name", id="get"),
        pytest.param(["get", "deployment", "web"], "invalid choice: 'deployment'", id="kind"),
        pytest.param(["abort", "a", "b"], "unrecognized arguments: b", id="two-names"),
        pytest.param(["get", "rollout", "web", "--timeout", "soon"], "invalid", id="timeout"),
        pytest.param(["pause", "web", "-A"], "unrecognized arguments: -A", id="all-ns-on-pause"),
        pytest.param(
            ["set", "image", "web", "ghcr.io/acme/web:1.2"],
            "'ghcr.io/acme/web:1.2' is not CONTAINER=IMAGE",
            id="set-image-without-container",
        ),
        pytest.param(
            ["set", "image", "web", "app="], "'app=' is not CONTAINER=IMAGE", id="empty-image"
        ),
        pytest.param(["set", "image", "web"], "required: CONTAINER=IMAGE", id="no-image"),
        pytest.param(["set", "web", "app=x:1"], "invalid choice: 'web'", id="set-what"),
        pytest.param(
            ["status", "web", "--timeout", "5s"],
            "--timeout applies to --watch only",
            id="status-timeout-without-watch",
        ),
        pytest.param(["list", "deployments"], "invalid choice: 'deployments'", id="list-kind"),
        pytest.param(
            ["get", "rollout", "web", "--color", "sometimes"], "invalid choice", id="color"
        ),
        pytest.param(
            ["get", "rollout", "web", "--timeout", "5s"],
            "--timeout applies to --watch only",
            id="timeout-without-watch",
        ),
    ],
)
def test_bad_arguments_exit_2_with_usage(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        run_cli(*argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: kubectl rollwise")
    assert message in err


COMMANDS = [
    "get",
    "list",
    "promote",
    "abort",
    "retry",
    "pause",
    "resume",
    "set image",
    "undo",
    "restart",
    "status",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        run_cli(*command.split(), "--help")
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: kubectl rollwise {command}")
    assert "--namespace" in out
    assert "--kubeconfig" in out
    assert "--color" in out


def test_top_level_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run_cli("--help")
    out = capsys.readouterr().out
    for command in [c.split()[0] for c in COMMANDS]:
        assert re.search(rf"^\s+{command}\s", out, re.MULTILINE), command
    assert "rollwise.dev/<request>" in out


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param(
            ["-n", "shop", "get", "rollout", "web"],
            {"namespace": "shop", "name": "web", "watch": False, "timeout": None},
            id="namespace-before-command",
        ),
        pytest.param(
            ["get", "rollout", "web", "-n", "shop", "-w", "--timeout", "1m30s"],
            {"namespace": "shop", "watch": True, "timeout": 90.0},
            id="namespace-after-command-watch-timeout",
        ),
        pytest.param(
            ["get", "rwr", "web", "--watch", "--timeout", "5"],
            {"kind": "rwr", "watch": True, "timeout": 5.0},
            id="short-name-plain-seconds",
        ),
        pytest.param(
            ["--context", "lab", "list", "rollouts", "-A"],
            {"context": "lab", "all_namespaces": True, "kind": "rollouts"},
            id="list-all",
        ),
        pytest.param(["list"], {"all_namespaces": False, "namespace": None}, id="list-default"),
        pytest.param(
            ["promote", "web", "--full", "--kubeconfig", "/k"],
            {"full": True, "kubeconfig": "/k", "command": "promote"},
            id="promote-full",
        ),
        pytest.param(["resume", "web"], {"command": "resume", "name": "web"}, id="resume"),
        pytest.param(
            ["set", "image", "web", "app=ghcr.io/acme/web:1.2", "*=busybox:1.36", "-n", "x"],
            {
                "command": "set",
                "name": "web",
                "images": [("app", "ghcr.io/acme/web:1.2"), ("*", "busybox:1.36")],
                "namespace": "x",
            },
            id="set-image-pairs",
        ),
        pytest.param(
            ["set", "image", "web", "app=registry:5000/web@sha256:abc"],
            {"images": [("app", "registry:5000/web@sha256:abc")]},
            id="image-with-port-and-digest",
        ),
        pytest.param(["undo", "web"], {"command": "undo", "to_revision": None}, id="undo"),
        pytest.param(
            ["undo", "web", "--to-revision", "1a18a1"], {"to_revision": "1a18a1"}, id="undo-to"
        ),
        pytest.param(["restart", "web"], {"command": "restart", "name": "web"}, id="restart"),
        pytest.param(
            ["status", "web", "-w", "--timeout", "10m"],
            {"command": "status", "watch": True, "timeout": 600.0},
            id="status-watch-timeout",
        ),
        pytest.param(["status", "web"], {"watch": False, "timeout": None}, id="status"),
        pytest.param(["list", "mr", "-A"], {"kind": "mr", "all_namespaces": True}, id="list-mr"),
        pytest.param(["--color", "never", "list"], {"color": "never"}, id="color-before"),
        pytest.param(["list", "--color", "always"], {"color": "always"}, id="color-after"),
        pytest.param(["list"], {"color": "auto"}, id="color-default"),
    ],
)
def test_parsing(argv: list[str], expected: dict[str, object]) -> None:
    args = build_parser().parse_args(argv)
    for key, value in expected.items():
        assert getattr(args, key) == value, key


@pytest.mark.parametrize("kind", list(RequestKind), ids=[k.value for k in RequestKind])
def test_request_patch_is_what_the_core_reads(kind: RequestKind) -> None:
    request = manual.request_id(datetime(2026, 11, 22, 1, 40, 5, 123456, tzinfo=UTC), "3f9a1c")
    assert request == "2026-11-22T01:40:05Z-3f9a1c"
    patch = manual.request_patch(kind, request)
    assert patch == {"metadata": {"annotations": {f"rollwise.dev/{kind.value}": request}}}
    found = requests_from_annotations(patch["metadata"]["annotations"])
    assert [(r.kind, r.id) for r in found] == [(kind, request)]


def test_request_ids_are_unique_within_a_second() -> None:
    now = datetime(2026, 11, 22, 1, 40, 5, tzinfo=UTC)
    ids = {manual.request_id(now) for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"2026-11-22T01:40:05Z-[0-9a-f]{6}", i) for i in ids)


def test_paused_patch() -> None:
    assert manual.paused_patch(True) == {"spec": {"paused": True}}
    assert manual.paused_patch(False) == {"spec": {"paused": False}}


def test_missing_kubeconfig_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    code, out, err = run_cli("--kubeconfig", str(missing), "list")
    assert code == 1
    assert out == ""
    assert err == f"error: kubeconfig {missing} does not exist\n"


def test_unreadable_kubeconfig_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "kubeconfig"
    broken.write_text("apiVersion: v1\nkind: Config\ncurrent-context: gone\ncontexts: []\n")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    code, _, err = run_cli("get", "rollout", "web", "--kubeconfig", str(broken))
    assert code == 1
    assert err.startswith("error: cannot load the Kubernetes configuration: ")
    assert err.count("\n") == 1


def test_unknown_context_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: lab\n"
        "clusters: [{name: lab, cluster: {server: 'http://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {}}]\n"
        "contexts: [{name: lab, context: {cluster: lab, user: u, namespace: shop}}]\n"
    )
    code, _, err = run_cli("list", "--kubeconfig", str(config), "--context", "elsewhere")
    assert code == 1
    assert err.startswith("error: cannot load the Kubernetes configuration: ")
    assert "elsewhere" in err
    assert err.count("\n") == 1
