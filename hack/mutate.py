"""Mutation testing of the core and the runtime's pass logic with mutmut (``make mutate``).

mutmut imports the mutated code from ``mutants/src`` and finds only ``src/`` (or flat) layouts,
while Rollwise keeps its package under the source root ``operator/``. So this script lays out a
work tree in ``.mutation/`` (git-ignored): the tracked files of the repository as they are now,
plus ``src/rollwise``, a copy of ``operator/rollwise``. mutmut runs there, puts
``mutants/src`` first on ``sys.path`` (ahead of the editable install's ``operator/``), and so
the unit suite exercises the mutated package. Its results in ``.mutation/mutants`` survive from
one run to the next, so an unchanged function is not tested again.

    python -m hack.mutate                          # everything in MUTATED (tens of minutes)
    python -m hack.mutate 'rollwise.core.analysis.*'   # one module (mutmut's name globs)
    python -m hack.mutate --survivors              # test the survivors again (after new tests)
    python -m hack.mutate --report                 # only print the score table of the last runs

The score per module (killed / total, survivors by name) is printed at the end; ``mutmut show
NAME`` run in ``.mutation/`` prints one mutant's diff. docs/testing.md records the score.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".mutation"

#: What is mutated (paths in the work tree): the pure core, and the runtime's generic pass
#: skeleton (observe, decide, act, persist once, post events).
MUTATED = (
    "src/rollwise/core/*",
    "src/rollwise/runtime/passes.py",
)
#: With ``--runtime``: the Rollout and ModelRelease passes too (about 2,200 more mutants, most
#: of them wiring: names of API calls, log fields, metric labels; a few hours on two cores).
RUNTIME = (
    "src/rollwise/runtime/reconcile.py",
    "src/rollwise/runtime/release.py",
)

#: The tests that judge the mutants: the unit suite (no lab, no cluster, no network), less
#: three files whose cost per mutant buys no decision check of their own: the Helm chart's
#: rendering (reaches no mutated code), the benchmark harness's smoke run (13 s, asserts
#: figures), and the crash-consistency replay (30 s for every mutant of ``decide``; it kills
#: the process between writes, and the core's own tables judge the decisions it replays).
#: Leaving tests out can only lower the score, never flatter it.
TESTS = (
    "tests/unit",
    "--ignore=tests/unit/test_chart.py",
    "--ignore=tests/unit/test_bench_smoke.py",
    "--ignore=tests/unit/runtime/test_crash_consistency.py",
)

#: mutmut's exit codes per mutant, as it records them in its ``.meta`` files (mutmut.stats).
#: A timeout counts as killed (the mutant made the tests hang); "no tests" (no unit test reaches
#: the mutated function) counts against the score.
STATUS_BY_EXIT_CODE: dict[int | None, str] = {
    1: "killed",
    3: "killed",
    0: "survived",
    5: "no tests",
    33: "no tests",
    2: "interrupted",
    34: "skipped",
    35: "suspicious",
    36: "timeout",
    37: "caught by type check",
    -24: "timeout",
    24: "timeout",
    152: "timeout",
    255: "timeout",
    -11: "segfault",
    -9: "segfault",
    None: "not checked",
}

CONFIG = """\
[mutmut]
source_paths = src/rollwise
only_mutate =
{only}
also_copy =
{copy}
pytest_add_cli_args =
    -p
    no:cacheprovider
pytest_add_cli_args_test_selection =
{tests}
"""


def tracked_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    return [name for name in out.split("\0") if name]


def lay_out(mutated: tuple[str, ...]) -> None:
    """Refresh the work tree (keeping ``mutants/``, mutmut's results) from the checkout."""
    WORK.mkdir(exist_ok=True)
    for entry in WORK.iterdir():
        if entry.name == "mutants":
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    top_level: set[str] = set()
    for name in tracked_files():
        top_level.add(name.split("/")[0])
        source = ROOT / name
        if not source.is_file():
            continue  # deleted in the work tree, not yet committed
        target = WORK / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    shutil.copytree(ROOT / "operator" / "rollwise", WORK / "src" / "rollwise", dirs_exist_ok=True)
    # mutmut reads setup.cfg when pyproject.toml has no [tool.mutmut]; the paths are the work
    # tree's.
    (WORK / "setup.cfg").write_text(
        CONFIG.format(
            only="\n".join(f"    {pattern}" for pattern in mutated),
            tests="\n".join(f"    {path}" for path in TESTS),
            # everything the unit suite reads (CRDs, chart, examples, README, Dockerfile, ...)
            copy="\n".join(f"    {name}" for name in sorted(top_level)),
        ),
        encoding="utf-8",
    )


def module_of(mutant: str) -> str:
    """``rollwise.core.analysis.x_count__mutmut_3`` -> ``rollwise.core.analysis``."""
    parts = mutant.partition("__mutmut_")[0].split(".")
    for i, part in enumerate(parts):
        if part.startswith(("x_", "x\u01c1")):
            return ".".join(parts[:i])
    return ".".join(parts[:-1])


def metas(mutated: tuple[str, ...]) -> list[Path]:
    """mutmut's result files of the modules in ``mutated`` (a run with ``--runtime`` leaves
    results of more modules behind)."""
    root = WORK / "mutants"
    return [
        meta
        for meta in sorted(root.rglob("*.py.meta"))
        if any(
            fnmatch.fnmatch(str(meta.relative_to(root)).removesuffix(".meta"), pattern)
            for pattern in mutated
        )
    ]


def results(mutated: tuple[str, ...]) -> dict[str, Counter[str]]:
    """Status counts per module, from mutmut's ``.meta`` files."""
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    for meta in metas(mutated):
        data = json.loads(meta.read_text(encoding="utf-8"))
        for mutant, code in data.get("exit_code_by_key", {}).items():
            by_module[module_of(mutant)][STATUS_BY_EXIT_CODE.get(code, f"exit {code}")] += 1
    return by_module


def survivors(mutated: tuple[str, ...]) -> list[str]:
    names: list[str] = []
    for meta in metas(mutated):
        data = json.loads(meta.read_text(encoding="utf-8"))
        names += [m for m, code in data.get("exit_code_by_key", {}).items() if code == 0]
    return sorted(names)


def report(mutated: tuple[str, ...]) -> None:
    rows = results(mutated)
    print(f"\n{'module':45} {'killed':>7} {'total':>6} {'score':>7}  other")
    all_killed = all_total = 0
    for module in sorted(rows):
        counts = rows[module]
        killed = counts["killed"] + counts["timeout"] + counts["caught by type check"]
        total = sum(counts.values())
        all_killed += killed
        all_total += total
        other = ", ".join(
            f"{status} {n}"
            for status, n in sorted(counts.items())
            if status not in {"killed", "timeout", "caught by type check"}
        )
        print(f"{module:45} {killed:7} {total:6} {killed / total:7.1%}  {other}")
    if all_total:
        print(f"{'all':45} {all_killed:7} {all_total:6} {all_killed / all_total:7.1%}")
    names = survivors(mutated)
    if names:
        print(f"\nsurvivors ({len(names)}); `mutmut show NAME` in .mutation/ prints one:")
        for name in names:
            print(f"  {name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("globs", nargs="*", help="mutant name globs, e.g. 'rollwise.core.*'")
    parser.add_argument("--report", action="store_true", help="only print the last results")
    parser.add_argument(
        "--survivors", action="store_true", help="test again only the mutants that survived"
    )
    parser.add_argument(
        "--runtime", action="store_true", help="also the Rollout/ModelRelease passes"
    )
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args(argv)
    mutated = MUTATED + RUNTIME if args.runtime else MUTATED
    if not args.report:
        names = list(args.globs)
        if args.survivors:
            names += survivors(mutated)
            if not names:
                report(mutated)
                return 0
        lay_out(mutated)
        env = dict(os.environ, HYPOTHESIS_PROFILE="mutation")
        mutmut = Path(sys.executable).with_name("mutmut")
        command = [str(mutmut), "run", "--max-children", str(args.max_children), *names]
        code = subprocess.run(command, cwd=WORK, env=env, check=False).returncode
        if code != 0:
            return code
    report(mutated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
