"""The package layout promises of the project: ``operator/`` is a source root, not a package."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_operator_dir_is_a_source_root_not_a_package() -> None:
    assert not (ROOT / "operator" / "__init__.py").exists()
    assert (ROOT / "operator" / "rollwise" / "__init__.py").is_file()


def test_import_operator_still_yields_the_standard_library() -> None:
    # Run from the repository root with it first on sys.path: the worst case for shadowing.
    code = (
        "import sys; sys.path.insert(0, '.'); sys.path.insert(0, 'operator');"
        "import operator; print(operator.__file__); print(operator.add(2, 3))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split()
    assert Path(out[0]).parent != ROOT
    assert "site-packages" not in out[0]
    assert out[1] == "5"


def test_operator_module_in_this_process_is_the_standard_library() -> None:
    operator = importlib.import_module("operator")
    assert callable(operator.itemgetter)
    assert Path(str(operator.__file__)).name == "operator.py"


def test_rollwise_package_layers_import() -> None:
    for name in ("rollwise", "rollwise.core", "rollwise.adapters", "rollwise.runtime"):
        module = importlib.import_module(name)
        assert module.__doc__, f"{name} has no module docstring"


def test_test_modules_have_unique_basenames() -> None:
    """The test folders are not packages (rootdir imports): two test files with one basename
    would make pytest refuse to collect the second in the same run."""
    seen: dict[str, Path] = {}
    clashes: list[str] = []
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        if path.name in seen:
            clashes.append(f"{seen[path.name].relative_to(ROOT)} ~ {path.relative_to(ROOT)}")
        seen.setdefault(path.name, path)
    assert not clashes, clashes
