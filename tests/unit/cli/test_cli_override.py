"""``kubectl rollwise override``: arguments, the request annotations it writes (the webhook's
protocol), and when it tells a person a promote will wait for a second confirmation. The
read-back against a real webhook runs in tests/e2e/test_override_e2e.py."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from rollwise.cli import manual, records
from rollwise.cli.kube import MODELRELEASES, ROLLOUTS
from rollwise.cli.main import run
from rollwise.cli.parser import build_parser
from rollwise.cli.release_commands import _override_wait
from rollwise.core import overrides as o
from rollwise.core.observations import revision_of

TEMPLATE = {"metadata": {"labels": {"app": "demo"}}, "spec": {"containers": [{"name": "a"}]}}
REV = revision_of(TEMPLATE)


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param(
            ["override", "rollout/demo", "--decision", "hold", "--reason", "look"],
            {"target": (ROLLOUTS, "demo"), "decision": "hold", "reason": "look", "confirm": None},
            id="rollout-hold",
        ),
        pytest.param(
            ["override", "rollouts.rollwise.dev/demo", "--confirm", "abc", "-n", "apps"],
            {"target": (ROLLOUTS, "demo"), "confirm": "abc", "namespace": "apps"},
            id="confirm-as-printed",
        ),
        pytest.param(
            ["override", "mr/fraud-7", "--decision", "rollback", "--reason", "bias"],
            {"target": (MODELRELEASES, "fraud-7"), "decision": "rollback"},
            id="modelrelease-rollback",
        ),
        pytest.param(
            ["override", "modelrelease/fraud-7", "--decision", "promote", "--reason", "x"],
            {"target": (MODELRELEASES, "fraud-7"), "decision": "promote"},
            id="modelrelease-promote",
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
            ["override", "demo", "--decision", "hold", "--reason", "x"],
            "'demo' is not rollout/NAME nor modelrelease/NAME",
            id="no-kind",
        ),
        pytest.param(
            ["override", "deployment/demo", "--decision", "hold", "--reason", "x"],
            "is not rollout/NAME nor modelrelease/NAME",
            id="other-kind",
        ),
        pytest.param(
            ["override", "rollout/demo", "--decision", "skip", "--reason", "x"],
            "argument --decision: invalid choice: 'skip'",
            id="bad-decision",
        ),
        pytest.param(
            ["override", "rollout/demo", "--decision", "hold", "--reason", " "],
            "the reason must not be empty",
            id="blank-reason",
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


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(
            ["override", "rollout/demo", "--decision", "hold"],
            "error: override needs --decision and --reason, or --confirm ID\n",
            id="no-reason",
        ),
        pytest.param(
            ["override", "rollout/demo", "--confirm", "x", "--decision", "hold"],
            "error: --confirm takes no --decision or --reason: it confirms a recorded one\n",
            id="confirm-and-decision",
        ),
    ],
)
def test_incomplete_requests_are_one_line_errors(argv: list[str], message: str) -> None:
    assert run_cli(*argv) == (1, "", message)


def test_override_with_missing_kubeconfig_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    code, out, err = run_cli(
        "override", "rollout/demo", "--confirm", "x", "--kubeconfig", str(missing)
    )
    assert (code, out) == (1, "")
    assert err == f"error: kubeconfig {missing} does not exist\n"


def test_the_requests_are_the_webhook_protocol() -> None:
    request = manual.request_id(datetime(2026, 11, 22, 1, 40, 5, tzinfo=UTC), "3f9a1c")
    assert manual.OVERRIDE == o.OVERRIDE
    assert manual.CONFIRM_OVERRIDE == o.CONFIRM_OVERRIDE
    assert records.OVERRIDES == o.OVERRIDES
    assert set(manual.OVERRIDE_DECISIONS) == {d.value for d in o.OverrideDecision}
    patch = manual.override_patch(request, "promote", "noisy metric")
    assert json.loads(patch["metadata"]["annotations"][o.OVERRIDE]) == {
        "id": request,
        "decision": "promote",
        "reason": "noisy metric",
    }
    assert manual.confirm_patch(request) == {
        "metadata": {"annotations": {o.CONFIRM_OVERRIDE: json.dumps({"id": request})}}
    }


def test_the_read_back_finds_the_newest_record_of_an_id() -> None:
    entries = [
        {"id": "a", "decision": "hold", "reason": "r", "user": "alice", "at": "t", "target": REV},
        {"id": "b", "decision": "promote", "reason": "r", "user": "alice", "at": "t"},
        {
            **{"id": "b", "decision": "promote", "reason": "r", "user": "alice"},
            "confirmedBy": "bob",
        },
        "garbage",
    ]
    annotations = {records.OVERRIDES: json.dumps(entries)}
    found = records.override_of(annotations, "b")
    assert found is not None
    assert (found.user, found.confirmed_by) == ("alice", "bob")
    assert records.override_of(annotations, "c") is None
    assert [r.id for r in records.overrides(annotations)] == ["a", "b", "b"]


def test_the_read_back_reads_the_signed_list_in_the_order_of_its_counter() -> None:
    entries = [
        {"id": "b", "decision": "hold", "reason": "r", "user": "bob", "at": "t", "n": 5},
        {"id": "a", "decision": "promote", "reason": "r", "user": "alice", "at": "t", "n": 2},
    ]
    signed = {"version": 2, "seq": 5, "entries": entries, "sig": "0" * 64}
    annotations = {records.OVERRIDES: json.dumps(signed)}
    assert [r.id for r in records.overrides(annotations)] == ["a", "b"]
    found = records.override_of(annotations, "b")
    assert found is not None
    assert found.user == "bob"


#: A new revision (REV) held by the confirmed regression (action hold) of the stable one.
WATCH = {"revision": "old", "action": "hold", "kpis": [{"state": "confirmed"}]}
HELD = {"stableRevision": "old", "postPromotion": WATCH}


def rollout(status: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"template": TEMPLATE}, "status": status}


@pytest.mark.parametrize(
    ("kind", "obj", "waits"),
    [
        pytest.param(ROLLOUTS, rollout({"rolledBackRevision": REV}), True, id="rolled-back"),
        pytest.param(
            ROLLOUTS,
            rollout({"canaryRevision": REV, "pauseReason": "AnalysisInconclusive"}),
            True,
            id="inconclusive",
        ),
        pytest.param(ROLLOUTS, rollout({"canaryRevision": REV}), False, id="healthy-canary"),
        pytest.param(ROLLOUTS, rollout({"rolledBackRevision": "other"}), False, id="older"),
        pytest.param(ROLLOUTS, {"spec": {}}, False, id="no-status"),
        pytest.param(ROLLOUTS, rollout(HELD), True, id="regression-hold"),
        pytest.param(
            ROLLOUTS,
            rollout({**HELD, "postPromotion": {**WATCH, "action": "alert"}}),
            False,
            id="regression-alert-holds-nothing",
        ),
        pytest.param(
            ROLLOUTS,
            rollout({**HELD, "postPromotion": {**WATCH, "kpis": [{"state": "cleared"}]}}),
            False,
            id="regression-cleared",
        ),
        pytest.param(
            ROLLOUTS, rollout({**HELD, "stableRevision": REV}), False, id="held-is-stable"
        ),
        pytest.param(
            MODELRELEASES,
            {"status": {"gates": [{"name": "sbom", "status": "Failed"}]}},
            True,
            id="failed-gate",
        ),
        pytest.param(
            MODELRELEASES,
            {"status": {"gates": [{"name": "approvals", "status": "Failed"}]}},
            False,
            id="approvals-are-not-overridden",
        ),
    ],
)
def test_when_a_promote_waits_for_confirmation(kind: str, obj: dict[str, Any], waits: bool) -> None:
    assert _override_wait(kind, obj) is waits


def test_a_promote_past_a_regression_hold_parses_and_says_it_waits_for_a_second_person() -> None:
    args = build_parser().parse_args(
        ["override", "rollout/demo", "--decision", "promote", "--reason", "fix is in v3", "-n", "a"]
    )
    assert (args.target, args.decision, args.reason, args.namespace) == (
        (ROLLOUTS, "demo"),
        "promote",
        "fix is in v3",
        "a",
    )
    assert _override_wait(args.target[0], rollout(HELD)) is True
    confirm = build_parser().parse_args(["override", "rollout/demo", "--confirm", "r-1"])
    assert (confirm.confirm, confirm.decision) == ("r-1", None)


def test_the_override_help_names_the_regression_hold(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["override", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "a confirmed post-promotion regression holds (RegressionHold" in help_text
