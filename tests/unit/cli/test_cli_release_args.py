"""Arguments of the ModelRelease commands (``get modelrelease``, ``approve``, ``revoke``,
``waive``) and the exact request annotations they write, without an API server."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rollwise.cli import manual
from rollwise.cli.main import run
from rollwise.cli.parser import build_parser


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param(
            ["get", "modelrelease", "fraud-7"],
            {"kind": "modelrelease", "name": "fraud-7", "watch": False},
            id="get-modelrelease",
        ),
        pytest.param(
            ["get", "mr", "fraud-7", "-w", "--timeout", "10s", "-n", "ml"],
            {"kind": "mr", "watch": True, "timeout": 10.0, "namespace": "ml"},
            id="get-mr-watch",
        ),
        pytest.param(["get", "modelreleases", "x"], {"kind": "modelreleases"}, id="plural"),
        pytest.param(["get", "rollout", "demo"], {"kind": "rollout"}, id="rollout-still"),
        pytest.param(
            ["approve", "modelrelease/fraud-7", "--role", "security"],
            {
                "command": "approve",
                "target": ("modelreleases", "fraud-7"),
                "role": "security",
                "version": None,
            },
            id="approve-kind-slash-name",
        ),
        pytest.param(
            ["approve", "fraud-7", "--role", "product", "--version", "7", "--context", "lab"],
            {"target": ("modelreleases", "fraud-7"), "version": "7", "context": "lab"},
            id="approve-bare-name",
        ),
        pytest.param(
            ["approve", "rollout/checkout", "--role", "product", "--step", "3"],
            {"target": ("rollouts", "checkout"), "role": "product", "step": 3},
            id="approve-rollout",
        ),
        pytest.param(
            ["revoke", "mr/fraud-7", "--reason", "wrong data"],
            {"command": "revoke", "release": "fraud-7", "reason": "wrong data"},
            id="revoke-short-kind",
        ),
        pytest.param(
            ["revoke", "modelrelease.rollwise.dev/fraud-7", "--reason", "x"],
            {"release": "fraud-7"},
            id="revoke-as-printed",
        ),
        pytest.param(
            ["waive", "fraud-7", "--gate", "sbom", "--reason", "triaged", "--for", "24h"],
            {"command": "waive", "gate": "sbom", "reason": "triaged", "duration": "24h"},
            id="waive",
        ),
    ],
)
def test_parsing(argv: list[str], expected: dict[str, object]) -> None:
    args = build_parser().parse_args(argv)
    for key, value in expected.items():
        assert getattr(args, key) == value, key


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(
            ["approve", "deployment/demo", "--role", "security"],
            "'deployment/demo' is not rollout/NAME nor a ModelRelease (NAME or modelrelease/NAME)",
            id="other-kind",
        ),
        pytest.param(
            ["approve", "rollout/demo", "--role", "security", "--step", "0"],
            "'0' is not a step number",
            id="step-zero",
        ),
        pytest.param(
            ["approve", "modelrelease/", "--role", "security"],
            "is not rollout/NAME nor a ModelRelease",
            id="empty-name",
        ),
        pytest.param(
            ["approve", "fraud-7"], "the following arguments are required: --role", id="no-role"
        ),
        pytest.param(
            ["revoke", "fraud-7"], "the following arguments are required: --reason", id="no-reason"
        ),
        pytest.param(
            ["revoke", "fraud-7", "--reason", "  "], "the reason must not be empty", id="blank"
        ),
        pytest.param(
            ["waive", "fraud-7", "--gate", "sbom", "--reason", "x"],
            "the following arguments are required: --for",
            id="no-duration",
        ),
        pytest.param(
            ["waive", "fraud-7", "--gate", "sbom", "--reason", "x", "--for", "a while"],
            "argument --for",
            id="bad-duration",
        ),
        pytest.param(
            ["waive", "fraud-7", "--gate", "sbom", "--reason", "x", "--for", "0s"],
            "'0s' is not a positive duration",
            id="zero-duration",
        ),
        pytest.param(["get", "mrx", "fraud-7"], "invalid choice: 'mrx'", id="bad-kind"),
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


@pytest.mark.parametrize("command", ["approve", "revoke", "waive"])
def test_release_commands_have_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        run_cli(command, "--help")
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: kubectl rollwise {command}")
    assert f"rollwise.dev/{command}" in out
    assert "--kubeconfig" in out


def test_top_level_help_lists_release_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run_cli("--help")
    out = capsys.readouterr().out
    for command in ("approve", "revoke", "waive"):
        assert re.search(rf"^\s+{command}\s", out, re.MULTILINE), command
    assert "kubectl rollwise get modelrelease" in out


def test_request_annotations_are_the_protocol_json() -> None:
    request = manual.request_id(datetime(2026, 11, 22, 1, 40, 5, tzinfo=UTC), "3f9a1c")
    approve = manual.approve_patch(request, "security", "7")
    revoke = manual.revoke_patch(request, "wrong training data")
    waive = manual.waive_patch(request, "sbom", "CVE triaged", "24h")
    assert approve == {
        "metadata": {
            "annotations": {
                "rollwise.dev/approve": json.dumps(
                    {"id": request, "role": "security", "version": "7"}
                )
            }
        }
    }
    assert revoke["metadata"]["annotations"] == {
        "rollwise.dev/revoke": f'{{"id": "{request}", "reason": "wrong training data"}}'
    }
    assert json.loads(waive["metadata"]["annotations"]["rollwise.dev/waive"]) == {
        "id": request,
        "gate": "sbom",
        "reason": "CVE triaged",
        "for": "24h",
    }


def test_release_command_with_missing_kubeconfig_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    code, out, err = run_cli("revoke", "fraud-7", "--reason", "x", "--kubeconfig", str(missing))
    assert code == 1
    assert out == ""
    assert err == f"error: kubeconfig {missing} does not exist\n"
