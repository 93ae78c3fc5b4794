"""Every shell script under hack/ passes shellcheck (installed by hack/ensure-system-deps.sh)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

HACK = Path(__file__).resolve().parents[2] / "hack"
SCRIPTS = sorted(HACK.glob("*.sh"))


def test_there_are_scripts_to_check() -> None:
    assert HACK / "e2e-kind.sh" in SCRIPTS


@pytest.mark.parametrize("script", [pytest.param(s, id=s.name) for s in SCRIPTS])
def test_script_passes_shellcheck(script: Path) -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is missing: run hack/ensure-system-deps.sh"
    result = subprocess.run(
        [shellcheck, "--severity=style", "--external-sources", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_e2e_script_rejects_unknown_flags_before_touching_anything() -> None:
    result = subprocess.run(
        ["bash", str(HACK / "e2e-kind.sh"), "--no-such-flag"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert "unknown argument: --no-such-flag" in result.stderr
