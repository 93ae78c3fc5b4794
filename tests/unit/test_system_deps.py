"""Each README command asks the system for what it needs, and only that
(``hack/ensure-system-deps.sh demo|test``): ``make demo`` needs Prometheus, Helm and Go, not
shellcheck nor Lua, which only ``make test`` uses. Checked with ``--check``, which installs
nothing, on a PATH holding only stand-ins for the tools found."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "hack" / "ensure-system-deps.sh"
BASH = "/bin/bash"


def _check(tmp_path: Path, profile: str, tools: list[str]) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in tools:
        stub = bin_dir / tool
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
    return subprocess.run(
        [BASH, str(SCRIPT), "--check", profile],
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_the_demo_needs_prometheus_helm_and_go_only(tmp_path: Path) -> None:
    found = _check(tmp_path, "demo", ["prometheus", "helm", "go"])
    assert (found.returncode, found.stdout.strip()) == (0, "make demo: nothing missing"), found


def test_the_tests_need_shellcheck_and_lua_too(tmp_path: Path) -> None:
    found = _check(tmp_path, "test", ["prometheus", "helm", "go"])
    assert found.returncode == 1, found
    assert found.stdout.strip() == "make test: missing shellcheck lua5.1 lua-cjson", found


@pytest.mark.parametrize(
    ("profile", "tools", "missing"),
    [
        pytest.param("demo", ["helm", "go"], "prometheus", id="demo-without-prometheus"),
        pytest.param("demo", ["prometheus", "go"], "helm", id="demo-without-helm"),
        pytest.param(
            "test",
            ["prometheus", "go", "shellcheck", "lua5.1"],
            "helm",
            id="test-without-helm",
        ),
    ],
)
def test_what_is_missing_is_named(
    tmp_path: Path, profile: str, tools: list[str], missing: str
) -> None:
    found = _check(tmp_path, profile, tools)
    assert found.returncode == 1, found
    assert found.stdout.strip().endswith(f"missing {missing}"), found


def test_without_go_the_lab_cannot_be_built(tmp_path: Path) -> None:
    found = _check(tmp_path, "demo", ["prometheus", "helm"])
    assert found.returncode == 1
    assert "Go (1.26 or newer) is required" in found.stderr


def test_the_makefile_asks_for_each_commands_own_needs() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert "\ndemo: demo-deps " in makefile
    assert "\ntest: system-deps " in makefile
    assert "ensure-system-deps.sh demo" in makefile
    assert "ensure-system-deps.sh test" in makefile
