"""``docs/playbook.md`` tells an on-call engineer which commands to run: each one it shows
(in a shell block or an inline code span) parses with the plugin's real argument parser, so
that no command or flag in it is made up or has drifted from the plugin."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from rollwise.cli.parser import build_parser

PLAYBOOK = Path(__file__).resolve().parents[3] / "docs" / "playbook.md"
BLOCK = re.compile(r"```sh\n(.*?)```", re.DOTALL)
INLINE = re.compile(r"`(kubectl rollwise [^`]+)`")


def commands() -> list[str]:
    text = PLAYBOOK.read_text(encoding="utf-8")
    found = [
        line.strip()
        for block in BLOCK.findall(text)
        for line in block.splitlines()
        if line.strip().startswith("kubectl rollwise ")
    ]
    found += [m for m in INLINE.findall(text) if "..." not in m]
    return found


COMMANDS = commands()


def test_the_playbook_covers_each_decision_and_shows_commands() -> None:
    text = PLAYBOOK.read_text(encoding="utf-8")
    headings = set(re.findall(r"^## (.+)$", text, re.MULTILINE))
    assert {"Expand", "Hold", "Rollback", "Override", "The nightly report"} <= headings
    assert len(COMMANDS) >= 25
    used = {shlex.split(c, comments=True)[2] for c in COMMANDS}
    assert used >= {"list", "get", "explain", "scoreboard", "report", "promote", "retry"}
    assert used >= {"abort", "override", "undo", "pause", "resume", "status", "revoke"}


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_parses(command: str) -> None:
    argv = shlex.split(command, comments=True)
    assert argv[:2] == ["kubectl", "rollwise"]
    try:
        build_parser().parse_args(argv[2:])
    except SystemExit as exc:  # argparse's way of refusing; its message went to stderr
        pytest.fail(f"{command!r} does not parse (exit {exc.code})")
