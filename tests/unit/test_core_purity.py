"""The core reads no clock and no environment: time is an argument.

import-linter keeps ``os``, ``time``, ``asyncio`` and the I/O frameworks out of ``rollwise.core``;
this test covers what an import contract cannot see: calls such as ``datetime.now()``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "operator" / "rollwise" / "core"

#: Attribute calls that read the clock, the environment or entropy.
FORBIDDEN_CALLS = {"now", "utcnow", "today", "getenv", "monotonic", "perf_counter"}
FORBIDDEN_IMPORTS = {"random", "secrets", "uuid", "socket", "subprocess", "threading"}


def _violations(source: str) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in FORBIDDEN_CALLS
        ):
            found.append(f"line {node.lineno}: call .{node.func.attr}()")
        if isinstance(node, ast.Attribute) and node.attr == "environ":
            found.append(f"line {node.lineno}: reads .environ")
        if isinstance(node, ast.Import):
            found += [
                f"line {node.lineno}: import {a.name}"
                for a in node.names
                if a.name.split(".")[0] in FORBIDDEN_IMPORTS
            ]
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in (
            FORBIDDEN_IMPORTS
        ):
            found.append(f"line {node.lineno}: from {node.module} import ...")
    return found


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("from datetime import datetime\nx = datetime.now()", 1, id="clock"),
        pytest.param("import os\nx = os.environ['A']", 1, id="environ"),
        pytest.param("import random", 1, id="entropy"),
        pytest.param("def f(now):\n    return now.isoformat()", 0, id="time-as-argument"),
    ],
)
def test_the_checker_itself_finds_what_it_should(source: str, expected: int) -> None:
    assert len(_violations(source)) == expected


def test_core_modules_read_no_clock_environment_or_entropy() -> None:
    modules = sorted(CORE.rglob("*.py"))
    assert modules, "no core modules found"
    problems = {
        str(path.relative_to(CORE)): v
        for path in modules
        if (v := _violations(path.read_text(encoding="utf-8")))
    }
    assert problems == {}
